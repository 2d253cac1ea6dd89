//! The [`Snapshotter`] task: periodically, after enough changes, on demand and at shutdown it
//! takes the encoded state from the [`SnapshotSource`], waits until the writer has acknowledged
//! every change the snapshot covers, commits it, then trims the stream behind the oldest
//! retained checkpoint (the previous generation unless history keeps older ones). A
//! [`ShrinkGuard`] keeps it from shrinking the persisted state before the graph
//! is complete.

use crate::error::ErrorChain;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::error::{PersistError, Result};
use crate::log::{EventLog, SnapshotBlob, SnapshotMeta};
use crate::metrics::PersistMetrics;
use crate::source::{SnapshotSource, take_snapshot};
use crate::writer::wait_acked;

/// Default time between periodic snapshots.
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(300);
/// Default number of acknowledged changes that triggers a snapshot.
pub const DEFAULT_SNAPSHOT_EVERY_CHANGES: u64 = 100_000;
/// Default number of covered changes kept in the stream after trimming (history, followers).
pub const DEFAULT_RETAIN_CHANGES: u64 = 100_000;
/// Default bound on the final snapshot at shutdown.
pub const DEFAULT_FINAL_SNAPSHOT_GRACE: Duration = Duration::from_secs(30);

/// Snapshotter tuning.
#[derive(Debug, Clone)]
pub struct SnapshotterConfig {
    /// Time between periodic snapshots.
    pub interval: Duration,
    /// Acknowledged changes since the last snapshot that trigger one.
    pub every_changes: u64,
    /// Covered changes kept in the stream when trimming.
    pub retain_changes: u64,
    /// Take a final snapshot when cancelled.
    pub snapshot_on_shutdown: bool,
    /// Bound on the final snapshot.
    pub shutdown_grace: Duration,
    /// Sequence covered by the committed snapshot at start (from recovery).
    pub start_seq: u64,
    /// Skips snapshots that would shrink the persisted state before the graph is complete;
    /// `None` commits every snapshot.
    pub shrink_guard: Option<ShrinkGuard>,
}

/// Keeps a snapshot taken before the graph is complete (before the watchers listed every kind
/// once: with the cluster unreachable, the graph may hold less than Redis) from replacing a
/// larger persisted state. While `complete` says no, a snapshot with fewer resources than
/// recovery put into the graph, or than the committed snapshot's metadata records, is skipped
/// (logged at WARN, counted in `astrolabe_persist_skipped_snapshots_total`), and so is one
/// whose comparison cannot be made because the committed metadata is unreadable: the persisted
/// state stays as it is until the graph is complete.
#[derive(Clone)]
pub struct ShrinkGuard {
    complete: Arc<dyn Fn() -> bool + Send + Sync>,
    recovered_resources: u64,
}

impl std::fmt::Debug for ShrinkGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShrinkGuard")
            .field("complete", &(self.complete)())
            .field("recovered_resources", &self.recovered_resources)
            .finish()
    }
}

impl ShrinkGuard {
    /// A guard that holds while `complete` returns false; `recovered_resources` is what
    /// recovery put into the graph.
    pub fn new(
        complete: impl Fn() -> bool + Send + Sync + 'static,
        recovered_resources: u64,
    ) -> Self {
        Self {
            complete: Arc::new(complete),
            recovered_resources,
        }
    }

    /// Why `blob` must not be committed, or `None` when it may be.
    pub(crate) async fn refuses<L: EventLog>(
        &self,
        log: &L,
        blob: &SnapshotBlob,
    ) -> Result<Option<String>> {
        if (self.complete)() {
            return Ok(None);
        }
        let committed = match log.snapshot_meta().await {
            Ok(meta) => meta.map_or(0, |m| m.resource_count),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                return Ok(Some(format!(
                    "the committed snapshot is unreadable ({})",
                    ErrorChain(&e)
                )));
            }
        };
        let floor = self.recovered_resources.max(committed);
        Ok((blob.resource_count < floor).then(|| {
            format!(
                "{} resources, fewer than the {floor} persisted or recovered",
                blob.resource_count
            )
        }))
    }
}

impl Default for SnapshotterConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_SNAPSHOT_INTERVAL,
            every_changes: DEFAULT_SNAPSHOT_EVERY_CHANGES,
            retain_changes: DEFAULT_RETAIN_CHANGES,
            snapshot_on_shutdown: true,
            shutdown_grace: DEFAULT_FINAL_SNAPSHOT_GRACE,
            start_seq: 0,
            shrink_guard: None,
        }
    }
}

/// Handle of a running snapshotter.
#[derive(Debug)]
pub struct SnapshotterHandle {
    request: Arc<Notify>,
    committed: watch::Receiver<u64>,
    join: JoinHandle<Result<()>>,
}

/// A cloneable way to ask a running snapshotter for a snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotRequester(Arc<Notify>);

impl SnapshotRequester {
    /// Ask for a snapshot now (coalesced with one already requested).
    pub fn request(&self) {
        self.0.notify_one();
    }
}

impl SnapshotterHandle {
    /// Ask for a snapshot now (coalesced with one already requested).
    pub fn request_snapshot(&self) {
        self.request.notify_one();
    }

    /// A handle that can ask for snapshots from another task.
    #[must_use]
    pub fn requester(&self) -> SnapshotRequester {
        SnapshotRequester(self.request.clone())
    }

