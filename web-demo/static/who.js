// Who a tile shows: named by the members whose keys opened its frames, never by the
// server's label alone; the server's label is checked against the keys.
import { chat, member, memberOf, state } from "./state.js";

/** Who the keys say a tile shows: the members whose keys opened its tracks' frames. */
export function tileSenders(t) {
  const leaves = new Set();
  for (const id of t.tracks.values()) {
    for (const [leaf, n] of Object.entries(state.stats?.perTrack?.[id]?.leaves ?? {})) {
      if (n > 0) leaves.add(Number(leaf));
    }
  }
  return [...leaves].map((l) => member(l) ?? { leaf: l, identity: `leaf ${l}`, participant_id: null });
}

/** Whether tile `t` is this page's own camera or screen. */
export const isMine = (t) => t.key === "self" || t.key === "self.screen";

/** A tile's name (a member tile's: the group's name for it) and whether the server's label (its stream id) agrees with the keys. */
export function tileName(t) {
  const pid = t.pid;
  // A member's own tile, with no stream of its own: named by the group.
  if (t.member) return { name: memberOf(pid)?.identity ?? `participant ${pid}`, byKey: true, mislabelled: false, claimed: null };
  if (isMine(t)) return { name: `${memberOf(state.me)?.identity ?? state.meeting?.name ?? "you"} (you)`, byKey: true, mislabelled: false };
  const senders = tileSenders(t);
  const claimed = memberOf(pid)?.identity ?? `participant ${pid}`;
  if (senders.length === 0) return { name: claimed, byKey: false, mislabelled: false, claimed };
  const name = senders.map((m) => m.identity).join(" + ");
  const mislabelled = senders.some((m) => m.participant_id !== pid);
  return { name, byKey: true, mislabelled, claimed };
}

/** The participant whose signed words (muted, camera, hand, screen) describe tile `t`: ours,
 * or the one member whose key opens its frames; none while nothing is decrypted, or when
 * several keys do. Never the participant the server labels it with. */
export function speakerOf(t) {
  if (isMine(t)) return state.me;
  if (t.member) return t.pid;
  const senders = tileSenders(t);
  return senders.length === 1 ? senders[0].participant_id : null;
}

/** Whether tile `t` shows a screen share: our own, or a stream its member says (signed) is
 * its screen. The server's label alone never makes a stream a screen. */
export function isScreen(t) {
  if (t.key === "self.screen") return true;
  const pid = speakerOf(t);
  return !isMine(t) && pid !== null && !!t.source && chat.states.get(pid)?.screen === t.source;
}
