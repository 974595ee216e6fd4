// A meeting of a hundred (issue 27, step 4): one page and 99 bots that listen (E2EE members,
// no camera). The people panel lists all hundred, this device first, scrolls, and finds a
// person by name; it is built only while open, and rebuilding it for a hundred is measured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closing, participant, runBots, sfuAndBrowser, until } from "./harness.js";

// The bots all connect from loopback: more than the default 50 connections per address.
const env = sfuAndBrowser({ args: ["--max-connections-per-ip", "200"] });

test("a hundred members: the people panel lists them all, scrolls, and finds one by name", async (t) => {
  const alice = await participant(env.browser, env.sfu.url, "hundred", "alice");
  closing(t, alice);
  // Listeners: members of the group that show no tile (nothing of alice's video is sent to
  // them) and count alice's audio by its header (the page's decryption is what is tested).
  const bots = runBots({
    url: env.sfu.url, room: "hundred", participants: 99, duration: "50s",
    args: ["--publishers", "0", "--tiles", "0", "--verify", "0", "--ramp", "50"],
  });
  const joinedAt = Date.now();
  let members = 0;
  await until("alice's group of a hundred", async () => {
    members = (await alice.snapshot()).senders.length;
    return members === 100;
  }, 90000).catch((e) => {
    throw new Error(`${e.message} (${members} members)`);
  });
  t.diagnostic(`a hundred in the group after ${Date.now() - joinedAt} ms`);
  // Ninety-nine joining within seconds make one notice that counts them, not ninety-nine.
  const notices = await alice.page.locator("#toasts li span").allTextContents();
  const joins = notices.filter((n) => n.endsWith(" joined"));
  assert.equal(joins.length, 1, JSON.stringify(notices));
  assert.match(joins[0], /^bot-\d+(, bot-\d+)?( and (bot-\d+|\d+ others))? joined$/);
  await alice.open("people");
  await until("the panel listing a hundred", async () => (await alice.page.locator("#roster > li").count()) === 100);
  assert.equal(await alice.page.textContent("#people-toggle"), "People (100)");
  assert.match(await alice.page.textContent("#roster > li:first-child .name"), /^alice \(you\)$/);
  // It scrolls: the last member is below the panel's fold until scrolled to.
  const last = alice.page.locator("#roster > li:last-child");
  assert.equal(await last.isVisible(), true);
  assert.ok(await alice.page.$eval("#people", (p) => p.scrollHeight > p.clientHeight * 3));
  await last.scrollIntoViewIfNeeded();
  // The search field stays in view however far the list is scrolled.
  assert.equal(await alice.page.locator("#people-filter").isVisible(), true);
  const field = await alice.page.locator("#people-filter").boundingBox();
  const panel = await alice.page.locator("#people").boundingBox();
  assert.ok(field.y >= panel.y && field.y < panel.y + 60, JSON.stringify({ field, panel }));
  await alice.screenshot("people-100.png");
  // Find one: the list narrows as the name is typed; a name nobody has says so.
  await alice.page.fill("#people-filter", "bot-42");
  assert.deepEqual(await alice.page.locator("#roster > li .name").allTextContents(), ["bot-42"]);
  await alice.page.fill("#people-filter", "nobody");
  assert.equal(await alice.page.locator("#roster > li").count(), 0);
  assert.equal(await alice.page.isVisible("#people-none"), true);
  // Rebuilding the list of a hundred (typing into the filter, and clearing it), in the page.
  const ms = await alice.page.evaluate(() => {
    const f = document.getElementById("people-filter");
    const times = [];
    for (const value of ["bot-1", "", "bot", "", "b", ""]) {
      const t0 = performance.now();
      f.value = value;
      f.dispatchEvent(new Event("input"));
      times.push(performance.now() - t0);
    }
    return times;
  });
  assert.equal(await alice.page.locator("#roster > li").count(), 100);
  console.log(`MEASURE ${JSON.stringify({ people_panel_100_rebuild_ms: ms.map((x) => Math.round(x * 10) / 10) })}`);
  // Keys typed into the filter are text, not shortcuts: the microphone is still on.
  await alice.page.fill("#people-filter", "");
  await alice.page.type("#people-filter", "m");
  assert.doesNotMatch(await alice.page.textContent("#mic"), /Unmute/);
  const report = await bots;
  assert.equal(report.participants_joined, 99, report.table);
  assert.equal(report.decrypt_failures, 0, report.table);
});
