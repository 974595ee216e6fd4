// Reconnect times of browser pages, repeated (not a test: docs/benchmarks.md quotes its
// output): N restarts of the server on its port with two pages in the meeting, and N 5-second
// cuts of one page's connection. For each, the time from the server being up again (or the
// network back) to the page's rejoin completing, and to both pages playing each other again.
//   node web-demo/tests/measure-reconnect.mjs [N]   (after bash scripts/build-web and a debug build)
import {
  allSeeAll, freePort, participant, sameEpoch, startBrowser, startCuttable, startSfu, until,
} from "./harness.js";

const N = Number(process.argv[2] ?? 10);
const { browser, close } = await startBrowser();
const quantiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: Math.round(s.at(-1)) };
};
const backAfter = async (p, count, since) => {
  const s = await until(`${p.name} back`, async () => {
    const x = await p.snapshot();
    return x.reconnects.length >= count && x.reconnecting === null && x;
  }, 130000);
  return s.reconnects[count - 1].at - since;
};

// Server restarts.
const port = await freePort();
let sfu = await startSfu({ port });
const pages = [
  await participant(browser, sfu.url, "restart", "alice"),
  await participant(browser, sfu.url, "restart", "bob"),
];
await allSeeAll(pages);
await sameEpoch(pages);
const restart = { rejoined: [], playing: [] };
for (let i = 1; i <= N; i++) {
  await sfu.stop();
  await until("both reconnecting", async () =>
    (await Promise.all(pages.map((p) => p.snapshot()))).every((s) => s.reconnecting !== null));
  sfu = await startSfu({ port });
  const up = Date.now();
  for (const p of pages) restart.rejoined.push(await backAfter(p, i, up));
  await allSeeAll(pages);
  restart.playing.push(Date.now() - up);
}
await Promise.all(pages.map((p) => p.context.close()));
await sfu.stop();

// Network cuts of 5 s.
sfu = await startSfu();
const relay = await startCuttable(sfu.url);
const carol = await participant(browser, relay.url, "cut", "carol");
const dan = await participant(browser, sfu.url, "cut", "dan");
await allSeeAll([carol, dan]);
const cut = { rejoined: [], playing: [] };
for (let i = 1; i <= N; i++) {
  await relay.cut(5000);
  const back = Date.now();
  cut.rejoined.push(await backAfter(carol, i, back));
  await allSeeAll([carol, dan]);
  cut.playing.push(Date.now() - back);
}
await relay.stop();
await sfu.stop();
await close();

console.log(JSON.stringify({
  after_server_restart: { rejoined_ms: quantiles(restart.rejoined), both_playing_ms: quantiles(restart.playing) },
  after_5s_cut: { rejoined_ms: quantiles(cut.rejoined), both_playing_ms: quantiles(cut.playing) },
}, null, 2));
process.exit(0);
