//! The one HTTP port: the signaling WebSocket, `/healthz`, `/metrics`, the dev-token route in
//! dev mode, and the browser demo's files.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use signaling_server::SignalingServer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use std::sync::Arc;

use crate::config::SfuConfig;
use crate::media::MediaServer;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    signaling: SignalingServer,
    media: Arc<MediaServer>,
    metrics: Metrics,
}

/// The whole HTTP surface.
pub fn router(config: &SfuConfig, signaling: &SignalingServer, media: Arc<MediaServer>) -> Router {
    let state = AppState {
        signaling: signaling.clone(),
        media,
        metrics: Metrics::default(),
    };
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(signaling.router());
    if let Some(token) = &config.admin_token {
        app = app.merge(crate::admin::router(signaling, token));
    }
    if let Some(dir) = &config.demo_dir() {
        app = app.fallback_service(ServeDir::new(dir));
    }
    SECURITY_HEADERS.iter().fold(app, |app, &(name, value)| {
        app.layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ))
    })
}

/// The page may run only its own scripts (and compile its own wasm), talk only to this
/// server, never be framed, and reach the camera, microphone and screen only for itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
     style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Set on every response.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// 200 while the server takes participants, 503 once it is shutting down.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.signaling.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.signaling, &state.media),
    )
}
