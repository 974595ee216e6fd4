// Test harness: the sfu binary with the demo, and participants as pages of Debian's chromium
// (headless, fake camera and microphone) driven by playwright-core.
import { execFileSync, spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect as connectTcp, createServer } from "node:net";
import { tmpdir } from "node:os";
import { connect as connectTls } from "node:tls";
import { join, resolve } from "node:path";
import { after, before } from "node:test";
import { chromium, firefox } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
export const OUTPUT = join(ROOT, "web-demo/tests/output");
mkdirSync(OUTPUT, { recursive: true });

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/** Two seconds of a 440 Hz tone (16-bit mono WAV), looped as every fake microphone's sound:
 * steady sound, so the SFU's active-speaker detection has levels to work on. */
function toneWav(path) {
  const rate = 48000, samples = rate * 2;
  const b = Buffer.alloc(44 + samples * 2);
  b.write("RIFF", 0); b.writeUInt32LE(36 + samples * 2, 4); b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34); b.write("data", 36); b.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) {
    b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  }
  writeFileSync(path, b);
  return path;
}
const TONE = toneWav(join(OUTPUT, "tone.wav"));
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // Three fake cameras (and microphones), so that switching devices can be tried: I420,
  // Y16 (a depth format no encoder takes) and MJPEG.
  "--use-fake-device-for-media-stream=device-count=3", "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
  `--use-file-for-fake-audio-capture=${TONE}`,
];

/** A token as an organiser's backend mints it (HS256 JWT, signaling-token's claims): for
 * `sub` in `room`, expiring `expiresIn` seconds from now (negative: already expired). */
export function mintToken(secret, { room, sub, expiresIn = 600 }) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const jti = randomBytes(16).toString("hex");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ room, sub, exp: Math.floor(Date.now() / 1000) + expiresIn, jti, publish: true })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), as PEM files. */
export function selfSigned(name) {
  const cert = join(OUTPUT, `${name}.crt`), key = join(OUTPUT, `${name}.key`);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-days", "1", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return { cert, key };
}

/** Where cargo put the binaries: CARGO_TARGET_DIR (relative to the checkout, where
 * scripts/test runs cargo) or ./target. */
const BIN = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug");

/** Runs `bin` with `args` until it prints a line matching `ready` (whose first group is
 * returned as `url`). */
async function startServer(what, bin, args, ready) {
  const child = spawn(bin, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  const url = await new Promise((ok, fail) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(ready);
      if (m) ok(m[1]);
    });
    child.on("exit", (code) => fail(new Error(`${what} exited (${code}): ${log}`)));
  });
  const exited = new Promise((ok) => child.on("exit", ok));
  /** SIGINT (a graceful shutdown); resolves with the exit code once it has exited. */
  const stop = () => {
    child.kill("SIGINT");
    return exited;
  };
  return { url, pid: child.pid, log: () => log, stop };
}

/** Starts the sfu (built by cargo, path in SFU_BIN) on `host` (loopback unless told) and `port`
 * (0: a free one), its media on the same address: in dev mode, or with `secret` as its token
 * secret; with `tls` ({cert, key}) it serves HTTPS/WSS itself; `args` are further flags. */
export async function startSfu({ tls, secret, host = "127.0.0.1", port = 0, args = [] } = {}) {
  const bin = process.env.SFU_BIN ?? join(BIN, "sfu");
  const tlsArgs = tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key] : [];
  const mode = secret ? ["--token-secret", secret] : ["--dev"];
  return startServer("sfu", bin, [
    ...mode, "--listen", `${host}:${port}`, "--demo-dir", join(ROOT, "web-demo/static"),
    "--udp-port-min", "0", "--udp-port-max", "0", ...tlsArgs, ...args,
  ], /sfu listening on (https?:\/\/\S+)/);
}

/** The hostile server (the `hostile-proxy` test binary) in front of `sfu`, with its token
 * secret: the page is served by the proxy, and every signaling connection goes through it. */
