// SFrame (RFC 9605) frames with WebCrypto AES-GCM: the header codec (§4.3) and the per-frame
// encryption (§4.4.3) and decryption (§4.4.4) for the AES-GCM suites. Keys and salts come
// from the wasm module (§4.4.2, derived in Rust). KIDs and counters are BigInts: both go up
// to 2^64 - 1.

const TAG_BYTES = 16; // the GCM suites with full tags: 0x0004 and 0x0005
export const GCM_SUITES = new Map([
  [4, { keyBytes: 16, name: "AES_128_GCM_SHA256_128" }],
  [5, { keyBytes: 32, name: "AES_256_GCM_SHA512_128" }],
]);

export class SframeError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind; // "header" | "auth" | "no_key" | "replay"
  }
}

/** Bytes from hex text (test vectors). */
export function fromHex(s) {
  return new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
}

/** Hex text of bytes. */
export function toHex(bytes) {
  return [...bytes].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function minimalBytes(v) {
  let n = 0;
  for (let x = v; x > 0n; x >>= 8n) n++;
  return Math.max(n, 1);
}

function writeBig(out, offset, v, n) {
  for (let i = n - 1; i >= 0; i--) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function readBig(bytes, offset, n) {
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[offset + i]);
  return v;
}

/** The header for `kid` and `ctr`, in its one minimal encoding. */
export function encodeHeader(kid, ctr) {
  kid = BigInt(kid);
  ctr = BigInt(ctr);
  const kidLen = kid < 8n ? 0 : minimalBytes(kid);
  const ctrLen = ctr < 8n ? 0 : minimalBytes(ctr);
  const out = new Uint8Array(1 + kidLen + ctrLen);
  let first = 0;
  first |= kidLen ? 0x80 | ((kidLen - 1) << 4) : Number(kid) << 4;
  first |= ctrLen ? 0x08 | (ctrLen - 1) : Number(ctr);
  out[0] = first;
  if (kidLen) writeBig(out, 1, kid, kidLen);
  if (ctrLen) writeBig(out, 1 + kidLen, ctr, ctrLen);
  return out;
}

/** `{kid, ctr, length}` of the header at the start of `bytes`; refuses truncated and
 * non-minimal headers (as the Rust codec does). */
export function parseHeader(bytes) {
  if (bytes.length < 1) throw new SframeError("header", "empty frame");
  const first = bytes[0];
  let offset = 1;
  let kid, ctr;
  if (first & 0x80) {
    const n = ((first >> 4) & 0x07) + 1;
    if (bytes.length < offset + n) throw new SframeError("header", "truncated KID");
    kid = readBig(bytes, offset, n);
    if (kid < 8n || minimalBytes(kid) !== n) throw new SframeError("header", "non-minimal KID");
    offset += n;
  } else {
    kid = BigInt((first >> 4) & 0x07);
  }
  if (first & 0x08) {
    const n = (first & 0x07) + 1;
    if (bytes.length < offset + n) throw new SframeError("header", "truncated CTR");
    ctr = readBig(bytes, offset, n);
    if (ctr < 8n || minimalBytes(ctr) !== n) throw new SframeError("header", "non-minimal CTR");
    offset += n;
  } else {
    ctr = BigInt(first & 0x07);
  }
  return { kid, ctr, length: offset };
}

/** nonce = salt XOR CTR (big-endian, right-aligned). */
export function nonce(salt, ctr) {
  const iv = new Uint8Array(salt);
  let v = BigInt(ctr);
  for (let i = iv.length - 1; i >= 0 && v > 0n; i--) {
    iv[i] ^= Number(v & 0xffn);
    v >>= 8n;
  }
  return iv;
}

/** A non-extractable AES-GCM key from the raw sframe_key. */
export function importKey(raw) {
  return crypto.subtle.importKey("raw", new Uint8Array(raw), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** header || AES-GCM(key, salt ^ ctr, aad = header || metadata, plaintext). */
export async function seal(key, salt, kid, ctr, metadata, plaintext) {
  const header = encodeHeader(kid, ctr);
  const aad = metadata.length ? concat(header, metadata) : header;
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce(salt, ctr), additionalData: aad, tagLength: TAG_BYTES * 8 },
    key,
    plaintext,
  );
  return concat(header, new Uint8Array(sealed));
}

/** Opens a frame whose header was parsed as `header` under `key` and `salt`. */
export async function open(key, salt, header, metadata, frame) {
  if (frame.length < header.length + TAG_BYTES) {
    throw new SframeError("auth", "frame shorter than its tag");
  }
  const headerBytes = frame.subarray(0, header.length);
  const aad = metadata.length ? concat(headerBytes, metadata) : headerBytes;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce(salt, header.ctr), additionalData: aad, tagLength: TAG_BYTES * 8 },
      key,
      frame.subarray(header.length),
    );
    return new Uint8Array(plain);
  } catch {
    throw new SframeError("auth", "authentication failed");
  }
}

/** Which counters of one KID were seen: the highest, and a window of `size` below it. */
export class ReplayWindow {
  constructor(size = 1024) {
    this.size = BigInt(size);
    this.highest = -1n;
    this.seen = new Set();
  }
  /** True if `ctr` has not been seen and is not too old. */
  fresh(ctr) {
    if (this.highest >= 0n && ctr + this.size <= this.highest) return false;
    return !this.seen.has(ctr);
  }
  /** Records `ctr` (after its frame authenticated: a forgery must not move the window). */
  record(ctr) {
    this.seen.add(ctr);
    if (ctr > this.highest) {
      this.highest = ctr;
      if (this.seen.size > Number(this.size) * 2) {
        for (const c of this.seen) if (c + this.size <= this.highest) this.seen.delete(c);
      }
    }
  }
}
