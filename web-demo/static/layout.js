// Where each tile goes on the stage: a pure function of how many tiles there are, which one
// (if any) is featured, the stage's size and the page shown. No DOM here: stage.js measures
// and places; tests run this in node.

export const ASPECT = 16 / 9;
export const GAP = 8; // px between tiles
/** The smallest a grid tile may get before the grid pages instead: its width, by window. */
export const MIN_TILE_WIDTH = { wide: 240, narrow: 150 };
/** A grid page never holds more than this (beyond it faces are too small to read). */
export const MAX_PER_PAGE = { wide: 25, narrow: 8 };

/** Whether the stage is narrow (a phone, or a thin window): smaller tiles, a strip below. */
export const isNarrow = (width) => width < 700;

/** The largest `cols` × `rows` arrangement of `n` tiles of `aspect` in `width` × `height`:
 * { cols, rows, w, h } (tile size in px). */
export function fit(n, width, height, aspect = ASPECT, gap = GAP) {
  let best = { cols: 1, rows: Math.max(1, n), w: 0, h: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * aspect);
    if (w > best.w) best = { cols, rows, w, h: w / aspect };
  }
  best.w = Math.max(0, Math.floor(best.w));
  best.h = Math.max(0, Math.floor(best.h));
  return best;
}

/** How many tiles one grid page holds in `width` × `height` while each stays at least the
 * minimum width (at least one). */
export function perPage(width, height) {
  const kind = isNarrow(width) ? "narrow" : "wide";
  let n = 1;
  while (n < MAX_PER_PAGE[kind] && fit(n + 1, width, height).w >= MIN_TILE_WIDTH[kind]) n++;
  return n;
}

/** `count` tiles laid out as `fit` says, centred in the box at (x, y) of `width` × `height`. */
function gridRects(count, x, y, width, height) {
  const f = fit(count, width, height);
  const usedH = f.rows * f.h + (f.rows - 1) * GAP;
  const rects = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / f.cols);
    // The last row, if short, is centred too.
    const inRow = row === f.rows - 1 ? count - row * f.cols : f.cols;
    const rowW = inRow * f.w + (inRow - 1) * GAP;
    const col = i - row * f.cols;
    rects.push({
      x: Math.round(x + (width - rowW) / 2 + col * (f.w + GAP)),
      y: Math.round(y + (height - usedH) / 2 + row * (f.h + GAP)),
      w: f.w,
      h: f.h,
    });
  }
  return rects;
}

/**
 * The stage's layout: `count` tiles (in the order shown), `featured` the index of the one
 * shown large (a screen, the pinned tile, the speaker) or -1 for a grid; `page` the page
 * asked for (clamped). Returns { rects: one per tile ({x, y, w, h}, or null when not on this
 * page), page, pages, mode: "grid" | "featured" }.
 */
export function layout({ count, featured = -1, width, height, page = 0 }) {
  if (count === 0) return { rects: [], page: 0, pages: 1, mode: "grid" };
  if (featured < 0 || count === 1) {
    const per = perPage(width, height);
    const pages = Math.ceil(count / per);
    const p = Math.min(Math.max(0, page), pages - 1);
    const on = Math.min(per, count - p * per);
    const placed = gridRects(on, 0, 0, width, height);
    const rects = Array.from({ length: count }, (_, i) => {
      const k = i - p * per;
      return k >= 0 && k < on ? placed[k] : null;
    });
    return { rects, page: p, pages, mode: "grid" };
  }
  // One tile large, the others in a strip: beside it in a wide window, below it in a narrow
  // or tall one. The strip pages when it is full.
  const others = count - 1;
  const beside = !isNarrow(width) && width > height;
  const stripW = beside ? Math.min(280, Math.max(160, Math.round(width * 0.2))) : width;
  const stripH = beside ? height : Math.min(120, Math.max(72, Math.round(height * 0.15)));
  const tile = beside
    ? { w: stripW, h: Math.round(stripW / ASPECT) }
    : { h: stripH, w: Math.round(stripH * ASPECT) };
  const room = beside ? height : width;
  const step = (beside ? tile.h : tile.w) + GAP;
  const per = Math.max(1, Math.floor((room + GAP) / step));
  const pages = Math.ceil(others / per);
  const p = Math.min(Math.max(0, page), pages - 1);
  const on = Math.min(per, others - p * per);
  const mainW = beside ? width - stripW - GAP : width;
  const mainH = beside ? height : height - stripH - GAP;
  const [big] = gridRects(1, 0, 0, mainW, mainH);
  const used = on * step - GAP;
  const start = (room - used) / 2;
  const rects = [];
  let k = 0;
  for (let i = 0; i < count; i++) {
    if (i === featured) {
      rects.push(big);
      continue;
    }
    const slot = k - p * per;
    k++;
    if (slot < 0 || slot >= on) {
      rects.push(null);
      continue;
    }
    rects.push(beside
      ? { x: mainW + GAP, y: Math.round(start + slot * step), ...tile }
      : { x: Math.round(start + slot * step), y: mainH + GAP, ...tile });
  }
  return { rects, page: p, pages, mode: "featured" };
}
