// The deployment guide's reverse proxy, as written there: nginx terminates TLS and proxies the
// page and the WebSocket to the sfu on plain HTTP; two browsers meet through it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, participant, seesPlaying, selfSigned, startBrowser, startNginx, startSfu, until } from "./harness.js";

let sfu, proxy, browser, closeBrowser;

before(async () => {
  sfu = await startSfu({ args: ["--trusted-proxy", "127.0.0.1"] });
  proxy = await startNginx({
    port: await freePort(), upstream: new URL(sfu.url).host, cert: selfSigned("nginx"),
  });
  ({ browser, close: closeBrowser } = await startBrowser());
});

after(async () => {
  await closeBrowser?.();
  proxy?.stop();
  sfu?.stop();
});

test("two participants meet through the guide's nginx snippet (HTTPS and WSS at the proxy)", async (t) => {
  assert.match(sfu.url, /^http:/, "the sfu itself speaks plain HTTP");
  const a = await participant(browser, proxy.url, "proxied", "alice");
  const b = await participant(browser, proxy.url, "proxied", "bob");
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  await until("both seeing each other through nginx", async () =>
    (await seesPlaying(a, ["bob"])) && (await seesPlaying(b, ["alice"])));
  assert.equal(await a.page.evaluate(() => location.origin), proxy.url);
  await a.screenshot("nginx-alice.png");
});
