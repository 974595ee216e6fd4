//! The command line as an operator uses it: tokens minted by `sfu token create` are accepted by
//! a server with the same secret (and refused when expired or for another room);
//! `sfu check-config` names each problem of a broken file with its line.

mod process;

use std::process::Command;
use std::time::Duration;

use process::start_sfu;
use signaling_client::{Client, ClientConfig, ClientError};
use signaling_protocol::ErrorCode;

const SECRET: &str = "cli test secret 0123456789";

fn sfu(args: &[&str]) -> std::process::Output {
    sfu_with_env(args, &[])
}

/// Runs the binary with `env` set and no secret or configuration from this environment.
fn sfu_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(args)
        .env_remove("SFU_TOKEN_SECRET")
        .env_remove("SFU_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run sfu")
}

fn mint(room: &str, identity: &str, ttl: &str) -> String {
    let out = sfu(&[
        "token",
        "create",
        "--room",
        room,
        "--identity",
        identity,
        "--ttl",
        ttl,
        "--token-secret",
        SECRET,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

async fn join(addr: &str, room: &str, token: String) -> Result<Client, ClientError> {
    Client::connect(ClientConfig::new(format!("ws://{addr}/ws"), room, token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tokens_are_accepted_and_expired_or_wrong_room_ones_refused() {
    let server = start_sfu(&["--token-secret", SECRET]);
    let ok = join(&server.addr, "standup", mint("standup", "alice", "1h")).await;
    assert!(ok.is_ok(), "{:?}", ok.err());

    let wrong = join(&server.addr, "standup", mint("other", "bob", "1h")).await;
    assert!(
        matches!(
            wrong,
            Err(ClientError::Refused {
                code: ErrorCode::WrongRoom,
                ..
            })
        ),
        "{:?}",
        wrong.err()
    );

    let short = mint("standup", "carol", "1s");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = join(&server.addr, "standup", short).await;
    assert!(
        matches!(
            expired,
            Err(ClientError::Refused {
                code: ErrorCode::TokenExpired,
                ..
            })
        ),
        "{:?}",
        expired.err()
    );

    let forged = sfu(&[
        "token",
        "create",
        "--room",
        "standup",
        "--identity",
        "mallory",
        "--token-secret",
        "another secret 0123456789",
    ]);
    let forged = String::from_utf8(forged.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert!(join(&server.addr, "standup", forged).await.is_err());
}

#[test]
fn token_create_without_a_secret_says_how_to_give_one() {
    let out = sfu(&["token", "create", "--room", "r", "--identity", "i"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-secret"));
}

#[test]
fn check_config_names_every_problem_by_line() {
    let dir = std::env::temp_dir().join(format!("sfu-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"0.0.0.0:9000\"\nlisen = 3\nudp_port_min = \"many\"\ntoken_secret = \"short\"\n",
    )
    .expect("write");
    let out = sfu(&["check-config", bad.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("bad.toml:2: unknown setting `lisen` (known: listen,"),
        "{err}"
    );
    assert!(lines[1].contains("bad.toml:3: `udp_port_min`"), "{err}");
    assert!(
        lines[2].contains("bad.toml:4: token_secret must be at least 16 bytes"),
        "{err}"
    );

    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "token_secret = \"0123456789abcdefgh\"\nudp_port_min = 40000\n",
    )
    .expect("write");
    let out = sfu(&["check-config", good.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The deployment guide's configuration passes `check-config` the way its systemd unit runs
/// it (`ExecStartPre`, with the secret in the environment file), and would not without the
/// secret or with media left on loopback.
#[test]
fn the_deployment_guide_s_configuration_passes_check_config_as_the_unit_runs_it() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deploy.md"))
        .expect("docs/deploy.md");
    let toml: String = guide
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in docs/deploy.md")
        .to_owned();
    assert!(toml.contains("public_ip"), "{toml}");
    let dir = std::env::temp_dir().join(format!("sfu-guide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("sfu.toml");
    std::fs::write(&file, &toml).expect("write");
    let path = file.to_str().expect("path");

    let secret_in_env = [("SFU_TOKEN_SECRET", "a secret of 32 bytes, from env!!")];
    let with_secret = sfu_with_env(&["check-config", path], &secret_in_env);
    assert!(
        with_secret.status.success(),
        "{}",
        String::from_utf8_lossy(&with_secret.stderr)
    );
    let without = sfu(&["check-config", path]);
    assert_eq!(without.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&without.stderr).contains("token_secret"));

    std::fs::write(&file, toml.replace("media_ip", "# media_ip")).expect("write");
    let loopback_media = sfu_with_env(&["check-config", path], &secret_in_env);
    assert_eq!(loopback_media.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&loopback_media.stderr).contains("media_ip"),
        "{}",
        String::from_utf8_lossy(&loopback_media.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
