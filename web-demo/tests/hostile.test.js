// Two real browsers against a hostile server: the sfu behind a man in the middle with the
// operator's powers (the hostile-proxy test binary). The pages catch its lies and say so:
// a participant the server hid from them is named, and their media stops until the user says
// they know who it is; a publisher's streams labelled as someone else's are named by the key
// that opens them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { closing, participant, runBots, seesPlaying, startBrowser, startHostile, startSfu, tileOf, until } from "./harness.js";

const SECRET = "the operator's token secret, 32 b";
let sfu, proxy, browser, closeBrowser;

before(async () => {
  sfu = await startSfu({ secret: SECRET });
  proxy = await startHostile({ sfu, secret: SECRET });
  ({ browser, close: closeBrowser } = await startBrowser());
});

after(async () => {
  await closeBrowser?.();
  proxy?.stop();
  sfu?.stop();
});

const members = async (p) => (await p.snapshot()).members;

test("a participant the server hid is named on both pages, and their media stops until acknowledged", async (t) => {
  await proxy.lie("member", "room=ghost&name=carol");
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "ghost", "alice"),
    await participant(browser, proxy.url, "ghost", "bob"),
  );
  await until("alice and bob seeing each other", async () =>
    (await seesPlaying(alice, ["bob"])) && (await seesPlaying(bob, ["alice"])));
  await until("three members on both pages", async () =>
    (await members(alice)).length === 3 && (await members(bob)).length === 3);

  const { participant_id: ghost } = await proxy.lie("ghost", "room=ghost&name=mallory");
  for (const p of [alice, bob]) {
    const s = await until(`${p.name} naming mallory`, async () => {
      const x = await p.snapshot();
      const m = x.members.find((y) => y.identity === "mallory");
      return m?.problem && !x.mayShare && x;
    });
    const m = s.members.find((y) => y.identity === "mallory");
    assert.equal(m.participant_id, ghost);
    assert.match(m.problem, /never announced/);
    assert.ok(s.alerts.some((a) => a.kind === "danger" && /mallory/.test(a.text)), JSON.stringify(s.alerts));
    assert.ok(s.alerts.some((a) => /not being sent/.test(a.text)));
    assert.equal(await p.page.locator("#alerts li.danger", { hasText: "mallory" }).count(), 1);
    await p.screenshot(`hostile-ghost-${p.name}.png`);
  }
  // Nothing of theirs goes out: each stops seeing the other's video.
  await until("alice's frames withheld", async () => (await alice.snapshot()).withheld > 30);
  await until("bob no longer seeing alice", async () => !(await seesPlaying(bob, ["alice"])));
  // Her picture stopped without her saying her camera is off: bob sees her name and
  // "no video", never her last frame frozen, and no "camera off" she did not say.
  const aliceAtBob = tileOf(bob.page, "alice");
  await until("the placeholder for alice at bob", () => aliceAtBob.locator(".placeholder").isVisible());
  assert.equal(await aliceAtBob.locator(".placeholder .caption").textContent(), "no video");
  assert.doesNotMatch(await aliceAtBob.locator(".badges").textContent(), /camera off/);
  // Alice says she knows who mallory is: her media flows again (bob's stays held back).
  await alice.page.click(`#alerts button[data-acknowledge]`);
  await until("alice sending again", async () => (await alice.snapshot()).mayShare);
  await until("bob seeing alice again", () => seesPlaying(bob, ["alice"]));
  await until("her picture instead of the placeholder", async () => !(await aliceAtBob.locator(".placeholder").isVisible()));
  assert.equal((await bob.snapshot()).mayShare, false);
});

test("a publisher's streams labelled as someone else's are named by the key that opens them", async (t) => {
  await proxy.lie("member", "room=relabel&name=carol");
  await proxy.lie("relabel", "room=relabel&identity=bob&as=carol");
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "relabel", "alice"),
    await participant(browser, proxy.url, "relabel", "bob"),
  );
  const s = await until("alice's tile of bob's media, relabelled", async () => {
    const x = await alice.snapshot();
    const tile = x.tiles.find((y) => y.byKey && y.name === "bob");
    return tile?.mislabelled && tile.frames > 10 && x;
  });
  const tile = s.tiles.find((y) => y.name === "bob");
  assert.equal(tile.claimed, "carol", "the server said carol");
  assert.ok(s.alerts.some((a) => a.kind === "danger" && /labelled bob's media as carol's/.test(a.text)), JSON.stringify(s.alerts));
  assert.match(await alice.page.textContent(".tile.mislabelled .relabel"), /its frames are bob's/);
  await alice.screenshot("hostile-relabel-alice.png");
  // What the tile says of its member is what bob's key signed, not what carol (whose
  // participant id the server put on it) said: bob mutes, and the tile says muted.
  await bob.page.keyboard.press("m");
  await until("bob's own word on the relabelled tile", async () =>
    /muted/.test(await alice.page.locator(".tile.mislabelled").getAttribute("aria-label")));
  // Bob's offers were not rewritten: his tile of alice is alice, and says nothing.
  const b = await until("bob's tile of alice", async () => {
    const x = await bob.snapshot();
    return x.tiles.find((y) => y.byKey && y.name === "alice") && x;
  });
  assert.ok(!b.tiles.some((y) => y.mislabelled));
});

