//! One room's media as the room's task drives it (with the room's delivery service, in
//! `signaling_server`): signaling from the participants and datagrams from their transports
//! fed to the room's [`MediaRoom`], and what the room asks carried out (datagrams sent,
//! transports opened and closed, SDP and errors to the participants), timers in between.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use signaling_protocol::MediaSignal;
use signaling_protocol::{ErrorCode, ParticipantId};
use signaling_server::server::{MediaSender, RoomMedia};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use udp_batch::RecvBuffers;

use super::transport::{ParticipantTransport, RoomDatagram};
use super::{ForwardStats, MediaConfig};
use crate::media_room::{Counters, Input, MediaRoom, Output};

/// Datagrams queued for a room (from the shared port) before new ones are dropped (as a full
/// socket buffer would): about 0.1 s of a 20-participant room at its peak rate.
const DATAGRAM_QUEUE: usize = 8192;

/// Datagrams taken in one go before the room's task looks at signaling and timers again.
const BATCH: usize = 64;

/// Datagrams to send from one socket: (destination, bytes).
pub(crate) type Outgoing = Vec<(SocketAddr, BytesMut)>;

/// One room's media: the state machine and the IO around it.
pub(crate) struct RoomDriver {
    name: String,
    config: MediaConfig,
    stats: Arc<ForwardStats>,
    /// The room's datagram queue (the shared port's datagrams for this room come through
    /// it): the sending side for the transports it opens, and the receiving side.
    datagrams: mpsc::Sender<RoomDatagram>,
    datagrams_rx: mpsc::Receiver<RoomDatagram>,
    room: MediaRoom,
    senders: HashMap<ParticipantId, MediaSender>,
    transports: HashMap<ParticipantId, ParticipantTransport>,
    counted: Counters,
    /// Datagrams the room gave since the last flush, by the socket they leave from.
    outgoing: Vec<(Arc<UdpSocket>, Outgoing)>,
    /// Where datagrams from the room's own sockets are read into.
    recv_buffers: RecvBuffers,
    /// The room's next deadline.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Rooms with media now, server-wide (this one counts until it is dropped).
    live: Arc<AtomicUsize>,
}

impl RoomDriver {
    /// Room `name`'s media, counted in `live`; must be made inside a tokio runtime.
    pub(crate) fn new(
        name: &str,
        config: MediaConfig,
        stats: Arc<ForwardStats>,
        live: Arc<AtomicUsize>,
    ) -> Self {
        let (datagrams, datagrams_rx) = mpsc::channel(DATAGRAM_QUEUE);
        live.fetch_add(1, Ordering::Relaxed);
        let policy = config.policy;
        RoomDriver {
            name: name.to_owned(),
            config,
            stats,
            datagrams,
            datagrams_rx,
            room: MediaRoom::with_policy(rand::random(), policy),
            senders: HashMap::new(),
            transports: HashMap::new(),
            counted: Counters::default(),
            outgoing: Vec::new(),
            recv_buffers: RecvBuffers::new(udp_batch::BATCH, 2048),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            live,
        }
    }
}

impl Drop for RoomDriver {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(room = %self.name, "media room closed");
    }
}

impl RoomMedia for RoomDriver {
    fn joined(&mut self, participant: ParticipantId, may_publish: bool, sender: MediaSender) {
        self.senders.insert(participant, sender);
        self.input(Input::Joined {
            participant,
            may_publish,
        });
        self.settle();
    }

    fn signal(&mut self, participant: ParticipantId, signal: MediaSignal) {
        self.input(Input::Signal {
            participant,
            signal,
        });
        self.settle();
    }

