// Browser meetings end to end: real chromium pages (fake camera and microphone) join rooms on
// the sfu binary; MLS runs in wasm, SFrame in the page's worker. Screenshots go to
// web-demo/tests/output/. Measurements are printed as `MEASURE {json}` lines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, allSeeAll, closing, participant, sameEpoch, seesPlaying, snapshots, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();


test("two, then three participants see each other; a leaver advances the epoch", async (t) => {
  const [alice, bob] = closing(
    t,
    await participant(env.browser, env.sfu.url, "standup", "alice"),
    await participant(env.browser, env.sfu.url, "standup", "bob"),
  );
  await allSeeAll([alice, bob]);
  const [a] = await sameEpoch([alice, bob]);
  assert.match(a.safetyNumber, /^(\d{5} ){7}\d{5}$/, "40 digits in groups of five");
  assert.deepEqual(a.roster.sort(), ["alice", "bob"]);
  await alice.screenshot("two-alice.png");
  await bob.screenshot("two-bob.png");

  const first = await bob.snapshot();
  console.log(`MEASURE ${JSON.stringify({
    join_to_first_decrypted_video_ms: first.firstDecrypted.video - first.joinClickedAt,
    join_to_first_decrypted_audio_ms: first.firstDecrypted.audio - first.joinClickedAt,
    participants: 2,
  })}`);

  // The fake microphones beep: the SFU announces an active speaker from the audio levels.
  await until("an active speaker", async () => {
    const s = await snapshots([alice, bob]);
    return s.every((x) => x.speaker !== null && x.speaker !== undefined);
  });

  // Stopping the camera stops the video the other side sees; starting it brings it back.
  await alice.page.click("#camera");
  // The button says so once the track is off (the handler awaits replacing it).
  await alice.page.waitForSelector('#camera[aria-pressed="true"]');
  await until("alice's video to stop at bob", async () => !(await seesPlaying(bob, ["alice"])));
  await alice.page.click("#camera");
  await until("alice's video to come back", () => seesPlaying(bob, ["alice"]));

  const keyframesBefore = (await alice.snapshot()).keyframes;
  const [carol] = closing(t, await participant(env.browser, env.sfu.url, "standup", "carol"));
  await allSeeAll([alice, bob, carol]);
  // The sender asks its encoder for a key frame under the new key where the browser can
  // (RTCRtpScriptTransformer.generateKeyFrame); elsewhere the SFU's PLI for the new
  // subscriber brings one.
  const k = await alice.snapshot();
  assert.ok(
    k.keyframes > keyframesBefore || /not supported/.test(k.keyframeError ?? ""),
    `key frame requested or reported unsupported: ${JSON.stringify(k.keyframeError)}`,
  );
  const [three] = await sameEpoch([alice, bob, carol]);
  assert.ok(three.epoch > a.epoch);
  const c = await carol.snapshot();
  console.log(`MEASURE ${JSON.stringify({
    join_to_first_decrypted_video_ms: c.firstDecrypted.video - c.joinClickedAt,
    participants: 3,
  })}`);
  for (const p of [alice, bob, carol]) {
    const s = await p.snapshot();
    for (const sender of s.senders.filter((x) => x.identity !== p.name)) {
      assert.ok(sender.decrypted > 0, `${p.name} decrypts ${sender.identity}`);
      assert.equal(sender.failed, 0, `${p.name}: no frame of ${sender.identity} fails`);
    }
    await p.screenshot(`three-${p.name}.png`);
  }

  await carol.leave();
  const [two] = await sameEpoch([alice, bob]);
  assert.ok(two.epoch > three.epoch, "the epoch advances when someone leaves");
  assert.deepEqual(two.roster.sort(), ["alice", "bob"]);
  await until("carol's tile to go", async () => {
    const s = await snapshots([alice, bob]);
    return s.every((x) => !x.tiles.some((t) => t.name === "carol"));
  });
  await alice.screenshot("after-leave-alice.png");
});

test("with decryption switched off, a participant sees no video and counts the frames", async (t) => {
  const [off] = closing(t, await participant(env.browser, env.sfu.url, "ciphertext", "eve", { decrypt: false }));
  const [dave] = closing(t, await participant(env.browser, env.sfu.url, "ciphertext", "dave"));
  // Dave decrypts eve's video, so media flows both ways ...
  await until("dave seeing eve", () => seesPlaying(dave, ["eve"]));
  // ... but what reaches eve is ciphertext: undecryptable, and her decoder shows nothing.
  const s = await until("eve counting dave's frames as undecryptable", async () => {
    const x = await off.snapshot();
    const d = x.senders.find((y) => y.identity === "dave");
    return d && d.failed > 50 && x;
  });
  const dave_tile = s.tiles.find((t) => t.name === "dave");
  assert.ok(dave_tile, "eve has a tile for dave");
  assert.equal(s.senders.find((y) => y.identity === "dave").decrypted, 0);
  assert.equal(dave_tile.width, 0, "no decodable video");
  assert.equal(dave_tile.frames, 0, "no frame rendered");
  await off.screenshot("decryption-off-eve.png");
  // Eve's page reports the count (nothing else) and the operator sees it.
  await until("the failures in /metrics", async () => {
    const text = await (await fetch(`${env.sfu.url}/metrics`)).text();
    const m = text.match(/^sfu_client_decrypt_failures_total (\d+)/m);
    return m && Number(m[1]) > 50;
  });
});

test("the RFC 9605 vectors pass through the worker's SFrame code; per-frame cost", async (t) => {
  const [p] = closing(t, await participant(env.browser, env.sfu.url, "selftest", "vera"));
  await until("vera's media", async () => (await p.snapshot()).sent > 0);
  const vectors = readFileSync(join(ROOT, "media-crypto/tests/data/rfc9605.json"), "utf8");
  const r = await p.page.evaluate((text) => window.e2ee.selfTest(text), vectors);
  assert.deepEqual(r.failures, []);
  assert.ok(r.passed >= 289 + 2 * 2, `header and GCM frame vectors ran (${r.passed})`);
  const shown = await p.page.textContent("#selftest");
  assert.match(shown, /all \d+ RFC 9605 checks pass/);
  const bench = await p.page.evaluate(() => window.e2ee.bench([100, 10_000, 50_000], 500));
  console.log(`MEASURE ${JSON.stringify({ worker_frame_crypto: bench })}`);
});
