//! The command line: `sfu [flags]` runs the server; `sfu token create` mints an access token;
//! `sfu check-config FILE` validates a configuration file and says what is wrong, line by line.
//! Flags (each also from an environment variable) override the configuration file, which
//! overrides the defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use signaling_server::token::{self, Claims};

use crate::config::{self, SfuConfig};

#[derive(Debug, Parser)]
#[command(version, about = "End-to-end encrypted video conferencing SFU")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The admin API of a running server.
    Admin(AdminArgs),
    /// Validates a configuration file: every problem, with its line.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's HTTP listen address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin token.
    #[arg(long, env = "SFU_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    #[command(subcommand)]
    pub action: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Lists rooms and their participants (JSON).
    Rooms,
    /// Removes a participant (its MLS removal follows in the next commit).
    Remove {
        #[arg(long)]
        room: String,
        #[arg(long)]
        participant: u64,
    },
    /// Closes a room: everyone in it is removed.
    Close {
        #[arg(long)]
        room: String,
    },
}

/// `sfu admin ...`: what the server answered.
pub async fn admin(args: &AdminArgs) -> anyhow::Result<String> {
    let (method, path) = match &args.action {
        AdminCommand::Rooms => ("GET", "/admin/rooms".to_owned()),
        AdminCommand::Remove { room, participant } => (
            "DELETE",
            format!("/admin/rooms/{}/participants/{participant}", encode(room)),
        ),
        AdminCommand::Close { room } => ("DELETE", format!("/admin/rooms/{}", encode(room))),
    };
    let body = crate::http_client::admin(&args.url, &args.admin_token, method, &path).await?;
    Ok(if body.is_empty() { "ok".into() } else { body })
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mints a token for one identity in one room (printed on stdout).
    Create(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The room it admits to.
    #[arg(long)]
    pub room: String,
    /// The participant's identity (shown to the others, bound into its MLS credential).
    #[arg(long)]
    pub identity: String,
    /// How long it is valid, e.g. 1h, 30m, 2days.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// Listen only: the holder may not publish audio or video.
    #[arg(long)]
    pub no_publish: bool,
    /// The server's token secret (or SFU_TOKEN_SECRET, or `token_secret` in --config).
    #[arg(long, env = "SFU_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Read the token secret from this configuration file.
    #[arg(long, env = "SFU_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The server's settings.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration file.
    #[arg(long, env = "SFU_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SFU_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The address media binds [default: the listen address's]; 0.0.0.0 for every interface.
    #[arg(long, env = "SFU_MEDIA_IP")]
    pub media_ip: Option<IpAddr>,
    /// Public IP for ICE host candidates (1:1 NAT).
    #[arg(long, env = "SFU_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,
    /// Lowest UDP port for media [default: 50000]; 0 lets the OS pick any port.
    #[arg(long, env = "SFU_UDP_PORT_MIN")]
    pub udp_port_min: Option<u16>,
    /// Highest UDP port for media [default: 50199]. One port per participant.
    #[arg(long, env = "SFU_UDP_PORT_MAX")]
    pub udp_port_max: Option<u16>,
    /// Single-port mode: all participants' media on this one UDP port (instead of the
    /// range); 0 lets the OS pick it.
    #[arg(long, env = "SFU_UDP_PORT")]
    pub udp_port: Option<u16>,
    /// A STUN or TURN URL handed to clients (repeat the flag for several;
    /// comma-separated in SFU_ICE_SERVERS).
    #[arg(long = "ice-server", env = "SFU_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Option<Vec<String>>,
    /// The TURN server's shared secret (coturn static-auth-secret), for time-limited
    /// credentials.
    #[arg(long, env = "SFU_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Secret for HS256 access tokens (at least 16 bytes).
    #[arg(long, env = "SFU_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// PEM certificate chain: serve HTTPS/WSS (with --tls-key).
    #[arg(long, env = "SFU_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SFU_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Open signaling connections per client address [default: 50].
    #[arg(long, env = "SFU_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// A reverse proxy whose X-Forwarded-For names the client (repeat for several;
    /// comma-separated in SFU_TRUSTED_PROXIES).
    #[arg(
        long = "trusted-proxy",
        env = "SFU_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// Bearer token that opens the /admin API (at least 16 bytes); without one there is none.
    #[arg(long, env = "SFU_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// INSECURE dev mode: anyone can get an access token from /dev/token. Local demos only.
    #[arg(long, env = "SFU_DEV")]
    pub dev: bool,
    /// Folder with the browser demo's files.
    #[arg(long, env = "SFU_DEMO_DIR")]
    pub demo_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "SFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl RunArgs {
    /// The configuration: defaults, then the file, then these flags.
    pub fn load(&self) -> anyhow::Result<SfuConfig> {
        let mut config = SfuConfig::default();
        if let Some(path) = &self.config {
            config.apply_file(path)?;
        }
        config.apply(self.overrides());
        config.validate()?;
        Ok(config)
    }

    /// What these flags and environment variables set, over any file.
    pub fn overrides(&self) -> config::FileConfig {
        config::FileConfig {
            listen: self.listen,
            media_ip: self.media_ip,
            public_ip: self.public_ip,
            udp_port_min: self.udp_port_min,
            udp_port_max: self.udp_port_max,
            udp_port: self.udp_port,
            ice_servers: self.ice_servers.clone(),
            turn_secret: self.turn_secret.clone(),
            token_secret: self.token_secret.clone(),
            admin_token: self.admin_token.clone(),
            max_connections_per_ip: self.max_connections_per_ip,
            trusted_proxies: self.trusted_proxies.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            dev: self.dev.then_some(true),
            demo_dir: self.demo_dir.clone(),
            ..config::FileConfig::default()
        }
    }
}

/// `sfu token create`: the signed token.
pub fn token_create(args: &TokenArgs) -> anyhow::Result<String> {
    let secret = match (&args.token_secret, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => {
            let mut c = SfuConfig::default();
            c.apply_file(path)?;
            c.token_secret
                .ok_or_else(|| anyhow::anyhow!("{} sets no token_secret", path.display()))?
        }
        (None, None) => anyhow::bail!(
            "no token secret: pass --token-secret, set SFU_TOKEN_SECRET, or --config FILE"
        ),
    };
    anyhow::ensure!(
        secret.len() >= 16,
        "the token secret must be at least 16 bytes"
    );
    anyhow::ensure!(!args.room.trim().is_empty(), "--room must not be empty");
    anyhow::ensure!(
        !args.identity.trim().is_empty(),
        "--identity must not be empty"
    );
    anyhow::ensure!(!args.ttl.is_zero(), "--ttl must be more than zero");
    let max = signaling_server::SignalingConfig::default().max_token_lifetime;
    anyhow::ensure!(
        args.ttl <= max,
        "--ttl must be at most {} (the server refuses tokens that live longer)",
        humantime::format_duration(max)
    );
    signaling_server::token::check_identity(&args.identity)
        .map_err(|e| anyhow::anyhow!("--identity is refused: {e}"))?;
    let claims = Claims {
        room: args.room.clone(),
        sub: args.identity.clone(),
        exp: token::unix_now() + args.ttl.as_secs().max(1),
        nbf: None,
        iat: None,
        publish: !args.no_publish,
    };
    Ok(token::mint(&claims, secret.as_bytes())?)
}

/// `sfu check-config FILE`: `Ok` or every problem found, each naming its line. The
/// environment variables and flags in `run` count, as they would for the server (so a token
/// secret kept in `SFU_TOKEN_SECRET` is not reported missing).
pub fn check_config(path: &Path, run: &RunArgs) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    config::check(&text, run.overrides())
        .map(|_| ())
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| match p.line {
                    Some(line) => format!("{}:{line}: {}", path.display(), p.message),
                    None => format!("{}: {}", path.display(), p.message),
                })
                .collect()
        })
}
