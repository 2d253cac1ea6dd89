//! Start-up recovery: sweep orphan chunks, load the committed snapshot, replay the stream after
//! it in pages. Corrupt entries are skipped and counted; a corrupt or unknown-format snapshot
//! is refused, and recovery falls back ([`Fallback`]) to the previous snapshot generation and
//! the stream after it, else to the whole stream if it still starts at sequence 1, else it
//! starts empty. Entries above the plausible ceiling ([`crate::plausible`]) are corrupt:
//! counted, skipped, and never trusted for the sequence; when the stream's top is one,
//! [`recover`] sets the stream aside so appends work again. A key holding another Redis type
//! is reported ([`Recovered::wrong_type`]) and recovery uses the other keys. Never a panic,
//! never half-applied: the caller gets everything or an error.

use crate::error::ErrorChain;
use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::error::{KeyRole, PersistError, Result};
use crate::log::{EventLog, LoadedSnapshot, SetAside};
use crate::metrics::PersistMetrics;
use crate::plausible::{seq_ceiling_now, set_aside_reported};

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

    /// Decode a snapshot payload of `len` bytes read as a stream (decompressed as it is read,
    /// which is how recovery calls it; the stream fails past `len`). The default reads it
    /// whole, then calls [`Decoder::decode_snapshot`].
    ///
    /// # Errors
    /// As [`Decoder::decode_snapshot`]; a failing stream is [`PersistError::SnapshotDecode`].
    fn decode_snapshot_from(
        &self,
        payload: &mut (dyn Read + Send),
        len: u64,
    ) -> Result<Self::Snapshot> {
        self.decode_snapshot(&crate::log::read_whole(payload, len)?)
    }

    /// Decode the payload of stream entry `seq`.
    ///
    /// # Errors
    /// Any error marks the entry corrupt (it is skipped and counted).
    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<Self::Change>;

    /// The key of the object a change's payload is about (bytes of the payload, or derived
    /// from them). A change that carries the whole new state of its object, or its removal,
    /// supersedes every earlier change with the same key: recovery decodes only the last
    /// readable change per key, with the changes it needs ([`Decoder::needs_previous`]), in
    /// order (a tail of many updates to few objects replays in the time of the few). `None`,
    /// the default, for a payload without a key: it is decoded and kept in its place.
    fn change_key(&self, payload: &Bytes) -> Option<Bytes> {
        let _ = payload;
        None
    }

    /// Whether a change's payload is relative to the previous change with its key (a patch):
    /// recovery then keeps that one too, and so on back to a whole one or to the snapshot.
    /// The default: never.
    fn needs_previous(&self, payload: &[u8]) -> bool {
        let _ = payload;
        false
    }
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered<S, C> {
    /// The snapshot, if one was committed and could be loaded.
    pub snapshot: Option<S>,
    /// Sequence the snapshot covers (0 without snapshot).
    pub snapshot_seq: u64,
    /// Changes after the snapshot, in order; apply them after the snapshot. Only the last one
    /// per object when the decoder keys changes ([`Decoder::change_key`]).
    pub tail: Vec<C>,
    /// Changes after the snapshot that were read but left out of `tail`, because a later change
    /// to the same object superseded them.
    pub superseded: u64,
    /// The highest sequence known to Redis (snapshot, replayed entries, stream top): the next
    /// change must use a larger one.
    pub last_seq: u64,
    /// The last sequence the snapshot and the replayed tail cover: what a graph built from
    /// them holds. Below `last_seq` when a writer appended after the tail was read (a follower
    /// reads the log while the leader writes it): such a reader continues after this one.
    pub read_seq: u64,
    /// Corrupt stream entries skipped.
    pub skipped_corrupt: u64,
    /// Places where the replayed sequence jumped (a hole in the log).
    pub gaps: u64,
    /// Why a committed snapshot was refused, if it was.
    pub snapshot_refused: Option<String>,
    /// The stream's top sequence when it is above the plausible ceiling
    /// ([`crate::plausible`]): appends below it would be refused, so [`recover`] sets the
    /// stream aside. Not part of `last_seq`.
    pub implausible_top: Option<u64>,
    /// Where [`recover`] moved the stream found with an implausible top.
    pub set_aside: Option<SetAside>,
    /// Keys found holding another Redis type (WRONGTYPE), left as they are: recovery used what
    /// the other keys hold (the snapshot alone, or the stream from its start).
    pub wrong_type: Vec<KeyRole>,
    /// What recovery fell back to when the committed snapshot was refused.
    pub fallback: Option<Fallback>,
    /// The generation of the refused committed snapshot, when its metadata could be read.
    pub refused_generation: Option<u64>,
}

