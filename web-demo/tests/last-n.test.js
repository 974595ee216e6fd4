// Last-N (issue 27): a server started with `--last-n 1` forwards each page one video at a time,
// the most recent speaker's, however many tiles it shows; the other tile says why it has no
// picture (the server's word, which changes no name), and the video follows the speaker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closing, participant, sfuAndBrowser, until } from "./harness.js";

const env = sfuAndBrowser({ args: ["--last-n", "1"] });

const PAUSED = /paused by the server: showing the most recent speakers/;

/** `p`'s tile of `name`'s camera. */
async function tile(p, name) {
  return (await p.snapshot()).tiles.find((t) => !t.key.startsWith("self") && !t.screen && t.name === name);
}

/** Waits until `p` decodes `name`'s camera (its frame count moving) and shows `paused`'s as
 * paused for last-N. */
async function follows(p, name, paused) {
  const before = (await tile(p, name))?.frames ?? 0;
  await until(`${p.name} decoding ${name}, ${paused} paused`, async () => {
    const [shown, other] = [await tile(p, name), await tile(p, paused)];
    return shown?.frames > before + 10 && !shown.caption && PAUSED.test(other?.caption ?? "");
  }, 30000);
}

test("with last-N at 1 a page gets the speaker's video; the other tile says it is paused, and the video follows the speaker", async (t) => {
  const a = await participant(env.browser, env.sfu.url, "lastn", "a");
  const b = await participant(env.browser, env.sfu.url, "lastn", "b");
  const c = await participant(env.browser, env.sfu.url, "lastn", "c");
  closing(t, a, b, c);
  // Only a speaks.
  for (const p of [b, c]) await p.page.click("#mic");
  await follows(c, "a", "b");
  await c.screenshot("last-n-a.png");
  // a falls silent and b speaks: c's video follows b.
  await a.page.click("#mic");
  await b.page.click("#mic");
  await follows(c, "b", "a");
  await c.screenshot("last-n-b.png");
  const s = await c.snapshot();
  for (const name of ["a", "b"]) {
    const d = s.senders.find((x) => x.identity === name);
    assert.equal(d.failed, 0, JSON.stringify(d));
  }
  const label = await c.page.locator(".tile.camera-off").first().getAttribute("aria-label");
  assert.match(label, PAUSED, "a screen reader hears why too");
});
