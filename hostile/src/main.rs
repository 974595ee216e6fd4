//! `hostile-proxy`: the hostile server as a process, for the browser tests. It prints
//! `hostile proxy listening on http://ADDR` once it listens.

use clap::Parser;
use hostile::{Proxy, ProxyConfig};

/// A man in the middle in front of an sfu, with the operator's token secret. For tests only.
#[derive(Debug, Parser)]
struct Args {
    /// The sfu's signaling WebSocket.
    #[arg(long)]
    upstream: String,
    /// The sfu's token secret.
    #[arg(long, env = "SFU_TOKEN_SECRET")]
    secret: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The demo page to serve.
    #[arg(long)]
    demo_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "hostile proxy listening on http://{}",
        listener.local_addr()?
    );
    Proxy::new(ProxyConfig {
        upstream: args.upstream,
        secret: args.secret.into_bytes(),
        demo_dir: args.demo_dir,
    })
    .serve(listener)
    .await?;
    Ok(())
}
