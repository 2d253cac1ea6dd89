//! Wiring of persistence: recovery at start, the writer and the snapshotter, and a health task
//! that watches Redis (for readiness detail, and to write the superseding snapshot when Redis
//! was down at start).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use astrolabe_api::PersistenceReadiness;
use astrolabe_graph::{Graph, SharedGraph, now_ms, snapshot_sliced};
use astrolabe_model::{Change, Resource};
use astrolabe_persist::{
    ChangeSender, DEFAULT_REPLAY_PAGE, Decoder, ModelDecoder, PersistError, PersistMetrics,
    Recovered, RedisConfig, RedisLog, SnapshotBlob, SnapshotEncoder, SnapshotRequester,
    Snapshotter, SnapshotterConfig, SnapshotterHandle, Writer, WriterConfig, WriterHandle,
    copy_then_encode, recover, snapshot_error,
};
use prometheus::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::PersistArgs;

/// How long start-up waits for Redis before starting with an empty graph.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);
/// How often the health task pings Redis.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

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
    connected: Arc<AtomicBool>,
    sender: ChangeSender<Change>,
    metrics: PersistMetrics,
    origin: Origin,
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
        PersistenceReadiness {
            enabled: true,
            connected,
            diverged,
            last_snapshot_age_seconds: (last > 0.0)
                .then(|| (now_ms() as f64 / 1000.0 - last).max(0.0)),
            detail,
        }
    }
}

/// Running persistence tasks.
pub struct Persistence {
    /// Where the apply loop sends changes.
    pub sender: ChangeSender<Change>,
    /// Readiness detail.
    pub status: PersistStatus,
    writer: WriterHandle,
    snapshotter: SnapshotterHandle,
    health: JoinHandle<()>,
    cancel: CancellationToken,
}

impl Persistence {
    /// Flushes the writer, takes the final snapshot and stops. Call after the apply loop has
    /// stopped, so every change has been sent.
    ///
    /// # Errors
    /// When the final flush or snapshot failed (the error says which).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        drop(self.sender);
        self.cancel.cancel();
        self.health.abort();
        let writer = self.writer.join().await;
        let snapshot = self.snapshotter.join().await;
        writer.context("flushing the event log")?;
        snapshot.context("writing the final snapshot")?;
        Ok(())
    }
}

/// Recovers the graph from Redis into `graph` and starts the writer and snapshotter.
///
/// # Errors
/// Only for invalid configuration (a malformed Redis URL) or metrics registration; Redis being
/// down is not an error (see [`Origin::Unreachable`]).
pub async fn start(
    args: &PersistArgs,
    registry: &Registry,
    graph: &SharedGraph,
    shutdown_grace: Duration,
) -> anyhow::Result<(Persistence, Origin)> {
    let metrics = PersistMetrics::register(registry).context("registering persistence metrics")?;
    let config = RedisConfig::new(args.url(), args.cluster_name.clone());
    let log = RedisLog::new(&config).context("configuring the Redis connection")?;

    let (origin, snapshot_seq, problems) = match recover_with_deadline(&log, &metrics).await {
        Some(recovered) => {
            let problems = recovered.skipped_corrupt > 0
                || recovered.gaps > 0
                || recovered.snapshot_refused.is_some();
            let snapshot_seq = recovered.snapshot_seq;
            let origin = if recovered.last_seq == 0 {
                Origin::Fresh
            } else {
                Origin::Recovered
            };
            graph.replace(build(recovered));
            (origin, snapshot_seq, problems)
        }
        None => {
            // Start a new history above anything the old log may hold: sequence numbers are
            // derived from the clock (see docs/adr/0003-sequence-epochs.md).
            let mut g = Graph::new();
            g.advance_seq(epoch_seq());
            graph.replace(g);
            (Origin::Unreachable, 0, false)
        }
    };
    // Readers are served from the recovered graph already; the copy the apply loop writes
    // first is cloned from it off the start-up path (see `SharedGraph::replace`).
    let catch_up = graph.clone();
    tokio::task::spawn_blocking(move || catch_up.catch_up());
    let start_seq = if origin == Origin::Unreachable {
        0
    } else {
        graph.read().seq()
    };

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
    let (sender, writer) = Writer::spawn(
        log.clone(),
        source.clone(),
        WriterConfig {
            channel_capacity: args.writer_buffer.max(1),
            max_batch: args.batch_size.max(1),
            linger: Duration::from_millis(args.batch_linger_ms),
            shutdown_grace,
            start_seq,
            ..WriterConfig::default()
        },
        metrics.clone(),
        cancel.clone(),
    );
    let snapshotter = Snapshotter::spawn(
        log.clone(),
        source,
        SnapshotterConfig {
            interval: Duration::from_secs(args.snapshot_interval.max(1)),
            every_changes: args.snapshot_every_changes.max(1),
            retain_changes: args.stream_retention,
            snapshot_on_shutdown: true,
            shutdown_grace,
            start_seq: snapshot_seq,
        },
        writer.acked_seq(),
        metrics.clone(),
        cancel.clone(),
    );
    if problems {
        // The log had holes or corrupt parts: write down a clean state at once.
        snapshotter.request_snapshot();
    }
    let connected = Arc::new(AtomicBool::new(origin != Origin::Unreachable));
    let health = tokio::spawn(health_loop(
        log,
        connected.clone(),
        origin == Origin::Unreachable,
        snapshotter.requester(),
    ));
    let status = PersistStatus {
        connected,
        sender: sender.clone(),
        metrics,
        origin,
    };
    Ok((
        Persistence {
            sender,
            status,
            writer,
            snapshotter,
            health,
            cancel,
        },
        origin,
    ))
}

