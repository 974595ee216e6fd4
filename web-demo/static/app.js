// The meeting page: lobby (with a preview and the devices), video grid, controls, alerts and
// the E2EE panel, glued to the signaling session (signaling.js), the PeerConnection
// (media.js), the frame worker (e2ee.js), what is captured and played (capture.js), and this
// device's identity and memory (device.js).
//
// What the page shows of people comes from the MLS group, never from the server's word: the
// roster is the group's (identity, participant id, leaf, device fingerprint); a video tile is
// named by the member whose key opens its frames; a member nobody announced, a second member
// with one name, a known name on a new device, and media the server labelled as someone else's
// are each shown as an alert.
import { Meeting, Refused, Signaling, loadWasm, refusal } from "./signaling.js";
import { Media } from "./media.js";
import { Chat } from "./chat.js";
import * as capture from "./capture.js";
import { deviceKey, loadTrust, onOtherTabs, saveTrust } from "./device.js";
import {
  checkIdentity, checkRoom, deriveSframeKey, maxIdentityBytes, maxRoomBytes, parseStreamId as wasmParseStreamId,
  reconnectDelayMs, reconnectGivesUp, trustLoad, trustMerge,
} from "./pkg/web_demo_wasm.js";
import { fromHex, toHex } from "./sframe.js";

const $ = (id) => document.getElementById(id);
const now = () => performance.timeOrigin + performance.now();

let signaling = null;
let media = null;
let local = null;
let early = []; // events that arrive before the PeerConnection exists
const chat = new Chat();
let handRaised = false;
let screenTrack = null; // the screen shared, while it is
let preview = null; // the lobby's capture, handed to the meeting on join
const levels = new capture.Levels();
const view = {
  me: null,
  epoch: null,
  safety: [],
  roster: [], // the group's members, as wasm judged them (roster.rs)
  mayShare: true, // false while someone unexplained is in the group: nothing is sent
  groupGone: null, // why there is no current group (re-made, lost), until the next one's epoch
  stats: null,
  timing: null,
  speaker: null, // the server's active speaker (its reading of the audio-level extension)
  speaking: new Set(), // tile keys whose decrypted sound is loud now (measured here)
  // "self", "self.screen", or a received stream id (the server's label, "<pid>.<source>")
  // -> { key, pid, source, el, video, stream, tracks, frames, wasScreen }
  tiles: new Map(),
  log: [], // what this member refused or noticed, newest last
  joinClickedAt: null,
  selftest: null,
  reconnects: [], // { why, ms, at (when back), attempts } of each reconnect of this meeting
  iceRestarts: [], // { ms (down for), at } of each media path mended by ICE restart
};

function status(text, where = "meeting-status") {
  $(where).textContent = text;
}

function note(text) {
  view.log.push(text);
  if (view.log.length > 20) view.log.shift();
  renderAlerts();
}

// Devices whose verified identity changed, noted once in the log (which outlives reconnects and
// the member's own departure): "identity key".
const warned = new Set();

/** Takes the roster as wasm judged it; a verified person's changed device is logged too. */
function setRoster(roster) {
  view.roster = roster;
  for (const m of roster) {
    const id = `${m.identity} ${m.key}`;
    if (m.device !== "verified_key_changed" || warned.has(id)) continue;
    warned.add(id);
    note(`${m.identity}'s verified device changed: a device with fingerprint ${m.fingerprint.join(" ")} was in the group as ${m.identity} (participant ${m.participant_id ?? "?"}).`);
  }
}

const member = (leaf) => view.roster.find((m) => m.leaf === leaf);
const memberOf = (pid) => view.roster.find((m) => m.participant_id === pid);

// ---- tiles ----

/** Who the keys say a tile shows: the members whose keys opened its tracks' frames. */
function tileSenders(t) {
  const leaves = new Set();
  for (const id of t.tracks.values()) {
    for (const [leaf, n] of Object.entries(view.stats?.perTrack?.[id]?.leaves ?? {})) {
      if (n > 0) leaves.add(Number(leaf));
    }
  }
  return [...leaves].map((l) => member(l) ?? { leaf: l, identity: `leaf ${l}`, participant_id: null });
}

/** A tile's name and whether the server's label (its stream id) agrees with the keys. */
function tileName(pid, t) {
  if (pid === view.me) return { name: `${memberOf(pid)?.identity ?? "you"} (you)`, byKey: true, mislabelled: false };
  const senders = tileSenders(t);
  const claimed = memberOf(pid)?.identity ?? `participant ${pid}`;
  if (senders.length === 0) return { name: claimed, byKey: false, mislabelled: false, claimed };
  const name = senders.map((m) => m.identity).join(" + ");
  const mislabelled = senders.some((m) => m.participant_id !== pid);
  return { name, byKey: true, mislabelled, claimed };
}