/// What recovery used instead of a refused committed snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The previous snapshot generation and the stream after it.
    PreviousSnapshot,
    /// The whole stream, which still starts at sequence 1.
    WholeStream,
    /// Nothing usable: the previous generation is missing or refused too and the stream is
    /// trimmed. Recovery starts empty and leaves the old keys untouched.
    Nothing,
}

impl Fallback {
    /// A short name, the `source` label of `astrolabe_persist_recovery_fallbacks_total`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::PreviousSnapshot => "previous_snapshot",
            Fallback::WholeStream => "whole_stream",
            Fallback::Nothing => "nothing",
        }
    }
}

/// Recover the state from `log` at start-up: sweep orphan chunks of uncommitted snapshot
/// generations (only the process that owns the log may do this), then [`read_state`]; when the
/// stream's top is above the plausible ceiling, set the stream aside
/// ([`EventLog::set_aside_beyond`]) so that appends after `last_seq` are accepted again; when
/// the committed snapshot was refused, tell the log ([`EventLog::refuse_generation`]) so the
/// next commit does not keep it as the previous generation.
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
        Err(e) => tracing::warn!(error = %ErrorChain(&e), "orphan sweep skipped"),
    }
    let ceiling = seq_ceiling_now();
    let mut out = read_state_below(log, decoder, page_size, metrics, ceiling).await?;
    if let Some(generation) = out.refused_generation {
        log.refuse_generation(generation);
    }
    if let Some(top) = out.implausible_top {
        out.set_aside = log.set_aside_beyond(ceiling).await?;
        if let Some(aside) = &out.set_aside {
            set_aside_reported(metrics, aside, top, ceiling);
        }
    }
    Ok(out)
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
    read_state_below(log, decoder, page_size, metrics, seq_ceiling_now()).await
}

/// Reads of the state at most, when snapshots keep being committed while it is read.
const READ_ATTEMPTS: usize = 3;

/// The committed snapshot's generation (`None` without one, or when the metadata cannot be
/// read: the read itself reports that).
async fn committed_generation<L: EventLog>(log: &L) -> Option<u64> {
    log.snapshot_meta()
        .await
        .ok()
        .flatten()
        .map(|m| m.generation)
}

/// [`read_state`], with stream entries above `ceiling` counted as corrupt.
///
/// A snapshot committed while the state is read may trim the stream the read is walking (the
/// read took "no snapshot yet" and the stream from the start, then found it trimmed behind the
/// new snapshot): when the committed generation changed during a read, the state is read again,
/// up to [`READ_ATTEMPTS`] times.
async fn read_state_below<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    metrics: &PersistMetrics,
    ceiling: u64,
) -> Result<Recovered<D::Snapshot, D::Change>> {
    let mut attempt = 1;
    loop {
        let before = committed_generation(log).await;
        let out = read_state_once(log, decoder, page_size, metrics, ceiling).await?;
        let after = committed_generation(log).await;
        if before == after || attempt >= READ_ATTEMPTS {
            return Ok(out);
        }
        tracing::info!(
            ?before,
            ?after,
            "a snapshot was committed while the log was read; reading it again"
        );
        attempt += 1;
    }
}

