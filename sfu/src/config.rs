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
    /// The public IP to announce in ICE host candidates (1:1 NAT). Default: none.
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN URLs handed to clients. Default: none (fine on one machine or one LAN).
    pub ice_servers: Vec<String>,
    /// Participants per room. Default 100.
    pub max_participants_per_room: usize,
    /// Secret for HS256 access tokens. Required unless `dev` is on.
    pub token_secret: Option<String>,
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
            public_ip: None,
            ice_servers: Vec::new(),
            max_participants_per_room: 100,
            token_secret: None,
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
    pub public_ip: Option<IpAddr>,
    pub ice_servers: Option<Vec<String>>,
    pub max_participants_per_room: Option<usize>,
    pub token_secret: Option<String>,
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
        if f.public_ip.is_some() {
            self.public_ip = f.public_ip;
        }
        if let Some(v) = f.ice_servers {
            self.ice_servers = v;
        }
        if let Some(v) = f.max_participants_per_room {
            self.max_participants_per_room = v;
        }
        if f.token_secret.is_some() {
            self.token_secret = f.token_secret;
        }
        if let Some(v) = f.dev {
            self.dev = v;
        }
        if f.demo_dir.is_some() {
            self.demo_dir = f.demo_dir;
        }
    }

    /// Checks what cannot be checked by types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.udp_ports.0 != 0 && self.udp_ports.0 > self.udp_ports.1 {
            return Err(ConfigError::Invalid(format!(
                "udp port range {}-{} is empty",
                self.udp_ports.0, self.udp_ports.1
            )));
        }
        if let Some(bad) = self.ice_servers.iter().find(|u| {
            !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| u.starts_with(s))
        }) {
            return Err(ConfigError::Invalid(format!(
                "ice server {bad:?} is not a stun:, stuns:, turn: or turns: URL"
            )));
        }
        if self.max_participants_per_room == 0 {
            return Err(ConfigError::Invalid(
                "max_participants_per_room must be at least 1".into(),
            ));
        }
        match &self.token_secret {
            Some(s) if s.len() < 16 => Err(ConfigError::Invalid(
                "token_secret must be at least 16 bytes".into(),
            )),
            None if !self.dev => Err(ConfigError::Invalid(
                "set token_secret (or SFU_TOKEN_SECRET), or run the insecure dev mode with --dev"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.max_participants_per_room, 100);
        assert!(c.validate().is_ok());
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
}
