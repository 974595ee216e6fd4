// The E2EE panel: epoch, safety number, media path, and the group's members as MLS states
// them, with each device's fingerprint and what this browser knows of it.
import { $, senderStats, state } from "./state.js";
import { act, button } from "./alerts.js";

const DEVICE = {
  this_device: "this device",
  first_seen: "first seen now",
  known: "seen before",
  verified: "verified",
  new_device: "NEW DEVICE",
  verified_key_changed: "VERIFIED DEVICE CHANGED",
};

export function renderPanel() {
  $("epoch").textContent = state.epoch ?? (state.groupGone ? "none: the group is forming again" : "–");
  const groups = state.safety.map((g) => {
    const span = document.createElement("span");
    span.textContent = g;
    return span;
  });
  $("safety-number").replaceChildren(...(groups.length ? groups : ["–"]));
  const body = $("roster").querySelector("tbody");
  body.replaceChildren();
  if (state.groupGone) {
    // The last group's members are not who holds the keys now: nobody does.
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.className = "nogroup";
    td.textContent = "No current group: its members show when it forms again.";
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const m of state.roster) {
    const s = senderStats(m.leaf);
    const tr = document.createElement("tr");
    tr.dataset.leaf = m.leaf;
    const me = m.participant_id === state.me && m.device === "this_device";
    const name = document.createElement("td");
    name.className = "name";
    name.textContent = me ? `${m.identity} (you)` : m.identity;
    name.title = m.identity;
    const flags = [];
    if (m.problem) flags.push("unexplained");
    if (!m.present) flags.push("not announced in the room");
    if (m.looks_like.length) flags.push(`lookalike name: ${m.spelled}`);
    else if (m.duplicate_identity) flags.push("name used twice");
    if (flags.length) {
      const f = document.createElement("div");
      f.className = "flags";
      f.textContent = flags.join(" · ");
      name.append(f);
    }
    const device = document.createElement("td");
    device.className = `device ${m.device}`;
    const fp = document.createElement("div");
    fp.className = "fingerprint";
    fp.textContent = m.fingerprint.join(" ");
    const st = document.createElement("div");
    st.textContent = DEVICE[m.device] ?? m.device;
    device.append(fp, st);
    if (!me && m.device !== "verified") {
      device.append(button("Mark verified", { verify: m.leaf }, () => act(() => state.signaling?.verify(m.leaf, m.key, m.identity))));
    }
    const cells = [
      name,
      String(m.participant_id ?? "–"),
      String(m.leaf),
      device,
      me ? "–" : String(s.decrypted),
      me ? "–" : String(s.failed + s.noKey),
    ];
    for (const c of cells) {
      if (typeof c === "string") {
        const td = document.createElement("td");
        td.textContent = c;
        tr.append(td);
      } else {
        tr.append(c);
      }
    }
    if (!me && s.failed + s.noKey > 0) tr.lastChild.className = "bad";
    if (m.problem || m.device === "verified_key_changed") tr.className = "danger";
    body.append(tr);
  }
}

/** The media path in the panel: direct, or relayed and over which protocol. */
export async function showPath() {
  if (!state.media) return;
  const path = await state.media.path();
  // The pair is selected shortly after "connected": look again until it is.
  if (!path && state.media.pc.connectionState === "connected") setTimeout(showPath, 500);
  state.path = path;
  $("media-path").textContent = !path ? "–"
    : path.type === "relay" ? `relayed by TURN over ${(path.relayProtocol ?? "udp").toUpperCase()}`
    : `direct (${path.protocol.toUpperCase()}) to ${path.remote}`;
}
