// A device keeps its identity: the signature key in its MLS credential lives in IndexedDB, so
// a page that reloads comes back as the same device (same fingerprint) and others do not flag
// it; another browser profile under the same name is a new device, and a verified person on a
// new device is a loud warning.
import { test } from "node:test";
import assert from "node:assert/strict";
import { newContext, participant, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();

const own = (s) => s.members.find((m) => m.device === "this_device");
const named = (s, name) => s.members.filter((m) => m.identity === name);

test("a reloaded page is the same device; another profile under the same name is flagged", async (t) => {
  const profileA = await newContext(env.browser, env.sfu.url);
  const profileB = await newContext(env.browser, env.sfu.url);
  t.after(() => Promise.all([profileA, profileB].map((c) => c.close().catch(() => {}))));
  const alice = await participant(env.browser, env.sfu.url, "devices", "alice", { context: profileA });
  const bob = await participant(env.browser, env.sfu.url, "devices", "bob", { context: profileB });
  const first = await until("two members", async () => {
    const x = await alice.snapshot();
    return x.members.length === 2 && own(x) && x;
  });
  const fingerprint = own(first).fingerprint.join(" ");
  assert.match(fingerprint, /^(\d{5} ){5}\d{5}$/, "30 digits");
  const seen = await until("bob seeing alice", async () => {
    const x = await bob.snapshot();
    return named(x, "alice").length === 1 && x;
  });
  assert.equal(named(seen, "alice")[0].device, "first_seen");
  assert.equal(named(seen, "alice")[0].fingerprint.join(" "), fingerprint, "both pages show the same digits");

  // Alice reloads and joins again: the same device key, so the same fingerprint.
  await alice.page.reload();
  await alice.page.fill("#name", "alice");
  await alice.page.click("#join");
  const back = await until("alice back with a new participant id", async () => {
    const x = await alice.snapshot();
    return x.members.length === 2 && own(x) && own(x).participant_id !== own(first).participant_id && x;
  });
  assert.equal(own(back).fingerprint.join(" "), fingerprint, "the device key survived the reload");
  const again = await until("bob seeing the new alice", async () => {
    const x = await bob.snapshot();
    const a = named(x, "alice");
    return a.length === 1 && a[0].participant_id === own(back).participant_id && x;
  });
  assert.notEqual(named(again, "alice")[0].device, "new_device", "not flagged as a new device");
  assert.ok(!again.alerts.some((a) => /new device/.test(a.text)), JSON.stringify(again.alerts));

  // Bob compares fingerprints with alice and marks her verified.
  await bob.open("people");
  await bob.page.click(`#roster button[data-verify="${named(again, "alice")[0].leaf}"]`);
  await until("alice verified at bob", async () =>
    named(await bob.snapshot(), "alice")[0]?.device === "verified");

  // Someone in another profile joins as "alice": a new device, and a verified one changed.
  const profileC = await newContext(env.browser, env.sfu.url);
  t.after(() => profileC.close().catch(() => {}));
  await participant(env.browser, env.sfu.url, "devices", "alice", { context: profileC });
  const flagged = await until("bob flagging the second alice", async () => {
    const x = await bob.snapshot();
    return named(x, "alice").length === 2 && x;
  });
  const [real, other] = named(flagged, "alice").sort((a, b) => (a.device === "verified" ? -1 : 1));
  assert.equal(real.device, "verified");
  assert.equal(other.device, "verified_key_changed");
  assert.ok(flagged.alerts.some((a) => a.kind === "danger" && /verified device has changed/.test(a.text)), JSON.stringify(flagged.alerts));
  assert.ok(flagged.alerts.some((a) => /More than one member is named alice/.test(a.text)));
  await bob.screenshot("identity-bob-two-alices.png");
  // What bob verified survives his own reload (the trust store is kept in IndexedDB).
  await bob.page.reload();
  await bob.page.fill("#name", "bob");
  await bob.page.click("#join");
  const later = await until("bob back", async () => {
    const x = await bob.snapshot();
    return named(x, "alice").length === 2 && x;
  });
  assert.deepEqual(named(later, "alice").map((m) => m.device).sort(), ["verified", "verified_key_changed"]);
});

test("two tabs of one browser share what was verified: neither overwrites the other", async (t) => {
  const profile = await newContext(env.browser, env.sfu.url);
  t.after(() => profile.close().catch(() => {}));
  const alice = await participant(env.browser, env.sfu.url, "tabs", "alice");
  t.after(() => alice.context.close().catch(() => {}));
  // Two tabs of bob's browser (one profile, one IndexedDB), both in the meeting.
  const bob1 = await participant(env.browser, env.sfu.url, "tabs", "bob", { context: profile });
  const bob2 = await participant(env.browser, env.sfu.url, "tabs", "bob", { context: profile });
  const seeing = async (p) => until(`${p.name} seeing alice`, async () => {
    const x = await p.snapshot();
    return named(x, "alice").length === 1 && x;
  });
  const s1 = await seeing(bob1);
  await seeing(bob2);
  // The first tab verifies alice; the second, which loaded the store before, shows it too...
  // (A tab in the background gets no animation frames, which clicks wait for: in front.)
  await bob1.page.bringToFront();
  await bob1.open("people");
  await bob1.page.click(`#roster button[data-verify="${named(s1, "alice")[0].leaf}"]`);
  await until("alice verified in the other tab", async () =>
    named(await bob2.snapshot(), "alice")[0]?.device === "verified");
  // ...and when the second tab writes next (a device it sees for the first time), the
  // verification stays.
  const carol = await participant(env.browser, env.sfu.url, "tabs", "carol");
  t.after(() => carol.context.close().catch(() => {}));
  await until("carol seen in both tabs", async () =>
    named(await bob2.snapshot(), "carol").length === 1 && named(await bob1.snapshot(), "carol").length === 1);
  await bob2.page.close();
  await bob1.page.close();
  const later = await participant(env.browser, env.sfu.url, "tabs", "bob", { context: profile });
  await until("a new tab showing alice verified and carol known", async () => {
    const x = await later.snapshot();
    const [a, c] = [named(x, "alice")[0], named(x, "carol")[0]];
    return a?.device === "verified" && c && c.device !== "new_device" && c.device !== "first_seen";
  });
});
