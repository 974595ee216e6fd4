// This member's own media and state: the microphone, camera and screen it sends, its raised
// hand, and telling the others (a signed application message) whenever that changes.
import * as capture from "./capture.js";
import { $, levels, ownState, state, status } from "./state.js";
import { dropTile, renderTiles, tile } from "./stage.js";

export function setMicButton(on) {
  $("mic").setAttribute("aria-pressed", String(!on));
  $("mic").textContent = on ? "Mute microphone" : "Unmute microphone";
}

export function setCameraButton(on) {
  $("camera").setAttribute("aria-pressed", String(!on));
  $("camera").textContent = on ? "Stop camera" : "Start camera";
}

export function setScreenButton(sharing) {
  $("screen").setAttribute("aria-pressed", String(sharing));
  $("screen").textContent = sharing ? "Stop sharing" : "Share screen";
}

/** Puts `track` in place of this meeting's track of its kind (or none): in the stream we
 * show ourselves and in the PeerConnection's sender. No renegotiation; the keys stay. */
export async function replaceLocal(kind, track) {
  const me = state.tiles.get("self");
  const old = kind === "video" ? state.local.getVideoTracks() : state.local.getAudioTracks();
  // The sender takes the new track first: it never holds a stopped one.
  await (kind === "video" ? state.media?.replaceVideo(track) : state.media?.replaceAudio(track));
  for (const t of old) {
    t.stop();
    state.local.removeTrack(t);
    me?.stream.removeTrack(t);
  }
  if (track) {
    state.local.addTrack(track);
    me?.stream.addTrack(track);
  }
  if (kind === "audio") levels.watch("self", state.local);
}

export async function startScreen() {
  let track;
  try {
    track = await capture.screen();
  } catch (e) {
    return status(`Cannot share the screen: ${e.message ?? e}`);
  }
  if (!track || !state.meeting) return track?.stop();
  state.screenTrack = track;
  // Stopped from the browser's own "stop sharing" bar, or the window closed.
  track.addEventListener("ended", () => track === state.screenTrack && stopScreen());
  tile("self.screen", state.me).stream.addTrack(track);
  await state.media?.replaceScreen(track);
  setScreenButton(true);
  announceState();
}

export function stopScreen() {
  const track = state.screenTrack;
  if (!track) return;
  state.screenTrack = null;
  track.stop();
  state.media?.replaceScreen(null);
  dropTile("self.screen");
  setScreenButton(false);
  if (state.meeting) announceState();
}

/** Says `message` to the others; false (with the reason shown) if it cannot be said. */
export function say(message) {
  try {
    state.signaling?.say(message);
    status("", "chat-status");
    return true;
  } catch (e) {
    status(`Not sent: ${e.message ?? e}`, "chat-status");
    return false;
  }
}

/** Tells the others our state (on a change, and to newcomers). */
export function announceState() {
  say({ kind: "state", ...ownState() });
  renderTiles();
}
