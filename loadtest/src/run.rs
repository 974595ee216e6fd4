//! One load run: fill the rooms at the ramp rate, let the meeting run (with churn and a late
//! joiner), sample the SFU, then everyone leaves and the bots' measurements are merged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::IndexedRandom;
use signaling_token::{self as token, Claims};

use crate::LoadError;
use crate::bot::{Bot, BotSpec, JOIN_TIMEOUT, RunContext, Speaking};
use crate::media::TestMedia;
use crate::report::{OwnCost, Report, SfuSample};
use crate::scenario::Scenario;
use crate::sfu_process::{LocalSfu, cpu_time, metric};
use crate::stats::{BotStats, Commits, SendLog};

/// Where the SFU is.
#[derive(Debug)]
pub enum Target {
    /// Started here; its CPU and memory are measured.
    Local(LocalSfu, String),
    /// Running elsewhere: `host:port` (several: the nodes of a cluster, the first one's
    /// figures reported), and how bots get tokens: the organiser's tokens by bot name, else
    /// minted with the token secret, else from its /dev/token.
    Remote {
        addrs: Vec<String>,
        secret: Option<String>,
        tokens: Option<Tokens>,
    },
}

/// Tokens handed out for the bots, by the name each admits (`<name> <token>` per line, as an
/// organiser's backend would issue them for a server whose secret the tester does not hold).
#[derive(Debug, Default)]
pub struct Tokens(std::collections::HashMap<String, String>);

impl Tokens {
    /// Reads `<name> <token>` lines (blank lines and `#` comments skipped).
    pub fn parse(text: &str) -> Result<Tokens, LoadError> {
        let mut map = std::collections::HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, token)) = line.rsplit_once(char::is_whitespace) else {
                return Err(LoadError::Tokens(format!(
                    "line {}: not `<name> <token>`",
                    n + 1
                )));
            };
            let name = name.trim();
            if map.insert(name.to_owned(), token.to_owned()).is_some() {
                return Err(LoadError::Tokens(format!(
                    "line {}: a second token for {name}",
                    n + 1
                )));
            }
        }
        Ok(Tokens(map))
    }

    fn get(&self, name: &str) -> Result<String, LoadError> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| LoadError::Tokens(format!("no token for bot {name}")))
    }
}

impl Target {
    /// Every node's `host:port`.
    fn addrs(&self) -> Vec<String> {
        match self {
            Target::Local(sfu, _) => vec![sfu.addr.clone()],
            Target::Remote { addrs, .. } => addrs.clone(),
        }
    }

    fn addr(&self) -> &str {
        match self {
            Target::Local(sfu, _) => &sfu.addr,
            Target::Remote { addrs, .. } => addrs.first().map_or("", String::as_str),
        }
    }

    async fn token(&self, room: &str, identity: &str) -> Result<String, LoadError> {
        if let Target::Remote {
            tokens: Some(tokens),
            ..
        } = self
        {
            return tokens.get(identity);
        }
        let secret = match self {
            Target::Local(_, secret) => Some(secret.as_str()),
            Target::Remote { secret, .. } => secret.as_deref(),
        };
        match secret {
            Some(secret) => Ok(token::mint(
                &Claims::new(room, identity, token::DEFAULT_MAX_LIFETIME),
                secret.as_bytes(),
            )?),
            None => {
                let path = format!(
                    "/dev/token?room={}&identity={}",
                    query_text(room),
                    query_text(identity)
                );
                let (status, body) = crate::sfu_process::http_get(self.addr(), &path).await?;
                if status != 200 {
                    return Err(LoadError::Sfu(format!(
                        "GET /dev/token: {status} (pass --token-secret for a server not in dev mode)"
                    )));
                }
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| LoadError::Sfu(format!("GET /dev/token: {e}")))?;
                v["token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| LoadError::Sfu("GET /dev/token: no token in the answer".into()))
            }
        }
    }

    fn local(&self) -> Option<&LocalSfu> {
        match self {
            Target::Local(sfu, _) => Some(sfu),
            Target::Remote { .. } => None,
        }
    }
}

