//! Participants for in-process SFU tests: a signaling client (a real MLS member) and a
//! webrtc-rs peer that publishes SFrame-encrypted audio and video and decrypts all it receives.
#![allow(dead_code)]

pub mod lossy;
pub mod peer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use media_crypto::mls::{Keyring, KeyringConfig};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP9};
use rtc::peer_connection::configuration::{
    RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::header::Header;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::media::MediaConfig;
use signaling_client::{Client, ClientConfig, Event};
use signaling_protocol::{IceServer, media_stream};
use signaling_server::{SignalingConfig, SignalingServer};
use signaling_token::{self as token, Claims};
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

pub const SECRET: &[u8] = b"sfu test secret!";
pub const WAIT: Duration = Duration::from_secs(60);

/// Tests that run whole meetings take this lock, so that on a 2-core machine one meeting's
/// connections are not starved by another's.
pub static ONE_MEETING_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct TestSfu {
    pub url: String,
    pub media: Arc<sfu::media::MediaServer>,
    pub signaling: SignalingServer,
}

/// An SFU on localhost with OS-picked media ports.
pub async fn start() -> TestSfu {
    start_with(
        MediaConfig::new(LOCALHOST, (0, 0), None),
        SignalingConfig::default(),
    )
    .await
}

pub const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// An SFU with this media and signaling configuration (the token secret is [`SECRET`]). It
/// forwards every audio stream, silent or not: these are tests of forwarding as such, with
/// bots that start silent (the loudest-audio selection is tested on its own).
pub async fn start_with(media: MediaConfig, signaling: SignalingConfig) -> TestSfu {
    let media = MediaConfig {
        policy: sfu::media_room::Policy {
            loudest_audio: 0,
            last_n: 0,
            ..Default::default()
        },
        ..media
    };
    let media = Arc::new(sfu::media::MediaServer::new(media));
    let signaling = SignalingServer::with_media(
        SignalingConfig {
            token_secret: SECRET.to_vec(),
            ..signaling
        },
        media.clone(),
    )
    .expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let app = signaling.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestSfu {
        url,
        media,
        signaling,
    }
}

pub fn token_for(room: &str, identity: &str) -> String {
    token::mint(
        &Claims::new(room, identity, std::time::Duration::from_secs(600)),
        SECRET,
    )
    .expect("mint")
}

/// A frame a bot decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    pub sender_leaf: u32,
    /// The publisher's participant id, as the SFU's stream id names it (a section's stream id
    /// names nobody: `audio-<n>`, `video-<n>`).
    pub stream_id: String,
    pub plaintext: String,
    pub payload: Vec<u8>,
}

impl Received {
    /// Whether the SFU sent it as `participant_id`'s: in a stream of theirs, or in a section
    /// (which carries whoever the SFU puts in it; the key says whose it is).
    pub fn sent_as_of(&self, participant_id: u64) -> bool {
        self.stream_id == participant_id.to_string()
            || media_stream::parse_audio_section(&self.stream_id).is_some()
            || media_stream::parse_video_section(&self.stream_id).is_some()
    }
}

/// Every ciphertext any bot sent, to check that forwarding kept payloads byte for byte.
#[derive(Default)]
pub struct Ledger {
    pub sent: Mutex<HashSet<Vec<u8>>>,
}

/// A track the SFU sends this bot.
pub struct RemoteTrack {
    pub stream_id: String,
    pub kind: RtpCodecKind,
    pub track: Arc<dyn TrackRemote>,
}

pub struct Bot {
    pub name: String,
    pub participant_id: u64,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub remote_tracks: Arc<Mutex<Vec<RemoteTrack>>>,
    pub roster: watch::Receiver<Vec<String>>,
    pub errors: Arc<Mutex<Vec<String>>>,
    pub pc: Arc<dyn PeerConnection>,
    /// The last active speaker the server announced (`None` inside: nobody).
    pub speaker: watch::Receiver<Option<Option<u64>>>,
    /// The RFC 6464 level this bot puts on its audio: 0 loudest, 127 (the start) silence.
    pub loudness: Arc<AtomicU8>,
    pub ice_servers: Vec<IceServer>,
    /// Per received track ("stream/kind"): packets arrived, and why frames did not decrypt.
    pub arrivals: Arc<Mutex<std::collections::BTreeMap<String, Arrivals>>>,
    /// The SDP the SFU last sent.
    pub last_sfu_sdp: Arc<Mutex<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What arrived on one received track.
#[derive(Debug, Default, Clone)]
pub struct Arrivals {
    pub packets: usize,
    pub undecryptable: std::collections::BTreeMap<String, usize>,
}

/// Changes the SFU's SDP before a bot applies it.
pub type SdpRewrite = Arc<dyn Fn(String) -> String + Send + Sync>;

impl Bot {
    /// Leaves: the signaling client is dropped (it says leave) and the peer closes.
    pub async fn leave(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.pc.close().await;
    }

