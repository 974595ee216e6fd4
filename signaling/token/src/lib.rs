//! Access tokens: JWT, HS256, signed with the server's secret.
//!
//! Claims: `room`, `sub` (the identity), `exp` (seconds since the Unix epoch), optionally
//! `nbf`, `iat` and `jti` (the token's id: what a removal revokes), and `publish` (may send
//! media; default true). A token is refused before
//! `nbf`, after `exp`, when it lives longer than the server allows, and when its identity is
//! one people could misread (see [`check_identity`]).

mod hs256;

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use signaling_protocol::ErrorCode;
use thiserror::Error;

/// The longest a token may live unless a server allows more (or less).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub use signaling_protocol::names::{
    MAX_IDENTITY_BYTES, MAX_ROOM_BYTES, NameError, check_identity, check_room,
};

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room it admits to.
    pub room: String,
    /// The participant's identity.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The token's own id (random): an administrator's removal revokes it. A token without
    /// one (made by another tool) is revoked by its identity in its room until it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// May publish audio and video.
    #[serde(default = "yes")]
    pub publish: bool,
}

fn yes() -> bool {
    true
}

impl Claims {
    /// A token for `identity` in `room`, valid from now for `lifetime`, that may publish,
    /// with a fresh random id.
    pub fn new(room: impl Into<String>, identity: impl Into<String>, lifetime: Duration) -> Self {
        let now = unix_now();
        Claims {
            room: room.into(),
            sub: identity.into(),
            exp: now + lifetime.as_secs(),
            nbf: None,
            iat: Some(now),
            jti: Some(format!("{:032x}", rand::random::<u128>())),
            publish: true,
        }
    }
}

/// What the server accepts.
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy<'a> {
    pub secret: &'a [u8],
    /// The longest a token may live (from `iat`, or from now if it has none).
    pub max_lifetime: Duration,
}

/// A token that is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("malformed access token or bad signature: {0}")]
    Invalid(String),
    #[error("access token expired")]
    Expired,
    #[error("access token not valid yet")]
    NotYetValid,
    #[error("access token lives {lifetime:?}, longer than the {max:?} this server allows")]
    TooLong { lifetime: Duration, max: Duration },
    #[error("access token is for room {token_room:?}, not {requested:?}")]
    WrongRoom {
        token_room: String,
        requested: String,
    },
    #[error("access token's identity is refused: {0}")]
    BadIdentity(NameError),
    #[error("access token's room name is refused: {0}")]
    BadRoom(NameError),
}

impl TokenError {
    /// The protocol error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::WrongRoom { .. } => ErrorCode::WrongRoom,
            _ => ErrorCode::InvalidToken,
        }
    }
}

/// Signs `claims` with `secret`. An identity [`check_identity`] or a room name
/// [`check_room`] refuses is refused here too.
pub fn mint(claims: &Claims, secret: &[u8]) -> Result<String, TokenError> {
    check_identity(&claims.sub).map_err(TokenError::BadIdentity)?;
    check_room(&claims.room).map_err(TokenError::BadRoom)?;
    hs256::install();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Verifies a token for `room`: signature, `nbf` and `exp` (no leeway), lifetime, room (and
/// its name's rules), and identity.
pub fn verify(token: &str, policy: &TokenPolicy<'_>, room: &str) -> Result<Claims, TokenError> {
    hs256::install();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(policy.secret),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        _ => TokenError::Invalid(e.to_string()),
    })?;
    let claims = data.claims;
    let now = unix_now();
    let from = claims
        .iat
        .unwrap_or(now)
        .min(now)
        .max(claims.nbf.unwrap_or(0));
    let lifetime = Duration::from_secs(claims.exp.saturating_sub(from));
    if lifetime > policy.max_lifetime {
        return Err(TokenError::TooLong {
            lifetime,
            max: policy.max_lifetime,
        });
    }
    if claims.room != room {
        return Err(TokenError::WrongRoom {
            token_room: claims.room,
            requested: room.to_owned(),
        });
    }
    check_room(&claims.room).map_err(TokenError::BadRoom)?;
    check_identity(&claims.sub).map_err(TokenError::BadIdentity)?;
    Ok(claims)
}

