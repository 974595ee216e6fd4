// Real-network ICE options with real browsers: every participant's media on one UDP port of
// the sfu, participants whose network allows only TURN over TCP, through a coturn
// configured as docs/deploy.md says, and an ICE restart when that TURN server restarts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  freePort, participant, presentedCertificate, seesPlaying, selfSigned, startBrowser, startCoturn, startSfu, until,
} from "./harness.js";

let browser, closeBrowser;

before(async () => {
  ({ browser, close: closeBrowser } = await startBrowser());
});

after(async () => {
  await closeBrowser?.();
});

/** The participant's media path once a candidate pair is selected. */
const pathOf = (p) => until(`${p.name}'s media path`, () => p.page.evaluate(() => window.e2ee.path()), 20000);

test("three participants meet with all media on one UDP port of the sfu", async (t) => {
  const sfu = await startSfu({ args: ["--udp-port", "0"] });
  t.after(() => sfu.stop());
  const names = ["alice", "bob", "carol"];
  const ps = [];
  for (const n of names) ps.push(await participant(browser, sfu.url, "one-port", n));
  t.after(() => Promise.all(ps.map((p) => p.context.close())));
  for (const p of ps) {
    await until(`${p.name} seeing the others`, () => seesPlaying(p, names.filter((n) => n !== p.name)));
  }
  const paths = await Promise.all(ps.map(pathOf));
  for (const path of paths) assert.equal(path.protocol, "udp", JSON.stringify(path));
  const remotes = new Set(paths.map((p) => p.remote));
  assert.equal(remotes.size, 1, `one sfu address for all: ${[...remotes]}`);
  await ps[0].screenshot("one-port-alice.png");
});

test("relay-only participants meet through TURN over TCP (coturn as the guide configures it)", async (t) => {
  const secret = "coturn secret for the browser test";
  const port = await freePort();
  const tlsPort = await freePort();
  const turn = await startCoturn({ port, tlsPort, secret, cert: selfSigned("coturn"), tcpOnly: true });
  t.after(() => turn.stop());
  assert.ok(await until("coturn's TLS port", () => presentedCertificate("127.0.0.1", tlsPort), 10000),
    "the guide's TLS listener works");
  const sfu = await startSfu({
    args: ["--ice-server", `turn:127.0.0.1:${port}?transport=tcp`, "--turn-secret", secret],
  });
  t.after(() => sfu.stop());
  const a = await participant(browser, sfu.url, "tcp-only", "alice", { query: "&relay=1" });
  const b = await participant(browser, sfu.url, "tcp-only", "bob", { query: "&relay=1" });
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  await until("both seeing each other through TURN/TCP", async () =>
    (await seesPlaying(a, ["bob"])) && (await seesPlaying(b, ["alice"])));
  for (const p of [a, b]) {
    const path = await pathOf(p);
    assert.equal(path.type, "relay", JSON.stringify(path));
    assert.equal(path.relayProtocol, "tcp", JSON.stringify(path));
  }
  await until("the panel naming the path", async () =>
    (await a.page.textContent("#media-path")) === "relayed by TURN over TCP", 10000);
  await a.screenshot("turn-tcp-alice.png");
});

test("a relay-only page whose TURN server restarts keeps its place: ICE restarts, no rejoin", async (t) => {
  const secret = "coturn secret for the ICE restart test";
  const port = await freePort();
  const tlsPort = await freePort();
  const cert = selfSigned("coturn-restart");
  const coturn = () => startCoturn({ port, tlsPort, secret, cert, tcpOnly: true });
  let turn = await coturn();
  t.after(() => turn.stop());
  const sfu = await startSfu({
    args: ["--ice-server", `turn:127.0.0.1:${port}?transport=tcp`, "--turn-secret", secret],
  });
  t.after(() => sfu.stop());
  const a = await participant(browser, sfu.url, "ice-restart", "alice", { query: "&relay=1" });
  const b = await participant(browser, sfu.url, "ice-restart", "bob");
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  const seeEachOther = async () => (await seesPlaying(a, ["bob"])) && (await seesPlaying(b, ["alice"]));
  await until("both seeing each other, alice through TURN", seeEachOther);
  const before = await a.snapshot();
  // Alice's only path goes with the TURN server's allocations; signaling stays up.
  turn.stop();
  await until("alice's media path down", async () =>
    ["disconnected", "failed"].includes((await a.snapshot()).ice), 30000);
  turn = await coturn();
  const back = Date.now();
  await until("alice's media path back", async () =>
    ["connected", "completed"].includes((await a.snapshot()).ice), 30000);
  const restartMs = Date.now() - back;
  await until("both seeing each other again", seeEachOther, 30000);
  const s = await a.snapshot();
  assert.equal(s.me, before.me, "the same participant");
  assert.equal(s.epoch, before.epoch, "the same epoch: nobody left or rejoined the group");
  assert.deepEqual(s.reconnects, [], "no rejoin");
  assert.ok(s.iceRestartsOffered >= 1 && s.iceRestarts.length === 1, JSON.stringify(s.iceRestarts));
  assert.equal((await pathOf(a)).type, "relay", "through the new allocation");
  console.log(`MEASURE ${JSON.stringify({ ice_restart_after_turn_back_ms: restartMs, media_down_ms: Math.round(s.iceRestarts[0].ms) })}`);
});
