//! The WebSocket upgrade (RFC 6455 §4.2), done here rather than by axum's extractor so that a
//! connection that has not joined yet can hold almost nothing: until `join` is accepted the
//! socket may deliver at most [`PRE_JOIN_BYTES`]; after, messages up to the configured limit.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// What a connection may send before its `join` is accepted: a join message (a token and a
/// room name) with room to spare, never a megabyte.
pub(super) const PRE_JOIN_BYTES: usize = 16 * 1024;

/// The upgraded connection.
pub(super) type Socket = WebSocketStream<Limited<TokioIo<hyper::upgrade::Upgraded>>>;

/// A byte stream that refuses to read past a budget until the budget is lifted.
#[derive(Debug)]
pub(super) struct Limited<T> {
    inner: T,
    budget: Arc<AtomicUsize>,
}

/// Lifts a connection's read budget once it has joined.
#[derive(Debug, Clone)]
pub(super) struct Budget(Arc<AtomicUsize>);

impl Budget {
    pub(super) fn lift(&self) {
        self.0.store(usize::MAX, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.budget.load(Ordering::Relaxed);
        if left > PRE_JOIN_BYTES {
            // Lifted: the WebSocket's own message limit applies.
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        if left == 0 {
            return Poll::Ready(Err(io::Error::other("too much data before joining")));
        }
        // Before the join: never read past the budget (at most a few kilobytes, copied once).
        let mut small = vec![0u8; left.min(buf.remaining())];
        let mut view = ReadBuf::new(&mut small);
        let result = Pin::new(&mut self.inner).poll_read(cx, &mut view);
        let n = view.filled().len();
        buf.put_slice(view.filled());
        self.budget.fetch_sub(n, Ordering::Relaxed);
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// A refusal of the upgrade itself (not a WebSocket request).
fn bad_request(why: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(why))
        .unwrap_or_default()
}

/// Answers a WebSocket upgrade request and, once the connection is upgraded, hands the socket
/// and its read budget to `run`. Messages are limited to `max_message_bytes`.
pub(super) fn upgrade<F, Fut>(
    mut request: axum::extract::Request,
    max_message_bytes: usize,
    run: F,
) -> Response
where
    F: FnOnce(Socket, Budget) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = request.headers();
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return bad_request("expected a WebSocket upgrade\n");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return bad_request("WebSocket version 13 only\n");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad_request("no Sec-WebSocket-Key\n");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(max_message_bytes);
    config.max_frame_size = Some(max_message_bytes);
    // The read buffer grows with the messages it holds; it starts small.
    config.read_buffer_size = 4096;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let budget = Arc::new(AtomicUsize::new(PRE_JOIN_BYTES));
        let io = Limited {
            inner: TokioIo::new(upgraded),
            budget: budget.clone(),
        };
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        run(socket, Budget(budget)).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_default()
}
