//! The health task: pings Redis for readiness detail (connected, or why not: unreachable, or
//! the credentials refused), checks the type of the store's keys, and asks for the superseding
//! snapshot once Redis answers when it was down at start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use astrolabe_persist::{
    AuthFailure, ErrorChain, KeyRole, PersistMetrics, RedisLog, SnapshotRequester,
};

/// How often the health task pings Redis.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Why the last ping failed: the credentials refused, or Redis unreachable and the error that
/// says why (a refused TLS certificate, a refused connection, no answer in time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PingFailure {
    /// Redis refused the credentials.
    Refused(AuthFailure),
    /// Redis could not be reached; the error chain.
    Unreachable(String),
    /// No answer within [`HEALTH_INTERVAL`].
    TimedOut,
}

impl PingFailure {
    /// What kind of failure, without its detail: a change of kind is logged, a change of detail
    /// alone is not.
    fn kind(&self) -> &'static str {
        match self {
            Self::Refused(failure) => failure.code(),
            Self::Unreachable(_) => "unreachable",
            Self::TimedOut => "timeout",
        }
    }
}

impl std::fmt::Display for PingFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(failure) => write!(f, "{failure}"),
            Self::Unreachable(why) => write!(f, "redis unreachable ({why})"),
            Self::TimedOut => write!(
                f,
                "redis unreachable (no answer within {} s)",
                HEALTH_INTERVAL.as_secs()
            ),
        }
    }
}

/// The failure of the last ping, `None` when it answered.
#[derive(Debug, Default)]
pub(crate) struct LastPingFailure(Mutex<Option<PingFailure>>);

impl LastPingFailure {
    /// The failure the last ping reported.
    pub(crate) fn get(&self) -> Option<PingFailure> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records `failure`, returning the one recorded before.
    fn replace(&self, failure: Option<PingFailure>) -> Option<PingFailure> {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            failure,
        )
    }
}

/// Pings `log` every [`HEALTH_INTERVAL`] and keeps `connected` and `failure` up to date,
/// logging each change, and the damaged-key gauge of `metrics` too (a key put right is no longer
/// named while nothing writes to it); when `supersede`, the first answer requests a full
/// snapshot. Runs until aborted.
pub(crate) async fn health_loop(
    log: RedisLog,
    connected: Arc<AtomicBool>,
    failure: Arc<LastPingFailure>,
    mut supersede: bool,
    snapshots: SnapshotRequester,
    metrics: PersistMetrics,
) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        tick.tick().await;
        let now = match tokio::time::timeout(HEALTH_INTERVAL, log.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(match e.auth_failure() {
                Some(refused) => PingFailure::Refused(refused),
                None => PingFailure::Unreachable(ErrorChain(&e).to_string()),
            }),
            Err(_) => Some(PingFailure::TimedOut),
        };
        let up = now.is_none();
        let was = connected.swap(up, Ordering::AcqRel);
        let had = failure.replace(now.clone());
        if up != was || now.as_ref().map(PingFailure::kind) != had.as_ref().map(PingFailure::kind) {
            match &now {
                None => tracing::info!("redis answers again"),
                Some(PingFailure::Refused(refused)) => {
                    tracing::error!("{refused}; serving from memory");
                }
                Some(down) => tracing::warn!("{down}: serving from memory, buffering changes"),
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
