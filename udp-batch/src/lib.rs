//! Batched UDP: many datagrams per system call (Linux `sendmmsg` and `recvmmsg`, through nix's
//! safe wrappers, with GSO for runs to one destination) on a tokio socket. The sfu's media
//! transports and the load-test bots send and receive through it. A datagram the
//! socket cannot take now (its buffer is full) is dropped, as UDP would drop it on the wire.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

mod gso;

use gso::Plan;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Set once the host refused a GSO send (a network device without checksum offload, an old
/// kernel): from then on every datagram goes on its own.
static GSO_REFUSED: AtomicBool = AtomicBool::new(false);

/// What [`send_all`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the socket took.
    pub datagrams: usize,
    /// System calls made.
    pub calls: usize,
}

/// Sends each `(destination, datagram)`, each destination's in the order given; with `gso`,
/// runs to one destination go as one GSO send ([`gso`]).
pub fn send_all(socket: &UdpSocket, datagrams: &[(SocketAddr, &[u8])], gso: bool) -> Sent {
    let gso = gso && !GSO_REFUSED.load(Ordering::Relaxed);
    let plan = Plan::new(datagrams, gso, BATCH);
    let mut sent = Sent::default();
    for call in &plan.calls {
        let mut next = call.messages.start;
        while next < call.messages.end {
            let rest = next..call.messages.end;
            // Straight to the (non-blocking) socket: tokio's write readiness is never awaited
            // here, so there is nothing of it to keep in step.
            sent.calls += 1;
            match send_call(socket, datagrams, &plan, rest.clone(), call.segment) {
                Ok(0) => break,
                Ok(n) => {
                    sent.datagrams += plan.datagrams_in(next..next + n);
                    next += n;
                }
                // Full: the rest of this call is dropped; a later call may fit.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if call.segment.is_some() && refuses_gso(&e) => {
                    GSO_REFUSED.store(true, Ordering::Relaxed);
                    tracing::warn!(error = %e, "this host refuses UDP GSO: datagrams go one by one from now on");
                    let singles: Vec<(SocketAddr, &[u8])> = plan.messages[rest]
                        .iter()
                        .flat_map(|m| plan.order[m.datagrams.clone()].iter())
                        .map(|&i| datagrams[i])
                        .collect();
                    let more = send_all(socket, &singles, false);
                    sent.datagrams += more.datagrams;
                    sent.calls += more.calls;
                    break;
                }
                // One destination unreachable (ICMP) or similar: skip that message.
                Err(e) => {
                    tracing::debug!(error = %e, "datagram not sent");
                    next += 1;
                }
            }
        }
    }
    sent
}

/// Errors that say the kernel or device does not do GSO (rather than that one send failed).
fn refuses_gso(e: &io::Error) -> bool {
    matches!(
        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        nix::errno::Errno::EIO | nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP
    )
}

/// One `sendmmsg` of `messages` (a range of the plan's); how many messages went.
fn send_call(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, &[u8])],
    plan: &Plan,
    messages: std::ops::Range<usize>,
    segment: Option<u16>,
) -> io::Result<usize> {
    let messages = &plan.messages[messages];
    // The messages' datagrams are consecutive in the plan's order: one list of buffers, each
    // message a slice of it.
    let (first, last) = match (messages.first(), messages.last()) {
        (Some(a), Some(b)) => (a.datagrams.start, b.datagrams.end),
        _ => return Ok(0),
    };
    let buffers: Vec<IoSlice<'_>> = plan.order[first..last]
        .iter()
        .map(|&i| IoSlice::new(datagrams[i].1))
        .collect();
    let slices: Vec<&[IoSlice<'_>]> = messages
        .iter()
        .map(|m| &buffers[m.datagrams.start - first..m.datagrams.end - first])
        .collect();
    let addrs: Vec<Option<SockaddrStorage>> = messages
        .iter()
        .map(|m| Some(SockaddrStorage::from(m.to)))
        .collect();
    let size = segment.unwrap_or(0);
    let with_segment = [ControlMessage::UdpGsoSegments(&size)];
    let cmsgs: &[ControlMessage<'_>] = if segment.is_some() {
        &with_segment
    } else {
        &[]
    };
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
        messages.len(),
        segment.map(|_| nix::cmsg_space!(u16)),
    );
    let results = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addrs,
        cmsgs,
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    Ok(results.count())
}

/// Asks for a receive buffer of `bytes` on `socket` (Linux caps the request at
/// `net.core.rmem_max`); returns the size the kernel granted (which counts its own overhead,
/// about double what was asked).
pub fn set_recv_buffer(socket: &UdpSocket, bytes: usize) -> io::Result<usize> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt::RcvBuf};
    setsockopt(socket, RcvBuf, &bytes)?;
    Ok(getsockopt(socket, RcvBuf)?)
}

