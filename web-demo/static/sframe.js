// The cipher step of SFrame (RFC 9605 §4.4.3, §4.4.4) in WebCrypto, for the AES-GCM suites.
// Everything else about a frame (the header, which key, the nonce, counters, the replay
// window) is decided by the Rust code compiled to wasm (web-demo/wasm, `FrameKeys`), the same
// code bots and tests run; this file only encrypts and decrypts with what it is given.

const TAG_BITS = 128; // the GCM suites with full tags: 0x0004 and 0x0005
export const TAG_BYTES = TAG_BITS / 8;

/** Bytes from hex text (test vectors). */
export function fromHex(s) {
  return new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
}

/** Hex text of bytes. */
export function toHex(bytes) {
  return [...bytes].map((x) => x.toString(16).padStart(2, "0")).join("");
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

/** header || AES-GCM(key, nonce, aad = header || metadata, plaintext). */
export async function seal(key, nonce, header, metadata, plaintext) {
  const aad = metadata.length ? concat(header, metadata) : header;
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: TAG_BITS },
    key,
    plaintext,
  );
  return concat(header, new Uint8Array(sealed));
}

/** The plaintext of `frame`, whose header is its first `headerLen` bytes; `null` when it does
 * not authenticate. */
export async function open(key, nonce, headerLen, metadata, frame) {
  const header = frame.subarray(0, headerLen);
  const aad = metadata.length ? concat(header, metadata) : header;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: TAG_BITS },
      key,
      frame.subarray(headerLen),
    );
    return new Uint8Array(plain);
  } catch {
    return null;
  }
}
