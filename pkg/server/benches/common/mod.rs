//! Pieces shared by the server's benches: the binary's allocator, the emulator on an ephemeral
//! port, bounded waits and figure lines ([`harness`]), and Astrolabe's ingest pipeline as `astrolabe serve` runs it ([`pipeline`]).
#![allow(dead_code, unused_imports)]

pub mod harness;
pub mod pipeline;

pub use harness::{Emulator, Versus, apply_and_send, block_on, env_u64, figure, within};
pub use pipeline::Pipeline;
