// The stage: one tile per stream (our own camera and screen, and each received stream), its
// name, badges (from what the member signed of itself), placeholder and warnings, who is
// speaking, and where each tile goes (layout.js): a grid that pages, or one tile large (a
// screen share, the pinned tile, or in speaker view the person speaking) beside a strip.
import * as capture from "./capture.js";
import { $, chat, levels, memberOf, ownState, senderStats, state } from "./state.js";
import { isMine, isScreen, speakerOf, tileName } from "./who.js";
import { heardLevels } from "./hearing.js";
import { renderAlerts } from "./alerts.js";
import { layout } from "./layout.js";
import { reportWants } from "./wants.js";

function div(className, text = "") {
  const el = document.createElement("div");
  el.className = className;
  el.textContent = text;
  return el;
}

export function tile(key, pid, source = null, { render = true } = {}) {
  let t = state.tiles.get(key);
  // A stream id of the last connection, used again by the new one (ids start over when the
  // server restarts): another person, maybe, so a new tile.
  if (t?.stale) {
    dropTile(key);
    t = null;
  }
  if (t) {
    t.pid = pid; // our own tiles, after a rejoin under a new participant id
    return t;
  }
  const el = div("tile");
  el.setAttribute("role", "group");
  el.dataset.pid = pid;
  el.dataset.key = key;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("aria-hidden", "true");
  if (key === "self" || key === "self.screen") video.muted = true;
  else capture.routeSound(video);
  // Camera off (or never on): the name instead of a frozen or black frame.
  const placeholder = div("placeholder");
  placeholder.setAttribute("aria-hidden", "true");
  const avatar = div("avatar");
  const who = div("who");
  const caption = div("caption");
  placeholder.append(avatar, who, caption);
  const label = document.createElement("span");
  label.className = "label";
  label.setAttribute("aria-hidden", "true");
  const warning = div("warning", "Frames from this participant cannot be decrypted");
  const relabel = div("relabel");
  const badges = div("badges");
  badges.setAttribute("aria-hidden", "true");
  const paused = div("paused", "No current group: media is paused until the group forms again");
  const stale = div("stale", "Reconnecting…");
  const pin = document.createElement("button");
  pin.type = "button";
  pin.className = "pin";
  pin.onclick = () => {
    state.pinned = state.pinned === key ? null : key;
    renderTiles();
  };
  el.append(video, placeholder, label, warning, relabel, badges, paused, stale, pin);
  $("grid").append(el);
  t = {
    key, pid, source, el, video, label, relabel, badges, avatar, who, caption, pin,
    stream: new MediaStream(), tracks: new Map(), frames: 0, lastFrameAt: 0, createdAt: performance.now(), stalled: false,
    wasScreen: false, stale: false, shownName: null,
  };
  video.srcObject = t.stream;
  const count = () => {
    t.frames++;
    t.lastFrameAt = performance.now();
    if (t.stalled) renderTiles();
    video.requestVideoFrameCallback(count);
  };
  // Where frames cannot be counted, a stopped picture cannot be told from a still one.
  t.counted = "requestVideoFrameCallback" in video;
  if (t.counted) video.requestVideoFrameCallback(count);
  state.tiles.set(key, t);
  if (render) renderTiles();
  return t;
}

/** A tile for each member who says (signed) what its microphone and camera do but has no tile
 * of a stream: its camera is off, and its sound comes through the audio sections
 * (hearing.js). It goes once a stream of the member's has a tile, or the member has gone. */
function memberTiles() {
  // Whose streams have tiles: by the keys that open them (the server's label until a frame
  // opens), and those of the last connection too while it is being made again.
  const streamed = new Set();
  for (const t of state.tiles.values()) {
    if (!t.member && !t.wasScreen && !isMine(t)) streamed.add(speakerOf(t) ?? t.pid);
  }
  const want = new Set([...chat.states.keys()].filter((pid) => pid !== state.me && memberOf(pid) && !streamed.has(pid)));
  // (One of the last connection goes as the other stale tiles do.)
  for (const t of [...state.tiles.values()]) if (t.member && !t.stale && !want.has(t.pid)) dropTile(t.key);
  for (const pid of want) {
    const key = `member:${pid}`;
    if (!state.tiles.has(key)) tile(key, pid, null, { render: false }).member = true;
  }
}

