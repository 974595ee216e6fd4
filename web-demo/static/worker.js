// The media worker: every encoded frame passes through here. Outgoing frames are SFrame-
// encrypted under this participant's current key (and not sent at all while sending is held
// back); incoming frames are decrypted under their sender's key, or dropped and counted
// (never handed to the decoder) when that fails. Each received track reports which member's
// key opens its frames, so the page names it by the key, not by the server's label.
//
// What each frame is (its header, the key of its KID, its nonce, the sending counter, grace
// times, dropped epochs, the replay window) is decided by the Rust keyring compiled to wasm
// (`FrameKeys`, the code bots and tests run); only AES-GCM runs here, in WebCrypto.
import init, { FrameKeys, OpenStatus, encodeHeader, frameNonce, keyWaitMs, parseHeader } from "./pkg/web_demo_wasm.js";
import { fromHex, importKey, open, seal, toHex } from "./sframe.js";

const MAX_WAITING = 256; // frames waiting for a key at most; beyond, they are dropped at once
const EMPTY = new Uint8Array(0);
const HEAD = 17; // the longest SFrame header: what the keyring reads of a frame

const ready = init();
// A frame whose key has not arrived waits this long, then is dropped (the bots' wait too:
// media_crypto::mls::KEY_WAIT).
let keyWait = 1000;
ready.then(() => (keyWait = keyWaitMs()));
let keys = null; // FrameKeys, from the first epoch's suite on
let group = null; // the MLS group whose keys are held (hex)
const cryptoKeys = new Map(); // `${epoch}:${kid}` -> Promise<CryptoKey>, for the epochs held
let mayShare = true; // false while the page holds our media back (someone unexplained is in the group)
const waiters = new Set(); // frames waiting for keys: resolve functions
const senders = []; // RTCRtpScriptTransformer of outgoing video, for key frame requests
const stats = {
  // Per sender (leaf) of the current group, over the whole visit: only leaves whose keys were
  // installed have an entry, so an attacker's made-up KIDs add nothing.
  perLeaf: {},
  perTrack: {}, // track id -> { kind, leaves: { leaf: frames decrypted }, last: the latest frame's leaf }
  unknownKid: 0, sent: 0, unsent: 0, withheld: 0, malformed: 0, staleKeys: 0,
  stale: 0, // frames under an epoch whose keys were dropped (grace time over)
  retired: 0, // times the group's keys were retired (the group went)
  beforeJoin: 0, // frames sealed before this member joined (keys it never had)
  firstDecrypted: {}, keyframes: 0,
};
const timing = { encrypt: [], decrypt: [] }; // recent [kind, bytes, ms]

function leafStats(leaf) {
  return (stats.perLeaf[leaf] ??= { decrypted: 0, failed: 0, noKey: 0, replayed: 0 });
}

// The leaf of each KID of the epochs held (bounded by the keys held).
let kidLeaf = new Map(); // kid (BigInt) -> leaf

function remember(list, kind, bytes, ms) {
  list.push([kind, bytes, ms]);
  if (list.length > 2000) list.splice(0, list.length - 2000);
}

/** The WebCrypto key of `kid` in `epoch` from `frameKeys`, imported once into `cache`; null
 * when the keyring holds none. */
function importedKey(frameKeys, cache, epoch, kid) {
  const id = `${epoch}:${kid}`;
  let key = cache.get(id);
  if (!key) {
    const raw = frameKeys.aeadKey(epoch, kid);
    if (!raw.length) return null;
    key = importKey(raw);
    cache.set(id, key);
  }
  return key;
}

/** The meeting's key of `kid` in `epoch`. */
const cryptoKey = (epoch, kid) => importedKey(keys, cryptoKeys, epoch, kid);

/** Installs an epoch's keys. Within a group only newer epochs count (the keyring ignores an
 * older or repeated one); keys of another group replace everything at once. */
