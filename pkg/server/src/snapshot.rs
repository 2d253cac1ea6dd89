//! `snapshot export` / `snapshot import`: back up and restore a cluster's persisted state.
//!
//! The file is the model's versioned snapshot encoding (see `docs/adr/0001`), zstd-compressed.
//! Export reads the committed snapshot and replays the stream after it, so the file holds the
//! state at the last persisted change; when the committed snapshot is refused, it exports what
//! recovery falls back to if that is a complete history (the previous generation and the
//! stream after it, or the whole stream). Import writes the file as a new snapshot covering
//! every sequence Redis knows of, so the imported state is what a restarting server recovers;
//! the snapshot it replaced stays as the previous generation and the stream is trimmed behind
//! that one.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use astrolabe_graph::now_ms;
use astrolabe_model::codec::{self, CodecError, Snapshot};
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, EventLog, Fallback, PersistError, PersistMetrics, read_state,
    snapshot_blob,
};

use crate::config::PersistConfig;
use crate::decoder::DECODER;
use crate::persistence::{PersistenceError, connect};
use crate::recovery::rebuild;

/// zstd level for export files.
const LEVEL: i32 = 3;

/// What can go wrong while exporting or importing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The Redis connection could not be configured.
    #[error(transparent)]
    Configure(#[from] PersistenceError),
    /// The metrics recovery counts into could not be created.
    #[error("creating the recovery metrics failed")]
    Metrics(#[source] PersistError),
    /// Reading the persisted state (snapshot and stream) from Redis failed.
    #[error("reading the persisted state from redis failed")]
    ReadState(#[source] PersistError),
    /// The committed snapshot cannot be read, and neither the previous generation nor the whole
    /// stream can stand in for it.
    #[error("the persisted snapshot cannot be read: {0}")]
    SnapshotRefused(String),
    /// Nothing is persisted under this cluster name.
    #[error(
        "nothing is persisted under {events} in this redis (check --cluster-name and the database)"
    )]
    NothingPersisted {
        /// The stream key looked at.
        events: String,
    },
    /// Encoding the snapshot failed.
    #[error("encoding the snapshot failed")]
    Encode(#[source] CodecError),
    /// Encoding the snapshot for Redis failed.
    #[error("encoding the snapshot for redis failed")]
    EncodeBlob(#[source] PersistError),
    /// Compressing or decompressing the file failed.
    #[error("not a snapshot file (zstd)")]
    Zstd(#[source] std::io::Error),
    /// The file does not hold a valid snapshot.
    #[error("not a valid snapshot")]
    Decode(#[source] CodecError),
    /// Reading or writing the file failed.
    #[error("{action} {} failed", path.display())]
    File {
        /// What was done to the file.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the stream's top or the snapshot metadata failed.
    #[error("reading the stream and snapshot metadata failed")]
    ReadTop(#[source] PersistError),
    /// Writing the snapshot to Redis failed.
    #[error("writing the snapshot failed")]
    WriteSnapshot(#[source] PersistError),
    /// Trimming the stream behind the imported snapshot failed.
    #[error("trimming the stream failed")]
    Trim(#[source] PersistError),
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Resources in the file.
    pub resources: usize,
    /// The sequence the file covers.
    pub seq: u64,
    /// The file.
    pub file: PathBuf,
    /// The file's size.
    pub bytes: usize,
    /// Corrupt stream entries skipped.
    pub skipped_corrupt: u64,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exported {} resources at sequence {} to {} ({} bytes; {} corrupt entries skipped)",
            self.resources,
            self.seq,
            self.file.display(),
            self.bytes,
            self.skipped_corrupt
        )
    }
}

/// What [`import`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Resources imported.
    pub resources: usize,
    /// The file.
    pub file: PathBuf,
    /// The sequence the new snapshot covers.
    pub seq: u64,
    /// Its compressed size.
    pub bytes: u64,
    /// Stream entries trimmed behind it.
    pub trimmed: u64,
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} resources from {} as the snapshot at sequence {} ({} bytes compressed); {} stream entries trimmed",
            self.resources,
            self.file.display(),
            self.seq,
            self.bytes,
            self.trimmed
        )
    }
}

/// Writes the persisted state (last snapshot + the stream after it) of the cluster `config`
/// names to `file`. Read-only on Redis: a running server may be writing meanwhile.
///
/// # Errors
/// Redis unreachable, nothing persisted, an unreadable snapshot, or the file not writable.
pub async fn export(config: &PersistConfig, file: &Path) -> Result<Exported, SnapshotError> {
    let log = connect(config)?;
    let metrics = PersistMetrics::unregistered().map_err(SnapshotError::Metrics)?;
    let recovered = read_state(&log, &DECODER, DEFAULT_REPLAY_PAGE, &metrics)
        .await
        .map_err(SnapshotError::ReadState)?;
    if let Some(why) = &recovered.snapshot_refused {
        // The previous generation or the whole stream is a complete history; nothing is not.
        match recovered.fallback {
            Some(Fallback::PreviousSnapshot | Fallback::WholeStream) => tracing::warn!(
                refused = %why,
                fallback = recovered.fallback.map_or("", Fallback::as_str),
                "the committed snapshot is refused; exporting what recovery fell back to"
            ),
            _ => return Err(SnapshotError::SnapshotRefused(why.clone())),
        }
    }
    if recovered.snapshot.is_none() && recovered.last_seq == 0 {
        return Err(SnapshotError::NothingPersisted {
            events: log.keys().events().to_owned(),
        });
    }
    let skipped_corrupt = recovered.skipped_corrupt;
    let snapshot = rebuild(recovered).snapshot();
    let encoded = codec::encode_snapshot(&snapshot).map_err(SnapshotError::Encode)?;
    let compressed = zstd::encode_all(encoded.as_slice(), LEVEL).map_err(SnapshotError::Zstd)?;
    let tmp = file.with_extension("partial");
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| SnapshotError::File {
            action,
            path,
            source,
        }
    };
    {
        let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&compressed).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
    }
    std::fs::rename(&tmp, file).map_err(io("renaming to", file))?;
    Ok(Exported {
        resources: snapshot.resources.len(),
        seq: snapshot.seq,
        file: file.to_owned(),
        bytes: compressed.len(),
        skipped_corrupt,
    })
}

