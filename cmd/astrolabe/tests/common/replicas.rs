//! Replica fixtures: `astrolabe serve --leader-election` over a test Redis, the emulator with
//! the Lease's namespace, and who leads.

use std::path::Path;

use astrolabe_testkit::RedisServer;
use serde_json::json;

use super::persist::persist_flags;
use super::{Emulator, Server, eventually};

/// The namespace of the election's Lease.
pub const NAMESPACE: &str = "astrolabe";

/// The generated cluster of `seed` and `size`, with the Lease's namespace.
pub async fn emulator(seed: u64, size: usize) -> Emulator {
    let emu = Emulator::start(seed, size).await;
    emu.sim
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        )
        .unwrap();
    emu
}

/// A replica `id` with persistence to `redis` and the election's `[duration, renew deadline,
/// retry period]`.
pub fn replica(
    emu: &Emulator,
    logs: &Path,
    redis: &RedisServer,
    id: &str,
    lease: [&str; 3],
) -> Server {
    let mut flags = persist_flags(redis);
    flags.extend(
        [
            "--leader-election",
            "--lease-namespace",
            NAMESPACE,
            "--lease-identity",
            id,
            "--lease-duration",
            lease[0],
            "--lease-renew-deadline",
            lease[1],
            "--lease-retry-period",
            lease[2],
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&emu.kubeconfig(), logs, &args)
}

/// Which of `servers` (by their numbers) says it leads, once exactly one does.
pub async fn the_leader(servers: &[(usize, &Server)]) -> usize {
    eventually("exactly one leader", String::new, || async {
        let mut leading = Vec::new();
        for (i, s) in servers {
            if s.try_metric("astrolabe_leader").await == Some(1.0) {
                leading.push(*i);
            }
        }
        (leading.len() == 1).then(|| leading[0])
    })
    .await
}
