//! Time-limited TURN credentials in the shared-secret scheme coturn supports
//! (`use-auth-secret` / `static-auth-secret`, the "TURN REST API" draft): the username is
//! `<expiry as Unix seconds>:<participant id>` and the password is
//! `base64(HMAC-SHA1(secret, username))`. The TURN server checks both with the same secret;
//! nothing is stored.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use signaling_protocol::{IceServer, ParticipantId};

/// A `turn:` or `turns:` URL: the servers these credentials are for.
pub fn is_turn_url(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// The shared secret and how long credentials last.
#[derive(Clone)]
pub struct TurnCredentials {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TurnCredentials {
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        TurnCredentials {
            secret: secret.into(),
            ttl,
        }
    }

    /// The username and password for `participant`, valid until `now + ttl` or `until` (its
    /// access token's expiry), whichever comes first.
    pub fn issue(&self, participant: ParticipantId, unix_now: u64, until: u64) -> (String, String) {
        let expiry = (unix_now + self.ttl.as_secs()).min(until);
        let username = format!("{expiry}:{participant}");
        let mut mac =
            Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(username.as_bytes());
        let password =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        (username, password)
    }

    /// Fills in credentials for every `turn:`/`turns:` server that has none; they end no later
    /// than `until` (the participant's access token's expiry).
    pub fn apply(
        &self,
        servers: &mut [IceServer],
        participant: ParticipantId,
        unix_now: u64,
        until: u64,
    ) {
        for s in servers.iter_mut() {
            let turn = s.urls.iter().any(|u| is_turn_url(u));
            if turn && s.username.is_none() && s.credential.is_none() {
                let (username, credential) = self.issue(participant, unix_now, until);
                s.username = Some(username);
                s.credential = Some(credential);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_shared_secret_scheme() {
        let t = TurnCredentials::new(b"turn shared secret".to_vec(), Duration::from_secs(3600));
        // Computed independently: base64(HMAC-SHA1("turn shared secret", "1700003600:42")).
        assert_eq!(
            t.issue(42, 1_700_000_000, u64::MAX),
            (
                "1700003600:42".to_owned(),
                "RwOf/yu0rIEXIwsKVsaYe3Vwngw=".to_owned()
            )
        );
    }

    #[test]
    fn only_turn_servers_without_credentials_get_them() {
        let t = TurnCredentials::new(b"s".to_vec(), Duration::from_secs(60));
        let server = |url: &str, user: Option<&str>| IceServer {
            urls: vec![url.into()],
            username: user.map(Into::into),
            credential: user.map(Into::into),
        };
        let mut servers = vec![
            server("stun:stun.example.org", None),
            server("turns:turn.example.org:443?transport=tcp", None),
            server("turn:other.example.org", Some("fixed")),
        ];
        t.apply(&mut servers, 7, 100, u64::MAX);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("160:7"));
        assert!(servers[1].credential.is_some());
        assert_eq!(servers[2].username.as_deref(), Some("fixed"));
    }

    #[test]
    fn credentials_end_with_the_access_token() {
        let t = TurnCredentials::new(b"s".to_vec(), Duration::from_secs(12 * 3600));
        assert_eq!(t.issue(7, 1000, 1300).0, "1300:7");
        assert_eq!(
            t.issue(7, 1000, u64::MAX).0,
            format!("{}:7", 1000 + 12 * 3600)
        );
    }
}
