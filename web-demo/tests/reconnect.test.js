// Reconnecting by itself: when the server restarts (same port), or a page's connection to it
// is cut for a while, the pages come back into the meeting without a reload, in a new MLS
// group (or epoch), decrypting again.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  allSeeAll, freePort, participant, sameEpoch, seesPlaying, snapshots, startBrowser, startCuttable,
  startSfu, tileOf, until,
} from "./harness.js";

let browser, closeBrowser;

before(async () => {
  ({ browser, close: closeBrowser } = await startBrowser());
});

after(() => closeBrowser?.());

test("after a server restart on the same port both pages are back in the meeting by themselves", async (t) => {
  const port = await freePort();
  let sfu = await startSfu({ port });
  t.after(() => sfu.stop());
  const pages = [
    await participant(browser, sfu.url, "restart", "alice"),
    await participant(browser, sfu.url, "restart", "bob"),
  ];
  t.after(() => Promise.all(pages.map((p) => p.context.close().catch(() => {}))));
  await allSeeAll(pages);
  const [before] = await sameEpoch(pages);
  // Alice is muted: after the restart bob must still see it (her page says it again).
  await pages[0].page.click("#mic");
  const aliceAtBob = tileOf(pages[1].page, "alice");
  const mutedAtBob = async () => (await aliceAtBob.count()) === 1 && /muted/.test(await aliceAtBob.getAttribute("aria-label"));
  await until("alice muted at bob", mutedAtBob);

  await sfu.stop();
  await until("both pages reconnecting", async () =>
    (await snapshots(pages)).every((s) => s.reconnecting !== null));
  for (const p of pages) {
    assert.ok(await p.page.isVisible("#meeting"), `${p.name} stays in the meeting view`);
    assert.match(await p.page.textContent("#reconnecting"), /Connection lost .*Reconnecting…/);
    // The tiles stay: one's own preview as it was, the other's marked as reconnecting.
    const tiles = (await p.snapshot()).tiles;
    assert.ok(tiles.some((x) => x.key === "self" && !x.stale && x.width > 0), `${p.name}'s own preview stays`);
    const other = pages.find((o) => o !== p).name;
    assert.ok(tiles.some((x) => x.name === other && x.stale), `${p.name} keeps ${other}'s tile: ${JSON.stringify(tiles)}`);
    assert.ok(await p.page.locator(".tile.reconnecting .stale").first().isVisible(), "said on the tile");
  }
  await pages[0].screenshot("reconnecting-alice.png");
  sfu = await startSfu({ port });

  await allSeeAll(pages);
  const [again] = await sameEpoch(pages);
  assert.notEqual(again.safetyNumber, before.safetyNumber, "a new group: a new safety number");
  assert.deepEqual(again.roster.sort(), ["alice", "bob"]);
  const after = await snapshots(pages);
  for (const [i, s] of after.entries()) {
    assert.equal(s.reconnecting, null);
    assert.equal(s.reconnects.length, 1, `${pages[i].name} reconnected once`);
    const other = s.senders.find((x) => x.identity !== pages[i].name);
    assert.ok(other.decrypted > 0 && other.failed === 0, `${pages[i].name} decrypts again: ${JSON.stringify(other)}`);
  }
  assert.ok(!(await pages[1].page.isVisible("#reconnecting")), "the banner is gone");
  await until("alice still muted at bob, in the new group", mutedAtBob, 10000);
  for (const s of after) assert.ok(!s.tiles.some((x) => x.stale), "the old connection's tiles are gone");
  // The notice that it came back goes by itself.
  await until("the reconnected notice gone", async () =>
    (await pages[0].page.locator("#toasts li", { hasText: "Reconnected" }).count()) === 0, 15000);
  console.log(`MEASURE ${JSON.stringify({
    reconnect_after_server_restart_ms: after.map((s) => Math.round(s.reconnects[0].ms)),
  })}`);
});

test("a page whose connection to the server is cut for 5 s comes back by itself", async (t) => {
  const sfu = await startSfu();
  t.after(() => sfu.stop());
  const relay = await startCuttable(sfu.url);
  t.after(() => relay.stop());
  const carol = await participant(browser, relay.url, "cut", "carol");
  const dan = await participant(browser, sfu.url, "cut", "dan");
  t.after(() => Promise.all([carol, dan].map((p) => p.context.close().catch(() => {}))));
  await allSeeAll([carol, dan]);
  const [before] = await sameEpoch([carol, dan]);

  const cut = relay.cut(5000);
  await until("carol reconnecting", async () => (await carol.snapshot()).reconnecting !== null, 5000);
  await cut;
  await allSeeAll([carol, dan]);
  const [again] = await sameEpoch([carol, dan]);
  assert.ok(again.epoch > before.epoch, "carol was added again: a later epoch");
  assert.deepEqual(again.roster.sort(), ["carol", "dan"], "her old membership is gone from the group");
  const s = await carol.snapshot();
  assert.equal(s.reconnects.length, 1);
  // Dan saw her leave and come back, the same device: no "new device" alert.
  const d = await dan.snapshot();
  assert.ok(!d.alerts.some((a) => /new device|changed/.test(a.text)), JSON.stringify(d.alerts));
  assert.ok(await seesPlaying(dan, ["carol"]));
  console.log(`MEASURE ${JSON.stringify({ reconnect_after_5s_cut_ms: Math.round(s.reconnects[0].ms) })}`);
});
