//! The server's configuration, declared once: [`SfuConfig`] is at the same time the TOML file
//! (serde, unknown keys refused), the flags and their `SFU_*` environment variables (clap), and
//! the documented defaults (clap's `default_value`s, which `Default` reads too). Layers, lowest
//! first: defaults, the file, the environment, flags ([`load`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use serde::{Deserialize, Serialize};

/// Everything the server needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SfuConfig {
    /// HTTP listen address: signaling WebSocket, demo, /healthz, /metrics.
    #[arg(long, env = "SFU_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Lowest UDP port for media, one port per participant; 0 lets the OS pick any port.
    #[arg(long, env = "SFU_UDP_PORT_MIN", default_value_t = 50000)]
    pub udp_port_min: u16,
    /// Highest UDP port for media.
    #[arg(long, env = "SFU_UDP_PORT_MAX", default_value_t = 50199)]
    pub udp_port_max: u16,
    /// Single-port mode: every participant's media on this one UDP port instead of the range
    /// (one firewall rule); 0 lets the OS pick it. Default: none (the range).
    #[arg(long, env = "SFU_UDP_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// The address media binds; 0.0.0.0 for every interface. Default: the listen address's
    /// (behind a reverse proxy, with `listen` on loopback, set it).
    #[arg(long, env = "SFU_MEDIA_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_ip: Option<IpAddr>,
    /// The public IP to announce in ICE host candidates (1:1 NAT). Default: none.
    #[arg(long, env = "SFU_PUBLIC_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<IpAddr>,
    /// Media threads of their own for the rooms (each room on one, with its sockets and
    /// timers; signaling and HTTP stay on the shared runtime; on one UDP port the port's
    /// reader runs on the first). 0, the default: rooms run on the shared runtime.
    #[arg(long, env = "SFU_MEDIA_THREADS", default_value_t = 0)]
    pub media_threads: usize,
    /// Send every media datagram on its own, instead of joining runs to one destination into
    /// one UDP GSO send (Linux UDP_SEGMENT). The sfu falls back by itself when the host
    /// refuses GSO; this flag is for comparing the two.
    #[arg(long, env = "SFU_NO_GSO")]
    pub no_gso: bool,
    /// A STUN or TURN URL handed to clients (repeat the flag for several; comma-separated in
    /// SFU_ICE_SERVERS). Default: none (fine on one machine or one LAN).
    #[arg(long = "ice-server", env = "SFU_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,
    /// The TURN server's shared secret (coturn static-auth-secret): each participant gets
    /// credentials for the turn:/turns: URLs, valid 12 hours. Default: none.
    #[arg(long, env = "SFU_TURN_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret: Option<String>,
    /// Participants per room.
    #[arg(long, env = "SFU_MAX_PARTICIPANTS_PER_ROOM", default_value_t = 100)]
    pub max_participants_per_room: usize,
    /// Audio streams each participant receives at a time: the loudest of the room (by the
    /// audio level in the clear); silent microphones cost nothing. 0: every stream.
    #[arg(long, env = "SFU_AUDIO_STREAMS", default_value_t = 3)]
    pub audio_streams: usize,
    /// Videos each participant receives at a time, at most: of those its page shows, the
    /// largest tiles, then the most recent speakers' (the others' tiles say they are paused).
    /// 0: no limit but what it shows.
    #[arg(long, env = "SFU_LAST_N", default_value_t = 0)]
    pub last_n: usize,
    /// Largest end-to-end encrypted chat or state message relayed, in bytes; larger ones are
    /// refused to their sender.
    #[arg(long, env = "SFU_MAX_APPLICATION_BYTES", default_value_t = 64 * 1024)]
    pub max_application_bytes: usize,
    /// Open signaling connections per client address.
    #[arg(long, env = "SFU_MAX_CONNECTIONS_PER_IP", default_value_t = 50)]
    pub max_connections_per_ip: usize,
    /// A reverse proxy whose X-Forwarded-For names the client (repeat for several;
    /// comma-separated in SFU_TRUSTED_PROXIES). Default: none.
    #[arg(
        long = "trusted-proxy",
        env = "SFU_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
    /// Secret for HS256 access tokens (at least 16 bytes). Required unless --dev.
    #[arg(long, env = "SFU_TOKEN_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// PEM certificate chain: with --tls-key, the sfu serves HTTPS and WSS itself (reloaded on
    /// SIGHUP and when the files change). Default: plain HTTP (behind a proxy).
    #[arg(long, env = "SFU_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SFU_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Bearer token that opens the /admin API (at least 16 bytes). Default: none, no admin
    /// API.
    #[arg(long, env = "SFU_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// INSECURE dev mode: anyone can get an access token from /dev/token. Local demos only.
    #[arg(long, env = "SFU_DEV")]
    pub dev: bool,
    /// Folder with the browser demo's files, served at /. Default: web-demo/static when it
    /// exists.
    #[arg(long, env = "SFU_DEMO_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_dir: Option<PathBuf>,
    /// Join a cluster of nodes on NATS with JetStream (nats://HOST:PORT; repeat, or
    /// comma-separated in SFU_CLUSTER, for a NATS cluster). Default: none, this node alone, in
    /// memory.
    #[arg(long, env = "SFU_CLUSTER", value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// This node's name in the cluster: unique, letters, digits, '-' and '_'. Default: the
    /// host's name.
    #[arg(long, env = "SFU_NODE_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Where participants reach this node (its https:// or http:// URL), as the cluster lists
    /// it. Default: the listen address.
    #[arg(long, env = "SFU_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

