//! `sfu`: the end-to-end encrypted conferencing server. One HTTP port serves the signaling
//! WebSocket (rooms, access tokens, the MLS delivery service), the browser demo, `/healthz`
//! and `/metrics`. It holds no key that opens a frame and links no frame-key code.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use sfu::cli::{Cli, Command, LogFormat, TokenCommand};
use sfu::http;
use sfu::media::MediaConfig;
use signaling_protocol::IceServer;
use signaling_server::server::cluster::{Cluster, ClusterConfig};
use signaling_server::turn::TurnCredentials;
use signaling_server::{SignalingConfig, SignalingServer};

/// How long the TURN credentials handed to a participant last.
const TURN_CREDENTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// mimalloc rather than glibc's allocator: the WebRTC engine allocates and frees buffers for
/// every packet it handles (docs/benchmarks.md, "Allocators").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // The matches too: they say which settings came from flags or the environment (which
    // outrank the configuration file) and which are defaults.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match &cli.command {
        Some(Command::Token(TokenCommand::Create(args))) => {
            println!("{}", sfu::cli::token_create(args)?);
            Ok(())
        }
        Some(Command::Admin(args)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            println!("{}", runtime.block_on(sfu::cli::admin(args))?);
            Ok(())
        }
        Some(Command::CheckConfig { file }) => {
            match sfu::cli::check_config(file, &cli.run, &matches) {
                Ok(()) => {
                    println!("{}: ok", file.display());
                    Ok(())
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    std::process::exit(1);
                }
            }
        }
        None => serve(cli, matches),
    }
}

/// How often a cluster node says it is alive (it is taken for gone after three missed).
const CLUSTER_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a graceful shutdown waits for rooms to empty.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Engine warnings that say nothing an operator can act on, silenced unless `RUST_LOG` names
/// their target. `rtc_dtls::config`: as the DTLS client (it answers the browser's "actpass"
/// with "active") the engine wants a TLS server name it has no use for, since it checks the
/// peer's certificate against the SDP fingerprint, and warns on every connection that it has
/// none.
const QUIET: &[&str] = &["rtc_dtls::config=error"];

/// The directives of [`QUIET`] that `asked` (RUST_LOG) leaves standing: all but those whose
/// target, or a module above it ("rtc_dtls=debug"), RUST_LOG names.
fn quiet_directives(asked: &str) -> Vec<&'static str> {
    let named: Vec<&str> = asked
        .split(',')
        .filter_map(|d| d.split('=').next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    QUIET
        .iter()
        .copied()
        .filter(|directive| {
            let target = directive.split('=').next().unwrap_or(directive);
            !named
                .iter()
                .any(|n| target == *n || target.starts_with(&format!("{n}::")))
        })
        .collect()
}

fn init_logs(format: LogFormat) {
    let asked = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    for directive in quiet_directives(&asked) {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colour only on a terminal: logs written to a file or a journal stay plain text.
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[tokio::main]
async fn serve(cli: Cli, matches: clap::ArgMatches) -> anyhow::Result<()> {
    init_logs(cli.run.log_format);
    let config = cli.run.load(&matches)?;
    let threads = match config.media_threads {
        0 => None,
        n => Some(
            sfu::media::threads::MediaThreads::start(n)
                .map_err(|e| anyhow::anyhow!("cannot start the media threads: {e}"))?,
        ),
    };
    let mut media_config = match config.udp_port {
        Some(port) => {
            // The shared port's readers run on the first media thread, if there are any.
            let _on_media_thread = threads.as_ref().map(|t| t.first().enter());
            MediaConfig::single_port(config.media_ip(), port, config.public_ip)
                .map_err(|e| anyhow::anyhow!("cannot bind UDP port {port} for media: {e}"))?
        }
        None => MediaConfig::new(config.media_ip(), config.udp_ports(), config.public_ip),
    };
    media_config.gso = !config.no_gso;
    media_config.policy = sfu::media_room::Policy {
        loudest_audio: config.audio_streams,
        last_n: config.last_n,
        ..Default::default()
    };
    if let Some(mux) = &media_config.udp_mux {
        tracing::info!(port = mux.port(), "media on one UDP port");
    }
    let media = std::sync::Arc::new(match threads {
        Some(threads) => sfu::media::MediaServer::with_threads(media_config, threads),
        None => sfu::media::MediaServer::new(media_config),
    });
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let signaling_config = SignalingConfig {
        token_secret: config
            .token_secret
            .clone()
            .map(String::into_bytes)
            .unwrap_or_default(),
        insecure_dev_tokens: config.dev,
        max_participants_per_room: config.max_participants_per_room,
        max_application_bytes: config.max_application_bytes,
        max_connections_per_ip: config.max_connections_per_ip,
        trusted_proxies: config.trusted_proxies.clone(),
        ice_servers: config
            .ice_servers
            .iter()
            .map(|url| IceServer {
                urls: vec![url.clone()],
                username: None,
                credential: None,
            })
            .collect(),
        turn: config
            .turn_secret
            .as_ref()
            .map(|s| TurnCredentials::new(s.as_bytes().to_vec(), TURN_CREDENTIAL_TTL)),
        ..SignalingConfig::default()
    };
    let signaling = if config.cluster.is_empty() {
        SignalingServer::with_media(signaling_config, media.clone())?
    } else {
        let cluster = Cluster::connect(ClusterConfig {
            nats_urls: config.cluster.clone(),
            node_id: config.node_id(),
            // The address bound (a port of 0 in the configuration is the one the OS chose).
            public_url: config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{addr}")),
            media_address: config.public_ip.unwrap_or(config.media_ip()).to_string(),
            heartbeat: CLUSTER_HEARTBEAT,
        })
        .await?;
        SignalingServer::clustered(signaling_config, Some(media.clone()), cluster)?
    };
    let app = http::router(&config, &signaling, media);
    // Tests and scripts read this line to find the port.
    println!("sfu listening on {scheme}://{addr}");
    tracing::info!(%addr, scheme, dev = config.dev, demo = ?config.demo_dir(), "serving");
    let draining = signaling.clone();
    let stopping = async move {
        stop_signal().await;
        tracing::info!(
            "shutting down: handing rooms over (in a cluster), telling participants goodbye"
        );
        draining.drain().await;
        if !draining.drained(DRAIN_TIMEOUT).await {
            tracing::warn!(
                left = draining.stats().participants,
                "rooms did not drain in time"
            );
        }
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = sfu::tls::load(cert, key).await?;
            sfu::tls::keep_fresh(tls.clone(), cert.clone(), key.clone());
            Some(tls)
        }
        _ => None,
    };
    let limits = sfu::serve::TcpLimits {
        // A participant's WebSocket and as many plain requests (the page, its files) again.
        per_address: config.max_connections_per_ip.saturating_mul(2),
        exempt: config.trusted_proxies.clone(),
    };
    sfu::serve::serve(listener, app, tls, limits, stopping).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quiet_directives;

    #[test]
    fn engine_noise_is_filtered_unless_rust_log_names_it() {
        let quiet = vec!["rtc_dtls::config=error"];
        assert_eq!(quiet_directives(""), quiet);
        assert_eq!(
            quiet_directives("warn"),
            quiet,
            "a level alone names no target"
        );
        assert_eq!(quiet_directives("info,sfu=debug"), quiet);
        assert_eq!(
            quiet_directives("rtc_dtls_extra=debug"),
            quiet,
            "another crate"
        );
        assert!(
            quiet_directives("rtc_dtls=debug").is_empty(),
            "a module above it"
        );
        assert!(quiet_directives("warn, rtc_dtls::config=warn").is_empty());
    }
}
