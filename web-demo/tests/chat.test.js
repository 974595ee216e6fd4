// Chat, reactions and members' own state, end to end: MLS application messages that the
// server relays as ciphertext; names come from the MLS group.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allSeeAll, participant, sameEpoch, snapshots, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();

test("a chat message from one page appears on the other, named by the group; mute state shows", async (t) => {
  const pages = [
    await participant(env.browser, env.sfu.url, "chat", "alice"),
    await participant(env.browser, env.sfu.url, "chat", "bob"),
  ];
  t.after(() => Promise.all(pages.map((p) => p.context.close().catch(() => {}))));
  const [alice, bob] = pages;
  await allSeeAll(pages);
  await sameEpoch(pages);

  const sentAt = Date.now();
  await alice.say("hello <b>bob</b> 🙂");
  const got = await until("bob reading alice's message", async () => {
    const s = await bob.snapshot();
    return s.chat.messages.find((m) => m.text === "hello <b>bob</b> 🙂");
  });
  const latency = Date.now() - sentAt;
  assert.equal(got.from, "alice", "named by the member whose key signed it");
  assert.equal(await bob.page.locator("#messages b").count(), 0, "shown as text, not markup");
  assert.deepEqual((await alice.snapshot()).chat.messages.map((m) => m.mine), [true]);

  // Alice mutes: bob's tile of her says so (her own signed word).
  await alice.page.click("#mic");
  await until("alice shown muted at bob", async () =>
    (await bob.page.locator(".tile .badges", { hasText: "muted" }).count()) === 1);
  await alice.page.click("#hand");
  await until("alice's hand up at bob", async () => (await bob.snapshot()).chat.hands.includes("alice"));

  // A newcomer learns the state already set, and reads only what is said after it joined.
  const [carol] = [await participant(env.browser, env.sfu.url, "chat", "carol")];
  t.after(() => carol.context.close().catch(() => {}));
  await sameEpoch([alice, bob, carol]);
  await until("carol seeing alice muted", async () => {
    const s = await carol.snapshot();
    const pid = (await alice.snapshot()).me;
    return s.chat.states[pid]?.muted === true && s.chat.hands.includes("alice");
  });
  await bob.say("welcome carol");
  await until("carol reading bob", async () =>
    (await carol.snapshot()).chat.messages.some((m) => m.from === "bob" && m.text === "welcome carol"));
  const c = await carol.snapshot();
  assert.ok(!c.chat.messages.some((m) => m.text.startsWith("hello")), "nothing from before her join");
  for (const s of await snapshots([alice, bob, carol])) assert.equal(s.chat.refused, 0);
  await bob.screenshot("chat-bob.png");
  console.log(`MEASURE ${JSON.stringify({ chat_delivery_ms_two_pages: latency })}`);
});
