//! The error type of the persistence layer, one variant per failed operation.

/// Result alias used throughout the crate.
pub type Result<T, E = PersistError> = std::result::Result<T, E>;

/// A boxed error from a decoder or codec outside this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while persisting or recovering.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Could not connect to Redis (bad URL, refused, timed out).
    #[error("cannot connect to redis{}", auth_named(.0))]
    Connect(#[source] redis::RedisError),
    /// A Redis TLS file (CA bundle, client certificate or key) cannot be read.
    #[error("cannot read the redis {what} file {}", .path.display())]
    TlsFileRead {
        /// Which file: "CA", "client certificate" or "client key".
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Redis TLS file holds no PEM certificate (or private key) that can be read.
    #[error("the redis {what} file {} is not usable: {detail}", .path.display())]
    TlsFileInvalid {
        /// Which file: "CA", "client certificate" or "client key".
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// The Redis Sentinel settings are incomplete or malformed.
    #[error("invalid redis sentinel settings: {0}")]
    SentinelSettings(String),
    /// The Redis Cluster settings do not fit together or are malformed.
    #[error("invalid redis cluster settings: {0}")]
    ClusterSettings(String),
    /// The Redis TLS settings do not fit together.
    #[error("invalid redis TLS settings: {0}")]
    TlsSettings(String),
    /// A batch append failed as a whole (connection lost, timeout): nothing is acknowledged.
    #[error("append of {count} changes failed{}", auth_named(.source))]
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
    /// The fence could not be claimed.
    #[error("claiming the log's fence failed")]
    Fence(#[source] redis::RedisError),
    /// A write of a fenced log was refused: a writer with a newer epoch claimed the log (another
    /// replica leads). Retrying cannot succeed.
    #[error(
        "write refused: this writer's epoch {ours} is fenced off by epoch {stored}, claimed by another writer"
    )]
    Fenced {
        /// This writer's epoch.
        ours: u64,
        /// The epoch the log holds.
        stored: u64,
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
    #[error("reading the event stream failed{}", auth_named(.0))]
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
    #[error("trimming the event stream failed{}", auth_named(.0))]
    TrimFailed(#[source] redis::RedisError),
    /// Recording a gap failed.
    #[error("recording a gap failed{}", auth_named(.0))]
    GapFailed(#[source] redis::RedisError),
    /// Uploading snapshot chunks or committing the snapshot metadata failed.
    #[error("writing snapshot generation {generation} failed{}", auth_named(.source))]
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
    #[error("reading the snapshot failed{}", auth_named(.0))]
    SnapshotRead(#[source] redis::RedisError),
    /// Reading the previous snapshot generation's record failed at the Redis level.
    #[error("reading the previous snapshot generation's record failed{}", auth_named(.0))]
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
    #[error("sweeping orphan snapshot chunks failed{}", auth_named(.0))]
    SweepFailed(#[source] redis::RedisError),
    /// Setting a damaged stream aside failed (see `EventLog::set_aside_beyond`).
    #[error("setting the damaged event stream aside failed{}", auth_named(.0))]
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
}

/// Why Redis refused this client's credentials. The one classification of authentication
/// failures: logs, readiness and metrics all name them through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// The password was refused: `WRONGPASS`, or `AUTH` sent to a server that has no password
    /// configured (`-ERR AUTH <password> called without any password configured`); the redis
    /// crate reports both alike.
    PasswordRefused,
    /// The server requires a password and none was given (`NOAUTH`).
    PasswordMissing,
}

impl AuthFailure {
    /// The failure `e` reports, if it is an authentication failure.
    #[must_use]
    pub fn of(e: &redis::RedisError) -> Option<Self> {
        let detail = e.detail().unwrap_or_default();
        // A cluster client reports a node's refusal while connecting as an I/O error whose
        // detail is the node's error as text ("... - AuthenticationFailed", "NOAUTH: ...").
        let wrapped = e.kind() == redis::ErrorKind::Io;
        if e.kind() == redis::ErrorKind::AuthenticationFailed
            || e.code() == Some("WRONGPASS")
            || detail.contains("without any password configured")
            || (wrapped
                && (detail.contains("AuthenticationFailed") || detail.contains("WRONGPASS")))
        {
            Some(Self::PasswordRefused)
        } else if e.code() == Some("NOAUTH")
            || detail.starts_with("Authentication required")
            || (wrapped
                && (detail.contains("NOAUTH") || detail.contains("Authentication required")))
        {
            // The second form is NOAUTH as the redis crate reports it for the SELECT it sends
            // while connecting.
            Some(Self::PasswordMissing)
        } else {
            None
        }
    }

    /// Short low-cardinality label: the Redis error code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::PasswordRefused => "WRONGPASS",
            Self::PasswordMissing => "NOAUTH",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self {
            Self::PasswordRefused => {
                "the password was refused (or the server has none configured): check REDIS_PASSWORD"
            }
            Self::PasswordMissing => "the server requires a password: set REDIS_PASSWORD",
        };
        write!(f, "redis authentication failed ({}): {hint}", self.code())
    }
}

impl PersistError {
    /// The Redis error behind this error, for the variants that carry one.
    fn redis_source(&self) -> Option<&redis::RedisError> {
        match self {
            Self::Connect(e)
            | Self::AppendFailed { source: e, .. }
            | Self::ReadFailed(e)
            | Self::TrimFailed(e)
            | Self::SnapshotWrite { source: e, .. }
            | Self::SnapshotRead(e)
            | Self::PreviousSnapshotRead(e)
            | Self::SweepFailed(e)
            | Self::GapFailed(e)
            | Self::Fence(e)
            | Self::SetAsideFailed(e) => Some(e),
            _ => None,
        }
    }

    /// The authentication failure behind this error, if Redis refused the credentials.
    #[must_use]
    pub fn auth_failure(&self) -> Option<AuthFailure> {
        self.redis_source().and_then(AuthFailure::of)
    }

    /// True when retrying later may succeed (connection or timeout problems, refused
    /// credentials).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.redis_source().is_some_and(is_transient_redis)
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
            Self::Fenced { .. } | Self::Fence(_) => "fenced",
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
            Self::GapFailed(_) => "gap",
            _ => "other",
        }
    }
}

/// Displays an error followed by its sources, `": "`-separated (what `{:#}` does for anyhow
/// errors; thiserror's `Display` shows the outermost message only). A source whose message the
/// previous one already contains is not repeated.
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            let text = source.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            next = source.source();
        }
        Ok(())
    }
}

