//! A bot's task: the loop that waits on its inputs (datagrams, signaling events, media
//! ticks, the connection's timers, network changes) and its media side: what the connection
//! delivers (tracks, frames, key-frame requests), what it publishes, what it tells the SFU it
//! shows. Signaling events are [`super::events`]'.

use std::time::{Duration, Instant};

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP9};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{
    RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use signaling_client::{AppMessage, Client};
use signaling_participant::media_path::{IceState, MediaPath, Step};
use tokio::sync::oneshot;
use tokio::time::{Interval, MissedTickBehavior};

use super::peer::Peer;
use super::publish::Outgoing;
use super::receive::Tracks;
use super::speaking::DTX_EVERY;
use super::{BotSpec, Network, SCREEN_STREAM, Task};
use crate::LoadError;

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
    pub(super) async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
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
                    // One squeeze at a time: not while squeezed, nor while climbing back.
                    Network::Squeezed { bits_per_second, until }
                        if self.squeeze_ends.is_none() && !self.tracks.climbing() =>
                    {
                        self.peer.squeeze(bits_per_second, Instant::now(), until);
                        self.tracks.squeezed();
                        self.state.lock().unwrap_or_else(|e| e.into_inner()).stats.squeezes += 1;
                        self.squeeze_ends = Some(until);
                    }
                    Network::Squeezed { .. } => {}
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
    pub(super) async fn new_media_connection(&mut self) -> Result<(), LoadError> {
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
    pub(super) fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    /// When the path policy next has something to do.
    pub(super) fn path_due(&self) -> Option<Instant> {
        self.path.next_timeout().map(|t| self.origin + t)
    }

    /// Answers an SFU offer.
    pub(super) fn answer(&mut self, sdp: String) {
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
    pub(super) fn withdraw_unanswered(&mut self, set_aside: Option<String>) {
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
    pub(super) fn restart_ice(&mut self) {
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
    pub(super) fn drain(&mut self) {
        while let Some(event) = self.peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let video = self
                        .peer
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .is_some_and(|r| r.track().kind() == RtpCodecKind::Video);
                    let stream = init.stream_ids.first().map(String::as_str);
                    let mid = self
                        .peer
                        .pc
                        .rtp_transceiver(RTCRtpTransceiverId::from(init.receiver_id))
                        .and_then(|t| t.mid().clone());
                    self.tracks
                        .opened(init.track_id.clone(), stream, video, mid);
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
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) => {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.join_step(Instant::now(), |j| &mut j.media_connected);
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

    pub(super) fn publish(&mut self, video: bool) {
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

    /// Tells the SFU which videos it shows, if that changed and it said nothing for
    /// [`WANTS_EVERY`] (the next tick says it otherwise): a change after a quiet while goes
    /// at once, so a joiner's first tiles wait for no tick.
    pub(super) fn tell_wants(&mut self) {
        let now = Instant::now();
        let quiet = self
            .wants_sent
            .is_none_or(|at| now.saturating_duration_since(at) >= WANTS_EVERY);
        if !(self.wants_changed && quiet) {
            return;
        }
        if let Some((tiles, height)) = self.spec.tiles {
            self.wants_changed = false;
            self.wants_sent = Some(now);
            self.client
                .send_video_wants(self.tracks.video_wants(tiles, height), None);
        }
    }

    /// Says something in the chat, with when (on the run's clock) it was sent.
    pub(super) fn chat(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let sent = s.since_start(Instant::now()).as_micros();
        let text = format!("load chat {} sent at {sent} us", s.stats.chat_sent);
        if self.client.send_app(AppMessage::Chat { text }).is_ok() {
            s.stats.chat_sent += 1;
        }
    }
}

/// A new peer connection with `spec`'s tracks, its offer sent through `client`.
pub(super) async fn media_peer(
    spec: &BotSpec,
    client: &Client,
) -> Result<(Peer, Vec<Outgoing>), LoadError> {
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
    if spec.tiles.is_some() {
        // It says what it shows (nothing yet) before its offer: it is sent no video before it
        // names one, so its connection never holds a section per video of the room.
        client.send_video_wants(Vec::new(), None);
    }
    client.send_sdp_offer(peer.offer()?);
    Ok((peer, outgoing))
}
