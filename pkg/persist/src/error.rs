//! The error type of the persistence layer, one variant per failed operation.

/// Result alias used throughout the crate.
pub type Result<T, E = PersistError> = std::result::Result<T, E>;

/// A boxed error from a decoder or codec outside this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while persisting or recovering.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Could not connect to Redis (bad URL, refused, timed out).
    #[error("cannot connect to redis")]
    Connect(#[source] redis::RedisError),
    /// A batch append failed as a whole (connection lost, timeout): nothing is acknowledged.
    #[error("append of {count} changes failed")]
    AppendFailed {
        /// Number of changes in the failed batch.
        count: usize,
        /// The Redis error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis refused one entry of a batch for a reason other than "already present".
    #[error("append of change {seq} rejected: {message}")]
    AppendRejected {
        /// Sequence number of the rejected change.
        seq: u64,
        /// The server's error message.
        message: String,
    },
    /// An entry of a batch failed but a later one was written: the stream now has a hole at `seq`
    /// that a retry cannot fill (the retry would be refused as "already present").
    #[error("append left a hole at change {seq}: {message}")]
    AppendGap {
        /// Sequence number of the missing change.
        seq: u64,
        /// The server's error message for it.
        message: String,
    },
    /// A batch was not in strictly increasing sequence order, or used sequence 0.
    #[error(
        "batch sequence numbers must be > 0 and strictly increasing (got {seq} after {previous})"
    )]
    BatchOrder {
        /// The previous sequence number in the batch.
        previous: u64,
        /// The offending sequence number.
        seq: u64,
    },
    /// Reading the stream (XRANGE, XREVRANGE) failed.
    #[error("reading the event stream failed")]
    ReadFailed(#[source] redis::RedisError),
    /// A stream reply did not have the expected shape.
    #[error("unexpected reply from redis for {op}: {detail}")]
    UnexpectedReply {
        /// The operation whose reply was malformed.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Trimming the stream failed.
    #[error("trimming the event stream failed")]
    TrimFailed(#[source] redis::RedisError),
    /// Uploading snapshot chunks or committing the snapshot metadata failed.
    #[error("writing snapshot generation {generation} failed")]
    SnapshotWrite {
        /// The generation being written.
        generation: u64,
        /// The Redis error.
        #[source]
        source: redis::RedisError,
    },
    /// A newer snapshot was committed while this one was being uploaded; this one was discarded.
    #[error(
        "snapshot covering {covered_seq} superseded by committed snapshot covering {committed_seq}"
    )]
    SnapshotSuperseded {
        /// What this snapshot covered.
        covered_seq: u64,
        /// What the committed snapshot covers.
        committed_seq: u64,
    },
    /// Reading snapshot metadata or chunks failed at the Redis level.
    #[error("reading the snapshot failed")]
    SnapshotRead(#[source] redis::RedisError),
    /// Reading the previous snapshot generation's record failed at the Redis level.
    #[error("reading the previous snapshot generation's record failed")]
    PreviousSnapshotRead(#[source] redis::RedisError),
    /// The snapshot metadata hash is incomplete or malformed.
    #[error("snapshot metadata is invalid: {0}")]
    SnapshotMeta(String),
    /// A chunk listed by the metadata does not exist.
    #[error("snapshot generation {generation} is missing chunk {index} of {count}")]
    SnapshotMissingChunk {
        /// Generation of the snapshot.
        generation: u64,
        /// Index of the missing chunk.
        index: u64,
        /// Number of chunks the metadata announces.
        count: u64,
    },
    /// Size or checksum of the chunks does not match the metadata.
    #[error("snapshot generation {generation} is corrupt: {detail}")]
    SnapshotCorrupt {
        /// Generation of the snapshot.
        generation: u64,
        /// What did not match.
        detail: String,
    },
    /// Compressing or decompressing the snapshot failed.
    #[error("snapshot compression failed")]
    SnapshotCompress(#[source] std::io::Error),
    /// The snapshot payload could not be decompressed or decoded.
    #[error("snapshot decode failed")]
    SnapshotDecode(#[source] BoxError),
    /// A stream entry could not be decoded.
    #[error("decoding stream entry {seq} failed")]
    EntryDecode {
        /// Sequence of the entry.
        seq: u64,
        /// The decoder's error.
        #[source]
        source: BoxError,
    },
    /// The snapshot source (the graph) could not produce a snapshot.
    #[error("taking a snapshot from the source failed: {0}")]
    SnapshotSource(String),
    /// A snapshot or stream entry carries a format version this build does not know.
    #[error("unknown {what} format version {found} (this build supports {supported})")]
    UnknownFormat {
        /// "snapshot" or "entry".
        what: &'static str,
        /// The version found.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },
    /// Deleting orphan snapshot chunks failed.
    #[error("sweeping orphan snapshot chunks failed")]
    SweepFailed(#[source] redis::RedisError),
    /// Setting a damaged stream aside failed (see `EventLog::set_aside_beyond`).
    #[error("setting the damaged event stream aside failed")]
    SetAsideFailed(#[source] redis::RedisError),
    /// A cluster name that cannot be used inside a Redis hash tag.
    #[error("invalid cluster name {0:?}: must be non-empty and contain no braces")]
    InvalidClusterName(String),
    /// Encoding a change for the log failed.
    #[error("encoding change {seq} failed: {detail}")]
    Encode {
        /// Sequence number of the change.
        seq: u64,
        /// What failed.
        detail: String,
    },
    /// Registering metrics failed (duplicate name in the registry).
    #[error("registering persistence metrics failed")]
    Metrics(#[source] prometheus::Error),
    /// The final flush did not finish within the shutdown grace period.
    #[error("final flush of {pending} changes did not finish within the grace period")]
    FlushTimeout {
        /// Changes that were pending when the flush started.
        pending: usize,
    },
    /// The writer task is gone.
    #[error("the persistence writer has stopped")]
    WriterStopped,
}

/// Which key of the store an error is about (see [`PersistError::wrong_type_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The event stream ([`crate::Keys::events`]).
    Events,
    /// The snapshot metadata hash ([`crate::Keys::snapshot_meta`]) or a chunk of a snapshot.
    Snapshot,
    /// The previous snapshot generation's record ([`crate::Keys::previous_meta`]).
    PreviousSnapshot,
}

impl KeyRole {
    /// Every role.
    pub const ALL: [KeyRole; 3] = [
        KeyRole::Events,
        KeyRole::Snapshot,
        KeyRole::PreviousSnapshot,
    ];

    /// The metric label: `events`, `snapshot` or `snapshot_previous`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            KeyRole::Events => "events",
            KeyRole::Snapshot => "snapshot",
            KeyRole::PreviousSnapshot => "snapshot_previous",
        }
    }
}

/// Redis's reply code for a command against a key holding another type.
const WRONGTYPE: &str = "WRONGTYPE";

impl PersistError {
    /// The key this error found holding another Redis type (a `WRONGTYPE` reply): the store is
    /// damaged there, and retrying does not help until someone removes or renames the key.
    #[must_use]
    pub fn wrong_type_key(&self) -> Option<KeyRole> {
        let wrong = |e: &redis::RedisError| e.code() == Some(WRONGTYPE);
        match self {
            Self::AppendFailed { source: e, .. }
            | Self::ReadFailed(e)
            | Self::TrimFailed(e)
            | Self::SetAsideFailed(e)
                if wrong(e) =>
            {
                Some(KeyRole::Events)
            }
            Self::AppendRejected { message, .. } | Self::AppendGap { message, .. }
                if message.contains(WRONGTYPE) =>
            {
                Some(KeyRole::Events)
            }
            Self::SnapshotRead(e)
            | Self::SnapshotWrite { source: e, .. }
            | Self::SweepFailed(e)
                if wrong(e) =>
            {
                Some(KeyRole::Snapshot)
            }
            Self::PreviousSnapshotRead(e) if wrong(e) => Some(KeyRole::PreviousSnapshot),
            _ => None,
        }
    }

    /// True when retrying later may succeed (connection or timeout problems).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(e)
            | Self::AppendFailed { source: e, .. }
            | Self::ReadFailed(e)
            | Self::TrimFailed(e)
            | Self::SnapshotWrite { source: e, .. }
            | Self::SnapshotRead(e)
            | Self::PreviousSnapshotRead(e)
            | Self::SweepFailed(e)
            | Self::SetAsideFailed(e) => is_transient_redis(e),
            _ => false,
        }
    }

    /// Short low-cardinality operation label for metrics.
    #[must_use]
    pub fn op(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::AppendFailed { .. }
            | Self::AppendRejected { .. }
            | Self::AppendGap { .. }
            | Self::BatchOrder { .. } => "append",
            Self::ReadFailed(_) | Self::UnexpectedReply { .. } => "read",
            Self::TrimFailed(_) => "trim",
            Self::SnapshotWrite { .. } | Self::SnapshotSuperseded { .. } => "snapshot_write",
            Self::SnapshotRead(_)
            | Self::PreviousSnapshotRead(_)
            | Self::SnapshotMeta(_)
            | Self::SnapshotMissingChunk { .. }
            | Self::SnapshotCorrupt { .. }
            | Self::SnapshotDecode(_)
            | Self::UnknownFormat { .. } => "snapshot_read",
            Self::EntryDecode { .. } => "decode",
            Self::SnapshotCompress(_) | Self::SnapshotSource(_) => "snapshot_source",
            Self::SweepFailed(_) => "sweep",
            Self::SetAsideFailed(_) => "set_aside",
            _ => "other",
        }
    }
}

/// Connection-level failures (dropped, refused, timed out, loading) are worth retrying.
fn is_transient_redis(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "READONLY")
        )
}