/// `": <the authentication failure>"` when `e` is one, so that every message of an error that
/// carries it (logs, readiness) names it; else nothing.
fn auth_named(e: &redis::RedisError) -> String {
    AuthFailure::of(e).map_or_else(String::new, |failure| format!(": {failure}"))
}

/// Connection-level failures (dropped, refused, timed out, loading) are worth retrying, and so
/// are refused credentials (the password may be fixed on either side while the server runs).
fn is_transient_redis(e: &redis::RedisError) -> bool {
    AuthFailure::of(e).is_some()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "READONLY")
        )
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, RedisError};

    use super::*;

    #[test]
    fn an_error_chain_shows_every_source_once() {
        let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let e = PersistError::Connect(RedisError::from(io));
        let shown = ErrorChain(&e).to_string();
        assert!(shown.starts_with("cannot connect to redis: "), "{shown}");
        assert_eq!(shown.matches("UnknownIssuer").count(), 1, "{shown}");
    }

    #[test]
    fn authentication_failures_are_named() {
        // As the redis crate reports a refused AUTH while connecting.
        let refused = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        assert_eq!(
            AuthFailure::of(&refused),
            Some(AuthFailure::PasswordRefused)
        );
        let error = PersistError::SnapshotRead(refused);
        assert_eq!(error.auth_failure(), Some(AuthFailure::PasswordRefused));
        assert!(error.is_transient());
        assert!(
            error.to_string().starts_with(
                "reading the snapshot failed: redis authentication failed (WRONGPASS)"
            ),
            "{error}"
        );
        assert_eq!(
            AuthFailure::PasswordRefused.to_string(),
            "redis authentication failed (WRONGPASS): the password was refused (or the server has none configured): check REDIS_PASSWORD"
        );
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(AuthFailure::of(&io), None);
        let error = PersistError::Connect(io);
        assert_eq!(error.auth_failure(), None);
        assert_eq!(error.to_string(), "cannot connect to redis");
    }

    #[test]
    fn authentication_failures_a_cluster_client_wraps_are_named() {
        // As the cluster client reports a node's refusal while connecting to the cluster.
        let wrapped = |detail: &str| {
            RedisError::from((
                ErrorKind::Io,
                "Failed to create initial connections",
                detail.to_owned(),
            ))
        };
        let refused = wrapped("Password authentication failed - AuthenticationFailed");
        assert_eq!(
            AuthFailure::of(&refused),
            Some(AuthFailure::PasswordRefused)
        );
        let missing = wrapped("NOAUTH: Authentication required.");
        assert_eq!(
            AuthFailure::of(&missing),
            Some(AuthFailure::PasswordMissing)
        );
        assert_eq!(AuthFailure::of(&wrapped("Connection refused")), None);
    }
}
