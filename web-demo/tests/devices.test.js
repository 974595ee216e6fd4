// What people reach for besides their face: sharing a screen, choosing and switching devices
// (without touching the E2EE keys), joining audio-only, a speaking indicator, an invite link.
// The fake capture devices of Chromium stand in for cameras and a screen (two fake cameras:
// harness FLAGS).
import { test } from "node:test";
import assert from "node:assert/strict";
import { allSeeAll, newContext, participant, sameEpoch, seesPlaying, seesScreen, snapshots, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();

test("a screen shared by one page is seen by the other, large and by the sharer's key; stopping hides it", async (t) => {
  const pages = [
    await participant(env.browser, env.sfu.url, "screen", "alice"),
    await participant(env.browser, env.sfu.url, "screen", "bob"),
  ];
  t.after(() => Promise.all(pages.map((p) => p.context.close().catch(() => {}))));
  const [alice, bob] = pages;
  await allSeeAll(pages);
  const [{ epoch }] = await sameEpoch(pages);

  await alice.page.click("#screen");
  await until("alice sharing", async () => (await alice.snapshot()).sharing);
  await until("bob seeing alice's screen", () => seesScreen(bob, "alice"));
  const shown = (await bob.snapshot()).tiles.find((t) => t.screen);
  assert.equal(shown.byKey, true, "named by the key that opens its frames");
  assert.equal(shown.mislabelled, false);
  assert.ok(await bob.page.isVisible(".tile.screen"), "shown as a screen (large)");
  assert.ok(await seesPlaying(bob, ["alice"]), "her camera still plays beside it");
  await bob.screenshot("screen-share-bob.png");

  await alice.page.click("#screen");
  await until("alice's screen gone at bob", async () =>
    !(await bob.snapshot()).tiles.some((t) => t.screen && !t.hidden));
  assert.equal(await bob.page.locator(".tile.screen:visible").count(), 0);
  // Sharing needed no renegotiation of keys: the epoch is the same.
  assert.ok((await snapshots(pages)).every((s) => s.epoch === epoch));
});

test("switching the camera and microphone keeps the others seeing and hearing, in the same epoch", async (t) => {
  const pages = [
    await participant(env.browser, env.sfu.url, "switch", "carol"),
    await participant(env.browser, env.sfu.url, "switch", "dan"),
  ];
  t.after(() => Promise.all(pages.map((p) => p.context.close().catch(() => {}))));
  const [carol, dan] = pages;
  await allSeeAll(pages);
  const [{ epoch }] = await sameEpoch(pages);

  const cameras = await carol.page.$$eval("#camera-select option", (os) => os.map((o) => [o.value, o.textContent]));
  assert.equal(cameras.length, 3, `three fake cameras listed: ${cameras}`);
  const [before] = (await carol.snapshot()).devices.filter((d) => d.kind === "video");
  // The MJPEG one (the Y16 one is a depth format that no video encoder takes).
  const other = cameras.find(([, label]) => label === "fake_device_2")[0];
  assert.notEqual(other, before.deviceId);
  await carol.more();
  await carol.page.click("#settings summary");
  await carol.page.selectOption("#camera-select", other);
  await until("carol on the other camera", async () =>
    (await carol.snapshot()).devices.some((d) => d.kind === "video" && d.deviceId === other));
  await until("dan still seeing carol", () => seesPlaying(dan, ["carol"]));

  // A muted microphone stays muted on another microphone.
  await carol.page.click("#mic");
  const mics = await carol.page.$$eval("#mic-select option", (os) => os.map((o) => o.value).filter(Boolean));
  await carol.page.selectOption("#mic-select", mics.at(-1));
  await until("carol's new microphone, still muted", async () => {
    const audio = (await carol.snapshot()).devices.find((d) => d.kind === "audio");
    return audio && audio.enabled === false;
  });
  await until("dan still seeing carol after the switch", () => seesPlaying(dan, ["carol"]));
  const s = await snapshots(pages);
  assert.ok(s.every((x) => x.epoch === epoch), "no new keys for a new device");
  assert.equal(s[1].senders.find((x) => x.identity === "carol").failed, 0);
  assert.equal(await carol.page.evaluate(() => localStorage.getItem("e2ee.camera")), other, "the choice is remembered");
});

test("the lobby previews the camera; audio only joins without one; speaking shows; the invite link names the room only", async (t) => {
  const context = await newContext(env.browser, env.sfu.url);
  await context.grantPermissions(["camera", "microphone", "clipboard-read", "clipboard-write"], { origin: env.sfu.url });
  const erin = await participant(env.browser, env.sfu.url, "call", "erin", {
    context,
    beforeJoin: async (page) => {
      await until("the preview playing", () => page.evaluate(() => document.getElementById("preview").videoWidth > 0));
      await page.check("#audio-only");
    },
  });
  const fay = await participant(env.browser, env.sfu.url, "call", "fay");
  t.after(() => Promise.all([erin, fay].map((p) => p.context.close().catch(() => {}))));
  await sameEpoch([erin, fay]);
  await until("erin seeing fay", () => seesPlaying(erin, ["fay"]));
  const e = await erin.snapshot();
  assert.deepEqual(e.devices.map((d) => d.kind), ["audio"], "no camera captured");
  await until("fay seeing erin's camera off", async () => {
    const pid = (await erin.snapshot()).me;
    return (await fay.snapshot()).chat.states[pid]?.camera_off === true;
  });
  // The fake microphones play a tone: each page measures the other speaking, from the
  // decrypted sound.
  await until("speaking shown", async () => {
    const [a, b] = await snapshots([erin, fay]);
    return a.speaking.includes(b.me) && b.speaking.includes(a.me);
  });

  await erin.more();
  await erin.page.click("#invite");
  const link = await erin.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(link, `${env.sfu.url}/?room=call`);
  assert.match(await erin.page.textContent("#invite-status"), /copied/);
  // Said, then gone by itself.
  await until("the notice gone", async () => (await erin.page.locator("#invite-status").count()) === 0, 10000);
});