    /// Sends a PLI for the video this bot receives from `participant_id`: on the track its
    /// latest video frame came in.
    pub async fn request_keyframe_from(&self, participant_id: u64) -> bool {
        let prefix = format!("{participant_id}: video");
        let Some(stream) = self
            .received
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|r| r.plaintext.starts_with(&prefix))
            .map(|r| r.stream_id.clone())
        else {
            return false;
        };
        let track = self
            .remote_tracks
            .lock()
            .expect("lock")
            .iter()
            .find(|t| t.stream_id == stream && t.kind == RtpCodecKind::Video)
            .map(|t| t.track.clone());
        let Some(track) = track else { return false };
        let Some(&media_ssrc) = track.ssrcs().await.first() else {
            return false;
        };
        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        track.write_rtcp(vec![Box::new(pli)]).await.is_ok()
    }

    /// The SDP the SFU last sent (its offer or answer).
    pub async fn remote_sdp(&self) -> String {
        self.pc
            .remote_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default()
    }

    /// What this bot received and negotiated, for a failing test's message.
    pub fn explain(&self) -> String {
        let sdp: Vec<String> = self
            .last_sfu_sdp
            .lock()
            .expect("lock")
            .lines()
            .filter(|l| {
                ["m=", "a=mid", "a=msid", "a=send", "a=recv", "a=inactive"]
                    .iter()
                    .any(|p| l.starts_with(p))
                    || (l.starts_with("a=ssrc:") && l.contains("cname"))
            })
            .map(str::to_owned)
            .collect();
        let tracks: Vec<String> = self
            .remote_tracks
            .lock()
            .expect("lock")
            .iter()
            .map(|t| format!("{}/{}", t.stream_id, t.kind))
            .collect();
        format!(
            "{} ({}): roster {:?}; tracks {tracks:?}; arrivals {:?}; errors {:?}; SFU's SDP {sdp:?}",
            self.name,
            self.participant_id,
            *self.roster.borrow(),
            self.arrivals.lock().expect("lock"),
            self.errors.lock().expect("lock"),
        )
    }

    /// Frames decrypted from the participant with this id, by kind ("audio"/"video").
    pub fn count_from(&self, participant_id: u64, kind: &str) -> usize {
        let name_prefix = format!("{participant_id}:");
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.sent_as_of(participant_id))
            .filter(|r| r.plaintext.starts_with(&name_prefix) && r.plaintext.contains(kind))
            .count()
    }
}

impl Bot {
    /// Joins `room`, negotiates media with the SFU, and publishes audio (every 20 ms) and video
    /// (every 33 ms) frames, each SFrame-encrypted under the group's current key.
    pub async fn join(sfu: &TestSfu, room: &str, name: &str, ledger: Arc<Ledger>) -> Bot {
        Self::join_with(&sfu.url, room, name, &token_for(room, name), ledger).await
    }

    /// Joins the SFU at signaling `url` with `token`.
    pub async fn join_with(
        url: &str,
        room: &str,
        name: &str,
        token: &str,
        ledger: Arc<Ledger>,
    ) -> Bot {
        Self::join_via(url, room, name, token, ledger, None, false).await
    }