/// One read of the state (see [`read_state_below`]).
async fn read_state_once<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    metrics: &PersistMetrics,
    ceiling: u64,
) -> Result<Recovered<D::Snapshot, D::Change>> {
    let started = Instant::now();
    let mut out = Recovered {
        snapshot: None,
        snapshot_seq: 0,
        tail: Vec::new(),
        superseded: 0,
        last_seq: 0,
        read_seq: 0,
        skipped_corrupt: 0,
        gaps: 0,
        snapshot_refused: None,
        implausible_top: None,
        set_aside: None,
        wrong_type: Vec::new(),
        fallback: None,
        refused_generation: None,
    };
    // Where the tail starts if the snapshot loads (a metadata error is reported by the load).
    let (expected, generation) = match log.snapshot_meta().await {
        Ok(meta) => meta.map_or((0, None), |m| (m.covered_seq, Some(m.generation))),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            note_wrong_type(&e, metrics, &mut out.wrong_type);
            (0, None)
        }
    };
    let (loaded, tail) = tokio::join!(
        decode(log.load_snapshot(), decoder),
        read_tail(log, decoder, page_size, expected, ceiling)
    );
    let mut tail = unless_wrong_type(tail.map(Some), metrics, &mut out.wrong_type)?;
    let start = match loaded {
        Ok(Some((seq, snapshot))) => {
            out.snapshot = Some(snapshot);
            out.snapshot_seq = seq;
            Some(seq)
        }
        Ok(None) => Some(0),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            metrics.refused_snapshots.inc();
            out.snapshot_refused = Some(ErrorChain(&e).to_string());
            out.refused_generation = generation;
            let (fallback, start) = fall_back(log, decoder, &e, metrics, &mut out).await?;
            metrics
                .recovery_fallbacks
                .with_label_values(&[fallback.as_str()])
                .inc();
            out.fallback = Some(fallback);
            start
        }
    };
    match start {
        // The snapshot committed meanwhile (or refused) starts elsewhere: read again from there.
        Some(start) if start != expected && !out.wrong_type.contains(&KeyRole::Events) => {
            tail = Some(read_tail(log, decoder, page_size, start, ceiling).await?);
        }
        Some(_) => {}
        None => tail = None,
    }
    if let Some(tail) = tail {
        metrics.replayed_entries.inc_by(tail.read);
        metrics.corrupt_entries.inc_by(tail.corrupt);
        metrics.superseded_entries.inc_by(tail.superseded);
        out.tail = tail.changes;
        out.superseded = tail.superseded;
        out.last_seq = tail.last_seq;
        out.skipped_corrupt = tail.corrupt;
        out.gaps = tail.gaps;
    }
    out.read_seq = out.last_seq.max(out.snapshot_seq);
    // The top tells of entries a trimmed tail no longer shows, unless it is implausible.
    let top = unless_wrong_type(log.last_seq().await, metrics, &mut out.wrong_type)?.unwrap_or(0);
    if top > ceiling {
        out.implausible_top = Some(top);
    }
    out.last_seq = out.last_seq.max(out.snapshot_seq);
    if top <= ceiling {
        out.last_seq = out.last_seq.max(top);
    }
    metrics
        .recovery_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        snapshot_seq = out.snapshot_seq,
        replayed = out.tail.len(),
        superseded = out.superseded,
        corrupt = out.skipped_corrupt,
        gaps = out.gaps,
        last_seq = out.last_seq,
        seconds = started.elapsed().as_secs_f64(),
        "recovery finished"
    );
    Ok(out)
}

/// `result`, or the default when it failed on a key of the wrong type (noted once, loudly).
fn unless_wrong_type<T: Default>(
    result: Result<T>,
    metrics: &PersistMetrics,
    wrong_type: &mut Vec<KeyRole>,
) -> Result<T> {
    match result {
        Err(e) if e.wrong_type_key().is_some() => {
            note_wrong_type(&e, metrics, wrong_type);
            Ok(T::default())
        }
        other => other,
    }
}

