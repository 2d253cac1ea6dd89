//! The [`EventLog`] trait: an append-only log of opaque change payloads keyed by sequence number,
//! plus the committed snapshot, the generation before it and the older checkpoints retention
//! keeps. [`crate::RedisLog`] implements it on Redis Streams, [`crate::MemoryLog`] in memory.

use std::future::Future;
use std::io::Read;

use astrolabe_model::now_ms;
use bytes::Bytes;

use crate::error::{PersistError, Result};
use crate::keys::entry_id;

/// Version of the snapshot container (metadata fields, zstd, chunking) written by this build.
/// The payload inside carries its own version byte, checked by the model codec.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// One change as read back from the log (a stream entry may hold several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Sequence number of the change; for a defective stream entry, its ID's sequence.
    pub seq: u64,
    /// The change's payload; empty for a defective stream entry.
    pub payload: Bytes,
    /// Why the stream entry could not be unpacked (no payload field, unknown entry format,
    /// malformed container): the changes it held are lost, and recovery skips and counts it.
    pub defect: Option<String>,
}

/// An interval in which the graph may not reflect the cluster for some kinds: the server was
/// down, a watch failed, or the API server refused a kind. Recorded with the log (not as a change:
/// it changes no object) so that answers about the past can say where they cannot know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The kind, group-qualified as `Kind.group` (`Pod`, `Certificate.cert-manager.io`); `None`
    /// for every kind.
    pub kind: Option<String>,
    /// The namespace of the watch that failed; `None` for every namespace.
    pub namespace: Option<String>,
    /// Its start, Unix milliseconds.
    pub from_ms: i64,
    /// Its end, Unix milliseconds.
    pub to_ms: i64,
    /// Why (`server down`, `watch failed: ...`, `forbidden: ...`).
    pub reason: String,
}

/// Most gaps a log keeps (the oldest go first).
pub const MAX_GAPS: usize = 10_000;

impl Gap {
    /// Whether it overlaps `[from_ms, to_ms]`.
    #[must_use]
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.from_ms <= to_ms && self.to_ms >= from_ms
    }

    /// One line: start, end, kind (`*`: all), namespace (`*`: all), reason, tab-separated
    /// (tabs and line breaks in the reason become spaces).
    #[must_use]
    pub fn to_line(&self) -> String {
        let reason: String = self
            .reason
            .chars()
            .map(|c| {
                if c == '\t' || c == '\n' || c == '\r' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        format!(
            "{}\t{}\t{}\t{}\t{reason}",
            self.from_ms,
            self.to_ms,
            self.kind.as_deref().unwrap_or("*"),
            self.namespace.as_deref().unwrap_or("*"),
        )
    }

    /// Reads [`Gap::to_line`]'s form; `None` when malformed.
    #[must_use]
    pub fn from_line(line: &str) -> Option<Gap> {
        let mut parts = line.splitn(5, '\t');
        let from_ms = parts.next()?.parse().ok()?;
        let to_ms = parts.next()?.parse().ok()?;
        let all = |s: &str| (s != "*").then(|| s.to_owned());
        let kind = all(parts.next()?);
        let namespace = all(parts.next()?);
        let reason = parts.next()?.to_owned();
        Some(Gap {
            kind,
            namespace,
            from_ms,
            to_ms,
            reason,
        })
    }
}

/// Result of one [`EventLog::append`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Changes newly written.
    pub appended: usize,
    /// Changes in entries whose ID was not above the stream's top: already written by an
    /// earlier attempt.
    pub already_present: usize,
}

/// Result of one [`EventLog::trim_to`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrimOutcome {
    /// Entries with a sequence `<= upto` were eligible for removal (after clamping to the
    /// committed snapshot); `0` when nothing may be trimmed.
    pub upto: u64,
    /// Stream entries actually removed.
    pub removed: u64,
}

/// Result of [`EventLog::set_aside_beyond`]: the stream held entries above the plausible
/// ceiling and was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The key the whole stream, as found, was renamed to.
    pub key: String,
    /// Entries above the ceiling (left out of the stream written back).
    pub entries: u64,
    /// Entries at or below the ceiling, written back to the stream.
    pub kept: u64,
}