async function installKeys(epoch) {
  await ready;
  keys ??= new FrameKeys(epoch.suite);
  const g = toHex(epoch.group);
  const installed = keys.install(
    new Uint8Array(epoch.group), BigInt(epoch.epoch), new Uint8Array(epoch.base_key),
    BigInt(epoch.own_leaf ?? -1), new Uint32Array(epoch.members), performance.now(),
  );
  if (!installed) {
    stats.staleKeys++;
    return;
  }
  if (g !== group) {
    stats.perLeaf = {};
    stats.perTrack = {};
  }
  group = g;
  const kids = keys.memberKids(), leaves = keys.memberLeaves();
  kidLeaf = new Map([...kids].map((kid, i) => [kid, leaves[i]]));
  for (const leaf of epoch.members) leafStats(leaf);
  const held = new Set([...keys.epochs()].map(String));
  for (const id of cryptoKeys.keys()) if (!held.has(id.split(":")[0])) cryptoKeys.delete(id);
  for (const resolve of [...waiters]) resolve(true);
  waiters.clear();
}

/** The group is gone: nothing more is sealed under its keys (`keys.seal` fails from now),
 * and frames others sealed under them open only for the grace time. */
function retireKeys() {
  keys?.retire(performance.now());
  stats.retired++;
}

// Key installs (and retirements) run one after another, in the order the page sent them.
let installing = Promise.resolve();
function queueInstall(epochKeys) {
  installing = installing.then(() => installKeys(epochKeys)).catch(() => {});
}
function queueRetire() {
  installing = installing.then(retireKeys).catch(() => {});
}

/** Resolves true at the next install, false after `keyWait` ms (or at once when too many
 * frames wait already). */
function waitForKeys() {
  if (waiters.size >= MAX_WAITING) return Promise.resolve(false);
  return new Promise((resolve) => {
    waiters.add(resolve);
    setTimeout(() => {
      if (waiters.delete(resolve)) resolve(false);
    }, keyWait);
  });
}

async function encryptFrame(frame, controller, kind) {
  if (!mayShare) {
    stats.withheld++; // someone unexplained is in the group: nothing leaves at all
    return;
  }
  let s;
  try {
    s = keys.seal();
  } catch {
    stats.unsent++; // no key yet: nothing leaves in the clear
    return;
  }
  try {
    const key = await cryptoKey(s.epoch, s.kid);
    if (!key) {
      stats.unsent++;
      return;
    }
    const plain = new Uint8Array(frame.data);
    const t0 = performance.now();
    const out = await seal(key, s.nonce, s.header, EMPTY, plain);
    remember(timing.encrypt, kind, plain.length, performance.now() - t0);
    frame.data = out.buffer;
    stats.sent++;
    controller.enqueue(frame);
  } finally {
    s.free();
  }
}

/** The keyring's reading of a received frame. */
function read(data) {
  return keys
    ? keys.open(data.subarray(0, HEAD), data.length, performance.now())
    : { status: OpenStatus.NoKeyYet, kid: 0n, free() {} };
}

async function decryptFrame(frame, controller, kind, counted) {
  const data = new Uint8Array(frame.data);
  let o = read(data);
  if (o.status === OpenStatus.NoKeyYet && (await waitForKeys())) {
    o.free();
    o = read(data);
  }
  try {
    await decryptRead(o, data, frame, controller, kind, counted);
  } finally {
    o.free();
  }
}

async function decryptRead(o, data, frame, controller, kind, counted) {
  const leaf = kidLeaf.get(o.kid);
  switch (o.status) {
    case OpenStatus.Ready:
      break;
    case OpenStatus.Malformed:
      stats.malformed++;
      return;
    case OpenStatus.NoKeyYet:
    case OpenStatus.Stale:
      if (o.status === OpenStatus.Stale) stats.stale++;
      // Counted for its sender if the KID is one of the group's, else apart.
      if (leaf !== undefined) leafStats(leaf).noKey++;
      else stats.unknownKid++;
      return;
    case OpenStatus.BeforeJoin:
      stats.beforeJoin++;
      return;
    case OpenStatus.Replayed:
      if (leaf !== undefined) leafStats(leaf).replayed++;
      return;
    case OpenStatus.TooShort:
      if (leaf !== undefined) leafStats(leaf).failed++;
      else stats.malformed++;
      return;
    default:
      stats.unknownKid++;
      return;
  }
  const st = leafStats(o.sender);
  const key = await cryptoKey(o.epoch, o.kid);
  const t0 = performance.now();
  const plain = key && await open(key, o.nonce, o.headerLen, EMPTY, data);
  if (!plain) {
    st.failed++;
    return;
  }
  if (!keys.opened(o)) {
    st.replayed++; // another frame with its counter came first
    return;
  }
  remember(timing.decrypt, kind, plain.length, performance.now() - t0);
  st.decrypted++;
  const track = countedAs(counted, o.sender);
  if (track) {
    const t = (stats.perTrack[track] ??= { kind, leaves: {} });
    t.leaves[o.sender] = (t.leaves[o.sender] ?? 0) + 1;
    // Whose key opened its latest frame: an audio section carries whoever speaks, and the
    // page shows who that is at once.
    if (t.last !== o.sender) {
      t.last = o.sender;
      postSoon();
    }
  }
  stats.firstDecrypted[kind] ??= performance.timeOrigin + performance.now();
  frame.data = plain.buffer;
  controller.enqueue(frame);
}

