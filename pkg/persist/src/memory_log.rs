//! [`MemoryLog`]: the [`EventLog`] in process memory, the backend when persistence is off.
//! Same semantics as [`crate::RedisLog`] wherever the trait states them; nothing survives the
//! process.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use astrolabe_model::now_ms;
use bytes::Bytes;

use crate::compress::{SNAPSHOT_ZSTD_LEVEL, compress_blob};
use crate::error::{PersistError, Result};
use crate::log::{
    AppendOutcome, EventLog, Gap, LoadedSnapshot, LogEntry, MAX_GAPS, SetAside, SnapshotBlob,
    SnapshotMeta, TrimOutcome,
};
use crate::redis_log::check_order;
use crate::retention::{HistoryRetention, trim_limit};

/// An in-memory event log: changes in sequence order, and the checkpoints (compressed
/// snapshots) its [`HistoryRetention`] keeps. Each change is one entry of the log (a page of
/// [`EventLog::read_after`] holds up to `page_size` changes).
///
/// Cheap to clone: clones share one log, so the writer, the snapshotter and the history
/// readers see the same changes. Every operation takes one short lock and never waits;
/// compression runs on a blocking thread outside it.
#[derive(Clone)]
pub struct MemoryLog {
    inner: Arc<Inner>,
}

struct Inner {
    retention: HistoryRetention,
    zstd_level: i32,
    state: Mutex<State>,
    /// The committed generation recovery refused (0: none; generations start at 1).
    refused: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The changes, oldest first.
    changes: VecDeque<(u64, Bytes)>,
    /// Payload bytes of `changes`.
    change_bytes: u64,
    /// The highest sequence ever appended: a batch not above it is already present (as a
    /// Redis stream's last ID survives trimming).
    top: u64,
    /// Retained checkpoints by `covered_seq` ascending, the committed one last.
    checkpoints: Vec<LoadedSnapshot>,
    /// The last generation handed out.
    generation: u64,
    /// Changes set aside by [`EventLog::set_aside_beyond`], kept and never read.
    set_aside: Vec<(String, VecDeque<(u64, Bytes)>)>,
    /// Payload bytes of `set_aside`.
    set_aside_bytes: u64,
    /// Recorded gaps, by end time.
    gaps: Vec<Gap>,
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLog")
            .field("retention", &self.inner.retention)
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new(HistoryRetention::default())
    }
}