/// An encoded full state at a known sequence, as produced by a [`crate::SnapshotSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBlob {
    /// The last change included in the state.
    pub seq: u64,
    /// Number of resources (informational, stored in the metadata).
    pub resource_count: u64,
    /// The encoded state: uncompressed (the log compresses it), or already zstd frames when
    /// `zstd_raw_len` is set (compressed in parts, see [`crate::compress_parts`]).
    pub bytes: Bytes,
    /// The uncompressed size when `bytes` is already zstd-compressed.
    pub zstd_raw_len: Option<u64>,
    /// The last change the state may reflect: `seq` for a copy taken at once, later for one
    /// copied in slices while changes were applied (replay still starts after `seq`). The
    /// snapshotter commits only once the writer acknowledged it.
    pub copied_until: u64,
    /// When the copy started, Unix milliseconds: every change the state covers was applied
    /// at or before it (the checkpoint's time for history); 0 when unknown.
    pub taken_at_ms: i64,
}

/// Metadata of a committed snapshot (the fields of the `snapshot:meta` hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Container format version ([`SNAPSHOT_FORMAT`]).
    pub format: u32,
    /// Generation: chunk keys are `snapshot:<generation>:<i>`.
    pub generation: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// The last change the snapshot includes.
    pub covered_seq: u64,
    /// Stream entry ID of `covered_seq`.
    pub stream_id: String,
    /// Commit time, Unix milliseconds.
    pub created_at_ms: i64,
    /// When the snapshot's copy started, Unix milliseconds (see [`SnapshotBlob::taken_at_ms`]);
    /// 0 when unknown (metadata written without it).
    pub taken_at_ms: i64,
    /// Number of resources.
    pub resource_count: u64,
    /// Compressed size (sum of chunk sizes).
    pub bytes: u64,
    /// Uncompressed size.
    pub raw_bytes: u64,
    /// CRC-32 of the compressed bytes.
    pub checksum: u32,
}

impl SnapshotMeta {
    /// The time of the state: every change it covers was applied at or before it. The time its
    /// copy started, else (unknown) its commit time, which is later still.
    #[must_use]
    pub fn time_ms(&self) -> i64 {
        if self.taken_at_ms > 0 {
            self.taken_at_ms.min(self.created_at_ms)
        } else {
            self.created_at_ms
        }
    }

    /// The metadata of `blob` committed now as `generation`, stored as `compressed` (in
    /// `chunks` chunks) that decompresses to `raw_bytes`.
    #[must_use]
    pub fn committed_now(
        blob: &SnapshotBlob,
        generation: u64,
        chunks: u64,
        compressed: &[u8],
        raw_bytes: u64,
    ) -> Self {
        Self {
            format: SNAPSHOT_FORMAT,
            generation,
            chunks,
            covered_seq: blob.seq,
            stream_id: entry_id(blob.seq),
            created_at_ms: now_ms(),
            taken_at_ms: blob.taken_at_ms,
            resource_count: blob.resource_count,
            bytes: compressed.len() as u64,
            raw_bytes,
            checksum: crc32fast::hash(compressed),
        }
    }
}

/// A snapshot read back, its chunks complete and its checksum verified.
#[derive(Debug, Clone)]
pub struct LoadedSnapshot {
    /// Its metadata.
    pub meta: SnapshotMeta,
    /// The payload as stored: compressed (zstd).
    pub compressed: Bytes,
}

impl LoadedSnapshot {
    /// The payload `compressed` of the snapshot `meta` describes, checked against it: its size
    /// and its CRC-32.
    ///
    /// # Errors
    /// [`PersistError::SnapshotCorrupt`] when the size or the checksum differs.
    pub fn verified(meta: SnapshotMeta, compressed: Bytes) -> Result<Self> {
        let corrupt = |detail: String| PersistError::SnapshotCorrupt {
            generation: meta.generation,
            detail,
        };
        if compressed.len() as u64 != meta.bytes {
            return Err(corrupt(format!(
                "{} bytes, metadata says {}",
                compressed.len(),
                meta.bytes
            )));
        }
        let checksum = crc32fast::hash(&compressed);
        if checksum != meta.checksum {
            return Err(corrupt(format!(
                "crc32 {checksum:08x}, metadata says {:08x}",
                meta.checksum
            )));
        }
        Ok(Self { meta, compressed })
    }

    /// The payload, decompressed as it is read (no buffer the size of the whole); finish with
    /// [`SnapshotStream::finish`], which checks its length against the metadata's.
    ///
    /// # Errors
    /// [`PersistError::SnapshotCompress`] if the decompressor cannot be set up.
    pub fn stream(&self) -> Result<SnapshotStream<'_>> {
        Ok(SnapshotStream {
            inner: zstd::stream::read::Decoder::with_buffer(&self.compressed[..])
                .map_err(PersistError::SnapshotCompress)?,
            read: 0,
            meta: &self.meta,
        })
    }

    /// The whole payload, decompressed and checked.
    ///
    /// # Errors
    /// [`PersistError::SnapshotDecode`] if it does not decompress,
    /// [`PersistError::SnapshotCorrupt`] if its length is not the metadata's.
    pub fn decompress(&self) -> Result<Vec<u8>> {
        let mut stream = self.stream()?;
        let out = read_whole(&mut stream, self.meta.raw_bytes)?;
        stream.finish()?;
        Ok(out)
    }
}

