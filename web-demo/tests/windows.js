// The page at a window's size, as a person sees it: what scrolls, what is in view, how much
// of the window the video gets. Shared by the Chromium (stage.test.js) and Firefox tests.
import assert from "node:assert/strict";
import { OUTPUT, allSeeAll, participant, sameEpoch, until } from "./harness.js";

export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** The page's geometry as a person sees it: sideways overflow, the video area's share of the
 * window, and the tiles on the stage now (their size, and which is the screen). */
export const geometry = (page) => page.evaluate(() => {
  const stage = document.getElementById("stage").getBoundingClientRect();
  const tiles = [...document.querySelectorAll(".tile")]
    .filter((t) => !t.hidden && !t.classList.contains("off-page"))
    .map((t) => {
      const r = t.getBoundingClientRect();
      return {
        key: t.dataset.key, label: t.getAttribute("aria-label"), w: r.width, h: r.height,
        screen: t.classList.contains("screen"), cameraOff: t.classList.contains("camera-off"),
        inside: r.left >= stage.left - 1 && r.right <= stage.right + 1 && r.top >= stage.top - 1 && r.bottom <= stage.bottom + 1,
      };
    });
  return {
    overflowX: document.documentElement.scrollWidth > window.innerWidth,
    overflowY: document.documentElement.scrollHeight > window.innerHeight,
    stageShare: (stage.width * stage.height) / (innerWidth * innerHeight),
    tiles,
    pager: !document.getElementById("pager").hidden,
  };
});

/** Whether `selector`'s box lies inside the window (seen without scrolling). */
export const inView = (page, selector) => page.$eval(selector, (e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
});

/** Checks the lobby and a meeting at `laptop` and `phone` in `browser` (Chromium or Firefox):
 * Join in view without scrolling, no sideways scrolling, the stage the most of the window,
 * panels over or beside it; screenshots named by `kind`. */
export async function checkWindows(browser, url, kind) {
  const lobby = await participant(browser, url, `windows-${kind}`, "alice", {
    viewport: PHONE, beforeJoin: async (page) => {
      assert.ok(await inView(page, "#join"), `${kind}: Join in view at 390×844`);
      assert.equal((await geometry(page)).overflowX, false, `${kind}: the lobby does not scroll sideways`);
      await page.screenshot({ path: `${OUTPUT}/lobby-phone-${kind}.png`, caret: "initial" });
    },
  });
  const laptop = await participant(browser, url, `windows-${kind}`, "bob", {
    viewport: LAPTOP, beforeJoin: async (page) => {
      assert.ok(await inView(page, "#join"), `${kind}: Join in view at 1280×800`);
      await page.screenshot({ path: `${OUTPUT}/lobby-laptop-${kind}.png`, caret: "initial" });
    },
  });
  const ps = [lobby, laptop];
  try {
    await allSeeAll(ps);
    await sameEpoch(ps);
    for (const [p, size] of [[lobby, "phone"], [laptop, "laptop"]]) {
      const g = await geometry(p.page);
      assert.equal(g.overflowX, false, `${kind} ${size}: no sideways scrolling`);
      assert.equal(g.overflowY, false, `${kind} ${size}: the meeting fits the window`);
      assert.ok(g.stageShare >= 0.6, `${kind} ${size}: the video area is ${Math.round(g.stageShare * 100)}% of the window`);
      assert.ok(g.tiles.every((t) => t.inside), `${kind} ${size}: every tile on the stage`);
      assert.ok(await inView(p.page, "#security"), `${kind} ${size}: the encryption state in view`);
      assert.ok(await inView(p.page, "#leave"), `${kind} ${size}: Leave in view`);
      await p.screenshot(`stage-${size}-${kind}.png`);
      // Panels: beside the stage on a laptop, over it on a phone; the page never widens.
      for (const panel of ["chat", "people", "e2ee"]) {
        await p.open(panel);
        const h = await geometry(p.page);
        assert.equal(h.overflowX, false, `${kind} ${size}: no sideways scrolling with ${panel} open`);
        assert.ok(await inView(p.page, `#${panel} .close`), `${kind} ${size}: ${panel} can be closed`);
        await p.screenshot(`panel-${panel}-${size}-${kind}.png`);
      }
      await p.page.click("#e2ee .close");
      assert.ok(await p.page.isHidden("#e2ee"));
    }
    // The extremes: the smallest phone, and a 4K screen.
    for (const [p, size] of [[lobby, { width: 360, height: 640 }], [laptop, { width: 3840, height: 2160 }]]) {
      await p.page.setViewportSize(size);
      await until(`${kind} ${size.width}: the stage laid out again`, async () => {
        const g = await geometry(p.page);
        return !g.overflowX && !g.overflowY && g.tiles.length === 2 && g.tiles.every((t) => t.inside) && g;
      }, 5000);
      const g = await geometry(p.page);
      assert.ok(g.stageShare >= 0.6, `${kind} ${size.width}×${size.height}: the video area is ${Math.round(g.stageShare * 100)}%`);
      if (size.width > 3000) assert.ok(g.tiles.every((t) => t.w > 1200), `${kind} 4K: tiles grow with the screen`);
    }
  } finally {
    await Promise.all(ps.map((p) => p.context.close().catch(() => {})));
  }
}

