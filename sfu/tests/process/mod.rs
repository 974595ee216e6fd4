//! The `sfu` binary as its own process, and plain HTTP GETs against it: for the tests and the
//! benchmark that run the server as a user would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
/// A running `sfu`; killed when dropped.
pub struct Running {
    pub child: Child,
    /// `host:port` of its HTTP listener.
    pub addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts the binary on an ephemeral loopback port with `args`, and waits for the line that
/// names its address.
pub fn start_sfu(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SFU_TOKEN_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sfu");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("sfu listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running { child, addr }
}

/// `GET path`; the status and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http(addr, "GET", path, &[]).await
}

/// `METHOD path` with extra headers; the status and the body.
pub async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    sfu::http_client::request(addr, method, path, headers)
        .await
        .expect("HTTP request")
}
