//! The task that drives one room's [`MediaRoom`]: signaling from the participants' connections
//! and datagrams from their transports in, the room's outputs carried out (datagrams sent,
//! transports opened and closed, SDP and errors to the participants), timers in between.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;
use signaling_protocol::{ErrorCode, ParticipantId};
use signaling_server::server::{MediaSender, MediaSignal};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::batch::{self, RecvBuffers};
use super::transport::{ParticipantTransport, RoomDatagram};
use super::{ForwardStats, MediaConfig, Rooms};
use crate::media_room::{Counters, Input, MediaRoom, Output};

/// Datagrams queued for a room's task before new ones are dropped (as a full socket buffer
/// would): about 0.1 s of a 20-participant room at its peak rate.
pub(crate) const DATAGRAM_QUEUE: usize = 8192;

/// Datagrams taken in one go before the task looks at signaling and timers again.
const BATCH: usize = 64;

/// Datagrams to send from one socket: (destination, bytes).
pub(crate) type Outgoing = Vec<(SocketAddr, BytesMut)>;

/// Signaling for a room's task.
pub(crate) enum RoomInput {
    Joined {
        participant: ParticipantId,
        may_publish: bool,
        sender: MediaSender,
    },
    Signal {
        participant: ParticipantId,
        signal: MediaSignal,
    },
    Left {
        participant: ParticipantId,
    },
}

pub(crate) struct RoomTask {
    pub name: String,
    pub config: MediaConfig,
    pub stats: Arc<ForwardStats>,
    /// The sending side of this room's datagram queue, for the transports it opens.
    pub datagrams: mpsc::Sender<RoomDatagram>,
    pub room: MediaRoom,
    pub senders: HashMap<ParticipantId, MediaSender>,
    pub transports: HashMap<ParticipantId, ParticipantTransport>,
    pub counted: Counters,
    /// Datagrams the room gave since the last flush, by the socket they leave from.
    pub outgoing: Vec<(Arc<UdpSocket>, Outgoing)>,
    /// Where datagrams from the room's own sockets are read into.
    pub recv_buffers: RecvBuffers,
}

impl RoomTask {
    /// Runs until the room is empty with nothing more queued, then takes itself out of
    /// `rooms`.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<RoomInput>,
        mut datagrams: mpsc::Receiver<RoomDatagram>,
        control: mpsc::UnboundedSender<RoomInput>,
        rooms: Rooms,
    ) {
        let span = tracing::info_span!("media", room = %self.name);
        let _enter = span.enter();
        loop {
            let deadline = self.room.poll_timeout();
            tokio::select! {
                biased;
                input = inputs.recv() => match input {
                    Some(input) => self.control(input),
                    None => break,
                },
                Some(d) = datagrams.recv() => {
                    self.datagram(d);
                    for _ in 1..BATCH {
                        match datagrams.try_recv() {
                            Ok(d) => self.datagram(d),
                            Err(_) => break,
                        }
                    }
                }
                batch = own_sockets(&self.transports, &mut self.recv_buffers) => {
                    for d in batch {
                        self.datagram(d);
                    }
                }
                () = sleep_until(deadline) => self.input(Input::Timeout),
            }
            self.flush();
            self.count();
            if self.room.is_empty() && self.senders.is_empty() {
                let mut map = rooms.lock().unwrap_or_else(|e| e.into_inner());
                if inputs.is_empty() {
                    if map
                        .get(&self.name)
                        .is_some_and(|tx| tx.same_channel(&control))
                    {
                        map.remove(&self.name);
                    }
                    break;
                }
            }
        }
        tracing::debug!("media room closed");
    }

    fn control(&mut self, input: RoomInput) {
        match input {
            RoomInput::Joined {
                participant,
                may_publish,
                sender,
            } => {
                self.senders.insert(participant, sender);
                self.input(Input::Joined {
                    participant,
                    may_publish,
                });
            }
            RoomInput::Signal {
                participant,
                signal,
            } => self.input(Input::Signal {
                participant,
                signal,
            }),
            RoomInput::Left { participant } => {
                self.input(Input::Left { participant });
                self.senders.remove(&participant);
                self.transports.remove(&participant);
            }
        }
    }

    fn datagram(&mut self, d: RoomDatagram) {
        self.input(Input::Datagram {
            participant: d.participant,
            local: d.local,
            remote: d.remote,
            data: d.data,
        });
    }

    /// One input to the room, and everything it asks for carried out.
    fn input(&mut self, input: Input) {
        self.room.handle_input(Instant::now(), input);
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
        for (socket, queue) in self.outgoing.drain(..) {
            let datagrams: Vec<(SocketAddr, &[u8])> =
                queue.iter().map(|(to, d)| (*to, &d[..])).collect();
            batch::send_all(&socket, &datagrams);
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

/// The datagrams waiting on the room's own sockets (port-range mode), once there are any.
async fn own_sockets(
    transports: &HashMap<ParticipantId, ParticipantTransport>,
    buffers: &mut RecvBuffers,
) -> Vec<RoomDatagram> {
    std::future::poll_fn(|cx| {
        let mut out = Vec::new();
        for (&participant, t) in transports {
            t.poll_read(cx, participant, buffers, &mut out);
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(out)
        }
    })
    .await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