/// Reads a snapshot payload of `len` bytes to its end into one buffer, reserved up front but
/// never beyond 1 GiB (the length may be corrupt).
///
/// # Errors
/// [`PersistError::SnapshotDecode`] when the source fails.
pub(crate) fn read_whole(payload: &mut dyn Read, len: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
    payload
        .read_to_end(&mut out)
        .map_err(|e| PersistError::SnapshotDecode(Box::new(e)))?;
    Ok(out)
}

/// A snapshot's payload, decompressed as it is read ([`LoadedSnapshot::stream`]). Reading
/// past the length the metadata names is an error.
pub struct SnapshotStream<'a> {
    inner: zstd::stream::read::Decoder<'static, &'a [u8]>,
    read: u64,
    meta: &'a SnapshotMeta,
}

impl std::fmt::Debug for SnapshotStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("read", &self.read)
            .field("raw_bytes", &self.meta.raw_bytes)
            .finish_non_exhaustive()
    }
}

impl Read for SnapshotStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.read += n as u64;
        if self.read > self.meta.raw_bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "longer than the {} bytes the metadata names",
                    self.meta.raw_bytes
                ),
            ));
        }
        Ok(n)
    }
}

impl SnapshotStream<'_> {
    /// Reads what the consumer left (bytes after the last value are allowed) and checks the
    /// payload's length against the metadata's.
    ///
    /// # Errors
    /// [`PersistError::SnapshotDecode`] if the rest does not decompress,
    /// [`PersistError::SnapshotCorrupt`] if the length differs.
    pub fn finish(mut self) -> Result<()> {
        std::io::copy(&mut self, &mut std::io::sink())
            .map_err(|e| PersistError::SnapshotDecode(Box::new(e)))?;
        if self.read != self.meta.raw_bytes {
            return Err(PersistError::SnapshotCorrupt {
                generation: self.meta.generation,
                detail: format!(
                    "{} bytes decompressed, expected {}",
                    self.read, self.meta.raw_bytes
                ),
            });
        }
        Ok(())
    }
}

