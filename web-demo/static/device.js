// This browser's device identity and memory, kept in IndexedDB (this origin only):
// - a device signature key per open tab: the key in this device's MLS credential, the same on
//   every visit, so others recognise the device (trust on first use) and can compare its
//   fingerprint. Tabs claim a slot with the Web Locks API; a reload claims the same slot again.
// - the trust store: one record per identity (the device keys seen for it, which the user
//   accepted, which were verified), made and merged by the wasm module. Each write merges the
//   record with what is stored in one transaction, so two tabs writing at once lose nothing,
//   and tells the other tabs (BroadcastChannel), which take the record in.
import { mergeTrustRecord, trustRecordForgettable } from "./pkg/web_demo_wasm.js";

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
      const identities = db.createObjectStore("trust-identities");
      // Version 1 kept the whole store as one value ("trust"/"store"), which a second tab's
      // save overwrote: from 2 on, a record per identity, moved over in this same upgrade.
      if (oldVersion >= 1) {
        const old = r.transaction.objectStore("trust").get("store");
        old.onsuccess = () => {
          let records = {};
          try {
            records = JSON.parse(old.result ?? "{}").identities ?? {};
          } catch {}
          for (const [identity, devices] of Object.entries(records)) {
            identities.put(JSON.stringify(devices), identity);
          }
          db.deleteObjectStore("trust");
        };
      }
    };
    // A tab still on the old page holds the database open: say so instead of waiting.
    r.onblocked = () => console.warn("another tab of this site runs an older page: close it");
    const db = await request(r);
    // A newer page in another tab asks to upgrade: let it.
    db.onversionchange = () => db.close();
    return db;
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

/** The trust store kept from earlier visits: JSON of identity -> devices ("" if none). A
 * record that does not parse is passed on as it is (wasm leaves it out). */
export async function loadTrust() {
  const tx = (await open()).transaction("trust-identities", "readonly");
  const store = tx.objectStore("trust-identities");
  const [identities, records] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
  if (identities.length === 0) return "";
  const entries = identities.map((identity, i) => {
    let devices = records[i];
    try {
      devices = JSON.parse(records[i]);
    } catch {}
    return [identity, devices];
  });
  return JSON.stringify(Object.fromEntries(entries));
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
    let merged;
    try {
      merged = mergeTrustRecord(stored ?? "", JSON.stringify(devices));
    } catch {
      return; // a stored record that does not parse is left alone, not overwritten
    }
    written[identity] = JSON.parse(merged);
    await request(store.put(merged, identity));
  }));
  // Forgotten here to keep the store small; not if another tab verified it meanwhile.
  await Promise.all(changes.delete.map(async (identity) => {
    const stored = await request(store.get(identity));
    if (stored !== undefined && trustRecordForgettable(stored)) await request(store.delete(identity));
  }));
  await done;
  if (Object.keys(written).length) tabs?.postMessage(JSON.stringify(written));
}

// What other tabs wrote before this page's store was loaded: handed over when it is.
let early = [];
let deliver = null;
if (tabs) {
  tabs.onmessage = ({ data }) => (deliver ? deliver(data) : early.push(data));
}

/** Calls `onrecords` (JSON of identity -> devices) with what another tab wrote, since this
 * page started. */
export function onOtherTabs(onrecords) {
  deliver = onrecords;
  for (const data of early.splice(0)) onrecords(data);
}
