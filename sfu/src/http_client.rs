//! A minimal HTTP/1.1 client for the server's own plain-HTTP endpoints: `sfu admin ...` uses
//! it against the listen address (run it on the server, or through an SSH tunnel), and so do
//! the tests that drive the binary.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `method path` with `headers` to `addr` (`host:port`); the status and the body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status: u16 = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("not an HTTP answer")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Calls the admin API at `url` (`http://HOST:PORT`) with the bearer token; the body of a 2xx
/// answer.
pub async fn admin(url: &str, token: &str, method: &str, path: &str) -> anyhow::Result<String> {
    let addr = url
        .strip_prefix("http://")
        .context("the admin URL must be http://HOST:PORT (the server's listen address)")?
        .trim_end_matches('/');
    let bearer = format!("Bearer {token}");
    let (status, body) = request(addr, method, path, &[("Authorization", &bearer)]).await?;
    match status {
        200..=299 => Ok(body),
        401 => bail!("refused: wrong or missing admin token"),
        404 if body.is_empty() => bail!("no admin API here (is admin_token configured?)"),
        _ => bail!("{status}: {body}"),
    }
}
