//! The administration API, under `/admin`, for operators and the `sfu admin` commands. It is
//! served only when an admin token is configured, and every request must carry it as
//! `Authorization: Bearer <token>`.
//!
//! - `GET /admin/rooms`: every room with its MLS epoch and participants.
//! - `DELETE /admin/rooms/{room}/participants/{id}`: removes one participant for good: the
//!   token it joined with is revoked for the rest of its life, it is told `goodbye`
//!   (`removed`: its page says so and does not reconnect), disconnected, and its MLS removal
//!   follows in the next commit.
//! - `PUT /admin/rooms/{room}/bans/{identity}?until=UNIX_SECONDS`: refuses every token for
//!   that identity in that room until then (`banned`), and removes whoever holds one now.
//! - `DELETE /admin/rooms/{room}`: closes a room (everyone removed, told `room_closed`).
//! - `POST /admin/drain`: drains the server (in a cluster its rooms move to other nodes; its
//!   participants are told `goodbye`, `shutting_down`, and reconnect elsewhere); it takes no
//!   one new until it restarts.

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use signaling_server::SignalingServer;
use subtle::ConstantTimeEq;

#[derive(Clone)]
struct Admin {
    signaling: SignalingServer,
    token: std::sync::Arc<str>,
}

/// The `/admin` routes, guarded by `token`.
pub fn router(signaling: &SignalingServer, token: &str) -> Router {
    let state = Admin {
        signaling: signaling.clone(),
        token: token.into(),
    };
    Router::new()
        .route("/admin/rooms", get(rooms))
        .route("/admin/rooms/{room}", delete(close_room))
        .route("/admin/rooms/{room}/participants/{id}", delete(remove))
        .route("/admin/rooms/{room}/bans/{identity}", put(ban))
        .route("/admin/drain", post(drain))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(admin.token.as_bytes())) {
        next.run(request).await
    } else {
        error(StatusCode::UNAUTHORIZED, "a valid admin token is required")
    }
}

async fn rooms(State(admin): State<Admin>) -> Response {
    Json(admin.signaling.rooms().await).into_response()
}

async fn drain(State(admin): State<Admin>) -> Response {
    admin.signaling.drain().await;
    StatusCode::NO_CONTENT.into_response()
}

async fn close_room(State(admin): State<Admin>, Path(room): Path<String>) -> Response {
    match admin.signaling.close_room(&room).await {
        0 => error(StatusCode::NOT_FOUND, "no such room"),
        n => Json(serde_json::json!({ "removed": n })).into_response(),
    }
}

async fn remove(State(admin): State<Admin>, Path((room, id)): Path<(String, u64)>) -> Response {
    if admin.signaling.remove_participant(&room, id).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such participant in that room")
    }
}

/// How long a ban lasts.
#[derive(Debug, serde::Deserialize)]
struct Until {
    /// Seconds since the Unix epoch.
    until: u64,
}

async fn ban(
    State(admin): State<Admin>,
    Path((room, identity)): Path<(String, String)>,
    until: Result<Query<Until>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(Until { until })) = until else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected ?until=<seconds since the Unix epoch>",
        );
    };
    if until <= signaling_token::unix_now() {
        return error(
            StatusCode::BAD_REQUEST,
            "the ban would end before it starts",
        );
    }
    let removed = admin.signaling.ban(&room, &identity, until).await;
    Json(serde_json::json!({ "removed": removed, "until": until })).into_response()
}