export function dropTile(key) {
  const t = state.tiles.get(key);
  if (!t) return;
  t.el.remove();
  levels.unwatch(key);
  state.tiles.delete(key);
  if (state.pinned === key) state.pinned = null;
  if (state.loudest === key) state.loudest = null;
}

/** The connection is being made again: the others' tiles stay, marked, until the new
 * connection brings them back (under new participant ids); ours stays as it is. */
export function markStale() {
  const since = performance.now();
  for (const t of state.tiles.values()) {
    if (isMine(t) || t.stale) continue;
    t.stale = true;
    t.staleSince = since;
    levels.unwatch(t.key);
  }
  if (state.loudest && state.tiles.get(state.loudest)?.stale) state.loudest = null;
  renderTiles();
}

/** Drops the tiles made stale before `before` (a performance.now() time) that nobody came
 * back for: those people are not in the new meeting. */
export function dropStale(before = Infinity) {
  for (const t of [...state.tiles.values()]) if (t.stale && t.staleSince < before) dropTile(t.key);
  renderTiles();
}

/** What a tile's member says of itself (signed by its key; ours as it is), never what the
 * server says. */
const saidBy = (t) => (isMine(t) ? ownState() : chat.states.get(speakerOf(t)));

/** Whether tile `t`'s member says its camera is off (ours: whether we send none). */
function cameraOff(t, said) {
  if (isScreen(t)) return false;
  if (t.key === "self") return !state.local?.getVideoTracks().length;
  return !!said?.camera_off;
}

/** Whether tile `t` has no picture to show although nobody said the camera is off: no video
 * track (an audio-only member whose word has not come, or a server withholding it), or frames
 * that stopped (a server dropping them): the name, never a frozen frame. */
const STALL_MS = 2000;
const FIRST_FRAME_MS = 5000;
function noVideo(t) {
  if (isScreen(t) || isMine(t) || !t.counted) return false;
  // Frames are not drawn (nor counted) in a hidden tab or off the page shown.
  if (document.hidden || t.el.classList.contains("off-page")) return false;
  // A new tile gets longer: its first frame waits for a key frame under the group's key.
  const wait = t.frames > 0 ? STALL_MS : FIRST_FRAME_MS;
  return t.stream.getVideoTracks().length === 0 || performance.now() - Math.max(t.lastFrameAt, t.createdAt) > wait;
}

/** What a tile without a picture says: "no video", or why the server says it pauses it (its
 * word only, shown as its word: it changes no name). */
const PAUSED = {
  bandwidth: "video paused by the server: your connection is slow",
  last_n: "video paused by the server: showing the most recent speakers",
};
const stallCaption = (t) => PAUSED[state.paused.get(t.key)] ?? "no video";

const hasHand = (t) => (isMine(t) ? state.handRaised : chat.hands.has(speakerOf(t)));

/** The speaker to show large in speaker view: the loudest decrypted sound measured here,
 * else the one the server names (its reading of the audio-level extension); not ourselves
 * unless alone. */
function speakerTile(shown) {
  const others = shown.filter((t) => !isMine(t) && !isScreen(t));
  return others.find((t) => t.key === state.loudest)
    ?? others.find((t) => t.pid === state.speaker)
    ?? others[0] ?? shown[0];
}

/** The tile shown large, or null for the grid: the pinned one, else a screen shared (the
 * others' before ours), else in speaker view the speaker. */