/// Reads an export file.
///
/// # Errors
/// Unreadable, not zstd, unknown format version or malformed.
pub fn read_file(file: &Path) -> Result<Snapshot, SnapshotError> {
    let compressed = std::fs::read(file).map_err(|source| SnapshotError::File {
        action: "reading",
        path: file.to_owned(),
        source,
    })?;
    let bytes = zstd::decode_all(compressed.as_slice()).map_err(SnapshotError::Zstd)?;
    codec::decode_snapshot(&bytes).map_err(SnapshotError::Decode)
}

/// Replaces the persisted state of the cluster `config` names with the contents of `file`
/// (stop the server first).
///
/// # Errors
/// Redis unreachable, or the file unreadable or invalid.
pub async fn import(config: &PersistConfig, file: &Path) -> Result<Imported, SnapshotError> {
    let log = connect(config)?;
    let mut snapshot = read_file(file)?;
    let last = log
        .last_seq()
        .await
        .map_err(SnapshotError::ReadTop)?
        .unwrap_or(0);
    let committed = log
        .snapshot_meta()
        .await
        .map_err(SnapshotError::ReadTop)?
        .map_or(0, |m| m.covered_seq);
    // Cover everything Redis knows of, so nothing older is replayed on top of the import.
    snapshot.seq = snapshot.seq.max(last).max(committed);
    snapshot.taken_at_ms = now_ms();
    let blob = snapshot_blob(&snapshot).map_err(SnapshotError::EncodeBlob)?;
    let meta = log
        .write_snapshot(&blob)
        .await
        .map_err(SnapshotError::WriteSnapshot)?;
    let trimmed = log
        .trim_to(snapshot.seq)
        .await
        .map_err(SnapshotError::Trim)?;
    Ok(Imported {
        resources: snapshot.resources.len(),
        file: file.to_owned(),
        seq: meta.covered_seq,
        bytes: meta.bytes,
        trimmed: trimmed.removed,
    })
}
