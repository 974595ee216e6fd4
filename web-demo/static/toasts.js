// Short notices of things that happened (someone joined or left, the link was copied, the
// connection came back): shown on the stage a few seconds, then gone by themselves.
const $ = (id) => document.getElementById(id);

const SHOWN_MS = 5000;

/** Shows `text` for `ms` (0: until closed; it gets a Close button). */
export function toast(text, { ms = SHOWN_MS } = {}) {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = text;
  li.append(span);
  if (ms > 0) {
    setTimeout(() => li.remove(), ms);
  } else {
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.onclick = () => li.remove();
    li.append(close);
  }
  $("toasts").append(li);
  // A burst (many joining at once) shows the latest few.
  while ($("toasts").children.length > 4) $("toasts").firstElementChild.remove();
  return li;
}

/** Removes every notice (leaving the meeting). */
export function clearToasts() {
  $("toasts").replaceChildren();
}
