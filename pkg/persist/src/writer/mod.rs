//! The [`Writer`] task: drains a bounded channel of changes, appends them in batches (one
//! pipelined round trip each, packed into stream entries, up to [`WriterConfig::pipelines`]
//! batches in flight, the next one encoded meanwhile, acknowledged in order), retries while
//! Redis is unreachable, and resolves divergence (dropped changes) by writing a full snapshot
//! that supersedes the log.
//!
//! Producers use [`ChangeSender::send`], which never blocks and never drops silently: when the
//! channel is full the change is dropped, the drop is counted, and the log is marked diverged.

use crate::error::ErrorChain;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod append;

use append::{InFlight, Launched};

use crate::error::{PersistError, Result};
use crate::log::{AppendOutcome, EventLog};
use crate::metrics::PersistMetrics;
use crate::source::{Record, SnapshotSource, take_snapshot};

/// Default channel capacity (changes). At ~200 B each this is ~13 MiB of backlog.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 65_536;
/// Default maximum changes per batch (the measured sweet spot is 256-1024).
pub const DEFAULT_MAX_BATCH: usize = 1024;
/// Default number of batches in flight at once: one. With changes packed into entries and the
/// next batch encoded while one is in flight, one batch reaches 1.3-1.5x the single-connection
/// raw XADD rate (docs/benchmarks.md). More than one is not exposed as a flag: it has not been
/// soaked under Redis kill -9 (an earlier trial with four in flight saw a stream top below the
/// acknowledged sequence once, not explained).
pub const DEFAULT_PIPELINES: usize = 1;
/// Default time the writer waits for a batch to fill once it holds one change.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);
/// Default first retry delay.
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_millis(50);
/// Default maximum retry delay.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(5);
/// Default bound on the final flush after cancellation.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Writer tuning.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Capacity of the producer channel.
    pub channel_capacity: usize,
    /// Maximum changes per append.
    pub max_batch: usize,
    /// Batches in flight at once (one round trip each, acknowledged in order); 1 appends one
    /// batch at a time.
    pub pipelines: usize,
    /// How long to wait for more changes before appending a partial batch.
    pub linger: Duration,
    /// First retry delay (grows exponentially with jitter per failure, see
    /// [`crate::retry::backoff`]).
    pub retry_min: Duration,
    /// Maximum retry delay.
    pub retry_max: Duration,
    /// Bound on draining and flushing after cancellation.
    pub shutdown_grace: Duration,
    /// Last change already durable (from recovery); the writer skips changes at or below it.
    pub start_seq: u64,
    /// Keeps the snapshot that resolves a divergence from shrinking the persisted state before
    /// the graph is complete, as it keeps the snapshotter's ([`crate::ShrinkGuard`]); a refused
    /// one is retried with backoff.
    pub shrink_guard: Option<crate::ShrinkGuard>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
            pipelines: DEFAULT_PIPELINES,
            linger: DEFAULT_LINGER,
            retry_min: DEFAULT_RETRY_MIN,
            retry_max: DEFAULT_RETRY_MAX,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            start_seq: 0,
            shrink_guard: None,
        }
    }
}

/// State shared between producers, the writer and observers.
#[derive(Debug)]
struct Shared {
    /// Changes dropped (channel full or writer gone) or lost, ever.
    dropped: AtomicU64,
    /// Value of `dropped` covered by the last divergence snapshot.
    resolved: AtomicU64,
    /// Wakes the writer when the log diverges.
    wake: Notify,
    metrics: PersistMetrics,
    /// Cancelled when the log refused a write because another writer claimed it
    /// ([`PersistError::Fenced`]): this writer stops for good.
    deposed: CancellationToken,
    /// The refusal that deposed it: `(ours, stored)` epochs.
    fenced: std::sync::OnceLock<(u64, u64)>,
}

impl Shared {
    fn diverge(&self, n: u64) {
        if self.dropped.fetch_add(n, Ordering::AcqRel) == self.resolved.load(Ordering::Acquire) {
            tracing::warn!("persistence diverged: changes dropped, a full snapshot will follow");
        }
        self.metrics.diverged.set(1);
        self.wake.notify_one();
    }

    fn is_diverged(&self) -> bool {
        self.dropped.load(Ordering::Acquire) > self.resolved.load(Ordering::Acquire)
    }

