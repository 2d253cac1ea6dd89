//! Start-up recovery: sweep orphan chunks, load the committed snapshot, replay the stream after
//! it in pages. Corrupt entries are skipped and counted; a corrupt or unknown-format snapshot
//! is refused, and the state is rebuilt from the whole stream if it still starts at sequence 1,
//! else recovery starts empty. Never a panic, never half-applied: the caller gets everything or
//! an error.

use std::time::Instant;

use crate::error::{PersistError, Result};
use crate::log::EventLog;
use crate::metrics::PersistMetrics;

/// Default replay page size, in stream entries (each holds up to
/// [`crate::entry::ENTRY_MAX_CHANGES`] changes and about [`crate::entry::ENTRY_MAX_BYTES`]).
pub const DEFAULT_REPLAY_PAGE: usize = 64;

/// Decodes what recovery reads: the snapshot payload and stream entries.
pub trait Decoder: Send + Sync {
    /// The decoded snapshot.
    type Snapshot: Send;
    /// One decoded change.
    type Change: Send;

    /// Decode a snapshot payload (after decompression).
    ///
    /// # Errors
    /// [`PersistError::UnknownFormat`] or [`PersistError::SnapshotDecode`].
    fn decode_snapshot(&self, bytes: &[u8]) -> Result<Self::Snapshot>;

    /// Decode the payload of stream entry `seq`.
    ///
    /// # Errors
    /// Any error marks the entry corrupt (it is skipped and counted).
    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<Self::Change>;
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered<S, C> {
    /// The snapshot, if one was committed and could be loaded.
    pub snapshot: Option<S>,
    /// Sequence the snapshot covers (0 without snapshot).
    pub snapshot_seq: u64,
    /// Changes after the snapshot, in order; apply them after the snapshot.
    pub tail: Vec<C>,
    /// The highest sequence known to Redis (snapshot, replayed entries, stream top): the next
    /// change must use a larger one.
    pub last_seq: u64,
    /// Corrupt stream entries skipped.
    pub skipped_corrupt: u64,
    /// Places where the replayed sequence jumped (a hole in the log).
    pub gaps: u64,
    /// Why a committed snapshot was refused, if it was.
    pub snapshot_refused: Option<String>,
}

/// Recover the state from `log` at start-up: sweep orphan chunks of uncommitted snapshot
/// generations (only the process that owns the log may do this), then [`read_state`].
///
/// # Errors
/// Only Redis-level failures (unreachable, unexpected replies); the caller retries or exits.
pub async fn recover<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    metrics: &PersistMetrics,
) -> Result<Recovered<D::Snapshot, D::Change>> {
    match log.sweep_orphans().await {
        Ok(_) => {}
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "orphan sweep skipped"),
    }
    read_state(log, decoder, page_size, metrics).await
}

/// Read the persisted state without changing anything in Redis: load the committed snapshot and
/// replay the stream after it. Safe while a server is writing (a backup, say).
///
/// # Errors
/// Only Redis-level failures (unreachable, unexpected replies).
pub async fn read_state<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    metrics: &PersistMetrics,
) -> Result<Recovered<D::Snapshot, D::Change>> {
    let started = Instant::now();
    let mut out = Recovered {
        snapshot: None,
        snapshot_seq: 0,
        tail: Vec::new(),
        last_seq: 0,
        skipped_corrupt: 0,
        gaps: 0,
        snapshot_refused: None,
    };
    let mut replay = true;
    match load(log, decoder).await {
        Ok(Some((seq, snapshot))) => {
            out.snapshot = Some(snapshot);
            out.snapshot_seq = seq;
        }
        Ok(None) => {}
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            let first = log.first_seq().await?;
            replay = first.is_none_or(|f| f <= 1);
            if replay {
                tracing::error!(error = %format!("{e:#}"), "snapshot refused; rebuilding from the whole stream");
            } else {
                tracing::error!(
                    error = %format!("{e:#}"),
                    first_seq = first,
                    "snapshot refused and the stream is trimmed; starting empty (old keys left untouched)"
                );
            }
            metrics.refused_snapshots.inc();
            out.snapshot_refused = Some(format!("{e:#}"));
        }
    }
    if replay {
        replay_tail(log, decoder, page_size, &mut out, metrics).await?;
    }
    out.last_seq = out
        .last_seq
        .max(out.snapshot_seq)
        .max(log.last_seq().await?.unwrap_or(0));
    metrics
        .recovery_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        snapshot_seq = out.snapshot_seq,
        replayed = out.tail.len(),
        corrupt = out.skipped_corrupt,
        gaps = out.gaps,
        last_seq = out.last_seq,
        seconds = started.elapsed().as_secs_f64(),
        "recovery finished"
    );
    Ok(out)
}

async fn load<L: EventLog, D: Decoder>(log: &L, decoder: &D) -> Result<Option<(u64, D::Snapshot)>> {
    let Some(loaded) = log.load_snapshot().await? else {
        return Ok(None);
    };
    let bytes = loaded.bytes;
    let snapshot = decoder.decode_snapshot(&bytes)?;
    Ok(Some((loaded.meta.covered_seq, snapshot)))
}

async fn replay_tail<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    out: &mut Recovered<D::Snapshot, D::Change>,
    metrics: &PersistMetrics,
) -> Result<()> {
    let page_size = page_size.max(1);
    let mut after = out.snapshot_seq;
    loop {
        let page = log.read_after(after, page_size).await?;
        if page.is_empty() {
            out.last_seq = after;
            return Ok(());
        }
        for entry in page {
            if entry.seq <= after {
                return Err(PersistError::UnexpectedReply {
                    op: "XRANGE",
                    detail: format!("entry {} not after {after}", entry.seq),
                });
            }
            let expected = after + 1;
            after = entry.seq;
            metrics.replayed_entries.inc();
            if let Some(defect) = &entry.defect {
                // The changes it held are unknown: counted as corrupt, not as a hole.
                out.skipped_corrupt += 1;
                metrics.corrupt_entries.inc();
                tracing::error!(seq = entry.seq, defect, "corrupt stream entry skipped");
                continue;
            }
            if entry.seq != expected {
                out.gaps += 1;
                tracing::warn!(expected, found = entry.seq, "hole in the event log");
            }
            match decoder.decode_change(entry.seq, &entry.payload) {
                Ok(change) => out.tail.push(change),
                Err(e) => {
                    out.skipped_corrupt += 1;
                    metrics.corrupt_entries.inc();
                    tracing::error!(seq = entry.seq, error = %format!("{e:#}"), "corrupt stream entry skipped");
                }
            }
        }
    }
}