export async function startHostile({ sfu, secret }) {
  const proxy = await startServer("hostile-proxy", join(BIN, "hostile-proxy"), [
    "--upstream", `${sfu.url.replace(/^http/, "ws")}/ws`, "--secret", secret,
    "--demo-dir", join(ROOT, "web-demo/static"),
  ], /hostile proxy listening on (http:\/\/\S+)/);
  /** Tells it to lie: POST /hostile/{what}?{query}. */
  proxy.lie = async (what, query) => {
    const r = await fetch(`${proxy.url}/hostile/${what}?${query}`, { method: "POST" });
    if (!r.ok) throw new Error(`${what}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return proxy;
}

/** Bots of the loadtest binary joining `room` at `url` as `name`-0, `name`-1, ... for
 * `duration` (e.g. "12s"), chatting every `chat` if given, `screens` of them sharing a
 * screen; resolves with the loadtest's JSON report once they have left. */
export async function runBots({ url, room, name = "bot", participants = 1, duration = "12s", chat, screens, verify, args = [] }) {
  const report = join(mkdtempSync(join(tmpdir(), "bots-")), "report.json");
  const child = spawn(join(BIN, "loadtest"), [
    "--url", url, "--room", room, "--name", name, "--participants", String(participants),
    "--no-late-joiner", "--duration", duration, "--quiet", "--json", report,
    ...(chat ? ["--chat", chat] : []),
    ...(screens ? ["--screens", String(screens)] : []),
    // Each bot decrypts `verify` of the tracks it receives (the rest counted by header).
    ...(verify ? ["--verify", String(verify)] : []),
    ...args,
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "error" } });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const code = await new Promise((ok) => child.on("exit", ok));
  if (code !== 0) throw new Error(`loadtest exited (${code}): ${out}`);
  return { ...JSON.parse(readFileSync(report, "utf8")), table: out };
}

/** One browser for all participants (Playwright gives it a fresh profile); each participant
 * is its own context (own storage). `executablePath` runs another Chromium (a wrapper that
 * starts it in a network namespace); `secureOrigin` is an http:// origin other than loopback
 * that it treats as secure (the camera and frame transforms need a secure context). */
export async function startBrowser({ executablePath = CHROMIUM, secureOrigin } = {}) {
  const args = secureOrigin ? [...FLAGS, `--unsafely-treat-insecure-origin-as-secure=${secureOrigin}`] : FLAGS;
  const browser = await chromium.launch({ executablePath, args });
  return { browser, close: () => browser.close() };
}

/** Debian's Firefox ESR, headless, driven over WebDriver BiDi: fake camera and microphone
 * without asking, and ICE on loopback with the host's real address (Firefox hides it behind
 * an mDNS name, and skips loopback, unless told). */
export async function startFirefox() {
  const browser = await firefox.launch({
    // "moz-": stock Firefox over WebDriver BiDi (not Playwright's patched build).
    channel: "moz-firefox",
    executablePath: FIREFOX,
    headless: true,
    firefoxUserPrefs: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "media.peerconnection.ice.loopback": true,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
    },
  });
  return { browser, close: () => browser.close() };
}

/** The sfu (started with `options`, as `startSfu` takes them) and one browser (and Firefox
 * too, with `{ firefox: true }`), shared by the tests of a file: started before the first,
 * stopped after the last; read as `env.sfu`, `env.browser` (and `env.firefox`) once the
 * tests run. */
export function sfuAndBrowser(options, { firefox = false } = {}) {
  const env = {};
  const closes = [];
  before(async () => {
    env.sfu = await startSfu(options);
    const chromium = await startBrowser();
    env.browser = chromium.browser;
    closes.push(chromium.close);
    if (firefox) {
      const fox = await startFirefox();
      env.firefox = fox.browser;
      closes.push(fox.close);
    }
  });
  after(async () => {
    for (const close of closes.reverse()) await close();
    env.sfu?.stop();
  });
  return env;
}

/** A TCP relay on loopback in front of `url` (the sfu's http://host:port) whose `cut(ms)`
 * drops every connection through it and refuses new ones for `ms`, as a network that goes
 * away and comes back does to a page's signaling connection. */
export async function startCuttable(url) {
  const { hostname, port } = new URL(url);
  const open = new Set();
  let downUntil = 0;
  const server = createServer((client) => {
    if (Date.now() < downUntil) return client.destroy();
    const upstream = connectTcp(Number(port), hostname);
    open.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut: async (ms) => {
      downUntil = Date.now() + ms;
      for (const s of open) s.destroy();
      await new Promise((r) => setTimeout(r, ms));
    },
    stop: () => server.close(),
  };
}

/** A free TCP port on loopback (for a server started next). */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** The first group of `pattern` in docs/deploy.md: one of its configuration blocks. */
function fromGuide(pattern, what) {
  const block = readFileSync(join(ROOT, "docs/deploy.md"), "utf8").match(pattern)?.[1];
  if (!block) throw new Error(`no ${what} block in docs/deploy.md`);
  return block;
}

/** Resolves once 127.0.0.1:`port` accepts TCP connections; fails if `child` (the server
 * `what`) exits first, with `log()` in the message. */
async function accepting(what, child, port, log = () => "") {
  let exited = null;
  child.on("exit", (code) => (exited = code));
  await until(`${what} listening`, () => new Promise((ok) => {
    if (exited !== null) throw new Error(`${what} exited (${exited}): ${log()}`);
    const s = connectTcp(port, "127.0.0.1", () => { s.end(); ok(true); });
    s.on("error", () => ok(false));
  }), 10000);
}

/** The SHA-256 fingerprint of the certificate `host`:`port` presents, or null when no TLS
 * handshake completes. */
export function presentedCertificate(host, port) {
  return new Promise((ok) => {
    const s = connectTls({ host, port, rejectUnauthorized: false, servername: "localhost" }, () => {
      ok(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on("error", () => ok(null));
  });
}

/** coturn (Debian's `turnserver`) with the configuration docs/deploy.md gives for
 * /etc/turnserver.conf, as written there except for its secret, ports and certificate
 * (`cert`: {cert, key}), on loopback. `tcpOnly`: clients may reach it over TCP/TLS only (its
 * relay to the sfu is UDP, as always). */
export async function startCoturn({ port, tlsPort, secret, cert, tcpOnly = false }) {
  const conf = fromGuide(/`\/etc\/turnserver\.conf`:\n\n```\n([\s\S]*?)```/, "turnserver.conf")
    .replace(/^static-auth-secret=.*$/m, `static-auth-secret=${secret}`)
    .replace(/^listening-port=.*$/m, `listening-port=${port}`)
    .replace(/^tls-listening-port=.*$/m, `tls-listening-port=${tlsPort}`)
    .replace(/^cert=.*$/m, `cert=${cert.cert}`)
    .replace(/^pkey=.*$/m, `pkey=${cert.key}`);
  const file = join(mkdtempSync(join(tmpdir(), "coturn-")), "turnserver.conf");
  writeFileSync(file, conf);
  const child = spawn("turnserver", [
    "-c", file,
    // Only what a loopback test needs beyond the guide's file.
    "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers",
    "--no-cli", "--min-port=62000", "--max-port=62999", "--log-file=stdout",
    ...(tcpOnly ? ["--no-udp", "--no-dtls"] : []),
  ], { stdio: "ignore" });
  await accepting("coturn", child, port);
  return { stop: () => child.kill("SIGTERM") };
}

/** nginx (Debian's, unprivileged, in the foreground) running the server block `site` from
 * docs/deploy.md, pointed at `upstream` (host:port) and listening with TLS on `port` with
 * `cert` ({cert, key}): the deployment guide's reverse proxy, as written there. */
export async function startNginx({ port, upstream, cert }) {
  const local = fromGuide(/```nginx\n([\s\S]*?)```/, "nginx")
    .replace(/listen 443 ssl http2;/, `listen 127.0.0.1:${port} ssl http2;`)
    .replace(/ssl_certificate +\S+;/, `ssl_certificate ${cert.cert};`)
    .replace(/ssl_certificate_key +\S+;/, `ssl_certificate_key ${cert.key};`)
    .replace(/proxy_pass http:\/\/127\.0\.0\.1:8080;/, `proxy_pass http://${upstream};`);
  const prefix = mkdtempSync(join(tmpdir(), "nginx-"));
  const conf = join(prefix, "nginx.conf");
  writeFileSync(conf, [
    "daemon off;", `pid ${prefix}/nginx.pid;`, `error_log ${prefix}/error.log;`,
    "events {}",
    "http {",
    `  access_log off; client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy;`,
    `  fastcgi_temp_path ${prefix}/fastcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
    local,
    "}",
  ].join("\n"));
  const child = spawn(process.env.NGINX ?? "/usr/sbin/nginx", ["-p", prefix, "-e", `${prefix}/error.log`, "-c", conf], { stdio: "ignore" });
  await accepting("nginx", child, port, () => readFileSync(`${prefix}/error.log`, "utf8"));
  return { url: `https://127.0.0.1:${port}`, stop: () => child.kill("SIGQUIT") };
}

/** The line of static/worker.js that decrypts a received frame. */
const DECRYPT_LINE = "const plain = key && await open(key, o.nonce, o.headerLen, EMPTY, data);";

/** A test build of the page with decryption off: the worker the browser gets hands every
 * received frame to the decoder as it arrived (counted as failed). The page the server serves
 * has no such switch; this rewrites the worker on its way to this browser context only. */
async function withoutDecryption(context) {
  await context.route("**/worker.js", async (route) => {
    const response = await route.fetch();
    const source = await response.text();
    if (!source.includes(DECRYPT_LINE)) throw new Error("worker.js no longer has the decrypt line the test replaces");
    const body = source.replace(DECRYPT_LINE, "st.failed++; controller.enqueue(frame); return; // test build: decryption off");
    await route.fulfill({ response, body });
  });
}

/** A new browser context: its own storage, as a separate browser profile would have. */
export async function newContext(browser, url, viewport = { width: 1280, height: 720 }) {
  // Firefox takes the camera and microphone by its preferences (startFirefox).
  const chromium = browser.browserType().name() === "chromium";
  // A test's self-signed certificate is accepted; nothing else about TLS is relaxed.
  return browser.newContext({
    ...(chromium ? { permissions: ["camera", "microphone"] } : {}), viewport,
    ignoreHTTPSErrors: url.startsWith("https:"),
  });
}

/** The control that opens each side panel. */
const PANEL_TOGGLES = { chat: "#chat-toggle", people: "#people-toggle", e2ee: "#security" };

/** A participant: opens the page (with `query`, such as "&relay=1"), and (unless told to
 * wait) joins `room` as `name`. `context`: a browser context to use (default: a new one);
 * `decrypt: false`: a test build of the page that decrypts nothing. */
export async function participant(browser, url, room, name, { beforeJoin, query = "", context, decrypt = true, viewport } = {}) {
  context ??= await newContext(browser, url, viewport);
  if (!decrypt) await withoutDecryption(context);
  const page = await context.newPage();
  const console = [];
  page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
  await page.goto(`${url}/?room=${encodeURIComponent(room)}${query}`);
  if (beforeJoin) await beforeJoin(page);
  // A link with a token names the person itself (the field is read-only then).
  if (await page.isEditable("#name")) await page.fill("#name", name);
  await page.click("#join");
  /** Opens side panel `panel` ("chat", "people", "e2ee") unless it is open. */
  const open = async (panel) => {
    if (!(await page.isHidden(`#${panel}`))) return;
    // On a phone, People is in the "More" menu.
    if (await page.isHidden(PANEL_TOGGLES[panel])) await page.click("#more > summary");
    await page.click(PANEL_TOGGLES[panel]);
  };
  return {
    name, page, context, console, open,
    /** Opens the "More" menu of the controls unless it is open. */
    more: async () => {
      if (!(await page.$eval("#more", (d) => d.open))) await page.click("#more > summary");
    },
    /** Sends `text` to the chat, as a person does: the chat panel opened, typed, sent. */
    say: async (text) => {
      await open("chat");
      await page.fill("#chat-text", text);
      await page.click("#chat-form button");
    },
    snapshot: () => page.evaluate(() => window.e2ee.snapshot()),
    // caret "initial": Playwright's default hides the caret with a style the page's CSP refuses.
    screenshot: (file) => page.screenshot({ path: join(OUTPUT, file), caret: "initial" }),
    leave: async () => {
      await page.click("#leave");
      await context.close();
    },
  };
}

/** Closes the participants' pages when test `t` ends, passed or not; returns them. */
export function closing(t, ...ps) {
  t.after(() => Promise.all(ps.map((p) => p.context.close().catch(() => {}))));
  return ps;
}

/** The tile on `page` whose label is exactly `name` (a person's camera, not a screen). */
export const tileOf = (page, name) =>
  page.locator(".tile", { has: page.locator(".label", { hasText: new RegExp(`^${name}$`) }) });

/** Polls `check` (async, returns truthy when done) until it holds or `ms` pass. */
export async function until(what, check, ms = 60000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The size `p` decodes `name`'s camera at, once its frames advance. */
export async function decodedSize(p, name) {
  const pick = (s) => s.tiles.find((t) => t.name === name && !t.screen);
  const a = pick(await p.snapshot());
  await new Promise((r) => setTimeout(r, 700));
  const b = pick(await p.snapshot());
  return a && b && b.frames > a.frames && b.height > 0 ? { width: b.width, height: b.height } : null;
}

/** The publisher's camera as it sends it: its scalability mode and top layer's height. */
export async function sending(p) {
  const { outbound } = await p.page.evaluate(() => window.e2ee.debug());
  const video = outbound.filter((r) => r.kind === "video" && r.frameHeight);
  return { modes: video.map((r) => r.scalabilityMode), height: Math.max(0, ...video.map((r) => r.frameHeight)) };
}

/** Until `cam` sends its camera's whole height (Chromium starts with the low layer alone and
 * adds the top one as its estimate of the bandwidth grows, later on a loaded machine): its
 * scalability modes and that height. */
export async function sendingTop(cam) {
  const captured = await until("cam showing its own camera", async () => {
    const own = (await cam.snapshot()).tiles.find((x) => x.name === `${cam.name} (you)` && !x.screen);
    return own?.height;
  });
  return until(`${cam.name} sending its top layer`, async () => {
    const s = await sending(cam);
    return s.height >= captured && s;
  });
}

/** Every participant's snapshot. */
export const snapshots = (ps) => Promise.all(ps.map((p) => p.snapshot()));

/** Until every one of `ps` plays everyone else's video. */
export async function allSeeAll(ps) {
  await until(`${ps.map((p) => p.name).join(", ")} seeing each other`, async () => {
    const ok = await Promise.all(
      ps.map((p) => seesPlaying(p, ps.filter((o) => o !== p).map((o) => o.name))),
    );
    return ok.every(Boolean);
  });
}

/** Until all of `ps` are in one epoch with one safety number and everyone in the roster;
 * resolves with their snapshots. */
export async function sameEpoch(ps) {
  return until("one epoch and safety number", async () => {
    const s = await snapshots(ps);
    const same = s.every(
      (x) => x.epoch !== null && x.epoch === s[0].epoch && x.safetyNumber === s[0].safetyNumber,
    );
    return same && s[0].roster.length === ps.length && s;
  });
}

/** True when `pick(snapshot, name)` finds, on `p`, a tile for each of `names` with a size
 * and video frames advancing over 700 ms. */
async function advancing(p, names, pick) {
  const before = await p.snapshot();
  await new Promise((r) => setTimeout(r, 700));
  const after = await p.snapshot();
  return names.every((o) => {
    const a = pick(after, o);
    const b = pick(before, o);
    return a && b && a.width > 0 && a.height > 0 && a.frames > b.frames;
  });
}

/** True when `p` shows every one of `others` with video frames advancing and a size. */
export const seesPlaying = (p, others) =>
  advancing(p, others, (s, o) => s.tiles.find((t) => t.name === o && !t.screen));

/** True when `p` shows `name`'s screen share, as a screen, with frames advancing. */
export const seesScreen = (p, name) =>
  advancing(p, [name], (s, o) => s.tiles.find((t) => t.name === o && t.screen && !t.hidden));