    /// Stops the writer for good if `e` is a fenced write. Returns whether it was.
    fn depose_if_fenced(&self, e: &PersistError) -> bool {
        let PersistError::Fenced { ours, stored } = *e else {
            return false;
        };
        if !self.deposed.is_cancelled() {
            tracing::error!(
                ours,
                stored,
                "the log refused a write: another writer claimed it with a newer epoch; this writer stops"
            );
            let _ = self.fenced.set((ours, stored));
            self.deposed.cancel();
        }
        true
    }
}

/// Outcome of [`ChangeSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued for the writer.
    Queued,
    /// Not queued (channel full or writer stopped): the log is marked diverged and a full
    /// snapshot will supersede it.
    Diverged,
}

/// Producer side of the writer's channel. Cheap to clone; never blocks.
#[derive(Debug)]
pub struct ChangeSender<R> {
    tx: mpsc::Sender<R>,
    shared: Arc<Shared>,
}

impl<R> Clone for ChangeSender<R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<R: Record> ChangeSender<R> {
    /// Queue a change for persistence without waiting.
    pub fn send(&self, change: R) -> SendOutcome {
        match self.tx.try_send(change) {
            Ok(()) => {
                self.shared.metrics.queue_depth.inc();
                SendOutcome::Queued
            }
            Err(_) => {
                self.shared.metrics.dropped_changes.inc();
                self.shared.diverge(1);
                SendOutcome::Diverged
            }
        }
    }

    /// True while dropped changes are not yet superseded by a snapshot.
    #[must_use]
    pub fn is_diverged(&self) -> bool {
        self.shared.is_diverged()
    }
}

/// Observer and join handle of a running writer.
#[derive(Debug)]
pub struct WriterHandle {
    acked: watch::Receiver<u64>,
    shared: Arc<Shared>,
    join: JoinHandle<Result<()>>,
}

impl WriterHandle {
    /// The highest sequence `S` such that every change `<= S` is durable (in the stream or in a
    /// committed snapshot).
    #[must_use]
    pub fn acked_seq(&self) -> watch::Receiver<u64> {
        self.acked.clone()
    }

    /// True while dropped changes are not yet superseded by a snapshot.
    #[must_use]
    pub fn is_diverged(&self) -> bool {
        self.shared.is_diverged()
    }

    /// Cancelled once the log refused a write of this writer's epoch
    /// ([`PersistError::Fenced`]): the writer has stopped, and what it had not written is not
    /// written.
    #[must_use]
    pub fn deposed(&self) -> CancellationToken {
        self.shared.deposed.clone()
    }

    /// The `(ours, stored)` epochs of the refusal that deposed the writer, if one did.
    #[must_use]
    pub fn fenced(&self) -> Option<(u64, u64)> {
        self.shared.fenced.get().copied()
    }

    /// Wait for the writer to finish (after cancellation or when every sender is dropped).
    ///
    /// # Errors
    /// [`PersistError::WriterStopped`] if the task panicked; otherwise the task's error (the
    /// final flush did not complete within the grace period).
    pub async fn join(self) -> Result<()> {
        self.join.await.map_err(|_| PersistError::WriterStopped)?
    }
}

/// Wait until `acked` reaches `seq`.
///
/// # Errors
/// [`PersistError::WriterStopped`] if the writer ended before.
pub async fn wait_acked(acked: &mut watch::Receiver<u64>, seq: u64) -> Result<()> {
    acked
        .wait_for(|a| *a >= seq)
        .await
        .map(|_| ())
        .map_err(|_| PersistError::WriterStopped)
}

/// The writer task.
pub struct Writer<L, S, R: Record> {
    log: Arc<L>,
    source: Arc<S>,
    config: WriterConfig,
    rx: mpsc::Receiver<R>,
    shared: Arc<Shared>,
    acked_tx: watch::Sender<u64>,
    acked: u64,
    /// Check the stream's top against `stream_top` before the next append (after an error).
    check_top: bool,
    /// Highest sequence this writer saw confirmed in the stream (`None`: adopt the next read).
    /// Lower than `acked` after a divergence snapshot; a stream top below it means Redis lost
    /// acknowledged entries.
    stream_top: Option<u64>,
    /// Appends in flight, oldest first.
    in_flight: InFlight,
    /// Batches taken from the channel but not durable (after a failure or a cancellation).
    unsent: VecDeque<Launched>,
    /// Largest encoded batch so far (the next batch's buffer capacity).
    encode_hint: usize,
    /// What the records encoded so far left for the next ones ([`Record::encode_remembering`]).
    memory: R::Memory,
    /// `Shared::dropped` when `memory` was last emptied: a record dropped since may have
    /// changed an object `memory` remembers.
    memory_dropped: u64,
}

