// The media worker: every encoded frame passes through here. Outgoing frames are SFrame-
// encrypted under this participant's current key (and not sent at all while sending is held
// back); incoming frames are decrypted under their sender's key, or dropped and counted
// (never handed to the decoder) when that fails. Each received track reports which member's
// key opens its frames, so the page names it by the key, not by the server's label.
import {
  encodeHeader, fromHex, parseHeader, seal, open, importKey, toHex, ReplayWindow,
} from "./sframe.js";

const GRACE_MS = 5000; // a previous epoch's keys still decrypt this long (as in media-crypto)
const KEY_WAIT_MS = 1000; // a frame whose key has not arrived waits this long, then is dropped
const MAX_WAITING = 256; // frames waiting for a key at most; beyond, they are dropped at once
const EMPTY = new Uint8Array(0);

const keys = new Map(); // kid (BigInt) -> { key, salt, leaf, epoch, expires, replay }
let group = null; // the MLS group whose keys are held (hex)
let newestEpoch = -1;
let sending = null; // { kid, key, salt, ctr }
let mayShare = true; // false while the page holds our media back (someone unexplained is in the group)
const waiters = new Set(); // frames waiting for a key: { kid, resolve }
const senders = []; // RTCRtpScriptTransformer of outgoing video, for key frame requests
const stats = {
  // Per sender (leaf) of the current group, over the whole visit: only leaves whose keys were
  // installed have an entry, so an attacker's made-up KIDs add nothing.
  perLeaf: {},
  perTrack: {}, // track id -> { kind, leaves: { leaf: frames decrypted } }
  unknownKid: 0, sent: 0, unsent: 0, withheld: 0, malformed: 0, staleKeys: 0,
  firstDecrypted: {}, keyframes: 0,
};
const timing = { encrypt: [], decrypt: [] }; // recent [kind, bytes, ms]

function leafStats(leaf) {
  return (stats.perLeaf[leaf] ??= { decrypted: 0, failed: 0, noKey: 0, replayed: 0 });
}

// The leaf each KID of the current group was last installed for (bounded by the keys held).
const kidLeaf = new Map(); // kid (BigInt) -> leaf

function remember(list, kind, bytes, ms) {
  list.push([kind, bytes, ms]);
  if (list.length > 2000) list.splice(0, list.length - 2000);
}

/** Installs an epoch's keys. Within a group only newer epochs count (an older or repeated one
 * is ignored); keys of another group replace everything at once (their KIDs may collide). */
async function installKeys(epochKeys) {
  if (epochKeys.group === group && epochKeys.epoch <= newestEpoch) {
    stats.staleKeys++;
    return;
  }
  const fresh = new Map();
  for (const s of epochKeys.senders) {
    fresh.set(BigInt(s.kid), {
      key: await importKey(s.key),
      salt: new Uint8Array(s.salt),
      leaf: s.leaf,
      epoch: epochKeys.epoch,
      expires: Infinity,
      replay: new ReplayWindow(1024),
    });
  }
  const now = performance.now();
  if (epochKeys.group !== group) {
    keys.clear();
    kidLeaf.clear();
    stats.perLeaf = {};
    stats.perTrack = {};
  }
  for (const s of epochKeys.senders) {
    kidLeaf.set(BigInt(s.kid), s.leaf);
    leafStats(s.leaf);
  }
  for (const k of keys.values()) if (k.expires === Infinity) k.expires = now + GRACE_MS;
  for (const [kid, k] of fresh) keys.set(kid, k);
  group = epochKeys.group;
  newestEpoch = epochKeys.epoch;
  if (epochKeys.own_kid !== null && epochKeys.own_kid !== undefined) {
    const kid = BigInt(epochKeys.own_kid);
    const k = fresh.get(kid);
    sending = { kid, key: k.key, salt: k.salt, ctr: 0n };
  } else {
    sending = null;
  }
  for (const w of [...waiters]) {
    if (keys.has(w.kid)) {
      waiters.delete(w);
      w.resolve(keys.get(w.kid));
    }
  }
}

// Key installs run one after another, in the order the page sent them.
let installing = Promise.resolve();
function queueInstall(epochKeys) {
  installing = installing.then(() => installKeys(epochKeys)).catch(() => {});
}

setInterval(() => {
  const now = performance.now();
  for (const [kid, k] of keys) if (k.expires <= now) keys.delete(kid);
}, 1000);

function waitForKey(kid) {
  if (waiters.size >= MAX_WAITING) return Promise.resolve(null);
  return new Promise((resolve) => {
    const w = { kid, resolve };
    waiters.add(w);
    setTimeout(() => {
      if (waiters.delete(w)) resolve(null);
    }, KEY_WAIT_MS);
  });
}

