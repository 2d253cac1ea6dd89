//! The health task: pings Redis for readiness detail (connected, or why not: unreachable, or
//! the credentials refused), checks the type of the store's keys, and asks for the superseding
//! snapshot once Redis answers when it was down at start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use astrolabe_persist::{AuthFailure, KeyRole, PersistMetrics, RedisLog, SnapshotRequester};

/// How often the health task pings Redis.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// The authentication failure of the last ping, if Redis refused the credentials.
#[derive(Debug, Default)]
pub(crate) struct LastAuthFailure(Mutex<Option<AuthFailure>>);

impl LastAuthFailure {
    /// The failure the last ping reported.
    pub(crate) fn get(&self) -> Option<AuthFailure> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `failure`, returning the one recorded before.
    fn replace(&self, failure: Option<AuthFailure>) -> Option<AuthFailure> {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            failure,
        )
    }
}

/// Pings `log` every [`HEALTH_INTERVAL`] and keeps `connected` and `auth_failure` up to date,
/// logging each change, and the damaged-key gauge of `metrics` too (a key put right is no longer
/// named while nothing writes to it); when `supersede`, the first answer requests a full
/// snapshot. Runs until aborted.
pub(crate) async fn health_loop(
    log: RedisLog,
    connected: Arc<AtomicBool>,
    auth_failure: Arc<LastAuthFailure>,
    mut supersede: bool,
    snapshots: SnapshotRequester,
    metrics: PersistMetrics,
) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        tick.tick().await;
        let (up, refused) = match tokio::time::timeout(HEALTH_INTERVAL, log.ping()).await {
            Ok(Ok(())) => (true, None),
            Ok(Err(e)) => (false, e.auth_failure()),
            Err(_) => (false, None),
        };
        let was = connected.swap(up, Ordering::AcqRel);
        let had = auth_failure.replace(refused);
        if up != was || refused != had {
            match refused {
                _ if up => tracing::info!("redis answers again"),
                Some(failure) => tracing::error!("{failure}; serving from memory"),
                None => tracing::warn!("redis unreachable: serving from memory, buffering changes"),
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
