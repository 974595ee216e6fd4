//! A bot: a real participant. It joins through signaling with an access token, is an MLS
//! member (the Rust signaling client drives its session), publishes SFrame-encrypted Opus and
//! VP9 from the test media (or synthetic frames of their sizes), subscribes to everyone, and
//! decrypts and checks every frame (or counts those of the tracks it does not verify).
//!
//! Each bot is one task that owns its signaling client and a sans-IO `rtc` peer connection
//! with its UDP socket (the engine under the sfu), so it waits on nothing but its inputs:
//! datagrams, signaling events, its media ticks and the connection's next timeout.
//!
//! In a run with network drops each bot's network can go away for a while (`cut`): its
//! client reconnects by itself (a rejoin: a new participant id, added to the group again) and
//! the bot makes a new media connection.

mod climb;
mod cut;
mod keyframes;
pub mod peer;
mod publish;
mod receive;
mod shaper;
mod speaking;
mod state;
pub mod synthetic;

use crate::LoadError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_crypto::mls::{Keyring, KeyringConfig};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP9};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use signaling_client::{AppMessage, Client, ClientConfig, Event, Reconnect};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Interval, MissedTickBehavior};

use crate::media::TestMedia;
use crate::stats::{BotStats, Commits, SendLog};
use peer::Peer;
use publish::Outgoing;
use receive::Tracks;
use signaling_participant::media_path::{IceState, MediaPath, Step};
use speaking::DTX_EVERY;
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
        let url = relay
            .as_ref()
            .map_or(ctx.url.clone(), |r| format!("ws://{}/ws", r.addr));
        let mut config = ClientConfig::new(&url, &spec.room, &spec.token);
        config.reconnect = relay.is_some().then(Reconnect::default);
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

/// How often a bot showing tiles may tell the SFU what it shows.
const WANTS_EVERY: Duration = Duration::from_millis(500);

/// How far behind its media clock a bot may fall and still send what it missed (ticks a short
/// stall delayed go out at once, keeping the rate). Beyond it the missed frames are dropped,
/// as an encoder drops them: a long stall (a join's MLS work under load) must not release
/// seconds of frames at once, whose counters would outrun receivers' replay windows.
const MAX_BACKLOG: Duration = Duration::from_millis(200);

/// A tick of `interval`, or never if there is none.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            let due = i.tick().await;
            if due.elapsed() > MAX_BACKLOG {
                i.reset();
            }
        }
        None => std::future::pending().await,
    }
}

fn every(period: Duration, wanted: bool) -> Option<Interval> {
    wanted.then(|| {
        let mut i = tokio::time::interval(period);
        i.set_missed_tick_behavior(MissedTickBehavior::Burst);
        i
    })
}

