//! The HTTP client for the server's own endpoints (ureq, with rustls on ring): `sfu admin ...`
//! against a running server, over `http://` or `https://` (the one port serves TLS when it has a
//! certificate), and the tests that drive the binary. A server with a certificate of a private
//! CA is reached with that CA ([`Trust::Ca`]); a self-signed test server with
//! [`Trust::Insecure`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// How long one request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Which servers' certificates are believed.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// Certificates from the public CAs (Mozilla's list, built in).
    #[default]
    PublicCas,
    /// Certificates from the CAs in this PEM file only.
    Ca(PathBuf),
    /// Any certificate: for self-signed test servers; the connection is encrypted but the
    /// server is not authenticated.
    Insecure,
}

/// A request that did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot read the CA file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("{url}: {source}")]
    Request {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
}

/// What `sfu admin` can be told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("refused: wrong or missing admin token")]
    Unauthorized,
    #[error("no admin API here (is admin_token configured?)")]
    NoAdminApi,
    #[error("{status}: {body}")]
    Status { status: u16, body: String },
}

/// A client; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl HttpClient {
    /// A client that believes `trust`.
    pub fn new(trust: &Trust) -> Result<HttpClient, HttpError> {
        let tls = match trust {
            Trust::PublicCas => TlsConfig::builder().build(),
            Trust::Ca(path) => TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(read_cas(path)?)))
                .build(),
            Trust::Insecure => TlsConfig::builder().disable_verification(true).build(),
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .new_agent();
        Ok(HttpClient { agent })
    }

    /// Sends `method url` with `headers` and no body; the status and the body of the answer,
    /// whatever the status.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), HttpError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(HttpError::BadUrl(url.to_owned()));
        }
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(())
            .map_err(|e| HttpError::BadUrl(format!("{url} ({e})")))?;
        let agent = self.agent.clone();
        let failed = |source: ureq::Error| HttpError::Request {
            url: url.to_owned(),
            source: Box::new(source),
        };
        // ureq blocks; the runtime's blocking pool carries it.
        tokio::task::spawn_blocking(move || {
            let mut response = agent.run(request)?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string()?;
            Ok((status, body))
        })
        .await
        .map_err(|e| failed(ureq::Error::Io(std::io::Error::other(e))))?
        .map_err(failed)
    }
}

/// The certificates of a PEM file.
fn read_cas(path: &Path) -> Result<Vec<Certificate<'static>>, HttpError> {
    let fail = |reason: String| HttpError::Ca {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| fail(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(fail("no certificate in it".into()));
    }
    Ok(certs)
}

/// `METHOD path` to `addr` (`host:port`) over plain HTTP; the status and the body. For tests.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), HttpError> {
    HttpClient::new(&Trust::PublicCas)?
        .request(method, &format!("http://{addr}{path}"), headers)
        .await
}

/// Calls the admin API of the server at `url` (`http(s)://HOST:PORT`) with the bearer token;
/// the body of a 2xx answer.
pub async fn admin(
    client: &HttpClient,
    url: &str,
    token: &str,
    method: &str,
    path: &str,
) -> Result<String, AdminError> {
    let bearer = format!("Bearer {token}");
    let url = format!("{}{path}", url.trim_end_matches('/'));
    let (status, body) = client
        .request(method, &url, &[("Authorization", &bearer)])
        .await?;
    match status {
        200..=299 => Ok(body),
        401 => Err(AdminError::Unauthorized),
        404 if body.is_empty() => Err(AdminError::NoAdminApi),
        _ => Err(AdminError::Status { status, body }),
    }
}
