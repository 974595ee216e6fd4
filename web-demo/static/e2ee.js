// The page's side of frame encryption: one worker for every outgoing and incoming track, fed
// each epoch's keys. RTCRtpScriptTransform where the browser has it, createEncodedStreams
// otherwise.

export const hasScriptTransform = "RTCRtpScriptTransform" in self;

export class E2ee {
  constructor() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.pending = new Map();
    this.nextId = 1;
    this.encoded = new WeakMap(); // receiver -> its encoded streams' slot (the fallback)
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
   * its frames. A receiver attached again (its track arrived again) gets a new transform,
   * or with the fallback, whose streams can be taken only once, its frames a new id. */
  attach(senderOrReceiver, side, kind, track = null, previous = null) {
    if (hasScriptTransform) {
      senderOrReceiver.transform = new RTCRtpScriptTransform(this.worker, { side, kind, track, previous });
    } else if (this.encoded.has(senderOrReceiver)) {
      this.worker.postMessage({ type: "retrack", slot: this.encoded.get(senderOrReceiver), track, previous });
    } else {
      const slot = this.nextId++;
      this.encoded.set(senderOrReceiver, slot);
      const { readable, writable } = senderOrReceiver.createEncodedStreams();
      this.worker.postMessage({ type: "streams", side, kind, track, slot, readable, writable }, [readable, writable]);
    }
  }

  setKeys(keys) {
    this.worker.postMessage({ type: "keys", keys });
  }

  /** The group is gone: stop sealing under its keys at once; received frames under them
   * open only for the grace time. */
  retire() {
    this.worker.postMessage({ type: "retire" });
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
