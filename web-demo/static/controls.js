// The meeting's controls and their keyboard shortcuts: microphone, camera, screen, hand,
// layout, panels, reactions, devices, invite, chat, leave; and the lobby's join. On a narrow
// window the secondary controls move into the "More" menu.
import { rerouteSections } from "./hearing.js";
import * as capture from "./capture.js";
import { REACTIONS } from "./chat.js";
import { $, chat, memberOf, state, status } from "./state.js";
import { replaceLocal, say, startScreen, stopScreen, toggleCamera, toggleHand, toggleMic } from "./own.js";
import { renderTiles, turnPage } from "./stage.js";
import { join, leave } from "./connection.js";
import { startPreview } from "./lobby.js";
import { messageCame, openPanel, togglePanel } from "./panels.js";
import { toast } from "./toasts.js";

/** The room's link for others. A token is never in it: ours names us, so whoever opened it
 * would join as us; in a room that needs tokens, each person gets their own link from the
 * organiser. */
async function invite() {
  if (!state.meeting) return;
  const link = `${location.origin}${location.pathname}?room=${encodeURIComponent(state.meeting.room)}`;
  let copied = true;
  try {
    await navigator.clipboard.writeText(link);
  } catch {
    copied = false;
  }
  const perPerson = state.meeting.token
    ? " This room needs an invitation per person: your own link holds your token, which names you, so ask the organiser for one for each person you invite."
    : "";
  $("invite-status")?.remove();
  // Copied: said, then gone. Not copied: the link stays until closed, to be copied by hand.
  toast(copied ? `Invite link copied: ${link}.${perPerson}` : `Copy this invite link: ${link}.${perPerson}`,
    { ms: copied && !perPerson ? 5000 : 0 }).id = "invite-status";
  $("more").open = false;
}

function toggleLayout() {
  state.layout = state.layout === "speaker" ? "grid" : "speaker";
  $("layout").setAttribute("aria-pressed", String(state.layout === "speaker"));
  renderTiles();
}

/** Single keys while in the meeting and not typing: shown in the "More" menu and in each
 * control's title and aria-keyshortcuts. */
const SHORTCUTS = {
  m: toggleMic,
  v: toggleCamera,
  h: toggleHand,
  l: toggleLayout,
  c: () => togglePanel("chat"),
  p: () => togglePanel("people"),
  e: () => togglePanel("e2ee"),
  Q: () => leave(), // with Shift: not by a slip of one key
};

const SHORTCUTS_KEY = "e2ee.shortcuts"; // "off" once someone turned single keys off

function onKey(e) {
  if ($("meeting").hidden || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const typing = e.target.closest?.("input, textarea, select, [contenteditable]");
  if (e.key === "Escape") {
    if ($("more").open) {
      $("more").open = false;
      $("more").querySelector("summary").focus();
    } else if (state.panel) {
      openPanel(null);
    }
    return;
  }
  // Single keys can be turned off (speech input types letters; WCAG 2.1.4).
  if (typing || !$("shortcuts-on").checked) return;
  const action = SHORTCUTS[e.shiftKey ? e.key.toUpperCase() : e.key.toLowerCase()];
  if (!action || (e.shiftKey && e.key.toUpperCase() !== "Q")) return;
  e.preventDefault();
  action();
}

/** Narrow windows keep the main controls in the bar and the rest in "More"; `order` is the
 * bar as the page has it. */
function fitControls(narrow, order) {
  const bar = document.querySelector("#meeting > footer.controls");
  if (narrow) $("more-home").append(...order.filter((b) => b.classList.contains("secondary")));
  else bar.append(...order);
}

/** Binds the page's controls to what they do (once, at load). */
export function bindControls() {
  $("mic").onclick = toggleMic;
  $("camera").onclick = toggleCamera;
  $("hand").onclick = toggleHand;
  $("layout").onclick = toggleLayout;
  $("screen").onclick = () => (state.screenTrack ? stopScreen() : startScreen());
  $("leave").onclick = () => leave();
  $("invite").onclick = invite;
  $("chat-toggle").onclick = () => togglePanel("chat");
  $("people-toggle").onclick = () => togglePanel("people");
  $("security").onclick = () => togglePanel("e2ee");
  for (const b of document.querySelectorAll(".panel .close")) b.onclick = () => openPanel(null);
  $("page-prev").onclick = () => turnPage(-1);
  $("page-next").onclick = () => turnPage(1);
  document.addEventListener("keydown", onKey);
  $("shortcuts-on").checked = localStorage.getItem(SHORTCUTS_KEY) !== "off";
  $("shortcuts-on").onchange = (e) => localStorage.setItem(SHORTCUTS_KEY, e.target.checked ? "on" : "off");
  const order = [...document.querySelector("#meeting > footer.controls").children];
  const narrow = matchMedia("(max-width: 699px)");
  narrow.addEventListener("change", () => fitControls(narrow.matches, order));
  fitControls(narrow.matches, order);

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
    for (const t of state.tiles.values()) if (!t.video.muted) capture.routeSound(t.video);
    rerouteSections();
  };

  chat.onadd = (entry) => messageCame(entry.mine);
  $("chat-form").onsubmit = (e) => {
    e.preventDefault();
    const text = $("chat-text").value;
    if (!text.trim()) return;
    if (say({ kind: "chat", text })) {
      chat.add({ from: memberOf(state.me)?.identity ?? "you", participant: state.me, text, mine: true });
      $("chat-text").value = "";
    }
  };

  $("react").replaceChildren(...Object.entries(REACTIONS).map(([emoji, words]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.emoji = emoji;
    b.textContent = `${emoji} ${words}`;
    b.title = words;
    b.setAttribute("aria-label", words);
    b.onclick = () => {
      if (say({ kind: "reaction", emoji })) chat.react("you", emoji);
      $("more").open = false;
    };
    return b;
  }));

  $("join-form").onsubmit = (e) => {
    e.preventDefault();
    join($("room").value.trim(), $("name").value.trim());
  };
}
