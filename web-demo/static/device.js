// This browser's device identity and memory, kept in IndexedDB (this origin only):
// - a device signature key per open tab: the key in this device's MLS credential, the same on
//   every visit, so others recognise the device (trust on first use) and can compare its
//   fingerprint. Tabs claim a slot with the Web Locks API; a reload claims the same slot again.
// - the trust store: the device keys seen per identity, and which were verified (JSON, made
//   and read by the wasm module).
const DB = "e2ee-sfu";
const SLOTS = 16;

function request(r) {
  return new Promise((ok, fail) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}

let db = null;
function open() {
  db ??= (async () => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore("device-keys");
      r.result.createObjectStore("trust");
    };
    return request(r);
  })();
  return db;
}

async function get(store, key) {
  const tx = (await open()).transaction(store, "readonly");
  return request(tx.objectStore(store).get(key));
}

async function put(store, key, value) {
  const tx = (await open()).transaction(store, "readwrite");
  await request(tx.objectStore(store).put(value, key));
}

/** Holds the lock of `slot` for as long as this page lives; false if another tab keeps it.
 * A moment's wait lets a reloaded page take back the slot its previous self just released. */
function claim(slot) {
  return new Promise((ok) => {
    navigator.locks
      .request(`e2ee-sfu-device-${slot}`, { signal: AbortSignal.timeout(400) }, () => {
        ok(true);
        return new Promise(() => {}); // released when the page goes
      })
      .catch(() => ok(false));
  });
}

let mine = null;
/** This tab's device key (bytes): the one its slot holds, or a new one from `generate()`,
 * stored for next time. */
export function deviceKey(generate) {
  mine ??= (async () => {
    for (let slot = 0; slot < SLOTS; slot++) {
      if (!(await claim(slot))) continue;
      let key = await get("device-keys", slot);
      if (!(key instanceof Uint8Array) || key.length === 0) {
        key = generate();
        await put("device-keys", slot, key);
      }
      return { slot, key };
    }
    // Every slot taken (many tabs): this tab's key lasts for this visit only.
    return { slot: null, key: generate() };
  })();
  return mine;
}

/** The trust store kept from earlier visits (JSON text; "" if none). */
export async function loadTrust() {
  return (await get("trust", "store")) ?? "";
}

/** Keeps the trust store for the next visit. */
export function saveTrust(json) {
  return put("trust", "store", json);
}