/// What woke the writer while it held no batch.
enum Next<R> {
    Stop,
    Woken,
    Record(R),
    Settle((Launched, Result<AppendOutcome>)),
}

impl<L, S, R> Writer<L, S, R>
where
    L: EventLog,
    S: SnapshotSource,
    R: Record,
{
    /// Start the writer task. It runs until `cancel` fires (then drains and flushes within the
    /// grace period) or every [`ChangeSender`] is dropped.
    pub fn spawn(
        log: L,
        source: Arc<S>,
        config: WriterConfig,
        metrics: PersistMetrics,
        cancel: CancellationToken,
    ) -> (ChangeSender<R>, WriterHandle) {
        Self::spawn_remembering(log, source, config, metrics, cancel, R::Memory::default())
    }

    /// [`Writer::spawn`], remembering `memory` from the start ([`Record::encode_remembering`]):
    /// what the records the log already holds, up to `config.start_seq`, left (for model changes,
    /// the state recovered from the log: [`crate::LastVersions::of`]).
    pub fn spawn_remembering(
        log: L,
        source: Arc<S>,
        config: WriterConfig,
        metrics: PersistMetrics,
        cancel: CancellationToken,
        memory: R::Memory,
    ) -> (ChangeSender<R>, WriterHandle) {
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            wake: Notify::new(),
            metrics,
            deposed: CancellationToken::new(),
            fenced: std::sync::OnceLock::new(),
        });
        shared.metrics.diverged.set(0);
        let (acked_tx, acked_rx) = watch::channel(config.start_seq);
        let writer = Self {
            log: Arc::new(log),
            source,
            acked: config.start_seq,
            config,
            rx,
            shared: shared.clone(),
            acked_tx,
            check_top: true,
            stream_top: None,
            in_flight: FuturesOrdered::new(),
            unsent: VecDeque::new(),
            encode_hint: 0,
            memory,
            memory_dropped: 0,
        };
        let join = tokio::spawn(writer.run(cancel));
        (
            ChangeSender {
                tx,
                shared: shared.clone(),
            },
            WriterHandle {
                acked: acked_rx,
                shared,
                join,
            },
        )
    }

    async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        let mut batch: Vec<R> = Vec::with_capacity(self.config.max_batch);
        loop {
            if self.shared.is_diverged() {
                // Appends in flight settle first; the snapshot then covers everything acked.
                if !self.settle_all(&cancel).await || !self.resolve_divergence(&cancel).await {
                    break;
                }
                self.drop_covered(&mut batch);
            }
            if batch.is_empty() {
                let next = tokio::select! {
                    biased;
                    () = cancel.cancelled() => Next::Stop,
                    () = self.shared.wake.notified() => Next::Woken,
                    Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                        Next::Settle(done)
                    }
                    item = self.rx.recv() => item.map_or(Next::Stop, Next::Record),
                };
                match next {
                    Next::Stop => break,
                    Next::Woken => continue,
                    Next::Settle(done) => {
                        if !self.settle(done, &cancel).await {
                            break;
                        }
                        continue;
                    }
                    Next::Record(r) => batch.push(r),
                }
            }
            self.fill(&mut batch, &cancel).await;
            if !self.launch(&mut batch, &cancel).await {
                break;
            }
        }
        if let Some(&(ours, stored)) = self.shared.fenced.get() {
            // What this writer still holds belongs to a term the log no longer accepts.
            return Err(PersistError::Fenced { ours, stored });
        }
        self.shutdown(batch).await
    }

    /// After a divergence snapshot: discard queued changes it covers (freeing the channel at
    /// once), keep the first newer one in `batch`, then publish the new acknowledgement.
    fn drop_covered(&mut self, batch: &mut Vec<R>) {
        let before = batch.len();
        batch.retain(|r| r.seq() > self.acked);
        let mut discarded = before - batch.len();
        if batch.is_empty() {
            while let Ok(r) = self.rx.try_recv() {
                if r.seq() > self.acked {
                    batch.push(r);
                    break;
                }
                discarded += 1;
            }
        }
        self.shared.metrics.queue_depth.sub(discarded as i64);
        self.acked_tx.send_replace(self.acked);
    }

    /// Add changes until the batch is full or the linger time has passed.
    async fn fill(&mut self, batch: &mut Vec<R>, cancel: &CancellationToken) {
        let deadline = Instant::now() + self.config.linger;
        while batch.len() < self.config.max_batch {
            match self.rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                    item = self.rx.recv() => match item {
                        Some(r) => batch.push(r),
                        None => return,
                    },
                    () = tokio::time::sleep_until(deadline) => return,
                    () = cancel.cancelled() => return,
                },
            }
        }
    }

    /// Write a full snapshot that supersedes the log. Returns false if cancelled first.
    async fn resolve_divergence(&mut self, cancel: &CancellationToken) -> bool {
        let mut delays = crate::retry::backoff(self.config.retry_min, self.config.retry_max);
        let mut skipped = false;
        loop {
            let target = self.shared.dropped.load(Ordering::Acquire);
            let started = Instant::now();
            match self.snapshot_once().await {
                Ok(None) => {
                    self.shared.metrics.skipped_snapshots.inc();
                    if !skipped {
                        tracing::warn!(
                            "divergence snapshot skipped: the graph is not complete yet and it \
                             would shrink the persisted state; retrying until it is complete"
                        );
                        skipped = true;
                    }
                }
                Ok(Some(covered)) => {
                    self.shared.resolved.store(target, Ordering::Release);
                    if !self.shared.is_diverged() {
                        self.shared.metrics.diverged.set(0);
                    }
                    self.shared
                        .metrics
                        .snapshot_seconds
                        .observe(started.elapsed().as_secs_f64());
                    tracing::info!(covered, "divergence resolved by a full snapshot");
                    // Published by `drop_covered` once the covered changes left the channel.
                    self.acked = self.acked.max(covered);
                    self.check_top = true;
                    return true;
                }
                Err(e) => {
                    self.shared.metrics.redis_error(&e);
                    if self.shared.depose_if_fenced(&e) {
                        return false;
                    }
                    tracing::warn!(error = %ErrorChain(&e), "divergence snapshot failed, retrying");
                }
            }
            let delay = delays.next().unwrap_or(self.config.retry_max);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return false,
            }
        }
    }

    /// Take and commit a snapshot; returns the sequence now covered, or `None` when the shrink
    /// guard refused it.
    async fn snapshot_once(&mut self) -> Result<Option<u64>> {
        let blob = take_snapshot(&self.source).await?;
        if let Some(guard) = &self.config.shrink_guard
            && let Some(why) = guard.refuses(&*self.log, &blob).await?
        {
            tracing::debug!(seq = blob.seq, reason = %why, "divergence snapshot refused by the shrink guard");
            return Ok(None);
        }
        match self.log.write_snapshot(&blob).await {
            Ok(meta) => {
                let m = &self.shared.metrics;
                m.snapshot_bytes
                    .set(i64::try_from(meta.bytes).unwrap_or(i64::MAX));
                m.snapshot_last_success
                    .set(meta.created_at_ms as f64 / 1000.0);
                m.key_ok(crate::error::KeyRole::Snapshot);
                Ok(Some(meta.covered_seq))
            }
            // A newer snapshot (taken after the drop) already covers everything dropped.
            Err(PersistError::SnapshotSuperseded { committed_seq, .. }) => Ok(Some(committed_seq)),
            Err(e) => Err(e),
        }
    }

    /// Drain the channel and flush everything, bounded by the grace period.
    async fn shutdown(mut self, mut batch: Vec<R>) -> Result<()> {
        self.rx.close();
        while let Ok(r) = self.rx.try_recv() {
            batch.push(r);
        }
        let grace = self.config.shutdown_grace;
        let pending = batch.len() + self.unsent.iter().map(|l| l.encoded.len()).sum::<usize>();
        let work = async {
            let never = CancellationToken::new();
            // Appends in flight, then batches taken but not durable, then the queue.
            self.settle_all(&never).await;
            while let Some(launched) = self.unsent.pop_front() {
                self.append_retrying(launched, &never, true).await;
            }
            let mut rest = batch;
            if self.shared.is_diverged() && self.resolve_divergence(&never).await {
                self.drop_covered(&mut rest);
            }
            while !rest.is_empty() {
                let tail = rest.split_off(rest.len().min(self.config.max_batch));
                let mut head = rest;
                self.flush(&mut head, &never).await;
                rest = tail;
            }
        };
        if tokio::time::timeout(grace, work).await.is_err() {
            tracing::error!(
                pending,
                "final flush did not complete within the grace period"
            );
            return Err(PersistError::FlushTimeout { pending });
        }
        tracing::debug!(acked = self.acked, "writer flushed and stopped");
        Ok(())
    }
}
