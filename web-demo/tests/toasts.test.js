// The words of a notice that gathers members (static/toasts.js), a pure function: run here
// without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { members } from "../static/toasts.js";

test("a notice names one, two or three members, and counts the rest", () => {
  assert.equal(members(["ann"], "joined"), "ann joined");
  assert.equal(members(["ann", "bob"], "left"), "ann and bob left");
  assert.equal(members(["ann", "bob", "cy"], "joined"), "ann, bob and cy joined");
  const hundred = Array.from({ length: 99 }, (_, i) => `bot-${i}`);
  assert.equal(members(hundred, "joined"), "bot-0, bot-1 and 97 others joined");
});
