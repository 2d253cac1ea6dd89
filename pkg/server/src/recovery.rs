//! Recovery at start: the graph from Redis (the last snapshot and the stream after it), retried
//! with backoff within a deadline; past it, an empty graph whose sequence starts above anything
//! the old log may hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_graph::{Graph, SharedGraph, now_ms};
use astrolabe_model::codec::Logged;
use astrolabe_model::{Change, ChangeOp, ObjectKey, PatchError, Resource, Uid};
use astrolabe_persist::retry::backoff;
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, ErrorChain, Fallback, KeyRole, PersistMetrics, Recovered, RedisLog,
    recover,
};
use backon::Retryable as _;
use rustc_hash::FxHashMap;

use crate::decoder::DECODER;
use crate::status::Origin;

/// How long start-up waits for Redis before starting with an empty graph.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);
/// First delay between recovery attempts.
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest delay between recovery attempts.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What recovery yields: the graph built from the snapshot and the changes after it.
pub type RecoveredGraph = Recovered<Graph, Logged>;

/// What recovery put into the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hydrated {
    /// Where the graph came from.
    pub origin: Origin,
    /// The sequence the loaded snapshot covers (0: none).
    pub snapshot_seq: u64,
    /// The log had holes, corrupt entries or a refused snapshot: a clean snapshot is due.
    pub problems: bool,
    /// Damage found in the store and worked around, for readiness.
    pub damage: Option<String>,
    /// What recovery fell back to when it refused the committed snapshot.
    pub fallback: Option<Fallback>,
    /// When the last change of the recovered log was applied (Unix milliseconds), when the
    /// log had changes after its snapshot.
    pub last_change_ms: Option<i64>,
}

/// Recovers the graph from `log` into `graph`, trying for at most `deadline`; when Redis does
/// not answer in time, `graph` is empty and its sequence starts at [`epoch_seq`].
pub async fn hydrate(
    log: &RedisLog,
    metrics: &PersistMetrics,
    graph: &SharedGraph,
    deadline: Duration,
) -> Hydrated {
    match recover_with_deadline(log, metrics, deadline).await {
        Some(recovered) => {
            let corrupt = recovered.skipped_corrupt > 0
                || recovered.gaps > 0
                || recovered.snapshot_refused.is_some()
                || recovered.implausible_top.is_some()
                || !recovered.wrong_type.is_empty();
            let damage = damage(&recovered);
            let snapshot_seq = recovered.snapshot_seq;
            let fallback = recovered.fallback;
            let last_change_ms = recovered.tail.iter().map(Logged::ts_ms).max();
            let origin = if recovered.last_seq == 0 {
                Origin::Fresh
            } else {
                Origin::Recovered
            };
            // The stream's contents are unknown: start a new epoch above anything it may hold.
            let new_epoch = recovered.wrong_type.contains(&KeyRole::Events);
            let (mut g, unresolved) = build(recovered);
            let problems = corrupt || unresolved > 0;
            if new_epoch {
                g.advance_seq(epoch_seq());
            }
            graph.replace(g);
            Hydrated {
                origin,
                snapshot_seq,
                problems,
                damage,
                fallback,
                last_change_ms,
            }
        }
        None => {
            // Start a new history above anything the old log may hold: sequence numbers are
            // derived from the clock (see docs/adr/0003-sequence-epochs.md).
            let mut g = Graph::new();
            g.advance_seq(epoch_seq());
            graph.replace(g);
            Hydrated {
                origin: Origin::Unreachable,
                snapshot_seq: 0,
                problems: false,
                damage: None,
                fallback: None,
                last_change_ms: None,
            }
        }
    }
}

/// What readiness says about damage recovery found in the store, naming the keys.
fn damage(recovered: &RecoveredGraph) -> Option<String> {
    let top = recovered.implausible_top?;
    Some(match &recovered.set_aside {
        Some(aside) => format!(
            "damaged store: the event stream's top sequence {top} is beyond any plausible sequence; the stream was renamed to {} and its {} plausible entries written back",
            aside.key, aside.kept
        ),
        None => format!(
            "damaged store: the event stream's top sequence {top} is beyond any plausible sequence"
        ),
    })
}