impl Default for SfuConfig {
    /// The documented defaults: the flags' defaults, with no flag, environment or file.
    fn default() -> Self {
        let command = SfuConfig::augment_args(clap::Command::new("sfu")).mut_args(|a| a.env(None));
        let matches = command
            .try_get_matches_from(["sfu"])
            .expect("the defaults parse");
        SfuConfig::from_arg_matches(&matches).expect("the defaults parse")
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    File(Vec<Problem>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration the server runs with: `args` (flags, environment and defaults, as clap
/// parsed them into `matches`), with `file`'s settings in place of the defaults.
pub fn load(
    args: &SfuConfig,
    matches: &ArgMatches,
    file: Option<&Path>,
) -> Result<SfuConfig, ConfigError> {
    match file {
        // `check` validates the merged whole, with the file's lines.
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
            check(&text, args, matches).map_err(|problems| {
                ConfigError::File(problems.into_iter().map(|p| p.in_file(path)).collect())
            })
        }
        None => {
            args.validate()?;
            Ok(args.clone())
        }
    }
}

/// A file's settings over the defaults (no flag or environment): for tools that read one
/// setting from the server's file, such as `sfu token create --config`.
pub fn read_file(path: &Path) -> Result<SfuConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
    toml::from_str(&text).map_err(|e| {
        ConfigError::File(vec![Problem {
            file: Some(path.to_owned()),
            line: e.span().map(|s| line_of_offset(&text, s.start)),
            message: e.message().trim().to_owned(),
        }])
    })
}

impl SfuConfig {
    /// The UDP port range for media, inclusive.
    pub fn udp_ports(&self) -> (u16, u16) {
        (self.udp_port_min, self.udp_port_max)
    }

    /// The demo's folder: `demo_dir`, else `web-demo/static` when it exists here.
    pub fn demo_dir(&self) -> Option<PathBuf> {
        self.demo_dir
            .clone()
            .or_else(|| Some(PathBuf::from("web-demo/static")).filter(|p| p.is_dir()))
    }

    /// Checks what cannot be checked by types: the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some((_, message)) => Err(ConfigError::Invalid(message)),
            None => Ok(()),
        }
    }

