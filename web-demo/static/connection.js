// The connection to the meeting: join, the session's events (the MLS group's epochs,
// rosters, messages, media negotiation), received tracks, reconnect with backoff, and leave.
import { Meeting, Refused, Signaling, loadWasm, refusal } from "./signaling.js";
import { Media } from "./media.js";
import * as capture from "./capture.js";
import { deviceKey, loadTrust, onOtherTabs, saveTrust } from "./device.js";
import {
  parseStreamId as wasmParseStreamId, reconnectDelayMs, reconnectGivesUp, trustLoad, trustMerge,
} from "./pkg/web_demo_wasm.js";
import { $, chat, levels, link, now, state, status } from "./state.js";
import { forgetLog, note, renderAlerts, setRoster } from "./alerts.js";
import { dropSections, hearSection } from "./hearing.js";
import { dropStale, dropTile, markStale, renderTiles, tile } from "./stage.js";
import { renderPanel, showPath } from "./panel.js";
import { announceState, renderOwn, stopScreen } from "./own.js";
import { resetPanels } from "./panels.js";
import { clearToasts, toast, toastMember } from "./toasts.js";
import { NAME_KEY, checkJoin, meetingCapture, startPreview, token } from "./lobby.js";
import { selfTest } from "./selftest.js";
import { isMine } from "./who.js";
import { reportWants, reportWantsNow } from "./wants.js";

/** The group is gone (`why`: the server re-made it, or this page lost track of it): nothing
 * more is sealed under its keys, frames under them open only for the grace time, and the page
 * shows no epoch, safety number or members until the next group's first epoch (the tiles
 * keep the names the last group's keys gave them, marked paused). */
export function groupGone(why) {
  state.media?.e2ee.retire();
  Object.assign(state, { groupGone: why, epoch: null, safety: [] });
  renderPanel();
  renderTiles();
}

export function share(mayShare) {
  state.mayShare = mayShare;
  state.media?.e2ee.setSending(mayShare);
  renderAlerts();
}

// ---- session events ----

export function onevent(e) {
  if (!state.media && ["sdp_offer", "sdp_answer", "ice_candidate", "new_epoch", "send_gate", "group_reset", "group_lost"].includes(e.type)) {
    state.early.push(e);
    return;
  }
  switch (e.type) {
    case "new_epoch": {
      const others = (list) => list.filter((m) => m.participant_id !== state.me);
      // Our first epoch in this group (a join or rejoin by Welcome, a group made again).
      const first = state.epoch === null;
      state.groupGone = null;
      state.epoch = e.epoch;
      state.safety = e.safety_number;
      setRoster(e.roster);
      state.media.e2ee.setKeys(e.keys);
      share(e.may_send);
      // In a group for the first time (a join, a rejoin, a group made again), or with someone
      // new in it: the members learn our state from us, signed; nobody else can tell them.
      if (first || others(e.added).length) announceState();
      // Someone new: a key frame under the new key lets them see us at once.
      if (others(e.added).length) state.media.e2ee.requestKeyframe();
      for (const m of others(e.added)) toastMember(m.identity, "joined");
      for (const m of others(e.removed)) {
        toastMember(m.identity, "left");
        chat.left(m.participant_id);
      }
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
      // The server's word: its media goes; what the member said of itself goes with the
      // commit that removes it from the group.
      for (const t of [...state.tiles.values()]) if (t.pid === e.participant_id) dropTile(t.key);
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
      state.media.onOffer(e.sdp);
      break;
    case "sdp_answer":
      state.media.onAnswer(e.sdp);
      break;
    case "ice_candidate":
      state.media.onCandidate(e.candidate);
      break;
    case "active_speaker":
      state.speaker = e.participant_id;
      renderTiles();
      break;
    case "video_streams":
      showStreams(e.streams);
      break;
    case "video_sections":
      state.media?.mapSections(e.sections);
      break;
    case "paused_videos":
      state.paused = new Map(e.videos.map((v) => [v.stream, v.reason]));
      renderTiles();
      break;
    case "send_layers":
      state.media?.sendLayers(e.source, e.spatial_layers, e.height);
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
 * "<pid>.<source>", or "<pid>"), or the audio section (`audio`) it is
 * (signaling_protocol::media_stream). */
export function parseStreamId(id) {
  const named = wasmParseStreamId(id);
  return named === undefined ? null : JSON.parse(named);
}

/** An audio section arrived: the loudest microphones take turns in a few of them, with no
 * tile of their own. `key`: what the worker counts this arrival of `track` under. */
export function ontrack(streamId, track, key) {
  if (parseStreamId(streamId)?.audio !== undefined) hearSection(streamId, track, key);
}

/** The SFU says a video section carries stream `streamId` from now on (null: nothing), its
 * frames counted under `key`: its track leaves the tile it was in, whose keys no longer
 * describe what it shows (else that tile would show the newcomer under the last one's name),
 * for the stream's tile. */
export function onvideo(streamId, track, key) {
  for (const t of state.tiles.values()) {
    if (!t.tracks.has(track.id) || (t.key === streamId && !t.stale)) continue;
    t.stream.removeTrack(track);
    t.tracks.delete(track.id);
  }
  const named = streamId === null ? null : parseStreamId(streamId);
  if (named && named.audio === undefined && named.pid !== state.me) {
    const t = tile(streamId, named.pid, named.source, { render: false });
    if (!t.tracks.has(track.id)) t.stream.addTrack(track);
    t.tracks.set(track.id, key);
  }
  renderTiles();
}

/** signaling_protocol::MAX_VIDEO_WANTS. */
const MAX_VIDEO_WANTS = 1024;

/** The videos published in the room now (the SFU's word, a hint): a tile for each of the
 * others', so that the page can say which it shows; a tile whose stream is gone goes. */
function showStreams(all) {
  // (As many as the page could name in `video_wants`: a longer list is no meeting's.)
  const streams = all.slice(0, MAX_VIDEO_WANTS);
  const listed = new Set(streams);
  for (const t of [...state.tiles.values()]) {
    if (!isMine(t) && !t.member && !t.stale && !listed.has(t.key)) dropTile(t.key);
  }
  for (const s of streams) {
    const named = parseStreamId(s);
    if (named && named.audio === undefined && named.pid !== state.me) tile(s, named.pid, named.source, { render: false });
  }
  renderTiles();
  reportWants();
}

export async function join(room, name) {
  await loadWasm();
  const wrong = checkJoin(room, name);
  if (wrong) return status(wrong, "lobby-status");
  localStorage.setItem(NAME_KEY, name);
  state.joinClickedAt = now();
  $("join").disabled = true;
  status("Joining…", "lobby-status");
  const fromLink = link.get("token");
  state.meeting = { room, name, token: fromLink, generation: 0, reconnecting: null };
  try {
    levels.resume();
    state.local = await meetingCapture();
    await connect();
    history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
    selfTest().catch((e) => ($("selftest").textContent = `SFrame self-test could not run: ${e}`));
  } catch (e) {
    leave(unreachable(e)
      ? "Cannot reach the meeting server: check your network connection, or try again in a moment."
      : String(e.message ?? e));
  } finally {
    $("join").disabled = false;
  }
}

let trusting = null;
/** The page's trust store, loaded once for the life of the page (wasm keeps it across every
 * reconnect); records other tabs write are taken in as they come. */
export function trustReady() {
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
      if (trustMerge(written)) state.signaling?.refresh();
    });
  })();
  return trusting;
}

