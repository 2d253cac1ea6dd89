//! What persistence tells readiness: where the graph came from ([`Origin`]) and the state of
//! Redis and the log ([`PersistStatus`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use astrolabe_api::PersistenceReadiness;
use astrolabe_graph::now_ms;
use astrolabe_model::Change;
use astrolabe_persist::{ChangeSender, Fallback, PersistMetrics};

/// What recovery gave the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from Redis (snapshot and/or stream).
    Recovered,
    /// Nothing persisted yet (empty Redis), or persistence off.
    Fresh,
    /// Redis did not answer: started empty; a full snapshot supersedes the old log once it does.
    Unreachable,
}

/// Persistence state shared with readiness.
#[derive(Clone)]
pub struct PersistStatus {
    pub(crate) connected: Arc<AtomicBool>,
    pub(crate) sender: ChangeSender<Change>,
    pub(crate) metrics: PersistMetrics,
    pub(crate) origin: Origin,
    /// What recovery fell back to when it refused the committed snapshot.
    pub(crate) fallback: Option<Fallback>,
}

impl PersistStatus {
    /// Readiness detail.
    pub fn report(&self) -> PersistenceReadiness {
        let last = self.metrics.snapshot_last_success.get();
        let connected = self.connected.load(Ordering::Acquire);
        let diverged = self.sender.is_diverged();
        let detail = match (connected, diverged, self.origin) {
            (false, _, _) => {
                Some("redis unreachable: serving from memory, buffering changes".to_owned())
            }
            (true, true, _) => Some("log diverged: a full snapshot is pending".to_owned()),
            (true, false, Origin::Unreachable) if last <= 0.0 => Some(
                "redis was down at start: a full snapshot will supersede the old log".to_owned(),
            ),
            _ => None,
        };
        let detail = detail.or_else(|| self.fallback_detail());
        PersistenceReadiness {
            enabled: true,
            connected,
            diverged,
            last_snapshot_age_seconds: (last > 0.0)
                .then(|| (now_ms() as f64 / 1000.0 - last).max(0.0)),
            detail,
        }
    }

    /// That recovery refused the committed snapshot at start, and what it used instead.
    fn fallback_detail(&self) -> Option<String> {
        let used = match self.fallback? {
            Fallback::PreviousSnapshot => "recovered from the previous generation and the stream",
            Fallback::WholeStream => "recovered from the whole stream",
            Fallback::Nothing => "nothing else was complete: started empty",
        };
        Some(format!(
            "the committed snapshot was refused at start; {used}"
        ))
    }
}