/// Buffers for [`recv_batch`].
#[derive(Debug)]
pub struct RecvBuffers {
    bufs: Vec<Vec<u8>>,
}

impl RecvBuffers {
    /// `n` buffers of `size` bytes.
    pub fn new(n: usize, size: usize) -> Self {
        RecvBuffers {
            bufs: vec![vec![0u8; size]; n],
        }
    }
}

/// Waits for datagrams and hands each (its bytes and sender) to `each`; returns how many.
pub async fn recv_batch(
    socket: &UdpSocket,
    buffers: &mut RecvBuffers,
    mut each: impl FnMut(&[u8], SocketAddr),
) -> io::Result<usize> {
    loop {
        socket.readable().await?;
        match try_recv_batch(socket, buffers, &mut each) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Takes what has arrived, without waiting (`WouldBlock` if nothing has, and tokio then waits
/// for the socket again), handing each datagram to `each`; returns how many.
pub fn try_recv_batch(
    socket: &UdpSocket,
    buffers: &mut RecvBuffers,
    mut each: impl FnMut(&[u8], SocketAddr),
) -> io::Result<usize> {
    let mut got: Vec<(usize, Option<SocketAddr>)> = Vec::new();
    socket.try_io(Interest::READABLE, || {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(b)])
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slices.len(), None);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        got = results
            .map(|m| (m.bytes, m.address.and_then(|a| socket_addr(&a))))
            .collect();
        Ok(())
    })?;
    for (i, (len, from)) in got.iter().enumerate() {
        if let Some(from) = from {
            each(&buffers.bufs[i][..*len], *from);
        }
    }
    Ok(got.len())
}

impl RecvBuffers {
    /// How many datagrams one call takes at most.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_receive_buffer_is_granted_as_linux_counts_it() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // 64 KiB is under any host's `rmem_max`; Linux doubles it for its bookkeeping.
        assert_eq!(set_recv_buffer(&socket, 64 << 10).unwrap(), 128 << 10);
    }

    #[tokio::test]
    async fn many_datagrams_to_many_destinations_in_one_call_and_back() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut receivers = Vec::new();
        for _ in 0..3 {
            receivers.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        let payloads: Vec<Vec<u8>> = (0..150u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let datagrams: Vec<(SocketAddr, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (receivers[i % 3].local_addr().unwrap(), &p[..]))
            .collect();
        assert_eq!(
            send_all(&sender, &datagrams, false).datagrams,
            150,
            "in three calls of at most 64"
        );
        let from = sender.local_addr().unwrap();
        for (r, socket) in receivers.iter().enumerate() {
            let mut buffers = RecvBuffers::new(BATCH, 2048);
            let mut seen = Vec::new();
            while seen.len() < 50 {
                recv_batch(socket, &mut buffers, |d, f| {
                    assert_eq!(f, from);
                    seen.push(d.to_vec());
                })
                .await
                .unwrap();
            }
            let want: Vec<Vec<u8>> = payloads.iter().skip(r).step_by(3).cloned().collect();
            assert_eq!(seen, want, "every datagram, in order, byte for byte");
        }
    }

    #[tokio::test]
    async fn runs_sent_with_gso_arrive_as_the_datagrams_they_were() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut receivers = Vec::new();
        for _ in 0..3 {
            receivers.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        // Per receiver: video frames of three full packets and a shorter last one, and audio
        // packets between them; each datagram marked with its receiver and number.
        let mut payloads: Vec<(usize, Vec<u8>)> = Vec::new();
        for n in 0..40u8 {
            for r in 0..3 {
                let len = match n % 5 {
                    0..=2 => 1200,
                    3 => 500 + usize::from(n),
                    _ => 90,
                };
                let mut p = vec![n; len];
                p[0] = r as u8;
                payloads.push((r, p));
            }
        }
        let datagrams: Vec<(SocketAddr, &[u8])> = payloads
            .iter()
            .map(|(r, p)| (receivers[*r].local_addr().unwrap(), &p[..]))
            .collect();
        let sent = send_all(&sender, &datagrams, true);
        assert_eq!(sent.datagrams, payloads.len());
        assert_eq!(
            sent.calls, 1,
            "runs of one size and shorter singles share a call"
        );
        assert!(
            !GSO_REFUSED.load(Ordering::Relaxed),
            "this kernel takes UDP GSO on loopback"
        );
        for (r, socket) in receivers.iter().enumerate() {
            let mut buffers = RecvBuffers::new(BATCH, 2048);
            let mut seen = Vec::new();
            while seen.len() < 40 {
                recv_batch(socket, &mut buffers, |d, _| seen.push(d.to_vec()))
                    .await
                    .unwrap();
            }
            let want: Vec<Vec<u8>> = payloads
                .iter()
                .filter(|(to, _)| *to == r)
                .map(|(_, p)| p.clone())
                .collect();
            assert_eq!(seen, want, "every datagram whole, in order, byte for byte");
        }
    }
}
