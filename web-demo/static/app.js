// The meeting page. Each module has one job: lobby.js (the room, name and preview),
// connection.js (join, the session's events, reconnect, leave), stage.js (the tiles),
// alerts.js and panel.js (what the group is, and what is wrong with it), own.js (what this
// member sends and says of itself), controls.js (the buttons), all reading one state object
// (state.js). Below them: signaling.js (the session, MLS in wasm), media.js (the
// PeerConnection), e2ee.js and worker.js (SFrame on every frame), capture.js and device.js.
//
// What the page shows of people comes from the MLS group, never from the server's word: the
// roster is the group's (identity, participant id, leaf, device fingerprint); a video tile is
// named by the member whose key opens its frames; a member nobody announced, a second member
// with one name, a known name on a new device, and media the server labelled as someone else's
// are each shown as an alert.
import { loadWasm } from "./signaling.js";
import { status } from "./state.js";
import { openLobby } from "./lobby.js";
import { bindControls } from "./controls.js";
import { watchStage } from "./stage.js";
import { expose } from "./debug.js";

bindControls();
watchStage();
openLobby();
// Loaded now, so that the join's checks (Rust's rules, through wasm) are ready at once.
loadWasm().catch((e) => status(`This browser cannot run the meeting's code: ${e.message ?? e}`, "lobby-status"));
expose();