    /// This node's name in a cluster: `node_id`, else the host's name (made fit: anything
    /// but letters, digits, '-' and '_' becomes '-').
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_else(|_| "sfu".into());
            let name: String = host
                .trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .take(64)
                .collect();
            if name.is_empty() { "sfu".into() } else { name }
        })
    }

    /// The address media binds: `media_ip`, else the listen address's.
    pub fn media_ip(&self) -> IpAddr {
        self.media_ip.unwrap_or(self.listen.ip())
    }

    /// Every problem types cannot catch, with the file key it concerns (if one).
    pub fn problems(&self) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if self.public_ip.is_some() && self.media_ip().is_loopback() {
            out.push((
                Some(if self.media_ip.is_some() {
                    "media_ip"
                } else {
                    "public_ip"
                }),
                format!(
                    "public_ip is set but media would bind {} (loopback), which nobody outside \
                     can reach: set media_ip to this machine's address or 0.0.0.0",
                    self.media_ip()
                ),
            ));
        }
        if self.udp_port_min != 0 && self.udp_port_min > self.udp_port_max {
            out.push((
                Some("udp_port_min"),
                format!(
                    "udp port range {}-{} is empty",
                    self.udp_port_min, self.udp_port_max
                ),
            ));
        }
        for bad in self.ice_servers.iter().filter(|u| {
            !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| u.starts_with(s))
        }) {
            out.push((
                Some("ice_servers"),
                format!("ice server {bad:?} is not a stun:, stuns:, turn: or turns: URL"),
            ));
        }
        if self.turn_secret.is_some()
            && !self
                .ice_servers
                .iter()
                .any(|u| signaling_server::turn::is_turn_url(u))
        {
            out.push((
                Some("turn_secret"),
                "turn_secret is set but ice_servers has no turn: or turns: URL".into(),
            ));
        }
        if self.max_connections_per_ip == 0 {
            out.push((
                Some("max_connections_per_ip"),
                "max_connections_per_ip must be at least 1".into(),
            ));
        }
        if self.max_application_bytes < 1024 {
            out.push((
                Some("max_application_bytes"),
                "max_application_bytes must be at least 1024".into(),
            ));
        }
        if self.max_participants_per_room == 0 {
            out.push((
                Some("max_participants_per_room"),
                "max_participants_per_room must be at least 1".into(),
            ));
        }
        if self.media_threads > 256 {
            out.push((
                Some("media_threads"),
                "media_threads must be at most 256".into(),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => out.push((Some("tls_cert"), "tls_cert needs tls_key too".into())),
            (None, Some(_)) => out.push((Some("tls_key"), "tls_key needs tls_cert too".into())),
            (Some(c), Some(k)) => {
                for (key, path) in [("tls_cert", c), ("tls_key", k)] {
                    if !path.is_file() {
                        out.push((
                            Some(key),
                            format!("{key}: {} is not a readable file", path.display()),
                        ));
                    }
                }
            }
            (None, None) => {}
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            out.push((
                Some("admin_token"),
                "admin_token must be at least 16 bytes".into(),
            ));
        }
        match &self.token_secret {
            Some(s) if s.len() < 16 => out.push((
                Some("token_secret"),
                "token_secret must be at least 16 bytes".into(),
            )),
            Some(_) if self.dev => out.push((
                Some("token_secret"),
                "the insecure dev mode hands tokens to anyone: it runs only with a throwaway \
                 secret of its own, never with a configured token_secret (remove one or the other)"
                    .into(),
            )),
            None if !self.dev => out.push((
                None,
                "set token_secret (or SFU_TOKEN_SECRET), or run the insecure dev mode with --dev"
                    .into(),
            )),
            _ => {}
        }
        for url in &self.cluster {
            if !["nats://", "tls://"].iter().any(|s| url.starts_with(s)) {
                out.push((
                    Some("cluster"),
                    format!("cluster: {url:?} is not a nats:// or tls:// URL"),
                ));
            }
        }
        if let Some(id) = &self.node_id {
            if let Err(e) = signaling_server::server::cluster::ClusterConfig::check_node_id(id) {
                out.push((Some("node_id"), e));
            }
            if self.cluster.is_empty() {
                out.push((
                    Some("node_id"),
                    "node_id names a node of a cluster, but cluster is not set".into(),
                ));
            }
        }
        if let Some(url) = &self.public_url
            && !["http://", "https://"].iter().any(|s| url.starts_with(s))
        {
            out.push((
                Some("public_url"),
                format!("public_url {url:?} is not an http:// or https:// URL"),
            ));
        }
        if self.dev && !self.listen.ip().is_loopback() {
            out.push((
                Some("listen"),
                format!(
                    "the insecure dev mode hands tokens to anyone who asks, so it listens only on \
                     loopback (127.0.0.1 or ::1), not on {}",
                    self.listen.ip()
                ),
            ));
        }
        out
    }
}

