// Layers (issue 27): a Chromium camera sends VP9 SVC (L3T3_KEY) under whole-frame encryption;
// each receiver gets the spatial layers its tile needs (the SFU reads them from the VP9 payload
// descriptor, the frames stay sealed) and decodes what the SFU left: a small tile gets the low
// layer, in Chromium and in Firefox; when no tile needs more, the camera is told to send one
// layer; and a tile that grows climbs to the top layer, the camera sending it again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closing, decodedSize, participant, sending, sendingTop, sfuAndBrowser, until } from "./harness.js";

const env = sfuAndBrowser(undefined, { firefox: true });

test("a small tile gets the camera's low layer and decodes it (Chromium and Firefox); the camera then sends one layer; a large tile climbs to the top", async (t) => {
  const small = { width: 480, height: 360 };
  const cam = await participant(env.browser, env.sfu.url, "layers", "cam");
  const chrome = await participant(env.browser, env.sfu.url, "layers", "chrome", { viewport: small });
  const fox = await participant(env.firefox, env.sfu.url, "layers", "fox", { viewport: small });
  closing(t, cam, chrome, fox);

  const sent = await sendingTop(cam);
  // Asked for three; a 640x480 camera makes two (Chromium's lowest layer is at least 240 wide).
  assert.equal(sent.modes.length, 1);
  assert.match(sent.modes[0], /^L[23]T3_KEY$/);
  t.diagnostic(`cam sends ${sent.modes[0]}, ${sent.height} tall at the top`);
  const top = sent.height;

  for (const p of [chrome, fox]) {
    const size = await until(`${p.name} decoding cam's low layer`, async () => {
      const s = await decodedSize(p, "cam");
      return s && s.height < top && s;
    }, 40000);
    assert.ok(size.height <= top / 2, `${p.name} decodes ${size.height} of ${top}`);
    t.diagnostic(`${p.name} decodes cam at ${size.width}x${size.height}, sent up to ${top}`);
    const decrypt = (await p.snapshot()).senders.find((x) => x.identity === "cam");
    assert.ok(decrypt.decrypted > 0 && decrypt.failed === 0, JSON.stringify(decrypt));
  }
  await chrome.screenshot("layers-small-chromium.png");
  await fox.screenshot("layers-small-firefox.png");

  // No tile needs cam's top layer: after a while the SFU tells cam so, and cam sends one.
  const one = await until("cam sending one spatial layer", async () => {
    const s = await sending(cam);
    return s.modes[0] === "L1T3" && s.height < top && s;
  }, 20000);
  t.diagnostic(`told, cam sends ${one.modes[0]} at ${one.height}`);
  assert.ok((await decodedSize(chrome, "cam")).height < top);

  // The tile grows: the SFU tells cam to send its layers again and forwards every one.
  await chrome.page.setViewportSize({ width: 1280, height: 800 });
  const grown = await until("chrome decoding cam's top layer", async () => {
    const s = await decodedSize(chrome, "cam");
    return s && s.height === top && s;
  }, 20000);
  assert.equal(grown.height, top);
  await chrome.screenshot("layers-large-chromium.png");
  const after = (await chrome.snapshot()).senders.find((x) => x.identity === "cam");
  assert.equal(after.failed, 0);
});