test("a member whose name only looks like alice's is flagged on both pages, spelled out", async (t) => {
  await proxy.lie("member", "room=alike&name=carol");
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "alike", "alice"),
    await participant(browser, proxy.url, "alike", "bob"),
  );
  await until("three members on both pages", async () =>
    (await members(alice)).length === 3 && (await members(bob)).length === 3);
  // "аlice" with a Cyrillic а: a name the server takes, that reads as alice's.
  await proxy.lie("double", `room=alike&name=${encodeURIComponent("\u0430lice")}`);
  for (const p of [alice, bob]) {
    const s = await until(`${p.name} flagging the lookalike`, async () => {
      const x = await p.snapshot();
      return x.members.length === 4 && x.alerts.some((a) => /look alike/.test(a.text)) && x;
    });
    const alert = s.alerts.find((a) => /look alike/.test(a.text));
    assert.equal(alert.kind, "danger");
    assert.match(alert.text, /<U\+0430>lice/, "the lookalike is spelled out");
    const lookalike = s.members.find((m) => m.identity === "\u0430lice");
    assert.deepEqual(lookalike.looks_like, ["alice"]);
    await p.open("people");
    assert.equal(await p.page.locator("#roster .flags", { hasText: "lookalike name" }).count(), 2);
    await p.screenshot(`hostile-lookalike-${p.name}.png`);
  }
});

test("told to rejoin with the group never let form again, no page or bot sends under the old group's keys", async (t) => {
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "stranded", "alice"),
    await participant(browser, proxy.url, "stranded", "bob"),
  );
  const bots = runBots({ url: proxy.url, room: "stranded", participants: 1, duration: "35s" });
  await until("alice and bob seeing each other and the bot", async () =>
    (await seesPlaying(alice, ["bob", "bot-0"])) && (await seesPlaying(bob, ["alice", "bot-0"])));

  const { delivered } = await proxy.lie("rejoin", "room=stranded");
  assert.equal(delivered, 3, "both pages and the bot were told");
  for (const p of [alice, bob]) {
    const s = await until(`${p.name} showing no current group`, async () => {
      const x = await p.snapshot();
      return x.groupGone && x.retired > 0 && x;
    });
    assert.equal(s.epoch, null, "no stale epoch shown as current");
    assert.equal(s.safetyNumber, "");
    assert.deepEqual(s.members, [], "no members of a group that is gone");
    assert.ok(!s.tiles.some((x) => x.mislabelled), "the paused tiles keep their names");
    assert.ok(s.alerts.some((a) => a.kind === "danger" && /No current group/.test(a.text)), JSON.stringify(s.alerts));
    assert.match(await p.page.textContent("#epoch"), /none/);
    assert.ok(await p.page.locator(".tile.nogroup .paused").first().isVisible());
  }
  // Frames already on their way are sealed; then nothing more is.
  await new Promise((r) => setTimeout(r, 1000));
  const sent = await Promise.all([alice, bob].map(async (p) => (await p.snapshot()).sent));
  // After the grace time, a frame under the old group's keys no longer opens: it is counted
  // as stale. None arrives, from the pages or the bot: none was sealed.
  await new Promise((r) => setTimeout(r, 6000));
  const stale = await Promise.all([alice, bob].map(async (p) => (await p.snapshot()).stale));
  await new Promise((r) => setTimeout(r, 4000));
  for (const [i, p] of [alice, bob].entries()) {
    const s = await p.snapshot();
    assert.equal(s.sent, sent[i], `${p.name} sealed nothing more`);
    assert.equal(s.stale, stale[i], `${p.name} received nothing under the old group's keys`);
  }
  await alice.screenshot("hostile-rejoin-alice.png");
  await bots;
});