    fn left(&mut self, participant: ParticipantId) {
        self.input(Input::Left { participant });
        self.senders.remove(&participant);
        self.transports.remove(&participant);
        self.settle();
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // The shared port's datagrams for this room, and the participants' own sockets'
        // (port-range mode): one batch for the room.
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            match self.datagrams_rx.poll_recv(cx) {
                Poll::Ready(Some(d)) => batch.push(d),
                _ => break,
            }
        }
        for (&participant, t) in &self.transports {
            t.poll_read(cx, participant, &mut self.recv_buffers, &mut batch);
        }
        let mut worked = !batch.is_empty();
        if worked {
            self.datagrams(batch);
        }
        // Timers.
        if let Some(deadline) = self.room.poll_timeout() {
            let deadline = tokio::time::Instant::from_std(deadline);
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_ready() {
                self.input(Input::Timeout);
                worked = true;
            }
        }
        self.settle();
        if worked {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl RoomDriver {
    /// What one call left to do: the datagrams it produced sent, its counts added.
    fn settle(&mut self) {
        self.flush();
        self.count();
    }

    /// Datagrams read together, handed to the room as one batch.
    fn datagrams(&mut self, batch: Vec<RoomDatagram>) {
        let inputs = batch.into_iter().map(|d| Input::Datagram {
            participant: d.participant,
            local: d.local,
            remote: d.remote,
            data: d.data,
        });
        self.room.handle_inputs(Instant::now(), inputs);
        self.carry_out();
    }

    /// One input to the room, and everything it asks for carried out.
    fn input(&mut self, input: Input) {
        self.room.handle_input(Instant::now(), input);
        self.carry_out();
    }

    /// Everything the room asks for now.
    fn carry_out(&mut self) {
        while let Some(out) = self.room.poll_output() {
            self.output(out);
        }
    }

    fn output(&mut self, out: Output) {
        match out {
            Output::Transmit {
                participant,
                local,
                remote,
                data,
            } => {
                let Some(socket) = self
                    .transports
                    .get(&participant)
                    .and_then(|t| t.sending(local, remote, &data))
                else {
                    return;
                };
                match self
                    .outgoing
                    .iter_mut()
                    .find(|(s, _)| Arc::ptr_eq(s, &socket))
                {
                    Some((_, queue)) => queue.push((remote, data)),
                    None => self.outgoing.push((socket, vec![(remote, data)])),
                }
            }
            Output::OpenTransport { participant } => {
                let opened = ParticipantTransport::open(
                    &self.config,
                    participant,
                    self.datagrams.clone(),
                    self.stats.clone(),
                );
                let reply = match opened {
                    Ok((t, transport)) => {
                        self.transports.insert(participant, t);
                        Input::TransportOpened {
                            participant,
                            transport,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(participant, error = %e, "no media transport");
                        Input::TransportRefused {
                            participant,
                            code: ErrorCode::MediaUnavailable,
                            message: e.to_string(),
                        }
                    }
                };
                self.room.handle_input(Instant::now(), reply);
            }
            Output::CloseTransport { participant } => {
                self.transports.remove(&participant);
            }
            Output::Signal {
                participant,
                signal,
            } => {
                if let Some(s) = self.senders.get(&participant) {
                    s.send(signal);
                }
            }
            Output::Error {
                participant,
                code,
                message,
            } => {
                if let Some(s) = self.senders.get(&participant) {
                    s.error(code, message);
                }
            }
            Output::Disconnect {
                participant,
                code,
                message,
            } => {
                if let Some(s) = self.senders.remove(&participant) {
                    s.disconnect(code, message);
                }
            }
            Output::ActiveSpeaker { participant } => {
                for s in self.senders.values() {
                    s.active_speaker(participant);
                }
            }
        }
    }

    /// Sends what the room gave, a batch per socket.
    fn flush(&mut self) {
        let (mut datagrams_sent, mut calls) = (0, 0);
        for (socket, queue) in self.outgoing.drain(..) {
            let datagrams: Vec<(SocketAddr, &[u8])> =
                queue.iter().map(|(to, d)| (*to, &d[..])).collect();
            let sent = udp_batch::send_all(&socket, &datagrams, self.config.gso);
            datagrams_sent += sent.datagrams as u64;
            calls += sent.calls as u64;
        }
        // Into the server-wide counters once per flush, not once per socket.
        if calls > 0 {
            self.stats
                .datagrams_sent
                .fetch_add(datagrams_sent, Ordering::Relaxed);
            self.stats.send_calls.fetch_add(calls, Ordering::Relaxed);
        }
    }

    /// Adds what the room counted since the last call to the server's counters.
    fn count(&mut self) {
        let now = self.room.counters();
        let before = std::mem::replace(&mut self.counted, now);
        let add = |c: &std::sync::atomic::AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.stats.packets_in, now.packets_in - before.packets_in);
        add(
            &self.stats.packets_out,
            now.packets_out - before.packets_out,
        );
        add(&self.stats.bytes_out, now.bytes_out - before.bytes_out);
        add(
            &self.stats.keyframe_requests_sent,
            now.keyframe_requests_sent - before.keyframe_requests_sent,
        );
    }
}
