// The side panels (chat, people, encryption): one open at a time beside the stage (over it
// on a phone), opened and closed from the controls, the header or the keyboard; and the
// chat's unread count while it is closed.
import { $, state } from "./state.js";
import { renderPanel } from "./panel.js";
import { place } from "./stage.js";

const TOGGLES = { chat: "chat-toggle", people: "people-toggle", e2ee: "security" };

/** Whether `el` is not rendered (inside a closed menu, or hidden). */
const isHidden = (el) => el.getClientRects().length === 0;

/** Opens panel `name` ("chat", "people", "e2ee"), closing the one open; null closes. */
export function openPanel(name) {
  state.panel = name;
  $("more").open = false;
  for (const [panel, toggle] of Object.entries(TOGGLES)) {
    const open = panel === name;
    // Focus inside a panel that closes goes back to what opened it (or nowhere): keys typed
    // next are shortcuts again, not text for a field nobody sees.
    if (!open && $(panel).contains(document.activeElement)) {
      document.activeElement.blur();
      // The control that opened it, or "More" when that control is folded away in it.
      (isHidden($(toggle)) ? $("more").querySelector("summary") : $(toggle)).focus();
    }
    $(panel).hidden = !open;
    $(toggle).setAttribute("aria-expanded", String(open));
  }
  // The people panel is built only while open.
  if (name === "people") renderPanel();
  if (name === "chat") {
    state.unread = 0;
    renderUnread();
    $("chat-text").focus();
  }
  place();
}

export const togglePanel = (name) => openPanel(state.panel === name ? null : name);

/** A message came (`mine`: we wrote it): counted while the chat is closed. */
export function messageCame(mine) {
  if (mine || state.panel === "chat") return;
  state.unread++;
  renderUnread();
}

function renderUnread() {
  $("unread").hidden = state.unread === 0;
  $("unread").textContent = String(state.unread);
  $("chat-toggle").setAttribute("aria-label", state.unread ? `Chat, ${state.unread} unread` : "Chat");
}

/** Leaving the meeting: every panel closed, nothing unread. */
export function resetPanels() {
  state.unread = 0;
  renderUnread();
  openPanel(null);
}