test("a key seen as mallory that comes back as alice stays VERIFIED DEVICE CHANGED, and a new device stays new, across dropped connections", async (t) => {
  await proxy.lie("member", "room=trust&name=carol");
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "trust", "alice"),
    await participant(browser, proxy.url, "trust", "bob"),
  );
  const named = (s, name) => s.members.filter((m) => m.identity === name);
  await until("three members on both pages", async () =>
    (await members(alice)).length === 3 && (await members(bob)).length === 3);
  await proxy.lie("member", "room=trust&name=mallory");
  const seen = await until("bob seeing mallory", async () => {
    const x = await bob.snapshot();
    return named(x, "mallory").length === 1 && x;
  });
  const malloryKey = named(seen, "mallory")[0].key;
  // Mallory leaves (a device key holds one leaf at most in a group: RFC 9420 §7.3).
  await proxy.lie("leave", "room=trust&name=mallory");
  await until("mallory gone at bob", async () => named(await bob.snapshot(), "mallory").length === 0);
  // Bob compares alice's fingerprint with her and marks it verified.
  await bob.open("people");
  await bob.page.click(`#roster button[data-verify="${named(seen, "alice")[0].leaf}"]`);
  await until("alice verified at bob", async () => named(await bob.snapshot(), "alice")[0]?.device === "verified");

  // Carol on a second device; mallory's device under alice's name.
  await proxy.lie("double", "room=trust&name=carol");
  await proxy.lie("double", "room=trust&name=alice&key_of=mallory");
  const judged = (when) => until(`bob's verdicts ${when}`, async () => {
    const x = await bob.snapshot();
    const a = named(x, "alice"), c = named(x, "carol");
    const posing = a.find((m) => m.key === malloryKey);
    const ok = a.length === 2 && c.length === 2 && posing?.device === "verified_key_changed"
      && a.some((m) => m.device === "verified") && c.some((m) => m.device === "new_device")
      && x.alerts.some((l) => l.kind === "danger" && /alice's verified device has changed/.test(l.text))
      && x.alerts.some((l) => /carol .* is using a new device/.test(l.text));
    return ok && x;
  });
  await judged("at first");
  await bob.screenshot("hostile-trust-bob.png");

  // The server drops every connection: the pages come back in a new group, and the verdicts
  // (and what the log said) are the same.
  const { dropped } = await proxy.lie("drop", "room=trust");
  assert.equal(dropped, 2);
  await until("bob back after the drop", async () => (await bob.snapshot()).reconnects.length >= 1);
  const after = await judged("after the drop");
  assert.ok(after.log.some((l) => /alice's verified device changed/.test(l)), JSON.stringify(after.log));

  // Bob accepts carol's new device: from then on it is known.
  const fresh = named(after, "carol").find((m) => m.device === "new_device");
  await bob.page.click(`#alerts button[data-acknowledge-device="${fresh.leaf}"]`);
  await until("carol's second device known", async () =>
    named(await bob.snapshot(), "carol").every((m) => m.device !== "new_device"));
});

test("two states the server delivers in reverse order leave the newer; a message it drops shows as a gap", async (t) => {
  await proxy.lie("member", "room=order&name=carol");
  const [alice, bob] = closing(
    t,
    await participant(browser, proxy.url, "order", "alice"),
    await participant(browser, proxy.url, "order", "bob"),
  );
  await until("three members on both pages", async () =>
    (await members(alice)).length === 3 && (await members(bob)).length === 3);
  const alicePid = (await alice.snapshot()).me;
  const say = (p, text) => p.say(text);
  const bobHas = (text) => until(`bob reading ${text}`, async () =>
    (await bob.snapshot()).chat.messages.some((m) => m.from === "alice" && m.text === text));

  // Alice mutes, then unmutes; the server hands bob the two states newest first.
  await proxy.lie("app", "room=order&from=alice&to=bob&reverse=2");
  await alice.page.click("#mic");
  await until("alice's page muted", async () => (await alice.snapshot()).devices.some((d) => d.kind === "audio" && !d.enabled));
  await alice.page.click("#mic");
  // A chat message after them comes through as it is: by then both states were delivered.
  await say(alice, "after the states");
  await bobHas("after the states");
  const s = await bob.snapshot();
  assert.equal(s.chat.states[alicePid]?.muted, false, "the newer state stays: alice is not shown muted");
  assert.equal(await bob.page.locator(".tile .badges", { hasText: "muted" }).count(), 0);

  // The server drops one of alice's messages to bob: the next one comes, and the lost one
  // shows as a gap.
  await proxy.lie("app", "room=order&from=alice&to=bob&drop=1");
  await say(alice, "this one is dropped");
  await say(alice, "this one arrives");
  await bobHas("this one arrives");
  await until("bob told a message from alice did not arrive", async () =>
    (await bob.snapshot()).chat.messages.some((m) => m.system && m.from === "alice" && /did not arrive/.test(m.text)));
  assert.ok(!(await bob.snapshot()).chat.messages.some((m) => m.text === "this one is dropped"));
  assert.equal(await bob.page.locator("#messages li.system", { hasText: "did not arrive" }).count(), 1);
  await bob.screenshot("hostile-order-bob.png");
});
