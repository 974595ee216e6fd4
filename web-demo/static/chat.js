// The meeting's chat, reactions, raised hands and members' own mute and camera state: MLS
// application messages (the server relays ciphertext it cannot read). A message is named by
// the member whose key signed it, as the group states it, never by the server.

const $ = (id) => document.getElementById(id);

/** The reactions the page offers, each with its words (for screen readers, and for machines
 * with no emoji font). */
export const REACTIONS = { "👍": "thumbs up", "👏": "applause", "😂": "laughing", "❤️": "heart" };

export class Chat {
  /** `say(message)` sends an application message (the signaling session's). */
  constructor() {
    this.messages = []; // { from, participant, text, mine, at }
    this.hands = new Map(); // participant id -> name
    this.states = new Map(); // participant id -> { muted, camera_off, screen (its stream's source) }
    this.refused = 0;
    this.waiting = 0;
    this.onadd = () => {}; // each message added, as it is
    this.lastReaction = new Map(); // sender -> when its last reaction was shown
  }

  /** Someone said `message` (`said` output: sender is the roster's member). */
  said({ sender, message }) {
    const who = { from: sender.identity, participant: sender.participant_id };
    switch (message.kind) {
      case "chat":
        this.add({ ...who, text: message.text, mine: false });
        break;
      case "reaction":
        this.react(who.from, message.emoji);
        break;
      case "state":
        // The sender's whole state, newest only (older ones never reach the page).
        this.states.set(who.participant, {
          muted: message.muted, camera_off: message.camera_off, screen: message.screen ?? null,
        });
        if (message.hand) this.hands.set(who.participant, who.from);
        else this.hands.delete(who.participant);
        break;
    }
  }

  /** `missing` messages of `sender` did not arrive: the server dropped them (or they were
   * lost). Shown when that is known: 5 s after a later message of theirs came. */
  gap({ sender, missing }) {
    const n = missing === 1 ? "A message" : `${missing} messages`;
    this.add({ from: sender.identity, participant: sender.participant_id, system: true,
      text: `${n} from ${sender.identity} did not arrive.`, mine: false });
  }

  add(entry) {
    this.messages.push({ ...entry, at: Date.now() });
    if (this.messages.length > 500) this.messages.shift();
    this.render();
    this.onadd(entry);
  }

  /** `from` reacted with `emoji`: shown 4 s, at most one a second from each sender and five
   * at once, so that no member can cover the stage. Only the page's own reactions show as
   * sent; anything else a member sends (any text, bidi controls) shows as "(a reaction)". */
  react(from, emoji) {
    const now = Date.now();
    if (now - (this.lastReaction.get(from) ?? 0) < 1000) return;
    this.lastReaction.set(from, now);
    const li = document.createElement("li");
    const known = Object.hasOwn(REACTIONS, emoji);
    const who = document.createElement("bdi");
    who.textContent = from;
    li.append(known ? `${emoji} ` : "(a reaction) ", who, known ? ` (${REACTIONS[emoji]})` : "");
    $("reactions").append(li);
    while ($("reactions").children.length > 5) $("reactions").firstElementChild.remove();
    setTimeout(() => li.remove(), 4000);
  }

  /** Someone left the group (a commit removed them): their hand and state go with them. */
  left(participant) {
    this.hands.delete(participant);
    this.states.delete(participant);
  }

  /** A new group (a reconnect): what members said of their state is to be said again. */
  reset() {
    this.hands.clear();
    this.states.clear();
  }

  render() {
    const list = $("messages");
    list.replaceChildren(...this.messages.map((m) => {
      const li = document.createElement("li");
      li.className = m.mine ? "mine" : m.system ? "system" : "";
      const name = document.createElement("span");
      name.className = "from";
      name.textContent = m.mine ? "you" : m.from;
      name.title = m.from;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = m.text;
      li.append(name, text);
      return li;
    }));
    list.scrollTop = list.scrollHeight;
  }

  snapshot() {
    return {
      messages: this.messages.map(({ from, text, mine, system }) => ({ from, text, mine, system: !!system })),
      hands: [...this.hands.values()],
      states: Object.fromEntries(this.states),
      refused: this.refused,
      waiting: this.waiting,
    };
  }
}
