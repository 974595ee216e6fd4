//! A bot: a real participant. It joins through signaling with an access token, is an MLS
//! member (the Rust signaling client drives its session), publishes SFrame-encrypted Opus and
//! VP9 from the test media (or synthetic frames of their sizes), subscribes to everyone, and
//! decrypts and checks every frame (or counts those of the tracks it does not verify).
//!
//! Each bot is one task that owns its signaling client and a sans-IO `rtc` peer connection
//! with its UDP socket (the engine under the sfu), so it waits on nothing but its inputs:
//! datagrams, signaling events, its media ticks and the connection's next timeout: the loop and
//! the media side are `pump`'s, the signaling events `events`'.
//!
//! In a run with network drops each bot's network can go away for a while (`cut`): its
//! client reconnects by itself (a rejoin: a new participant id, added to the group again) and
//! the bot makes a new media connection.

mod climb;
mod cut;
mod events;
mod keyframes;
pub mod peer;
mod publish;
mod pump;
mod receive;
mod shaper;
mod speaking;
mod state;
pub mod synthetic;

use crate::LoadError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_crypto::mls::{Keyring, KeyringConfig};
use signaling_client::{Client, ClientConfig, Reconnect};
use tokio::sync::{mpsc, oneshot, watch};

use crate::media::TestMedia;
use crate::stats::{BotStats, Commits, SendLog};
use peer::Peer;
use publish::Outgoing;
use pump::media_peer;
use receive::Tracks;
use signaling_participant::media_path::MediaPath;
pub use speaking::{SPEAKING_TURN, Speaking};
pub use state::BotState;

/// What a bot does in its room.
#[derive(Debug, Clone)]
pub struct BotSpec {
    pub room: String,
    pub name: String,
    pub token: String,
    pub audio: bool,
    pub video: bool,
    /// Also shares a screen: the test video in a stream of its own ([`SCREEN_STREAM`]).
    pub screen: bool,
    /// Its camera sends the layered video.
    pub layers: bool,
    /// It shows this many of the others' videos at this height (and none of the rest), and
    /// says so to the SFU; `None`: it says nothing.
    pub tiles: Option<(usize, u16)>,
    /// When it speaks.
    pub speaks: Speaking,
    /// Publishers already in the room: the join completes with a frame from each.
    pub expected_publishers: usize,
    /// Joined after the room was set up (its join time is reported apart).
    pub late: bool,
}

/// What all bots of a run share.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub url: String,
    /// Every node of a cluster (`url` first): bots join them in turn, and reconnect to the
    /// next when theirs goes.
    pub urls: Vec<String>,
    /// The node the next bot joins at.
    pub next_url: Arc<std::sync::atomic::AtomicUsize>,
    pub media: Arc<TestMedia>,
    pub log: Arc<SendLog>,
    pub commits: Arc<Commits>,
    pub start: Instant,
    /// Synthetic frames instead of the encrypted test media.
    pub synthetic: bool,
    /// Tracks each bot decrypts in full (the first to arrive); `None`: all.
    pub verify: Option<usize>,
    /// How often each bot chats (listeners too); `None`: never.
    pub chat: Option<Duration>,
    /// Bots' networks may drop (`Bot::drop_network`): each goes through a relay of its own.
    pub drops: bool,
}

impl RunContext {
    /// A context for encrypted media, every frame verified, timed from now.
    pub fn new(url: String, media: Arc<TestMedia>) -> Self {
        RunContext {
            urls: vec![url.clone()],
            next_url: Default::default(),
            url,
            media,
            log: Arc::new(SendLog::default()),
            commits: Arc::new(Commits::default()),
            start: Instant::now(),
            synthetic: false,
            verify: None,
            chat: None,
            drops: false,
        }
    }
}

/// A participant in a room.
pub struct Bot {
    pub spec: BotSpec,
    pub participant_id: u64,
    state: Arc<Mutex<BotState>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Becomes true when the media connection fails.
    pub failed: watch::Receiver<bool>,
    /// The relay its signaling goes through, in a run with drops.
    relay: Option<cut::Relay>,
    /// Tells its task what happens to its network.
    network: mpsc::UnboundedSender<Network>,
}

