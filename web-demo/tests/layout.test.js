// The stage's layout (static/layout.js), a pure function: run here without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GAP, fit, layout, perPage } from "../static/layout.js";

/** No two placed tiles overlap, and each lies inside the stage. */
function wellPlaced(rects, width, height) {
  const placed = rects.filter(Boolean);
  for (const r of placed) {
    assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.w <= width + 1 && r.y + r.h <= height + 1, `inside: ${JSON.stringify(r)}`);
    assert.ok(r.w > 0 && r.h > 0);
  }
  for (const a of placed) {
    for (const b of placed) {
      if (a === b) continue;
      const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
      assert.ok(apart, `${JSON.stringify(a)} overlaps ${JSON.stringify(b)}`);
    }
  }
}

test("eight tiles fit one grid page of a 1280×800 window's stage, larger than any other arrangement", () => {
  const [w, h] = [1264, 660];
  const l = layout({ count: 8, width: w, height: h });
  assert.equal(l.pages, 1);
  assert.equal(l.rects.filter(Boolean).length, 8);
  wellPlaced(l.rects, w, h);
  const f = fit(8, w, h);
  for (let cols = 1; cols <= 8; cols++) {
    const rows = Math.ceil(8 / cols);
    const width = Math.min((w - GAP * (cols - 1)) / cols, ((h - GAP * (rows - 1)) / rows) * 16 / 9);
    assert.ok(f.w >= Math.floor(width), `${cols} columns would give ${width}`);
  }
});

test("a grid pages when its tiles would get too small, and every tile is on exactly one page", () => {
  for (const [w, h] of [[1264, 660], [374, 700], [3840, 2000]]) {
    const per = perPage(w, h);
    const count = per * 2 + 1;
    const seen = new Array(count).fill(0);
    const first = layout({ count, width: w, height: h, page: 0 });
    assert.equal(first.pages, 3);
    for (let page = 0; page < first.pages; page++) {
      const l = layout({ count, width: w, height: h, page });
      assert.equal(l.page, page);
      wellPlaced(l.rects, w, h);
      l.rects.forEach((r, i) => r && seen[i]++);
    }
    assert.deepEqual(seen, new Array(count).fill(1));
    // A page past the last shows the last.
    assert.equal(layout({ count, width: w, height: h, page: 9 }).page, 2);
  }
});

test("a featured tile (a screen share) is the largest, with the others in a strip beside or below it", () => {
  for (const [w, h, beside] of [[1264, 660, true], [374, 700, false]]) {
    const l = layout({ count: 6, featured: 2, width: w, height: h });
    assert.equal(l.mode, "featured");
    wellPlaced(l.rects, w, h);
    const big = l.rects[2];
    for (const [i, r] of l.rects.entries()) {
      if (i === 2 || !r) continue;
      assert.ok(r.w * r.h * 3 < big.w * big.h, "the featured tile is several times larger");
      assert.equal(beside ? r.x > big.x + big.w - 1 : r.y > big.y + big.h - 1, true, "strip beside (wide) or below (narrow)");
    }
  }
  // A long strip pages too; the featured tile is on every page.
  const many = layout({ count: 30, featured: 0, width: 1264, height: 660 });
  assert.ok(many.pages > 1);
  for (let page = 0; page < many.pages; page++) {
    assert.ok(layout({ count: 30, featured: 0, width: 1264, height: 660, page }).rects[0]);
  }
});
