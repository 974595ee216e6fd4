// The page's side of frame encryption: one worker for every outgoing and incoming track, fed
// each epoch's keys. RTCRtpScriptTransform where the browser has it, createEncodedStreams
// otherwise.

export const hasScriptTransform = "RTCRtpScriptTransform" in self;

export class E2ee {
  constructor() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.pending = new Map();
    this.nextId = 1;
    this.onstats = () => {};
    this.worker.onmessage = ({ data }) => {
      if (data.type === "stats") this.onstats(data);
      else if (this.pending.has(data.id)) {
        this.pending.get(data.id)(data.result);
        this.pending.delete(data.id);
      }
    };
  }

  /** RTCPeerConnection options this mode needs. */
  static peerOptions() {
    return hasScriptTransform ? {} : { encodedInsertableStreams: true };
  }

  /** `track`: an id for a received track, under which the worker reports whose key opens
   * its frames. */
  attach(senderOrReceiver, side, kind, track = null) {
    if (hasScriptTransform) {
      senderOrReceiver.transform = new RTCRtpScriptTransform(this.worker, { side, kind, track });
    } else {
      const { readable, writable } = senderOrReceiver.createEncodedStreams();
      this.worker.postMessage({ type: "streams", side, kind, track, readable, writable }, [readable, writable]);
    }
  }

  setKeys(keys) {
    this.worker.postMessage({ type: "keys", keys });
  }

  /** Whether this participant's frames may leave at all (false while someone unexplained is
   * in the group). */
  setSending(on) {
    this.worker.postMessage({ type: "sending", on });
  }

  requestKeyframe() {
    this.worker.postMessage({ type: "keyframe" });
  }

  call(type, payload) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ type, id, ...payload });
    });
  }

  close() {
    this.worker.terminate();
  }
}
