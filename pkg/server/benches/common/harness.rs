//! The binary's allocator, a two-worker runtime, and the emulator, a bounded wait and figure
//! lines from `astrolabe_testkit`, shared with the other crates' benches and tests.

use std::future::Future;

use anyhow::Result;

/// The binary's allocator (mimalloc), so that every bench that includes this module measures
/// what the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The emulator on a free port (the tests' fixture).
pub use astrolabe_testkit::Emulator;
/// Figure lines and the bounded wait, shared with the other crates' benches.
pub use astrolabe_testkit::bench::{Versus, figure, within};

/// The number in environment variable `name`, else `default`.
///
/// # Errors
/// When the variable is set to something else than a number.
pub fn env_u64(name: &str, default: u64) -> Result<u64> {
    use anyhow::Context as _;
    std::env::var(name).ok().map_or(Ok(default), |v| {
        v.parse().with_context(|| format!("{name}={v}"))
    })
}

/// Applies `op` to `graph` now and sends the change it made to the writer, as the apply loop
/// does.
pub fn apply_and_send(
    graph: &astrolabe_graph::SharedGraph,
    sender: &astrolabe_persist::ChangeSender<astrolabe_model::Change>,
    op: astrolabe_model::ChangeOp,
) {
    if let Some(change) = graph.write().apply(op, astrolabe_model::now_ms(), &mut ()) {
        let _ = sender.send(change);
    }
}