/// [`recover`] with the server's decoder, retried with backoff until it succeeds or `deadline`
/// has passed (the attempt in progress included); `None` after the deadline.
pub async fn recover_with_deadline(
    log: &RedisLog,
    metrics: &PersistMetrics,
    deadline: Duration,
) -> Option<RecoveredGraph> {
    let mut last_error = None;
    let attempts = (|| recover(log, &DECODER, DEFAULT_REPLAY_PAGE, metrics))
        .retry(backoff(RETRY_MIN, RETRY_MAX))
        .sleep(tokio::time::sleep)
        .notify(|e, delay| {
            tracing::warn!(error = %ErrorChain(&e), ?delay, "recovery failed; retrying");
            last_error = Some(ErrorChain(&e).to_string());
        });
    let outcome = tokio::time::timeout(deadline, attempts).await;
    match outcome {
        Ok(Ok(recovered)) => Some(recovered),
        Ok(Err(e)) => {
            tracing::error!(error = %ErrorChain(&e), "redis unavailable at start: starting with an empty graph; a full snapshot will supersede the old log when redis answers");
            None
        }
        Err(_) => {
            tracing::error!(
                last_error = last_error.as_deref().unwrap_or("none"),
                "recovery from redis did not succeed within {deadline:?}: starting with an empty graph; a full snapshot will supersede the old log when redis answers"
            );
            None
        }
    }
}

/// The graph recovery describes: the snapshot's, then the stream after it replayed; its
/// sequence continues after everything Redis knows of.
pub fn rebuild(recovered: RecoveredGraph) -> Graph {
    rebuild_counting(recovered).0
}

/// [`rebuild`], and how many objects the tail leaves in a state it does not describe: their
/// last change is a patch that could not be applied (their version is not the one it was made
/// against). An earlier patch that does not apply is harmless when a later change of the
/// object does (the snapshot, copied while changes were applied, can hold a later version).
///
/// The changes of one object are folded first (a chain of patches makes one version, changed
/// in place), and only each object's last version is replayed: the graph built from a set of
/// resources does not depend on their order (`docs/adr/0006`).
pub fn rebuild_counting(recovered: RecoveredGraph) -> (Graph, u64) {
    let mut graph = recovered.snapshot.unwrap_or_default();
    let mut folded: FxHashMap<Uid, Folded> = FxHashMap::default();
    for change in recovered.tail {
        let (seq, ts_ms) = (change.seq(), change.ts_ms());
        match change {
            Logged::Change(Change { op, .. }) => {
                folded.insert(
                    op.uid().clone(),
                    Folded {
                        seq,
                        ts_ms,
                        state: match op {
                            ChangeOp::Upsert(r) => State::Shared(r),
                            ChangeOp::Delete { uid, key } => State::Deleted { uid, key },
                        },
                        failed: None,
                    },
                );
            }
            Logged::Patch { patch, .. } => {
                let uid = patch.uid.clone();
                let entry = folded.entry(uid.clone()).or_insert_with(|| Folded {
                    seq,
                    ts_ms,
                    state: graph
                        .get(&uid)
                        .map_or(State::Missing, |r| State::Shared(r.clone())),
                    failed: None,
                });
                (entry.seq, entry.ts_ms) = (seq, ts_ms);
                let outcome = match &mut entry.state {
                    State::Missing | State::Deleted { .. } => Err(PatchError::NoBase { uid }),
                    State::Shared(r) => {
                        let mut version = (**r).clone();
                        let outcome = patch.apply_in_place(&mut version);
                        if outcome.is_ok() {
                            entry.state = State::Owned(version);
                        }
                        outcome
                    }
                    State::Owned(version) => patch.apply_in_place(version),
                };
                entry.failed = outcome.err().map(|e| (seq, e.to_string()));
            }
        }
    }
    let mut folded: Vec<Folded> = folded.into_values().collect();
    folded.sort_unstable_by_key(|f| f.seq);
    let mut unresolved = 0;
    for f in folded {
        if let Some((seq, error)) = &f.failed {
            unresolved += 1;
            tracing::error!(
                seq,
                error,
                "the last change of an object in the event log cannot be applied; the object keeps its earlier version until the relist"
            );
        }
        let op = match f.state {
            State::Shared(r) => Some(ChangeOp::Upsert(r)),
            State::Owned(r) => Some(ChangeOp::Upsert(Arc::new(r))),
            State::Deleted { uid, key } => Some(ChangeOp::Delete { uid, key }),
            State::Missing => None,
        };
        match op {
            Some(op) => graph.replay(&Change {
                seq: f.seq,
                ts_ms: f.ts_ms,
                op,
            }),
            None => graph.advance_to(f.seq, f.ts_ms),
        }
    }
    graph.advance_seq(recovered.last_seq);
    (graph, unresolved)
}

