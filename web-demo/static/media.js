// The participant's one PeerConnection with the SFU: publishes the camera (VP9), microphone
// (Opus) and, when shared, a screen (VP9, a stream of its own) through the E2EE worker,
// receives the others' media through the SFU's sections (a few audio sections the loudest take
// turns in; a video section per video shown, which the SFU says carries which stream, named
// "<publisher>.<its stream>" (`video_sections`); the page names what it shows by the key that
// opens its frames), and answers the SFU's
// renegotiations. When the media path breaks while signaling stays up (a network or TURN
// server gone), it restarts ICE: the meeting, its group and this participant stay. When to
// restart, when to give up, and what to do with an offer that crosses ours is the bots' policy
// too, in Rust (`MediaPath`, signaling_participant::media_path): this file only acts on it.
import { E2ee } from "./e2ee.js";
import { MediaPath } from "./pkg/web_demo_wasm.js";

/** VP9 first and only (whole-frame SFrame breaks the other codecs' packetizers), with RTX. */
function vp9Only(kind) {
  const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
  const vp9 = caps.filter((c) => c.mimeType.toLowerCase() === "video/vp9");
  const profile0 = vp9.filter((c) => !c.sdpFmtpLine || c.sdpFmtpLine.includes("profile-id=0"));
  const rtx = caps.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  return [...(profile0.length ? profile0 : vp9), ...rtx];
}

/** The camera's layers: three spatial (each a quarter of the next's area) and three temporal,
 * the upper spatial layers predicted from the lower only at key pictures (VP9 SVC, K-SVC). The
 * SFU forwards each receiver the layers its tile needs, read from the VP9 payload descriptor,
 * which stays in the clear while every layer's frame is sealed. Firefox sends one layer. */
const CAMERA_LAYERS = "L3T3_KEY";

/** A send-only transceiver for `track` (or a kind) in `stream`, with `scalabilityMode` where the
 * browser takes it. */
