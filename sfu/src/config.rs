//! The server's configuration: documented defaults, overridden by a TOML file, then by
//! environment variables, then by flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the server needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuConfig {
    /// HTTP listen address: signaling WebSocket, demo, /healthz, /metrics.
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// UDP ports for media, inclusive, one per participant. Default 50000 to 50199. A range
    /// starting at 0 lets the OS pick any port.
    pub udp_ports: (u16, u16),
    /// Single-port mode: every participant's media on this one UDP port (one firewall rule);
    /// `udp_ports` is then unused. Default: none (the range).
    pub udp_port: Option<u16>,
    /// The address media binds. Default: the listen address's (so behind a reverse proxy,
    /// with `listen` on loopback, set it: `0.0.0.0` or this machine's address).
    pub media_ip: Option<IpAddr>,
    /// The public IP to announce in ICE host candidates (1:1 NAT). Default: none.
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN URLs handed to clients. Default: none (fine on one machine or one LAN).
    pub ice_servers: Vec<String>,
    /// The TURN server's shared secret (coturn `static-auth-secret`): each participant gets
    /// credentials for the `turn:`/`turns:` URLs, valid 12 hours. Default: none.
    pub turn_secret: Option<String>,
    /// Participants per room. Default 100.
    pub max_participants_per_room: usize,
    /// Open signaling connections per client address. Default 50.
    pub max_connections_per_ip: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client. Default none.
    pub trusted_proxies: Vec<IpAddr>,
    /// Secret for HS256 access tokens. Required unless `dev` is on.
    pub token_secret: Option<String>,
    /// PEM certificate chain and private key: with both, the sfu serves HTTPS and WSS itself
    /// (reloaded on SIGHUP and when the files change). Default: plain HTTP (behind a proxy).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Bearer token for the `/admin` API (at least 16 bytes). Default: none, no admin API.
    pub admin_token: Option<String>,
    /// Insecure dev mode: `GET /dev/token` hands tokens to anyone. Default off.
    pub dev: bool,
    /// Folder of the browser demo's files, served at `/`. Default `web-demo/static` when it
    /// exists.
    pub demo_dir: Option<PathBuf>,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            udp_ports: (50000, 50199),
            udp_port: None,
            media_ip: None,
            public_ip: None,
            ice_servers: Vec::new(),
            turn_secret: None,
            max_participants_per_room: 100,
            max_connections_per_ip: 50,
            trusted_proxies: Vec::new(),
            token_secret: None,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            dev: false,
            demo_dir: Some(PathBuf::from("web-demo/static")).filter(|p| p.is_dir()),
        }
    }
}

