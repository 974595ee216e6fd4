// Alerts: what the user must know before trusting the meeting (unexplained members, changed
// or new devices, lookalike names, media the server mislabelled, no current group), shown
// above the stage where they cannot be hidden; the header's summary of the encryption state
// (epoch, safety number, alerts); and the log of what this page refused or noticed (in the
// encryption panel).
import { $, state } from "./state.js";
import { tileName } from "./who.js";

/** Notes `text` in the log. The log keeps the last 20 entries, but never drops one marked
 * `keep` (a verified device that changed): the server can provoke other entries at will. */
export function note(text, { keep = false } = {}) {
  state.log.push(keep ? { text, keep } : text);
  const dropped = state.log.findIndex((l) => typeof l === "string");
  if (state.log.length > 20 && dropped >= 0) state.log.splice(dropped, 1);
  renderAlerts();
}

/** The log's entries as text, oldest first. */
export const logText = () => state.log.map((l) => (typeof l === "string" ? l : l.text));

// Devices whose verified identity changed, noted once in the log (which outlives reconnects and
// the member's own departure): "identity key".
const warned = new Set();

/** A new meeting: what this page noticed in the last one is forgotten. */
export function forgetLog() {
  state.log = [];
  warned.clear();
}

/** Takes the roster as wasm judged it; a verified person's changed device is logged too. */
export function setRoster(roster) {
  state.roster = roster;
  for (const m of roster) {
    const id = `${m.identity} ${m.key}`;
    if (m.device !== "verified_key_changed" || warned.has(id)) continue;
    warned.add(id);
    note(`${m.identity}'s verified device changed: a device with fingerprint ${m.fingerprint.join(" ")} was in the group as ${m.identity} (participant ${m.participant_id ?? "?"}).`, { keep: true });
  }
}

// ---- alerts: what the user must know before trusting the meeting ----

/** Runs what the user asked for; if it is refused (the member's device changed since it was
 * shown), says why. */
export function act(action) {
  try {
    action();
  } catch (e) {
    note(`Not done: ${e.message ?? e}.`);
    renderAlerts();
  }
}

export function alertRow(kind, text, action) {
  const li = document.createElement("li");
  li.className = kind;
  const span = document.createElement("span");
  span.textContent = text;
  li.append(span);
  if (action) li.append(action);
  // What the row says and does: unchanged rows are not made again (a button being clicked
  // must not be replaced under the pointer, and a screen reader must not hear it twice).
  li.dataset.sig = `${kind}|${text}|${action?.dataset.sig ?? ""}`;
  return li;
}

/** A button doing `onclick`; `data` its data attributes, `binds` what its action is bound to
 * beyond them (a device key), so that a changed binding makes a new button. */
export function button(text, data, onclick, binds = null) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  Object.assign(b.dataset, data);
  b.dataset.sig = JSON.stringify([text, data, binds]);
  b.onclick = onclick;
  return b;
}

/** Puts `items` in `list` unless it already holds rows of the same signatures. */
export function replaceIfChanged(list, items) {
  const sigs = items.map((li) => li.dataset.sig).join("\n");
  if (list.dataset.sig === sigs) return false;
  list.dataset.sig = sigs;
  list.replaceChildren(...items);
  return true;
}