    /// The sequence covered by the last snapshot this task committed.
    #[must_use]
    pub fn committed_seq(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Wait for the task to end (after cancellation and the final snapshot).
    ///
    /// # Errors
    /// The final snapshot's error, or [`PersistError::WriterStopped`] if the task panicked.
    pub async fn join(self) -> Result<()> {
        self.join.await.map_err(|_| PersistError::WriterStopped)?
    }
}

/// The snapshot task.
pub struct Snapshotter<L, S> {
    log: L,
    source: Arc<S>,
    config: SnapshotterConfig,
    acked: watch::Receiver<u64>,
    metrics: PersistMetrics,
    committed_tx: watch::Sender<u64>,
    last: u64,
    /// The sequence of the last snapshot the guard skipped: the change-count trigger counts
    /// from it, so a skipped snapshot is not retaken at once.
    skipped_at: u64,
}

impl<L: EventLog, S: SnapshotSource> Snapshotter<L, S> {
    /// Start the task; `acked` is the writer's [`crate::WriterHandle::acked_seq`].
    pub fn spawn(
        log: L,
        source: Arc<S>,
        config: SnapshotterConfig,
        acked: watch::Receiver<u64>,
        metrics: PersistMetrics,
        cancel: CancellationToken,
    ) -> SnapshotterHandle {
        let request = Arc::new(Notify::new());
        let (committed_tx, committed) = watch::channel(config.start_seq);
        let task = Self {
            log,
            source,
            last: config.start_seq,
            skipped_at: 0,
            config,
            acked,
            metrics,
            committed_tx,
        };
        let join = tokio::spawn(task.run(request.clone(), cancel));
        SnapshotterHandle {
            request,
            committed,
            join,
        }
    }

    async fn run(mut self, request: Arc<Notify>, cancel: CancellationToken) -> Result<()> {
        let mut ticker = tokio::time::interval_at(
            Instant::now() + self.config.interval,
            self.config.interval.max(Duration::from_millis(1)),
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let threshold = self
                .last
                .max(self.skipped_at)
                .saturating_add(self.config.every_changes.max(1));
            let mut acked = self.acked.clone();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = request.notified() => {}
                _ = ticker.tick() => {}
                r = wait_acked(&mut acked, threshold) => if r.is_err() {
                    // Writer gone: nothing new will be acknowledged; wait for cancellation.
                    cancel.cancelled().await;
                    break;
                },
            }
            if let Err(e) = self.snapshot(&cancel).await {
                self.metrics.redis_error(&e);
                tracing::warn!(error = %ErrorChain(&e), "snapshot failed; next attempt at the next trigger");
            }
        }
        if !self.config.snapshot_on_shutdown {
            return Ok(());
        }
        let never = CancellationToken::new();
        match tokio::time::timeout(self.config.shutdown_grace, self.snapshot(&never)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(PersistError::SnapshotSource(
                "final snapshot did not finish within the grace period".into(),
            )),
        }
    }

    /// Take, wait for the writer, commit, trim. `Ok(None)` when nothing changed or cancelled
    /// while waiting for the writer.
    async fn snapshot(&mut self, cancel: &CancellationToken) -> Result<Option<SnapshotMeta>> {
        let started = Instant::now();
        let blob = take_snapshot(&self.source).await?;
        if blob.seq <= self.last && self.last > 0 {
            return Ok(None);
        }
        if let Some(guard) = &self.config.shrink_guard
            && let Some(why) = guard.refuses(&self.log, &blob).await?
        {
            self.metrics.skipped_snapshots.inc();
            self.skipped_at = blob.seq;
            tracing::warn!(
                seq = blob.seq,
                reason = %why,
                "snapshot skipped: the graph is not complete yet and it would shrink the persisted state"
            );
            return Ok(None);
        }
        let mut acked = self.acked.clone();
        tokio::select! {
            r = wait_acked(&mut acked, blob.seq.max(blob.copied_until)) => r?,
            () = cancel.cancelled() => return Ok(None),
        }
        let meta = match self.log.write_snapshot(&blob).await {
            Ok(meta) => meta,
            Err(PersistError::SnapshotSuperseded { committed_seq, .. }) => {
                self.last = self.last.max(committed_seq);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        self.metrics
            .snapshot_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .snapshot_bytes
            .set(i64::try_from(meta.bytes).unwrap_or(i64::MAX));
        self.metrics
            .snapshot_last_success
            .set(meta.created_at_ms as f64 / 1000.0);
        self.metrics.key_ok(crate::error::KeyRole::Snapshot);
        self.last = meta.covered_seq;
        self.committed_tx.send_replace(meta.covered_seq);
        tracing::info!(
            covered = meta.covered_seq,
            bytes = meta.bytes,
            resources = meta.resource_count,
            "snapshot committed"
        );
        let upto = meta.covered_seq.saturating_sub(self.config.retain_changes);
        if upto > 0 {
            match self.log.trim_to(upto).await {
                Ok(t) => tracing::debug!(upto = t.upto, removed = t.removed, "stream trimmed"),
                Err(e) => {
                    self.metrics.redis_error(&e);
                    tracing::warn!(error = %ErrorChain(&e), "trimming the stream failed");
                }
            }
        }
        Ok(Some(meta))
    }
}
