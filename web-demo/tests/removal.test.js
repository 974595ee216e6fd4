// Removals that hold: an administrator removes a participant, whose page says so and does not
// come back by itself, and whose invitation is refused from then on; the others see it go.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { OUTPUT, mintToken, newContext, sameEpoch, startBrowser, startSfu, until } from "./harness.js";

const SECRET = "an organiser's token secret, 32 bytes long";
const ADMIN = "an operator's admin token";

/** A page joined with an invitation link for `sub` in `room`. */
async function invited(browser, sfu, room, sub) {
  const context = await newContext(browser, sfu.url);
  const page = await context.newPage();
  const token = mintToken(SECRET, { room, sub });
  await page.goto(`${sfu.url}/?token=${token}`);
  await page.click("#join");
  await page.waitForSelector("#meeting:not([hidden])");
  return { name: sub, page, context, token, snapshot: () => page.evaluate(() => window.e2ee.snapshot()) };
}

async function admin(sfu, method, path) {
  const r = await fetch(`${sfu.url}${path}`, { method, headers: { Authorization: `Bearer ${ADMIN}` } });
  return { status: r.status, body: await r.text() };
}

test("a removed participant's page says so, does not come back, and its invitation is refused", async (t) => {
  const sfu = await startSfu({ secret: SECRET, args: ["--admin-token", ADMIN] });
  const { browser, close } = await startBrowser();
  t.after(async () => {
    await close();
    await sfu.stop();
  });
  const alice = await invited(browser, sfu, "board", "alice");
  const mallory = await invited(browser, sfu, "board", "mallory");
  await sameEpoch([alice, mallory]);

  const rooms = JSON.parse((await admin(sfu, "GET", "/admin/rooms")).body);
  const pid = rooms[0].participants.find((p) => p.identity === "mallory").participant_id;
  assert.equal((await admin(sfu, "DELETE", `/admin/rooms/board/participants/${pid}`)).status, 204);

  const lobby = () => mallory.page.textContent("#lobby-status");
  await until("mallory's page saying she was removed", async () =>
    (await mallory.page.isVisible("#lobby")) && /You were removed from the meeting/.test(await lobby()));
  await mallory.page.screenshot({ path: join(OUTPUT, "removed-mallory.png") });
  await until("alice's group without mallory", async () => {
    const s = await alice.snapshot();
    return s.roster.length === 1 && !s.roster.includes("mallory");
  });
  // Mallory's page stays out: a few reconnect periods later, the server has no mallory.
  await new Promise((r) => setTimeout(r, 4000));
  const after = JSON.parse((await admin(sfu, "GET", "/admin/rooms")).body);
  assert.deepEqual(after[0].participants.map((p) => p.identity), ["alice"]);
  assert.equal(await mallory.page.isVisible("#meeting"), false);

  // Opening the invitation link again and joining is refused, in words.
  await mallory.page.goto(`${sfu.url}/?token=${mallory.token}`);
  await mallory.page.click("#join");
  await until("the refusal of the revoked invitation", async () =>
    /You were removed from the meeting/.test(await lobby()) && (await mallory.page.isVisible("#lobby")));
  const last = JSON.parse((await admin(sfu, "GET", "/admin/rooms")).body);
  assert.deepEqual(last[0].participants.map((p) => p.identity), ["alice"]);
});