/// One problem of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, once known.
    pub file: Option<PathBuf>,
    /// 1-based, when it belongs to a line.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    fn in_file(self, path: &Path) -> Problem {
        Problem {
            file: Some(path.to_owned()),
            ..self
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, Some(line)) => write!(f, "line {line}: {}", self.message),
            (None, None) => write!(f, "{}", self.message),
        }
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The settings' names (file keys), in the type's order.
pub fn settings() -> Vec<String> {
    SfuConfig::augment_args(clap::Command::new("sfu"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// Whether a setting was given on the command line or in the environment (which outrank the
/// file), not left to its default.
fn given(matches: &ArgMatches, key: &str) -> bool {
    matches!(
        matches.value_source(key),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Checks a configuration file's text: syntax, unknown keys, each value's type, then what the
/// values mean together once `args` (the flags and environment the server would also read,
/// such as `SFU_TOKEN_SECRET`; `matches` says which were given) outrank it. Every problem
/// found, not just the first; the configuration when there is none.
pub fn check(
    text: &str,
    args: &SfuConfig,
    matches: &ArgMatches,
) -> Result<SfuConfig, Vec<Problem>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        vec![Problem {
            file: None,
            line: e.span().map(|s| line_of_offset(text, s.start)),
            message: e.message().trim().to_owned(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut merged = toml::Table::try_from(args).map_err(|e| {
        vec![Problem {
            file: None,
            line: None,
            message: format!("the flags do not form a configuration: {e}"),
        }]
    })?;
    let known = settings();
    for (key, value) in table {
        let line = line_of_key(text, &key);
        if !known.contains(&key) {
            problems.push(Problem {
                file: None,
                line,
                message: format!("unknown setting `{key}` (known: {})", known.join(", ")),
            });
            continue;
        }
        // One setting alone, over the defaults: a value of the wrong type.
        let mut one = toml::Table::new();
        one.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(one).try_into::<SfuConfig>() {
            problems.push(Problem {
                file: None,
                line,
                message: format!("`{key}`: {}", e.message().trim()),
            });
            continue;
        }
        if !given(matches, &key) {
            merged.insert(key, value);
        }
    }
    let config: SfuConfig = match toml::Value::Table(merged).try_into() {
        Ok(c) => c,
        Err(e) => {
            problems.push(Problem {
                file: None,
                line: None,
                message: e.message().trim().to_owned(),
            });
            return Err(problems);
        }
    };
    for (key, message) in config.problems() {
        problems.push(Problem {
            file: None,
            line: key.and_then(|k| line_of_key(text, k)),
            message,
        });
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server would parse from `flags` (no environment: tests must not depend on it).
    fn parsed(flags: &[&str]) -> (SfuConfig, ArgMatches) {
        let command = SfuConfig::augment_args(clap::Command::new("sfu")).mut_args(|a| a.env(None));
        let matches = command
            .try_get_matches_from(std::iter::once("sfu").chain(flags.iter().copied()))
            .expect("flags parse");
        (
            SfuConfig::from_arg_matches(&matches).expect("config"),
            matches,
        )
    }

    fn example() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sfu.example.toml"))
            .expect("example")
    }

    #[test]
    fn media_binds_the_listen_address_unless_told_and_never_loopback_behind_a_nat() {
        let mut c = SfuConfig {
            dev: true,
            ..SfuConfig::default()
        };
        assert_eq!(c.media_ip(), IpAddr::from([127, 0, 0, 1]), "the local demo");
        assert!(c.problems().is_empty());
        // Behind a reverse proxy with a public IP: loopback media would be unreachable.
        c.public_ip = Some(IpAddr::from([203, 0, 113, 10]));
        let problems = c.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, Some("public_ip"));
        assert!(problems[0].1.contains("media_ip"), "{}", problems[0].1);
        c.media_ip = Some(IpAddr::from([0, 0, 0, 0]));
        assert!(c.problems().is_empty());
        assert_eq!(c.media_ip(), IpAddr::from([0, 0, 0, 0]));
    }

    #[test]
    fn every_setting_has_a_flag_an_environment_variable_and_a_line_in_the_example() {
        let command = SfuConfig::augment_args(clap::Command::new("sfu"));
        let example = example();
        let mut count = 0;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            count += 1;
            assert!(arg.get_long().is_some(), "{id} has a flag");
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(format!("SFU_{}", id.to_uppercase()).as_str()),
                "{id}'s environment variable"
            );
            assert!(arg.get_help().is_some(), "{id} is documented");
            assert!(
                example.lines().any(|l| {
                    l.trim_start_matches(['#', ' '])
                        .strip_prefix(id)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                }),
                "sfu.example.toml names {id}"
            );
        }
        // And the file knows exactly these keys.
        let serialized = toml::Table::try_from(SfuConfig {
            udp_port: Some(1),
            media_ip: Some(IpAddr::from([0, 0, 0, 0])),
            public_ip: Some(IpAddr::from([0, 0, 0, 0])),
            turn_secret: Some("t".into()),
            token_secret: Some("t".into()),
            tls_cert: Some("c".into()),
            tls_key: Some("k".into()),
            admin_token: Some("a".into()),
            demo_dir: Some("d".into()),
            node_id: Some("n".into()),
            public_url: Some("u".into()),
            ..SfuConfig::default()
        })
        .expect("serializes");
        assert_eq!(serialized.len(), count);
    }

    #[test]
    fn cluster_settings_are_checked() {
        let (mut c, _) = parsed(&["--dev"]);
        assert!(c.cluster.is_empty(), "alone by default");
        c.node_id = Some("sfu-1".into());
        assert_eq!(
            c.problems()[0].0,
            Some("node_id"),
            "a name without a cluster"
        );
        c.cluster = vec!["nats://10.0.0.1:4222".into(), "http://10.0.0.2:4222".into()];
        c.node_id = Some("sfu 1".into());
        c.public_url = Some("sfu-1.example.org".into());
        let keys: Vec<_> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![Some("cluster"), Some("node_id"), Some("public_url")]
        );
        let (c, _) = parsed(&["--dev", "--cluster", "nats://a:4222,nats://b:4222"]);
        assert_eq!(c.cluster.len(), 2);
        assert!(c.problems().is_empty());
        let fit = signaling_server::server::cluster::ClusterConfig::check_node_id(&c.node_id());
        assert!(fit.is_ok(), "the host's name, made fit: {fit:?}");
    }

    #[test]
    fn check_finds_every_problem_with_its_line() {
        let (args, matches) = parsed(&[]);
        let text = "listen = \"0.0.0.0:9000\"\nlisen = 3\nudp_port_min = \"many\"\n\
                    max_participants_per_room = 0\ntoken_secret = \"short\"\n";
        let problems = check(text, &args, &matches).expect_err("broken");
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(3), Some(4), Some(5)],
            "{problems:#?}"
        );
        assert!(
            problems[0]
                .message
                .contains("unknown setting `lisen` (known: listen, udp_port_min,"),
            "{}",
            problems[0].message
        );
        assert!(problems[1].message.contains("udp_port_min"));
        assert!(problems[2].message.contains("at least 1"));
        assert!(problems[3].message.contains("16 bytes"));
        let syntax = check("listen = \n", &args, &matches).expect_err("syntax");
        assert_eq!(syntax[0].line, Some(1));
        assert!(
            check(&example(), &args, &matches).is_err_and(|p| p.len() == 1 && p[0].line.is_none()),
            "the example has no secret"
        );
        // The secret can come from where the server would read it (a flag, SFU_TOKEN_SECRET).
        let (args, matches) = parsed(&["--token-secret", "0123456789abcdef"]);
        assert!(check(&example(), &args, &matches).is_ok());
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let (args, matches) = parsed(&["--dev"]);
        let c = check(&example(), &args, &matches).expect("example parses");
        assert_eq!(
            c,
            SfuConfig {
                dev: true,
                ..SfuConfig::default()
            }
        );
        assert_eq!(SfuConfig::default().udp_ports(), (50000, 50199));
        assert_eq!(SfuConfig::default().listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn the_file_outranks_the_defaults_and_flags_outrank_the_file() {
        let text = "listen = \"0.0.0.0:9000\"\nudp_port_min = 40000\nmax_participants_per_room = 7\n\
                    token_secret = \"0123456789abcdef\"\nice_servers = [\"stun:a.example\"]\n";
        let (args, matches) = parsed(&[]);
        let c = check(text, &args, &matches).expect("valid");
        assert_eq!(
            c.listen,
            "0.0.0.0:9000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(c.udp_ports(), (40000, 50199));
        assert_eq!(c.udp_port, None, "the range, unless one port is asked for");
        assert_eq!(c.max_participants_per_room, 7);
        assert_eq!(c.ice_servers, ["stun:a.example"]);
        // A flag wins over the file, also one that states the default.
        let (args, matches) = parsed(&[
            "--max-participants-per-room",
            "100",
            "--udp-port",
            "50000",
            "--ice-server",
            "stun:b.example,stun:c.example",
        ]);
        let c = check(text, &args, &matches).expect("valid");
        assert_eq!(c.max_participants_per_room, 100);
        assert_eq!(c.udp_port, Some(50000));
        assert_eq!(c.ice_servers, ["stun:b.example", "stun:c.example"]);
        assert_eq!(c.udp_port_min, 40000, "what no flag names stays the file's");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<SfuConfig>("lisen = \"0.0.0.0:1\"").is_err());
        assert!(toml::from_str::<SfuConfig>("listen = \"not an address\"").is_err());
        let c = SfuConfig {
            udp_port_min: 10,
            udp_port_max: 5,
            dev: true,
            ..SfuConfig::default()
        };
        assert!(c.validate().is_err());
        assert!(
            SfuConfig::default().validate().is_err(),
            "no secret, no dev"
        );
    }

    #[test]
    fn dev_mode_stays_on_loopback_and_never_signs_with_a_real_secret() {
        let dev = SfuConfig {
            dev: true,
            ..SfuConfig::default()
        };
        assert!(dev.validate().is_ok());
        let public = SfuConfig {
            listen: "0.0.0.0:8080".parse().expect("addr"),
            ..dev.clone()
        };
        let problems = public.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, Some("listen"));
        assert!(problems[0].1.contains("loopback"));
        let ipv6 = SfuConfig {
            listen: "[::1]:8080".parse().expect("addr"),
            ..dev.clone()
        };
        assert!(ipv6.validate().is_ok());
        let with_secret = SfuConfig {
            token_secret: Some("a real secret of 32 bytes, really".into()),
            ..dev
        };
        assert_eq!(with_secret.problems()[0].0, Some("token_secret"));
    }
}
