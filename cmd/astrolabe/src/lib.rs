//! The `astrolabe` binary's library: flag parsing and the wiring of the crates below it.
//!
//! Layout and data flow (see `docs/` and the workspace README):
//! - [`cli`]: flags and environment variables (clap derive, `env` on every flag).
//! - [`app`]: `serve` — recovery ([`persistence`]), informers → [`apply`] loop → graph → API,
//!   persistence writer and snapshotter, graceful shutdown.
//! - [`apply`]: the graph's single writer.
//! - [`persistence`]: Redis recovery, writer, snapshotter and health wiring.
//! - [`readiness`]: what `/readyz` reports.
//! - [`emulator`]: `demo` and `sim` (the built-in Kubernetes API emulator).
//! - [`snapshot`]: `snapshot export` / `snapshot import`.

pub mod app;
pub mod apply;
pub mod cli;
pub mod emulator;
pub mod persistence;
pub mod readiness;
pub mod snapshot;

/// mimalloc instead of glibc's allocator, for the binary and everything linking this crate
/// (its tests and benches). The ingest path allocates and frees millions of small objects (each
/// decoded Kubernetes object is dropped once it is in the graph); glibc spent ~28% of an initial
/// sync's CPU in malloc/free/consolidate plus ~14% zeroing pages it had given back to the kernel
/// (perf, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
