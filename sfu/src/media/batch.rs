//! Batched UDP: many datagrams per system call (Linux `sendmmsg` and `recvmmsg`, through nix's
//! safe wrappers) on a tokio socket. A datagram the socket cannot take now (its buffer is full)
//! is dropped, as UDP would drop it on the wire.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Sends each `(destination, datagram)`; returns how many the socket took.
pub fn send_all(socket: &UdpSocket, datagrams: &[(SocketAddr, &[u8])]) -> usize {
    let mut sent = 0;
    for chunk in datagrams.chunks(BATCH) {
        let mut offset = 0;
        while offset < chunk.len() {
            let rest = &chunk[offset..];
            // Straight to the (non-blocking) socket: tokio's write readiness is never awaited
            // here, so there is nothing of it to keep in step.
            match send_chunk(socket, rest) {
                Ok(0) => break,
                Ok(n) => offset += n,
                // Full: the rest of this chunk is dropped; a later chunk may fit.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // One destination unreachable (ICMP) or similar: skip that datagram.
                Err(e) => {
                    tracing::debug!(error = %e, "datagram not sent");
                    offset += 1;
                }
            }
        }
        sent += offset.min(chunk.len());
    }
    sent
}

fn send_chunk(socket: &UdpSocket, chunk: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = chunk
        .iter()
        .map(|(a, _)| Some(SockaddrStorage::from(*a)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    let results = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addrs,
        no_cmsgs,
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    Ok(results.count())
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
            send_all(&sender, &datagrams),
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
}