async function encryptFrame(frame, controller, kind) {
  const s = sending;
  if (!s) {
    stats.unsent++; // no key yet: nothing leaves in the clear
    return;
  }
  if (!mayShare) {
    stats.withheld++; // someone unexplained is in the group: nothing leaves at all
    return;
  }
  const ctr = s.ctr;
  s.ctr += 1n;
  const plain = new Uint8Array(frame.data);
  const t0 = performance.now();
  const out = await seal(s.key, s.salt, s.kid, ctr, EMPTY, plain);
  remember(timing.encrypt, kind, plain.length, performance.now() - t0);
  frame.data = out.buffer;
  stats.sent++;
  controller.enqueue(frame);
}

async function decryptFrame(frame, controller, kind, track) {
  const data = new Uint8Array(frame.data);
  let header;
  try {
    header = parseHeader(data);
  } catch {
    stats.malformed++;
    return;
  }
  const k = keys.get(header.kid) ?? (await waitForKey(header.kid));
  if (!k) {
    // No key: counted for its sender if the KID was ever one of the group's (its key may
    // have just expired), else apart.
    const leaf = kidLeaf.get(header.kid);
    if (leaf !== undefined) leafStats(leaf).noKey++;
    else stats.unknownKid++;
    return;
  }
  const st = leafStats(k.leaf);
  if (!k.replay.fresh(header.ctr)) {
    st.replayed++;
    return;
  }
  const t0 = performance.now();
  let plain;
  try {
    plain = await open(k.key, k.salt, header, EMPTY, data);
  } catch {
    st.failed++;
    return;
  }
  remember(timing.decrypt, kind, plain.length, performance.now() - t0);
  k.replay.record(header.ctr);
  st.decrypted++;
  if (track) {
    const t = (stats.perTrack[track] ??= { kind, leaves: {} });
    t.leaves[k.leaf] = (t.leaves[k.leaf] ?? 0) + 1;
  }
  stats.firstDecrypted[kind] ??= performance.timeOrigin + performance.now();
  frame.data = plain.buffer;
  controller.enqueue(frame);
}

function attach(readable, writable, { side, kind, track }, transformer) {
  const step = side === "send"
    ? (frame, c) => encryptFrame(frame, c, kind)
    : (frame, c) => decryptFrame(frame, c, kind, track);
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

setInterval(() => {
  self.postMessage({
    type: "stats",
    stats,
    timing: { encrypt: summary(timing.encrypt), decrypt: summary(timing.decrypt) },
  });
}, 500);

// RFC 9605 vectors through the same functions frames use. Keys and salts were derived by the
// wasm module on the page (the same derivation meetings use).
async function selfTest({ headers, frames }) {
  const failures = [];
  let passed = 0;
  for (const v of headers) {
    const kid = BigInt(v.kid), ctr = BigInt(v.ctr);
    const enc = toHex(encodeHeader(kid, ctr));
    const parsed = parseHeader(fromHex(v.encoded));
    if (enc === v.encoded && parsed.kid === kid && parsed.ctr === ctr) passed++;
    else failures.push(`header kid=${v.kid} ctr=${v.ctr}: ${enc}`);
  }
  for (const v of frames) {
    const key = await importKey(v.derived_key);
    const salt = new Uint8Array(v.derived_salt);
    const sealed = await seal(key, salt, BigInt(v.kid), BigInt(v.ctr), fromHex(v.metadata), fromHex(v.pt));
    const opened = await open(key, salt, parseHeader(sealed), fromHex(v.metadata), sealed);
    if (toHex(sealed) === v.ct && toHex(opened) === v.pt) passed++;
    else failures.push(`sframe suite ${v.cipher_suite} kid=${v.kid} ctr=${v.ctr}`);
  }
  return { passed, failed: failures.length, failures };
}

// Per-frame cost of seal and open for frames of these sizes, in this worker: the mean over
// `n` frames one after another (the page's timers are coarse, 100 µs, without cross-origin
// isolation, so single frames are not timed).
async function bench({ sizes, n }) {
  const key = await importKey(crypto.getRandomValues(new Uint8Array(16)));
  const salt = crypto.getRandomValues(new Uint8Array(12));
  const results = [];
  for (const size of sizes) {
    const plain = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
    const frames = [];
    let t0 = performance.now();
    for (let i = 0; i < n; i++) frames.push(await seal(key, salt, 1n, BigInt(i), EMPTY, plain));
    const encrypt = ((performance.now() - t0) * 1000) / n;
    t0 = performance.now();
    for (const f of frames) await open(key, salt, parseHeader(f), EMPTY, f);
    const decrypt = ((performance.now() - t0) * 1000) / n;
    results.push({ bytes: size, encrypt_us_mean: encrypt, decrypt_us_mean: decrypt });
  }
  return results;
}

self.onmessage = async ({ data }) => {
  switch (data.type) {
    case "keys":
      queueInstall(data.keys);
      break;
    case "sending":
      mayShare = data.on;
      break;
    case "streams": // createEncodedStreams fallback
      attach(data.readable, data.writable, data, null);
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
