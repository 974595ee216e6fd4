// The demo over HTTPS and WSS served by the sfu itself, with a self-signed certificate, and
// the certificate replaced without a restart (SIGHUP).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { renameSync } from "node:fs";
import { participant, presentedCertificate, seesPlaying, selfSigned, startBrowser, startSfu, until } from "./harness.js";

let sfu, browser, closeBrowser, first;

before(async () => {
  first = selfSigned("tls-first");
  sfu = await startSfu({ tls: first });
  ({ browser, close: closeBrowser } = await startBrowser());
});

after(async () => {
  await closeBrowser?.();
  sfu?.stop();
});

/** The SHA-256 fingerprint of the certificate the server presents now. */
async function presented(url) {
  const { hostname, port } = new URL(url);
  const fingerprint = await presentedCertificate(hostname, Number(port));
  assert.ok(fingerprint, `a TLS handshake with ${url}`);
  return fingerprint;
}

function fingerprint(pemFile) {
  return import("node:crypto").then(({ X509Certificate }) =>
    import("node:fs").then(({ readFileSync }) => new X509Certificate(readFileSync(pemFile)).fingerprint256));
}

test("two participants meet over HTTPS and WSS", async (t) => {
  assert.match(sfu.url, /^https:/);
  const a = await participant(browser, sfu.url, "secure", "alice");
  const b = await participant(browser, sfu.url, "secure", "bob");
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  await until("both seeing each other over TLS", async () =>
    (await seesPlaying(a, ["bob"])) && (await seesPlaying(b, ["alice"])));
  assert.equal(await a.page.evaluate(() => location.protocol), "https:");
  await a.screenshot("tls-alice.png");
});

test("a renewed certificate is served after SIGHUP, without a restart", async () => {
  assert.equal(await presented(sfu.url), await fingerprint(first.cert));
  const renewed = selfSigned("tls-renewed");
  renameSync(renewed.cert, first.cert);
  renameSync(renewed.key, first.key);
  const expected = await fingerprint(first.cert);
  process.kill(sfu.pid, "SIGHUP");
  await until("the renewed certificate", async () => (await presented(sfu.url)) === expected, 10000);
});
