// The lobby: what it says when a join cannot go ahead, and what it remembers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mintToken, newContext, participant, seesPlaying, startSfu, until, sfuAndBrowser } from "./harness.js";

const env = sfuAndBrowser();

const lobbyStatus = (page) => page.textContent("#lobby-status");

test("names the server would refuse are explained before asking it, and the name is remembered", async (t) => {
  const context = await newContext(env.browser, env.sfu.url);
  t.after(() => context.close());
  const page = await context.newPage();
  const asked = [];
  page.on("request", (r) => r.url().includes("/dev/token") && asked.push(r.url()));
  await page.goto(`${env.sfu.url}/?room=lobby`);

  await page.fill("#name", "   ");
  await page.click("#join");
  assert.match(await lobbyStatus(page), /Enter your name/);

  // 60 accented letters pass the input's limit (it counts UTF-16 units) but are 120 bytes.
  await page.fill("#name", "é".repeat(60));
  await page.click("#join");
  assert.match(await lobbyStatus(page), /120 bytes long; at most 64/);
  assert.deepEqual(asked, [], "nothing was sent for a name the server refuses");

  // A name it takes: the meeting opens, the lobby's "Joining…" is gone once left.
  await page.fill("#name", "Zoë 🙂");
  await page.click("#join");
  await page.waitForSelector("#meeting:not([hidden])");
  assert.equal(await lobbyStatus(page), "");
  await page.click("#leave");
  await page.waitForSelector("#lobby:not([hidden])");
  assert.equal(await lobbyStatus(page), "", "no stale status after a leave");

  await page.reload();
  assert.equal(await page.inputValue("#name"), "Zoë 🙂", "the name is offered again");
});

test("a join the server refuses says why in words", async (t) => {
  const context = await newContext(env.browser, env.sfu.url);
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${env.sfu.url}/?room=lobby&token=not-a-token`);
  await page.fill("#name", "mallory");
  await page.click("#join");
  await until("the refusal", async () => /not valid on this server/.test(await lobbyStatus(page)));
  assert.ok(await page.isVisible("#lobby"), "back in the lobby");
});

test("long names wrap or ellipsize instead of pushing the page apart", async (t) => {
  const long = "w".repeat(64);
  const [a, b] = [
    await participant(env.browser, env.sfu.url, "names", long),
    await participant(env.browser, env.sfu.url, "names", "bea"),
  ];
  t.after(() => Promise.all([a, b].map((p) => p.context.close().catch(() => {}))));
  await until("bea seeing the long name", () => seesPlaying(b, [long]));
  await b.open("people");
  const fits = await b.page.evaluate(() => {
    const panel = document.getElementById("people");
    const roster = document.getElementById("roster");
    const label = [...document.querySelectorAll(".tile .label")].find((l) => l.textContent.startsWith("www"));
    return {
      roster: roster.scrollWidth <= panel.clientWidth
        && [...roster.querySelectorAll(".name")].every((n) => n.getBoundingClientRect().height < 30),
      page: document.documentElement.scrollWidth <= window.innerWidth,
      label: label.getBoundingClientRect().width <= label.parentElement.getBoundingClientRect().width,
    };
  });
  assert.deepEqual(fits, { roster: true, page: true, label: true });
  await b.screenshot("long-name-bea.png");
});

test("a link with a token joins as the person it names; an expired one and a full room say so", async (t) => {
  const secret = "an organiser's token secret, 32 bytes long";
  const sfu = await startSfu({ secret, args: ["--max-participants-per-room", "1"] });
  t.after(() => sfu.stop());
  const open = async (token) => {
    const context = await newContext(env.browser, sfu.url);
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(`${sfu.url}/?token=${token}`);
    return page;
  };

  const page = await open(mintToken(secret, { room: "board", sub: "Grace Hopper" }));
  assert.equal(await page.inputValue("#name"), "Grace Hopper", "the name is the token's");
  assert.equal(await page.inputValue("#room"), "board");
  assert.ok(await page.$eval("#name", (e) => e.readOnly), "and cannot be changed");
  assert.match(await page.textContent("#invitation"), /invites Grace Hopper to room board/);
  await page.click("#join");
  await page.waitForSelector("#meeting:not([hidden])");

  // The room holds one: the next person is told it is full.
  const second = await open(mintToken(secret, { room: "board", sub: "Ada" }));
  await second.click("#join");
  await until("the full room", async () => /This room is full/.test(await lobbyStatus(second)));

  const expired = await open(mintToken(secret, { room: "board", sub: "Alan", expiresIn: -60 }));
  assert.match(await lobbyStatus(expired), /This invitation expired/, "said before anything is sent");
  await expired.click("#join");
  await until("the server's refusal", async () => /Your invitation has expired/.test(await lobbyStatus(expired)));
});

test("joining while the server is down says it cannot be reached, in words", async (t) => {
  const sfu = await startSfu();
  const context = await newContext(env.browser, sfu.url);
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${sfu.url}/?room=down`);
  await page.fill("#name", "alice");
  await page.evaluate(() => import("./pkg/web_demo_wasm.js")); // the page's code is loaded
  await sfu.stop();
  await page.click("#join");
  await until("the reason", async () => /Cannot reach the meeting server/.test(await lobbyStatus(page)));
  assert.doesNotMatch(await lobbyStatus(page), /Failed to fetch|NetworkError/);
});
