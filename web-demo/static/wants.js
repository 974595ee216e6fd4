// What this page shows of each received video, told to the SFU (`video_wants`): for each
// video's stream id, the height in device pixels of the tile showing it, 0 where none shows it
// (another page of the grid, a hidden tile, or the whole page in a background tab). The SFU
// forwards the layers that fill each tile and nothing of a video not shown, so a large meeting
// costs a page what it shows. A hint for the SFU's forwarding only: who a tile is stays the
// keys' word (who.js).
import { state } from "./state.js";
import { isMine } from "./who.js";

/** The last report, and the connection it went to (a new connection is told again). */
let sent = { signaling: null, text: "" };
let timer = null;

/** Tells the SFU, shortly, what the tiles show now, if that changed. */
export function reportWants() {
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    send();
  }, 250);
}

/** Tells the SFU at once (before the first offer: nothing shown yet, so that it sends no video
 * before the page names it, and the connection gets a section per video shown, not per video
 * in the room). */
export function reportWantsNow() {
  clearTimeout(timer);
  timer = null;
  send();
}

function send() {
  const signaling = state.signaling;
  if (!signaling) return;
  const videos = [];
  for (const t of state.tiles.values()) {
    // (A member tile shows no stream: nothing to ask for.)
    if (isMine(t) || t.stale || t.member) continue;
    const shown = !document.hidden && !t.el.hidden && !t.el.classList.contains("off-page");
    const height = shown ? Math.round(t.el.clientHeight * devicePixelRatio) : 0;
    videos.push({ stream: t.key, height: Math.min(height, 65535) });
  }
  videos.sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  const text = JSON.stringify(videos);
  if (signaling === sent.signaling && text === sent.text) return;
  sent = { signaling, text };
  signaling.send({ type: "video_wants", videos });
}

document.addEventListener("visibilitychange", reportWants);
