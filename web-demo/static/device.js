// This browser's device identity and memory, kept in IndexedDB (this origin only):
// - a device signature key per open tab: the key in this device's MLS credential, the same on
//   every visit, so others recognise the device (trust on first use) and can compare its
//   fingerprint. Tabs claim a slot with the Web Locks API; a reload claims the same slot again.
// - the trust store: one record per identity (the device keys seen for it, which the user
//   accepted, which were verified), made and merged by the wasm module. Each write merges the
//   record with what is stored in one transaction, so two tabs writing at once lose nothing,
//   and tells the other tabs (BroadcastChannel), which take the record in.
import { mergeTrustRecord } from "./pkg/web_demo_wasm.js";

const DB = "e2ee-sfu";
const SLOTS = 16;
const tabs = "BroadcastChannel" in self ? new BroadcastChannel("e2ee-sfu-trust") : null;

function request(r) {
  return new Promise((ok, fail) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}

let db = null;
function open() {
  db ??= (async () => {
    const r = indexedDB.open(DB, 2);
    r.onupgradeneeded = ({ oldVersion }) => {
      const db = r.result;
      if (oldVersion < 1) db.createObjectStore("device-keys");
      // Version 1 kept the whole store as one value ("trust"/"store"), which a second tab's
      // save overwrote: from 2 on, a record per identity.
      if (oldVersion >= 1) {
        const old = r.transaction.objectStore("trust").get("store");
        old.onsuccess = () => {
          legacy = old.result ?? null;
          db.deleteObjectStore("trust");
        };
      }
      db.createObjectStore("trust-identities");
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

let legacy = null; // a version-1 store met while upgrading, taken in at the next load

/** The trust store kept from earlier visits: JSON of identity -> devices ("" if none). */
export async function loadTrust() {
  const tx = (await open()).transaction("trust-identities", "readonly");
  const store = tx.objectStore("trust-identities");
  const [identities, records] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
  const all = Object.fromEntries(identities.map((identity, i) => [identity, JSON.parse(records[i])]));
  if (legacy) {
    // Whatever version 1 kept is merged in by the next save of each identity.
    const old = JSON.parse(legacy).identities ?? {};
    legacy = null;
    await saveTrust({ put: old, delete: [] });
    for (const [identity, devices] of Object.entries(old)) {
      all[identity] = JSON.parse(mergeTrustRecord(JSON.stringify(all[identity] ?? []), JSON.stringify(devices)));
    }
  }
  return Object.keys(all).length ? JSON.stringify(all) : "";
}

/** Writes the trust store's `changes` ({put: {identity: devices}, delete: [identity]}): each
 * record merged with the stored one in one transaction; then tells the other tabs. */
export async function saveTrust(changes) {
  const tx = (await open()).transaction("trust-identities", "readwrite");
  const done = new Promise((ok, fail) => {
    tx.oncomplete = ok;
    tx.onerror = tx.onabort = () => fail(tx.error);
  });
  const store = tx.objectStore("trust-identities");
  const written = {};
  await Promise.all(Object.entries(changes.put).map(async ([identity, devices]) => {
    const stored = await request(store.get(identity));
    const merged = mergeTrustRecord(stored ?? "", JSON.stringify(devices));
    written[identity] = JSON.parse(merged);
    await request(store.put(merged, identity));
  }));
  for (const identity of changes.delete) store.delete(identity);
  await done;
  if (Object.keys(written).length) tabs?.postMessage(JSON.stringify(written));
}

/** Calls `onrecords` (JSON of identity -> devices) with what another tab wrote. */
export function onOtherTabs(onrecords) {
  if (tabs) tabs.onmessage = ({ data }) => onrecords(data);
}