/// An append-only log of changes plus the committed snapshot, the one before it and the older
/// checkpoints a [`crate::HistoryRetention`] keeps.
///
/// Sequences start at 1 and strictly increase. Implementations must make [`EventLog::append`]
/// idempotent: re-appending a batch already present is not an error and writes nothing, and
/// reads return each sequence once even if overlapping batches were appended.
pub trait EventLog: Send + Sync + 'static {
    /// Append a batch of `(seq, payload)` in one round trip, packed into as few stream entries as
    /// the entry bounds allow. [`AppendOutcome`] counts changes.
    ///
    /// # Errors
    /// [`crate::PersistError::AppendFailed`] if the batch may be partially applied (retry it),
    /// [`crate::PersistError::AppendRejected`] for a non-retryable refusal,
    /// [`crate::PersistError::BatchOrder`] for a malformed batch.
    fn append(&self, batch: &[(u64, Bytes)]) -> impl Future<Output = Result<AppendOutcome>> + Send;

    /// Sequence of the newest change, `None` for an empty or missing stream.
    ///
    /// # Errors
    /// [`crate::PersistError::ReadFailed`] when Redis cannot be read.
    fn last_seq(&self) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Sequence of the oldest change, `None` for an empty or missing stream.
    ///
    /// # Errors
    /// [`crate::PersistError::ReadFailed`] when Redis cannot be read.
    fn first_seq(&self) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// The changes with a sequence strictly greater than `after` from up to `page_size` stream
    /// entries, oldest first, each sequence once. Empty only at the end of the stream.
    ///
    /// # Errors
    /// [`crate::PersistError::ReadFailed`] when Redis cannot be read.
    fn read_after(
        &self,
        after: u64,
        page_size: usize,
    ) -> impl Future<Output = Result<Vec<LogEntry>>> + Send;

    /// When the stream holds entries with a sequence above `ceiling` (see [`crate::plausible`]),
    /// rename it to a new key and write its entries at or below `ceiling` back under the stream's
    /// name, in one atomic step: appends above the last plausible entry succeed again, and
    /// nothing is deleted. `None` when no entry is above `ceiling`.
    ///
    /// # Errors
    /// [`crate::PersistError::SetAsideFailed`] when Redis refuses or cannot be reached.
    fn set_aside_beyond(
        &self,
        ceiling: u64,
    ) -> impl Future<Output = Result<Option<SetAside>>> + Send;

    /// Remove stream entries whose changes all have a sequence `<= upto`, clamped to the
    /// oldest retained checkpoint's covered sequence (with the default retention, the previous
    /// generation's: never trims what the oldest kept checkpoint does not cover; nothing while
    /// only one generation exists).
    ///
    /// # Errors
    /// [`crate::PersistError::TrimFailed`] or a snapshot metadata error.
    fn trim_to(&self, upto: u64) -> impl Future<Output = Result<TrimOutcome>> + Send;

    /// Compress, upload as a new generation and commit atomically; the generation it replaces
    /// becomes the previous one ([`EventLog::load_previous_snapshot`]) and the older
    /// checkpoints that retention no longer needs are deleted (with the default retention,
    /// every one before the previous generation).
    ///
    /// # Errors
    /// [`crate::PersistError::SnapshotWrite`] (the previous snapshot stays committed),
    /// [`crate::PersistError::SnapshotSuperseded`] if a newer snapshot was committed meanwhile.
    fn write_snapshot(
        &self,
        blob: &SnapshotBlob,
    ) -> impl Future<Output = Result<SnapshotMeta>> + Send;

    /// The committed snapshot's metadata, `None` if there is none.
    ///
    /// # Errors
    /// [`crate::PersistError::UnknownFormat`], [`crate::PersistError::SnapshotMeta`],
    /// [`crate::PersistError::SnapshotRead`].
    fn snapshot_meta(&self) -> impl Future<Output = Result<Option<SnapshotMeta>>> + Send;

    /// Load, verify and decompress the committed snapshot, `None` if there is none.
    ///
    /// # Errors
    /// Any snapshot error: unknown format, missing chunk, checksum mismatch, decompression.
    fn load_snapshot(&self) -> impl Future<Output = Result<Option<LoadedSnapshot>>> + Send;

    /// Load and verify the previous snapshot generation (the one the last commit replaced),
    /// `None` if there is none: recovery's fallback when the committed one is refused.
    ///
    /// # Errors
    /// As [`EventLog::load_snapshot`].
    fn load_previous_snapshot(&self)
    -> impl Future<Output = Result<Option<LoadedSnapshot>>> + Send;

    /// Note that recovery refused the committed snapshot of `generation` and fell back: the
    /// commit that replaces it unlinks it instead of keeping it as the previous generation, so
    /// the generation recovery used stays the fallback (and the stream behind it stays).
    fn refuse_generation(&self, generation: u64);

    /// Every retained checkpoint's metadata, ordered by `covered_seq` ascending: the committed
    /// snapshot last, the previous generation before it, older checkpoints before that.
    ///
    /// # Errors
    /// As [`EventLog::snapshot_meta`].
    fn checkpoints(&self) -> impl Future<Output = Result<Vec<SnapshotMeta>>> + Send;

    /// Load and verify the retained checkpoint of `generation` (as [`EventLog::load_snapshot`]
    /// does), `None` if no retained checkpoint has that generation.
    ///
    /// # Errors
    /// As [`EventLog::load_snapshot`].
    fn load_checkpoint(
        &self,
        generation: u64,
    ) -> impl Future<Output = Result<Option<LoadedSnapshot>>> + Send;

    /// Records `gap`, and forgets gaps that ended before retention's age (at most [`MAX_GAPS`]
    /// are kept).
    ///
    /// # Errors
    /// [`crate::PersistError::GapFailed`] when Redis cannot be written.
    fn record_gap(&self, gap: &Gap) -> impl Future<Output = Result<()>> + Send;

    /// The recorded gaps that overlap `[from_ms, to_ms]`, by end time. A record that does not
    /// read is skipped (and logged).
    ///
    /// # Errors
    /// [`crate::PersistError::ReadFailed`] when Redis cannot be read.
    fn gaps(&self, from_ms: i64, to_ms: i64) -> impl Future<Output = Result<Vec<Gap>>> + Send;

    /// Delete chunks of every generation that is not a retained checkpoint (left by a crash
    /// between upload and commit). Returns the number of keys deleted.
    ///
    /// # Errors
    /// [`crate::PersistError::SweepFailed`], or a metadata error (then nothing is deleted).
    fn sweep_orphans(&self) -> impl Future<Output = Result<u64>> + Send;
}
