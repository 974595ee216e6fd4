// The meeting page: lobby, video grid, controls, and the E2EE panel, glued to the signaling
// session (signaling.js), the PeerConnection (media.js) and the frame worker (e2ee.js).
import { Signaling, loadWasm } from "./signaling.js";
import { Media } from "./media.js";
import { deriveSframeKey } from "./pkg/web_demo_wasm.js";
import { fromHex, toHex } from "./sframe.js";

const $ = (id) => document.getElementById(id);
const now = () => performance.timeOrigin + performance.now();

let signaling = null;
let media = null;
let local = null;
let early = []; // events that arrive before the PeerConnection exists
const view = {
  me: null,
  epoch: null,
  safety: [],
  roster: [],
  kidLeaf: new Map(), // kid (string) -> leaf
  stats: null,
  timing: null,
  speaker: null,
  tiles: new Map(), // participant id -> { el, video, stream, frames }
  joinClickedAt: null,
  selftest: null,
  decrypt: true,
};

function status(text, where = "meeting-status") {
  $(where).textContent = text;
}

// ---- tiles ----

function nameOf(pid) {
  const m = view.roster.find((r) => r.participant_id === pid);
  return m ? m.identity : `participant ${pid} (not in the group yet)`;
}

function tile(pid) {
  let t = view.tiles.get(pid);
  if (t) return t;
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.pid = pid;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (pid === view.me) video.muted = true;
  const label = document.createElement("span");
  label.className = "label";
  const warning = document.createElement("div");
  warning.className = "warning";
  warning.textContent = "Frames from this participant cannot be decrypted";
  el.append(video, label, warning);
  $("grid").append(el);
  t = { el, video, label, stream: new MediaStream(), frames: 0 };
  video.srcObject = t.stream;
  const count = () => {
    t.frames++;
    video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  view.tiles.set(pid, t);
  renderTiles();
  return t;
}

function dropTile(pid) {
  const t = view.tiles.get(pid);
  if (!t) return;
  t.el.remove();
  view.tiles.delete(pid);
}

function senderStats(leaf) {
  const total = { decrypted: 0, failed: 0, noKey: 0 };
  for (const [kid, s] of Object.entries(view.stats?.perKid ?? {})) {
    if (view.kidLeaf.get(kid) !== leaf) continue;
    total.decrypted += s.decrypted;
    total.failed += s.failed;
    total.noKey += s.noKey;
  }
  return total;
}

function renderTiles() {
  for (const [pid, t] of view.tiles) {
    t.label.textContent = pid === view.me ? `${nameOf(pid)} (you)` : nameOf(pid);
    t.el.classList.toggle("speaking", view.speaker === pid);
    const member = view.roster.find((r) => r.participant_id === pid);
    const s = member ? senderStats(member.leaf) : null;
    t.el.classList.toggle("undecryptable", pid !== view.me && !!s && s.failed > 0 && s.decrypted === 0);
  }
}

// ---- E2EE panel ----

function renderPanel() {
  $("epoch").textContent = view.epoch ?? "–";
  const groups = view.safety.map((g) => {
    const span = document.createElement("span");
    span.textContent = g;
    return span;
  });
  $("safety-number").replaceChildren(...(groups.length ? groups : ["–"]));
  const body = $("roster").querySelector("tbody");
  body.replaceChildren();
  for (const m of view.roster) {
    const s = senderStats(m.leaf);
    const tr = document.createElement("tr");
    const me = m.participant_id === view.me;
    const cells = [
      me ? `${m.identity} (you)` : m.identity,
      String(m.leaf),
      "✓",
      me ? "–" : String(s.decrypted),
      me ? "–" : String(s.failed + s.noKey),
    ];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    if (!me && s.failed + s.noKey > 0) tr.lastChild.className = "bad";
    body.append(tr);
  }
}

// ---- session events ----

function onevent(e) {
  if (!media && ["sdp_offer", "sdp_answer", "ice_candidate", "new_epoch"].includes(e.type)) {
    early.push(e);
    return;
  }
  switch (e.type) {
    case "new_epoch": {
      view.epoch = e.epoch;
      view.safety = e.safety_number;
      view.roster = e.roster;
      for (const s of e.keys.senders) view.kidLeaf.set(String(s.kid), s.leaf);
      media.e2ee.setKeys(e.keys);
      // Someone new: a key frame under the new key lets them see us at once.
      if (e.added.some((m) => m.participant_id !== view.me)) media.e2ee.requestKeyframe();
      renderPanel();
      renderTiles();
      break;
    }
    case "removed":
      status("You were removed from the group.");
      leave();
      break;
    case "participant_left":
      dropTile(e.participant_id);
      break;
    case "sdp_offer":
      media.onOffer(e.sdp);
      break;
    case "sdp_answer":
      media.onAnswer(e.sdp);
      break;
    case "ice_candidate":
      media.onCandidate(e.candidate);
      break;
    case "active_speaker":
      view.speaker = e.participant_id;
      renderTiles();
      break;
    case "server_error":
      status(`Server: ${e.code}: ${e.message}`);
      break;
    case "failure":
      status(`Encryption: ${e.message}`);
      break;
    case "stop":
      status(`Disconnected: ${e.reason}`);
      leave();
      break;
  }
}

function ontrack(streamId, track) {
  const pid = Number(streamId);
  if (!Number.isFinite(pid) || pid === view.me) return;
  const t = tile(pid);
  t.stream.addTrack(track);
  t.stream.onremovetrack = () => {
    if (t.stream.getTracks().length === 0) dropTile(pid);
  };
}

// ---- join and leave ----

async function token(room, identity) {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) return fromUrl;
  const r = await fetch(`/dev/token?room=${encodeURIComponent(room)}&identity=${encodeURIComponent(identity)}`);
  if (!r.ok) throw new Error("this server hands out no tokens here: open the link your organiser sent (…?token=…)");
  return (await r.json()).token;
}