/// What happens to a bot's network.
#[derive(Debug, Clone, Copy)]
enum Network {
    /// Gone (signaling and media) until then.
    DownUntil(Instant),
    /// Its media moves to another network (a new address) at once; signaling stays.
    Moves,
    /// Its downlink carries only so many bits a second until then.
    Squeezed {
        bits_per_second: u64,
        until: Instant,
    },
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("name", &self.spec.name)
            .field("participant_id", &self.participant_id)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// Joins, offers its media and starts publishing and receiving.
    pub async fn join(ctx: &RunContext, spec: BotSpec) -> Result<Bot, LoadError> {
        let joined_at = Instant::now();
        // With drops, through a relay the run can cut; the client then reconnects by itself.
        let relay = match ctx.drops {
            true => Some(cut::Relay::start(signaling_addr(&ctx.url)).await?),
            false => None,
        };
        // Over the nodes of a cluster in turn; the others are where it goes if its node does.
        let turn = ctx
            .next_url
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % ctx.urls.len().max(1);
        let mut nodes: Vec<String> = ctx.urls.clone();
        nodes.rotate_left(turn);
        let primary = nodes.first().cloned().unwrap_or_else(|| ctx.url.clone());
        let url = relay
            .as_ref()
            .map_or(primary, |r| format!("ws://{}/ws", r.addr));
        let mut config = ClientConfig::new(&url, &spec.room, &spec.token);
        config.reconnect = (relay.is_some() || nodes.len() > 1).then(Reconnect::default);
        if relay.is_none() {
            config.other_urls = nodes.into_iter().skip(1).collect();
        }
        let client = Client::connect(config).await?;
        let participant_id = client.participant_id();
        let state = Arc::new(Mutex::new(BotState::new(
            Keyring::new(KeyringConfig::default()),
            BotStats {
                late_joiner: spec.late,
                ..BotStats::default()
            },
            // A bot showing N tiles is joined once it has the N videos it shows (the SFU sends it
            // nothing of the others, nor the audio of those who are silent).
            spec.tiles.map_or(spec.expected_publishers, |(n, _)| {
                n.min(spec.expected_publishers)
            }),
            joined_at,
            ctx.log.clone(),
            ctx.start,
            ctx.synthetic.then(|| synthetic::Maker::new(participant_id)),
        )));
        let (peer, outgoing) = media_peer(&spec, &client).await?;
        let (failed_tx, failed) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let (network, network_rx) = mpsc::unbounded_channel();
        let task = Task {
            client,
            peer,
            state: state.clone(),
            tracks: Tracks::new(ctx.synthetic, ctx.verify),
            outgoing,
            // A level per bot, so one of them is the loudest.
            level: 20 + (participant_id % 40) as u8,
            silent_ticks: 0,
            wants_changed: false,
            wants_sent: None,
            ctx: ctx.clone(),
            in_group: false,
            spec: spec.clone(),
            network: network_rx,
            rebuild: false,
            path: MediaPath::default(),
            origin: Instant::now(),
            squeeze_ends: None,
            failed: failed_tx,
        };
        let task = tokio::spawn(task.run(stopped));
        Ok(Bot {
            spec,
            participant_id,
            state,
            stop: Some(stop),
            task,
            failed,
            relay,
            network,
        })
    }

    /// The bot's network goes away for `duration` (signaling and media); false if this run
    /// has no drops. It comes back by itself.
    pub fn drop_network(&self, duration: Duration) -> bool {
        let Some(relay) = &self.relay else {
            return false;
        };
        let until = Instant::now() + duration;
        relay.cut(until);
        self.network.send(Network::DownUntil(until)).is_ok()
    }

    /// The bot's media moves to another network (a new UDP port, the old one closed) while
    /// its signaling stays: it restarts ICE and keeps its place. False if the bot is gone.
    pub fn change_network(&self) -> bool {
        self.network.send(Network::Moves).is_ok()
    }

    /// The bot's downlink narrows to `kbps` for `duration` (a user-space queue before its
    /// socket) and widens again; false if the bot is gone.
    pub fn squeeze(&self, kbps: u32, duration: Duration) -> bool {
        self.network
            .send(Network::Squeezed {
                bits_per_second: u64::from(kbps) * 1000,
                until: Instant::now() + duration,
            })
            .is_ok()
    }

    /// Leaves: the peer connection closes and the signaling client goes (it says leave).
    /// Returns what this bot measured.
    pub async fn leave(mut self) -> BotStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        self.stats()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of what this bot measured so far.
    pub fn stats(&self) -> BotStats {
        self.lock().stats.clone()
    }

    /// Whether this bot has a frame from every publisher it expected.
    pub fn joined(&self) -> bool {
        self.lock().joined()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A bot's task: everything the bot has, driven by its inputs.
struct Task {
    client: Client,
    peer: Peer,
    state: Arc<Mutex<BotState>>,
    tracks: Tracks,
    outgoing: Vec<Outgoing>,
    level: u8,
    /// Audio ticks spent silent (for DTX).
    silent_ticks: usize,
    /// A video opened since it last told the SFU what it shows.
    wants_changed: bool,
    /// When it last told the SFU what it shows.
    wants_sent: Option<Instant>,
    ctx: RunContext,
    /// Whether it has been in an epoch yet (its join's, from the Welcome, names no one added).
    in_group: bool,
    spec: BotSpec,
    /// What happens to its network (`Bot::drop_network`, `Bot::change_network`).
    network: mpsc::UnboundedReceiver<Network>,
    /// Rejoined after a drop: a new media connection is to be made.
    rebuild: bool,
    failed: watch::Sender<bool>,
    /// ICE restarts while the media path is down and signaling up, and the offers that
    /// cross them: the page's policy (signaling_participant::media_path).
    path: MediaPath,
    /// The path's clock starts here.
    origin: Instant,
    /// When the squeeze on its downlink ends, while squeezed.
    squeeze_ends: Option<Instant>,
}

/// host:port of a signaling URL (ws://host:port/ws).
fn signaling_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The stream a bot's screen share goes in (the SFU forwards it as `"<pid>.bot-screen"`).
pub const SCREEN_STREAM: &str = "bot-screen";

/// How long a bot may take to hear every publisher before its join counts as failed.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