impl MemoryLog {
    /// An empty log keeping the checkpoints `retention` asks for.
    #[must_use]
    pub fn new(retention: HistoryRetention) -> Self {
        Self {
            inner: Arc::new(Inner {
                retention,
                zstd_level: SNAPSHOT_ZSTD_LEVEL,
                state: Mutex::new(State::default()),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The retention the log applies when a snapshot is committed.
    #[must_use]
    pub fn retention(&self) -> HistoryRetention {
        self.inner.retention
    }

    /// Payload bytes held: the changes' payloads, the checkpoints' compressed snapshots and
    /// whatever was set aside (a gauge of the log's memory use, bookkeeping not included).
    #[must_use]
    pub fn bytes(&self) -> u64 {
        let state = self.state();
        let checkpoints: u64 = state.checkpoints.iter().map(|c| c.meta.bytes).sum();
        state.change_bytes + checkpoints + state.set_aside_bytes
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `checkpoint` under the lock: refused when the committed one covers more, else
    /// appended (the refused committed generation unlinked first), then retention applied.
    fn commit(&self, checkpoint: LoadedSnapshot) -> Result<()> {
        let mut state = self.state();
        if let Some(committed) = state.checkpoints.last() {
            if committed.meta.covered_seq > checkpoint.meta.covered_seq {
                return Err(PersistError::SnapshotSuperseded {
                    covered_seq: checkpoint.meta.covered_seq,
                    committed_seq: committed.meta.covered_seq,
                });
            }
            let refused = self.inner.refused.load(Ordering::Acquire);
            if committed.meta.generation == refused {
                state.checkpoints.pop();
                self.inner.refused.store(0, Ordering::Release);
            }
        }
        state.checkpoints.push(checkpoint);
        let metas = state.checkpoints.iter().map(|c| c.meta.clone()).collect();
        let (_, dropped) = self.inner.retention.select(metas, now_ms());
        state
            .checkpoints
            .retain(|c| !dropped.iter().any(|d| d.generation == c.meta.generation));
        Ok(())
    }
}

impl EventLog for MemoryLog {
    async fn record_gap(&self, gap: &Gap) -> Result<()> {
        let max_age_ms =
            i64::try_from(self.inner.retention.max_age.as_millis()).unwrap_or(i64::MAX);
        // Kept as Redis keeps it: one line, so reasons read back alike.
        let gap = Gap::from_line(&gap.to_line()).unwrap_or_else(|| gap.clone());
        let mut state = self.state();
        let at = state.gaps.partition_point(|g| g.to_ms <= gap.to_ms);
        state.gaps.insert(at, gap);
        if max_age_ms > 0 {
            let horizon = now_ms().saturating_sub(max_age_ms);
            state.gaps.retain(|g| g.to_ms >= horizon);
        }
        let excess = state.gaps.len().saturating_sub(MAX_GAPS);
        state.gaps.drain(..excess);
        Ok(())
    }

    async fn gaps(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Gap>> {
        Ok(self
            .state()
            .gaps
            .iter()
            .filter(|g| g.overlaps(from_ms, to_ms))
            .cloned()
            .collect())
    }

    async fn append(&self, batch: &[(u64, Bytes)]) -> Result<AppendOutcome> {
        check_order(batch)?;
        let mut state = self.state();
        let mut outcome = AppendOutcome::default();
        for (seq, payload) in batch {
            if *seq <= state.top {
                outcome.already_present += 1;
                continue;
            }
            state.top = *seq;
            state.change_bytes += payload.len() as u64;
            // Its own allocation: a payload is a slice of the writer's batch buffer, sized for
            // the largest batch seen, which a kept slice would keep whole for as long as the
            // change is retained.
            state
                .changes
                .push_back((*seq, Bytes::copy_from_slice(payload)));
            outcome.appended += 1;
        }
        Ok(outcome)
    }

    async fn last_seq(&self) -> Result<Option<u64>> {
        Ok(self.state().changes.back().map(|(seq, _)| *seq))
    }

    async fn first_seq(&self) -> Result<Option<u64>> {
        Ok(self.state().changes.front().map(|(seq, _)| *seq))
    }

    async fn read_after(&self, after: u64, page_size: usize) -> Result<Vec<LogEntry>> {
        let state = self.state();
        let start = state.changes.partition_point(|(seq, _)| *seq <= after);
        Ok(state
            .changes
            .range(start..)
            .take(page_size.max(1))
            .map(|(seq, payload)| LogEntry {
                seq: *seq,
                payload: payload.clone(),
                defect: None,
            })
            .collect())
    }

    async fn set_aside_beyond(&self, ceiling: u64) -> Result<Option<SetAside>> {
        let mut state = self.state();
        let split = state.changes.partition_point(|(seq, _)| *seq <= ceiling);
        if split == state.changes.len() {
            return Ok(None);
        }
        let beyond = state.changes.split_off(split);
        let bytes: u64 = beyond.iter().map(|(_, p)| p.len() as u64).sum();
        state.change_bytes -= bytes;
        state.set_aside_bytes += bytes;
        state.top = state.changes.back().map_or(0, |(seq, _)| *seq);
        let key = format!("memory:events:damaged:{}", now_ms());
        let aside = SetAside {
            key: key.clone(),
            entries: beyond.len() as u64,
            kept: state.changes.len() as u64,
        };
        state.set_aside.push((key, beyond));
        Ok(Some(aside))
    }

    async fn trim_to(&self, upto: u64) -> Result<TrimOutcome> {
        let mut state = self.state();
        let metas: Vec<SnapshotMeta> = state.checkpoints.iter().map(|c| c.meta.clone()).collect();
        let upto = upto.min(trim_limit(&metas));
        if upto == 0 {
            return Ok(TrimOutcome::default());
        }
        let removed = state.changes.partition_point(|(seq, _)| *seq <= upto);
        let bytes: u64 = state
            .changes
            .drain(..removed)
            .map(|(_, p)| p.len() as u64)
            .sum();
        state.change_bytes -= bytes;
        Ok(TrimOutcome {
            upto,
            removed: removed as u64,
        })
    }

    async fn write_snapshot(&self, blob: &SnapshotBlob) -> Result<SnapshotMeta> {
        let generation = {
            let mut state = self.state();
            state.generation += 1;
            state.generation
        };
        let (compressed, raw_bytes) = compress_blob(blob, self.inner.zstd_level).await?;
        let meta = SnapshotMeta::committed_now(blob, generation, 1, &compressed, raw_bytes);
        self.commit(LoadedSnapshot {
            meta: meta.clone(),
            compressed,
        })?;
        Ok(meta)
    }

    async fn snapshot_meta(&self) -> Result<Option<SnapshotMeta>> {
        Ok(self.state().checkpoints.last().map(|c| c.meta.clone()))
    }

    async fn load_snapshot(&self) -> Result<Option<LoadedSnapshot>> {
        let committed = self.state().checkpoints.last().cloned();
        committed.map(verify).transpose()
    }

    async fn load_previous_snapshot(&self) -> Result<Option<LoadedSnapshot>> {
        let previous = {
            let state = self.state();
            state.checkpoints.iter().rev().nth(1).cloned()
        };
        previous.map(verify).transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<SnapshotMeta>> {
        Ok(self
            .state()
            .checkpoints
            .iter()
            .map(|c| c.meta.clone())
            .collect())
    }

    async fn load_checkpoint(&self, generation: u64) -> Result<Option<LoadedSnapshot>> {
        let found = self
            .state()
            .checkpoints
            .iter()
            .find(|c| c.meta.generation == generation)
            .cloned();
        found.map(verify).transpose()
    }

    fn refuse_generation(&self, generation: u64) {
        self.inner.refused.store(generation, Ordering::Release);
    }

    async fn sweep_orphans(&self) -> Result<u64> {
        // A snapshot is committed in one step under the lock: nothing is ever left over.
        Ok(0)
    }
}

/// A stored checkpoint, checked as a loaded Redis snapshot is.
fn verify(checkpoint: LoadedSnapshot) -> Result<LoadedSnapshot> {
    LoadedSnapshot::verified(checkpoint.meta, checkpoint.compressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(seq: u64, bytes: Vec<u8>) -> SnapshotBlob {
        SnapshotBlob {
            taken_at_ms: 0,
            seq,
            resource_count: 1,
            bytes: Bytes::from(bytes),
            zstd_raw_len: None,
            copied_until: seq,
        }
    }

    #[tokio::test]
    async fn bytes_count_changes_checkpoints_and_what_was_set_aside() {
        let log = MemoryLog::default();
        assert_eq!(log.bytes(), 0);
        let batch: Vec<(u64, Bytes)> = (1..=10).map(|s| (s, Bytes::from(vec![0u8; 100]))).collect();
        log.append(&batch).await.unwrap_or_default();
        assert_eq!(log.bytes(), 1000);
        let first = log.write_snapshot(&blob(4, vec![1u8; 64])).await;
        let first = first.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.bytes(), 1000 + first.bytes);
        let second = log.write_snapshot(&blob(8, vec![2u8; 64])).await;
        let second = second.unwrap_or_else(|e| panic!("{e}"));
        let trimmed = log.trim_to(8).await.unwrap_or_default();
        assert_eq!((trimmed.upto, trimmed.removed), (4, 4));
        assert_eq!(log.bytes(), 600 + first.bytes + second.bytes);
        let aside = log.set_aside_beyond(9).await.unwrap_or_default();
        assert_eq!(aside.map(|a| (a.entries, a.kept)), Some((1, 5)));
        assert_eq!(log.bytes(), 600 + first.bytes + second.bytes);
        // A third commit drops the first checkpoint (default retention: two kept).
        let third = log.write_snapshot(&blob(9, vec![3u8; 64])).await;
        let third = third.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.bytes(), 600 + second.bytes + third.bytes);
    }
}
