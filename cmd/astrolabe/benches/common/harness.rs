//! The emulator on an ephemeral port, a bounded wait and figure lines.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use astrolabe_kubesim::{Sim, serve};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs `fut` to completion on a runtime with two workers (the machine the figures are
/// taken on has two cores).
///
/// # Errors
/// When the runtime cannot be built, or `fut` fails.
pub fn block_on(fut: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(fut)
}

/// Runs `fut`, failing with `what` after `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .with_context(|| format!("timed out after {limit:?} waiting for {what}"))
}

/// The emulator served on 127.0.0.1:0 until dropped.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: CancellationToken,
}

impl Emulator {
    /// Serve `sim` on an ephemeral port.
    pub async fn start(sim: Sim) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(sim, listener, shutdown.clone()));
        Ok(Self { url, shutdown })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How a figure compares with its baseline.
pub struct Versus<'a> {
    /// Figure / baseline.
    pub ratio: f64,
    /// Name of the baseline.
    pub baseline: &'a str,
    /// The target, as text (`>= 0.8x`).
    pub target: &'a str,
    /// Whether the target is met.
    pub met: bool,
}

/// Print one figure line: name, value, unit and, when given, the comparison.
pub fn figure(name: &str, value: f64, unit: &str, versus: Option<Versus<'_>>) {
    let value = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    };
    match versus {
        Some(v) => println!(
            "{name:<36} {value:>12} {unit:<11} {:>6.2}x {} (target {}) {}",
            v.ratio,
            v.baseline,
            v.target,
            if v.met { "MET" } else { "MISSED" }
        ),
        None => println!("{name:<36} {value:>12} {unit}"),
    }
}
