//! HTTPS and WSS served by the sfu itself (rustls on ring): the certificate chain and key come
//! from PEM files named in the configuration, and are read again on SIGHUP and whenever the
//! files change (checked every 30 s), so a renewed certificate needs no restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;

const CHECK_EVERY: Duration = Duration::from_secs(30);

/// A certificate and key that cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("TLS certificate {} / key {}: {source}", cert.display(), key.display())]
pub struct TlsError {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The TLS configuration from `cert` and `key`.
pub async fn load(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    // One process-wide provider; a second install is refused, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|source| TlsError {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })
}

fn modified(paths: &[&Path]) -> Option<SystemTime> {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
}

/// Reloads `config` from the files on SIGHUP and when they change. A bad pair is logged and
/// the running certificate kept.
pub fn keep_fresh(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("no SIGHUP handler: certificates reload on file changes only");
            return;
        };
        let mut last = modified(&[&cert, &key]);
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            let asked = tokio::select! {
                _ = hangup.recv() => true,
                _ = tick.tick() => false,
            };
            let now = modified(&[&cert, &key]);
            if !asked && now == last {
                continue;
            }
            let why = if asked { "SIGHUP" } else { "the files changed" };
            last = now;
            match config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => tracing::info!(reason = why, "TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(reason = why, error = %e, "TLS certificate not reloaded; keeping the old one")
                }
            }
        }
    });
}
