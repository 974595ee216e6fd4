// The meeting's sound. The SFU forwards the loudest few microphones of the room through a fixed
// set of audio sections (decision 0044), each carrying whoever is loud at the moment: each
// section plays in an audio element of its own, and who speaks in it is known by the key that
// opened its latest frames (the worker says), never by the server's word.
import * as capture from "./capture.js";
import { levels, member, state } from "./state.js";

/** The audio sections by stream id: { el, stream, key (what the worker counts it under) }. */
const sections = new Map();

const levelKey = (id) => `section:${id}`;

/** The audio section `streamId` brings `track` (again, after a renegotiation). */
export function hearSection(streamId, track, key) {
  let s = sections.get(streamId);
  if (!s) {
    const el = document.createElement("audio");
    el.autoplay = true;
    el.hidden = true;
    capture.routeSound(el);
    document.body.append(el);
    s = { el, stream: new MediaStream() };
    sections.set(streamId, s);
  }
  for (const old of s.stream.getTracks()) if (old !== track) s.stream.removeTrack(old);
  if (!s.stream.getTracks().includes(track)) s.stream.addTrack(track);
  s.el.srcObject = s.stream;
  s.key = key;
  levels.watch(levelKey(streamId), s.stream);
}

/** The participant whose key opened the latest frames of section `s`, if one of the group. */
function speakerIn(s) {
  const leaf = state.stats?.perTrack?.[s.key]?.last;
  return leaf === undefined ? null : member(leaf)?.participant_id ?? null;
}

/** How loud each participant heard through the sections is now, by participant id. */
export function heardLevels() {
  const by = new Map();
  for (const [id, s] of sections) {
    const pid = speakerIn(s);
    if (pid === null) continue;
    by.set(pid, Math.max(by.get(pid) ?? 0, levels.level(levelKey(id))));
  }
  return by;
}

/** Every section goes with the connection that brought it. */
export function dropSections() {
  for (const [id, s] of sections) {
    levels.unwatch(levelKey(id));
    s.el.srcObject = null;
    s.el.remove();
  }
  sections.clear();
}

/** The output device changed: each section plays there. */
export function rerouteSections() {
  for (const s of sections.values()) capture.routeSound(s.el);
}
