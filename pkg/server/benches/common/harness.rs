//! The emulator on an ephemeral port, a bounded wait, and figure lines (from
//! `astrolabe_persist::testing`, shared with the persist bench).

use std::future::Future;

use anyhow::Result;
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

/// Figure lines and the bounded wait, shared with the other crates' benches.
pub use astrolabe_persist::testing::{Versus, figure, within};