/// Note a key of the wrong type in `wrong_type` and the metrics, and log it once per key.
fn note_wrong_type(e: &PersistError, metrics: &PersistMetrics, wrong_type: &mut Vec<KeyRole>) {
    let Some(role) = e.wrong_type_key() else {
        return;
    };
    metrics.redis_error(e);
    if !wrong_type.contains(&role) {
        wrong_type.push(role);
        tracing::error!(
            key = role.label(),
            error = %ErrorChain(e),
            "a key of the store holds another redis type: recovering from the other keys; it is left as it is and not written until removed or renamed"
        );
    }
}

/// After the committed snapshot was refused with `refused`: the previous generation if it
/// loads (into `out`), else the whole stream if it starts at sequence 1, else nothing. Returns
/// what was used and where the tail starts (`None`: no tail, recovery starts empty).
async fn fall_back<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    refused: &PersistError,
    metrics: &PersistMetrics,
    out: &mut Recovered<D::Snapshot, D::Change>,
) -> Result<(Fallback, Option<u64>)> {
    let refused = format!("{refused:#}");
    let previous = match decode(log.load_previous_snapshot(), decoder).await {
        Ok(Some((seq, snapshot))) => {
            tracing::error!(
                error = %refused,
                previous_seq = seq,
                "snapshot refused; recovering from the previous generation and the stream after it"
            );
            out.snapshot = Some(snapshot);
            out.snapshot_seq = seq;
            return Ok((Fallback::PreviousSnapshot, Some(seq)));
        }
        Ok(None) => "none kept".to_owned(),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            note_wrong_type(&e, metrics, &mut out.wrong_type);
            ErrorChain(&e).to_string()
        }
    };
    let first = unless_wrong_type(log.first_seq().await, metrics, &mut out.wrong_type)?;
    if first.is_none_or(|f| f <= 1) {
        tracing::error!(
            error = %refused,
            previous = %previous,
            "snapshot and previous generation refused; rebuilding from the whole stream"
        );
        Ok((Fallback::WholeStream, Some(0)))
    } else {
        tracing::error!(
            error = %refused,
            previous = %previous,
            first_seq = first,
            "snapshot and previous generation refused and the stream is trimmed; starting empty (old keys left untouched)"
        );
        Ok((Fallback::Nothing, None))
    }
}

/// Await a loaded snapshot and decode it on a blocking thread.
async fn decode<D: Decoder>(
    loaded: impl std::future::Future<Output = Result<Option<LoadedSnapshot>>>,
    decoder: &D,
) -> Result<Option<(u64, D::Snapshot)>> {
    let Some(loaded) = loaded.await? else {
        return Ok(None);
    };
    let decoder = decoder.clone();
    let seq = loaded.meta.covered_seq;
    let snapshot = tokio::task::spawn_blocking(move || {
        let mut stream = loaded.stream()?;
        let snapshot = decoder.decode_snapshot_from(&mut stream, loaded.meta.raw_bytes)?;
        stream.finish()?;
        Ok::<_, PersistError>(snapshot)
    })
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
    /// Changes read but not decoded: a later change with the same key superseded them.
    superseded: u64,
}

/// A change read from the stream, not yet decoded.
struct ReadChange {
    seq: u64,
    payload: Bytes,
    /// The previous change with the same key, if any (recovery falls back to it when this one
    /// does not decode).
    prev: Option<usize>,
    /// Whether a later change has the same key.
    superseded: bool,
}

