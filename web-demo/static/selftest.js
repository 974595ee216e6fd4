// The SFrame self-test: the RFC 9605 vectors through the worker's own code, in this browser.
import { loadWasm } from "./signaling.js";
import { deriveSframeKey } from "./pkg/web_demo_wasm.js";
import { fromHex, toHex } from "./sframe.js";
import { $, state } from "./state.js";

/** Vectors as text: KIDs and counters exceed 2^53, so they are read as strings. */
export function parseVectors(text) {
  return JSON.parse(text.replace(/"(kid|ctr)":\s*(\d+)/g, '"$1":"$2"'));
}

export async function runSelfTest(vectors) {
  await loadWasm();
  const frames = [];
  let derivation = 0;
  const failures = [];
  for (const v of vectors.sframe.filter((v) => v.cipher_suite === 4 || v.cipher_suite === 5)) {
    const d = JSON.parse(deriveSframeKey(v.cipher_suite, BigInt(v.kid), fromHex(v.base_key)));
    if (toHex(d.key) === v.sframe_key && toHex(d.salt) === v.sframe_salt) derivation++;
    else failures.push(`derivation suite ${v.cipher_suite}`);
    frames.push({ ...v, derived_key: d.key, derived_salt: d.salt });
  }
  const r = await (state.media?.e2ee ?? new (await import("./e2ee.js")).E2ee()).call("selftest", {
    headers: vectors.header, frames,
  });
  return { passed: r.passed + derivation, failed: r.failed + failures.length, failures: [...failures, ...r.failures] };
}

export async function selfTest() {
  const r = await fetch("pkg/rfc9605.json");
  if (!r.ok) return;
  state.selftest = await runSelfTest(parseVectors(await r.text()));
  $("selftest").textContent = state.selftest.failed === 0
    ? `SFrame self-test: all ${state.selftest.passed} RFC 9605 checks pass in this browser.`
    : `SFrame self-test FAILED: ${state.selftest.failures.join("; ")}`;
}