// The fallback's received tracks by slot: what their frames are counted under now.
const slots = new Map();

/** When a received track's frames are counted under a new id (the SFU put another stream in
 * its section), the frames of whoever its last id's latest frame came from are not counted for
 * this long: the last stream's frames still on their way (a late packet, a repaired one) must
 * not name the new one's tile. Anyone else's count at once, so a server that moves streams
 * around cannot keep a misnamed one from being flagged. */
const SETTLE_MS = 250;

/** What a receiver's frames are counted under from now on: `track`, taking over from
 * `previous` (whose entry goes once its last frames are in). */
function counting(track, previous) {
  const was = previous ? stats.perTrack[previous] : undefined;
  if (previous) setTimeout(() => delete stats.perTrack[previous], 4 * SETTLE_MS);
  return { track, ignore: was?.last, until: performance.now() + SETTLE_MS };
}

/** The id a frame opened by `sender`'s key counts under, if any. */
function countedAs(counted, sender) {
  if (!counted?.track) return null;
  const settling = sender === counted.ignore && performance.now() < counted.until;
  return settling ? null : counted.track;
}

function attach(readable, writable, { side, kind, track, previous, slot }, transformer) {
  const counted = counting(track, previous);
  if (slot !== undefined) slots.set(slot, counted);
  const step = side === "send"
    ? (frame, c) => encryptFrame(frame, c, kind)
    : (frame, c) => decryptFrame(frame, c, kind, counted);
  readable
    .pipeThrough(new TransformStream({ transform: step }))
    .pipeTo(writable)
    .catch(() => {});
  if (transformer && side === "send" && kind === "video") senders.push(transformer);
}

// RTCRtpScriptTransform
self.onrtctransform = (event) => {
  const t = event.transformer;
  attach(t.readable, t.writable, t.options, t);
};

function summary(list) {
  const by = {};
  for (const [kind, bytes, ms] of list) (by[kind] ??= []).push(ms);
  const out = {};
  for (const [kind, v] of Object.entries(by)) {
    v.sort((a, b) => a - b);
    out[kind] = { n: v.length, p50_ms: v[Math.floor(v.length / 2)], p95_ms: v[Math.floor(v.length * 0.95)] };
  }
  return out;
}

function postStats() {
  self.postMessage({
    type: "stats",
    stats,
    timing: { encrypt: summary(timing.encrypt), decrypt: summary(timing.decrypt) },
  });
}
setInterval(postStats, 500);

/** The stats, within 50 ms (and once for what changes meanwhile). */
let soon = null;
function postSoon() {
  soon ??= setTimeout(() => {
    soon = null;
    postStats();
  }, 50);
}

// RFC 9605 vectors through the same code frames use: headers and nonces from the Rust code,
// AES-GCM from WebCrypto. Keys and salts were derived by the wasm module on the page (the
// same derivation meetings use).
async function selfTest({ headers, frames }) {
  await ready;
  const failures = [];
  let passed = 0;
  for (const v of headers) {
    const kid = BigInt(v.kid), ctr = BigInt(v.ctr);
    const enc = toHex(encodeHeader(kid, ctr));
    const [pkid, pctr] = parseHeader(fromHex(v.encoded));
    if (enc === v.encoded && pkid === kid && pctr === ctr) passed++;
    else failures.push(`header kid=${v.kid} ctr=${v.ctr}: ${enc}`);
  }
  for (const v of frames) {
    const kid = BigInt(v.kid), ctr = BigInt(v.ctr);
    const key = await importKey(v.derived_key);
    const nonce = frameNonce(v.cipher_suite, kid, ctr, fromHex(v.base_key));
    const sealed = await seal(key, nonce, encodeHeader(kid, ctr), fromHex(v.metadata), fromHex(v.pt));
    const [, , headerLen] = parseHeader(sealed);
    const opened = await open(key, nonce, Number(headerLen), fromHex(v.metadata), sealed);
    if (toHex(sealed) === v.ct && opened && toHex(opened) === v.pt) passed++;
    else failures.push(`sframe suite ${v.cipher_suite} kid=${v.kid} ctr=${v.ctr}`);
  }
  return { passed, failed: failures.length, failures };
}

