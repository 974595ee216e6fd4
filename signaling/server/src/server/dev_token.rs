//! `GET /dev/token?room=R&identity=I`: tokens for anyone, for the local demo. Only routed when
//! `insecure_dev_tokens` is on, and the server warns about it at start.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::SignalingServer;
use signaling_token::{self as token, Claims};

const TTL_SECONDS: u64 = 3600;

#[derive(Debug, Deserialize)]
pub(super) struct TokenRequest {
    room: String,
    identity: String,
}

#[derive(Debug, Serialize)]
pub(super) struct TokenResponse {
    token: String,
    room: String,
    identity: String,
    expires_in: u64,
    insecure_dev_mode: bool,
}

pub(super) async fn issue(
    State(server): State<SignalingServer>,
    Query(req): Query<TokenRequest>,
) -> Result<Json<TokenResponse>, (StatusCode, String)> {
    if let Err(e) = token::check_room(&req.room) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("this room name is refused: {e}"),
        ));
    }
    if let Err(e) = token::check_identity(&req.identity) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("this name is refused: {e}"),
        ));
    }
    let claims = Claims::new(
        req.room.clone(),
        req.identity.clone(),
        std::time::Duration::from_secs(TTL_SECONDS),
    );
    let token = token::mint(&claims, &server.inner.config.token_secret)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(TokenResponse {
        token,
        room: req.room,
        identity: req.identity,
        expires_in: TTL_SECONDS,
        insecure_dev_mode: true,
    }))
}