/// The TOML file: every field optional, unknown fields refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub udp_port_min: Option<u16>,
    pub udp_port_max: Option<u16>,
    pub udp_port: Option<u16>,
    pub media_ip: Option<IpAddr>,
    pub public_ip: Option<IpAddr>,
    pub ice_servers: Option<Vec<String>>,
    pub turn_secret: Option<String>,
    pub max_participants_per_room: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub token_secret: Option<String>,
    pub admin_token: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub dev: Option<bool>,
    pub demo_dir: Option<PathBuf>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl SfuConfig {
    /// Applies a TOML file over this configuration.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.display().to_string().into(), e.to_string()))?;
        self.apply(file);
        Ok(())
    }

    /// Applies the fields that are set.
    pub fn apply(&mut self, f: FileConfig) {
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.udp_port_min {
            self.udp_ports.0 = v;
        }
        if let Some(v) = f.udp_port_max {
            self.udp_ports.1 = v;
        }
        if f.udp_port.is_some() {
            self.udp_port = f.udp_port;
        }
        if f.media_ip.is_some() {
            self.media_ip = f.media_ip;
        }
        if f.public_ip.is_some() {
            self.public_ip = f.public_ip;
        }
        if let Some(v) = f.ice_servers {
            self.ice_servers = v;
        }
        if f.turn_secret.is_some() {
            self.turn_secret = f.turn_secret;
        }
        if let Some(v) = f.max_participants_per_room {
            self.max_participants_per_room = v;
        }
        if let Some(v) = f.max_connections_per_ip {
            self.max_connections_per_ip = v;
        }
        if let Some(v) = f.trusted_proxies {
            self.trusted_proxies = v;
        }
        if f.token_secret.is_some() {
            self.token_secret = f.token_secret;
        }
        if f.admin_token.is_some() {
            self.admin_token = f.admin_token;
        }
        if f.tls_cert.is_some() {
            self.tls_cert = f.tls_cert;
        }
        if f.tls_key.is_some() {
            self.tls_key = f.tls_key;
        }
        if let Some(v) = f.dev {
            self.dev = v;
        }
        if f.demo_dir.is_some() {
            self.demo_dir = f.demo_dir;
        }
    }

    /// Checks what cannot be checked by types: the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some((_, message)) => Err(ConfigError::Invalid(message)),
            None => Ok(()),
        }
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
        if self.udp_ports.0 != 0 && self.udp_ports.0 > self.udp_ports.1 {
            out.push((
                Some("udp_port_min"),
                format!(
                    "udp port range {}-{} is empty",
                    self.udp_ports.0, self.udp_ports.1
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
        if self.max_participants_per_room == 0 {
            out.push((
                Some("max_participants_per_room"),
                "max_participants_per_room must be at least 1".into(),
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
    /// 1-based, when it belongs to a line.
    pub line: Option<usize>,
    pub message: String,
}

const KEYS: &[&str] = &[
    "listen",
    "udp_port_min",
    "udp_port_max",
    "udp_port",
    "media_ip",
    "public_ip",
    "ice_servers",
    "turn_secret",
    "max_participants_per_room",
    "max_connections_per_ip",
    "trusted_proxies",
    "token_secret",
    "admin_token",
    "tls_cert",
    "tls_key",
    "dev",
    "demo_dir",
];

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

/// Checks a configuration file's text: syntax, unknown keys, each value's type, then what the
/// values mean together once `overrides` (the environment and flags the server would also
/// read, such as `SFU_TOKEN_SECRET`) apply. Every problem found, not just the first.
pub fn check(text: &str, overrides: FileConfig) -> Result<SfuConfig, Vec<Problem>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| line_of_offset(text, s.start)),
            message: e.message().trim().to_owned(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut good = toml::Table::new();
    for (key, value) in table {
        let line = line_of_key(text, &key);
        if !KEYS.contains(&key.as_str()) {
            problems.push(Problem {
                line,
                message: format!("unknown setting `{key}` (known: {})", KEYS.join(", ")),
            });
            continue;
        }
        let mut one = toml::Table::new();
        one.insert(key.clone(), value);
        match toml::Value::Table(one.clone()).try_into::<FileConfig>() {
            Ok(_) => good.extend(one),
            Err(e) => problems.push(Problem {
                line,
                message: format!("`{key}`: {}", e.message().trim()),
            }),
        }
    }
    let mut config = SfuConfig::default();
    if let Ok(file) = toml::Value::Table(good).try_into::<FileConfig>() {
        config.apply(file);
    }
    config.apply(overrides);
    for (key, message) in config.problems() {
        problems.push(Problem {
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
    fn the_known_keys_are_exactly_the_file_s_fields() {
        // serde names every field it expects when it meets an unknown one.
        let err = toml::from_str::<FileConfig>("not_a_setting = 1").expect_err("unknown");
        let message = err.message();
        let expected = message
            .split_once("expected one of ")
            .map(|(_, list)| list)
            .unwrap_or_else(|| panic!("{message}"));
        let fields: Vec<&str> = expected
            .split(", ")
            .map(|f| f.trim().trim_matches('`'))
            .collect();
        assert_eq!(fields, KEYS, "KEYS must list FileConfig's fields, in order");
    }

    #[test]
    fn check_finds_every_problem_with_its_line() {
        let text = "listen = \"0.0.0.0:9000\"\nlisen = 3\nudp_port_min = \"many\"\n\
                    max_participants_per_room = 0\ntoken_secret = \"short\"\n";
        let problems = check(text, FileConfig::default()).expect_err("broken");
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(3), Some(4), Some(5)],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("unknown setting `lisen`"));
        assert!(problems[1].message.contains("udp_port_min"));
        assert!(problems[3].message.contains("16 bytes"));
        assert!(problems[2].message.contains("at least 1"));
        let syntax = check("listen = \n", FileConfig::default()).expect_err("syntax");
        assert_eq!(syntax[0].line, Some(1));
        assert!(
            check(
                &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sfu.example.toml"))
                    .expect("example"),
                FileConfig::default()
            )
            .is_err_and(|p| p.len() == 1 && p[0].line.is_none()),
            "the example has no secret"
        );
        // The secret can come from where the server would read it (SFU_TOKEN_SECRET).
        let from_env = FileConfig {
            token_secret: Some("0123456789abcdef".into()),
            ..FileConfig::default()
        };
        assert!(
            check(
                &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sfu.example.toml"))
                    .expect("example"),
                from_env
            )
            .is_ok()
        );
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let mut c = SfuConfig::default();
        c.apply_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sfu.example.toml"
        )))
        .expect("example parses");
        assert_eq!(c, SfuConfig::default());
    }

    #[test]
    fn a_file_overrides_only_what_it_sets() {
        let mut c = SfuConfig::default();
        let f: FileConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nudp_port_min = 40000\ntoken_secret = \"0123456789abcdef\"",
        )
        .expect("toml");
        c.apply(f);
        assert_eq!(
            c.listen,
            "0.0.0.0:9000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(c.udp_ports, (40000, 50199));
        assert_eq!(c.udp_port, None, "the range, unless one port is asked for");
        assert_eq!(c.max_participants_per_room, 100);
        assert!(c.validate().is_ok());
        c.apply(toml::from_str("udp_port = 50000").expect("toml"));
        assert_eq!(c.udp_port, Some(50000));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"0.0.0.0:1\"").is_err());
        assert!(toml::from_str::<FileConfig>("listen = \"not an address\"").is_err());
        let c = SfuConfig {
            udp_ports: (10, 5),
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
