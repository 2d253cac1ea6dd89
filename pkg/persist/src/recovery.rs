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

/// Decodes what recovery reads: the snapshot payload and stream entries. Recovery decodes the
/// snapshot on a blocking thread while it reads and decodes the stream, so a decoder is cloned
/// into that thread.
pub trait Decoder: Clone + Send + Sync + 'static {
    /// The decoded snapshot.
    type Snapshot: Send + 'static;
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

/// A [`Decoder`] whose decoded snapshot is turned into something else by `map` on the same
/// blocking thread, overlapping with the stream read: the graph built from it, say.
pub struct MapSnapshot<D: Decoder, T> {
    /// The inner decoder.
    pub decoder: D,
    /// What to make of the decoded snapshot.
    pub map: fn(D::Snapshot) -> T,
}

impl<D: Decoder, T> Clone for MapSnapshot<D, T> {
    fn clone(&self) -> Self {
        Self {
            decoder: self.decoder.clone(),
            map: self.map,
        }
    }
}

impl<D: Decoder + std::fmt::Debug, T> std::fmt::Debug for MapSnapshot<D, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapSnapshot")
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<D: Decoder, T: Send + 'static> Decoder for MapSnapshot<D, T> {
    type Snapshot = T;
    type Change = D::Change;

    fn decode_snapshot(&self, bytes: &[u8]) -> Result<T> {
        self.decoder.decode_snapshot(bytes).map(self.map)
    }

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<D::Change> {
        self.decoder.decode_change(seq, bytes)
    }
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
/// The snapshot is fetched, then decompressed and decoded on blocking threads, while the
/// stream after the sequence its metadata names is read and decoded here.
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
    // Where the tail starts if the snapshot loads (a metadata error is reported by the load).
    let expected = match log.snapshot_meta().await {
        Ok(meta) => meta.map_or(0, |m| m.covered_seq),
        Err(e) if e.is_transient() => return Err(e),
        Err(_) => 0,
    };
    let (loaded, tail) = tokio::join!(
        load(log, decoder),
        read_tail(log, decoder, page_size, expected)
    );
    let mut tail = Some(tail?);
    let start = match loaded {
        Ok(Some((seq, snapshot))) => {
            out.snapshot = Some(snapshot);
            out.snapshot_seq = seq;
            Some(seq)
        }
        Ok(None) => Some(0),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            let first = log.first_seq().await?;
            let replay = first.is_none_or(|f| f <= 1);
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
            replay.then_some(0)
        }
    };
    match start {
        // The snapshot committed meanwhile (or refused) starts elsewhere: read again from there.
        Some(start) if start != expected => {
            tail = Some(read_tail(log, decoder, page_size, start).await?);
        }
        Some(_) => {}
        None => tail = None,
    }
    if let Some(tail) = tail {
        metrics.replayed_entries.inc_by(tail.read);
        metrics.corrupt_entries.inc_by(tail.corrupt);
        out.tail = tail.changes;
        out.last_seq = tail.last_seq;
        out.skipped_corrupt = tail.corrupt;
        out.gaps = tail.gaps;
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

/// Load the committed snapshot and decode it on a blocking thread.
async fn load<L: EventLog, D: Decoder>(log: &L, decoder: &D) -> Result<Option<(u64, D::Snapshot)>> {
    let Some(loaded) = log.load_snapshot().await? else {
        return Ok(None);
    };
    let decoder = decoder.clone();
    let seq = loaded.meta.covered_seq;
    let snapshot = tokio::task::spawn_blocking(move || decoder.decode_snapshot(&loaded.bytes))
        .await
        .map_err(|e| PersistError::SnapshotDecode(Box::new(e)))??;
    Ok(Some((seq, snapshot)))
}

/// The stream after a sequence, decoded.
struct Tail<C> {
    changes: Vec<C>,
    last_seq: u64,
    /// Changes and defective entries read.
    read: u64,
    corrupt: u64,
    gaps: u64,
}

async fn read_tail<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    start: u64,
) -> Result<Tail<D::Change>> {
    let page_size = page_size.max(1);
    let mut tail = Tail {
        changes: Vec::new(),
        last_seq: start,
        read: 0,
        corrupt: 0,
        gaps: 0,
    };
    let mut page = log.read_after(start, page_size).await?;
    loop {
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(tail);
        };
        // Ask for the next page before decoding this one: Redis serves it meanwhile.
        let mut next = std::pin::pin!(log.read_after(last, page_size));
        let ready = match futures::poll!(next.as_mut()) {
            std::task::Poll::Ready(r) => Some(r),
            std::task::Poll::Pending => None,
        };
        tail.changes.reserve(page.len());
        for entry in page {
            if entry.seq <= tail.last_seq {
                return Err(PersistError::UnexpectedReply {
                    op: "XRANGE",
                    detail: format!("entry {} not after {}", entry.seq, tail.last_seq),
                });
            }
            let expected = tail.last_seq + 1;
            tail.last_seq = entry.seq;
            tail.read += 1;
            if let Some(defect) = &entry.defect {
                // The changes it held are unknown: counted as corrupt, not as a hole.
                tail.corrupt += 1;
                tracing::error!(seq = entry.seq, defect, "corrupt stream entry skipped");
                continue;
            }
            if entry.seq != expected {
                tail.gaps += 1;
                tracing::warn!(expected, found = entry.seq, "hole in the event log");
            }
            match decoder.decode_change(entry.seq, &entry.payload) {
                Ok(change) => tail.changes.push(change),
                Err(e) => {
                    tail.corrupt += 1;
                    tracing::error!(seq = entry.seq, error = %format!("{e:#}"), "corrupt stream entry skipped");
                }
            }
        }
        page = match ready {
            Some(r) => r?,
            None => next.await?,
        };
    }
}