impl Task {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let media = self.ctx.media.clone();
        let mut audio = every(media.audio_interval, self.outgoing.iter().any(|o| !o.video));
        let mut video = every(media.video_interval, self.outgoing.iter().any(|o| o.video));
        let mut chat = self.ctx.chat.and_then(|period| every(period, true));
        // What it shows is told at most this often, as a page does (and within the server's
        // message rate when dozens of videos open at once).
        let mut wants = every(WANTS_EVERY, self.spec.tiles.is_some());
        loop {
            let deadline = self
                .peer
                .pc
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let retry_at = self.tracks.retry_at();
            let path_due = self.path_due();
            let link_due = self.peer.link_due();
            let squeeze_ends = self.squeeze_ends;
            tokio::select! {
                _ = &mut stopped => break,
                ready = self.peer.socket().readable() => {
                    if ready.is_err() {
                        break;
                    }
                    self.peer.read(Instant::now());
                }
                event = self.client.next_event() => match event {
                    Some(event) => {
                        if !self.signal(event) {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tick(&mut audio) => self.publish(false),
                _ = tick(&mut video) => self.publish(true),
                _ = tick(&mut chat) => self.chat(),
                _ = tick(&mut wants) => self.tell_wants(),
                Some(change) = self.network.recv() => match change {
                    Network::DownUntil(until) => {
                        self.peer.offline_until = Some(until);
                        self.state.lock().unwrap_or_else(|e| e.into_inner()).network_back = Some(until);
                    }
                    Network::Moves => {
                        if let Err(e) = self.peer.move_network().await {
                            tracing::warn!(error = %e, "cannot move to another network");
                        }
                        let now = Instant::now();
                        self.state.lock().unwrap_or_else(|e| e.into_inner()).moved(now);
                        self.path.moved(self.since(now));
                    }
                    Network::Squeezed { bits_per_second, until } => {
                        self.peer.squeeze(bits_per_second, Instant::now(), until);
                        self.tracks.squeezed();
                        self.state.lock().unwrap_or_else(|e| e.into_inner()).stats.squeezes += 1;
                        self.squeeze_ends = Some(until);
                    }
                },
                _ = tokio::time::sleep_until(link_due.unwrap_or(deadline).into()), if link_due.is_some() => {
                    self.peer.release(Instant::now());
                }
                _ = tokio::time::sleep_until(squeeze_ends.unwrap_or(deadline).into()), if squeeze_ends.is_some() => {
                    self.squeeze_ends = None;
                    let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    self.tracks.widened(&mut state, Instant::now());
                }
                _ = tokio::time::sleep_until(path_due.unwrap_or(deadline).into()), if path_due.is_some() => {}
                _ = tokio::time::sleep_until(deadline.into()) => self.peer.timeout(Instant::now()),
                _ = tokio::time::sleep_until(retry_at.unwrap_or(deadline).into()), if retry_at.is_some() => {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    self.tracks.retry(&mut s, Instant::now());
                }
            }
            let stable = self.peer.pc.pending_local_description().is_none()
                && self.peer.pc.pending_remote_description().is_none();
            match self.path.poll(self.since(Instant::now()), stable) {
                Some(Step::OfferRestart) => self.restart_ice(),
                Some(Step::Withdraw { answer }) => self.withdraw_unanswered(answer),
                Some(Step::GiveUp) => {
                    tracing::info!("ICE restarts did not mend the media path");
                    let _ = self.failed.send(true);
                }
                None => {}
            }
            if std::mem::take(&mut self.rebuild)
                && let Err(e) = self.new_media_connection().await
            {
                tracing::warn!(error = %e, "cannot make a new media connection after a rejoin");
                let _ = self.failed.send(true);
                break;
            }
            self.drain();
        }
        let _ = self.peer.pc.close();
        self.peer.write();
    }

    /// After a rejoin: the old connection's participant is gone from the SFU, so a new one
    /// publishes and receives afresh.
    async fn new_media_connection(&mut self) -> Result<(), LoadError> {
        let _ = self.peer.pc.close();
        let (peer, outgoing) = media_peer(&self.spec, &self.client).await?;
        self.peer = peer;
        self.outgoing = outgoing;
        self.tracks = Tracks::new(self.ctx.synthetic, self.ctx.verify);
        self.in_group = false; // those here learn our screen again
        self.path = MediaPath::default();
        Ok(())
    }

    /// `now` on the path's clock.
    fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    /// When the path policy next has something to do.
    fn path_due(&self) -> Option<Instant> {
        self.path.next_timeout().map(|t| self.origin + t)
    }

    /// Answers an SFU offer.
    fn answer(&mut self, sdp: String) {
        let answer = RTCSessionDescription::offer(sdp).and_then(|offer| {
            let now = Instant::now();
            self.peer.pc.set_remote_description(now, offer)?;
            let answer = self.peer.pc.create_answer(None)?;
            self.peer.pc.set_local_description(now, answer.clone())?;
            Ok(answer.sdp)
        });
        match answer {
            Ok(sdp) => self.client.send_sdp_answer(sdp),
            Err(e) => tracing::warn!(error = %e, "cannot answer the SFU's offer"),
        }
    }

    /// Our restart offer went unanswered: withdrawn, and an SFU offer set aside answered.
    fn withdraw_unanswered(&mut self, set_aside: Option<String>) {
        if self.peer.pc.pending_local_description().is_none() {
            return;
        }
        let withdrawn = RTCSessionDescription::rollback(None)
            .and_then(|r| self.peer.pc.set_local_description(Instant::now(), r));
        if let Err(e) = withdrawn {
            tracing::warn!(error = %e, "cannot withdraw an unanswered ICE restart");
            return;
        }
        if let Some(sdp) = set_aside {
            self.answer(sdp);
        }
    }

    /// Offers an ICE restart: new credentials, this network's candidate (the policy asks only
    /// with no exchange in flight).
    fn restart_ice(&mut self) {
        self.peer.pc.restart_ice();
        if let Err(e) = self.peer.gather() {
            tracing::warn!(error = %e, "cannot offer this network's address");
        }
        match self.peer.offer() {
            Ok(sdp) => {
                self.client.send_sdp_offer(sdp);
                self.path.offered(self.since(Instant::now()));
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .stats
                    .ice_restarts += 1;
            }
            Err(e) => tracing::warn!(error = %e, "cannot offer an ICE restart"),
        }
        self.peer.write();
    }

    /// What the connection has for the bot: events, media, datagrams to send.
    fn drain(&mut self) {
        while let Some(event) = self.peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let video = self
                        .peer
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .is_some_and(|r| r.track().kind() == RtpCodecKind::Video);
                    let stream = init.stream_ids.first().map(String::as_str);
                    self.tracks.opened(init.track_id.clone(), stream, video);
                    self.wants_changed |= video;
                }
                RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) => {
                    let state = match state {
                        RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                            IceState::Connected
                        }
                        RTCIceConnectionState::Disconnected => IceState::Disconnected,
                        RTCIceConnectionState::Failed => IceState::Failed,
                        _ => IceState::Other,
                    };
                    self.path.ice(state, self.since(Instant::now()));
                }
                // A broken ICE path is mended by restarts first (they give up in time).
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Failed,
                ) if !self.path.recovering() => {
                    let _ = self.failed.send(true);
                }
                _ => {}
            }
        }
        let now = Instant::now();
        let mut locked = None;
        while let Some(m) = self.peer.pc.poll_read() {
            match m.message {
                RTCMessage::RtpPacket(track, packet) => {
                    let s = locked.get_or_insert_with(|| {
                        self.state.lock().unwrap_or_else(|e| e.into_inner())
                    });
                    self.tracks.packet(s, &track, packet, now);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    let s = locked.get_or_insert_with(|| {
                        self.state.lock().unwrap_or_else(|e| e.into_inner())
                    });
                    for ssrc in media_packet::keyframe::requested(&packets) {
                        if let Some(o) = self.outgoing.iter_mut().find(|o| o.ssrc == ssrc) {
                            o.key_wanted = true;
                            s.stats.keyframe_requests += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        drop(locked);
        self.peer.write();
    }

    fn publish(&mut self, video: bool) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let speaking = self
            .spec
            .speaks
            .now(now.saturating_duration_since(self.ctx.start));
        if !video && !speaking {
            // Silence: a DTX packet now and then.
            self.silent_ticks += 1;
            if self.silent_ticks % DTX_EVERY != 1 {
                return;
            }
        }
        let level = if speaking { self.level } else { 127 };
        for out in self.outgoing.iter_mut().filter(|o| o.video == video) {
            out.send_next(&mut self.peer, &mut s, &self.ctx.media, level, now);
        }
    }

    /// Tells the SFU which videos it shows, if that changed.
    fn tell_wants(&mut self) {
        if let (true, Some((tiles, height))) =
            (std::mem::take(&mut self.wants_changed), self.spec.tiles)
        {
            self.client
                .send_video_wants(self.tracks.video_wants(tiles, height), None);
        }
    }

    /// Says something in the chat, with when (on the run's clock) it was sent.
    fn chat(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let sent = s.since_start(Instant::now()).as_micros();
        let text = format!("load chat {} sent at {sent} us", s.stats.chat_sent);
        if self.client.send_app(AppMessage::Chat { text }).is_ok() {
            s.stats.chat_sent += 1;
        }
    }

    /// The group's keys go: sealing stops at once.
    fn group_gone(&mut self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .group_gone(Instant::now());
    }

    /// A signaling event; false when the bot is out of the room.
    fn signal(&mut self, event: Event) -> bool {
        match event {
            Event::NewEpoch {
                epoch,
                key,
                roster,
                warnings,
                may_send,
                added,
                ..
            } => {
                {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let since = s.since_start(now);
                    if let Err(e) = s.keyring.install(key, since) {
                        tracing::warn!(error = %e, "cannot install an epoch key");
                    }
                    s.may_send = may_send;
                    s.stats.unexplained_members += warnings.len() as u64;
                    s.leaf_participants = roster
                        .iter()
                        .filter_map(|r| {
                            signaling_protocol::parse_credential_identity(&r.name())
                                .map(|(p, _)| (r.leaf, p))
                        })
                        .collect();
                    self.tracks.retry(&mut s, now);
                }
                // Those already here (at our join) and newcomers learn from us which stream
                // is our screen.
                if self.spec.screen && (!self.in_group || !added.is_empty()) {
                    let _ = self.client.send_app(AppMessage::State {
                        muted: !self.spec.audio,
                        camera_off: !self.spec.video,
                        hand: false,
                        screen: Some(SCREEN_STREAM.into()),
                    });
                }
                self.in_group = true;
                for w in &warnings {
                    tracing::warn!(warning = %w, "a member entered the group unexplained; sending stops");
                }
                self.ctx
                    .commits
                    .arrived(&self.spec.room, epoch, roster.len(), Instant::now());
            }
            Event::Reconnecting { attempt, reason } => {
                tracing::debug!(attempt, %reason, "reconnecting");
                self.group_gone();
            }
            Event::GroupReset { reason } => {
                tracing::info!(%reason, "the group is being made again");
                self.group_gone();
            }
            Event::GroupLost { epoch, reason } => {
                tracing::warn!(epoch, %reason, "lost the group");
                self.group_gone();
            }
            Event::Reconnected { participant_id } => {
                tracing::debug!(participant_id, "rejoined");
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.rejoined();
                self.rebuild = true;
            }
            Event::SdpAnswer(sdp) => {
                self.path.answered();
                let applied = RTCSessionDescription::answer(sdp)
                    .and_then(|a| self.peer.pc.set_remote_description(Instant::now(), a));
                if let Err(e) = applied {
                    tracing::warn!(error = %e, "cannot apply the SFU's answer");
                }
            }
            // If our ICE restart offer crossed it, it is set aside: the SFU (the polite side)
            // withdraws its offer, answers ours and offers again.
            Event::SdpOffer(sdp) => {
                let ours_out = self.peer.pc.pending_local_description().is_some();
                if let Some(sdp) = self.path.sfu_offer(sdp, ours_out) {
                    self.answer(sdp);
                }
            }
            Event::ServerError { code, message } => {
                tracing::warn!(?code, %message, "server error")
            }
            Event::SendLayers {
                source,
                spatial_layers,
                ..
            } => {
                for o in self
                    .outgoing
                    .iter_mut()
                    .filter(|o| o.video && o.stream == source)
                {
                    // A new set of layers starts at a key picture.
                    o.key_wanted |= o.spatial_layers != Some(spatial_layers);
                    o.spatial_layers = Some(spatial_layers);
                }
            }
            Event::SendGate { may_send, .. } => {
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .may_send = may_send;
            }
            Event::Application {
                message: AppMessage::Chat { text },
                ..
            } => {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.stats.chat_received += 1;
                // A bot's message says when it was sent; a person's does not.
                let sent = text
                    .strip_prefix("load chat ")
                    .and_then(|t| t.split(" sent at ").nth(1))
                    .and_then(|t| t.strip_suffix(" us"))
                    .and_then(|t| t.parse::<u64>().ok());
                if let Some(sent) = sent {
                    let now = s.since_start(Instant::now());
                    let latency = now.saturating_sub(Duration::from_micros(sent));
                    crate::stats::record(&mut s.stats.chat_latency, latency);
                }
            }
            Event::ApplicationRefused { from, reason } => {
                tracing::warn!(from, %reason, "an application message was refused")
            }
            Event::ApplicationGap { sender, missing } => {
                tracing::warn!(sender = %sender.name(), missing, "messages did not arrive")
            }
            Event::MlsFailure(m) => tracing::warn!(%m, "MLS failure"),
            Event::Removed { .. } | Event::Closed { .. } => return false,
            _ => {}
        }
        true
    }
}

/// A new peer connection with `spec`'s tracks, its offer sent through `client`.
async fn media_peer(spec: &BotSpec, client: &Client) -> Result<(Peer, Vec<Outgoing>), LoadError> {
    let mut peer = Peer::bind(Instant::now()).await?;
    let mut outgoing = Vec::new();
    // (sent, stream, kind, MIME type, clock rate, channels)
    let tracks = [
        (
            spec.audio,
            "bot",
            RtpCodecKind::Audio,
            MIME_TYPE_OPUS,
            48000,
            2,
        ),
        (
            spec.video,
            "bot",
            RtpCodecKind::Video,
            MIME_TYPE_VP9,
            90000,
            0,
        ),
        (
            spec.screen,
            SCREEN_STREAM,
            RtpCodecKind::Video,
            MIME_TYPE_VP9,
            90000,
            0,
        ),
    ];
    for (sent, stream, kind, mime, clock_rate, channels) in tracks {
        if sent {
            let ssrc = rand::random::<u32>() | 1;
            let sender = peer.add_track(stream, kind, mime, clock_rate, channels, ssrc)?;
            let video = kind == RtpCodecKind::Video;
            let layered = spec.layers && stream != SCREEN_STREAM;
            outgoing.push(Outgoing::new(sender, ssrc, stream, video, layered));
        }
    }
    if outgoing.is_empty() {
        // A listener offers to receive, so the connection has media sections to set up.
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            peer.pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: Vec::new(),
                    send_encodings: Vec::new(),
                }),
            )?;
        }
    }
    client.send_sdp_offer(peer.offer()?);
    Ok((peer, outgoing))
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