// Per-frame cost in this worker, for frames of these sizes: the mean over `n` frames one after
// another (the page's timers are coarse, 100 µs, without cross-origin isolation, so single
// frames are not timed). Side by side: the whole per-frame path (the keyring's decisions in
// wasm, then WebCrypto) and WebCrypto's AES-GCM alone on the same frames, its floor.
async function bench({ sizes, n }) {
  await ready;
  const bk = new FrameKeys(4);
  const benchKeys = new Map();
  const cryptoKeyOf = (epoch, kid) => importedKey(bk, benchKeys, epoch, kid);
  bk.install(new Uint8Array([1]), 1n, crypto.getRandomValues(new Uint8Array(16)), 0n, new Uint32Array([0]), 0);
  const results = [];
  for (const size of sizes) {
    const plain = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
    const frames = [];
    let t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = bk.seal();
      const key = await cryptoKeyOf(s.epoch, s.kid);
      frames.push(await seal(key, s.nonce, s.header, EMPTY, plain));
      s.free();
    }
    const encrypt = ((performance.now() - t0) * 1000) / n;
    t0 = performance.now();
    for (const f of frames) {
      const o = bk.open(f.subarray(0, HEAD), f.length, performance.now());
      const key = await cryptoKeyOf(o.epoch, o.kid);
      if (!(await open(key, o.nonce, o.headerLen, EMPTY, f)) || !bk.opened(o)) throw new Error("bench frame did not open");
      o.free();
    }
    const decrypt = ((performance.now() - t0) * 1000) / n;
    // WebCrypto alone, with header and nonce made once.
    const s = bk.seal();
    const [key, nonce, header] = [await cryptoKeyOf(s.epoch, s.kid), s.nonce, s.header];
    s.free();
    const sealed = [];
    t0 = performance.now();
    for (let i = 0; i < n; i++) sealed.push(await seal(key, nonce, header, EMPTY, plain));
    const encryptFloor = ((performance.now() - t0) * 1000) / n;
    t0 = performance.now();
    for (const f of sealed) await open(key, nonce, header.length, EMPTY, f);
    const decryptFloor = ((performance.now() - t0) * 1000) / n;
    results.push({
      bytes: size, encrypt_us_mean: encrypt, decrypt_us_mean: decrypt,
      webcrypto_only_encrypt_us_mean: encryptFloor, webcrypto_only_decrypt_us_mean: decryptFloor,
    });
  }
  bk.free();
  return results;
}

self.onmessage = async ({ data }) => {
  switch (data.type) {
    case "keys":
      queueInstall(data.keys);
      break;
    case "retire":
      queueRetire();
      break;
    case "sending":
      mayShare = data.on;
      break;
    case "streams": // createEncodedStreams fallback
      attach(data.readable, data.writable, data, null);
      break;
    case "retrack": // the fallback's receiver got a track again
      if (slots.has(data.slot)) Object.assign(slots.get(data.slot), counting(data.track, data.previous));
      break;
    case "keyframe":
      // RTCRtpScriptTransformer.generateKeyFrame (the createEncodedStreams fallback has no
      // such call; there the SFU's PLI for a new subscriber does the job).
      for (const t of senders) {
        if (!t.generateKeyFrame) {
          stats.keyframeError = "generateKeyFrame is not supported";
          continue;
        }
        t.generateKeyFrame().then(
          () => stats.keyframes++,
          (e) => (stats.keyframeError = String(e)),
        );
      }
      break;
    case "selftest":
      self.postMessage({ type: "selftest", id: data.id, result: await selfTest(data) });
      break;
    case "bench":
      self.postMessage({ type: "bench", id: data.id, result: await bench(data) });
      break;
  }
};
