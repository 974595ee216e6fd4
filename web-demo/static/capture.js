// What this page captures and plays: the camera, microphone and speaker chosen (remembered
// for the next visit), the screen share, and how loud each stream is. Switching a device in
// the meeting gives the PeerConnection's sender a new track: nothing is renegotiated, and the
// E2EE keys stay. The speaking indicator is measured here, on sound already decrypted, rather
// than taken from the server's word.
const $ = (id) => document.getElementById(id);

const KEYS = { camera: "e2ee.camera", mic: "e2ee.mic", speaker: "e2ee.speaker" };
const SELECTS = { camera: "camera-select", mic: "mic-select", speaker: "speaker-select" };
const KINDS = { camera: "videoinput", mic: "audioinput", speaker: "audiooutput" };
const VIDEO = { width: 640, height: 480 };

/** The device id chosen of each kind ("" for the browser's default). */
export const chosen = Object.fromEntries(Object.entries(KEYS).map(([k, key]) => [k, localStorage.getItem(key) ?? ""]));

export function choose(kind, deviceId) {
  chosen[kind] = deviceId;
  localStorage.setItem(KEYS[kind], deviceId);
}

/** getUserMedia with the chosen devices; if a chosen one is gone (unplugged since), the
 * browser's default instead. */
async function userMedia({ audio, video }) {
  const want = (on, id, base) => (!on ? false : id ? { ...base, deviceId: { exact: id } } : base);
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: want(audio, chosen.mic, {}), video: want(video, chosen.camera, VIDEO),
    });
  } catch (e) {
    if (e.name !== "OverconstrainedError" && e.name !== "NotFoundError") throw e;
    return navigator.mediaDevices.getUserMedia({ audio: audio && {}, video: video && VIDEO });
  }
}

/** A camera track from the chosen camera. */
export async function camera() {
  return (await userMedia({ video: true })).getVideoTracks()[0];
}

/** A microphone track from the chosen microphone. */
export async function microphone() {
  return (await userMedia({ audio: true })).getAudioTracks()[0];
}

/** The microphone, and the camera unless `audioOnly`: one stream. */
export function capture({ audioOnly = false } = {}) {
  return userMedia({ audio: true, video: !audioOnly });
}

/** A screen or window the user picks (the browser asks); null if they decline. */
export async function screen() {
  try {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    const track = s.getVideoTracks()[0];
    track.contentHint = "detail"; // sharp text over smooth motion
    return track;
  } catch (e) {
    if (e.name === "NotAllowedError") return null;
    throw e;
  }
}

/** Fills the device selects with what the browser lists (names appear once the page may
 * capture); `using`: the tracks in use, whose devices are shown as chosen. */
export async function listDevices(using = []) {
  const all = await navigator.mediaDevices.enumerateDevices();
  const inUse = Object.fromEntries(using.map((t) => [t.kind === "video" ? "camera" : "mic", t.getSettings().deviceId]));
  for (const [kind, id] of Object.entries(SELECTS)) {
    const select = $(id);
    const devices = all.filter((d) => d.kind === KINDS[kind] && d.deviceId);
    const current = inUse[kind] ?? chosen[kind];
    const options = devices.map((d, i) => {
      const o = document.createElement("option");
      o.value = d.deviceId;
      o.textContent = d.label || `${kind} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    });
    if (options.length === 0) {
      const o = document.createElement("option");
      o.value = "";
      o.textContent = kind === "speaker" ? "the system's default" : `no ${kind} found`;
      options.push(o);
    }
    select.replaceChildren(...options);
    select.disabled = devices.length === 0;
  }
}

/** Plays `element`'s sound on the chosen speaker (where the browser lets a page choose). */
export async function routeSound(element) {
  if (!chosen.speaker || !element.setSinkId || element.sinkId === chosen.speaker) return;
  await element.setSinkId(chosen.speaker).catch((e) => console.warn("speaker:", e));
}

/** How loud streams are: the RMS of their sound over the last moments, 0 to 1. */
export class Levels {
  constructor() {
    this.context = null;
    this.watched = new Map(); // key -> { source, analyser, track }
    this.buffer = new Float32Array(1024);
  }

  /** Measures the sound of `stream` (its first audio track) under `key`. */
  watch(key, stream) {
    const track = stream.getAudioTracks()[0];
    const w = this.watched.get(key);
    if (!track || w?.track === track) return;
    this.unwatch(key);
    this.context ??= new AudioContext();
    const source = this.context.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.context.createAnalyser();
    analyser.fftSize = this.buffer.length;
    source.connect(analyser);
    this.watched.set(key, { source, analyser, track });
  }

  /** Sound can be measured once the person has touched the page (the browser's rule). */
  resume() {
    if (this.context?.state === "suspended") this.context.resume().catch(() => {});
  }

  unwatch(key) {
    this.watched.get(key)?.source.disconnect();
    this.watched.delete(key);
  }

  level(key) {
    const w = this.watched.get(key);
    if (!w || w.track.readyState !== "live" || !w.track.enabled) return 0;
    w.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const x of this.buffer) sum += x * x;
    return Math.sqrt(sum / this.buffer.length);
  }

  close() {
    for (const key of [...this.watched.keys()]) this.unwatch(key);
  }
}
