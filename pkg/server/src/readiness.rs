//! Readiness: the graph is hydrated (recovered, or nothing to recover), the first discovery of
//! the API server's kinds is done and every watched kind has completed its first list. A kind the API server forbids (403) is reported but does not
//! hold readiness back: the graph is as complete as RBAC allows, and waiting would never end.

use std::sync::atomic::{AtomicBool, Ordering};

use astrolabe_api::{GraphReadiness, KindReadiness, ReadinessReport, ReadinessSource};
use astrolabe_informers::SyncStatus;

use crate::status::{Origin, PersistStatus};

/// The process's readiness, assembled from the informers' sync state and persistence.
pub struct AppReadiness {
    hydrated: AtomicBool,
    origin: Origin,
    sync: SyncStatus,
    persistence: Option<PersistStatus>,
}

impl AppReadiness {
    /// Readiness for a graph that came from `origin`; not hydrated until [`Self::set_hydrated`].
    pub fn new(origin: Origin, sync: SyncStatus, persistence: Option<PersistStatus>) -> Self {
        AppReadiness {
            hydrated: AtomicBool::new(false),
            origin,
            sync,
            persistence,
        }
    }

    /// Marks the graph as loaded (recovery finished).
    pub fn set_hydrated(&self) {
        self.hydrated.store(true, Ordering::Release);
    }
}

impl ReadinessSource for AppReadiness {
    fn report(&self) -> ReadinessReport {
        let kinds: Vec<KindReadiness> = self
            .sync
            .report()
            .into_iter()
            .map(|k| KindReadiness {
                kind: k.kind,
                mode: k.mode.to_owned(),
                access: k.access.to_owned(),
                state: k.state.to_owned(),
                listed: k.listed,
                forbidden: k.forbidden,
                retrying: k.retrying,
                error: k.last_error,
            })
            .collect();
        let hydrated = self.hydrated.load(Ordering::Acquire);
        let discovering = self.sync.is_discovering();
        let synced = !discovering && kinds.iter().all(|k| k.listed || k.forbidden);
        let source = match (synced, self.origin) {
            (true, _) => "synced",
            // The graph's origin first: a recovered graph is served while discovery waits.
            (false, Origin::Recovered) => "recovered, not yet synced",
            (false, _) if discovering => "discovering the API server's kinds",
            (false, _) => "empty, syncing",
        };
        ReadinessReport {
            ready: hydrated && synced,
            graph: GraphReadiness {
                hydrated,
                source: source.to_owned(),
            },
            kinds,
            persistence: self.persistence.as_ref().map(PersistStatus::report),
        }
    }
}

/// Whether the watchers have listed every kind once (a kind the API server forbids counts as
/// listed, as for readiness), and kinds are registered at all: the graph is as complete as
/// the cluster lets it be.
pub fn graph_complete(sync: &SyncStatus) -> bool {
    let kinds = sync.report();
    !sync.is_discovering() && !kinds.is_empty() && kinds.iter().all(|k| k.listed || k.forbidden)
}

/// Readiness that changes source: a replica's is the follower's until it leads, then the
/// leader's ([`AppReadiness`]).
pub struct ReadinessSwitch {
    current: parking_lot::RwLock<std::sync::Arc<dyn ReadinessSource>>,
}

impl ReadinessSwitch {
    /// Readiness from `first` until [`Self::set`].
    pub fn new(first: std::sync::Arc<dyn ReadinessSource>) -> Self {
        ReadinessSwitch {
            current: parking_lot::RwLock::new(first),
        }
    }

    /// Readiness from `next` from now on.
    pub fn set(&self, next: std::sync::Arc<dyn ReadinessSource>) {
        *self.current.write() = next;
    }
}

impl ReadinessSource for ReadinessSwitch {
    fn report(&self) -> ReadinessReport {
        let current = self.current.read().clone();
        current.report()
    }
}

/// A follower's readiness: the log loaded, and at most `max_lag` behind it.
pub struct FollowerReadiness {
    /// How far the follower is.
    pub state: std::sync::Arc<crate::replica::FollowerState>,
    /// The most it may be behind and ready.
    pub max_lag: std::time::Duration,
}

impl ReadinessSource for FollowerReadiness {
    fn report(&self) -> ReadinessReport {
        let ready = self.state.ready(self.max_lag);
        ReadinessReport {
            ready,
            graph: GraphReadiness {
                hydrated: self.state.loaded(),
                source: self.state.describe(),
            },
            kinds: Vec::new(),
            persistence: None,
        }
    }
}
