//! Driving `wrk`: the rotating request script and its one-line summary, parsed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};

/// wrk script: rotates over the request paths listed in the file given after `--`, and prints
/// one machine-readable summary line when done (latencies in microseconds).
pub const SCRIPT: &str = include_str!("rotate.lua");

/// One endpoint under load and its p99 target, if any.
pub struct Endpoint {
    /// What the report calls it.
    pub name: String,
    /// Request paths, requested in turn.
    pub paths: Vec<String>,
    /// The p99 latency target, in milliseconds, and the offered load (requests/s) it is judged at.
    pub target: Option<(f64, u64)>,
}

/// How wrk loads an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// wrk threads.
    pub threads: u32,
    /// Connections, shared among the threads.
    pub connections: u32,
    /// Offered requests/s over all threads; `None` sends as fast as responses come back.
    pub rate: Option<u64>,
}

/// What wrk's `done` hook reported.
#[derive(Debug, Default)]
pub struct WrkSummary {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub non2xx: u64,
    pub socket_errors: u64,
}

pub fn parse_summary(stdout: &str) -> anyhow::Result<WrkSummary> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_SUMMARY "))
        .context("wrk printed no summary line")?;
    let mut s = WrkSummary::default();
    for pair in line.split_whitespace() {
        let (key, value) = pair.split_once('=').context("malformed summary")?;
        let value: u64 = value.parse().with_context(|| format!("{key}={value}"))?;
        match key {
            "requests" => s.requests = value,
            "duration_us" => s.duration_us = value,
            "bytes" => s.bytes = value,
            "p50_us" => s.p50_us = value,
            "p99_us" => s.p99_us = value,
            "max_us" => s.max_us = value,
            "non2xx" => s.non2xx = value,
            "socket_errors" => s.socket_errors = value,
            _ => {}
        }
    }
    ensure!(s.requests > 0, "wrk completed no request");
    Ok(s)
}

/// Loads `endpoint` with wrk as `load` says for `duration_s`; the script must be at
/// `dir/rotate.lua`. `verbose` echoes wrk's own report.
pub fn run(
    load: Load,
    duration_s: u64,
    verbose: bool,
    dir: &Path,
    addr: SocketAddr,
    endpoint: &Endpoint,
) -> anyhow::Result<WrkSummary> {
    let list = dir.join(format!("{}.paths", endpoint.name.replace('/', "_")));
    std::fs::write(&list, endpoint.paths.join("\n") + "\n")?;
    let output = Command::new("wrk")
        .arg(format!("--threads={}", load.threads))
        .arg(format!("--connections={}", load.connections))
        .arg(format!("--duration={}s", duration_s))
        .arg("--latency")
        .arg("--script")
        .arg(dir.join("rotate.lua"))
        .arg(format!("http://{addr}"))
        .arg("--")
        .arg(&list)
        // The script paces each thread; 0 is unpaced.
        .arg(
            load.rate
                .map_or(0, |r| r.div_ceil(u64::from(load.threads.max(1))))
                .to_string(),
        )
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if verbose || !output.status.success() {
        println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    ensure!(output.status.success(), "wrk failed: {}", output.status);
    parse_summary(&stdout)
}
