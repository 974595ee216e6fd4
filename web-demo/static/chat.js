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

  react(from, emoji) {
    const li = document.createElement("li");
    // A member may send any text as its emoji: more than a few characters is not one, and
    // would cover the stage. The words are the page's own where it has them.
    const shown = typeof emoji === "string" && [...emoji].length <= 4 ? emoji : "(a reaction)";
    li.textContent = `${shown} ${from}${REACTIONS[shown] ? ` (${REACTIONS[shown]})` : ""}`;
    $("reactions").append(li);
    setTimeout(() => li.remove(), 4000);
  }

  /** Someone left: their hand and state go with them. */
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
