// Firefox (Debian's firefox-esr, over WebDriver BiDi) is a supported browser: in one meeting
// with a Chromium page and a bot, everyone decrypts everyone; a leave rekeys; chat and a
// screen shared from Chromium reach the Firefox page; the page fits a laptop and a phone.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allSeeAll, participant, runBots, sameEpoch, seesPlaying, seesScreen, sfuAndBrowser, until,
} from "./harness.js";
import { checkWindows } from "./windows.js";

const env = sfuAndBrowser(undefined, { firefox: true });

test("a Firefox page, a Chromium page and a bot decrypt each other; chat and a screen share cross; a leave rekeys", async (t) => {
  const fox = await participant(env.firefox, env.sfu.url, "mixed", "fox");
  const chrome = await participant(env.browser, env.sfu.url, "mixed", "chrome");
  t.after(() => Promise.all([fox, chrome].map((p) => p.context.close().catch(() => {}))));
  await allSeeAll([fox, chrome]);
  await sameEpoch([fox, chrome]);

  const bot = runBots({ url: env.sfu.url, room: "mixed", name: "bot", participants: 1, duration: "40s", chat: "3s" });
  await until("both pages seeing the bot", async () =>
    (await seesPlaying(fox, ["bot-0"])) && (await seesPlaying(chrome, ["bot-0"])), 30000);
  const three = await until("one epoch of three on both pages", async () => {
    const [f, c] = await Promise.all([fox.snapshot(), chrome.snapshot()]);
    return f.roster.length === 3 && f.epoch === c.epoch && f.safetyNumber === c.safetyNumber && f;
  });
  assert.deepEqual(three.roster.sort(), ["bot-0", "chrome", "fox"]);
  for (const p of [fox, chrome]) {
    const s = await p.snapshot();
    for (const sender of s.senders.filter((x) => x.identity !== p.name)) {
      assert.ok(sender.decrypted > 0, `${p.name} decrypts ${sender.identity}`);
      assert.equal(sender.failed, 0, `${p.name}: no frame of ${sender.identity} fails`);
    }
  }
  await fox.screenshot("firefox-three.png");

  // Chat both ways, and a screen shared from Chromium, shown large in Firefox.
  await chrome.say("from chromium");
  await fox.say("from firefox");
  await until("fox reading chrome", async () =>
    (await fox.snapshot()).chat.messages.some((m) => m.from === "chrome" && m.text === "from chromium"));
  await until("chrome reading fox", async () =>
    (await chrome.snapshot()).chat.messages.some((m) => m.from === "fox" && m.text === "from firefox"));
  await chrome.page.click("#screen");
  await until("fox seeing chrome's screen", () => seesScreen(fox, "chrome"), 20000);
  await fox.screenshot("firefox-screen-from-chromium.png");
  await chrome.page.click("#screen");

  // The bot leaves: a new epoch for the two pages, the same safety number on both.
  const report = await bot;
  assert.equal(report.decrypt_failures, 0, JSON.stringify(report.decrypt_failure_kinds));
  assert.ok(report.video_frames_received > 100, `the pages' video reached the bot: ${report.table}`);
  const [two] = await sameEpoch([fox, chrome]);
  assert.ok(two.epoch > three.epoch, "the leave advanced the epoch");
  assert.notEqual(two.safetyNumber, three.safetyNumber);
  assert.deepEqual(two.roster.sort(), ["chrome", "fox"]);
  await allSeeAll([fox, chrome]);
});

test("in Firefox too, the lobby's Join is in view and the meeting fits a laptop and a phone", async () => {
  await checkWindows(env.firefox, env.sfu.url, "firefox");
});
