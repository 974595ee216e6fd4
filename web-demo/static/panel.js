// The side panels' contents: the encryption panel (epoch, safety number, media path) and the
// people panel (the group's members as MLS states them, with each device's fingerprint and
// what this browser knows of it).
import { $, chat, senderStats, state } from "./state.js";
import { act, button, replaceIfChanged } from "./alerts.js";

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
  renderPeople();
}

function el(tag, className, text = "") {
  const e = document.createElement(tag);
  if (className) e.className = className;
  e.textContent = text;
  return e;
}

/** The order people are listed in: anyone the page warns about first, then this device, then
 * raised hands, then by name. */
function listOrder(m) {
  const me = m.participant_id === state.me && m.device === "this_device";
  const warned = m.problem || !m.present || m.looks_like.length > 0 || m.duplicate_identity
    || m.device === "verified_key_changed" || m.device === "new_device";
  return [warned ? 0 : 1, me ? 0 : 1, chat.hands.has(m.participant_id) ? 0 : 1];
}

function byListOrder(a, b) {
  const [x, y] = [listOrder(a), listOrder(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return a.identity.localeCompare(b.identity, undefined, { numeric: true }) || a.leaf - b.leaf;
}

/** The leaves in the order last shown. While the pointer or the focus is in the list it keeps
 * that order (newcomers at the end): a member raising a hand must not move another's "Mark
 * verified" under the pointer. */
let shownOrder = [];

function ordered(members) {
  const list = $("roster");
  const held = list.matches(":hover") || list.contains(document.activeElement);
  if (!held) return members.sort(byListOrder);
  const at = new Map(shownOrder.map((leaf, i) => [leaf, i]));
  return members.sort((a, b) => (at.get(a.leaf) ?? Infinity) - (at.get(b.leaf) ?? Infinity) || byListOrder(a, b));
}

/** The people panel: every member of the group (those the filter names), with its device,
 * its microphone and camera as it says, and what this page decrypts of it. Nothing is built
 * while the panel is closed: a meeting of a hundred costs nothing until it is opened. */
function renderPeople() {
  const list = $("roster");
  $("people-toggle").textContent = `People (${state.groupGone ? 0 : state.roster.length})`;
  if ($("people").hidden) return;
  if (state.groupGone) {
    // The last group's members are not who holds the keys now: nobody does.
    const li = el("li", "nogroup", "No current group: its members show when it forms again.");
    li.dataset.sig = "nogroup";
    replaceIfChanged(list, [li]);
    return;
  }
  const filter = $("people-filter").value.trim().toLocaleLowerCase();
  const shown = ordered(state.roster
    .filter((m) => !filter || m.identity.toLocaleLowerCase().includes(filter)));
  shownOrder = shown.map((m) => m.leaf);
  $("people-none").hidden = shown.length > 0 || !filter;
  // Made again only when what a card says changes (a button is never replaced under the
  // pointer); the frame counts, which change every second, are updated in place.
  replaceIfChanged(list, shown.map((m) => {
    const li = el("li", m.problem || m.device === "verified_key_changed" ? "danger" : "");
    li.dataset.leaf = m.leaf;
    const me = m.participant_id === state.me && m.device === "this_device";
    const name = el("div", "name", me ? `${m.identity} (you)` : m.identity);
    name.title = m.identity;
    li.append(name);
    const flags = [];
    if (m.problem) flags.push("unexplained");
    if (!m.present) flags.push("not announced in the room");
    if (m.looks_like.length) flags.push(`lookalike name: ${m.spelled}`);
    else if (m.duplicate_identity) flags.push("name used twice");
    if (flags.length) li.append(el("div", "flags", flags.join(" · ")));
    const said = me ? null : chat.states.get(m.participant_id);
    const facts = [`participant ${m.participant_id ?? "–"}`, `leaf ${m.leaf}`];
    if (said?.muted) facts.push("muted");
    if (said?.camera_off) facts.push("camera off");
    if (chat.hands.has(m.participant_id)) facts.push("hand raised");
    li.append(el("div", "facts", facts.join(" · ")));
    li.append(el("div", "fingerprint", m.fingerprint.join(" ")));
    const device = el("div", `device ${m.device}`, DEVICE[m.device] ?? m.device);
    if (!me && m.device !== "verified") {
      const b = button("Mark verified", { verify: m.leaf }, () => act(() => state.signaling?.verify(m.leaf, m.key, m.identity)), m.key);
      b.setAttribute("aria-label", `Mark ${m.identity}'s device verified`);
      device.append(b);
    }
    li.append(device);
    if (!me) {
      const frames = el("div", "facts frames");
      frames.dataset.leaf = m.leaf;
      li.append(frames);
    }
    li.dataset.sig = JSON.stringify([m.leaf, m.identity, me, flags, facts, m.fingerprint, m.device, device.lastChild?.dataset?.sig ?? null]);
    return li;
  }));
  for (const frames of list.querySelectorAll(".frames")) {
    const s = senderStats(Number(frames.dataset.leaf));
    const failing = s.failed + s.noKey;
    frames.textContent = s.decrypted + failing === 0 ? "no frames received yet"
      : `decrypted ${s.decrypted} frames, ${failing} failing`;
    frames.classList.toggle("bad", failing > 0);
  }
}

$("people-filter").addEventListener("input", () => renderPeople());

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
