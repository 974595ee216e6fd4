//! The configured UDP port range: each participant's PeerConnection binds one port of it, held
//! until the connection is dropped, so the firewall rule "these N ports" is all media needs.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

/// Every port of the range is taken (by this server or by another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no free UDP port in {0}-{1}: raise the range or lower the participants")]
pub struct PortsExhausted(pub u16, pub u16);

#[derive(Debug)]
struct State {
    leased: BTreeSet<u16>,
    /// Where the next search starts, so a just-released port is not reused at once.
    next: u16,
}

/// Hands out ports of an inclusive range. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PortPool {
    ip: IpAddr,
    range: (u16, u16),
    state: Arc<Mutex<State>>,
}

/// A port held for one connection; released when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.leased.remove(&self.port);
    }
}

impl PortPool {
    /// Ports `range.0..=range.1` on `ip`. A range starting at 0 means "any port the OS picks"
    /// (ephemeral, unlimited).
    pub fn new(ip: IpAddr, range: (u16, u16)) -> Self {
        PortPool {
            ip,
            range,
            state: Arc::new(Mutex::new(State {
                leased: BTreeSet::new(),
                next: range.0,
            })),
        }
    }

    /// Ports held now.
    pub fn in_use(&self) -> usize {
        self.lock().leased.len()
    }

    /// A free port: not held by this pool and bindable now on the pool's address.
    pub fn lease(&self) -> Result<PortLease, PortsExhausted> {
        let (low, high) = self.range;
        if low == 0 {
            return Ok(PortLease {
                port: 0,
                state: self.state.clone(),
            });
        }
        let mut state = self.lock();
        let size = u32::from(high - low) + 1;
        for offset in 0..size {
            let port = (u32::from(state.next - low) + offset) % size + u32::from(low);
            let port = port as u16;
            if state.leased.contains(&port) || !self.bindable(port) {
                continue;
            }
            state.leased.insert(port);
            state.next = if port == high { low } else { port + 1 };
            return Ok(PortLease {
                port,
                state: self.state.clone(),
            });
        }
        Err(PortsExhausted(low, high))
    }

    fn bindable(&self, port: u16) -> bool {
        UdpSocket::bind(SocketAddr::new(self.ip, port)).is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    /// A range of `n` ports that are free now (found by binding them).
    fn free_range(start: u16, n: u16) -> (u16, u16) {
        'search: for base in (start..60000).step_by(97) {
            for p in base..base + n {
                if UdpSocket::bind((localhost(), p)).is_err() {
                    continue 'search;
                }
            }
            return (base, base + n - 1);
        }
        panic!("no free range");
    }

    #[test]
    fn leases_stay_in_range_and_are_distinct_until_released() {
        let range = free_range(41000, 3);
        let pool = PortPool::new(localhost(), range);
        let a = pool.lease().expect("a");
        let b = pool.lease().expect("b");
        let c = pool.lease().expect("c");
        let mut ports = [a.port(), b.port(), c.port()];
        ports.sort();
        assert_eq!(ports, [range.0, range.0 + 1, range.1]);
        assert_eq!(pool.lease().unwrap_err(), PortsExhausted(range.0, range.1));
        let freed = b.port();
        drop(b);
        assert_eq!(pool.in_use(), 2);
        assert_eq!(pool.lease().expect("again").port(), freed);
    }

    #[test]
    fn a_port_another_process_holds_is_skipped() {
        let range = free_range(51000, 2);
        let _squatter = UdpSocket::bind((localhost(), range.0)).expect("bind");
        let pool = PortPool::new(localhost(), range);
        let lease = pool.lease().expect("lease");
        assert_eq!(lease.port(), range.1);
        assert!(pool.lease().is_err());
    }

    #[test]
    fn a_range_from_zero_means_ephemeral_ports() {
        let pool = PortPool::new(localhost(), (0, 0));
        let leases: Vec<_> = (0..5).map(|_| pool.lease().expect("lease")).collect();
        assert!(leases.iter().all(|l| l.port() == 0));
    }
}