async fn recover_with_deadline(log: &RedisLog, metrics: &PersistMetrics) -> Option<RecoveredGraph> {
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = tokio::time::timeout(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
            recover(log, &DECODER, DEFAULT_REPLAY_PAGE, metrics),
        )
        .await;
        match attempt {
            Ok(Ok(recovered)) => return Some(recovered),
            Ok(Err(e)) if Instant::now() + delay < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "recovery failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "redis unavailable at start: starting with an empty graph; a full snapshot will supersede the old log when redis answers");
                return None;
            }
            Err(_) => {
                tracing::error!(
                    "redis did not answer within {RECOVERY_DEADLINE:?}: starting with an empty graph; a full snapshot will supersede the old log when redis answers"
                );
                return None;
            }
        }
    }
}

/// What recovery yields: the graph built from the snapshot and the changes after it.
pub type RecoveredGraph = Recovered<Graph, Change>;

/// The decoder recovery uses: [`GraphDecoder`].
pub const DECODER: GraphDecoder = GraphDecoder;

/// Resources handed from the decoding thread to the building one at a time.
const BUILD_BATCH: usize = 1024;

/// Recovery's decoder: changes as the model decodes them (keyed by UID, so that only the last
/// change per object is decoded), and the snapshot straight into a graph. Recovery runs it on
/// a blocking thread while it reads the stream; there, one more thread decodes the snapshot's
/// resources while this one builds the graph from them as they come.
#[derive(Debug, Clone, Copy, Default)]
pub struct GraphDecoder;

impl Decoder for GraphDecoder {
    type Snapshot = Graph;
    type Change = Change;

    fn decode_snapshot(&self, bytes: &[u8]) -> astrolabe_persist::Result<Graph> {
        self.decode_snapshot_from(&mut &bytes[..], bytes.len() as u64)
    }