async function join(room, name) {
  view.joinClickedAt = now();
  $("join").disabled = true;
  status("Joining…", "lobby-status");
  try {
    const t = await token(room, name);
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    signaling = await Signaling.join({ room, token: t, onevent });
    view.me = signaling.joined.participant_id;
    const iceServers = (signaling.joined.ice_servers ?? []).map((s) => ({
      urls: s.urls, username: s.username, credential: s.credential,
    }));
    const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
    media = new Media({
      signaling, iceServers, relayOnly, local, ontrack,
      onstate: (s) => {
        if (s === "failed") status("The media connection failed.");
        if (s === "connected") showPath();
      },
    });
    if (view.decrypt === false) media.e2ee.setDecrypt(false);
    media.e2ee.onstats = ({ stats, timing }) => {
      view.stats = stats;
      view.timing = timing;
      renderPanel();
      renderTiles();
    };
    // Counts only, for the operator's metrics: how many received frames failed here.
    let reported = 0;
    view.reporter = setInterval(() => {
      const failing = Object.values(view.stats?.perKid ?? {})
        .reduce((n, s) => n + s.failed + s.noKey, 0);
      if (failing !== reported) {
        reported = failing;
        signaling?.send({ type: "media_stats", decrypt_failures: failing });
      }
    }, 5000);
    $("lobby").hidden = true;
    $("meeting").hidden = false;
    $("room-title").textContent = `Room ${room}`;
    const me = tile(view.me);
    local.getTracks().forEach((tr) => me.stream.addTrack(tr));
    for (const e of early.splice(0)) onevent(e);
    await media.offer();
    history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
    selfTest().catch((e) => ($("selftest").textContent = `SFrame self-test could not run: ${e}`));
  } catch (e) {
    status(String(e.message ?? e), "lobby-status");
    leave(false);
  } finally {
    $("join").disabled = false;
  }
}

function leave(showLobby = true) {
  clearInterval(view.reporter);
  signaling?.leave();
  media?.close();
  local?.getTracks().forEach((t) => t.stop());
  for (const pid of [...view.tiles.keys()]) dropTile(pid);
  signaling = media = local = null;
  early = [];
  Object.assign(view, { epoch: null, safety: [], roster: [], stats: null, speaker: null });
  if (showLobby) {
    $("meeting").hidden = true;
    $("lobby").hidden = false;
  }
}

// ---- controls ----

$("mic").onclick = () => {
  const track = local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  $("mic").setAttribute("aria-pressed", String(!track.enabled));
  $("mic").textContent = track.enabled ? "Mute microphone" : "Unmute microphone";
};