/// Read the stream after `start` in pages (the next page is requested before this one is
/// looked at), then decode the last change per key ([`Decoder::change_key`]) in order.
async fn read_tail<L: EventLog, D: Decoder>(
    log: &L,
    decoder: &D,
    page_size: usize,
    start: u64,
    ceiling: u64,
) -> Result<Tail<D::Change>> {
    let page_size = page_size.max(1);
    let mut tail = Tail {
        changes: Vec::new(),
        last_seq: start,
        read: 0,
        corrupt: 0,
        gaps: 0,
        superseded: 0,
    };
    let mut reads: Vec<ReadChange> = Vec::new();
    let mut last_of_key: FxHashMap<Bytes, usize> = FxHashMap::default();
    let mut page = log.read_after(start, page_size).await?;
    while let Some(last) = page.last().map(|e| e.seq) {
        // Ask for the next page before looking at this one: Redis serves it meanwhile.
        let mut next = std::pin::pin!(log.read_after(last, page_size));
        let ready = match futures::poll!(next.as_mut()) {
            std::task::Poll::Ready(r) => Some(r),
            std::task::Poll::Pending => None,
        };
        reads.reserve(page.len());
        for entry in page {
            if entry.seq > ceiling {
                // Not written by this design (stream IDs only grow: every later entry is
                // beyond too); trusting it would carry the sequence toward wraparound.
                tail.read += 1;
                tail.corrupt += 1;
                tracing::error!(
                    seq = entry.seq,
                    ceiling,
                    "stream entry beyond any plausible sequence skipped"
                );
                continue;
            }
            if entry.seq <= tail.last_seq {
                return Err(PersistError::UnexpectedReply {
                    op: "XRANGE",
                    detail: format!("entry {} not after {}", entry.seq, tail.last_seq),
                });
            }
            let expected = tail.last_seq.saturating_add(1);
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
            let at = reads.len();
            let prev = decoder
                .change_key(&entry.payload)
                .and_then(|key| last_of_key.insert(key, at));
            if let Some(p) = prev {
                reads[p].superseded = true;
            }
            reads.push(ReadChange {
                seq: entry.seq,
                payload: entry.payload,
                prev,
                superseded: false,
            });
        }
        page = match ready {
            Some(r) => r?,
            None => next.await?,
        };
    }
    drop(last_of_key);
    decode_latest(decoder, &reads, &mut tail);
    Ok(tail)
}

/// Decode every change no later one supersedes, in order, with the earlier changes it needs
/// ([`Decoder::needs_previous`]: a patch, back to a whole change or the start of the tail). One
/// that does not decode is counted and skipped: the changes before it that it would have
/// superseded stand in, as a replay of every change would have left that object; the patches
/// after it cannot be applied and are counted with it.
fn decode_latest<D: Decoder>(decoder: &D, reads: &[ReadChange], tail: &mut Tail<D::Change>) {
    let mut decoded = 0u64;
    let mut kept: Vec<(u64, D::Change)> = Vec::new();
    let mut out_of_order = false;
    for (i, latest) in reads.iter().enumerate() {
        if latest.superseded {
            continue;
        }
        let mut at = Some(i);
        while let Some(j) = at {
            // `j` and the changes it needs, oldest first.
            let mut chain = vec![j];
            let mut k = j;
            while decoder.needs_previous(&reads[k].payload)
                && let Some(p) = reads[k].prev
            {
                chain.push(p);
                k = p;
            }
            chain.reverse();
            let mut failed = None;
            for (n, &c) in chain.iter().enumerate() {
                let read = &reads[c];
                decoded += 1;
                match decoder.decode_change(read.seq, &read.payload) {
                    Ok(change) => {
                        out_of_order |= kept.last().is_some_and(|(s, _)| *s > read.seq);
                        kept.push((read.seq, change));
                    }
                    Err(e) => {
                        tail.corrupt += 1;
                        tracing::error!(seq = read.seq, error = %ErrorChain(&e), "corrupt stream entry skipped");
                        failed = Some(n);
                        break;
                    }
                }
            }
            match failed {
                None => at = None,
                // The oldest one: the change before it stands in.
                Some(0) => at = reads[chain[0]].prev,
                Some(n) => {
                    let lost = (chain.len() - n - 1) as u64;
                    if lost > 0 {
                        decoded += lost;
                        tail.corrupt += lost;
                        tracing::error!(
                            seq = reads[chain[n]].seq,
                            lost,
                            "patches after a corrupt stream entry cannot be applied"
                        );
                    }
                    at = None;
                }
            }
        }
    }
    if out_of_order {
        kept.sort_by_key(|(seq, _)| *seq);
    }
    tail.superseded = reads.len() as u64 - decoded;
    tail.changes = kept.into_iter().map(|(_, change)| change).collect();
}
