//! A bot: a real participant. It joins through signaling with an access token, is an MLS
//! member (the Rust signaling client drives its session), publishes SFrame-encrypted Opus and
//! VP9 from the test media, subscribes to everyone, and decrypts and checks every frame.

pub mod peer;
mod publish;
mod receive;

use crate::LoadError;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_crypto::mls::{Keyring, KeyringConfig};
use media_crypto::sframe::DecryptError;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP9};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use signaling_client::{Client, ClientConfig, Event};
use tokio::sync::{Notify, watch};
use webrtc::peer_connection::PeerConnection;

use crate::media::TestMedia;
use crate::stats::{BotStats, Commits, Gaps, SendLog};

/// What a bot does in its room.
#[derive(Debug, Clone)]
pub struct BotSpec {
    pub room: String,
    pub name: String,
    pub token: String,
    pub audio: bool,
    pub video: bool,
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
}

/// A bot's keys and measurements, shared by its tasks.
#[derive(Debug)]
pub struct BotState {
    /// One keyring for sending and receiving (the group's keys).
    keyring: Keyring,
    /// No unexplained member is in the group (or each was acknowledged): frames may go out.
    may_send: bool,
    /// The participant id each leaf's credential names, in the current epoch.
    leaf_participants: std::collections::HashMap<u32, u64>,
    pub stats: BotStats,
    gaps: Gaps,
    senders_seen: HashSet<u32>,
    expected: usize,
    joined_at: Instant,
    log: Arc<SendLog>,
    run_start: Instant,
}

impl BotState {
    /// Decrypts and checks a frame. "No key yet" is returned (not counted) so the caller can
    /// hold the frame; every other outcome is counted here.
    /// `publisher` is the participant the server named as the track's (its stream id).
    fn open(&mut self, frame: &[u8], publisher: Option<u64>) -> Result<(), DecryptError> {
        let now = Instant::now();
        let since = now.duration_since(self.run_start);
        match self.keyring.decrypt(b"", frame, since) {
            Ok((r, _plaintext)) => {
                // The key names the sender; the server's label must agree with it.
                if let (Some(claimed), Some(&actual)) =
                    (publisher, self.leaf_participants.get(&r.sender))
                    && claimed != actual
                {
                    self.stats.mislabelled_frames += 1;
                }
                let latency = self
                    .log
                    .sent_at(r.header.kid, r.header.ctr)
                    .map(|t| now.saturating_duration_since(t));
                self.stats.received(since.as_secs() as usize, latency);
                self.gaps.saw(r.header.kid, r.header.ctr);
                self.senders_seen.insert(r.sender);
                if self.stats.join_time.is_none()
                    && self.expected > 0
                    && self.senders_seen.len() >= self.expected
                {
                    self.stats.join_time = Some(now.duration_since(self.joined_at));
                }
                Ok(())
            }
            Err(e @ DecryptError::NoKeyYet { .. }) => Err(e),
            Err(e @ DecryptError::Replayed { .. }) => {
                self.stats.duplicates += 1;
                Err(e)
            }
            Err(e @ DecryptError::AuthenticationFailed { .. }) => {
                self.stats.authentication_failed += 1;
                Err(e)
            }
            Err(e) => {
                tracing::debug!(error = %e, "decrypt failure");
                self.stats.other_failures += 1;
                Err(e)
            }
        }
    }
}