function featuredTile(shown) {
  const pinned = shown.find((t) => t.key === state.pinned);
  if (pinned) return pinned;
  const screens = shown.filter(isScreen);
  const screen = screens.find((t) => !isMine(t)) ?? screens[0];
  if (screen) return screen;
  return state.layout === "speaker" && shown.length > 1 ? speakerTile(shown) : null;
}

/** Names, badges, warnings and overlays of every tile, then where each goes. */
export function renderTiles() {
  memberTiles();
  // A tile of the last connection goes once the new one shows the same person, by key.
  for (const t of [...state.tiles.values()]) {
    if (!t.stale) continue;
    const back = [...state.tiles.values()].some((o) => !o.stale && !isMine(o) && o.wasScreen === t.wasScreen
      && tileName(o).byKey && tileName(o).name === t.shownName);
    if (back) dropTile(t.key);
  }
  for (const t of state.tiles.values()) {
    const n = tileName(t);
    const screen = isScreen(t);
    t.wasScreen ||= screen;
    // A screen no longer shared: its stream stays negotiated but shows nothing. (One of the
    // last connection stays while the page reconnects.)
    t.el.hidden = t.wasScreen && !screen && !t.stale;
    t.el.classList.toggle("screen", screen);
    // A tile of a connection being replaced keeps the name it had, and how it had it.
    if (!t.stale) {
      t.shownName = n.name;
      t.shownByKey = n.byKey;
    }
    const base = t.shownName ?? n.name;
    const byKey = t.shownByKey ?? n.byKey;
    const name = screen ? `${base}: screen` : base;
    t.label.textContent = byKey ? name : `${name} (not yet decrypted)`;
    t.label.title = name;
    const speaking = !screen && !t.stale && state.speaking.has(t.key);
    t.el.classList.toggle("speaking", speaking);
    const said = saidBy(t);
    const off = cameraOff(t, said);
    t.stalled = !off && noVideo(t);
    t.el.classList.toggle("camera-off", off || t.stalled);
    t.caption.textContent = t.stalled ? stallCaption(t) : "";
    // Nobody's face before a key opened a frame: the name is only the server's claim. (Said as
    // a claim, not as a failure: a video the server paused before its first frame is not
    // broken; one whose frames fail is marked undecryptable below.)
    t.avatar.textContent = byKey ? [...base][0]?.toUpperCase() ?? "?" : "?";
    t.who.textContent = byKey ? base : `${base}, as the server names it: no frame decrypted yet`;
    const badges = screen ? [] : [
      said?.muted && "🔇 muted", off && "camera off", hasHand(t) && "✋ hand raised",
    ].filter(Boolean);
    t.badges.replaceChildren(...badges.map((b) => {
      const span = document.createElement("span");
      span.textContent = b;
      return span;
    }));
    t.el.classList.toggle("mislabelled", n.mislabelled);
    t.el.classList.toggle("nogroup", !!state.groupGone);
    t.el.classList.toggle("reconnecting", t.stale);
    t.relabel.textContent = n.mislabelled
      ? `The server labels this as ${n.claimed}; its frames are ${n.name}'s.`
      : "";
    const m = !isMine(t) && memberOf(t.pid);
    const s = m ? senderStats(m.leaf) : null;
    const undecryptable = !!s && s.failed > 0 && s.decrypted === 0;
    t.el.classList.toggle("undecryptable", undecryptable);
    // What a screen reader says of the tile: who (by the keys), and its state.
    const facts = [
      screen ? "screen share" : said ? (said.muted ? "muted" : "microphone on") : null,
      off && "camera off", t.stalled && stallCaption(t), speaking && "speaking", hasHand(t) && "hand raised",
      t.stale ? "reconnecting"
        : isMine(t) ? null
        : n.mislabelled ? `the server calls it ${n.claimed}, the keys say ${n.name}`
        : n.byKey ? "named by the keys that open its media" : "not yet decrypted: the name is the server's",
      undecryptable && "cannot be decrypted",
      state.groupGone && "paused: no current group",
    ].filter(Boolean);
    t.el.setAttribute("aria-label", [name, ...facts].join(", "));
    const pinned = state.pinned === t.key;
    t.el.classList.toggle("pinned", pinned);
    t.pin.textContent = pinned ? "Unpin" : "Pin";
    t.pin.setAttribute("aria-label", `${pinned ? "Unpin" : "Pin"} ${name}`);
    t.pin.setAttribute("aria-pressed", String(pinned));
  }
  place();
  renderAlerts();
}

