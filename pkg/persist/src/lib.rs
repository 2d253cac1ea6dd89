//! Event-sourced persistence of the Astrolabe graph: an event log on Redis Streams (durable) or
//! in memory (persistence off), with snapshots that double as checkpoints for history.
//!
//! # Data flow
//!
//! ```text
//! graph apply loop ──ChangeSender::send (try_send, never blocks)──► Writer task
//!     │                                                  batches (size + linger), one pipelined
//!     │                                                  XADD round trip per batch, changes
//!     │                                                  packed into entries, explicit IDs
//!     │                                                  ──► astrolabe:{c}:events
//!     │ SnapshotSource (encoded state + seq)   acked_seq (watch)
//!     └────────────────────────────────► Snapshotter task ──► chunks + meta (one script), trim
//! start-up: recover() = sweep orphans, load snapshot (else the previous generation), replay
//!           the stream after it in pages
//! ```
//!
//! # Layout
//!
//! - [`log`]: the [`EventLog`] trait and its data types (bytes and sequence numbers only).
//! - [`retention`]: [`HistoryRetention`], which checkpoints a log keeps and how far the stream
//!   may be trimmed.
//! - [`memory_log`]: [`MemoryLog`], the in-memory implementation (the backend when
//!   persistence is off; history still works).
//! - [`keys`]: the Redis key layout (one hash tag per cluster) and the stream ID scheme.
//! - [`compress`]: snapshot compression in parallel parts ([`compress_parts`]).
//! - [`encoder`]: [`SnapshotEncoder`], snapshots that re-encode only the parts that changed.
//! - [`entry`]: the stream entry layout (several changes per entry, format version).
//! - [`redis_log`] / `redis_snapshot`: [`RedisLog`], the Redis Streams implementation (its
//!   checkpoints: the committed and the previous record plus a sorted set of older ones).
//! - [`connection`]: [`RedisTarget`], the Redis connection from a URL or its parts, with its
//!   TLS settings ([`RedisTls`]), a Sentinel's or a Redis Cluster's nodes ([`ClusterTarget`]).
//! - `conn`: the log's one connection type, to one Redis or to a Redis Cluster (every key of a
//!   log in one slot; keyless commands routed to that slot's master).
//! - [`retry`]: the retry delays (exponential with jitter) of every retry loop.
//! - [`source`]: what the caller provides: [`Record`] (a change) and [`SnapshotSource`], and
//!   [`take_snapshot`], which runs a source on a background-priority thread ([`priority`]).
//! - [`writer`]: the batching [`Writer`] task, divergence handling, acknowledgements.
//! - [`snapshotter`]: the periodic [`Snapshotter`] task.
//! - [`recovery`]: [`recover`] at start-up.
//! - [`plausible`]: the ceiling above which a sequence is corrupt (never trusted, never wraps).
//! - [`model_codec`]: the typed layer over `astrolabe-model` ([`ModelDecoder`], `Record` for
//!   `Change`).
//! - [`metrics`]: [`PersistMetrics`] (`astrolabe_persist_*`).
//! - [`error`]: the error type, [`PersistError`].
//!
//! # Guarantees
//!
//! A change is durable once its batch's pipeline returned OK ([`WriterHandle::acked_seq`]).
//! Appends are idempotent (stream ID `<last seq of the entry>-1`, a batch always packed the same
//! way; an ID not above the top is "already there").
//! Snapshots are atomic (new generation uploaded, then one Lua script checks and switches the
//! metadata, keeps the generation it replaced as the previous one, keeps the one before as an
//! older checkpoint or unlinks it, and unlinks the checkpoints retention drops).
//! Snapshots are also checkpoints: a log keeps, besides the committed and the previous
//! generation, the older ones its [`HistoryRetention`] needs so that every point inside
//! retention is a checkpoint plus the changes after it ([`EventLog::checkpoints`]). The stream
//! is trimmed only behind the oldest retained checkpoint (at least the previous generation),
//! so a refused committed snapshot falls back to the previous one and the stream after it. Before the graph is complete, a
//! snapshot that would shrink the persisted state is skipped ([`ShrinkGuard`]). If the
//! producer's channel overflows, the log is marked diverged and a full snapshot supersedes it as
//! soon as Redis answers.

pub mod compress;
mod conn;
pub mod connection;
pub mod encoder;
pub mod entry;
pub mod error;
pub mod keys;
pub mod log;
pub mod memory_log;
pub mod metrics;
pub mod model_codec;
pub mod plausible;
pub mod priority;
pub mod recovery;
pub mod redis_log;
mod redis_snapshot;
pub mod retention;
pub mod retry;
pub mod snapshotter;
pub mod source;
pub mod writer;

pub use compress::{
    CompressError, Frame, SNAPSHOT_ZSTD_LEVEL, compress_blob, compress_parts, concat_frames,
};
pub use connection::{ClusterTarget, RedisTarget, RedisTls, SentinelTarget};
pub use encoder::{EncodeStats, SnapshotEncoder};
pub use error::{AuthFailure, ErrorChain, KeyRole, PersistError, Result};
pub use keys::Keys;
pub use log::{
    AppendOutcome, EventLog, Gap, LoadedSnapshot, LogEntry, MAX_GAPS, SNAPSHOT_FORMAT, SetAside,
    SnapshotBlob, SnapshotMeta, SnapshotStream, TrimOutcome,
};
pub use memory_log::MemoryLog;
pub use metrics::PersistMetrics;
pub use model_codec::{
    LastVersions, ModelDecoder, copy_then_encode, snapshot_blob, snapshot_error,
};
pub use recovery::{DEFAULT_REPLAY_PAGE, Decoder, Fallback, Recovered, read_state, recover};
pub use redis_log::{RedisConfig, RedisLog, RedisTail};
pub use retention::HistoryRetention;
pub use snapshotter::{
    ShrinkGuard, SnapshotRequester, Snapshotter, SnapshotterConfig, SnapshotterHandle,
};
pub use source::{Record, SnapshotSource, take_snapshot};
pub use writer::{ChangeSender, SendOutcome, Writer, WriterConfig, WriterHandle, wait_acked};
