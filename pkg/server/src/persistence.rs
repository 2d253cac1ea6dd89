//! Persistence wiring: recovery into the graph at start, then the writer, the snapshotter and
//! the health task; [`Persistence::shutdown`] flushes and takes the final snapshot.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use astrolabe_api::history::HistorySource;
use astrolabe_graph::{SharedGraph, snapshot_sliced};
use astrolabe_informers::SyncStatus;
use astrolabe_model::Change;
use astrolabe_persist::{
    ChangeSender, ErrorChain, EventLog, Gap, LastVersions, MemoryLog, PersistError, PersistMetrics,
    RedisConfig, RedisLog, ShrinkGuard, SnapshotBlob, SnapshotEncoder, Snapshotter,
    SnapshotterConfig, SnapshotterHandle, Writer, WriterConfig, WriterHandle, copy_then_encode,
};
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::PersistConfig;
use crate::health::{LastPingFailure, health_loop};
use crate::history::LogHistory;
use crate::recovery::{Hydrated, RECOVERY_DEADLINE, hydrate};
use crate::status::{Origin, PersistStatus};

/// What can go wrong while starting or stopping persistence.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// The persistence metrics could not be registered.
    #[error("registering persistence metrics failed")]
    RegisterMetrics(#[source] PersistError),
    /// The Redis connection could not be configured (malformed URL, invalid cluster name).
    #[error("configuring the redis connection failed")]
    Configure(#[source] PersistError),
    /// The final flush of the event log failed.
    #[error("flushing the event log failed")]
    Flush(#[source] PersistError),
    /// The final snapshot failed.
    #[error("writing the final snapshot failed")]
    FinalSnapshot(#[source] PersistError),
}

/// Running persistence tasks: the writer and the snapshotter over the event log (Redis, or the
/// in-memory log that keeps history when persistence is off), and the history read from it.
pub struct Persistence {
    /// Where the apply loop sends changes.
    pub sender: ChangeSender<Change>,
    /// Readiness detail of Redis; `None` for the in-memory log.
    pub status: Option<PersistStatus>,
    /// The log read as history; `None` when the server keeps none.
    pub history: Option<Arc<dyn HistorySource>>,
    /// Where watch gaps go to be recorded with the log; `None` when no history is kept.
    pub gaps: Option<mpsc::Sender<Gap>>,
    writer: WriterHandle,
    snapshotter: SnapshotterHandle,
    health: Option<JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Persistence {
    /// The highest sequence up to which every change is durable in the log.
    #[must_use]
    pub fn acked_seq(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer.acked_seq()
    }

    /// Cancelled once the log refused a write because another writer claimed it: this process
    /// no longer leads.
    #[must_use]
    pub fn deposed(&self) -> CancellationToken {
        self.writer.deposed()
    }

    /// Flushes the writer, takes the final snapshot and stops. Call after the apply loop has
    /// stopped, so every change has been sent.
    ///
    /// # Errors
    /// When the final flush or snapshot failed (the error says which).
    pub async fn shutdown(self) -> Result<(), PersistenceError> {
        drop(self.sender);
        self.cancel.cancel();
        if let Some(health) = &self.health {
            health.abort();
        }
        let writer = self.writer.join().await;
        let snapshot = self.snapshotter.join().await;
        writer.map_err(PersistenceError::Flush)?;
        snapshot.map_err(PersistenceError::FinalSnapshot)?;
        Ok(())
    }
}

/// The Redis log `config` describes.
///
/// # Errors
/// [`PersistenceError::Configure`] for a malformed URL, an invalid cluster name, or Sentinel,
/// Redis Cluster or TLS settings that do not fit.
pub fn connect(config: &PersistConfig) -> Result<RedisLog, PersistenceError> {
    let connection = config
        .redis
        .connection_info()
        .map_err(PersistenceError::Configure)?;
    let mut redis = RedisConfig::new(connection, config.cluster_name.clone());
    redis.retention = config.history.retention();
    redis.sentinel = config
        .redis
        .sentinel()
        .map_err(PersistenceError::Configure)?;
    redis.redis_cluster = config
        .redis
        .cluster()
        .map_err(PersistenceError::Configure)?;
    RedisLog::new(&redis).map_err(PersistenceError::Configure)
}

/// Recovers the graph from Redis into `graph` and starts the writer and snapshotter.
/// `complete` says whether the graph is complete (every kind listed once): until it is, a
/// snapshot that would shrink the persisted state is skipped ([`ShrinkGuard`]).
///
/// # Errors
/// Only for invalid configuration (a malformed Redis URL) or metrics registration; Redis being
/// down is not an error (see [`Origin::Unreachable`]).
pub async fn start(
    config: &PersistConfig,
    registry: &Registry,
    graph: &SharedGraph,
    sync: &SyncStatus,
    shutdown_grace: Duration,
    complete: impl Fn() -> bool + Send + Sync + 'static,
) -> Result<(Persistence, Origin), PersistenceError> {
    let metrics = PersistMetrics::register(registry).map_err(PersistenceError::RegisterMetrics)?;
    let log = connect(config)?;
    let hydrated = hydrate(&log, &metrics, graph, RECOVERY_DEADLINE).await;
    start_recovered(
        config,
        metrics,
        log,
        hydrated,
        graph,
        sync,
        shutdown_grace,
        complete,
    )
    .await
}

/// The writer, the snapshotter, the health task and history over `log`, whose contents
/// `graph` holds as `hydrated` describes ([`start`] after its recovery; a replica after it
/// followed the log and claimed it).
#[allow(clippy::too_many_arguments)]
pub async fn start_recovered(
    config: &PersistConfig,
    metrics: PersistMetrics,
    log: RedisLog,
    hydrated: Hydrated,
    graph: &SharedGraph,
    sync: &SyncStatus,
    shutdown_grace: Duration,
    complete: impl Fn() -> bool + Send + Sync + 'static,
) -> Result<(Persistence, Origin), PersistenceError> {
    let origin = hydrated.origin;
    // Readers are served from the recovered graph already; the copy the apply loop writes
    // first is cloned from it off the start-up path (see `SharedGraph::replace`).
    let catch_up = graph.clone();
    tokio::task::spawn_blocking(move || catch_up.catch_up());
    let (start_seq, recovered_resources, remembered) = {
        let g = graph.read();
        let seq = if origin == Origin::Unreachable {
            0
        } else {
            g.seq()
        };
        // After a clean recovery the graph is the state the log describes, which readers of
        // the log rebuild too: a patch of it resolves.
        let remembered = if origin == Origin::Recovered && !hydrated.problems {
            LastVersions::of(g.resources())
        } else {
            LastVersions::default()
        };
        (seq, g.node_count() as u64, remembered)
    };

    let complete: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(complete);
    let shrink_guard = ShrinkGuard::new(
        {
            let complete = complete.clone();
            move || complete()
        },
        recovered_resources,
    );
    let pipeline = Pipeline::spawn(
        log.clone(),
        config,
        graph,
        &metrics,
        Start {
            seq: start_seq,
            snapshot_seq: hydrated.snapshot_seq,
            shrink_guard: Some(shrink_guard),
            snapshot_on_shutdown: true,
            remembered,
        },
        shutdown_grace,
    );
    let Pipeline {
        sender,
        writer,
        snapshotter,
        cancel,
    } = pipeline;
    if hydrated.problems {
        // The log had holes or corrupt parts: write down a clean state at once.
        snapshotter.request_snapshot();
    }
    let log_for_history = log.clone();
    let connected = Arc::new(AtomicBool::new(origin != Origin::Unreachable));
    let ping_failure = Arc::new(LastPingFailure::default());
    let keys = log.keys().clone();
    let health = tokio::spawn(health_loop(
        log,
        connected.clone(),
        ping_failure.clone(),
        origin == Origin::Unreachable,
        snapshotter.requester(),
        metrics.clone(),
    ));
    let status = PersistStatus {
        connected,
        ping_failure,
        sender: sender.clone(),
        metrics,
        origin,
        damage: hydrated.damage,
        keys,
        fallback: hydrated.fallback,
    };
    let (history, gaps) = if config.history.enabled() {
        let gaps = spawn_gap_recorder(log_for_history.clone(), cancel.clone());
        let down_since = match hydrated.last_change_ms {
            Some(t) => Some(t),
            None => log_for_history
                .snapshot_meta()
                .await
                .ok()
                .flatten()
                .map(|m| m.time_ms()),
        };
        if origin == Origin::Recovered
            && let Some(since) = down_since
        {
            record_downtime(gaps.clone(), since, complete, cancel.clone());
        }
        let history: Arc<dyn HistorySource> = Arc::new(
            LogHistory::new(log_for_history, graph.clone(), config.history.cache_mib)
                .with_open_gaps(sync.clone()),
        );
        (Some(history), Some(gaps))
    } else {
        (None, None)
    };
    Ok((
        Persistence {
            sender,
            status: Some(status),
            history,
            gaps,
            writer,
            snapshotter,
            health: Some(health),
            cancel,
        },
        origin,
    ))
}

/// The in-memory log that keeps history when persistence is off: the same writer and
/// snapshotter as Redis (snapshots are its checkpoints), no recovery, no final snapshot.
/// `None` when history is off too.
pub fn start_memory(
    config: &PersistConfig,
    registry: &Registry,
    graph: &SharedGraph,
    sync: &SyncStatus,
    shutdown_grace: Duration,
) -> Option<(Persistence, MemoryLog)> {
    let history = &config.history;
    if !history.enabled() {
        return None;
    }
    let log = MemoryLog::new(history.retention());
    export_log_bytes(&log, registry);
    // The Redis metrics say nothing of a log in memory: not registered.
    let metrics = PersistMetrics::unregistered().ok()?;
    let Pipeline {
        sender,
        writer,
        snapshotter,
        cancel,
    } = Pipeline::spawn(
        log.clone(),
        config,
        graph,
        &metrics,
        Start {
            seq: graph.read().seq(),
            snapshot_seq: 0,
            shrink_guard: None,
            snapshot_on_shutdown: false,
            remembered: LastVersions::default(),
        },
        shutdown_grace,
    );
    let history: Arc<dyn HistorySource> = Arc::new(
        LogHistory::new(log.clone(), graph.clone(), history.cache_mib).with_open_gaps(sync.clone()),
    );
    let gaps = spawn_gap_recorder(log.clone(), cancel.clone());
    Some((
        Persistence {
            sender,
            status: None,
            history: Some(history),
            gaps: Some(gaps),
            writer,
            snapshotter,
            health: None,
            cancel,
        },
        log,
    ))
}

/// How often `astrolabe_history_log_bytes` is refreshed.
const LOG_BYTES_EVERY: Duration = Duration::from_secs(5);

/// Exports the in-memory log's size as `astrolabe_history_log_bytes`, refreshed every
/// [`LOG_BYTES_EVERY`] (a gauge already registered, by a second server in one process, is not
/// exported again).
fn export_log_bytes(log: &MemoryLog, registry: &Registry) {
    let Ok(gauge) = prometheus::IntGauge::new(
        "astrolabe_history_log_bytes",
        "Bytes the in-memory history log holds: changes and compressed checkpoints",
    ) else {
        return;
    };
    if registry.register(Box::new(gauge.clone())).is_err() {
        return;
    }
    let log = log.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LOG_BYTES_EVERY);
        loop {
            tick.tick().await;
            gauge.set(i64::try_from(log.bytes()).unwrap_or(i64::MAX));
        }
    });
}

/// Where the writer and the snapshotter start.
struct Start {
    /// The sequence the log holds up to.
    seq: u64,
    /// The sequence the committed snapshot covers.
    snapshot_seq: u64,
    shrink_guard: Option<ShrinkGuard>,
    snapshot_on_shutdown: bool,
    /// What the writer starts remembering: the recovered state, when the log describes it
    /// exactly (updates of it are then written as patches).
    remembered: LastVersions,
}

/// The writer and the snapshotter over one log.
struct Pipeline {
    sender: ChangeSender<Change>,
    writer: WriterHandle,
    snapshotter: SnapshotterHandle,
    cancel: CancellationToken,
}

/// Gaps waiting to be recorded (the log unreachable for long loses the newest, logged).
const GAP_QUEUE: usize = 1_024;

/// Records the gaps the returned sender takes with `log`, retrying each (with backoff) until
/// it is written or `cancel` fires.
fn spawn_gap_recorder<L: EventLog + Clone>(log: L, cancel: CancellationToken) -> mpsc::Sender<Gap> {
    let (tx, mut rx) = mpsc::channel::<Gap>(GAP_QUEUE);
    tokio::spawn(async move {
        loop {
            let gap = tokio::select! {
                () = cancel.cancelled() => return,
                gap = rx.recv() => match gap {
                    Some(gap) => gap,
                    None => return,
                },
            };
            let mut delay = Duration::from_millis(200);
            while let Err(e) = log.record_gap(&gap).await {
                tracing::warn!(error = %ErrorChain(&e), "recording a gap failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            tracing::info!(kind = gap.kind.as_deref().unwrap_or("every kind"), from_ms = gap.from_ms, to_ms = gap.to_ms, reason = %gap.reason, "gap recorded");
        }
    });
    tx
}

/// Records, once the graph is complete again after a restart, that the server watched nothing
/// from `since` (its log's last change) until then.
fn record_downtime(
    gaps: mpsc::Sender<Gap>,
    since: i64,
    complete: Arc<dyn Fn() -> bool + Send + Sync>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if complete() {
                break;
            }
        }
        let gap = Gap {
            kind: None,
            namespace: None,
            from_ms: since,
            to_ms: astrolabe_model::now_ms(),
            reason: "server down: from its last durable change until its watches listed again"
                .to_owned(),
        };
        let _ = gaps.send(gap).await;
    });
}

