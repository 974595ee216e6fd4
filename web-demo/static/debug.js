// Read-only views of the page for tests and measurements (window.e2ee).
import { $, chat, senderStats, state } from "./state.js";
import { isScreen, tileName } from "./who.js";
import { logText } from "./alerts.js";
import { parseVectors, runSelfTest } from "./selftest.js";


export function expose() {
  window.e2ee = {
    debug: async () => {
      const stats = [...(await state.media.pc.getStats()).values()];
      return {
        remote: state.media?.pc.remoteDescription?.sdp,
        local: state.media?.pc.localDescription?.sdp,
        inbound: stats.filter((r) => r.type === "inbound-rtp"),
        outbound: stats.filter((r) => r.type === "outbound-rtp"),
      };
    },
    path: async () => state.media?.path(),
    snapshot: () => ({
      me: state.me,
      path: state.path,
      epoch: state.epoch,
      safetyNumber: state.safety.join(" "),
      // As the panel shows it: no members without a current group.
      roster: (state.groupGone ? [] : state.roster).map((m) => m.identity),
      members: state.groupGone ? [] : state.roster,
      mayShare: state.mayShare,
      deviceSlot: state.deviceSlot,
      alerts: [...$("alerts").querySelectorAll("li")].map((li) => ({ kind: li.className, text: li.textContent })),
      log: logText(),
      speaker: state.speaker,
      speaking: [...state.speaking].map((k) => state.tiles.get(k)?.pid ?? null),
      sharing: !!state.screenTrack,
      sections: state.media?.pc.getTransceivers().length ?? 0,
      ice: state.media?.pc.iceConnectionState ?? null,
      iceRestartsOffered: state.media?.restarts ?? 0,
      iceRestarts: state.iceRestarts,
      devices: state.local?.getTracks().map((t) => ({ kind: t.kind, label: t.label, enabled: t.enabled, deviceId: t.getSettings().deviceId })) ?? [],
      selftest: state.selftest,
      tiles: [...state.tiles.values()].map((t) => ({
        pid: t.pid, key: t.key, ...tileName(t), ...(t.stale ? { name: t.shownName } : {}), screen: isScreen(t), hidden: t.el.hidden, stale: t.stale,
          cameraOff: t.el.classList.contains("camera-off"), caption: t.caption.textContent,
        frames: t.frames, width: t.video.videoWidth, height: t.video.videoHeight,
      })),
      senders: state.roster.map((m) => ({ identity: m.identity, leaf: m.leaf, ...senderStats(m.leaf) })),
      firstDecrypted: state.stats?.firstDecrypted ?? {},
      joinClickedAt: state.joinClickedAt,
      timing: state.timing,
      sent: state.stats?.sent ?? 0,
      withheld: state.stats?.withheld ?? 0,
      keyframes: state.stats?.keyframes ?? 0,
      keyframeError: state.stats?.keyframeError,
      reconnecting: state.meeting?.reconnecting?.why ?? null,
      groupGone: state.groupGone,
      stale: state.stats?.stale ?? 0,
      retired: state.stats?.retired ?? 0,
      chat: chat.snapshot(),
      reconnects: state.reconnects,
    }),
    selfTest: (text) => runSelfTest(parseVectors(text)),
    bench: (sizes, n) => state.media.e2ee.call("bench", { sizes, n }),
  };
}