export function renderAlerts() {
  const list = [];
  // Without a current group, what its members were is not what anyone holds now.
  const roster = state.groupGone ? [] : state.roster;
  for (const m of roster) {
    const who = `${m.identity} (participant ${m.participant_id ?? "?"}, leaf ${m.leaf})`;
    if (m.problem) {
      list.push(alertRow("danger",
        `${who} is in the group unexplained: ${m.problem}.`,
        button("I know who this is", { acknowledge: m.leaf }, () => act(() => state.signaling?.acknowledge(m.leaf, m.key, m.identity)), m.key)));
    }
    if (m.device === "verified_key_changed") {
      list.push(alertRow("danger", `${who}: ${m.identity}'s verified device has changed. This may not be ${m.identity}: compare the fingerprint with them before you mark it verified.`));
    } else if (m.device === "new_device") {
      list.push(alertRow("notice", `${who} is using a new device: compare the fingerprint with them.`,
        button("It is their device", { acknowledgeDevice: m.leaf }, () => act(() => state.signaling?.acknowledgeDevice(m.leaf, m.key, m.identity)), m.key)));
    }
  }
  for (const m of roster) {
    // A name like one this browser knows, of someone not here ("аlice" while alice is away).
    const away = m.looks_like.filter((n) => !roster.some((o) => o.identity === n));
    if (away.length) {
      list.push(alertRow("danger", `${m.spelled}'s name looks like ${away.join(", ")}, whom this browser has met, but it is another name: check the fingerprint.`));
    }
  }
  const names = new Set();
  for (const m of roster) {
    if (!m.duplicate_identity || names.has(m.identity)) continue;
    if (m.looks_like.length) {
      // Names that differ but look alike ("alice", "аlice"): spelled out to tell them apart.
      const alike = roster.filter((o) => o.identity === m.identity || m.looks_like.includes(o.identity));
      const spelled = [...new Map(alike.map((o) => [o.identity, o.spelled])).values()];
      alike.forEach((o) => names.add(o.identity));
      list.push(alertRow("danger", `Members whose names look alike but differ: ${spelled.join(", ")}. One may be posing as another: check each one's fingerprint.`));
    } else {
      names.add(m.identity);
      list.push(alertRow("notice", `More than one member is named ${m.identity}: check each one's fingerprint.`));
    }
  }
  for (const t of state.tiles.values()) {
    const n = tileName(t);
    if (n.mislabelled) list.push(alertRow("danger", `The server labelled ${n.name}'s media as ${n.claimed}'s.`));
  }
  if (!state.mayShare) {
    list.unshift(alertRow("danger", "Your camera and microphone are not being sent: someone unexplained is in the group."));
  }
  if (state.groupGone) {
    list.unshift(alertRow("danger", `No current group (${state.groupGone}): nothing is sent or shown until the group forms again.`));
  }
  replaceIfChanged($("alerts"), list);
  $("alerts").hidden = list.length === 0;
  $("log-empty").hidden = state.log.length > 0;
  replaceIfChanged($("log"), logText().map((l) => {
    const li = document.createElement("li");
    li.textContent = l;
    li.dataset.sig = l;
    return li;
  }));
  renderSummary(list.filter((li) => li.className === "danger").length, list.length);
}

/** The header's glance at the encryption: whether there is a group now, its epoch, the
 * safety number's first groups, and how many alerts stand (red when any is a danger). Without
 * a current group it never says "encrypted": nothing is sent then. */
function renderSummary(dangers, alerts) {
  const epoch = state.epoch ?? (state.groupGone ? "none" : "–");
  const [lead, short, kind] = state.epoch !== null ? ["End-to-end encrypted", "E2EE", dangers ? "warning" : "ok"]
    : state.groupGone ? ["No current group", "No group", "warning"]
    : state.meeting?.reconnecting ? ["Reconnecting: no group yet", "No group", "pending"]
    : ["Joining the group…", "Joining", "pending"];
  $("security-lead").textContent = lead;
  $("security-lead").dataset.short = short;
  $("security").className = `security ${kind}`;
  $("security-epoch").textContent = `epoch ${epoch}`;
  $("security-number").textContent = state.safety.length ? `${state.safety.slice(0, 2).join(" ")} …` : "";
  $("security-alerts").hidden = alerts === 0;
  $("security-alerts").textContent = alerts === 1 ? "1 alert" : `${alerts} alerts`;
  const number = state.safety.length ? `, safety number starts ${state.safety.slice(0, 2).join(" ")}` : "";
  const standing = alerts ? `, ${alerts === 1 ? "1 alert" : `${alerts} alerts`}${dangers ? " needing attention" : ""}` : "";
  $("security").setAttribute("aria-label", `${lead}, epoch ${epoch}${number}${standing}. Open the encryption panel.`);
}
