//! `loadtest`: E2EE bots against an SFU, with a summary, a JSON report and an HTML page.
//!
//! `loadtest --participants 6 --duration 20s --json report.json` runs one local room of six
//! bots that all publish audio and video, against an sfu it starts itself.
//! `loadtest --participants 50 --audio-only --ramp 10 --verify 2` plays a larger room: each bot
//! decrypts two of the tracks it receives and counts the rest; `--synthetic` sends random
//! frames of the same sizes instead, to load the SFU and not the bots.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use loadtest::run::{Target, Tokens, run};
use loadtest::scenario::{Scenario, parse_duration, preset};
use loadtest::sfu_process::{LocalSfu, default_binary};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "E2EE load test: bots that are real MLS + SFrame participants"
)]
struct Cli {
    /// Scenario file (TOML); flags override it.
    #[arg(long, conflicts_with = "preset")]
    scenario: Option<PathBuf>,
    /// A scenario that comes with the tool (loadtest/scenarios/NAME.toml): meeting-50,
    /// meeting-100, webinar-200, soak; flags override it.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Rooms [default: 1].
    #[arg(long)]
    rooms: Option<usize>,
    /// The room to join (with --rooms N: the stem of their names, ROOM-0 ...) [default: load-0,
    /// load-1, ...]; give a meeting's room to put bots in it.
    #[arg(long)]
    room: Option<String>,
    /// What the bots are called: NAME-0, NAME-1, ... [default: bot].
    #[arg(long)]
    name: Option<String>,
    /// Participants per room [default: 6].
    #[arg(long)]
    participants: Option<usize>,
    /// Publishers per room; the rest listen [default: all].
    #[arg(long)]
    publishers: Option<usize>,
    /// Publish audio only.
    #[arg(long)]
    audio_only: bool,
    /// How many publishers per room also share a screen (the test video as a second stream).
    #[arg(long, value_name = "N")]
    screens: Option<usize>,
    /// Meeting length once everyone is in, e.g. 20s, 2m [default: 20s].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Joins per second while the rooms fill [default: 5].
    #[arg(long)]
    ramp: Option<f64>,
    /// Leaves and rejoins per minute per room [default: 0].
    #[arg(long)]
    churn: Option<f64>,
    /// Network drops per minute per room: a bot's network goes away and comes back
    /// [default: 0].
    #[arg(long)]
    drops: Option<f64>,
    /// Network changes per minute per room: a bot's media moves to another address while its
    /// signaling stays up, and it restarts ICE [default: 0].
    #[arg(long)]
    network_changes: Option<f64>,
    /// How long each drop lasts, e.g. 5s [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    drop_for: Option<Duration>,
    /// Squeezes per minute per room: a bot's downlink narrows to --squeeze-to for
    /// --squeeze-for and widens again; the report times the climb back to a higher layer
    /// [default: 0].
    #[arg(long)]
    squeezes: Option<f64>,
    /// The squeezed downlink, kbit/s [default: 300].
    #[arg(long, value_name = "KBPS")]
    squeeze_to: Option<u32>,
    /// How long each squeeze lasts, e.g. 10s [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    squeeze_for: Option<Duration>,
    /// Synthetic media: random payloads of the test media's sizes and rates, each with its
    /// sender, counter and send time; no SFrame (the bots still join the MLS group).
    #[arg(long, conflicts_with = "verify")]
    synthetic: bool,
    /// Each bot decrypts and checks the frames of K of the tracks it receives and counts the
    /// others by their SFrame header [default: all].
    #[arg(long, value_name = "K")]
    verify: Option<usize>,
    /// The camera in layers: three spatial and three temporal, as a Chromium page sends it.
    #[arg(long)]
    layers: bool,
    /// Each bot shows N of the others' videos (and none of the rest), and tells the SFU so
    /// [default: it says nothing, and gets every video whole].
    #[arg(long, value_name = "N")]
    tiles: Option<usize>,
    /// The height of the bots' tiles, in device pixels [default: 180].
    #[arg(long, value_name = "PX")]
    tile_height: Option<u16>,
    /// K bots of each room speak at a time, in turns of 10 s; the others are silent (Opus
    /// DTX) [default: everyone speaks].
    #[arg(long, value_name = "K")]
    speakers: Option<usize>,
    /// Each bot (listeners too) sends a chat message this often (e.g. 5s); the report gives their
    /// delivery latency.
    #[arg(long, value_parser = parse_duration, value_name = "EVERY")]
    chat: Option<Duration>,
    /// No late joiner.
    #[arg(long)]
    no_late_joiner: bool,
    /// The SFU's signaling address (host:port or http://host:port); default: start one here.
    /// Repeat for the nodes of a cluster: bots are spread over them in turn, and a bot whose
    /// node goes reconnects to the next.
    #[arg(long)]
    url: Vec<String>,
    /// Token secret of the remote SFU (default: ask its /dev/token).
    #[arg(long, env = "SFU_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Tokens for the bots of a remote SFU, one `<bot name> <token>` per line (as its
    /// organiser issues them): for a server whose secret you do not hold.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "token_secret",
        requires = "url"
    )]
    tokens: Option<PathBuf>,
    /// The sfu binary to start [default: the one next to this binary].
    #[arg(long)]
    sfu_bin: Option<PathBuf>,
    /// A flag for the sfu started here (repeat for several), e.g. --sfu-arg=--udp-port
    /// --sfu-arg=0 for single-port mode.
    #[arg(long = "sfu-arg", allow_hyphen_values = true)]
    sfu_args: Vec<String>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Threads the bots run on (1 leaves the other cores to a local sfu).
    #[arg(long, default_value_t = 1, value_name = "N")]
    bot_threads: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn scenario(cli: &Cli) -> anyhow::Result<Scenario> {
    let mut s = match &cli.scenario {
        Some(path) => Scenario::from_toml(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| path.display().to_string())?,
        None => match &cli.preset {
            Some(name) => preset(name).map_err(anyhow::Error::msg)?,
            None => Scenario::default(),
        },
    };
    if let Some(v) = cli.rooms {
        s.rooms = v;
    }
    if cli.room.is_some() {
        s.room.clone_from(&cli.room);
    }
    if let Some(v) = &cli.name {
        s.name.clone_from(v);
    }
    if let Some(v) = cli.participants {
        s.participants = v;
    }
    if cli.publishers.is_some() {
        s.publishers = cli.publishers;
    }
    s.audio_only |= cli.audio_only;
    if let Some(v) = cli.screens {
        s.screens = v;
    }
    if let Some(v) = cli.duration {
        s.duration = v;
    }
    if let Some(v) = cli.ramp {
        s.ramp = v;
    }
    if let Some(v) = cli.churn {
        s.churn = v;
    }
    if let Some(v) = cli.drops {
        s.drops = v;
    }
    if let Some(v) = cli.network_changes {
        s.network_changes = v;
    }
    if let Some(v) = cli.drop_for {
        s.drop_for = v;
    }
    if let Some(v) = cli.squeezes {
        s.squeezes = v;
    }
    if let Some(v) = cli.squeeze_to {
        s.squeeze_to = v;
    }
    if let Some(v) = cli.squeeze_for {
        s.squeeze_for = v;
    }
    s.synthetic |= cli.synthetic;
    if cli.verify.is_some() {
        s.verify = cli.verify;
    }
    if cli.chat.is_some() {
        s.chat = cli.chat;
    }
    s.layers |= cli.layers;
    if cli.tiles.is_some() {
        s.tiles = cli.tiles;
    }
    if let Some(v) = cli.tile_height {
        s.tile_height = v;
    }
    if cli.speakers.is_some() {
        s.speakers = cli.speakers;
    }
    if cli.no_late_joiner {
        s.late_joiner = false;
    }
    s.validate()?;
    Ok(s)
}

