// The lobby: the room and name (checked by Rust's rules through wasm), an invitation in the
// link, the camera preview and microphone level, and the token the join needs.
import * as capture from "./capture.js";
import { checkIdentity, checkRoom, maxIdentityBytes, maxRoomBytes } from "./pkg/web_demo_wasm.js";
import { $, levels, link, state, status } from "./state.js";

const bytes = (text) => new TextEncoder().encode(text).length;

/** What is wrong with a room and name as typed (already trimmed), or null: the rules are
 * Rust's (signaling_protocol::names, through wasm), the words the page's. */
export function checkJoin(room, name) {
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

export async function token(room, identity) {
  const fromUrl = link.get("token");
  if (fromUrl) return fromUrl;
  const r = await fetch(`/dev/token?room=${encodeURIComponent(room)}&identity=${encodeURIComponent(identity)}`);
  if (r.status === 404) {
    throw new Error("This server hands out no tokens here: open the link your organiser sent (…?token=…).");
  }
  if (!r.ok) throw new Error(`The server refused: ${(await r.text()) || r.statusText}.`);
  return (await r.json()).token;
}

/** The meeting this page is in (null in the lobby): what a reconnect needs again. */

export const NAME_KEY = "e2ee.name"; // the name last joined with, offered again

/** The lobby as the page opens: the room from the link, the name last used (or both from
 * an invitation's token), and the preview. */
export function openLobby() {
  $("room").value = link.get("room") ?? "";
  $("name").value = localStorage.getItem(NAME_KEY) ?? "";
  $("audio-only").onchange = () => startPreview();
  $("devices-home").append($("devices"));
  showInvitation();
  startPreview();
}

// ---- the lobby: an invitation in the link, the preview ----

/** The claims of a token (a JWT), read without checking: only to say what the link is for.
 * The server checks it. */
export function readToken(jwt) {
  try {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    return typeof claims.sub === "string" && typeof claims.room === "string" ? claims : null;
  } catch {
    return null;
  }
}

/** A link with a token names the room and the person: both are shown, not asked. */
export function showInvitation() {
  const jwt = link.get("token");
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
export function startPreview() {
  stopPreview();
  const audioOnly = $("audio-only").checked;
  const attempt = (async () => {
    try {
      const stream = await capture.capture({ audioOnly });
      if (previewing !== attempt || state.meeting) {
        stream.getTracks().forEach((t) => t.stop());
        return null;
      }
      state.preview = stream;
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
export function stopPreview({ keep = false } = {}) {
  if (!keep) state.preview?.getTracks().forEach((t) => t.stop());
  state.preview = null;
  levels.unwatch("preview");
  $("preview").srcObject = null;
}

/** The meeting's stream: the preview's, if it has what was asked, or a new capture. */
export async function meetingCapture() {
  const audioOnly = $("audio-only").checked;
  const stream = await previewing;
  if (stream && stream === state.preview && stream.getVideoTracks().length === (audioOnly ? 0 : 1)) {
    stopPreview({ keep: true }); // the meeting's now
    return stream;
  }
  stopPreview();
  return capture.capture({ audioOnly });
}