/// An object's changes in the tail, folded.
struct Folded {
    /// Its last change.
    seq: u64,
    ts_ms: i64,
    state: State,
    /// The last change, when it could not be applied.
    failed: Option<(u64, String)>,
}

/// An object's version after its changes so far.
enum State {
    /// A version as the snapshot or a whole change holds it.
    Shared(Arc<Resource>),
    /// A version patched here.
    Owned(Resource),
    /// Removed.
    Deleted { uid: Uid, key: ObjectKey },
    /// Not in the snapshot, and no whole change of it in the tail.
    Missing,
}

/// [`rebuild`], logged.
pub(crate) fn build(recovered: RecoveredGraph) -> (Graph, u64) {
    let started = Instant::now();
    let (snapshot_seq, replayed, superseded) = (
        recovered.snapshot_seq,
        recovered.tail.len(),
        recovered.superseded,
    );
    let (skipped_corrupt, gaps) = (recovered.skipped_corrupt, recovered.gaps);
    let (graph, unresolved) = rebuild_counting(recovered);
    tracing::info!(
        unresolved,
        resources = graph.node_count(),
        edges = graph.edge_count(),
        snapshot_seq,
        replayed,
        superseded,
        skipped_corrupt,
        gaps,
        seq = graph.seq(),
        replay_ms = started.elapsed().as_millis() as u64,
        "graph recovered from redis"
    );
    (graph, unresolved)
}

/// A sequence base derived from the clock: milliseconds since the epoch × 1000. Any log written
/// by an earlier run (which either started at 0 or at its own, earlier epoch base and made fewer
/// than a million changes per second) holds only smaller sequence numbers.
pub fn epoch_seq() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use astrolabe_persist::RedisConfig;
    use astrolabe_testkit::RedisServer;

    use super::*;

    fn log_at(url: &str) -> RedisLog {
        RedisLog::new(&RedisConfig::from_url(url, "recovery").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn recovery_gives_up_at_the_deadline_when_redis_is_down() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = PersistMetrics::unregistered().unwrap();
        let deadline = Duration::from_millis(1500);
        let started = Instant::now();
        let recovered = recover_with_deadline(
            &log_at(&format!("redis://127.0.0.1:{port}")),
            &metrics,
            deadline,
        )
        .await;
        let took = started.elapsed();
        assert!(recovered.is_none());
        assert!(
            took >= deadline && took < deadline + Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn recovery_retries_until_redis_answers() {
        let mut redis = RedisServer::start().unwrap();
        let log = log_at(&redis.url());
        redis.kill9();
        // Until redis is back, its port accepts connections and drops them at once: each
        // attempt fails, and the accepts are counted.
        let refuser = tokio::net::TcpListener::bind(("127.0.0.1", redis.port()))
            .await
            .unwrap();
        let metrics = PersistMetrics::unregistered().unwrap();
        let attempts = tokio::spawn(async move {
            recover_with_deadline(&log, &metrics, Duration::from_secs(30)).await
        });
        let started = Instant::now();
        for _ in 0..3 {
            let accepted = tokio::time::timeout(Duration::from_secs(10), refuser.accept()).await;
            assert!(accepted.is_ok(), "no retry after {:?}", started.elapsed());
        }
        drop(refuser);
        redis.restart().unwrap();
        let recovered = attempts
            .await
            .unwrap()
            .expect("recovered once redis answers");
        assert_eq!(recovered.last_seq, 0);
    }
}