    fn decode_snapshot_from(
        &self,
        payload: &mut (dyn std::io::Read + Send),
        len: u64,
    ) -> astrolabe_persist::Result<Graph> {
        let reader = ModelDecoder.read_snapshot(payload)?;
        let seq = reader.seq;
        let capacity = reader.capacity_hint(usize::try_from(len).unwrap_or(usize::MAX));
        std::thread::scope(|s| {
            let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Arc<Resource>>>(4);
            let decoding = std::thread::Builder::new()
                .name("astrolabe-decode".into())
                .spawn_scoped(s, move || -> astrolabe_persist::Result<()> {
                    let mut batch = Vec::with_capacity(BUILD_BATCH);
                    for resource in reader {
                        batch.push(Arc::new(resource.map_err(snapshot_error)?));
                        if batch.len() == BUILD_BATCH {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BUILD_BATCH));
                            if batches.send(full).is_err() {
                                break;
                            }
                        }
                    }
                    // The builder only goes away by panicking, which the caller reports.
                    let _ = batches.send(batch);
                    Ok(())
                })
                .map_err(|e| {
                    PersistError::SnapshotDecode(
                        format!("starting the decoding thread failed: {e}").into(),
                    )
                })?;
            let graph = Graph::from_resources(seq, capacity, received.into_iter().flatten());
            match decoding.join() {
                // On an error the partial graph is dropped: never half-applied.
                Ok(decoded) => decoded.map(|()| graph),
                Err(_) => Err(PersistError::SnapshotDecode(
                    "the decoding thread panicked".into(),
                )),
            }
        })
    }

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> astrolabe_persist::Result<Change> {
        ModelDecoder.decode_change(seq, bytes)
    }

    fn change_key(&self, payload: &[u8]) -> Option<std::ops::Range<usize>> {
        ModelDecoder.change_key(payload)
    }
}

/// The graph recovery describes: the snapshot's, then the stream after it replayed; its
/// sequence continues after everything Redis knows of.
pub fn rebuild(recovered: RecoveredGraph) -> Graph {
    let mut graph = recovered.snapshot.unwrap_or_default();
    for change in &recovered.tail {
        graph.replay(change);
    }
    graph.advance_seq(recovered.last_seq);
    graph
}

/// [`rebuild`], logged.
fn build(recovered: RecoveredGraph) -> Graph {
    let started = Instant::now();
    let (snapshot_seq, replayed, superseded) = (
        recovered.snapshot_seq,
        recovered.tail.len(),
        recovered.superseded,
    );
    let (skipped_corrupt, gaps) = (recovered.skipped_corrupt, recovered.gaps);
    let graph = rebuild(recovered);
    tracing::info!(
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
    graph
}

async fn health_loop(
    log: RedisLog,
    connected: Arc<AtomicBool>,
    mut supersede: bool,
    snapshots: SnapshotRequester,
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
        if up && supersede {
            tracing::info!("redis answers: writing a full snapshot to supersede the old log");
            snapshots.request();
            supersede = false;
        }
    }
}

/// A sequence base derived from the clock: milliseconds since the epoch × 1000. Any log written
/// by an earlier run (which either started at 0 or at its own, earlier epoch base and made fewer
/// than a million changes per second) holds only smaller sequence numbers.
pub fn epoch_seq() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use astrolabe_generator as generator;
    use astrolabe_model::codec::{self, Snapshot};

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 77,
            taken_at_ms: 0,
            // More than one batch, and a batch left over.
            resources: generator::generate(5, 3 * BUILD_BATCH)
                .into_iter()
                .map(Arc::new)
                .collect(),
        }
    }

    #[test]
    fn the_graph_built_while_decoding_is_the_snapshots() {
        let snapshot = snapshot();
        let bytes = codec::encode_snapshot(&snapshot).expect("encodes");
        let built = DECODER.decode_snapshot(&bytes).expect("decodes");
        let want = Graph::from_snapshot(&snapshot);
        let n = want.node_count();
        assert!(n > 2 * BUILD_BATCH && !n.is_multiple_of(BUILD_BATCH) && want.edge_count() > 0);
        assert_eq!(
            (built.seq(), built.node_count(), built.edge_count()),
            (77, want.node_count(), want.edge_count())
        );
        assert_eq!(built.stats(), want.stats());
        for r in &snapshot.resources {
            assert_eq!(built.get(&r.uid), Some(r));
        }
    }

    #[test]
    fn a_snapshot_corrupt_past_its_first_batches_is_refused_whole() {
        let bytes = codec::encode_snapshot(&snapshot()).expect("encodes");
        for cut in [bytes.len() - 3, bytes.len() / 2] {
            let refused = DECODER.decode_snapshot(&bytes[..cut]).err();
            assert!(
                matches!(refused, Some(PersistError::SnapshotDecode(_))),
                "cut at {cut}: {refused:?}"
            );
        }
        let mut unknown = bytes.clone();
        unknown[0] = 9;
        assert!(matches!(
            DECODER.decode_snapshot(&unknown).err(),
            Some(PersistError::UnknownFormat { found: 9, .. })
        ));
    }
}
