//! Who is connecting, for per-address limits: the TCP peer's address, or, when that peer is a
//! configured reverse proxy, the client address the proxies appended to `X-Forwarded-For`
//! (read from the right, skipping trusted proxies). Nobody else's forwarded headers count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The client's address: `peer`, or what trusted proxies say in `forwarded_for`.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut hops = header.split(',').map(str::trim).rev();
    loop {
        match hops.next().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) if trusted.contains(&ip) => continue,
            Some(Ok(ip)) => return Some(ip),
            // A malformed entry: trust nothing beyond the last proxy.
            Some(Err(_)) | None => return Some(peer),
        }
    }
}

/// Open connections per client address, with a ceiling.
#[derive(Debug, Clone, Default)]
pub struct PerIp {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    /// A slot for `ip`, unless it already holds `max`.
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            open: self.open.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxy = [ip("10.0.0.1")];
        // A direct client cannot claim another address.
        assert_eq!(
            client_ip(Some(ip("198.51.100.7")), Some("203.0.113.1"), &proxy),
            Some(ip("198.51.100.7"))
        );
        // Through the proxy: the rightmost address that is not a trusted proxy.
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.1")),
                Some("1.2.3.4, 203.0.113.9, 10.0.0.1"),
                &proxy
            ),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("junk"), &proxy),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_ip(None, Some("1.2.3.4"), &proxy), None);
    }

    #[test]
    fn an_address_holds_at_most_max_slots_until_one_is_freed() {
        let limits = PerIp::default();
        let a = limits.take(ip("192.0.2.1"), 2).expect("1");
        let _b = limits.take(ip("192.0.2.1"), 2).expect("2");
        assert!(limits.take(ip("192.0.2.1"), 2).is_none());
        assert!(
            limits.take(ip("192.0.2.2"), 2).is_some(),
            "other addresses are apart"
        );
        drop(a);
        assert!(limits.take(ip("192.0.2.1"), 2).is_some());
    }
}