function addSender(pc, track, stream, scalabilityMode) {
  const init = { direction: "sendonly", streams: [stream] };
  if (scalabilityMode) {
    try {
      return pc.addTransceiver(track, { ...init, sendEncodings: [{ scalabilityMode }] });
    } catch {
      // A browser that refuses the mode sends one layer.
    }
  }
  return pc.addTransceiver(track, init);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

export class Media {
  /** `relayOnly`: media only through the TURN servers (the SFU and the network never see
   * this device's addresses; also the way through networks that allow only TURN/TCP).
   * `onmedia({ down, ms })`: the media path broke (`down`) or is back (`ms` after it broke);
   * `onstuck()`: ICE restarts did not bring it back. */
  /** `ontrack(streamId, track, key)`: an audio section arrived; `onvideo(streamId, track, key)`:
   * a video section carries the stream `streamId` from now on (null: none), its frames counted
   * under `key`. */
  constructor({ signaling, iceServers, relayOnly = false, local, screen = null, ontrack, onvideo, onstate, onmedia = () => {}, onstuck = () => {} }) {
    this.signaling = signaling;
    this.e2ee = new E2ee();
    this.pc = new RTCPeerConnection({
      iceServers, iceTransportPolicy: relayOnly ? "relay" : "all", ...E2ee.peerOptions(),
    });
    this.local = local;
    this.queue = Promise.resolve(); // SDP steps, one at a time
    // Each time a track arrives, or a video section is said to carry another video, its frames
    // are counted afresh: the SFU gives a section (the same receiver and track) to one video
    // after another, whose frames must not be counted with the last one's, or its tile would
    // seem to show both.
    this.arrivals = 0;
    // What the SFU says each video section carries (by mid), and what the page shows it as.
    this.sectionMap = new Map();
    this.bound = new Map();
    this.onvideo = onvideo;
    this.pc.ontrack = (e) => {
      const key = this.arrival(e.track);
      if (e.track.kind === "audio") {
        this.e2ee.attach(e.receiver, "receive", "audio", key);
        ontrack(e.streams[0]?.id ?? "", e.track, key);
      } else {
        // Counted under a key no tile holds until the map names its stream.
        const was = this.bound.get(e.transceiver.mid);
        this.e2ee.attach(e.receiver, "receive", "video", key, was?.key ?? null);
        this.bound.set(e.transceiver.mid, { stream: undefined, key });
        this.bindSections();
      }
    };
    this.pc.onconnectionstatechange = () => onstate(this.pc.connectionState);
    this.onmedia = onmedia;
    this.onstuck = onstuck;
    this.policy = new MediaPath(); // ICE restarts and crossing offers: the policy's state
    this.timer = null; // wakes the policy when it has something due
    this.pc.oniceconnectionstatechange = () => this.watchIce();
    // One sender per kind, even for a kind with no track now (the camera is off when a
    // reconnect makes this connection): replaceVideo fills it later.
    for (const kind of ["audio", "video"]) {
      const track = local.getTracks().find((tr) => tr.kind === kind) ?? kind;
      const t = addSender(this.pc, track, local, kind === "video" ? CAMERA_LAYERS : null);
      if (kind === "video") t.setCodecPreferences(vp9Only("video"));
      this.e2ee.attach(t.sender, "send", kind);
      if (kind === "video") this.videoSender = t.sender;
      if (kind === "audio") this.audioSender = t.sender;
    }
    // The screen share: its own section and stream, idle until shared, so that sharing needs
    // no renegotiation; the others learn its stream id (`screenSource`) from our signed state.
    this.screenStream = new MediaStream();
    const s = this.pc.addTransceiver(screen ?? "video", { direction: "sendonly", streams: [this.screenStream] });
    s.setCodecPreferences(vp9Only("video"));
    this.e2ee.attach(s.sender, "send", "video");
    this.screenSender = s.sender;
  }

  /** A new key for frames of `track` from now on. */
  arrival(track) {
    return `${track.id}#${++this.arrivals}`;
  }

  /** The SFU's word on what each of our video sections carries now (`video_sections`). */
  mapSections(sections) {
    this.sectionMap = new Map(sections.map((s) => [s.mid, s.stream ?? null]));
    this.bindSections();
  }

  /** Each video section whose stream changed goes to its new tile, its frames counted under a
   * new key from now on (so that the keys of the frames it showed before do not name the new
   * tile); one that carries nothing leaves its tile. */
  bindSections() {
    for (const tr of this.pc.getTransceivers()) {
      if (!tr.mid || !this.sectionMap.has(tr.mid) || tr.receiver.track.kind !== "video") continue;
      const stream = this.sectionMap.get(tr.mid);
      const was = this.bound.get(tr.mid);
      if (was && was.stream === stream) continue;
      const track = tr.receiver.track;
      let key = was?.key ?? null;
      if (stream !== null) {
        key = this.arrival(track);
        this.e2ee.attach(tr.receiver, "receive", "video", key, was?.key ?? null);
      }
      this.bound.set(tr.mid, { stream, key });
      this.onvideo(stream, track, key);
    }
  }

  /** The SFU's word on how many spatial layers of our video `source` anyone shows, the top one
   * `height` tall: the camera sends no more (in Chromium, a scalability mode with fewer
   * spatial layers, scaled down so that the top one is that tall; Firefox sends one layer
   * anyway), and a video nobody shows pauses. It changes only what we spend: what is sent is
   * sealed all the same, and a lying server can only make it worse. */
  async sendLayers(source, spatialLayers, height) {
    const camera = source === this.local.id;
    const sender = camera ? this.videoSender : source === this.screenSource ? this.screenSender : null;
    const params = sender?.getParameters();
    const encoding = params?.encodings?.[0];
    if (!encoding) return;
    encoding.active = spatialLayers > 0;
    if (camera && encoding.scalabilityMode && spatialLayers > 0) {
      // All the layers a 720p camera has, or fewer, the top one scaled to `height`.
      const all = spatialLayers >= 3;
      encoding.scalabilityMode = all ? CAMERA_LAYERS : spatialLayers === 2 ? "L2T3_KEY" : "L1T3";
      const captured = sender.track?.getSettings().height ?? 0;
      encoding.scaleResolutionDownBy = !all && height > 0 && captured > height ? captured / height : 1;
    }
    try {
      await sender.setParameters(params);
    } catch {
      // A browser that refuses keeps sending what it sent.
    }
  }

  /** The source part of the stream id the others see our screen share under. */
  get screenSource() {
    return this.screenStream.id;
  }

  /** How media travels now, from the selected ICE candidate pair: `{ type, protocol,
   * relayProtocol, remote }` (type "host", "srflx", "prflx" or "relay"), or null before a
   * pair is selected. */
  async path() {
    const stats = [...(await this.pc.getStats()).values()];
    const byId = new Map(stats.map((r) => [r.id, r]));
    const transport = stats.find((r) => r.type === "transport" && r.selectedCandidatePairId);
    const pair = transport
      ? byId.get(transport.selectedCandidatePairId)
      : stats.find((r) => r.type === "candidate-pair" && r.nominated && r.state === "succeeded");
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    if (!local || !remote) return null;
    return {
      type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol ?? null,
      remote: `${remote.address ?? remote.ip}:${remote.port}`,
    };
  }

  step(fn) {
    this.queue = this.queue.then(fn).catch((e) => console.error("media:", e));
    return this.queue;
  }

  /** The first offer: what this participant publishes. */
  offer() {
    return this.step(() => this.sendOffer());
  }

  /** Offers (inside a step) with `options`, once candidates are gathered; the offer sent. */
  async sendOffer(options) {
    await this.pc.setLocalDescription(await this.pc.createOffer(options));
    await gathered(this.pc);
    const sdp = this.pc.localDescription.sdp;
    this.signaling.send({ type: "sdp_offer", sdp });
    return sdp;
  }

  onAnswer(sdp) {
    if (this.closed) return;
    this.policy.answered();
    this.schedule();
    return this.step(() => this.pc.setRemoteDescription({ type: "answer", sdp }));
  }

  /** True while the media path is broken and ICE restarts try to mend it. */
  get recovering() {
    return !this.closed && this.policy.recovering;
  }

  /** ICE restart offers made. */
  get restarts() {
    return this.closed ? 0 : this.policy.restarts;
  }

  watchIce() {
    if (this.closed) return;
    const change = this.policy.ice(this.pc.iceConnectionState, performance.now());
    if (change === -1) this.onmedia({ down: true });
    else if (change !== undefined) this.onmedia({ down: false, ms: change });
    this.schedule();
  }

  /** Wakes the policy when it next has something due. */
  schedule() {
    clearTimeout(this.timer);
    if (this.closed) return;
    const at = this.policy.nextTimeoutMs();
    if (at === undefined || this.pc.signalingState === "closed") return;
    this.timer = setTimeout(() => this.due(), Math.max(0, at - performance.now()));
  }

  /** Does what the policy says is due: an ICE restart (new credentials, candidates gathered
   * again: a new network, a new TURN allocation), withdrawing an unanswered offer (and
   * answering the SFU offer set aside meanwhile: the SFU waits for that answer before it
   * offers anything again), or giving up. */
  due() {
    if (this.closed) return;
    const json = this.policy.poll(performance.now(), this.pc.signalingState === "stable");
    this.schedule();
    if (!json) return;
    const step = JSON.parse(json);
    if (step.step === "give_up") {
      this.onstuck();
    } else if (step.step === "offer_restart") {
      this.step(async () => {
        // An exchange that started meanwhile finishes first; the next retry offers.
        if (this.pc.signalingState !== "stable" || !this.recovering) return;
        await this.sendOffer({ iceRestart: true });
        if (this.closed) return;
        this.policy.offered(performance.now());
        this.schedule();
      });
    } else if (step.step === "withdraw") {
      this.step(async () => {
        if (this.pc.signalingState !== "have-local-offer") return;
        await this.pc.setLocalDescription({ type: "rollback" });
        if (step.answer) await this.answer(step.answer);
      });
    }
  }

  /** The SFU offers again when the tracks it sends change. If our offer (an ICE restart)
   * crossed it, ours wins: the SFU withdraws its offer, answers ours and offers again; the
   * crossing offer is set aside in case ours is never answered. */
  onOffer(sdp) {
    return this.step(async () => {
      if (this.closed) return;
      const now = this.policy.sfuOffer(sdp, this.pc.signalingState === "have-local-offer");
      if (now) await this.answer(now);
    });
  }

  /** Answers an SFU offer (inside a step). */
  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track?.kind === "video" && t.direction !== "sendonly") {
        try {
          t.setCodecPreferences(vp9Only("video"));
        } catch {}
      }
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await gathered(this.pc);
    this.signaling.send({ type: "sdp_answer", sdp: this.pc.localDescription.sdp });
  }

  onCandidate(c) {
    return this.step(() => this.pc.addIceCandidate({
      candidate: c.candidate,
      sdpMid: c.sdp_mid,
      sdpMLineIndex: c.sdp_m_line_index,
      usernameFragment: c.username_fragment,
    }));
  }

  async replaceVideo(track) {
    await this.videoSender?.replaceTrack(track);
  }

  async replaceAudio(track) {
    await this.audioSender?.replaceTrack(track);
  }

  /** Shares `track` as the screen (null: stops sharing). */
  async replaceScreen(track) {
    await this.screenSender.replaceTrack(track);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.pc.close();
    this.e2ee.close();
    this.policy.free();
  }
}
