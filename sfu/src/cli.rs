//! The command line: `sfu [flags]` runs the server; `sfu token create` mints an access token;
//! `sfu check-config FILE` validates a configuration file and says what is wrong, line by line.
//! Flags (each also from an environment variable) override the configuration file, which
//! overrides the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args, Parser, Subcommand};
use signaling_token::{self as token, Claims};

use crate::config::{self, Problem, SfuConfig};
use crate::http_client::{self, HttpClient, Trust};

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
    /// The server: its listen address, http:// or https:// (when it serves TLS).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Believe only the CAs in this PEM file for an https:// URL (a private CA).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not check the server's certificate (self-signed test servers only).
    #[arg(long)]
    pub insecure: bool,
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
    /// Removes a participant for good: the token it joined with is revoked for the rest of
    /// its life, so it cannot come back with it (its MLS removal follows in the next commit).
    Remove {
        #[arg(long)]
        room: String,
        #[arg(long)]
        participant: u64,
    },
    /// Bans an identity from a room: every token for it there is refused until the ban ends,
    /// and whoever holds one now is removed.
    Ban {
        room: String,
        identity: String,
        /// How long, e.g. 1h, 30m, 2days.
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Closes a room: everyone in it is removed.
    Close {
        #[arg(long)]
        room: String,
    },
    /// Drains the server before it stops: in a cluster its rooms move to other nodes (their
    /// participants on other nodes stay in them); its own participants are told to go, and
    /// reconnect elsewhere; it takes no one new. SIGTERM does the same, then exits.
    Drain,
}

/// `sfu admin ...`: what the server answered, in words for the operator.
pub async fn admin(args: &AdminArgs) -> Result<String, http_client::AdminError> {
    let (method, path) = match &args.action {
        AdminCommand::Rooms => ("GET", "/admin/rooms".to_owned()),
        AdminCommand::Remove { room, participant } => (
            "DELETE",
            format!("/admin/rooms/{}/participants/{participant}", encode(room)),
        ),
        AdminCommand::Ban {
            room,
            identity,
            duration,
        } => (
            "PUT",
            format!(
                "/admin/rooms/{}/bans/{}?until={}",
                encode(room),
                encode(identity),
                token::unix_now() + duration.as_secs().max(1)
            ),
        ),
        AdminCommand::Close { room } => ("DELETE", format!("/admin/rooms/{}", encode(room))),
        AdminCommand::Drain => ("POST", "/admin/drain".to_owned()),
    };
    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => Trust::Ca(ca.clone()),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::PublicCas,
    };
    let client = HttpClient::new(&trust).map_err(http_client::AdminError::Http)?;
    let body = http_client::admin(&client, &args.url, &args.admin_token, method, &path).await?;
    Ok(match &args.action {
        AdminCommand::Remove { room, participant } => format!(
            "removed participant {participant} from room {room:?}: the token it joined with is revoked for the rest of its life, so it cannot rejoin with it"
        ),
        AdminCommand::Ban { room, identity, .. } => {
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            format!(
                "banned {identity:?} from room {room:?} until {} (Unix time); removed {} participant(s) holding it now",
                answer["until"], answer["removed"]
            )
        }
        AdminCommand::Drain => {
            "draining: its rooms moved to other nodes, its participants were told to go, and it takes no one new".into()
        }
        _ if body.is_empty() => "ok".into(),
        _ => body,
    })
}

/// Percent-encodes a path segment: everything but RFC 3986's unreserved characters.
fn encode(segment: &str) -> String {
    const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, NOT_UNRESERVED).to_string()
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
    /// TOML configuration file (sfu/sfu.example.toml shows every setting); flags and SFU_*
    /// variables outrank it.
    #[arg(long, env = "SFU_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SfuConfig,
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
    /// The configuration: defaults, then the file, then the environment, then flags
    /// (`matches` are the command line's, which say which settings were given).
    pub fn load(&self, matches: &ArgMatches) -> Result<SfuConfig, config::ConfigError> {
        config::load(&self.settings, matches, self.config.as_deref())
    }
}

/// Why `sfu token create` made no token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenCreateError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{} sets no token_secret", .0.display())]
    NoSecretInFile(PathBuf),
    #[error("no token secret: pass --token-secret, set SFU_TOKEN_SECRET, or --config FILE")]
    NoSecret,
    #[error("the token secret must be at least 16 bytes")]
    ShortSecret,
    #[error("--room must not be empty")]
    EmptyRoom,
    #[error("--identity must not be empty")]
    EmptyIdentity,
    #[error("--identity is refused: {0}")]
    Identity(token::NameError),
    #[error("--room is refused: {0}")]
    Room(token::NameError),
    #[error("--ttl must be more than zero")]
    ZeroTtl,
    #[error("--ttl must be at most {} (the server refuses tokens that live longer)", humantime::format_duration(*.0))]
    TtlTooLong(Duration),
    #[error(transparent)]
    Token(#[from] token::TokenError),
}

/// `sfu token create`: the signed token.
pub fn token_create(args: &TokenArgs) -> Result<String, TokenCreateError> {
    let secret = match (&args.token_secret, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => config::read_file(path)?
            .token_secret
            .ok_or_else(|| TokenCreateError::NoSecretInFile(path.clone()))?,
        (None, None) => return Err(TokenCreateError::NoSecret),
    };
    if secret.len() < 16 {
        return Err(TokenCreateError::ShortSecret);
    }
    if args.room.trim().is_empty() {
        return Err(TokenCreateError::EmptyRoom);
    }
    if args.identity.trim().is_empty() {
        return Err(TokenCreateError::EmptyIdentity);
    }
    if args.ttl.is_zero() {
        return Err(TokenCreateError::ZeroTtl);
    }
    if args.ttl > token::DEFAULT_MAX_LIFETIME {
        return Err(TokenCreateError::TtlTooLong(token::DEFAULT_MAX_LIFETIME));
    }
    token::check_room(&args.room).map_err(TokenCreateError::Room)?;
    token::check_identity(&args.identity).map_err(TokenCreateError::Identity)?;
    let claims = Claims {
        exp: token::unix_now() + args.ttl.as_secs().max(1),
        iat: None,
        publish: !args.no_publish,
        ..Claims::new(args.room.clone(), args.identity.clone(), args.ttl)
    };
    Ok(token::mint(&claims, secret.as_bytes())?)
}

/// `sfu check-config FILE`: `Ok` or every problem found, each naming its line. The
/// environment variables and flags in `run` count, as they would for the server (so a token
/// secret kept in `SFU_TOKEN_SECRET` is not reported missing).
pub fn check_config(path: &Path, run: &RunArgs, matches: &ArgMatches) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    config::check(&text, &run.settings, matches)
        .map(|_| ())
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| Problem {
                    file: Some(path.to_owned()),
                    ..p
                })
                .map(|p| p.to_string())
                .collect()
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_percent_encoded_but_unreserved_characters() {
        assert_eq!(super::encode("team-a_1.0~x"), "team-a_1.0~x");
        assert_eq!(super::encode("a b/c?d%"), "a%20b%2Fc%3Fd%25");
        assert_eq!(super::encode("café"), "caf%C3%A9");
    }
}
