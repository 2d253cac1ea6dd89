//! Test support shared by the workspace's tests and benches (a dev-dependency only):
//!
//! - [`wait`]: bounded waits for a condition ([`eventually`], [`until`]) or a future ([`within`]),
//!   never a fixed sleep; a timeout names what was awaited and the last state observed.
//! - [`redis`]: a real `redis-server` on a free port with the repository's `redis.conf`, with
//!   TLS when asked.
//! - [`cluster`]: a real Redis Cluster of masters ([`RedisCluster`]), with a password or TLS
//!   when asked.
//! - [`tls`]: a private CA with server and client certificates made for one test.
//! - [`emulator`]: the Kubernetes API emulator served on a free port, with a `kube::Client` and a
//!   kubeconfig file for it.
//! - [`kubectl`]: the real kubectl against a served API (the emulator), in a scratch directory.
//! - [`bench`]: the figure lines the benches print (parsed by scripts) and their Pod churn.

pub mod bench;
pub mod cluster;
pub mod emulator;
pub mod kubectl;
pub mod redis;
pub mod sentinel;
pub mod sse;
pub mod tls;
pub mod wait;

pub use cluster::RedisCluster;
pub use emulator::Emulator;
pub use kubectl::Kubectl;
pub use redis::RedisServer;
pub use sentinel::Sentinels;
pub use tls::TestPki;
pub use wait::{eventually, until, within};

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// # Errors
/// When no socket can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
