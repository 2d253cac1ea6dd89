//! The append path of the [`Writer`]: batches encoded and appended with up to
//! [`WriterConfig::pipelines`](super::WriterConfig::pipelines) in flight, acknowledged in order;
//! after a failure, batches appended again one at a time with backoff, and entries reported
//! present verified.

use crate::error::ErrorChain;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Writer;
use crate::error::{KeyRole, PersistError, Result};
use crate::log::{AppendOutcome, EventLog};
use crate::plausible::{seq_ceiling_now, set_aside_reported};
use crate::source::{Record, SnapshotSource};

/// A batch taken from the channel for one append.
pub(super) struct Launched {
    /// The encoded changes.
    pub(super) encoded: Vec<(u64, Bytes)>,
    /// Records drained from the channel for it (for the queue depth).
    taken: usize,
    /// When the append was started.
    started: Instant,
}

/// One append, resolving to its batch and outcome.
pub(super) type Pending = Pin<Box<dyn Future<Output = (Launched, Result<AppendOutcome>)> + Send>>;
/// Appends in flight, in launch order.
pub(super) type InFlight = FuturesOrdered<Pending>;

impl<L, S, R> Writer<L, S, R>
where
    L: EventLog,
    S: SnapshotSource,
    R: Record,
{
    /// Encode `batch`, clear it and start its append, with at most `pipelines` appends in
    /// flight. The batch is encoded while the appends in flight proceed (encoding is half the
    /// cost of an append), then waits for room. After an error (`check_top`) the append runs
    /// alone, retried until it succeeds. Returns false if cancelled while Redis was unreachable
    /// (what is not durable is kept for the shutdown flush).
    pub(super) async fn launch(&mut self, batch: &mut Vec<R>, cancel: &CancellationToken) -> bool {
        let Some(launched) = self.take(batch) else {
            return true;
        };
        while self.in_flight.len() >= self.config.pipelines.max(1) {
            let Some(done) = self.in_flight.next().await else {
                break;
            };
            if !self.settle(done, cancel).await {
                // Newer than everything `settle` kept: flushed last at shutdown.
                self.unsent.push_back(launched);
                return false;
            }
        }
        if self.check_top {
            if !self.settle_all(cancel).await {
                self.unsent.push_back(launched);
                return false;
            }
            return self.append_retrying(launched, cancel, false).await;
        }
        let log = self.log.clone();
        let mut append: Pending = Box::pin(async move {
            let result = log.append(&launched.encoded).await;
            (launched, result)
        });
        // Poll once now so the request is queued on the connection in launch order (a stream
        // refuses an ID below its top, so a later batch landing first would hide this one).
        match futures::poll!(append.as_mut()) {
            Poll::Ready(done) => self.in_flight.push_back(Box::pin(std::future::ready(done))),
            Poll::Pending => self.in_flight.push_back(append),
        }
        true
    }

    /// Encode and clear `batch`; `None` (and the queue depth updated) when nothing is left to
    /// append.
    fn take(&mut self, batch: &mut Vec<R>) -> Option<Launched> {
        let encoded = self.encode(batch);
        let taken = batch.len();
        batch.clear();
        if encoded.is_empty() {
            self.shared.metrics.queue_depth.sub(taken as i64);
            return None;
        }
        Some(Launched {
            encoded,
            taken,
            started: Instant::now(),
        })
    }

    /// Append `batch` alone (retrying with backoff) and clear it. Returns false if cancelled
    /// while Redis was unreachable (the batch is kept for the shutdown flush).
    pub(super) async fn flush(&mut self, batch: &mut Vec<R>, cancel: &CancellationToken) -> bool {
        match self.take(batch) {
            Some(launched) => self.append_retrying(launched, cancel, false).await,
            None => true,
        }
    }

    /// Account for a finished pipelined append. On failure, wait for every later append in
    /// flight, then append the failed batch and those after it again, in order, one at a time
    /// (re-sending is idempotent; entries reported present are verified, since a later batch may
    /// have landed after a hole).
    pub(super) async fn settle(
        &mut self,
        (launched, mut result): (Launched, Result<AppendOutcome>),
        cancel: &CancellationToken,
    ) -> bool {
        // Entries reported present were not expected: read them back (a safety net).
        if let Ok(outcome) = &result
            && outcome.already_present > 0
        {
            match self.count_missing(&launched.encoded).await {
                Ok(0) => {}
                Ok(missing) => {
                    tracing::error!(
                        missing,
                        "entries missing behind a later batch; log diverged"
                    );
                    self.shared.diverge(missing);
                    // The stream's top may be beyond them (another writer's entry): check it.
                    self.check_top = true;
                }
                Err(e) => result = Err(e),
            }
        }
        match self.on_append(&launched.encoded, launched.started, result) {
            Ok(()) => {
                self.shared.metrics.queue_depth.sub(launched.taken as i64);
                true
            }
            Err(e) => {
                self.shared.metrics.redis_error(&e);
                if self.shared.depose_if_fenced(&e) {
                    return false;
                }
                tracing::warn!(error = %ErrorChain(&e), "redis append failed, retrying");
                self.check_top = true;
                self.unsent.push_back(launched);
                while let Some((later, _)) = self.in_flight.next().await {
                    self.unsent.push_back(later);
                }
                while let Some(launched) = self.unsent.pop_front() {
                    if !self.append_retrying(launched, cancel, true).await {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// Settle every append in flight, in order.
    pub(super) async fn settle_all(&mut self, cancel: &CancellationToken) -> bool {
        while let Some(done) = self.in_flight.next().await {
            if !self.settle(done, cancel).await {
                return false;
            }
        }
        true
    }

    /// Append one batch alone, retrying with backoff ([`crate::retry::backoff`]). Returns false if cancelled first (the
    /// batch goes back to the front of `unsent` for the shutdown flush).
    pub(super) async fn append_retrying(
        &mut self,
        launched: Launched,
        cancel: &CancellationToken,
        verify: bool,
    ) -> bool {
        let mut delays = crate::retry::backoff(self.config.retry_min, self.config.retry_max);
        let mut failures = 0u32;
        loop {
            match self.try_append(&launched.encoded, verify).await {
                Ok(()) => {
                    self.shared.metrics.queue_depth.sub(launched.taken as i64);
                    if failures > 0 {
                        tracing::info!(failures, "redis append recovered");
                    }
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    self.shared.metrics.redis_error(&e);
                    if self.shared.depose_if_fenced(&e) {
                        return false;
                    }
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %ErrorChain(&e), failures, "redis append failed, retrying");
                    }
                    self.check_top = true;
                }
            }
            let delay = delays.next().unwrap_or(self.config.retry_max);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => {
                    self.unsent.push_front(launched);
                    return false;
                }
            }
        }
    }

    /// Encode the changes not yet durable into one buffer (slices of it, no allocation per
    /// change); an encoding failure counts as a drop.
    fn encode(&mut self, batch: &[R]) -> Vec<(u64, Bytes)> {
        let mut buf = Vec::with_capacity(self.encode_hint);
        let mut spans = Vec::with_capacity(batch.len());
        for r in batch {
            // A record the log may not hold (dropped, lost, covered by a divergence snapshot
            // instead) may have changed what the memory remembers: start it afresh, so that
            // the next records are whole.
            let dropped = self
                .shared
                .dropped
                .load(std::sync::atomic::Ordering::Acquire);
            if dropped != self.memory_dropped {
                self.memory = R::Memory::default();
                self.memory_dropped = dropped;
            }
            let seq = r.seq();
            if seq <= self.acked || spans.last().is_some_and(|(last, _)| seq <= *last) {
                self.memory = R::Memory::default();
                continue;
            }
            let start = buf.len();
            match r.encode_remembering(&mut self.memory, &mut buf) {
                Ok(()) => spans.push((seq, start..buf.len())),
                Err(e) => {
                    buf.truncate(start);
                    tracing::error!(seq, error = %e, "cannot encode change; log diverged");
                    self.shared.diverge(1);
                }
            }
        }
        self.encode_hint = self.encode_hint.max(buf.len());
        let buf = Bytes::from(buf);
        spans
            .into_iter()
            .map(|(seq, range)| (seq, buf.slice(range)))
            .collect()
    }

    /// One append, after checking the stream's top if an error happened since the last one (a
    /// top beyond the plausible ceiling, [`crate::plausible`], is set aside first). With
    /// `verify`, entries reported already present are read back; missing ones diverge the log.
    async fn try_append(&mut self, encoded: &[(u64, Bytes)], verify: bool) -> Result<()> {
        if self.check_top {
            let mut top = self.log.last_seq().await?.unwrap_or(0);
            let ceiling = seq_ceiling_now();
            if top > ceiling {
                // Every append below it would be refused as "already present".
                if let Some(aside) = self.log.set_aside_beyond(ceiling).await? {
                    set_aside_reported(&self.shared.metrics, &aside, top, ceiling);
                }
                top = self.log.last_seq().await?.unwrap_or(0);
            }
            match self.stream_top {
                Some(known) if top < known => {
                    tracing::error!(top, known, "redis lost acknowledged changes; log diverged");
                    self.shared.diverge(known - top);
                    self.stream_top = Some(top);
                }
                Some(_) => {}
                None => self.stream_top = Some(top),
            }
            self.check_top = false;
        }
        let started = Instant::now();
        let result = self.log.append(encoded).await;
        if verify
            && let Ok(outcome) = &result
            && outcome.already_present > 0
        {
            let missing = self.count_missing(encoded).await?;
            if missing > 0 {
                tracing::error!(
                    missing,
                    "entries missing behind a later batch; log diverged"
                );
                self.shared.diverge(missing);
                self.check_top = true;
            }
        }
        self.on_append(encoded, started, result)
    }

    /// How many of `encoded` (ascending sequences) are not in the stream.
    async fn count_missing(&mut self, encoded: &[(u64, Bytes)]) -> Result<u64> {
        let Some((first, _)) = encoded.first() else {
            return Ok(0);
        };
        let present: HashSet<u64> = self
            .log
            .read_after(first.saturating_sub(1), encoded.len())
            .await?
            .into_iter()
            .map(|e| e.seq)
            .collect();
        Ok(encoded.iter().filter(|(s, _)| !present.contains(s)).count() as u64)
    }

    /// Record the outcome of an append of `encoded`: acknowledge it (also after a hole, which
    /// diverges the log), or hand back a retryable error.
    fn on_append(
        &mut self,
        encoded: &[(u64, Bytes)],
        started: Instant,
        result: Result<AppendOutcome>,
    ) -> Result<()> {
        let last = encoded.last().map_or(self.acked, |(s, _)| *s);
        let m = &self.shared.metrics;
        match result {
            Ok(outcome) => {
                m.append_seconds.observe(started.elapsed().as_secs_f64());
                m.batches.inc();
                m.batch_size.observe(encoded.len() as f64);
                m.appended_changes
                    .inc_by((outcome.appended + outcome.already_present) as u64);
                m.key_ok(KeyRole::Events);
                self.stream_top = Some(last);
                self.set_acked(last);
                Ok(())
            }
            Err(PersistError::AppendGap { seq, message }) => {
                tracing::error!(seq, message, "append left a hole; log diverged");
                m.redis_errors.with_label_values(&["append"]).inc();
                self.shared.diverge(1);
                self.stream_top = Some(last);
                self.set_acked(last);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn set_acked(&mut self, seq: u64) {
        if seq > self.acked {
            self.acked = seq;
            self.acked_tx.send_replace(seq);
        }
    }
}
