// The meeting page as people see it: the stage at a laptop's and a phone's size, eight people
// on one page, a screen share the largest thing on it, state that is true (an audio-only
// joiner, a camera turned off), keyboard shortcuts, and a server that stays quiet meanwhile.
// Screenshots go to web-demo/tests/output/.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allSeeAll, closing, participant, runBots, sameEpoch, seesPlaying, seesScreen, sfuAndBrowser, startSfu, tileOf,
  until,
} from "./harness.js";
import { LAPTOP, checkWindows, geometry } from "./windows.js";

const env = sfuAndBrowser();

test("at 1280×800 and at 390×844 the lobby's Join is in view and the meeting fits the window", async () => {
  await checkWindows(env.browser, env.sfu.url, "chromium");
});

test("eight people fit one page of the grid at 1280×800; speaker view and a pin feature one", async (t) => {
  const [alice, bob] = closing(
    t,
    await participant(env.browser, env.sfu.url, "eight", "alice", { viewport: LAPTOP }),
    await participant(env.browser, env.sfu.url, "eight", "bob", { viewport: LAPTOP }),
  );
  await allSeeAll([alice, bob]);
  // Each bot decrypts one track of what it receives: six debug-built bots decrypting all seven
  // others' media would take both cores from the pages under test.
  const bots = runBots({ url: env.sfu.url, room: "eight", name: "bot", participants: 6, duration: "40s", verify: 1 });
  const names = ["bob", ...Array.from({ length: 6 }, (_, i) => `bot-${i}`)];
  // Every tile named by the key that opens its frames, with a picture: on two cores, eight
  // decoders leave the bots' tiles a few frames a second, too few to require each to move in
  // the same instant.
  let last = null;
  await until("alice showing all seven others, decrypted", async () => {
    last = await alice.snapshot();
    return names.every((n) => last.tiles.some((x) => x.name === n && x.byKey && x.width > 0 && x.frames > 0));
  }, 60000).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last.tiles.map((x) => [x.name, x.byKey, x.frames, x.width]))} ${JSON.stringify(last.senders)} epoch ${last.epoch}`);
  });
  const g = await geometry(alice.page);
  assert.equal(g.tiles.length, 8, JSON.stringify(g.tiles.map((x) => x.label)));
  assert.equal(g.pager, false, "one page");
  assert.ok(g.tiles.every((x) => x.w >= 240), `tiles at least 240 px wide: ${g.tiles.map((x) => Math.round(x.w))}`);
  assert.equal(g.overflowY, false);
  await alice.screenshot("eight-laptop.png");

  // Speaker view (L): one person large, the rest in a strip beside.
  await alice.page.keyboard.press("l");
  await until("a featured speaker", async () => (await alice.page.locator(".tile.featured").count()) === 1);
  const s = await geometry(alice.page);
  const big = Math.max(...s.tiles.map((x) => x.w * x.h));
  assert.equal(s.tiles.filter((x) => x.w * x.h === big).length, 1, "one tile larger than the rest");
  await alice.screenshot("speaker-view-laptop.png");

  // A pinned tile is featured whoever speaks, and outlasts a change of layout; unpinned, the
  // grid again.
  await alice.page.keyboard.press("l");
  await until("the grid again", async () => (await alice.page.locator(".tile.featured").count()) === 0);
  const botTile = tileOf(alice.page, "bot-3");
  await botTile.hover();
  await botTile.locator(".pin").click();
  await until("bot-3 pinned", async () =>
    /bot-3/.test(await alice.page.locator(".tile.featured .label").textContent()));
  await alice.page.keyboard.press("l");
  await alice.page.keyboard.press("l");
  assert.match(await alice.page.locator(".tile.featured .label").textContent(), /bot-3/, "a pin outlasts the layout");
  await botTile.locator(".pin").click();
  await until("the grid again, unpinned", async () => (await alice.page.locator(".tile.featured").count()) === 0);
  await bots;
});

test("a screen share is the largest tile, with the people in a strip", async (t) => {
  const [alice, bob] = closing(
    t,
    await participant(env.browser, env.sfu.url, "present", "alice", { viewport: LAPTOP }),
    await participant(env.browser, env.sfu.url, "present", "bob", { viewport: LAPTOP }),
  );
  await allSeeAll([alice, bob]);
  await alice.page.click("#screen");
  await until("bob seeing alice's screen", () => seesScreen(bob, "alice"));
  const g = await geometry(bob.page);
  const screen = g.tiles.find((x) => x.screen);
  for (const other of g.tiles.filter((x) => !x.screen)) {
    assert.ok(screen.w * screen.h > 4 * other.w * other.h, `the screen (${screen.w}×${screen.h}) dwarfs ${other.label}`);
  }
  assert.ok(screen.w >= 900, `the screen is ${screen.w} px wide at 1280`);
  await bob.screenshot("screen-share-laptop.png");
  await alice.page.click("#screen");
});

test("an audio-only joiner shows as camera off; a camera turned off shows the name, not a frozen frame", async (t) => {
  const [alice] = closing(t, await participant(env.browser, env.sfu.url, "camera", "alice"));
  const [bob] = closing(t, await participant(env.browser, env.sfu.url, "camera", "bob", {
    beforeJoin: (page) => page.check("#audio-only"),
  }));
  await sameEpoch([alice, bob]);
  // Bob's own word, signed, on joining: nobody had to change anything for alice to know.
  const bobTile = tileOf(alice.page, "bob");
  await until("bob's camera off at alice, in his words", async () =>
    (await bobTile.count()) === 1 && /camera off/.test(await bobTile.getAttribute("aria-label")));
  assert.ok(await bobTile.locator(".placeholder").isVisible(), "a placeholder with the name");
  assert.equal(await bobTile.locator(".placeholder .who").textContent(), "bob");
  assert.match(await bobTile.getAttribute("aria-label"), /bob.*camera off/);
  assert.match(await bobTile.locator(".badges").textContent(), /camera off/);

  // Alice turns her camera off (V): bob sees her name, not her last frame; on again, video.
  await until("bob seeing alice", () => seesPlaying(bob, ["alice"]));
  const aliceTile = tileOf(bob.page, "alice");
  await alice.page.keyboard.press("v");
  await until("the placeholder at bob", () => aliceTile.locator(".placeholder").isVisible());
  await bob.screenshot("camera-off-bob.png");
  await alice.page.keyboard.press("v");
  await until("alice's video again", async () =>
    !(await aliceTile.locator(".placeholder").isVisible()) && seesPlaying(bob, ["alice"]));
});

test("keyboard shortcuts mute, raise a hand, open the chat and leave; the tab's title says muted", async (t) => {
  const [alice, bob] = closing(
    t,
    await participant(env.browser, env.sfu.url, "keys", "alice"),
    await participant(env.browser, env.sfu.url, "keys", "bob"),
  );
  await allSeeAll([alice, bob]);
  assert.equal(await alice.page.title(), "keys · E2EE meeting");
  await alice.page.keyboard.press("m");
  assert.equal(await alice.page.getAttribute("#mic", "aria-pressed"), "true");
  assert.equal(await alice.page.title(), "Muted · keys · E2EE meeting");
  await until("alice muted at bob", async () =>
    /muted/.test(await tileOf(bob.page, "alice").getAttribute("aria-label")));
  await alice.page.keyboard.press("h");
  await until("alice's hand at bob, in words", async () =>
    (await bob.page.locator(".tile .badges", { hasText: "hand raised" }).count()) === 1);
  await alice.page.keyboard.press("c");
  assert.ok(await alice.page.isVisible("#chat"), "C opens the chat");
  // Typing in the chat is typing, not shortcuts.
  await alice.page.keyboard.type("my message");
  assert.equal(await alice.page.getAttribute("#mic", "aria-pressed"), "true", "an m typed in the chat is a letter");
  await alice.page.keyboard.press("Enter");
  await until("bob's unread count", async () => (await bob.page.textContent("#unread")) === "1");
  await alice.page.keyboard.press("Escape");
  assert.ok(await alice.page.isHidden("#chat"), "Escape closes it");
  await alice.page.keyboard.press("Shift+Q");
  await alice.page.waitForSelector("#lobby:not([hidden])");
  assert.equal(await alice.page.title(), "E2EE meeting");
  await until("alice's leaving told at bob", async () =>
    (await bob.page.locator("#toasts li", { hasText: "alice left" }).count()) === 1);
});

test("the server prints no warning in an ordinary two-page meeting", async (t) => {
  const sfu = await startSfu();
  t.after(() => sfu.stop());
  const [alice, bob] = closing(
    t,
    await participant(env.browser, sfu.url, "quiet", "alice"),
    await participant(env.browser, sfu.url, "quiet", "bob"),
  );
  await allSeeAll([alice, bob]);
  await alice.say("hello");
  await alice.page.keyboard.press("v");
  await alice.page.keyboard.press("v");
  await until("alice's video again", () => seesPlaying(bob, ["alice"]));
  await bob.leave();
  await until("alice alone", async () => (await alice.snapshot()).roster.length === 1);
  await alice.leave();
  await sfu.stop();
  // Dev mode's own warning (GET /dev/token hands out tokens) is meant: an operator must act on it.
  const warnings = sfu.log().split("\n").filter((l) => /\bWARN\b/.test(l) && !/INSECURE DEV MODE/.test(l));
  assert.deepEqual(warnings, [], "warnings are for what an operator should act on");
});
