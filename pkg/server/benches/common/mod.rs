//! Pieces shared by the server's benches: the binary's allocator, the emulator on an ephemeral
//! port, bounded waits and figure lines ([`harness`]), and Astrolabe's ingest pipeline as `astrolabe serve` runs it ([`pipeline`]).
#![allow(dead_code, unused_imports)]

pub mod harness;
pub mod pipeline;

pub use harness::{Emulator, Versus, block_on, figure, within};
pub use pipeline::Pipeline;
