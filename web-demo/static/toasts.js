// Short notices of things that happened (someone joined or left, the link was copied, the
// connection came back): shown on the stage a few seconds, then gone by themselves.
const $ = (id) => document.getElementById(id);

const SHOWN_MS = 5000;

/** Shows `text` for `ms` (0: until closed; it gets a Close button). A `lane` holds one
 * notice at a time (the newest): texts from the server go in one, so however many it sends
 * they cannot push out the group's own notices (who joined, who left). */
export function toast(text, { ms = SHOWN_MS, lane = null } = {}) {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  li.append(span);
  if (ms > 0) {
    setTimeout(() => li.remove(), ms);
  } else {
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.onclick = () => li.remove();
    li.append(close);
    li.classList.add("closable");
  }
  if (lane) {
    li.dataset.lane = lane;
    $("toasts").querySelector(`li[data-lane="${lane}"]`)?.remove();
  }
  $("toasts").append(li);
  // A burst (many joining at once) shows the latest few.
  const unlaned = [...$("toasts").children].filter((x) => !x.dataset.lane);
  for (const x of unlaned.slice(0, Math.max(0, unlaned.length - 4))) x.remove();
  return li;
}

/** Removes every notice (leaving the meeting). */
export function clearToasts() {
  $("toasts").replaceChildren();
}