    /// Joins with every SDP from the SFU passed through `rewrite` first (to route media
    /// through a proxy).
    pub async fn join_via(
        url: &str,
        room: &str,
        name: &str,
        token: &str,
        ledger: Arc<Ledger>,
        rewrite: Option<SdpRewrite>,
        relay_only: bool,
    ) -> Bot {
        let rewrite = move |sdp: String| match &rewrite {
            Some(f) => f(sdp),
            None => sdp,
        };
        let start = Instant::now();
        let client = Client::connect(ClientConfig::new(url, room, token))
            .await
            .expect("connect");
        let participant_id = client.participant_id();
        let ice_servers = client.ice_servers().to_vec();
        let (speaker_tx, speaker) = watch::channel(None);
        let loudness = Arc::new(AtomicU8::new(127));
        let keyring = Arc::new(Mutex::new(Keyring::new(KeyringConfig::default())));
        let received = Arc::new(Mutex::new(Vec::new()));
        let remote_tracks = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let last_sfu_sdp = Arc::new(Mutex::new(String::new()));
        let (roster_tx, roster) = watch::channel(Vec::new());
        let (answered_tx, mut answered) = watch::channel(false);

        // The ICE servers the SFU handed out; relay-only uses nothing but their TURN relays.
        let rtc_ice_servers = ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let mut configuration = RTCConfigurationBuilder::new().with_ice_servers(rtc_ice_servers);
        if relay_only {
            configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let peer = peer::build_with(configuration.build()).await.expect("pc");
        let (pc, mut gathered, mut tracks) = (peer.pc, peer.gathered, peer.tracks);
        let audio_ssrc: u32 = rand::random::<u32>() | 1;
        let video_ssrc: u32 = rand::random::<u32>() | 1;
        let audio = peer::local_track(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48000, 2, audio_ssrc);
        let video = peer::local_track(RtpCodecKind::Video, MIME_TYPE_VP9, 90000, 0, video_ssrc);
        let audio_sender = pc.add_track(audio.clone()).await.expect("add audio");
        let video_sender = pc.add_track(video.clone()).await.expect("add video");
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer).await.expect("set local");
        let _ = tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|&g| g)).await;
        client.send_sdp_offer(pc.local_description().await.expect("local").sdp);

        let mut tasks = Vec::new();
        // Signaling: keys and roster from MLS, SDP from the SFU.
        {
            let (pc, keyring, errors, last_sfu_sdp) = (
                pc.clone(),
                keyring.clone(),
                errors.clone(),
                last_sfu_sdp.clone(),
            );
            let mut client = client;
            tasks.push(tokio::spawn(async move {
                while let Some(event) = client.next_event().await {
                    match event {
                        Event::NewEpoch { key, roster, .. } => {
                            let _ = keyring.lock().expect("lock").install(key, start.elapsed());
                            let _ = roster_tx.send(roster.iter().map(|r| r.name()).collect());
                        }
                        Event::SdpAnswer(sdp) => {
                            last_sfu_sdp.lock().expect("lock").clone_from(&sdp);
                            let r = match RTCSessionDescription::answer(rewrite(sdp)) {
                                Ok(a) => pc.set_remote_description(a).await,
                                Err(e) => Err(e),
                            };
                            match r {
                                Ok(()) => {
                                    let _ = answered_tx.send(true);
                                }
                                Err(e) => errors.lock().expect("lock").push(format!("answer: {e}")),
                            }
                        }
                        Event::SdpOffer(sdp) => {
                            last_sfu_sdp.lock().expect("lock").clone_from(&sdp);
                            let result = async {
                                pc.set_remote_description(RTCSessionDescription::offer(rewrite(
                                    sdp,
                                ))?)
                                .await?;
                                let answer = pc.create_answer(None).await?;
                                pc.set_local_description(answer).await?;
                                Ok::<_, webrtc::error::Error>(
                                    pc.local_description().await.map(|d| d.sdp),
                                )
                            }
                            .await;
                            match result {
                                Ok(Some(sdp)) => client.send_sdp_answer(sdp),
                                Ok(None) => {
                                    errors.lock().expect("lock").push("no local answer".into())
                                }
                                Err(e) => errors.lock().expect("lock").push(format!("offer: {e}")),
                            }
                        }
                        Event::ServerError { code, message } => errors
                            .lock()
                            .expect("lock")
                            .push(format!("{code:?}: {message}")),
                        Event::MlsFailure(m) => errors.lock().expect("lock").push(m),
                        Event::ActiveSpeaker(who) => {
                            let _ = speaker_tx.send(Some(who));
                        }
                        Event::Closed { .. } => break,
                        _ => {}
                    }
                }
            }));
        }
        // Publishing: one SFrame frame per RTP packet.
        {
            let (keyring, loudness, errors) = (keyring.clone(), loudness.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let _ = answered.wait_for(|&a| a).await;
                let (a, v) = (
                    peer::negotiated(&audio_sender).await,
                    peer::negotiated(&video_sender).await,
                );
                let (Some((audio_pt, level_id)), Some((video_pt, _))) = (a, v) else {
                    errors
                        .lock()
                        .expect("lock")
                        .push(format!("not negotiated: {a:?} {v:?}"));
                    return;
                };
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                for i in 0u32.. {
                    tick.tick().await;
                    let sends: &[(&Arc<TrackLocalStaticRTP>, u8, u32, &str, u32)] = if i % 3 == 0 {
                        &[
                            (&audio, audio_pt, audio_ssrc, "audio", 960),
                            (&video, video_pt, video_ssrc, "video", 3000),
                        ]
                    } else {
                        &[(&audio, audio_pt, audio_ssrc, "audio", 960)]
                    };
                    for &(track, pt, ssrc, kind, step) in sends {
                        let text = format!("{participant_id}: {kind} frame {i}");
                        let Ok(frame) = keyring.lock().expect("lock").encrypt(b"", text.as_bytes())
                        else {
                            continue;
                        };
                        ledger.sent.lock().expect("lock").insert(frame.clone());
                        let mut packet = rtc::rtp::Packet {
                            header: Header {
                                version: 2,
                                marker: true,
                                payload_type: pt,
                                sequence_number: i as u16,
                                timestamp: i.wrapping_mul(step),
                                ssrc,
                                ..Default::default()
                            },
                            payload: Bytes::from(frame),
                        };
                        if let (Some(id), "audio") = (level_id, kind) {
                            let level = loudness.load(Ordering::Relaxed);
                            let voice = if level < 127 { 0x80 } else { 0 };
                            let _ = packet
                                .header
                                .set_extension(id, Bytes::from(vec![voice | level]));
                        }
                        let _ = track.write_rtp(packet).await;
                    }
                }
            }));
        }
        // Receiving: decrypt every packet of every track the SFU sends.
        {
            let (keyring, received, remote_tracks, arrivals) = (
                keyring.clone(),
                received.clone(),
                remote_tracks.clone(),
                arrivals.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while let Some(track) = tracks.recv().await {
                    let (keyring, received, arrivals) =
                        (keyring.clone(), received.clone(), arrivals.clone());
                    // The publisher the stream id names ("<pid>.<its stream>").
                    let stream = track.stream_id().await.to_string();
                    let stream_id = media_stream::parse_stream_id(&stream)
                        .map_or(stream.clone(), |(p, _)| p.to_string());
                    let kind = track.kind().await;
                    let arrival_key = format!("{stream_id}/{kind}");
                    remote_tracks.lock().expect("lock").push(RemoteTrack {
                        stream_id: stream_id.clone(),
                        kind,
                        track: track.clone(),
                    });
                    tokio::spawn(async move {
                        while let Some(event) = track.poll().await {
                            let p = match event {
                                TrackRemoteEvent::OnRtpPacket(p) => p,
                                TrackRemoteEvent::OnEnded => break,
                                _ => continue,
                            };
                            let decrypted = keyring.lock().expect("lock").decrypt(
                                b"",
                                &p.payload,
                                start.elapsed(),
                            );
                            {
                                let mut arrivals = arrivals.lock().expect("lock");
                                let seen: &mut Arrivals =
                                    arrivals.entry(arrival_key.clone()).or_default();
                                seen.packets += 1;
                                if let Err(e) = &decrypted {
                                    *seen.undecryptable.entry(format!("{e:?}")).or_default() += 1;
                                }
                            }
                            if let Ok((frame, plaintext)) = decrypted {
                                received.lock().expect("lock").push(Received {
                                    sender_leaf: frame.sender,
                                    stream_id: stream_id.clone(),
                                    plaintext: String::from_utf8_lossy(&plaintext).into_owned(),
                                    payload: p.payload.to_vec(),
                                });
                            }
                        }
                    });
                }
            }));
        }
        Bot {
            name: name.into(),
            participant_id,
            received,
            remote_tracks,
            roster,
            errors,
            pc,
            speaker,
            loudness,
            ice_servers,
            arrivals,
            last_sfu_sdp,
            tasks,
        }
    }
}

