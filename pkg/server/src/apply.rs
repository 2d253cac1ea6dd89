//! The apply loop: the graph's single writer. Takes ingest events in batches, applies each batch
//! under one write lock, then hands the resulting changes to persistence and the graph events to
//! the change feed, outside the lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_api::{ChangeFeed, Heartbeat};
use astrolabe_graph::{GraphEvent, SharedGraph, now_ms};
use astrolabe_informers::IngestEvent;
use astrolabe_model::{Change, ChangeOp};
use astrolabe_persist::{ChangeSender, Gap, SendOutcome};

use crate::durable_feed::Publisher;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

/// Largest number of ingest events applied under one write lock. Readers never wait for it (they
/// use the graph's other copy, see `SharedGraph`); small enough that what readers see lags the
/// ingest by well under a millisecond of apply work, large enough to amortise the lock, the
/// catch-up of the other copy and the hand-offs.
pub const MAX_BATCH: usize = 256;

/// Liveness fails when the apply loop has not touched its heartbeat for this long.
pub const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(30);

/// How often the loop touches the heartbeat when no events arrive.
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// The apply loop's metrics.
#[derive(Clone)]
pub struct ApplyMetrics {
    batches: IntCounter,
    /// `astrolabe_apply_changes_total{op="upsert"}`, resolved once.
    upserts: IntCounter,
    /// `astrolabe_apply_changes_total{op="delete"}`, resolved once.
    deletes: IntCounter,
    batch_seconds: Histogram,
    reconciled: IntCounterVec,
}

impl ApplyMetrics {
    /// Registers the metrics.
    ///
    /// # Errors
    /// When they are already registered.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let batches = IntCounter::new(
            "astrolabe_apply_batches_total",
            "Ingest batches applied to the graph",
        )?;
        let changes = IntCounterVec::new(
            Opts::new(
                "astrolabe_apply_changes_total",
                "Changes applied to the graph, by operation",
            ),
            &["op"],
        )?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "astrolabe_apply_batch_seconds",
                "Time a batch holds the graph's write lock (its copy caught up with the readers' first)",
            )
            .buckets(vec![
                1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
            ]),
        )?;
        let reconciled = IntCounterVec::new(
            Opts::new(
                "astrolabe_reconcile_deletions_total",
                "Resources deleted because a relist no longer contained them",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(batches.clone()))?;
        registry.register(Box::new(changes.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(reconciled.clone()))?;
        Ok(ApplyMetrics {
            batches,
            upserts: changes.with_label_values(&["upsert"]),
            deletes: changes.with_label_values(&["delete"]),
            batch_seconds,
            reconciled,
        })
    }
}

/// The loop's outputs.
pub struct ApplyOutputs {
    /// The graph.
    pub graph: SharedGraph,
    /// Live graph events for SSE clients (once durable, when the server writes a log).
    pub feed: Publisher,
    /// Persistence, when enabled.
    pub persist: Option<ChangeSender<Change>>,
    /// Where watch gaps go to be recorded with the log, when history is kept.
    pub gaps: Option<mpsc::Sender<Gap>>,
    /// Touched after every batch and on idle ticks (liveness).
    pub heartbeat: Heartbeat,
    /// Metrics.
    pub metrics: ApplyMetrics,
}

impl ApplyOutputs {
    /// Outputs to `graph` and `feed` (and `persist`, when given), with a fresh heartbeat of
    /// [`HEARTBEAT_MAX_AGE`] and the loop's metrics registered in `registry`.
    ///
    /// # Errors
    /// When the metrics are already registered.
    pub fn new(
        graph: SharedGraph,
        feed: ChangeFeed,
        persist: Option<ChangeSender<Change>>,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        Ok(ApplyOutputs {
            graph,
            feed: Publisher::Now(feed),
            persist,
            gaps: None,
            heartbeat: Heartbeat::new(HEARTBEAT_MAX_AGE),
            metrics: ApplyMetrics::register(registry)?,
        })
    }
}

/// Runs until every sender of `rx` is dropped (the informers stopped), after applying what was
/// queued. Returns the number of changes applied.
pub async fn run(mut rx: mpsc::Receiver<IngestEvent>, out: ApplyOutputs) -> u64 {
    let mut buf: Vec<IngestEvent> = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(IDLE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut applied = 0u64;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                applied += apply_batch(&mut buf, &out);
            }
            _ = tick.tick() => out.heartbeat.touch(),
        }
    }
    out.heartbeat.touch();
    applied
}

/// Applies one batch; returns how many changes it made.
pub fn apply_batch(events: &mut Vec<IngestEvent>, out: &ApplyOutputs) -> u64 {
    let ts = now_ms();
    let mut changes: Vec<Change> = Vec::with_capacity(events.len());
    let mut graph_events: Vec<GraphEvent> = Vec::new();
    let started = Instant::now();
    {
        let mut g = out.graph.write();
        for event in events.drain(..) {
            match event {
                IngestEvent::Upsert(r) => {
                    changes.extend(g.apply(ChangeOp::Upsert(Arc::new(r)), ts, &mut graph_events));
                }
                IngestEvent::Delete { uid, key } => {
                    changes.extend(g.apply(ChangeOp::Delete { uid, key }, ts, &mut graph_events));
                }
                IngestEvent::ListStarted { .. } => {}
                IngestEvent::Gap {
                    kind,
                    namespace,
                    from_ms,
                    to_ms,
                    reason,
                } => {
                    let gap = Gap {
                        kind: Some(kind.qualified().into_owned()),
                        namespace: namespace.map(|n| n.to_string()),
                        from_ms,
                        to_ms,
                        reason,
                    };
                    // Never blocks the loop: a full queue (the log unreachable for long) loses
                    // the gap, which is logged.
                    if let Some(gaps) = &out.gaps
                        && gaps.try_send(gap).is_err()
                    {
                        tracing::warn!(%kind, from_ms, to_ms, "a watch gap could not be queued for recording");
                    }
                }
                IngestEvent::ListCompleted {
                    kind,
                    namespace,
                    seen,
                } => {
                    for uid in g.stale(&kind, namespace.as_deref(), &seen) {
                        let Some(key) = g.get(&uid).map(|r| r.key()) else {
                            continue;
                        };
                        tracing::info!(%key, %uid, "deleted while unwatched: not in the relist");
                        out.metrics
                            .reconciled
                            .with_label_values(&[kind.as_str()])
                            .inc();
                        changes.extend(g.apply(
                            ChangeOp::Delete { uid, key },
                            ts,
                            &mut graph_events,
                        ));
                    }
                }
            }
        }
    }
    out.metrics
        .batch_seconds
        .observe(started.elapsed().as_secs_f64());
    out.metrics.batches.inc();
    let n = changes.len() as u64;
    let upserts = changes
        .iter()
        .filter(|c| matches!(c.op, ChangeOp::Upsert(_)))
        .count() as u64;
    out.metrics.upserts.inc_by(upserts);
    out.metrics.deletes.inc_by(n - upserts);
    if let Some(persist) = &out.persist {
        for change in changes {
            // Never blocks; a full buffer marks the log diverged (counted and logged by
            // persistence) and a full snapshot supersedes it when Redis answers.
            let _: SendOutcome = persist.send(change);
        }
    }
    if !graph_events.is_empty() {
        out.feed.publish(graph_events);
    }
    out.heartbeat.touch();
    n
}
