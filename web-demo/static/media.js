// The participant's one PeerConnection with the SFU: publishes the camera (VP9), microphone
// (Opus) and, when shared, a screen (VP9, a stream of its own) through the E2EE worker,
// receives everyone else's tracks (the SFU labels each with "<publisher>.<its stream>" as the
// stream id; the page names it by the key that opens its frames), and answers the SFU's
// renegotiations. When the media path breaks while signaling stays up (a network or TURN
// server gone), it restarts ICE: the meeting, its group and this participant stay.
import { E2ee } from "./e2ee.js";

/** ICE restarts: the first after this long "disconnected" (at once when "failed"), then
 * every `ICE_RETRY_MS` while still down; after `ICE_GIVE_UP_MS` down the page rejoins. */
const ICE_RESTART_AFTER_MS = 1000;
const ICE_RETRY_MS = 4000;
const ICE_GIVE_UP_MS = 20000;
/** A restart offer the SFU has not answered by then (it refused it, or the answer was lost)
 * is withdrawn, and an SFU offer set aside meanwhile is answered. */
const ANSWER_WAIT_MS = 5000;

/** VP9 first and only (whole-frame SFrame breaks the other codecs' packetizers), with RTX. */
function vp9Only(kind) {
  const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
  const vp9 = caps.filter((c) => c.mimeType.toLowerCase() === "video/vp9");
  const profile0 = vp9.filter((c) => !c.sdpFmtpLine || c.sdpFmtpLine.includes("profile-id=0"));
  const rtx = caps.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  return [...(profile0.length ? profile0 : vp9), ...rtx];
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
  constructor({ signaling, iceServers, relayOnly = false, local, screen = null, ontrack, onstate, onmedia = () => {}, onstuck = () => {} }) {
    this.signaling = signaling;
    this.e2ee = new E2ee();
    this.pc = new RTCPeerConnection({
      iceServers, iceTransportPolicy: relayOnly ? "relay" : "all", ...E2ee.peerOptions(),
    });
    this.local = local;
    this.queue = Promise.resolve(); // SDP steps, one at a time
    // Each time a track arrives it is counted afresh: the SFU recycles a departed
    // publisher's section (the same receiver and track) for the next one, whose frames must
    // not be counted with the last one's, or its tile would seem to show both.
    let arrivals = 0;
    this.pc.ontrack = (e) => {
      const key = `${e.track.id}#${++arrivals}`;
      this.e2ee.attach(e.receiver, "receive", e.track.kind, key);
      ontrack(e.streams[0]?.id ?? "", e.track, key);
    };
    this.pc.onconnectionstatechange = () => onstate(this.pc.connectionState);
    this.onmedia = onmedia;
    this.onstuck = onstuck;
    this.down = null; // since when the ICE connection is down, while it is
    this.restarts = 0;
    this.iceTimer = null;
    this.lastRestart = -Infinity; // when the last restart offer went out
    this.setAside = null; // an SFU offer that crossed ours, answered once ours is settled
    this.pc.oniceconnectionstatechange = () => this.watchIce();
    // One sender per kind, even for a kind with no track now (the camera is off when a
    // reconnect makes this connection): replaceVideo fills it later.
    for (const kind of ["audio", "video"]) {
      const track = local.getTracks().find((tr) => tr.kind === kind) ?? kind;
      const t = this.pc.addTransceiver(track, { direction: "sendonly", streams: [local] });
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
    return this.step(() => this.pc.setRemoteDescription({ type: "answer", sdp }));
  }

  /** True while the media path is broken and ICE restarts try to mend it. */
  get recovering() {
    return this.down !== null;
  }

  watchIce() {
    const s = this.pc.iceConnectionState;
    if (s === "connected" || s === "completed") {
      if (this.down) {
        clearTimeout(this.iceTimer);
        this.iceTimer = null;
        this.onmedia({ down: false, ms: performance.now() - this.down.since });
        this.down = null;
      }
      return;
    }
    if (s !== "disconnected" && s !== "failed") return;
    if (!this.down) {
      this.down = { since: performance.now() };
      this.onmedia({ down: true });
    }
    // "failed" restarts at once, unless a restart went out less than a retry ago (its checks
    // may still be running).
    const wait = s === "failed"
      ? Math.max(0, this.lastRestart + ICE_RETRY_MS - performance.now())
      : ICE_RESTART_AFTER_MS;
    if (s === "failed") clearTimeout(this.iceTimer);
    if (s === "failed" || !this.iceTimer) this.iceTimer = setTimeout(() => this.restartIce(), wait);
  }

  /** Offers an ICE restart (new credentials, candidates gathered again: a new network, a
   * new TURN allocation), and again every few seconds while the path stays down. */
  restartIce() {
    this.iceTimer = null;
    if (!this.down || this.pc.signalingState === "closed") return;
    if (performance.now() - this.down.since > ICE_GIVE_UP_MS) {
      this.onstuck();
      return;
    }
    this.step(async () => {
      try {
        // An exchange in flight finishes first; the next retry offers.
        if (this.pc.signalingState === "stable" && this.down) {
          this.restarts++;
          const offer = await this.sendOffer({ iceRestart: true });
          setTimeout(() => this.withdrawUnanswered(offer), ANSWER_WAIT_MS);
        }
      } finally {
        // The next retry counts from the offer sent, so its checks have their time.
        this.lastRestart = performance.now();
        if (this.down && !this.iceTimer) this.iceTimer = setTimeout(() => this.restartIce(), ICE_RETRY_MS);
      }
    });
  }

  /** Our `offer` still unanswered: withdrawn, and the SFU offer set aside meanwhile answered
   * (the SFU waits for that answer before it offers anything again). */
  withdrawUnanswered(offer) {
    return this.step(async () => {
      if (this.pc.signalingState !== "have-local-offer" || this.pc.localDescription?.sdp !== offer) return;
      await this.pc.setLocalDescription({ type: "rollback" });
      const aside = this.setAside;
      this.setAside = null;
      if (aside) await this.answer(aside);
    });
  }

  /** The SFU offers again when the tracks it sends change. If our offer (an ICE restart)
   * crossed it, ours wins: the SFU withdraws its offer, answers ours and offers again; the
   * crossing offer is set aside in case ours is never answered. */
  onOffer(sdp) {
    return this.step(async () => {
      if (this.pc.signalingState === "have-local-offer") {
        this.setAside = sdp;
        return;
      }
      this.setAside = null;
      await this.answer(sdp);
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
    clearTimeout(this.iceTimer);
    this.pc.close();
    this.e2ee.close();
  }
}
