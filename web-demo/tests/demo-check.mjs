// A real meeting on the running demo (scripts/demo, http://127.0.0.1:8080), as a new user
// would hold it: alice in Chromium at 1280×800, bob in Firefox at 390×844, and a bot; then
// screenshots of what each sees. Not part of the test suite: run it by hand against the demo.
import { participant, runBots, startBrowser, startFirefox, until, OUTPUT } from "./harness.js";

const url = process.env.DEMO_URL ?? "http://127.0.0.1:8080";
const chromium = await startBrowser();
const firefox = await startFirefox();
try {
  const alice = await participant(chromium.browser, url, "demo", "alice", { viewport: { width: 1280, height: 800 } });
  const bob = await participant(firefox.browser, url, "demo", "bob", { viewport: { width: 390, height: 844 } });
  const bot = runBots({ url, room: "demo", name: "bot", participants: 1, duration: "30s", chat: "5s" });
  await until("three on both pages", async () =>
    (await alice.snapshot()).roster.length === 3 && (await bob.snapshot()).roster.length === 3, 30000);
  await new Promise((r) => setTimeout(r, 4000));
  await alice.say("hello from chromium");
  await bob.say("hello from firefox");
  await new Promise((r) => setTimeout(r, 2000));
  await alice.screenshot("demo-alice-1280.png");
  await bob.screenshot("demo-bob-390.png");
  await bob.page.click("#chat .close");
  await alice.page.click("#screen");
  await new Promise((r) => setTimeout(r, 5000));
  await bob.screenshot("demo-bob-390-screen.png");
  await alice.open("e2ee");
  await alice.screenshot("demo-alice-1280-e2ee.png");
  const [a, b] = [await alice.snapshot(), await bob.snapshot()];
  console.log(JSON.stringify({
    same: a.epoch === b.epoch && a.safetyNumber === b.safetyNumber,
    alice: a.senders, bob: b.senders, console: [...alice.console, ...bob.console].filter((l) => /error/i.test(l)),
  }, null, 1));
  await bot;
} finally {
  await firefox.close();
  await chromium.close();
}
console.log(`screenshots in ${OUTPUT}`);
