// The stage: one tile per stream (our own camera and screen, and each received stream), its
// name, badges (from what the member signed of itself) and warnings, and who is speaking.
import * as capture from "./capture.js";
import { $, chat, levels, memberOf, ownState, senderStats, state } from "./state.js";
import { isScreen, tileName } from "./who.js";
import { renderAlerts } from "./alerts.js";

export function tile(key, pid, source = null) {
  let t = state.tiles.get(key);
  if (t) return t;
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.pid = pid;
  el.dataset.key = key;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (pid === state.me) video.muted = true;
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
  state.tiles.set(key, t);
  renderTiles();
  return t;
}

export function dropTile(key) {
  const t = state.tiles.get(key);
  if (!t) return;
  t.el.remove();
  levels.unwatch(key);
  state.tiles.delete(key);
}

export function renderTiles() {
  for (const t of state.tiles.values()) {
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
    t.el.classList.toggle("speaking", !screen && state.speaking.has(t.key));
    // What the member says of itself (signed by its key), never what the server says.
    const said = pid === state.me ? ownState() : chat.states.get(pid);
    const badges = screen ? [] : [
      said?.muted && "🔇 muted", said?.camera_off && "camera off",
      (pid === state.me ? state.handRaised : chat.hands.has(pid)) && "✋",
    ].filter(Boolean);
    t.badges.replaceChildren(...badges.map((b) => {
      const span = document.createElement("span");
      span.textContent = b;
      return span;
    }));
    t.el.classList.toggle("mislabelled", n.mislabelled);
    t.el.classList.toggle("nogroup", !!state.groupGone);
    t.relabel.textContent = n.mislabelled
      ? `The server labels this as ${n.claimed}; its frames are ${n.name}'s.`
      : "";
    const m = memberOf(pid);
    const s = m ? senderStats(m.leaf) : null;
    t.el.classList.toggle("undecryptable", pid !== state.me && !!s && s.failed > 0 && s.decrypted === 0);
  }
  renderAlerts();
}

// The speaking indicator and the lobby's level meter, from the sound itself.
const SPEAKING = 0.01; // RMS above which a stream counts as speaking

/** Measures who speaks (and the lobby's microphone level) five times a second, for the life
 * of the page. */
export function watchSpeaking() {
  setInterval(() => {
    if (!$("lobby").hidden) $("mic-level").value = Math.min(1, levels.level("preview") * 5);
    if ($("meeting").hidden) return;
    const speaking = new Set([...state.tiles.keys()].filter((k) => levels.level(k) > SPEAKING));
    const changed = speaking.size !== state.speaking.size || [...speaking].some((k) => !state.speaking.has(k));
    if (changed) {
      state.speaking = speaking;
      renderTiles();
    }
  }, 200);
  // Sound may be measured once the person has touched the page.
  document.addEventListener("click", () => levels.resume());
}