/// The addresses and ports of the candidates in an SDP.
pub fn candidates(sdp: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            Some((f.get(4)?.to_string(), f.get(5)?.parse().ok()?))
        })
        .collect()
}

/// Waits until `done` holds, or panics with `what` after [`WAIT`].
pub async fn eventually(what: &str, done: impl FnMut() -> bool) {
    eventually_explained(what, done, String::new).await
}

/// Like [`eventually`]; on timeout the panic also carries what `explain` says then.
pub async fn eventually_explained(
    what: &str,
    mut done: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            explain()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everyone in `names` joins room "meeting"; returns once each hears and sees every other.
pub async fn meeting(sfu: &TestSfu, names: &[&str], ledger: &Arc<Ledger>) -> Vec<Bot> {
    let mut bots = Vec::new();
    for name in names {
        bots.push(Bot::join(sfu, "meeting", name, ledger.clone()).await);
    }
    for bot in &bots {
        for other in bots
            .iter()
            .filter(|o| o.participant_id != bot.participant_id)
        {
            eventually_explained(
                &format!("{} hearing {}", bot.name, other.name),
                || {
                    bot.count_from(other.participant_id, "video") >= 3
                        && bot.count_from(other.participant_id, "audio") >= 3
                },
                || bot.explain(),
            )
            .await;
        }
    }
    bots
}