/// Seconds since the Unix epoch, for `exp`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn policy(secret: &[u8]) -> TokenPolicy<'_> {
        TokenPolicy {
            secret,
            max_lifetime: DAY,
        }
    }

    fn claims(room: &str, exp: u64) -> Claims {
        Claims {
            exp,
            ..Claims::new(room, "alice", Duration::ZERO)
        }
    }

    #[test]
    fn a_fresh_token_for_the_room_is_accepted() {
        let t = mint(&claims("r1", unix_now() + 60), b"secret").expect("mint");
        assert_eq!(
            verify(&t, &policy(b"secret"), "r1").map(|c| c.sub),
            Ok("alice".into())
        );
    }

    #[test]
    fn expired_wrong_room_and_bad_signature_are_refused_distinctly() {
        let p = policy(b"secret");
        let expired = mint(&claims("r1", unix_now() - 1), b"secret").expect("mint");
        assert_eq!(verify(&expired, &p, "r1"), Err(TokenError::Expired));
        let other = mint(&claims("r2", unix_now() + 60), b"secret").expect("mint");
        assert!(matches!(
            verify(&other, &p, "r1"),
            Err(TokenError::WrongRoom { .. })
        ));
        let forged = mint(&claims("r1", unix_now() + 60), b"not the secret").expect("mint");
        assert!(matches!(
            verify(&forged, &p, "r1"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verify("garbage", &p, "r1"),
            Err(TokenError::Invalid(_))
        ));
        // Another algorithm, even with the right secret, is refused.
        let none_alg = format!(
            "{}.{}.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
            t_payload(&claims("r1", unix_now() + 60))
        );
        assert!(matches!(
            verify(&none_alg, &p, "r1"),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn each_token_gets_an_id_of_its_own_that_survives_signing() {
        let a = Claims::new("r", "alice", DAY);
        let b = Claims::new("r", "alice", DAY);
        assert_ne!(a.jti, b.jti);
        let t = mint(&a, b"secret").expect("mint");
        assert_eq!(
            verify(&t, &policy(b"secret"), "r").map(|c| c.jti),
            Ok(a.jti)
        );
    }

    #[test]
    fn not_before_and_the_longest_lifetime_are_honoured() {
        let p = policy(b"secret");
        let early = Claims {
            nbf: Some(unix_now() + 3600),
            ..Claims::new("r", "alice", Duration::from_secs(7200))
        };
        let t = mint(&early, b"secret").expect("mint");
        assert_eq!(verify(&t, &p, "r"), Err(TokenError::NotYetValid));
        let forever = mint(&Claims::new("r", "alice", 30 * DAY), b"secret").expect("mint");
        assert!(matches!(
            verify(&forever, &p, "r"),
            Err(TokenError::TooLong { .. })
        ));
        // Without iat, the lifetime counts from now.
        let no_iat = Claims {
            iat: None,
            ..Claims::new("r", "alice", 2 * DAY)
        };
        let t = mint(&no_iat, b"secret").expect("mint");
        assert!(matches!(
            verify(&t, &p, "r"),
            Err(TokenError::TooLong { .. })
        ));
        let day = mint(&Claims::new("r", "alice", DAY), b"secret").expect("mint");
        assert!(verify(&day, &p, "r").is_ok());
    }

    #[test]
    fn a_token_naming_a_misleading_identity_or_room_is_not_even_made() {
        assert!(matches!(
            mint(&Claims::new("r", "\u{2066}bob", DAY), b"s"),
            Err(TokenError::BadIdentity(NameError::Invisible))
        ));
        assert!(matches!(
            mint(&Claims::new("r".repeat(129), "bob", DAY), b"s"),
            Err(TokenError::BadRoom(NameError::TooLong { max: 128 }))
        ));
    }

    #[test]
    fn a_token_made_elsewhere_with_a_misleading_identity_is_refused() {
        // Signed correctly by some other tool that does not check identities.
        hs256::install();
        let claims = Claims::new("r", "bob\u{202E}ecila", Duration::from_secs(60));
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode");
        assert_eq!(
            verify(&t, &policy(b"secret"), "r"),
            Err(TokenError::BadIdentity(NameError::Invisible))
        );
    }

    fn t_payload(c: &Claims) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(c).expect("json"))
    }
}