/// `text` as a URL query value.
fn query_text(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

struct Room {
    name: String,
    bots: Vec<Bot>,
    /// Bots that left (churn), with what they measured.
    gone: Vec<BotStats>,
    next: usize,
}

fn spec_for(
    scenario: &Scenario,
    room: &Room,
    index: usize,
    publishes: bool,
    late: bool,
) -> BotSpec {
    let publishing = room
        .bots
        .iter()
        .filter(|b| b.spec.audio || b.spec.video)
        .count();
    BotSpec {
        room: room.name.clone(),
        name: scenario.bot_name(index),
        token: String::new(),
        audio: publishes,
        video: publishes && !scenario.audio_only,
        screen: publishes && index < scenario.screens,
        layers: scenario.layers,
        tiles: scenario.tiles.map(|n| (n, scenario.tile_height)),
        speaks: match scenario.speakers {
            Some(speakers) => Speaking::InTurn {
                index,
                of: scenario.participants,
                speakers,
            },
            None => Speaking::Always,
        },
        expected_publishers: publishing,
        late,
    }
}

/// A new bot in `room`: a publisher if `publishes` says so, by default the first
/// `publishers` to join and the late joiner.
async fn join(
    ctx: &RunContext,
    target: &Target,
    room: &mut Room,
    scenario: &Scenario,
    late: bool,
    publishes: Option<bool>,
) -> Result<(), LoadError> {
    let index = room.next;
    room.next += 1;
    let publishes = publishes.unwrap_or(index < scenario.publishers() || late);
    let mut spec = spec_for(scenario, room, index, publishes, late);
    spec.token = target.token(&spec.room, &spec.name).await?;
    let bot = Bot::join(ctx, spec).await?;
    room.bots.push(bot);
    Ok(())
}

/// Something the run does `per_minute` times a minute (never, at 0), the first a period
/// after the start: churn, network drops, network changes.
struct Schedule {
    every: Option<Duration>,
    next: Option<Instant>,
}

impl Schedule {
    fn new(per_minute: f64, start: Instant) -> Self {
        let every = (per_minute > 0.0).then(|| Duration::from_secs_f64(60.0 / per_minute));
        Schedule {
            every,
            next: every.map(|d| start + d),
        }
    }

    /// Whether it is due at `now` (never while `quiet`); if so, the next one is a period on.
    fn due(&mut self, now: Instant, quiet: bool) -> bool {
        match (self.next, self.every) {
            (Some(at), Some(every)) if now >= at && !quiet => {
                self.next = Some(at + every);
                true
            }
            _ => false,
        }
    }
}

/// Does `act` to one bot picked at random in each room (never a late joiner, measured
/// apart); how many times it took.
fn one_per_room(rooms: &[Room], act: impl Fn(&Bot) -> bool) -> usize {
    rooms
        .iter()
        .filter(|room| {
            let candidates: Vec<&Bot> = room.bots.iter().filter(|b| !b.spec.late).collect();
            candidates
                .choose(&mut rand::rng())
                .is_some_and(|bot| act(bot))
        })
        .count()
}

/// How long, beyond a drop itself, before the end of the meeting drops stop.
const DROP_QUIET_END: Duration = Duration::from_secs(10);

/// How long before the end of the meeting churn stops.
const CHURN_QUIET_END: Duration = Duration::from_secs(3);

/// Runs `scenario` against `target`.
pub async fn run(scenario: &Scenario, target: Target, progress: bool) -> Result<Report, LoadError> {
    scenario.validate()?;
    let media = Arc::new(TestMedia::load()?);
    let ctx = RunContext {
        url: format!("ws://{}/ws", target.addr()),
        urls: target
            .addrs()
            .iter()
            .map(|a| format!("ws://{a}/ws"))
            .collect(),
        next_url: Default::default(),
        media,
        log: Arc::new(SendLog::default()),
        commits: Arc::new(Commits::default()),
        start: Instant::now(),
        synthetic: scenario.synthetic,
        verify: scenario.verify,
        chat: scenario.chat,
        drops: scenario.drops > 0.0,
    };
    let mut rooms: Vec<Room> = (0..scenario.rooms)
        .map(|r| Room {
            name: scenario.room_name(r),
            bots: Vec::new(),
            gone: Vec::new(),
            next: 0,
        })
        .collect();
    let total = scenario.rooms * scenario.room_size();
    let bar = if progress {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    // Fill the rooms at the ramp rate.
    bar.set_message("joining");
    let gap = Duration::from_secs_f64(1.0 / scenario.ramp);
    for _ in 0..scenario.participants {
        for room in rooms.iter_mut() {
            let t = Instant::now();
            join(&ctx, &target, room, scenario, false, None).await?;
            bar.inc(1);
            tokio::time::sleep(gap.saturating_sub(t.elapsed())).await;
        }
    }
    let settled = wait_joined(&rooms, JOIN_TIMEOUT).await;
    if !settled {
        bar.println("warning: not every bot heard every publisher within 30 s");
    }

    // The meeting: sample the SFU each second; churn and the late joiner happen meanwhile.
    let addr = target.addr().to_owned();
    let start_cpu = target.local().map(|s| s.cpu_time()).transpose()?;
    let start_packets = metric(&addr, "sfu_forwarded_packets_total")
        .await
        .unwrap_or(0.0);
    let start_received = metric(&addr, "sfu_received_packets_total")
        .await
        .unwrap_or(0.0);
    let own_start = cpu_time(std::process::id()).ok();
    let received_start = packets_received(&rooms);
    let meeting_start = Instant::now();
    let mut samples = Vec::new();
    let mut churn = Schedule::new(scenario.churn, meeting_start);
    let late_at = meeting_start + scenario.duration / 4;
    let mut late_done = !scenario.late_joiner;
    let mut last_cpu = start_cpu;
    let mut last_packets = start_packets;
    let mut churned = 0usize;
    let mut drop_schedule = Schedule::new(scenario.drops, meeting_start);
    let mut drops = 0usize;
    let mut change_schedule = Schedule::new(scenario.network_changes, meeting_start);
    let mut network_changes = 0usize;
    let mut squeeze_schedule = Schedule::new(scenario.squeezes, meeting_start);
    bar.set_message("meeting");
    while meeting_start.elapsed() < scenario.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let packets = metric(&addr, "sfu_forwarded_packets_total")
            .await
            .unwrap_or(last_packets);
        let cpu = target.local().map(|s| s.cpu_time()).transpose()?;
        samples.push(SfuSample {
            second: meeting_start.elapsed().as_secs_f64(),
            packets_per_second: packets - last_packets,
            cpu_percent: match (cpu, last_cpu) {
                (Some(c), Some(l)) => Some((c - l).as_secs_f64() * 100.0),
                _ => None,
            },
            rss_mb: target.local().map(|s| s.rss_mb()).transpose()?,
        });
        (last_cpu, last_packets) = (cpu, packets);
        if !late_done && Instant::now() >= late_at {
            for room in rooms.iter_mut() {
                join(&ctx, &target, room, scenario, true, None).await?;
                bar.inc(1);
            }
            late_done = true;
        }
        // No churn in the last seconds: a rejoiner needs time to get in and be measured.
        let ending = meeting_start.elapsed() + CHURN_QUIET_END >= scenario.duration;
        if churn.due(Instant::now(), ending) {
            for room in rooms.iter_mut() {
                let candidates: Vec<usize> = (0..room.bots.len())
                    .filter(|&i| !room.bots[i].spec.late)
                    .collect();
                if let Some(&i) = candidates.choose(&mut rand::rng()) {
                    // Someone leaves and someone comes back in the same role.
                    let bot = room.bots.swap_remove(i);
                    let publishes = bot.spec.audio || bot.spec.video;
                    room.gone.push(bot.leave().await);
                    join(&ctx, &target, room, scenario, false, Some(publishes)).await?;
                    churned += 1;
                }
            }
        }
        // No drop that could not be back and measured before the end.
        let late_for_drops =
            meeting_start.elapsed() + scenario.drop_for + DROP_QUIET_END >= scenario.duration;
        if drop_schedule.due(Instant::now(), late_for_drops) {
            drops += one_per_room(&rooms, |bot| bot.drop_network(scenario.drop_for));
        }
        // No squeeze whose climb back could not be measured before the end.
        let late_for_squeezes =
            meeting_start.elapsed() + scenario.squeeze_for + DROP_QUIET_END >= scenario.duration;
        if squeeze_schedule.due(Instant::now(), late_for_squeezes) {
            one_per_room(&rooms, |bot| {
                bot.squeeze(scenario.squeeze_to, scenario.squeeze_for)
            });
        }
        let late_for_changes = meeting_start.elapsed() + DROP_QUIET_END >= scenario.duration;
        if change_schedule.due(Instant::now(), late_for_changes) {
            network_changes += one_per_room(&rooms, Bot::change_network);
        }
        let received: u64 = rooms
            .iter()
            .flat_map(|r| r.bots.iter())
            .map(|b| b.stats().frames_received)
            .sum();
        bar.set_message(format!("meeting, {received} frames decrypted"));
    }
    let end_packets = metric(&addr, "sfu_forwarded_packets_total")
        .await
        .unwrap_or(last_packets);
    let end_received = metric(&addr, "sfu_received_packets_total")
        .await
        .unwrap_or(start_received);
    let end_cpu = target.local().map(|s| s.cpu_time()).transpose()?;
    let forwarded = end_packets - start_packets;
    let sfu_cpu_us_per_packet = match (start_cpu, end_cpu) {
        (Some(a), Some(b)) if forwarded > 0.0 => Some((b - a).as_secs_f64() * 1e6 / forwarded),
        _ => None,
    };
    let sfu_peak_rss_mb = target.local().map(|s| s.peak_rss_mb()).transpose()?;
    let own = own_start
        .zip(cpu_time(std::process::id()).ok())
        .map(|(a, b)| b.saturating_sub(a));
    let received = packets_received(&rooms) - received_start;
    let loadtest = OwnCost {
        packets_per_second: received as f64 / meeting_start.elapsed().as_secs_f64(),
        cpu_us_per_packet: own
            .filter(|_| received > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / received as f64),
    };
    bar.finish_and_clear();

    let mut all = Vec::new();
    for room in rooms {
        all.extend(room.gone);
        for bot in room.bots {
            all.push(bot.leave().await);
        }
    }
    Ok(Report::build(
        scenario,
        &all,
        &ctx.commits,
        ctx.start,
        churned,
        drops,
        network_changes,
        forwarded / scenario.duration.as_secs_f64(),
        (end_received - start_received) / scenario.duration.as_secs_f64(),
        sfu_cpu_us_per_packet,
        sfu_peak_rss_mb,
        loadtest,
        samples,
        ctx.media.video_kbps(),
    ))
}

/// RTP packets the bots received so far, those that left included.
fn packets_received(rooms: &[Room]) -> u64 {
    rooms
        .iter()
        .map(|r| {
            r.gone.iter().map(|b| b.packets_received).sum::<u64>()
                + r.bots
                    .iter()
                    .map(|b| b.stats().packets_received)
                    .sum::<u64>()
        })
        .sum()
}

/// Waits until every bot heard every publisher it expected, or `limit` passes.
async fn wait_joined(rooms: &[Room], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if rooms.iter().flat_map(|r| r.bots.iter()).all(|b| b.joined()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_comes_due_once_a_period_and_not_while_quiet() {
        let start = Instant::now();
        let mut s = Schedule::new(6.0, start); // every 10 s
        assert!(!s.due(start + Duration::from_secs(9), false));
        assert!(!s.due(start + Duration::from_secs(10), true), "quiet");
        assert!(s.due(start + Duration::from_secs(10), false));
        assert!(!s.due(start + Duration::from_secs(15), false), "once");
        assert!(s.due(start + Duration::from_secs(20), false));
        assert!(!Schedule::new(0.0, start).due(start + Duration::from_secs(3600), false));
    }

    #[test]
    fn a_tokens_file_gives_each_bot_its_own_and_says_what_is_wrong() {
        let t = Tokens::parse("# for the standup\nguest-0 eyJ.a.b\n\nguest 1 eyJ.c.d\n").unwrap();
        assert_eq!(t.get("guest-0").unwrap(), "eyJ.a.b");
        assert_eq!(
            t.get("guest 1").unwrap(),
            "eyJ.c.d",
            "names may hold spaces"
        );
        assert!(matches!(t.get("guest-2"), Err(LoadError::Tokens(m)) if m.contains("guest-2")));
        assert!(
            matches!(Tokens::parse("lonely"), Err(LoadError::Tokens(m)) if m.contains("line 1"))
        );
        assert!(
            Tokens::parse("a x\na y\n").is_err(),
            "two tokens for one bot"
        );
    }
}
