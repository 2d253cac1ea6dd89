//! The health task: pings Redis for readiness detail, checks the type of the store's keys, and
//! asks for the superseding snapshot once Redis answers when it was down at start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use astrolabe_persist::{KeyRole, PersistMetrics, RedisLog, SnapshotRequester};

/// How often the health task pings Redis.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Pings `log` every [`HEALTH_INTERVAL`] and keeps `connected` up to date, and the damaged-key
/// gauge of `metrics` too (a key put right is no longer named while nothing writes to it);
/// when `supersede`, the first answer requests a full snapshot. Runs until aborted.
pub(crate) async fn health_loop(
    log: RedisLog,
    connected: Arc<AtomicBool>,
    mut supersede: bool,
    snapshots: SnapshotRequester,
    metrics: PersistMetrics,
) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        tick.tick().await;
        let up = tokio::time::timeout(HEALTH_INTERVAL, log.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        let was = connected.swap(up, Ordering::AcqRel);
        if up != was {
            if up {
                tracing::info!("redis answers again");
            } else {
                tracing::warn!("redis unreachable: serving from memory, buffering changes");
            }
        }
        if up
            && let Ok(Ok(wrong)) =
                tokio::time::timeout(HEALTH_INTERVAL, log.wrong_type_keys()).await
        {
            for role in KeyRole::ALL {
                let damaged = wrong.contains(&role);
                if metrics.is_damaged(role) != damaged {
                    if damaged {
                        tracing::error!(
                            key = role.label(),
                            "a key of the store holds another redis type"
                        );
                    } else {
                        tracing::info!(key = role.label(), "a key of the store is sound again");
                    }
                    metrics.set_damaged(role, damaged);
                }
            }
        }
        if up && supersede {
            tracing::info!("redis answers: writing a full snapshot to supersede the old log");
            snapshots.request();
            supersede = false;
        }
    }
}