/** Joins the room (again, after a reconnect) with this device's identity and the tracks
 * already captured: signaling, the MLS group (the server adds us anew), the PeerConnection. */
export async function connect() {
  const m = state.meeting;
  const generation = ++m.generation;
  // Whether this attempt is still the meeting's connection: events of an earlier one (still
  // in flight when it was dropped) are not this one's.
  const live = () => state.meeting === m && m.generation === generation;
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
  state.signaling = joined;
  state.me = state.signaling.joined.participant_id;
  state.deviceSlot = device.slot;
  const iceServers = (state.signaling.joined.ice_servers ?? []).map((s) => ({
    urls: s.urls, username: s.username, credential: s.credential,
  }));
  // Nothing shown yet, said before our offer: no video comes before a tile names it.
  reportWantsNow();
  const relayOnly = link.get("relay") === "1";
  state.media = new Media({
    signaling: state.signaling, iceServers, relayOnly, local: state.local, screen: state.screenTrack, ontrack, onvideo,
    onstate: (s) => {
      if (!live()) return;
      // A broken ICE path is mended by ICE restarts first (onstuck when they fail).
      if (s === "failed" && !state.media.recovering) reconnect("the media connection failed");
      if (s === "connected") showPath();
    },
    onmedia: ({ down, ms }) => {
      if (!live()) return;
      if (down) {
        showReconnecting("Media interrupted: reconnecting it…");
      } else {
        showReconnecting(null);
        state.iceRestarts.push({ ms, at: now() });
        showPath();
      }
    },
    onstuck: () => live() && reconnect("the media connection failed"),
  });
  state.media.e2ee.onstats = ({ stats, timing }) => {
    state.stats = stats;
    state.timing = timing;
    renderPanel();
    renderTiles();
  };
  // Counts only, for the operator's metrics: how many received frames failed here.
  let reported = 0;
  state.reporter = setInterval(() => {
    const failing = Object.values(state.stats?.perLeaf ?? {})
      .reduce((n, s) => n + s.failed + s.noKey, state.stats?.unknownKid ?? 0);
    if (failing !== reported) {
      reported = failing;
      state.signaling?.send({ type: "media_stats", decrypt_failures: failing });
    }
  }, 5000);
  status("", "lobby-status");
  $("lobby").hidden = true;
  $("meeting").hidden = false;
  $("room-title").textContent = m.room;
  $("room-title").title = m.room;
  renderOwn();
  const me = tile("self", state.me);
  state.local.getTracks().forEach((tr) => me.stream.addTrack(tr));
  levels.watch("self", state.local);
  if (state.screenTrack) tile("self.screen", state.me).stream.addTrack(state.screenTrack);
  $("settings").append($("devices"));
  capture.listDevices(state.local.getTracks());
  for (const e of state.early.splice(0)) onevent(e);
  await state.media.offer();
}

