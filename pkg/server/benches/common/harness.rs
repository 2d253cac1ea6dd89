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
