//! `sfu`: the end-to-end encrypted conferencing server. One HTTP port serves the signaling
//! WebSocket (rooms, access tokens, the MLS delivery service), the browser demo, `/healthz`
//! and `/metrics`. It holds no key that opens a frame and links no frame-key code.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sfu::config::{self, SfuConfig};
use sfu::http;
use sfu::media::MediaConfig;
use signaling_protocol::IceServer;
use signaling_server::{SignalingConfig, SignalingServer};

/// Flags (each also from an environment variable) override the configuration file, which
/// overrides the defaults.
#[derive(Debug, Parser)]
#[command(version, about = "End-to-end encrypted video conferencing SFU")]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "SFU_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SFU_LISTEN")]
    listen: Option<SocketAddr>,
    /// Public IP for ICE host candidates (1:1 NAT).
    #[arg(long, env = "SFU_PUBLIC_IP")]
    public_ip: Option<IpAddr>,
    /// Lowest UDP port for media [default: 50000]; 0 lets the OS pick any port.
    #[arg(long, env = "SFU_UDP_PORT_MIN")]
    udp_port_min: Option<u16>,
    /// Highest UDP port for media [default: 50199]. One port per participant.
    #[arg(long, env = "SFU_UDP_PORT_MAX")]
    udp_port_max: Option<u16>,
    /// A STUN or TURN URL handed to clients (repeat the flag for several;
    /// comma-separated in SFU_ICE_SERVERS).
    #[arg(long = "ice-server", env = "SFU_ICE_SERVERS", value_delimiter = ',')]
    ice_servers: Option<Vec<String>>,
    /// Secret for HS256 access tokens (at least 16 bytes).
    #[arg(long, env = "SFU_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// INSECURE dev mode: anyone can get an access token from /dev/token. Local demos only.
    #[arg(long, env = "SFU_DEV")]
    dev: bool,
    /// Folder with the browser demo's files.
    #[arg(long, env = "SFU_DEMO_DIR")]
    demo_dir: Option<PathBuf>,
}

fn load(cli: Cli) -> anyhow::Result<SfuConfig> {
    let mut config = SfuConfig::default();
    if let Some(path) = &cli.config {
        config.apply_file(path)?;
    }
    config.apply(config::FileConfig {
        listen: cli.listen,
        public_ip: cli.public_ip,
        udp_port_min: cli.udp_port_min,
        udp_port_max: cli.udp_port_max,
        ice_servers: cli.ice_servers,
        token_secret: cli.token_secret,
        dev: cli.dev.then_some(true),
        demo_dir: cli.demo_dir,
        ..config::FileConfig::default()
    });
    config.validate()?;
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = load(Cli::parse())?;
    let media = std::sync::Arc::new(sfu::media::MediaServer::new(MediaConfig::new(
        config.listen.ip(),
        config.udp_ports,
        config.public_ip,
    )));
    let media_stats = media.stats();
    let signaling = SignalingServer::with_media(
        SignalingConfig {
            token_secret: config
                .token_secret
                .clone()
                .map(String::into_bytes)
                .unwrap_or_default(),
            insecure_dev_tokens: config.dev,
            max_participants_per_room: config.max_participants_per_room,
            ice_servers: config
                .ice_servers
                .iter()
                .map(|url| IceServer {
                    urls: vec![url.clone()],
                    username: None,
                    credential: None,
                })
                .collect(),
            ..SignalingConfig::default()
        },
        media,
    )?;
    let app = http::router(&config, &signaling, media_stats);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("sfu listening on http://{addr}");
    tracing::info!(%addr, dev = config.dev, demo = ?config.demo_dir, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