impl Pipeline {
    fn spawn<L: EventLog + Clone>(
        log: L,
        config: &PersistConfig,
        graph: &SharedGraph,
        metrics: &PersistMetrics,
        start: Start,
        shutdown_grace: Duration,
    ) -> Pipeline {
        let source_graph = graph.clone();
        // Keeps each part's compressed frame while its resources do not change (snapshots do not
        // overlap, so the lock is never contended).
        let encoder = std::sync::Mutex::new(SnapshotEncoder::default());
        let source = Arc::new(move || -> astrolabe_persist::Result<SnapshotBlob> {
            // Copy the Arcs a slice at a time, each under a short read lock, at normal priority;
            // encode after, at background priority. After a panic the encoder is still sound: it
            // reuses a kept part only when its members are the very same resources.
            let mut encoder = encoder
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            copy_then_encode(|| snapshot_sliced(&source_graph), &mut encoder)
        });
        let cancel = CancellationToken::new();
        let (sender, writer) = Writer::spawn_remembering(
            log.clone(),
            source.clone(),
            WriterConfig {
                channel_capacity: config.writer_buffer.max(1),
                max_batch: config.batch_size.max(1),
                linger: config.batch_linger,
                shutdown_grace,
                start_seq: start.seq,
                shrink_guard: start.shrink_guard.clone(),
                ..WriterConfig::default()
            },
            metrics.clone(),
            cancel.clone(),
            start.remembered,
        );
        let snapshotter = Snapshotter::spawn(
            log,
            source,
            SnapshotterConfig {
                interval: config.snapshot_interval.max(Duration::from_secs(1)),
                every_changes: config.snapshot_every_changes.max(1),
                retain_changes: config.stream_retention,
                snapshot_on_shutdown: start.snapshot_on_shutdown,
                shutdown_grace,
                start_seq: start.snapshot_seq,
                shrink_guard: start.shrink_guard,
            },
            writer.acked_seq(),
            metrics.clone(),
            cancel.clone(),
        );
        Pipeline {
            sender,
            writer,
            snapshotter,
            cancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use astrolabe_persist::RedisTarget;
    use astrolabe_testkit::RedisServer;

    use super::*;

    /// Starts persistence on a fresh redis-server after `damage` (an inline command) ran
    /// against it, and waits (10 s at most) until the readiness detail holds each of `named`.
    async fn names_after(damage: &str, named: &[&str]) {
        let redis = RedisServer::start().unwrap();
        let reply = redis.command_line(damage).unwrap();
        assert!(!reply.starts_with('-'), "{reply}");
        let config = PersistConfig {
            enabled: true,
            redis: RedisTarget {
                url: Some(redis.url()),
                ..RedisTarget::default()
            },
            ..PersistConfig::default()
        };
        let graph = SharedGraph::new();
        let (persistence, _) = start(
            &config,
            &Registry::new(),
            &graph,
            &SyncStatus::new(),
            Duration::from_secs(1),
            || true,
        )
        .await
        .unwrap();
        astrolabe_testkit::eventually("the damage is named", Duration::from_secs(10), || {
            let status = persistence.status.as_ref().expect("redis has a status");
            let detail = status.report().detail.unwrap_or_default();
            let named = named.iter().all(|n| detail.contains(n));
            async move { if named { Ok(()) } else { Err(detail) } }
        })
        .await;
        persistence.cancel.cancel();
    }

    #[tokio::test]
    async fn readiness_names_a_stream_key_of_another_type() {
        names_after(
            "SET astrolabe:{default}:events garbage",
            &["damaged store: key astrolabe:{default}:events holds another redis type (WRONGTYPE)"],
        )
        .await;
    }

    #[tokio::test]
    async fn readiness_names_a_metadata_key_of_another_type() {
        names_after(
            "SET astrolabe:{default}:snapshot:meta garbage",
            &["damaged store: key astrolabe:{default}:snapshot:meta holds another redis type (WRONGTYPE)"],
        )
        .await;
    }

    #[tokio::test]
    async fn readiness_names_a_previous_record_of_another_type() {
        names_after(
            "SET astrolabe:{default}:snapshot:previous garbage",
            &["damaged store: key astrolabe:{default}:snapshot:previous holds another redis type (WRONGTYPE)"],
        )
        .await;
    }

    #[tokio::test]
    async fn readiness_names_where_a_stream_with_an_implausible_top_went() {
        names_after(
            "XADD astrolabe:{default}:events 18446744073709551000-1 x y",
            &[
                "top sequence 18446744073709551000 is beyond any plausible sequence",
                "renamed to astrolabe:{default}:events:damaged:",
            ],
        )
        .await;
    }
}