/// mimalloc rather than glibc's allocator: the engine allocates and frees a few buffers per
/// packet, and glibc's `malloc`/`free` were 9% of the bots' time (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // By default one thread for every bot: no wake-ups across threads per packet, and the
    // other core stays the local sfu's.
    let runtime = match cli.bot_threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(load(cli))
}

async fn load(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let scenario = scenario(&cli)?;
    let target = match cli.url.first() {
        Some(_) => Target::Remote {
            addrs: cli
                .url
                .iter()
                .map(|url| {
                    url.trim_start_matches("http://")
                        .trim_start_matches("ws://")
                        .trim_end_matches('/')
                        .trim_end_matches("/ws")
                        .to_owned()
                })
                .collect(),
            secret: cli.token_secret.clone(),
            tokens: match &cli.tokens {
                Some(path) => Some(Tokens::parse(
                    &std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )?),
                None => None,
            },
        },
        None => {
            let bin = cli.sfu_bin.clone().or_else(default_binary).context(
                "no sfu binary next to loadtest: build it (cargo build --release -p sfu) or pass --sfu-bin",
            )?;
            let secret: String = (0..32)
                .map(|_| format!("{:x}", rand::random::<u8>() % 16))
                .collect();
            let mut args = cli.sfu_args.clone();
            if !args
                .iter()
                .any(|a| a.starts_with("--max-participants-per-room"))
            {
                // The sfu's default cap (100) would refuse the larger presets' bots; twice the
                // room leaves space for a rejoining bot whose old connection lingers.
                args.push(format!(
                    "--max-participants-per-room={}",
                    scenario.room_size() * 2
                ));
            }
            Target::Local(LocalSfu::start(&bin, &secret, &args)?, secret)
        }
    };
    let report = run(&scenario, target, !cli.quiet).await?;
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.html {
        std::fs::write(path, report.html())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
