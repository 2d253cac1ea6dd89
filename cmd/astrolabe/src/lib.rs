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