$("camera").onclick = async () => {
  const me = view.tiles.get(view.me);
  const current = local?.getVideoTracks()[0];
  if (current) {
    current.stop();
    local.removeTrack(current);
    me?.stream.removeTrack(current);
    await media.replaceVideo(null);
    $("camera").setAttribute("aria-pressed", "true");
    $("camera").textContent = "Start camera";
  } else if (local) {
    const [track] = (await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } })).getVideoTracks();
    local.addTrack(track);
    me?.stream.addTrack(track);
    await media.replaceVideo(track);
    $("camera").setAttribute("aria-pressed", "false");
    $("camera").textContent = "Stop camera";
  }
};

$("leave").onclick = () => leave();

$("join-form").onsubmit = (e) => {
  e.preventDefault();
  join($("room").value.trim(), $("name").value.trim());
};

$("room").value = new URLSearchParams(location.search).get("room") ?? "";

// ---- SFrame self-test: the RFC 9605 vectors through the worker's own code ----


/** Vectors as text: KIDs and counters exceed 2^53, so they are read as strings. */
function parseVectors(text) {
  return JSON.parse(text.replace(/"(kid|ctr)":\s*(\d+)/g, '"$1":"$2"'));
}

async function runSelfTest(vectors) {
  await loadWasm();
  const frames = [];
  let derivation = 0;
  const failures = [];
  for (const v of vectors.sframe.filter((v) => v.cipher_suite === 4 || v.cipher_suite === 5)) {
    const d = JSON.parse(deriveSframeKey(v.cipher_suite, BigInt(v.kid), fromHex(v.base_key)));
    if (toHex(d.key) === v.sframe_key && toHex(d.salt) === v.sframe_salt) derivation++;
    else failures.push(`derivation suite ${v.cipher_suite}`);
    frames.push({ ...v, derived_key: d.key, derived_salt: d.salt });
  }
  const r = await (media?.e2ee ?? new (await import("./e2ee.js")).E2ee()).call("selftest", {
    headers: vectors.header, frames,
  });
  return { passed: r.passed + derivation, failed: r.failed + failures.length, failures: [...failures, ...r.failures] };
}

async function selfTest() {
  const r = await fetch("pkg/rfc9605.json");
  if (!r.ok) return;
  view.selftest = await runSelfTest(parseVectors(await r.text()));
  $("selftest").textContent = view.selftest.failed === 0
    ? `SFrame self-test: all ${view.selftest.passed} RFC 9605 checks pass in this browser.`
    : `SFrame self-test FAILED: ${view.selftest.failures.join("; ")}`;
}

/** The media path in the panel: direct, or relayed and over which protocol. */
async function showPath() {
  if (!media) return;
  const path = await media.path();
  // The pair is selected shortly after "connected": look again until it is.
  if (!path && media.pc.connectionState === "connected") setTimeout(showPath, 500);
  view.path = path;
  $("media-path").textContent = !path ? "–"
    : path.type === "relay" ? `relayed by TURN over ${(path.relayProtocol ?? "udp").toUpperCase()}`
    : `direct (${path.protocol.toUpperCase()}) to ${path.remote}`;
}

// ---- hooks for tests and measurements ----

window.e2ee = {
  debug: async () => ({
    remote: media?.pc.remoteDescription?.sdp,
    local: media?.pc.localDescription?.sdp,
    inbound: [...(await media.pc.getStats()).values()].filter((r) => r.type === "inbound-rtp"),
  }),
  path: async () => media?.path(),
  snapshot: () => ({
    me: view.me,
    path: view.path,
    epoch: view.epoch,
    safetyNumber: view.safety.join(" "),
    roster: view.roster.map((m) => m.identity),
    speaker: view.speaker,
    selftest: view.selftest,
    tiles: [...view.tiles].map(([pid, t]) => ({
      pid, name: nameOf(pid), frames: t.frames, width: t.video.videoWidth, height: t.video.videoHeight,
    })),
    senders: view.roster.map((m) => ({ identity: m.identity, leaf: m.leaf, ...senderStats(m.leaf) })),
    firstDecrypted: view.stats?.firstDecrypted ?? {},
    joinClickedAt: view.joinClickedAt,
    timing: view.timing,
    sent: view.stats?.sent ?? 0,
    keyframes: view.stats?.keyframes ?? 0,
    keyframeError: view.stats?.keyframeError,
  }),
  setDecrypt: (on) => {
    view.decrypt = on;
    media?.e2ee.setDecrypt(on);
  },
  selfTest: (text) => runSelfTest(parseVectors(text)),
  bench: (sizes, n) => media.e2ee.call("bench", { sizes, n }),
};