/** Puts the tiles where the layout says, for the stage's size now. */
export function place() {
  const grid = $("grid");
  // Ours first, then those a key has named, as they came (streams nobody's key opens cannot
  // push people to another page); screens wherever the layout features them.
  const rank = (t) => (isMine(t) ? 0 : t.shownByKey ? 1 : 2);
  const shown = [...state.tiles.values()].filter((t) => !t.el.hidden).sort((a, b) => rank(a) - rank(b));
  const featured = featuredTile(shown);
  const l = layout({
    count: shown.length,
    featured: featured ? shown.indexOf(featured) : -1,
    width: grid.clientWidth,
    height: grid.clientHeight,
    page: state.page,
  });
  state.page = l.page;
  state.pages = l.pages;
  state.featured = featured?.key ?? null;
  shown.forEach((t, i) => {
    const r = l.rects[i];
    t.el.classList.toggle("off-page", !r);
    t.el.classList.toggle("featured", t === featured);
    if (!r) return;
    Object.assign(t.el.style, { left: `${r.x}px`, top: `${r.y}px`, width: `${r.w}px`, height: `${r.h}px` });
  });
  $("pager").hidden = l.pages < 2;
  $("stage").classList.toggle("single-page", l.pages < 2);
  $("page-of").textContent = `Page ${l.page + 1} of ${l.pages}`;
  $("page-prev").disabled = l.page === 0;
  $("page-next").disabled = l.page >= l.pages - 1;
  reportWants();
}

/** Another page of tiles: `step` -1 or +1. */
export function turnPage(step) {
  state.page = Math.max(0, state.page + step);
  place();
}

// The speaking indicator and the lobby's level meter, from the sound itself.
const SPEAKING = 0.01; // RMS above which a stream counts as speaking
const HOLD_MS = 1500; // speaker view keeps a speaker this long before it turns to another

/** Measures who speaks (and the lobby's microphone level) five times a second, for the life
 * of the page, and lays the stage out again whenever its size changes. */
export function watchStage() {
  let since = 0;
  setInterval(() => {
    if (!$("lobby").hidden) $("mic-level").value = Math.min(1, levels.level("preview") * 5);
    if ($("meeting").hidden) return;
    // Ours by its tile; the others' by the audio sections, each on the tile of the member
    // whose key opened what it plays.
    const byMember = heardLevels();
    const heard = [...state.tiles.values()]
      .map((t) => [t.key, isMine(t) ? levels.level(t.key) : isScreen(t) ? 0 : byMember.get(speakerOf(t)) ?? 0])
      .filter(([, l]) => l > SPEAKING);
    const speaking = new Set(heard.map(([k]) => k));
    const loudest = heard.filter(([k]) => k !== "self").sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
    let changed = speaking.size !== state.speaking.size || [...speaking].some((k) => !state.speaking.has(k));
    // Speaker view turns to a new speaker only once the last has had the stage a while.
    const t = performance.now();
    if (loudest && loudest !== state.loudest && t - since > HOLD_MS) {
      state.loudest = loudest;
      since = t;
      changed = true;
    }
    // A picture that stopped coming shows the name instead.
    if ([...state.tiles.values()].some((x) => !x.stalled && noVideo(x) && !cameraOff(x, saidBy(x)))) changed = true;
    if (changed) {
      state.speaking = speaking;
      renderTiles();
    }
  }, 200);
  new ResizeObserver(() => place()).observe($("grid"));
  // Sound may be measured once the person has touched the page.
  document.addEventListener("click", () => levels.resume());
}
