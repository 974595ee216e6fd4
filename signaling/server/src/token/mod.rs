//! Access tokens: JWT, HS256, signed with the server's secret.
//!
//! Claims: `room`, `sub` (the identity), `exp` (seconds since the Unix epoch) and `publish`
//! (may send media; default true).

mod hs256;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use signaling_protocol::ErrorCode;
use thiserror::Error;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room it admits to.
    pub room: String,
    /// The participant's identity.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// May publish audio and video.
    #[serde(default = "yes")]
    pub publish: bool,
}

fn yes() -> bool {
    true
}

/// A token that is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("malformed access token or bad signature: {0}")]
    Invalid(String),
    #[error("access token expired")]
    Expired,
    #[error("access token is for room {token_room:?}, not {requested:?}")]
    WrongRoom {
        token_room: String,
        requested: String,
    },
    #[error("access token has an empty identity")]
    EmptyIdentity,
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

/// Signs `claims` with `secret`.
pub fn mint(claims: &Claims, secret: &[u8]) -> Result<String, TokenError> {
    hs256::install();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Verifies a token for `room`: signature, expiry (no leeway) and room.
pub fn verify(token: &str, secret: &[u8], room: &str) -> Result<Claims, TokenError> {
    hs256::install();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
    let claims = data.claims;
    if claims.room != room {
        return Err(TokenError::WrongRoom {
            token_room: claims.room,
            requested: room.to_owned(),
        });
    }
    if claims.sub.trim().is_empty() {
        return Err(TokenError::EmptyIdentity);
    }
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

    fn claims(room: &str, exp: u64) -> Claims {
        Claims {
            room: room.into(),
            sub: "alice".into(),
            exp,
            publish: true,
        }
    }

    #[test]
    fn a_fresh_token_for_the_room_is_accepted() {
        let t = mint(&claims("r1", unix_now() + 60), b"secret").expect("mint");
        assert_eq!(
            verify(&t, b"secret", "r1").map(|c| c.sub),
            Ok("alice".into())
        );
    }

    #[test]
    fn expired_wrong_room_and_bad_signature_are_refused_distinctly() {
        let expired = mint(&claims("r1", unix_now() - 1), b"secret").expect("mint");
        assert_eq!(verify(&expired, b"secret", "r1"), Err(TokenError::Expired));
        let other = mint(&claims("r2", unix_now() + 60), b"secret").expect("mint");
        assert!(matches!(
            verify(&other, b"secret", "r1"),
            Err(TokenError::WrongRoom { .. })
        ));
        let forged = mint(&claims("r1", unix_now() + 60), b"not the secret").expect("mint");
        assert!(matches!(
            verify(&forged, b"secret", "r1"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verify("garbage", b"secret", "r1"),
            Err(TokenError::Invalid(_))
        ));
        // Another algorithm, even with the right secret, is refused.
        let none_alg = format!(
            "{}.{}.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
            t_payload(&claims("r1", unix_now() + 60))
        );
        assert!(matches!(
            verify(&none_alg, b"secret", "r1"),
            Err(TokenError::Invalid(_))
        ));
    }

    fn t_payload(c: &Claims) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(c).expect("json"))
    }
}
