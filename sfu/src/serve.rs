//! The one TCP listener, plain or TLS: each client address may hold a bounded number of TCP
//! connections (reverse proxies named in `trusted_proxies` are exempt; their clients are
//! counted per forwarded address at the WebSocket), and a request whose headers do not arrive
//! in time is dropped, so slow or half-open connections cannot pile up.

use std::future::{Future, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use signaling_server::server::{PerIp, Slot};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may hold how many TCP connections.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Open TCP connections per client address.
    pub per_address: usize,
    /// Addresses not counted (reverse proxies).
    pub exempt: Vec<IpAddr>,
}

/// Counts each accepted connection against its address, refusing those beyond the limit.
#[derive(Debug, Clone)]
struct CapAcceptor {
    limits: TcpLimits,
    open: PerIp,
}

/// A connection with its place in the count (freed when the connection ends).
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    _slot: Option<Slot>,
}

impl<S> Accept<TcpStream, S> for CapAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let ip = stream.peer_addr().map(|a| a.ip());
        let slot = match ip {
            Ok(ip) if self.limits.exempt.contains(&ip) => None,
            Ok(ip) => match self.open.take(ip, self.limits.per_address) {
                Some(slot) => Some(slot),
                None => {
                    tracing::info!(%ip, "too many TCP connections from one address");
                    return std::future::ready(Err(io::Error::other(
                        "too many connections from this address",
                    )));
                }
            },
            Err(e) => return std::future::ready(Err(e)),
        };
        std::future::ready(Ok((
            Counted {
                inner: stream,
                _slot: slot,
            },
            service,
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
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

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `app` on `listener` (TLS with `tls`) until `stop` completes, then lets requests in
/// flight finish for up to five seconds.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    limits: TcpLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let cap = CapAcceptor {
        limits,
        open: PerIp::default(),
    };
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut server = axum_server::from_tcp(listener)?.handle(handle);
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(tls)
                .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
                .acceptor(cap);
            server.acceptor(acceptor).serve(service).await
        }
        None => server.acceptor(cap).serve(service).await,
    }
}