/** Whether `e` (of a join or reconnect attempt) says the server could not be reached: the
 * browser's fetch (TypeError: "Failed to fetch", "NetworkError when attempting…") or the
 * WebSocket's. */
function unreachable(e) {
  return e instanceof TypeError || /cannot reach the server/.test(e?.message ?? "");
}

/** Ends this page's connection (signaling, MLS state, media) but not the meeting: the
 * captured tracks stay. `reconnecting`: the others' tiles stay (marked) until the next
 * connection brings them back; otherwise they go. */
export function disconnect({ reconnecting = false } = {}) {
  clearInterval(state.reporter);
  state.signaling?.leave();
  state.media?.close();
  dropSections();
  if (reconnecting) markStale();
  else {
    for (const key of [...state.tiles.keys()]) dropTile(key);
    $("people-filter").value = "";
  }
  state.signaling = state.media = null;
  state.early = [];
  chat.reset();
  // The log stays: what this page noticed in the meeting is still true after a reconnect.
  Object.assign(state, { me: null, epoch: null, safety: [], roster: [], stats: null, speaker: null, speaking: new Set(), paused: new Map(), mayShare: true, groupGone: null });
  renderAlerts();
  renderPanel();
}

// When to try again, and when to give up, is the Rust clients' policy too
// (signaling_participant::reconnect, through wasm): quick at first, then every 8 s, with
// jitter, for two minutes.

/** The connection dropped (`why`): the meeting stays on screen as "reconnecting…" while this
 * page joins again, with backoff, until it is back, refused for good, or left. */
export async function reconnect(why) {
  const m = state.meeting;
  if (!m || m.reconnecting) return;
  m.reconnecting = { since: now(), why };
  disconnect({ reconnecting: true });
  showReconnecting(`Connection lost (${why}). Reconnecting…`);
  for (let attempt = 0; state.meeting === m; attempt++) {
    const down = now() - m.reconnecting.since;
    if (reconnectGivesUp(down)) {
      leave(`Lost the connection to the meeting (${why}), and could not reconnect for ${Math.round(down / 1000)} s.`);
      return;
    }
    await new Promise((r) => setTimeout(r, reconnectDelayMs(attempt + 1, Math.random())));
    if (state.meeting !== m) return;
    try {
      await connect();
      if (state.meeting !== m) return;
      const ms = now() - m.reconnecting.since;
      state.reconnects.push({ why, ms, at: now(), attempts: attempt + 1 });
      m.reconnecting = null;
      showReconnecting(null);
      // Those the new meeting brings back replace their old tiles as their keys name them;
      // whoever is not back by then is gone.
      const back = performance.now();
      setTimeout(() => dropStale(back), 15000);
      const after = `after ${(ms / 1000).toFixed(1)} s (${why})`;
      toast(`Reconnected ${after}. The group is new: compare the safety number again.`, { ms: 8000 });
      note(`${new Date().toLocaleTimeString()}: reconnected ${after}; a new group, with a new safety number.`);
      return;
    } catch (e) {
      if (e instanceof Refused && e.final) {
        leave(e.message);
        return;
      }
      disconnect({ reconnecting: true });
      const failed = unreachable(e) ? "the server cannot be reached" : String(e.message ?? e);
      showReconnecting(`Connection lost (${why}). Reconnecting… attempt ${attempt + 1} failed: ${failed}.`);
    }
  }
}

export function showReconnecting(text) {
  $("reconnecting").hidden = !text;
  $("reconnecting").textContent = text ?? "";
}

/** Leaves the meeting and shows the lobby with `why` (or nothing, for a leave by choice). */
export function leave(why = "") {
  disconnect();
  state.meeting = null;
  showReconnecting(null);
  state.local?.getTracks().forEach((t) => t.stop());
  state.local = null;
  stopScreen();
  chat.messages = [];
  chat.render();
  forgetLog();
  clearToasts();
  resetPanels();
  Object.assign(state, { handRaised: false, pinned: null, page: 0, loudest: null });
  renderOwn();
  status("");
  status(why, "lobby-status");
  $("meeting").hidden = true;
  $("lobby").hidden = false;
  $("devices-home").append($("devices"));
  startPreview();
}