/// A participant in a room.
pub struct Bot {
    pub spec: BotSpec,
    pub participant_id: u64,
    state: Arc<Mutex<BotState>>,
    pc: Arc<dyn PeerConnection>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub failed: watch::Receiver<bool>,
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
    /// Joins, negotiates media and starts publishing and receiving.
    pub async fn join(ctx: &RunContext, spec: BotSpec) -> Result<Bot, LoadError> {
        let joined_at = Instant::now();
        let client = Client::connect(ClientConfig::new(&ctx.url, &spec.room, &spec.token)).await?;
        let participant_id = client.participant_id();
        let state = Arc::new(Mutex::new(BotState {
            keyring: Keyring::new(KeyringConfig::default()),
            may_send: true,
            leaf_participants: Default::default(),
            stats: BotStats {
                late_joiner: spec.late,
                ..BotStats::default()
            },
            gaps: Gaps::default(),
            senders_seen: HashSet::new(),
            expected: spec.expected_publishers,
            joined_at,
            log: ctx.log.clone(),
            run_start: ctx.start,
        }));
        let mut peer = peer::build().await?;
        let mut outgoing = Vec::new();
        if spec.audio {
            let ssrc = rand::random::<u32>() | 1;
            let track = peer::local_track(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48000, 2, ssrc);
            let sender = peer.pc.add_track(track.clone()).await?;
            outgoing.push((
                RtpCodecKind::Audio,
                publish::Outgoing {
                    track,
                    sender,
                    ssrc,
                },
            ));
        }
        if spec.video {
            let ssrc = rand::random::<u32>() | 1;
            let track = peer::local_track(RtpCodecKind::Video, MIME_TYPE_VP9, 90000, 0, ssrc);
            let sender = peer.pc.add_track(track.clone()).await?;
            outgoing.push((
                RtpCodecKind::Video,
                publish::Outgoing {
                    track,
                    sender,
                    ssrc,
                },
            ));
        }
        if outgoing.is_empty() {
            // A listener offers to receive, so the connection has media sections to set up.
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                peer.pc
                    .add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            streams: Vec::new(),
                            send_encodings: Vec::new(),
                        }),
                    )
                    .await?;
            }
        }
        let offer = peer.pc.create_offer(None).await?;
        peer.pc.set_local_description(offer).await?;
        let offer_sdp = peer::local_sdp(&mut peer).await?;
        if !offer_sdp.contains("a=ice-ufrag") {
            tracing::warn!(sdp = %offer_sdp, "offer without ICE credentials");
        }
        client.send_sdp_offer(offer_sdp);

        let (answered_tx, answered) = watch::channel(false);
        let keys = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(events(
            client,
            peer.pc.clone(),
            state.clone(),
            answered_tx,
            keys.clone(),
            ctx.clone(),
            spec.room.clone(),
        )));
        let shared = publish::Shared {
            log: ctx.log.clone(),
            state: state.clone(),
            media: ctx.media.clone(),
            answered,
        };
        // A level per bot, so one of them is the loudest.
        let level = 20 + (participant_id % 40) as u8;
        for (kind, out) in outgoing {
            tasks.push(match kind {
                RtpCodecKind::Audio => tokio::spawn(publish::audio(out, shared.clone(), level)),
                _ => tokio::spawn(publish::video(out, shared.clone())),
            });
        }
        let receiving = receive::Receiving {
            state: state.clone(),
            keys,
        };
        let mut tracks = peer.tracks;
        tasks.push(tokio::spawn(async move {
            while let Some(track) = tracks.recv().await {
                tokio::spawn(receive::track(track, receiving.clone()));
            }
        }));
        Ok(Bot {
            spec,
            participant_id,
            state,
            pc: peer.pc,
            tasks,
            failed: peer.failed,
        })
    }

    /// Leaves: the signaling client goes (it says leave) and the peer closes. Returns what
    /// this bot measured.
    pub async fn leave(self) -> BotStats {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.pc.close().await;
        self.stats()
    }

    /// A copy of what this bot measured so far.
    pub fn stats(&self) -> BotStats {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        BotStats {
            frames_lost: s.gaps.lost(),
            ..s.stats.clone()
        }
    }

    /// Whether this bot has a frame from every publisher it expected.
    pub fn joined(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.expected == 0 || s.stats.join_time.is_some()
    }
}

/// The signaling side of a bot: keys and epochs from MLS, SDP from the SFU.
async fn events(
    mut client: Client,
    pc: Arc<dyn PeerConnection>,
    state: Arc<Mutex<BotState>>,
    answered: watch::Sender<bool>,
    keys: Arc<Notify>,
    ctx: RunContext,
    room: String,
) {
    while let Some(event) = client.next_event().await {
        match event {
            Event::NewEpoch {
                epoch,
                key,
                roster,
                warnings,
                may_send,
                ..
            } => {
                {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now().duration_since(ctx.start);
                    if let Err(e) = s.keyring.install(key, now) {
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
                }
                for w in &warnings {
                    tracing::warn!(warning = %w, "a member entered the group unexplained; sending stops");
                }
                ctx.commits
                    .arrived(&room, epoch, roster.len(), Instant::now());
                keys.notify_waiters();
            }
            Event::SdpAnswer(sdp) => {
                let applied = match RTCSessionDescription::answer(sdp) {
                    Ok(a) => pc.set_remote_description(a).await,
                    Err(e) => Err(e),
                };
                match applied {
                    Ok(()) => {
                        let _ = answered.send(true);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot apply the SFU's answer"),
                }
            }
            Event::SdpOffer(sdp) => {
                let answer = async {
                    pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
                        .await?;
                    let answer = pc.create_answer(None).await?;
                    pc.set_local_description(answer).await?;
                    Ok::<_, webrtc::error::Error>(pc.local_description().await.map(|d| d.sdp))
                }
                .await;
                match answer {
                    Ok(Some(sdp)) => client.send_sdp_answer(sdp),
                    Ok(None) => tracing::warn!("no local answer"),
                    Err(e) => tracing::warn!(error = %e, "cannot answer the SFU's offer"),
                }
            }
            Event::ServerError { code, message } => {
                tracing::warn!(?code, %message, "server error")
            }
            Event::SendGate { may_send, .. } => {
                state.lock().unwrap_or_else(|e| e.into_inner()).may_send = may_send;
            }
            Event::MlsFailure(m) => tracing::warn!(%m, "MLS failure"),
            Event::Removed { .. } | Event::Closed { .. } => break,
            _ => {}
        }
    }
}

/// How long a bot may take to hear every publisher before its join counts as failed.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
