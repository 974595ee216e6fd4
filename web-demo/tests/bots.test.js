// Bots (the loadtest's E2EE participants) and browsers in one meeting: each decrypts every
// frame of the other, so load figures in rooms with browsers count what really arrived.
import { test } from "node:test";
import assert from "node:assert/strict";
import { participant, runBots, seesPlaying, seesScreen, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();

test("a bot in a meeting with two browsers decrypts every frame they send, and they the bot's", async (t) => {
  const pages = [
    await participant(env.browser, env.sfu.url, "mixed", "alice"),
    await participant(env.browser, env.sfu.url, "mixed", "bob"),
  ];
  t.after(() => Promise.all(pages.map((p) => p.context.close().catch(() => {}))));
  const [alice, bob] = pages;
  await until("alice and bob seeing each other", async () =>
    (await seesPlaying(alice, ["bob"])) && (await seesPlaying(bob, ["alice"])));

  const bots = runBots({ url: env.sfu.url, room: "mixed", name: "probe", duration: "15s", chat: "2s", screens: 1 });
  await until("both pages playing the bot's video", async () =>
    (await seesPlaying(alice, ["probe-0"])) && (await seesPlaying(bob, ["probe-0"])));
  // The bot shares a screen (the test video again): the pages show it as the bot's screen.
  await until("alice seeing the bot's screen", () => seesScreen(alice, "probe-0"));
  // Chat both ways: the bot's messages reach the pages named by its key, alice's the bot.
  await until("both pages reading the bot's chat", async () => (await Promise.all(
    pages.map(async (p) => (await p.snapshot()).chat.messages.some((m) => m.from === "probe-0")),
  )).every(Boolean));
  await alice.say("hello bot");
  // While the bot is still in the group (its leaf goes with its leave).
  for (const p of pages) {
    const bot = await until(`${p.name} decrypting 200 of the bot's frames`, async () => {
      const b = (await p.snapshot()).senders.find((s) => s.identity === "probe-0");
      return b && b.decrypted > 200 && b;
    });
    assert.equal(bot.failed, 0, `${p.name}: no frame of the bot fails`);
  }
  const report = await bots;
  console.log(`MEASURE ${JSON.stringify({
    bot_among_browsers: {
      frames_received: report.frames_received, frames_lost: report.frames_lost,
      loss_percent: report.loss_percent, video_frames_received: report.video_frames_received,
    },
  })}`);

  // Two browsers send Opus at 50 frames/s and VP9 (Chromium's flexible mode) for 15 s.
  assert.ok(report.frames_verified > 1000, `the bot decrypted ${report.frames_verified} frames`);
  assert.equal(report.frames_verified, report.frames_received, "every frame decrypted and checked");
  assert.equal(report.decrypt_failures, 0, JSON.stringify(report.decrypt_failure_kinds));
  // A sender's audio and video share its SFrame counter: a lost video frame is a gap too.
  assert.ok(report.loss_percent < 1, `${report.loss_percent}% of the browsers' frames lost:\n${report.table}`);
  assert.ok(report.chat_received >= 1, `the bot read alice's chat (${report.chat_received} received)`);
  assert.ok(report.chat_sent >= 3, `the bot chatted (${report.chat_sent} sent)`);
  assert.ok(report.video_frames_received > 200, `the browsers' video reached the bot (${report.video_frames_received} frames)`);
});

test("a publisher who comes after others left is named by its key, in the sections they left", async (t) => {
  const alice = await participant(env.browser, env.sfu.url, "turnover", "alice");
  t.after(() => alice.context.close().catch(() => {}));
  const leafOf = (s, name) => s.members.find((m) => m.identity === name)?.leaf;
  /** A bot `name-0` that publishes for 8 s, once alice plays its video; `run` ends with it. */
  const comes = async (name) => {
    const run = runBots({ url: env.sfu.url, room: "turnover", name, duration: "8s" });
    run.catch(() => {});
    await until(`alice playing ${name}-0's video`, () => seesPlaying(alice, [`${name}-0`]));
    return { run, leaf: leafOf(await alice.snapshot(), `${name}-0`) };
  };
  // x and y publish at once, x leaves, then y: two video sections at alice carry nothing.
  const x = await comes("x");
  const y = await comes("y");
  assert.equal((await alice.snapshot()).tiles.length, 3, "x and y at once");
  await x.run;
  await y.run;
  await until("x and y gone", async () => (await alice.snapshot()).tiles.length === 1);
  const { sections } = await alice.snapshot();
  // z takes y's sections (the last to go idle): the same receivers and tracks as y's, whose
  // frames now open with z's key. Counted with y's, they would name the tile after both and
  // raise the relabelling alarm.
  const z = await comes("z");
  const s = await alice.snapshot();
  assert.notEqual(z.leaf, y.leaf, "z's key is not y's");
  const tile = s.tiles.find((x) => x.name === "z-0");
  assert.ok(tile?.byKey && !tile.mislabelled, JSON.stringify(s.tiles));
  assert.ok(!s.alerts.some((a) => a.kind === "danger"), JSON.stringify(s.alerts));
  assert.equal(s.sections, sections, "z came into the sections x and y left");
  await z.run;
});
