// The meeting's controls: microphone, camera, screen, devices, invite, chat, hand, reactions,
// leave; and the lobby's join.
import * as capture from "./capture.js";
import { $, chat, memberOf, ownState, state, status } from "./state.js";
import {
  announceState, replaceLocal, say, setCameraButton, setMicButton, startScreen, stopScreen,
} from "./own.js";
import { renderTiles } from "./stage.js";
import { join, leave } from "./connection.js";
import { startPreview } from "./lobby.js";

/** Binds the page's controls to what they do (once, at load). */
export function bindControls() {

  $("mic").onclick = () => {
    const track = state.local?.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    setMicButton(track.enabled);
    announceState();
  };

  $("camera").onclick = async () => {
    if (!state.local) return;
    if (state.local.getVideoTracks().length) {
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

  // Devices: in the lobby the preview takes the new one; in the meeting the sender does.
  $("camera-select").onchange = async (e) => {
    capture.choose("camera", e.target.value);
    if (!state.meeting) return startPreview();
    if (!state.local?.getVideoTracks().length) return; // used when the camera starts again
    try {
      await replaceLocal("video", await capture.camera());
    } catch (err) {
      status(`Cannot use that camera: ${err.message ?? err}`);
    }
  };

  $("mic-select").onchange = async (e) => {
    capture.choose("mic", e.target.value);
    if (!state.meeting) return startPreview();
    if (!state.local) return;
    const enabled = state.local.getAudioTracks()[0]?.enabled ?? true;
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
    for (const t of state.tiles.values()) if (t.pid !== state.me) capture.routeSound(t.video);
  };

  /** The room's link for others. A token is never in it: ours names us, so whoever opened it
   * would join as us; in a room that needs tokens, each person gets their own link from the
   * organiser. */
  $("invite").onclick = async () => {
    if (!state.meeting) return;
    const link = `${location.origin}${location.pathname}?room=${encodeURIComponent(state.meeting.room)}`;
    let copied = true;
    try {
      await navigator.clipboard.writeText(link);
    } catch {
      copied = false;
    }
    const what = copied ? "Invite link copied" : "Copy this invite link";
    $("invite-status").textContent = state.meeting.token
      ? `${what}: ${link}. This room needs an invitation per person: your own link holds your token, which names you, so ask the organiser for one for each person you invite.`
      : `${what}: ${link}`;
    $("invite-status").hidden = false;
  };

  $("screen").onclick = () => (state.screenTrack ? stopScreen() : startScreen());

  $("leave").onclick = () => leave();

  $("chat-form").onsubmit = (e) => {
    e.preventDefault();
    const text = $("chat-text").value;
    if (!text.trim()) return;
    if (say({ kind: "chat", text })) {
      chat.add({ from: memberOf(state.me)?.identity ?? "you", participant: state.me, text, mine: true });
      $("chat-text").value = "";
    }
  };

  $("hand").onclick = () => {
    state.handRaised = !state.handRaised;
    say({ kind: "state", ...ownState() });
    $("hand").setAttribute("aria-pressed", String(state.handRaised));
    $("hand").textContent = state.handRaised ? "Lower hand" : "Raise hand";
    renderTiles();
  };

  for (const b of document.querySelectorAll(".react button")) {
    b.onclick = () => say({ kind: "reaction", emoji: b.dataset.emoji }) && chat.react("you", b.dataset.emoji);
  }

  $("join-form").onsubmit = (e) => {
    e.preventDefault();
    join($("room").value.trim(), $("name").value.trim());
  };
}
