// The signaling connection: the WebSocket, and the participant's MLS session (wasm) driven by
// the server's messages. Everything the session wants sent goes out; every event goes to
// `onevent`.
import init, { Meeting, isFinalRefusal, protocolVersion } from "./pkg/web_demo_wasm.js";

export { Meeting };

/** Why the server refused a join, in words for the person at the page. */
const REFUSALS = {
  token_expired: "Your invitation has expired: ask the organiser for a new link.",
  invalid_token: "This link's token is not valid on this server: ask the organiser for a new link.",
  wrong_room: "This link is for another room: open the link as it was sent to you.",
  room_full: "This room is full: try again when someone has left.",
  publish_not_allowed: "Your invitation does not allow you to send audio or video here.",
  too_many_connections: "Too many connections from your address: close other meeting tabs and try again.",
  rate_limited: "The server asks you to slow down: try again in a moment.",
  unsupported_version: "This page is older than the server: reload it.",
  shutting_down: "The server is shutting down: try again in a moment.",
  unavailable: "The meeting cannot be reached just now: try again in a moment.",
  removed: "You were removed from the meeting: this invitation no longer admits you.",
  banned: "You may not enter this room: an administrator banned you from it for now.",
  room_closed: "The meeting was ended: an administrator closed the room.",
};

/** The server's words for `code`, in the page's own where it has them. */
export function refusal(code, message) {
  return REFUSALS[code] ?? `The server refused: ${message} (${code}).`;
}

/** A join refused with `code` (the server's error code) and the server's own `message`. */
export class Refused extends Error {
  constructor(code, message) {
    super(refusal(code, message));
    this.code = code;
    this.final = isFinalRefusal(code);
  }
}

let wasmReady = null;

export function loadWasm() {
  wasmReady ??= init();
  return wasmReady;
}

export class Signaling {
  /** Connects and joins; resolves with the `joined` message once the server accepts.
   * `deviceKey`: this device's signature key (bytes). Devices are judged by the page's trust
   * store (wasm's, loaded once: `trustLoad`). */
  static async join({ room, token, onevent, deviceKey }) {
    await loadWasm();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    const s = new Signaling(ws, onevent);
    return new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(JSON.stringify({ type: "join", protocol: protocolVersion(), room, token }));
      const fail = (e) => {
        ws.onclose = ws.onmessage = null;
        ws.close();
        reject(e);
      };
      ws.onerror = () => fail(new Error("cannot reach the server"));
      ws.onclose = (e) => fail(new Error(`the server closed the connection ${e.reason || ""}`));
      ws.onmessage = ({ data }) => {
        const message = JSON.parse(data);
        if (message.type === "error") return fail(new Refused(message.code, message.message));
        if (message.type !== "joined") return fail(new Error(`unexpected ${message.type}`));
        s.meeting = new Meeting(data, deviceKey, performance.timeOrigin);
        s.joined = message;
        ws.onmessage = ({ data }) => s.receive(data);
        ws.onclose = (e) => {
          s.closed = true;
          clearTimeout(s.timer);
          s.onevent({ type: "stop", reason: e.reason || "connection closed" });
        };
        s.apply(s.meeting.start());
        resolve(s);
      };
    });
  }

  constructor(ws, onevent) {
    this.ws = ws;
    this.onevent = onevent;
  }

  receive(text) {
    let outputs;
    try {
      outputs = this.meeting.handle(text, performance.now());
    } catch (e) {
      this.onevent({ type: "failure", message: String(e) });
      return;
    }
    this.apply(outputs);
  }

  apply(json) {
    for (const out of JSON.parse(json)) {
      if (out.type === "send") this.ws.send(out.text);
      else this.onevent(out);
    }
    this.schedule();
  }

  /** Wakes the meeting when it has something due (messages that did not arrive in time). */
  schedule() {
    clearTimeout(this.timer);
    const at = this.meeting?.nextTimeoutMs();
    if (at === undefined || this.closed) return;
    this.timer = setTimeout(() => this.apply(this.meeting.handleTimeout(performance.now())),
      Math.max(0, at - performance.now()));
  }

  /** The user knows who holds the unexplained `leaf` on the device `key` (hex) under
   * `identity`, as shown; throws (in words) if the leaf holds another device or name now. */
  acknowledge(leaf, key, identity) {
    this.apply(this.meeting.acknowledge(leaf, key, identity));
  }

  /** The user compared the fingerprint of `leaf`'s device `key` (hex) with its holder, and it
   * matched; throws (in words) if the leaf holds another device now. */
  verify(leaf, key, identity) {
    this.apply(this.meeting.verify(leaf, key, identity));
  }

  /** The user accepts the new device `key` (hex) at `leaf` as that person's. */
  acknowledgeDevice(leaf, key, identity) {
    this.apply(this.meeting.acknowledgeDevice(leaf, key, identity));
  }

  /** The roster judged again (the trust store changed in another tab). */
  refresh() {
    if (!this.closed) this.apply(this.meeting.roster());
  }

  /** Says `message` (an application message: chat, reaction, hand, state) to the other
   * members, end to end; throws if it is not one a member may send. */
  say(message) {
    this.apply(this.meeting.say(JSON.stringify(message)));
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  leave() {
    this.closed = true;
    clearTimeout(this.timer);
    this.send({ type: "leave" });
    this.ws.onclose = null;
    this.ws.close();
  }
}
