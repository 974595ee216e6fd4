// The page's one state object, and what every view reads of it: the meeting this page is in,
// its connection, its own media, and the group as the MLS layer last stated it. Views render
// from it; connection.js and own.js change it.
import { Chat } from "./chat.js";
import { Levels } from "./capture.js";
import { toast } from "./toasts.js";

export const $ = (id) => document.getElementById(id);

/** The page's address as it was opened (room, token, relay=1): the address bar changes on
 * joining, and a later join or reconnect must still have what the link said. */
export const link = new URLSearchParams(location.search);
export const now = () => performance.timeOrigin + performance.now();

export const chat = new Chat();
/** Sound levels of the streams on the page (tile keys, and "preview"), measured here. */
export const levels = new Levels();

export const state = {
  /** The meeting this page is in (null in the lobby): what a reconnect needs again:
   * { room, name, token (from the link, or null), generation, reconnecting }. */
  meeting: null,
  signaling: null, // this connection's signaling session (signaling.js)
  media: null, // this connection's PeerConnection (media.js)
  early: [], // events that arrive before the PeerConnection exists
  local: null, // the camera and microphone this meeting sends
  screenTrack: null, // the screen shared, while it is
  handRaised: false,
  preview: null, // the lobby's capture, handed to the meeting on join
  me: null,
  epoch: null,
  safety: [],
  roster: [], // the group's members, as wasm judged them (roster.rs)
  mayShare: true, // false while someone unexplained is in the group: nothing is sent
  groupGone: null, // why there is no current group (re-made, lost), until the next one's epoch
  stats: null,
  timing: null,
  speaker: null, // the server's active speaker (its reading of the audio-level extension)
  paused: new Map(), // the server's word on the shown videos it sends nothing of: stream -> why
  speaking: new Set(), // tile keys whose decrypted sound is loud now (measured here)
  loudest: null, // the tile key of the last one heard loudest here (not ours)
  layout: "grid", // or "speaker": the person speaking large
  pinned: null, // the tile key the user pinned to the stage
  featured: null, // the tile key shown large now, if any
  page: 0, // the page of the grid (or strip) shown
  pages: 1,
  panel: null, // the side panel open: "chat", "people", "e2ee" or null
  unread: 0, // chat messages that came while the chat was closed
  // "self", "self.screen", or a received stream id (the server's label, "<pid>.<source>")
  // -> { key, pid, source, el, video, stream, tracks, frames, wasScreen }
  tiles: new Map(),
  log: [], // what this member refused or noticed, newest last
  joinClickedAt: null,
  selftest: null,
  reconnects: [], // { why, ms, at (when back), attempts } of each reconnect of this meeting
  iceRestarts: [], // { ms (down for), at } of each media path mended by ICE restart
};

/** Shows `text` in the status line `where`; in the meeting (whose status line is in the
 * encryption panel), as a notice on the stage too, for 8 s. */
export function status(text, where = "meeting-status") {
  $(where).textContent = text;
  if (text && where === "meeting-status") toast(text, { ms: 8000, lane: "status" });
}

export const member = (leaf) => state.roster.find((m) => m.leaf === leaf);
export const memberOf = (pid) => state.roster.find((m) => m.participant_id === pid);

export function senderStats(leaf) {
  const s = state.stats?.perLeaf?.[leaf];
  return { decrypted: s?.decrypted ?? 0, failed: s?.failed ?? 0, noKey: s?.noKey ?? 0 };
}

/** This member's microphone, camera, hand and screen, as its tile shows them to the others. */
export function ownState() {
  const audio = state.local?.getAudioTracks()[0];
  return {
    muted: !audio || !audio.enabled,
    camera_off: !state.local?.getVideoTracks().length,
    hand: state.handRaised,
    screen: state.screenTrack && state.media ? state.media.screenSource : null,
  };
}
