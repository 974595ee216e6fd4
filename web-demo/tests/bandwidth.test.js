// Bandwidth (issue 27): a Chromium page whose link narrows to 300 kbps mid-meeting (a network
// namespace with a token-bucket filter) gets the low layer of a camera its large tile would
// show whole, with every frame it gets decrypted, while the camera keeps sending every layer;
// when the link comes back, the SFU's probes find it and the page climbs to the top layer
// within seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closing, decodedSize, mintToken, participant, sendingTop, startBrowser, startSfu, until } from "./harness.js";
import { constrainedLink } from "./netns.js";

test("a page whose link narrows to 300 kbps gets the low layer, then the top within seconds of the link coming back", async (t) => {
  const link = constrainedLink();
  t.after(link.remove);
  // Off loopback, so with tokens (dev mode serves loopback only).
  const secret = "a token secret for the bandwidth test, 32 bytes";
  const sfu = await startSfu({ host: link.host, secret });
  const as = (name) => ({ query: `&token=${mintToken(secret, { room: "bandwidth", sub: name })}` });
  t.after(sfu.stop);
  const outside = await startBrowser({ secureOrigin: sfu.url });
  t.after(outside.close);
  const inside = await startBrowser({ executablePath: link.chromium, secureOrigin: sfu.url });
  t.after(inside.close);

  const large = { width: 1280, height: 800 };
  const cam = await participant(outside.browser, sfu.url, "bandwidth", "cam", as("cam"));
  const low = await participant(inside.browser, sfu.url, "bandwidth", "low", { ...as("low"), viewport: large });
  closing(t, cam, low);
  const top = (await sendingTop(cam)).height;
  // Unlimited at first (the page and its 3 MB of wasm load), low shows cam whole.
  await until("low decoding cam's top layer", async () => (await decodedSize(low, "cam"))?.height === top, 40000);

  // The link narrows to 300 kbps.
  link.limit(300);

  // Behind the link: a lower layer than its tile asks for, decoded, and it stays there.
  const small = await until("low decoding cam below the top", async () => {
    const s = await decodedSize(low, "cam");
    return s && s.height < top && s;
  }, 40000);
  for (let i = 0; i < 5; i++) {
    const s = await decodedSize(low, "cam");
    assert.ok(s && s.height < top, `low keeps below the top: ${JSON.stringify(s)}`);
  }
  t.diagnostic(`behind 300 kbps low decodes cam at ${small.width}x${small.height} of ${top}`);
  await low.screenshot("bandwidth-low-300kbps.png");
  const sent = await sendingTop(cam);
  assert.equal(sent.height, top, "the camera still sends its top layer for the others");

  // The link comes back.
  link.unlimit();
  const back = Date.now();
  const grown = await until("low climbing to cam's top layer", async () => {
    const s = await decodedSize(low, "cam");
    return s && s.height === top && s;
  }, 20000);
  const climbed = Date.now() - back;
  console.log(`MEASURE ${JSON.stringify({ climb_back_after_link_ms: climbed })}`);
  assert.equal(grown.height, top);
  await low.screenshot("bandwidth-low-unlimited.png");
  const decrypt = (await low.snapshot()).senders.find((x) => x.identity === "cam");
  assert.ok(decrypt.decrypted > 0 && decrypt.failed === 0, JSON.stringify(decrypt));
});
