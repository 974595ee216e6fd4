//! The UDP floor the sfu is measured against (issue 13): a relay that receives datagrams (1200
//! bytes unless `--size` says otherwise) (`recvmmsg`) and sends each to every other participant (`sendmmsg`), sealing each
//! copy with AES-128-GCM under that destination's key, as SRTP would. No WebRTC, no parsing,
//! no state: what forwarding costs on this machine before any SFU logic.
//!
//! The relay runs as its own process; this one plays N participants on loopback (each sends
//! `--rate` packets a second and receives everyone else's) and samples the relay's CPU time
//! (`/proc/PID/stat`) per forwarded packet, as the loadtest does for the sfu.
//!
//! To hold it against a large room at the rates the sfu saw there: `--publishers P` (only the
//! first P send; the rest only say hello, a datagram too short to forward) and `--fanout F`
//! (each datagram goes to F of the others, in turn, not all: the layers and videos an SFU
//! leaves out of a receiver's share).
//!
//! ```sh
//! cargo run --release -p sfu --example floor_relay -- --participants 20 --rate 125 --seconds 10 [--size 1200] [--publishers P] [--fanout F]
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

const BATCH: usize = 64;

/// Shorter datagrams only make their sender known to the relay (a listener's hello).
const HELLO: usize = 12;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn addr_of(a: &SockaddrStorage) -> Option<SocketAddr> {
    a.as_sockaddr_in().map(|v4| SocketAddr::from(*v4))
}

/// The relay: every datagram from a participant goes to all the others, each copy sealed.
fn relay(socket: UdpSocket, participants: usize, fanout: usize) -> ! {
    let keys: Vec<LessSafeKey> = (0..participants)
        .map(|i| LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[i as u8; 16]).unwrap()))
        .collect();
    let mut members: Vec<SocketAddr> = Vec::new();
    let mut bufs = vec![vec![0u8; 2048]; BATCH];
    let mut counter = 0u64;
    let mut turn = 0usize;
    loop {
        let mut received: Vec<(usize, SocketAddr)> = Vec::new();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let got = recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            );
            if let Ok(results) = got {
                for m in results {
                    if let Some(from) = m.address.as_ref().and_then(addr_of) {
                        received.push((m.bytes, from));
                    }
                }
            }
        }
        let mut out: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for (i, &(len, from)) in received.iter().enumerate() {
            if !members.contains(&from) && members.len() < participants {
                members.push(from);
            }
            if len < HELLO {
                continue;
            }
            // F of the others, starting from a place that moves on with each datagram.
            let others = members.len().saturating_sub(1);
            let (take, start) = (fanout.min(others), turn);
            turn = turn.wrapping_add(1);
            let chosen = (0..members.len())
                .map(|k| (start + k) % members.len())
                .filter(|&m| members[m] != from)
                .take(take);
            for m in chosen {
                let to = members[m];
                let mut copy = bufs[i][..len].to_vec();
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let (header, body) = copy.split_at_mut(12.min(len));
                let tag = keys[m % keys.len()]
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&*header),
                        body,
                    )
                    .unwrap();
                copy.extend_from_slice(tag.as_ref());
                out.push((to, copy));
            }
        }
        for chunk in out.chunks(BATCH) {
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(a, _)| Some(SockaddrStorage::from(*a)))
                .collect();
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
            let none: [ControlMessage<'_>; 0] = [];
            let _ = sendmmsg(
                socket.as_raw_fd(),
                &mut headers,
                &slices,
                &addrs,
                none,
                MsgFlags::empty(),
            );
        }
    }
}

/// CPU time (user + system) of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn main() {
    let participants = arg("--participants", 20) as usize;
    if std::env::args().any(|a| a == "--serve") {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        println!("{}", socket.local_addr().unwrap());
        relay(
            socket,
            participants,
            arg("--fanout", participants as u64) as usize,
        );
    }
    let rate = arg("--rate", 125);
    // 1200 bytes: a video packet; an Opus packet with SRTP is about 100.
    let size = arg("--size", 1200) as usize;
    let seconds = arg("--seconds", 10);
    let publishers = arg("--publishers", participants as u64) as usize;
    let fanout = arg("--fanout", participants as u64) as usize;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--serve", "--participants", &participants.to_string()])
        .args(["--fanout", &fanout.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("relay");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let relay_addr: SocketAddr = line.trim().parse().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for p in 0..participants {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (r, s) = (received.clone(), stop.clone());
        let reader = socket.try_clone().unwrap();
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if reader.recv(&mut buf).is_ok() {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        let s = stop.clone();
        threads.push(std::thread::spawn(move || {
            let payload = vec![p as u8; size];
            let start = Instant::now();
            let mut sent = 0u64;
            if p >= publishers {
                // A listener: known to the relay, nothing to forward.
                while !s.load(Ordering::Relaxed) {
                    let _ = socket.send_to(&[0], relay_addr);
                    std::thread::sleep(Duration::from_millis(500));
                }
                return;
            }
            while !s.load(Ordering::Relaxed) {
                let due = start.elapsed().as_secs_f64() * rate as f64;
                while (sent as f64) < due {
                    let _ = socket.send_to(&payload, relay_addr);
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    // Everyone has been heard once before the sample starts.
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let (t0, r0, c0) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        cpu_ticks(pid),
    );
    std::thread::sleep(Duration::from_secs(seconds));
    let (t1, r1, c1) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        cpu_ticks(pid),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = child.kill();
    let _ = child.wait();
    for t in threads {
        let _ = t.join();
    }
    let forwarded = (r1 - r0) as f64;
    let secs = (t1 - t0).as_secs_f64();
    let cpu_s = (c1 - c0) as f64 / 100.0;
    println!(
        "floor relay, {participants} participants ({publishers} sending {rate} packets/s of {size} bytes each, each to {fanout} others): {:.0} forwarded packets/s, relay CPU {:.1}%, {:.2} us per forwarded packet",
        forwarded / secs,
        100.0 * cpu_s / secs,
        cpu_s * 1e6 / forwarded
    );
}
