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
  // A burst shows the latest few (joins and leaves gather in their lanes: `toastMember`).
  const unlaned = [...$("toasts").children].filter((x) => !x.dataset.lane);
  for (const x of unlaned.slice(0, Math.max(0, unlaned.length - 4))) x.remove();
  return li;
}

/** The members a notice names, by the order they came: "Ann joined", "Ann and Bob joined",
 * "Ann, Bob and Cy joined", "Ann, Bob and 3 others joined". */
export function members(names, verb) {
  const [a, b, c] = names;
  switch (names.length) {
    case 1: return `${a} ${verb}`;
    case 2: return `${a} and ${b} ${verb}`;
    case 3: return `${a}, ${b} and ${c} ${verb}`;
    default: return `${a}, ${b} and ${names.length - 2} others ${verb}`;
  }
}

const gathering = new Map();

/** `name` joined (or left, as `verb` says): while the last such notice shows, the next ones
 * join it, so a hundred joining at once make one notice, not a hundred. */
export function toastMember(name, verb) {
  const g = gathering.get(verb) ?? { names: [], timer: 0 };
  clearTimeout(g.timer);
  // Every join counts, by name: two members of one name (a name the page flags as used
  // twice) are two, and one who left and came back is named again.
  g.names.push(name);
  g.timer = setTimeout(() => gathering.delete(verb), SHOWN_MS);
  gathering.set(verb, g);
  toast(members(g.names, verb), { lane: `members-${verb}` });
}

/** Removes every notice (leaving the meeting). */
export function clearToasts() {
  $("toasts").replaceChildren();
  for (const g of gathering.values()) clearTimeout(g.timer);
  gathering.clear();
}
