// This member's own media and state: the microphone, camera and screen it sends, its raised
// hand, and telling the others (a signed application message) whenever that changes.
import * as capture from "./capture.js";
import { $, levels, ownState, state, status } from "./state.js";
import { dropTile, renderTiles, tile } from "./stage.js";

/** The buttons and the tab's title as our own state is: muted, camera, screen, hand. */
export function renderOwn() {
  const s = ownState();
  const on = !!state.local?.getAudioTracks()[0]?.enabled;
  $("mic").setAttribute("aria-pressed", String(!on));
  $("mic").textContent = on ? "Mute" : "Unmute";
  $("mic").title = `${on ? "Mute" : "Unmute"} microphone (M)`;
  const camera = !s.camera_off;
  $("camera").setAttribute("aria-pressed", String(!camera));
  $("camera").textContent = camera ? "Stop camera" : "Start camera";
  $("camera").title = `${camera ? "Stop" : "Start"} camera (V)`;
  const sharing = !!state.screenTrack;
  $("screen").setAttribute("aria-pressed", String(sharing));
  $("screen").textContent = sharing ? "Stop sharing" : "Share screen";
  $("hand").setAttribute("aria-pressed", String(state.handRaised));
  $("hand").textContent = state.handRaised ? "Lower hand" : "Raise hand";
  $("hand").title = `${state.handRaised ? "Lower" : "Raise"} hand (H)`;
  // The tab says where one is and whether one is heard, seen from any other tab.
  document.title = state.meeting
    ? `${state.local && !on ? "Muted · " : ""}${state.meeting.room} · E2EE meeting`
    : "E2EE meeting";
}

export function toggleMic() {
  const track = state.local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  announceState();
}

let cameraTurns = Promise.resolve();

/** Turns the camera off, or on again. Presses are taken one after another: a second press
 * while the first is still replacing the track acts on what the first left (two quick presses
 * end with the camera as it was, not off twice). */
export function toggleCamera() {
  cameraTurns = cameraTurns.then(async () => {
    if (!state.local) return;
    if (state.local.getVideoTracks().length) {
      await replaceLocal("video", null);
    } else {
      try {
        await replaceLocal("video", await capture.camera());
      } catch (e) {
        return status(`Cannot start the camera: ${e.message ?? e}`);
      }
    }
    announceState();
  });
  return cameraTurns;
}

export function toggleHand() {
  state.handRaised = !state.handRaised;
  announceState();
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
  announceState();
}

export function stopScreen() {
  const track = state.screenTrack;
  if (!track) return;
  state.screenTrack = null;
  track.stop();
  state.media?.replaceScreen(null);
  dropTile("self.screen");
  renderOwn();
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

/** Tells the others our state (on every change, on joining, and to newcomers). */
export function announceState() {
  if (state.signaling) say({ kind: "state", ...ownState() });
  renderOwn();
  renderTiles();
}