function tile(key, pid, source = null) {
  let t = view.tiles.get(key);
  if (t) return t;
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.pid = pid;
  el.dataset.key = key;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (pid === view.me) video.muted = true;
  else capture.routeSound(video);
  const label = document.createElement("span");
  label.className = "label";
  const warning = document.createElement("div");
  warning.className = "warning";
  warning.textContent = "Frames from this participant cannot be decrypted";
  const relabel = document.createElement("div");
  relabel.className = "relabel";
  const badges = document.createElement("div");
  badges.className = "badges";
  const paused = document.createElement("div");
  paused.className = "paused";
  paused.textContent = "No current group: media is paused until the group forms again";
  el.append(video, label, warning, relabel, badges, paused);
  $("grid").append(el);
  t = { key, pid, source, el, video, label, relabel, badges, stream: new MediaStream(), tracks: new Map(), frames: 0, wasScreen: false };
  video.srcObject = t.stream;
  const count = () => {
    t.frames++;
    video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  view.tiles.set(key, t);
  renderTiles();
  return t;
}

function dropTile(key) {
  const t = view.tiles.get(key);
  if (!t) return;
  t.el.remove();
  levels.unwatch(key);
  view.tiles.delete(key);
}

/** Whether tile `t` shows a screen share: our own, or a stream its member says (signed) is
 * its screen. The server's label alone never makes a stream a screen. */
function isScreen(t) {
  if (t.key === "self.screen") return true;
  return t.pid !== view.me && !!t.source && chat.states.get(t.pid)?.screen === t.source;
}

function senderStats(leaf) {
  const s = view.stats?.perLeaf?.[leaf];
  return { decrypted: s?.decrypted ?? 0, failed: s?.failed ?? 0, noKey: s?.noKey ?? 0 };
}

function renderTiles() {
  for (const t of view.tiles.values()) {
    const pid = t.pid;
    const n = tileName(pid, t);
    const screen = isScreen(t);
    t.wasScreen ||= screen;
    // A screen no longer shared: its stream stays negotiated but shows nothing.
    t.el.hidden = t.wasScreen && !screen;
    t.el.classList.toggle("screen", screen);
    const name = screen ? `${n.name}: screen` : n.name;
    t.label.textContent = n.byKey ? name : `${name} (not yet decrypted)`;
    t.label.title = name;
    t.el.classList.toggle("speaking", !screen && view.speaking.has(t.key));
    // What the member says of itself (signed by its key), never what the server says.
    const state = pid === view.me ? ownState() : chat.states.get(pid);
    const badges = screen ? [] : [
      state?.muted && "🔇 muted", state?.camera_off && "camera off",
      (pid === view.me ? handRaised : chat.hands.has(pid)) && "✋",
    ].filter(Boolean);
    t.badges.replaceChildren(...badges.map((b) => {
      const span = document.createElement("span");
      span.textContent = b;
      return span;
    }));
    t.el.classList.toggle("mislabelled", n.mislabelled);
    t.el.classList.toggle("nogroup", !!view.groupGone);
    t.relabel.textContent = n.mislabelled
      ? `The server labels this as ${n.claimed}; its frames are ${n.name}'s.`
      : "";
    const m = memberOf(pid);
    const s = m ? senderStats(m.leaf) : null;
    t.el.classList.toggle("undecryptable", pid !== view.me && !!s && s.failed > 0 && s.decrypted === 0);
  }
  renderAlerts();
}

// ---- alerts: what the user must know before trusting the meeting ----

/** Runs what the user asked for; if it is refused (the member's device changed since it was
 * shown), says why. */
function act(action) {
  try {
    action();
  } catch (e) {
    note(`Not done: ${e.message ?? e}.`);
    renderAlerts();
  }
}

function alertRow(kind, text, action) {
  const li = document.createElement("li");
  li.className = kind;
  const span = document.createElement("span");
  span.textContent = text;
  li.append(span);
  if (action) li.append(action);
  return li;
}

function button(text, data, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  Object.assign(b.dataset, data);
  b.onclick = onclick;
  return b;
}

function renderAlerts() {
  const list = [];
  // Without a current group, what its members were is not what anyone holds now.
  const roster = view.groupGone ? [] : view.roster;
  for (const m of roster) {
    const who = `${m.identity} (participant ${m.participant_id ?? "?"}, leaf ${m.leaf})`;
    if (m.problem) {
      list.push(alertRow("danger",
        `${who} is in the group unexplained: ${m.problem}.`,
        button("I know who this is", { acknowledge: m.leaf }, () => act(() => signaling?.acknowledge(m.leaf, m.key, m.identity)))));
    }
    if (m.device === "verified_key_changed") {
      list.push(alertRow("danger", `${who}: ${m.identity}'s verified device has changed. This may not be ${m.identity}: compare the fingerprint with them before you mark it verified.`));
    } else if (m.device === "new_device") {
      list.push(alertRow("notice", `${who} is using a new device: compare the fingerprint with them.`,
        button("It is their device", { acknowledgeDevice: m.leaf }, () => act(() => signaling?.acknowledgeDevice(m.leaf, m.key, m.identity)))));
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
  for (const t of view.tiles.values()) {
    const n = tileName(t.pid, t);
    if (n.mislabelled) list.push(alertRow("danger", `The server labelled ${n.name}'s media as ${n.claimed}'s.`));
  }
  if (!view.mayShare) {
    list.unshift(alertRow("danger", "Your camera and microphone are not being sent: someone unexplained is in the group."));
  }
  if (view.groupGone) {
    list.unshift(alertRow("danger", `No current group (${view.groupGone}): nothing is sent or shown until the group forms again.`));
  }
  for (const l of view.log) list.push(alertRow("info", l));
  $("alerts").replaceChildren(...list);
  $("alerts").hidden = list.length === 0;
}

// ---- E2EE panel ----

const DEVICE = {
  this_device: "this device",
  first_seen: "first seen now",
  known: "seen before",
  verified: "verified",
  new_device: "NEW DEVICE",
  verified_key_changed: "VERIFIED DEVICE CHANGED",
};

function renderPanel() {
  $("epoch").textContent = view.epoch ?? (view.groupGone ? "none: the group is forming again" : "–");
  const groups = view.safety.map((g) => {
    const span = document.createElement("span");
    span.textContent = g;
    return span;
  });
  $("safety-number").replaceChildren(...(groups.length ? groups : ["–"]));
  const body = $("roster").querySelector("tbody");
  body.replaceChildren();
  if (view.groupGone) {
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
  for (const m of view.roster) {
    const s = senderStats(m.leaf);
    const tr = document.createElement("tr");
    tr.dataset.leaf = m.leaf;
    const me = m.participant_id === view.me && m.device === "this_device";
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
      device.append(button("Mark verified", { verify: m.leaf }, () => act(() => signaling?.verify(m.leaf, m.key, m.identity))));
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

/** The group is gone (`why`: the server re-made it, or this page lost track of it): nothing
 * more is sealed under its keys, frames under them open only for the grace time, and the page
 * shows no epoch, safety number or members until the next group's first epoch (the tiles
 * keep the names the last group's keys gave them, marked paused). */
function groupGone(why) {
  media?.e2ee.retire();
  Object.assign(view, { groupGone: why, epoch: null, safety: [] });
  renderPanel();
  renderTiles();
}

function share(mayShare) {
  view.mayShare = mayShare;
  media?.e2ee.setSending(mayShare);
  renderAlerts();
}

// ---- session events ----

function onevent(e) {
  if (!media && ["sdp_offer", "sdp_answer", "ice_candidate", "new_epoch", "send_gate", "group_reset", "group_lost"].includes(e.type)) {
    early.push(e);
    return;
  }
  switch (e.type) {
    case "new_epoch": {
      // Someone new: they learn our state (the others know it already).
      if (e.added.some((m) => m.participant_id !== view.me)) announceState();
      view.groupGone = null;
      view.epoch = e.epoch;
      view.safety = e.safety_number;
      setRoster(e.roster);
      media.e2ee.setKeys(e.keys);
      share(e.may_send);
      // Someone new: a key frame under the new key lets them see us at once.
      if (e.added.some((m) => m.participant_id !== view.me)) media.e2ee.requestKeyframe();
      renderPanel();
      renderTiles();
      break;
    }
    case "send_gate":
      share(e.may_send);
      break;
    case "roster":
      setRoster(e.roster);
      renderPanel();
      renderTiles();
      break;
    case "trust":
      saveTrust(e.changes).catch((err) => console.error("keeping the trust store:", err));
      break;
    case "refused_add":
      note(`Refused to add participant ${e.participant_id} when the server asked: ${e.reason}.`);
      break;
    case "refused_proposal":
      note(`Refused a proposal from participant ${e.from}: ${e.reason}.`);
      break;
    case "account_mismatch":
      note(`The server's account of epoch ${e.epoch} differs from the commit: it said added ${JSON.stringify(e.claimed_added)}, removed ${JSON.stringify(e.claimed_removed)}; the commit added ${JSON.stringify(e.added)}, removed ${JSON.stringify(e.removed)}.`);
      break;
    case "group_reset":
      groupGone(`the server is making it again: ${e.reason}`);
      note(`The group is being made again (${e.reason}); rejoining it.`);
      break;
    case "group_lost":
      groupGone(`could not follow it at epoch ${e.epoch}`);
      note(`Could not follow the group at epoch ${e.epoch} (${e.reason}); asked to be added again.`);
      break;
    case "removed":
      leave("You were removed from the meeting's group.");
      break;
    case "participant_left":
      chat.left(e.participant_id);
      for (const t of [...view.tiles.values()]) if (t.pid === e.participant_id) dropTile(t.key);
      break;
    case "said":
      chat.said(e);
      renderTiles();
      break;
    case "gap":
      chat.gap(e);
      break;
    case "waiting":
      chat.waiting++;
      status(`Your message waits to be sent: ${e.reason}.`, "chat-status");
      break;
    case "app_refused":
      chat.refused++;
      note(`A message from participant ${e.from} was not shown: ${e.reason}.`);
      break;
    case "sdp_offer":
      media.onOffer(e.sdp);
      break;
    case "sdp_answer":
      media.onAnswer(e.sdp);
      break;
    case "ice_candidate":
      media.onCandidate(e.candidate);
      break;
    case "active_speaker":
      view.speaker = e.participant_id;
      renderTiles();
      break;
    case "server_error":
      status(`Server: ${e.code}: ${e.message}`);
      break;
    case "failure":
      status(`Encryption: ${e.message}`);
      break;
    case "stop":
      // Removed, banned, the room closed: the server says not to come back.
      if (e.final) leave(refusal(e.code, e.reason));
      else reconnect(e.reason);
      break;
  }
}

/** The publisher and its stream (`source`) a received stream id names (the SFU's label:
 * "<pid>.<source>", or "<pid>"; signaling_protocol::media_stream). */
function parseStreamId(id) {
  const named = wasmParseStreamId(id);
  return named === undefined ? null : JSON.parse(named);
}

/** `key`: what the worker counts this arrival of `track` under. */
function ontrack(streamId, track, key) {
  // A section the SFU recycles brings the same track for another stream: it leaves the tile
  // it was in, whose keys no longer describe what it plays (else that tile would show the
  // newcomer under the last one's name).
  for (const t of [...view.tiles.values()]) {
    if (t.key === streamId || !t.tracks.has(track.id)) continue;
    t.stream.removeTrack(track);
    t.tracks.delete(track.id);
    if (t.stream.getTracks().length === 0) dropTile(t.key);
  }
  const named = parseStreamId(streamId);
  if (!named || named.pid === view.me) return;
  const t = tile(streamId, named.pid, named.source);
  t.tracks.set(track.id, key);
  t.stream.addTrack(track);
  if (track.kind === "audio") levels.watch(streamId, t.stream);
  t.stream.onremovetrack = () => {
    if (t.stream.getTracks().length === 0) dropTile(streamId);
  };
}

// ---- join and leave ----

const bytes = (text) => new TextEncoder().encode(text).length;

/** What is wrong with a room and name as typed (already trimmed), or null: the rules are
 * Rust's (signaling_protocol::names, through wasm), the words the page's. */
function checkJoin(room, name) {
  switch (checkRoom(room)) {
    case undefined: break;
    case "empty": return "Enter the room's name.";
    case "too_long": return `The room's name is ${bytes(room)} bytes long; at most ${maxRoomBytes()} are allowed.`;
    default: return "The room's name holds invisible or control characters: type it again.";
  }
  switch (checkIdentity(name)) {
    case undefined: return null;
    case "empty": return "Enter your name: the others see it next to your video.";
    case "too_long":
      return `Your name is ${bytes(name)} bytes long; at most ${maxIdentityBytes()} are allowed (letters beyond English and emoji take 2 to 4 bytes each).`;
    default: return "Your name holds invisible or control characters: type it again.";
  }
}

async function token(room, identity) {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) return fromUrl;
  const r = await fetch(`/dev/token?room=${encodeURIComponent(room)}&identity=${encodeURIComponent(identity)}`);
  if (r.status === 404) {
    throw new Error("This server hands out no tokens here: open the link your organiser sent (…?token=…).");
  }
  if (!r.ok) throw new Error(`The server refused: ${(await r.text()) || r.statusText}.`);
  return (await r.json()).token;
}

/** The meeting this page is in (null in the lobby): what a reconnect needs again. */
let meeting = null; // { room, name, token (from the link, or null), generation, reconnecting }

async function join(room, name) {
  await loadWasm();
  const wrong = checkJoin(room, name);
  if (wrong) return status(wrong, "lobby-status");
  localStorage.setItem(NAME_KEY, name);
  view.joinClickedAt = now();
  $("join").disabled = true;
  status("Joining…", "lobby-status");
  const fromLink = new URLSearchParams(location.search).get("token");
  meeting = { room, name, token: fromLink, generation: 0, reconnecting: null };
  try {
    levels.resume();
    local = await meetingCapture();
    await connect();
    history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
    selfTest().catch((e) => ($("selftest").textContent = `SFrame self-test could not run: ${e}`));
  } catch (e) {
    leave(String(e.message ?? e));
  } finally {
    $("join").disabled = false;
  }
}

let trusting = null;
/** The page's trust store, loaded once for the life of the page (wasm keeps it across every
 * reconnect); records other tabs write are taken in as they come. */
function trustReady() {
  trusting ??= (async () => {
    await loadWasm();
    let records = "";
    try {
      records = await loadTrust();
    } catch (e) {
      note(`This browser could not read the devices it saw before (${e.message ?? e}): it recognises nobody this visit, so every device shows as "first seen now", even a changed one.`);
    }
    if (!trustLoad(records, performance.timeOrigin)) {
      note(`The devices this browser saw before could not be read: it recognises nobody this visit, so every device shows as "first seen now", even a changed one.`);
    }
    onOtherTabs((written) => {
      if (trustMerge(written)) signaling?.refresh();
    });
  })();
  return trusting;
}

/** Joins the room (again, after a reconnect) with this device's identity and the tracks
 * already captured: signaling, the MLS group (the server adds us anew), the PeerConnection. */
async function connect() {
  const m = meeting;
  const generation = ++m.generation;
  // Whether this attempt is still the meeting's connection: events of an earlier one (still
  // in flight when it was dropped) are not this one's.
  const live = () => meeting === m && m.generation === generation;
  const current = (e) => live() && onevent(e);
  const t = m.token ?? await token(m.room, m.name);
  await loadWasm();
  const device = await deviceKey(() => Meeting.newDeviceKey());
  await trustReady();
  const joined = await Signaling.join({ room: m.room, token: t, onevent: current, deviceKey: device.key });
  if (!live()) {
    joined.leave(); // left, or another attempt won, while this one was joining
    return;
  }
  signaling = joined;
  view.me = signaling.joined.participant_id;
  view.deviceSlot = device.slot;
  const iceServers = (signaling.joined.ice_servers ?? []).map((s) => ({
    urls: s.urls, username: s.username, credential: s.credential,
  }));
  const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
  media = new Media({
    signaling, iceServers, relayOnly, local, screen: screenTrack, ontrack,
    onstate: (s) => {
      if (!live()) return;
      // A broken ICE path is mended by ICE restarts first (onstuck when they fail).
      if (s === "failed" && !media.recovering) reconnect("the media connection failed");
      if (s === "connected") showPath();
    },
    onmedia: ({ down, ms }) => {
      if (!live()) return;
      if (down) {
        showReconnecting("Media interrupted: reconnecting it…");
      } else {
        showReconnecting(null);
        view.iceRestarts.push({ ms, at: now() });
        showPath();
      }
    },
    onstuck: () => live() && reconnect("the media connection failed"),
  });
  media.e2ee.onstats = ({ stats, timing }) => {
    view.stats = stats;
    view.timing = timing;
    renderPanel();
    renderTiles();
  };
  // Counts only, for the operator's metrics: how many received frames failed here.
  let reported = 0;
  view.reporter = setInterval(() => {
    const failing = Object.values(view.stats?.perLeaf ?? {})
      .reduce((n, s) => n + s.failed + s.noKey, view.stats?.unknownKid ?? 0);
    if (failing !== reported) {
      reported = failing;
      signaling?.send({ type: "media_stats", decrypt_failures: failing });
    }
  }, 5000);
  status("", "lobby-status");
  $("lobby").hidden = true;
  $("meeting").hidden = false;
  $("room-title").textContent = `Room ${m.room}`;
  $("room-title").title = m.room;
  const me = tile("self", view.me);
  local.getTracks().forEach((tr) => me.stream.addTrack(tr));
  levels.watch("self", local);
  if (screenTrack) tile("self.screen", view.me).stream.addTrack(screenTrack);
  $("settings").append($("devices"));
  capture.listDevices(local.getTracks());
  for (const e of early.splice(0)) onevent(e);
  await media.offer();
}

/** Ends this page's connection (signaling, MLS state, media) but not the meeting: the
 * captured tracks stay. */
function disconnect() {
  clearInterval(view.reporter);
  signaling?.leave();
  media?.close();
  for (const key of [...view.tiles.keys()]) dropTile(key);
  signaling = media = null;
  early = [];
  chat.reset();
  // The log stays: what this page noticed in the meeting is still true after a reconnect.
  Object.assign(view, { me: null, epoch: null, safety: [], roster: [], stats: null, speaker: null, speaking: new Set(), mayShare: true, groupGone: null });
  renderAlerts();
  renderPanel();
}

// When to try again, and when to give up, is the Rust clients' policy too
// (signaling_participant::reconnect, through wasm): quick at first, then every 8 s, with
// jitter, for two minutes.

/** The connection dropped (`why`): the meeting stays on screen as "reconnecting…" while this
 * page joins again, with backoff, until it is back, refused for good, or left. */
async function reconnect(why) {
  const m = meeting;
  if (!m || m.reconnecting) return;
  m.reconnecting = { since: now(), why };
  disconnect();
  showReconnecting(`Reconnecting… (${why})`);
  for (let attempt = 0; meeting === m; attempt++) {
    const down = now() - m.reconnecting.since;
    if (reconnectGivesUp(down)) {
      leave(`Lost the connection to the meeting (${why}), and could not reconnect for ${Math.round(down / 1000)} s.`);
      return;
    }
    await new Promise((r) => setTimeout(r, reconnectDelayMs(attempt + 1, Math.random())));
    if (meeting !== m) return;
    try {
      await connect();
      if (meeting !== m) return;
      view.reconnects.push({ why, ms: now() - m.reconnecting.since, at: now(), attempts: attempt + 1 });
      m.reconnecting = null;
      showReconnecting(null);
      note(`Reconnected after ${why}: the group is new, so compare the safety number again.`);
      return;
    } catch (e) {
      if (e instanceof Refused && e.final) {
        leave(e.message);
        return;
      }
      disconnect();
      showReconnecting(`Reconnecting… (${why}; attempt ${attempt + 1}: ${e.message ?? e})`);
    }
  }
}

function showReconnecting(text) {
  $("reconnecting").hidden = !text;
  $("reconnecting").textContent = text ?? "";
}

/** Leaves the meeting and shows the lobby with `why` (or nothing, for a leave by choice). */
function leave(why = "") {
  disconnect();
  meeting = null;
  showReconnecting(null);
  local?.getTracks().forEach((t) => t.stop());
  local = null;
  stopScreen();
  setCameraButton(true);
  setMicButton(true);
  $("invite-status").hidden = true;
  chat.messages = [];
  chat.render();
  view.log = [];
  warned.clear();
  handRaised = false;
  status("");
  status(why, "lobby-status");
  $("meeting").hidden = true;
  $("lobby").hidden = false;
  $("devices-home").append($("devices"));
  startPreview();
}

// ---- controls ----

function setMicButton(on) {
  $("mic").setAttribute("aria-pressed", String(!on));
  $("mic").textContent = on ? "Mute microphone" : "Unmute microphone";
}

function setCameraButton(on) {
  $("camera").setAttribute("aria-pressed", String(!on));
  $("camera").textContent = on ? "Stop camera" : "Start camera";
}

function setScreenButton(sharing) {
  $("screen").setAttribute("aria-pressed", String(sharing));
  $("screen").textContent = sharing ? "Stop sharing" : "Share screen";
}

$("mic").onclick = () => {
  const track = local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  setMicButton(track.enabled);
  announceState();
};

/** Puts `track` in place of this meeting's track of its kind (or none): in the stream we
 * show ourselves and in the PeerConnection's sender. No renegotiation; the keys stay. */
async function replaceLocal(kind, track) {
  const me = view.tiles.get("self");
  const old = kind === "video" ? local.getVideoTracks() : local.getAudioTracks();
  // The sender takes the new track first: it never holds a stopped one.
  await (kind === "video" ? media?.replaceVideo(track) : media?.replaceAudio(track));
  for (const t of old) {
    t.stop();
    local.removeTrack(t);
    me?.stream.removeTrack(t);
  }
  if (track) {
    local.addTrack(track);
    me?.stream.addTrack(track);
  }
  if (kind === "audio") levels.watch("self", local);
}

$("camera").onclick = async () => {
  if (!local) return;
  if (local.getVideoTracks().length) {
    await replaceLocal("video", null);
    setCameraButton(false);
  } else {
    try {
      await replaceLocal("video", await capture.camera());
    } catch (e) {
      return status(`Cannot start the camera: ${e.message ?? e}`);
    }
    setCameraButton(true);
  }
  announceState();
};

$("screen").onclick = () => (screenTrack ? stopScreen() : startScreen());

async function startScreen() {
  let track;
  try {
    track = await capture.screen();
  } catch (e) {
    return status(`Cannot share the screen: ${e.message ?? e}`);
  }
  if (!track || !meeting) return track?.stop();
  screenTrack = track;
  // Stopped from the browser's own "stop sharing" bar, or the window closed.
  track.addEventListener("ended", () => track === screenTrack && stopScreen());
  tile("self.screen", view.me).stream.addTrack(track);
  await media?.replaceScreen(track);
  setScreenButton(true);
  announceState();
}

function stopScreen() {
  const track = screenTrack;
  if (!track) return;
  screenTrack = null;
  track.stop();
  media?.replaceScreen(null);
  dropTile("self.screen");
  setScreenButton(false);
  if (meeting) announceState();
}

// Devices: in the lobby the preview takes the new one; in the meeting the sender does.
$("camera-select").onchange = async (e) => {
  capture.choose("camera", e.target.value);
  if (!meeting) return startPreview();
  if (!local?.getVideoTracks().length) return; // used when the camera starts again
  try {
    await replaceLocal("video", await capture.camera());
  } catch (err) {
    status(`Cannot use that camera: ${err.message ?? err}`);
  }
};

$("mic-select").onchange = async (e) => {
  capture.choose("mic", e.target.value);
  if (!meeting) return startPreview();
  if (!local) return;
  const enabled = local.getAudioTracks()[0]?.enabled ?? true;
  try {
    const track = await capture.microphone();
    track.enabled = enabled; // a muted microphone stays muted
    await replaceLocal("audio", track);
  } catch (err) {
    status(`Cannot use that microphone: ${err.message ?? err}`);
  }
};

$("speaker-select").onchange = (e) => {
  capture.choose("speaker", e.target.value);
  for (const t of view.tiles.values()) if (t.pid !== view.me) capture.routeSound(t.video);
};

/** The room's link for others. A token is never in it: ours names us, so whoever opened it
 * would join as us; in a room that needs tokens, each person gets their own link from the
 * organiser. */
$("invite").onclick = async () => {
  if (!meeting) return;
  const link = `${location.origin}${location.pathname}?room=${encodeURIComponent(meeting.room)}`;
  let copied = true;
  try {
    await navigator.clipboard.writeText(link);
  } catch {
    copied = false;
  }
  const what = copied ? "Invite link copied" : "Copy this invite link";
  $("invite-status").textContent = meeting.token
    ? `${what}: ${link}. This room needs an invitation per person: your own link holds your token, which names you, so ask the organiser for one for each person you invite.`
    : `${what}: ${link}`;
  $("invite-status").hidden = false;
};

$("leave").onclick = () => leave();

/** This member's microphone and camera, as its tile shows them to the others. */
function ownState() {
  const audio = local?.getAudioTracks()[0];
  return {
    muted: !audio || !audio.enabled,
    camera_off: !local?.getVideoTracks().length,
    hand: handRaised,
    screen: screenTrack && media ? media.screenSource : null,
  };
}

/** Says `message` to the others; false (with the reason shown) if it cannot be said. */
function say(message) {
  try {
    signaling?.say(message);
    status("", "chat-status");
    return true;
  } catch (e) {
    status(`Not sent: ${e.message ?? e}`, "chat-status");
    return false;
  }
}

/** Tells the others our state (on a change, and to newcomers). */
function announceState() {
  say({ kind: "state", ...ownState() });
  renderTiles();
}

$("chat-form").onsubmit = (e) => {
  e.preventDefault();
  const text = $("chat-text").value;
  if (!text.trim()) return;
  if (say({ kind: "chat", text })) {
    chat.add({ from: memberOf(view.me)?.identity ?? "you", participant: view.me, text, mine: true });
    $("chat-text").value = "";
  }
};

$("hand").onclick = () => {
  handRaised = !handRaised;
  say({ kind: "state", ...ownState() });
  $("hand").setAttribute("aria-pressed", String(handRaised));
  $("hand").textContent = handRaised ? "Lower hand" : "Raise hand";
  renderTiles();
};

for (const b of document.querySelectorAll(".react button")) {
  b.onclick = () => say({ kind: "reaction", emoji: b.dataset.emoji }) && chat.react("you", b.dataset.emoji);
}

$("join-form").onsubmit = (e) => {
  e.preventDefault();
  join($("room").value.trim(), $("name").value.trim());
};

const NAME_KEY = "e2ee.name"; // the name last joined with, offered again
$("room").value = new URLSearchParams(location.search).get("room") ?? "";
$("name").value = localStorage.getItem(NAME_KEY) ?? "";

// ---- the lobby: an invitation in the link, the preview ----

/** The claims of a token (a JWT), read without checking: only to say what the link is for.
 * The server checks it. */
function readToken(jwt) {
  try {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    return typeof claims.sub === "string" && typeof claims.room === "string" ? claims : null;
  } catch {
    return null;
  }
}

/** A link with a token names the room and the person: both are shown, not asked. */
function showInvitation() {
  const jwt = new URLSearchParams(location.search).get("token");
  const claims = jwt && readToken(jwt);
  if (!claims) return;
  $("room").value = claims.room;
  $("name").value = claims.sub;
  $("room").readOnly = $("name").readOnly = true;
  const until = new Date(claims.exp * 1000);
  $("invitation").hidden = false;
  $("invitation").textContent = `This link invites ${claims.sub} to room ${claims.room}, until ${until.toLocaleString()}.`;
  if (claims.exp * 1000 < Date.now()) {
    status(`This invitation expired on ${until.toLocaleString()}: ask the organiser for a new link.`, "lobby-status");
  }
}

let previewing = null; // the latest preview attempt: a Promise of its stream (or null)

/** Shows the camera (unless audio only) and the microphone's level in the lobby, and lists
 * the devices; the stream is the meeting's when joining. */
function startPreview() {
  stopPreview();
  const audioOnly = $("audio-only").checked;
  const attempt = (async () => {
    try {
      const stream = await capture.capture({ audioOnly });
      if (previewing !== attempt || meeting) {
        stream.getTracks().forEach((t) => t.stop());
        return null;
      }
      preview = stream;
      $("preview").srcObject = stream;
      levels.watch("preview", stream);
      status(audioOnly ? "Audio only: your camera stays off. Start it in the meeting if you like." : "", "preview-status");
      await capture.listDevices(stream.getTracks());
      return stream;
    } catch (e) {
      status(`Cannot use the camera or microphone: ${e.message ?? e}. Allow them in the browser, or choose other devices.`, "preview-status");
      await capture.listDevices().catch(() => {});
      return null;
    }
  })();
  previewing = attempt;
  return attempt;
}

/** Ends the lobby's preview; its tracks stop unless `keep` (the meeting takes them). */
function stopPreview({ keep = false } = {}) {
  if (!keep) preview?.getTracks().forEach((t) => t.stop());
  preview = null;
  levels.unwatch("preview");
  $("preview").srcObject = null;
}

/** The meeting's stream: the preview's, if it has what was asked, or a new capture. */
async function meetingCapture() {
  const audioOnly = $("audio-only").checked;
  const stream = await previewing;
  if (stream && stream === preview && stream.getVideoTracks().length === (audioOnly ? 0 : 1)) {
    stopPreview({ keep: true }); // the meeting's now
    return stream;
  }
  stopPreview();
  return capture.capture({ audioOnly });
}

$("audio-only").onchange = () => startPreview();

// The speaking indicator and the lobby's level meter, from the sound itself.
const SPEAKING = 0.01; // RMS above which a stream counts as speaking
setInterval(() => {
  if (!$("lobby").hidden) $("mic-level").value = Math.min(1, levels.level("preview") * 5);
  if ($("meeting").hidden) return;
  const speaking = new Set([...view.tiles.keys()].filter((k) => levels.level(k) > SPEAKING));
  const changed = speaking.size !== view.speaking.size || [...speaking].some((k) => !view.speaking.has(k));
  if (changed) {
    view.speaking = speaking;
    renderTiles();
  }
}, 200);
// Sound may be measured once the person has touched the page.
document.addEventListener("click", () => levels.resume());

$("devices-home").append($("devices"));
showInvitation();
startPreview();
// Loaded now, so that the join's checks (Rust's rules, through wasm) are ready at once.
loadWasm().catch((e) => status(`This browser cannot run the meeting's code: ${e.message ?? e}`, "lobby-status"));

// ---- SFrame self-test: the RFC 9605 vectors through the worker's own code ----


/** Vectors as text: KIDs and counters exceed 2^53, so they are read as strings. */
function parseVectors(text) {
  return JSON.parse(text.replace(/"(kid|ctr)":\s*(\d+)/g, '"$1":"$2"'));
}

async function runSelfTest(vectors) {
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
  const r = await (media?.e2ee ?? new (await import("./e2ee.js")).E2ee()).call("selftest", {
    headers: vectors.header, frames,
  });
  return { passed: r.passed + derivation, failed: r.failed + failures.length, failures: [...failures, ...r.failures] };
}

async function selfTest() {
  const r = await fetch("pkg/rfc9605.json");
  if (!r.ok) return;
  view.selftest = await runSelfTest(parseVectors(await r.text()));
  $("selftest").textContent = view.selftest.failed === 0
    ? `SFrame self-test: all ${view.selftest.passed} RFC 9605 checks pass in this browser.`
    : `SFrame self-test FAILED: ${view.selftest.failures.join("; ")}`;
}

/** The media path in the panel: direct, or relayed and over which protocol. */
async function showPath() {
  if (!media) return;
  const path = await media.path();
  // The pair is selected shortly after "connected": look again until it is.
  if (!path && media.pc.connectionState === "connected") setTimeout(showPath, 500);
  view.path = path;
  $("media-path").textContent = !path ? "–"
    : path.type === "relay" ? `relayed by TURN over ${(path.relayProtocol ?? "udp").toUpperCase()}`
    : `direct (${path.protocol.toUpperCase()}) to ${path.remote}`;
}

// ---- read-only views for tests and measurements ----

window.e2ee = {
  debug: async () => {
    const stats = [...(await media.pc.getStats()).values()];
    return {
      remote: media?.pc.remoteDescription?.sdp,
      local: media?.pc.localDescription?.sdp,
      inbound: stats.filter((r) => r.type === "inbound-rtp"),
      outbound: stats.filter((r) => r.type === "outbound-rtp"),
    };
  },
  path: async () => media?.path(),
  snapshot: () => ({
    me: view.me,
    path: view.path,
    epoch: view.epoch,
    safetyNumber: view.safety.join(" "),
    // As the panel shows it: no members without a current group.
    roster: (view.groupGone ? [] : view.roster).map((m) => m.identity),
    members: view.groupGone ? [] : view.roster,
    mayShare: view.mayShare,
    deviceSlot: view.deviceSlot,
    alerts: [...$("alerts").querySelectorAll("li")].map((li) => ({ kind: li.className, text: li.textContent })),
    log: view.log,
    speaker: view.speaker,
    speaking: [...view.speaking].map((k) => view.tiles.get(k)?.pid ?? null),
    sharing: !!screenTrack,
    sections: media?.pc.getTransceivers().length ?? 0,
    ice: media?.pc.iceConnectionState ?? null,
    iceRestartsOffered: media?.restarts ?? 0,
    iceRestarts: view.iceRestarts,
    devices: local?.getTracks().map((t) => ({ kind: t.kind, label: t.label, enabled: t.enabled, deviceId: t.getSettings().deviceId })) ?? [],
    selftest: view.selftest,
    tiles: [...view.tiles.values()].map((t) => ({
      pid: t.pid, key: t.key, ...tileName(t.pid, t), screen: isScreen(t), hidden: t.el.hidden,
      frames: t.frames, width: t.video.videoWidth, height: t.video.videoHeight,
    })),
    senders: view.roster.map((m) => ({ identity: m.identity, leaf: m.leaf, ...senderStats(m.leaf) })),
    firstDecrypted: view.stats?.firstDecrypted ?? {},
    joinClickedAt: view.joinClickedAt,
    timing: view.timing,
    sent: view.stats?.sent ?? 0,
    withheld: view.stats?.withheld ?? 0,
    keyframes: view.stats?.keyframes ?? 0,
    keyframeError: view.stats?.keyframeError,
    reconnecting: meeting?.reconnecting?.why ?? null,
    groupGone: view.groupGone,
    stale: view.stats?.stale ?? 0,
    retired: view.stats?.retired ?? 0,
    chat: chat.snapshot(),
    reconnects: view.reconnects,
  }),
  selfTest: (text) => runSelfTest(parseVectors(text)),
  bench: (sizes, n) => media.e2ee.call("bench", { sizes, n }),
};
