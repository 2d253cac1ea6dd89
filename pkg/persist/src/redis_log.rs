//! [`RedisLog`]: the [`EventLog`] on a Redis Stream (connections, append, reads, trim).
//! Snapshot operations live in `redis_snapshot.rs`.

use std::sync::Arc;
use std::time::Duration;

use astrolabe_model::now_ms;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value, aio::ConnectionManagerConfig,
};

use crate::conn::{Conn, LazyCluster};
use crate::connection::{ClusterTarget, SentinelTarget};
use crate::entry::{LEGACY_FIELD, PACKED_FIELD, Packed, pack, unpack};
use crate::error::{KeyRole, PersistError, Result};
use crate::keys::{Keys, entry_id, seq_of_id};
use crate::log::{
    AppendOutcome, EventLog, Gap, LoadedSnapshot, LogEntry, MAX_GAPS, SetAside, SnapshotBlob,
    SnapshotMeta, TrimOutcome,
};
use crate::retention::{HistoryRetention, trim_limit};

/// Default response timeout for appends and reads (never the crate's 500 ms default).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default response timeout on the snapshot connection (multi-MiB values).
pub const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default snapshot chunk size: 4 MiB keeps each Redis stall short (~12 ms with AOF).
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;
/// Default zstd level for snapshots handed over uncompressed.
pub const DEFAULT_ZSTD_LEVEL: i32 = crate::compress::SNAPSHOT_ZSTD_LEVEL;
/// Entries removed per XTRIM call (bounded pause per call).
const TRIM_LIMIT: u64 = 10_000;
/// Upper bound on XTRIM calls per `trim_to`.
const TRIM_MAX_CALLS: usize = 10_000;
/// The server's answer when an explicit ID is not above the stream's top: already appended.
const ALREADY_PRESENT: &str = "equal or smaller than the target stream top item";

/// Sets a stream with entries at or above `ARGV[1]` aside: renames it to `KEYS[2]` (refused if
/// that key exists) and writes the entries below `ARGV[1]` back to `KEYS[1]` with their IDs.
/// Returns `{entries at or above, entries written back}`, or `{0, 0}` when none is above.
const SET_ASIDE_SCRIPT: &str = r"
local beyond = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
if #beyond == 0 then return {0, 0} end
local keep = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1])
if redis.call('RENAMENX', KEYS[1], KEYS[2]) == 0 then
  return redis.error_reply('ERR set-aside key exists: ' .. KEYS[2])
end
for _, e in ipairs(keep) do
  redis.call('XADD', KEYS[1], e[1], unpack(e[2]))
end
return {#beyond, #keep}
";

/// A fenced append: refuses the whole batch with `FENCED <stored epoch>` when the fence
/// (`KEYS[2]`) holds an epoch above this writer's (`ARGV[1]`), else raises the fence to it if
/// it is lower (a fence lost with a Redis failover comes back) and adds each entry (`ARGV[2..]`:
/// ID, payload pairs) to the stream (`KEYS[1]`) under `ARGV[2]`'s field. Returns, per entry, 1
/// or the server's error message (as the unfenced pipeline's replies do). Epochs are compared
/// as numbers: they count claims, far below 2^53.
static FENCED_APPEND: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(FENCED_APPEND_SCRIPT));
const FENCED_APPEND_SCRIPT: &str = r"
local stored = redis.call('GET', KEYS[2])
local ours = tonumber(ARGV[1])
if stored and tonumber(stored) and tonumber(stored) > ours then
  return redis.error_reply('FENCED ' .. stored)
end
if not stored or not tonumber(stored) or tonumber(stored) < ours then
  redis.call('SET', KEYS[2], ARGV[1])
end
local out = {}
for i = 3, #ARGV, 2 do
  local r = redis.pcall('XADD', KEYS[1], ARGV[i], ARGV[2], ARGV[i + 1])
  if type(r) == 'table' and r.err then out[#out + 1] = r.err else out[#out + 1] = 1 end
end
return out
";

/// Claims the log for a new writer: increments the fence (`KEYS[1]`) and returns the epoch.
const CLAIM_SCRIPT: &str = r"
return redis.call('INCR', KEYS[1])
";

/// How to reach Redis and which cluster's keys to use.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Where Redis is, with its password and database (see [`crate::RedisTarget`]).
    pub connection: ConnectionInfo,
    /// Logical cluster name (the hash tag of every key).
    pub cluster: String,
    /// Response timeout for appends and reads.
    pub response_timeout: Duration,
    /// Response timeout for snapshot transfers.
    pub snapshot_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Snapshot chunk size in bytes.
    pub chunk_size: usize,
    /// zstd compression level for snapshots handed over uncompressed.
    pub zstd_level: i32,
    /// Which snapshot generations stay as checkpoints for history (default: the committed and
    /// the previous one only).
    pub retention: HistoryRetention,
    /// Redis Sentinel: the master is the one the sentinels name, asked again every
    /// [`SENTINEL_POLL`] so that the log follows a failover; `None`: `connection` is the master.
    pub sentinel: Option<SentinelTarget>,
    /// Redis Cluster: the log's commands go to the master holding its slot (one hash tag per
    /// cluster name); `connection` is then unused. Excludes `sentinel` (see
    /// [`crate::RedisTarget::cluster`]).
    pub redis_cluster: Option<ClusterTarget>,
}

impl RedisConfig {
    /// Defaults for `connection` and `cluster`.
    #[must_use]
    pub fn new(connection: ConnectionInfo, cluster: impl Into<String>) -> Self {
        Self {
            connection,
            cluster: cluster.into(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            snapshot_timeout: DEFAULT_SNAPSHOT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            chunk_size: DEFAULT_CHUNK_SIZE,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            retention: HistoryRetention::default(),
            sentinel: None,
            redis_cluster: None,
        }
    }

    /// Defaults for the Redis at `url` and `cluster`.
    ///
    /// # Errors
    /// [`PersistError::Connect`] for a malformed URL.
    pub fn from_url(url: &str, cluster: impl Into<String>) -> Result<Self> {
        let connection = url.into_connection_info().map_err(PersistError::Connect)?;
        Ok(Self::new(connection, cluster))
    }
}

/// A follower's reader of the event stream: blocking reads (`XREAD BLOCK`) on a connection of
/// its own, so that waiting for the next entry never delays the log's other commands.
pub struct RedisTail {
    inner: Arc<Inner>,
    /// Its connection, and the generation of the master it goes to.
    conn: std::sync::Mutex<(u64, Conn)>,
}

impl std::fmt::Debug for RedisTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTail")
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// A connection of its own to the master `conns` names (or to the cluster), for blocking reads.
fn tail_connection(inner: &Inner, conns: &Conns) -> Result<Conn> {
    connection(
        &conns.info,
        inner.cluster.as_ref(),
        MAX_TAIL_BLOCK + DEFAULT_RESPONSE_TIMEOUT,
        inner.timeouts.connect,
    )
}

/// A lazy connection to the Redis at `info`, or to `cluster` when given, whose commands wait
/// `response` at most.
fn connection(
    info: &ConnectionInfo,
    cluster: Option<&ClusterTarget>,
    response: Duration,
    connect: Duration,
) -> Result<Conn> {
    if let Some(cluster) = cluster {
        return LazyCluster::new(cluster, response, connect)
            .map(Conn::Cluster)
            .map_err(PersistError::Connect);
    }
    let client = redis::Client::open(info.clone()).map_err(PersistError::Connect)?;
    let cfg = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response))
        .set_connection_timeout(Some(connect))
        // The writer has its own backoff; keep the manager's own short.
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, cfg)
        .map(Conn::Single)
        .map_err(PersistError::Connect)
}

/// How long a tail's blocking read waits at most; its connection's response timeout is this
/// plus [`DEFAULT_RESPONSE_TIMEOUT`].
pub const MAX_TAIL_BLOCK: Duration = Duration::from_secs(10);

impl RedisTail {
    /// The changes after sequence `after` (oldest first, at most about `count` entries' worth),
    /// waiting up to `block` (at most [`MAX_TAIL_BLOCK`]) for one to arrive; empty when none
    /// did. Entries that cannot be unpacked come back as defects, as [`EventLog::read_after`]
    /// gives them.
    ///
    /// # Errors
    /// [`PersistError::ReadFailed`] when Redis cannot be read.
    pub async fn read_after(
        &self,
        after: u64,
        count: usize,
        block: Duration,
    ) -> Result<Vec<LogEntry>> {
        let block_ms = block.min(MAX_TAIL_BLOCK).as_millis().max(1);
        let start = if after == 0 {
            "0-0".to_owned()
        } else {
            entry_id(after)
        };
        let mut conn = {
            let conns = self.inner.conns.load();
            let mut current = self
                .conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.0 != conns.generation {
                // The master moved (Sentinel): read from the new one.
                *current = (conns.generation, tail_connection(&self.inner, &conns)?);
            }
            current.1.clone()
        };
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(u64::try_from(block_ms).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(self.inner.keys.events())
            .arg(start)
            .query_async(&mut conn)
            .await
            .map_err(PersistError::ReadFailed)?;
        // `[[key, [entry, ...]]]`, or nil when the block timed out.
        let entries = match reply {
            Value::Array(mut streams) if !streams.is_empty() => match streams.swap_remove(0) {
                Value::Array(mut pair) if pair.len() == 2 => pair.swap_remove(1),
                other => {
                    return Err(PersistError::UnexpectedReply {
                        op: "XREAD",
                        detail: format!("expected [key, entries], got {other:?}"),
                    });
                }
            },
            _ => Value::Nil,
        };
        Ok(once_after(parse_entries(entries)?, after))
    }
}

/// The Redis Streams event log. Cheap to clone (shared connections).
///
/// Two multiplexed connections: one for appends and reads, one with a long timeout for snapshot
/// transfers so a big chunk never delays an append. No command blocks (no `XREAD BLOCK`); a
/// follower tails the stream through [`RedisLog::tail`], on a connection of its own.
#[derive(Clone)]
pub struct RedisLog {
    pub(crate) inner: Arc<Inner>,
}

/// The connections to the master (or the cluster) in use, and where the master is.
pub(crate) struct Conns {
    pub(crate) conn: Conn,
    pub(crate) snap_conn: Conn,
    /// Where the master is, with the password, database and TLS settings.
    pub(crate) info: ConnectionInfo,
    /// Incremented each time the master moves (Sentinel).
    pub(crate) generation: u64,
}

/// How long the log waits for Redis.
#[derive(Clone, Copy)]
pub(crate) struct Timeouts {
    response: Duration,
    snapshot: Duration,
    connect: Duration,
}

impl Conns {
    fn new(
        info: ConnectionInfo,
        cluster: Option<&ClusterTarget>,
        timeouts: Timeouts,
        generation: u64,
    ) -> Result<Self> {
        Ok(Conns {
            conn: connection(&info, cluster, timeouts.response, timeouts.connect)?,
            snap_conn: connection(&info, cluster, timeouts.snapshot, timeouts.connect)?,
            info,
            generation,
        })
    }
}

pub(crate) struct Inner {
    pub(crate) keys: Keys,
    /// Swapped when Sentinel names another master.
    pub(crate) conns: arc_swap::ArcSwap<Conns>,
    pub(crate) timeouts: Timeouts,
    /// The Redis Cluster the log is on, if any.
    pub(crate) cluster: Option<ClusterTarget>,
    pub(crate) chunk_size: usize,
    pub(crate) zstd_level: i32,
    pub(crate) retention: HistoryRetention,
    /// Serialises snapshot writes (and sweeps) within this process.
    pub(crate) snapshot_lock: tokio::sync::Mutex<()>,
    /// The committed generation recovery refused (0: none; generations start at 1).
    pub(crate) refused: std::sync::atomic::AtomicU64,
    /// This writer's epoch when the log is fenced ([`RedisLog::claim_epoch`]); 0: unfenced.
    pub(crate) epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// Create the log. Connections are established lazily and re-established after failures,
    /// so this succeeds while Redis is down; call [`RedisLog::ping`] to check.
    ///
    /// # Errors
    /// [`PersistError::Connect`] when the client cannot be configured,
    /// [`PersistError::InvalidClusterName`].
    pub fn new(config: &RedisConfig) -> Result<Self> {
        let keys = Keys::new(&config.cluster)?;
        let timeouts = Timeouts {
            response: config.response_timeout,
            snapshot: config.snapshot_timeout,
            connect: config.connect_timeout,
        };
        if config.redis_cluster.is_some() && config.sentinel.is_some() {
            return Err(PersistError::ClusterSettings(
                "a Redis Cluster and Sentinel exclude each other".to_owned(),
            ));
        }
        let cluster = config.redis_cluster.clone();
        let conns = Conns::new(config.connection.clone(), cluster.as_ref(), timeouts, 0)?;
        let log = Self {
            inner: Arc::new(Inner {
                keys,
                conns: arc_swap::ArcSwap::from_pointee(conns),
                timeouts,
                cluster,
                chunk_size: config.chunk_size.max(1),
                zstd_level: config.zstd_level,
                retention: config.retention,
                snapshot_lock: tokio::sync::Mutex::new(()),
                refused: std::sync::atomic::AtomicU64::new(0),
                epoch: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        if let Some(sentinel) = &config.sentinel {
            // Without a runtime (never in the server) the master stays the configured address.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(follow_master(Arc::downgrade(&log.inner), sentinel.clone()));
            }
        }
        Ok(log)
    }

    /// The key layout in use.
    #[must_use]
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// A reader of the stream for a follower, with a connection of its own (established
    /// lazily, re-established after failures).
    ///
    /// # Errors
    /// [`PersistError::Connect`] when the client cannot be configured.
    pub fn tail(&self) -> Result<RedisTail> {
        let conns = self.inner.conns.load();
        Ok(RedisTail {
            conn: std::sync::Mutex::new((conns.generation, tail_connection(&self.inner, &conns)?)),
            inner: self.inner.clone(),
        })
    }

    /// Round trip to Redis (on a cluster: to the master holding the log's slot).
    ///
    /// # Errors
    /// [`PersistError::Connect`] when Redis does not answer.
    pub async fn ping(&self) -> Result<()> {
        self.conn()
            .query_on_node_of::<()>(self.inner.keys.events(), &redis::cmd("PING"))
            .await
            .map_err(PersistError::Connect)
    }

    /// The keys of the store that hold another Redis type than this layout gives them: the
    /// stream not a stream, a snapshot record not a hash (a missing key is fine). One round
    /// trip (`TYPE` of each).
    ///
    /// # Errors
    /// [`PersistError::ReadFailed`] when Redis cannot be read.
    pub async fn wrong_type_keys(&self) -> Result<Vec<KeyRole>> {
        let keys = &self.inner.keys;
        let expected = [
            (KeyRole::Events, keys.events(), "stream"),
            (KeyRole::Snapshot, keys.snapshot_meta(), "hash"),
            (KeyRole::PreviousSnapshot, keys.previous_meta(), "hash"),
        ];
        let mut pipe = redis::pipe();
        for (_, key, _) in &expected {
            pipe.cmd("TYPE").arg(*key);
        }
        let types: Vec<String> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(PersistError::ReadFailed)?;
        Ok(expected
            .iter()
            .zip(&types)
            .filter(|((_, _, want), found)| *found != "none" && found != want)
            .map(|((role, _, _), _)| *role)
            .collect())
    }

    /// Claims the log for this writer: a new epoch, above every epoch claimed before, which
    /// the fence key keeps. From then on every append and snapshot commit of this log (and of
    /// its clones) is refused with [`PersistError::Fenced`] once another writer has claimed a
    /// newer epoch. A log never claimed is unfenced: it writes whatever the fence holds, as a
    /// single replica does.
    ///
    /// # Errors
    /// [`PersistError::Fence`] when Redis cannot be written.
    pub async fn claim_epoch(&self) -> Result<u64> {
        let epoch: u64 = redis::Script::new(CLAIM_SCRIPT)
            .key(self.inner.keys.fence())
            .invoke_async(&mut self.conn())
            .await
            .map_err(PersistError::Fence)?;
        self.inner
            .epoch
            .store(epoch, std::sync::atomic::Ordering::Release);
        Ok(epoch)
    }

    /// This writer's epoch (0: the log is unfenced).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The fenced form of an append: the whole batch in one script that checks the fence.
    async fn append_fenced(&self, epoch: u64, entries: &[Packed]) -> Result<Vec<Option<String>>> {
        let mut script = FENCED_APPEND.prepare_invoke();
        script
            .key(self.inner.keys.events())
            .key(self.inner.keys.fence())
            .arg(epoch)
            .arg(PACKED_FIELD);
        for entry in entries {
            script.arg(entry_id(entry.last)).arg(entry.bytes.as_ref());
        }
        let count: usize = entries.iter().map(|e| e.count).sum();
        let replies: Vec<Value> =
            script
                .invoke_async(&mut self.conn())
                .await
                .map_err(|source| {
                    fenced(epoch, &source).unwrap_or(PersistError::AppendFailed { count, source })
                })?;
        Ok(replies
            .into_iter()
            .map(|reply| match reply {
                Value::Int(1) => None,
                Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                Value::SimpleString(s) => Some(s),
                Value::ServerError(e) => Some(e.to_string()),
                other => Some(format!("unexpected reply {other:?}")),
            })
            .collect())
    }

    pub(crate) fn conn(&self) -> Conn {
        self.inner.conns.load().conn.clone()
    }

    /// The connection for snapshot transfers (a long response timeout).
    pub(crate) fn snap_conn(&self) -> Conn {
        self.inner.conns.load().snap_conn.clone()
    }

    /// The changes of the first entry of `XRANGE`/`XREVRANGE key start end COUNT 1`.
    async fn one_entry(&self, cmd: &str, start: &str, end: &str) -> Result<Vec<LogEntry>> {
        let reply: Value = redis::cmd(cmd)
            .arg(self.inner.keys.events())
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await
            .map_err(PersistError::ReadFailed)?;
        parse_entries(reply)
    }
}

impl EventLog for RedisLog {
    async fn append(&self, batch: &[(u64, Bytes)]) -> Result<AppendOutcome> {
        check_order(batch)?;
        if batch.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let events = self.inner.keys.events();
        let entries = pack(batch);
        let epoch = self.epoch();
        if epoch != 0 {
            let replies = self.append_fenced(epoch, &entries).await?;
            return classify_append(&entries, replies);
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for entry in &entries {
            pipe.cmd("XADD")
                .arg(events)
                .arg(entry_id(entry.last))
                .arg(PACKED_FIELD)
                .arg(entry.bytes.as_ref());
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.conn()).await.map_err(|source| {
            PersistError::AppendFailed {
                count: batch.len(),
                source,
            }
        })?;
        let replies = replies
            .into_iter()
            .map(|reply| match reply {
                Value::ServerError(e) => Some(e.to_string()),
                _ => None,
            })
            .collect();
        classify_append(&entries, replies)
    }

    async fn last_seq(&self) -> Result<Option<u64>> {
        Ok(self
            .one_entry("XREVRANGE", "+", "-")
            .await?
            .last()
            .map(|e| e.seq))
    }

    async fn first_seq(&self) -> Result<Option<u64>> {
        Ok(self
            .one_entry("XRANGE", "-", "+")
            .await?
            .first()
            .map(|e| e.seq))
    }

    async fn read_after(&self, after: u64, page_size: usize) -> Result<Vec<LogEntry>> {
        let start = if after == 0 {
            "-".to_owned()
        } else {
            format!("({}", entry_id(after))
        };
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.inner.keys.events())
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(page_size.max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(PersistError::ReadFailed)?;
        Ok(once_after(parse_entries(reply)?, after))
    }

    async fn set_aside_beyond(&self, ceiling: u64) -> Result<Option<SetAside>> {
        let Some(first) = ceiling.checked_add(1) else {
            return Ok(None);
        };
        let key = self.inner.keys.damaged_events(now_ms());
        let (entries, kept): (u64, u64) = redis::Script::new(SET_ASIDE_SCRIPT)
            .key(self.inner.keys.events())
            .key(&key)
            .arg(format!("{first}-0"))
            .invoke_async(&mut self.conn())
            .await
            .map_err(PersistError::SetAsideFailed)?;
        Ok((entries > 0).then_some(SetAside { key, entries, kept }))
    }

    async fn trim_to(&self, upto: u64) -> Result<TrimOutcome> {
        // Behind the oldest retained checkpoint only: without a previous generation nothing is
        // trimmed, so a damaged committed snapshot always has a fallback.
        let upto = upto.min(trim_limit(&self.checkpoints_impl().await?));
        if upto == 0 {
            return Ok(TrimOutcome::default());
        }
        // MINID removes IDs below `<upto+1>-0`, i.e. every sequence <= upto. `~` removes whole
        // stream nodes only, so a few covered entries may stay: replay skips them by ID.
        let min_id = format!("{}-0", upto.saturating_add(1));
        let mut removed = 0u64;
        for _ in 0..TRIM_MAX_CALLS {
            let n: u64 = redis::cmd("XTRIM")
                .arg(self.inner.keys.events())
                .arg("MINID")
                .arg("~")
                .arg(&min_id)
                .arg("LIMIT")
                .arg(TRIM_LIMIT)
                .query_async(&mut self.conn())
                .await
                .map_err(PersistError::TrimFailed)?;
            removed += n;
            if n == 0 {
                break;
            }
        }
        Ok(TrimOutcome { upto, removed })
    }

    async fn write_snapshot(&self, blob: &SnapshotBlob) -> Result<SnapshotMeta> {
        self.write_snapshot_impl(blob).await
    }

    async fn snapshot_meta(&self) -> Result<Option<SnapshotMeta>> {
        self.snapshot_meta_impl().await
    }

    async fn load_snapshot(&self) -> Result<Option<LoadedSnapshot>> {
        self.load_snapshot_impl().await
    }

    async fn load_previous_snapshot(&self) -> Result<Option<LoadedSnapshot>> {
        self.load_previous_impl().await
    }

    async fn checkpoints(&self) -> Result<Vec<SnapshotMeta>> {
        self.checkpoints_impl().await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<()> {
        let key = self.inner.keys.gaps();
        let max_age_ms =
            i64::try_from(self.inner.retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(key)
            .arg(gap.to_ms)
            .arg(gap.to_line())
            .ignore();
        if max_age_ms > 0 {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(format!("({}", now_ms().saturating_sub(max_age_ms)))
                .ignore();
        }
        pipe.cmd("ZREMRANGEBYRANK")
            .arg(key)
            .arg(0)
            .arg(-(MAX_GAPS as i64) - 1)
            .ignore();
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(PersistError::GapFailed)
    }

    async fn gaps(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Gap>> {
        let lines: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.inner.keys.gaps())
            .arg(from_ms)
            .arg("+inf")
            .query_async(&mut self.conn())
            .await
            .map_err(PersistError::ReadFailed)?;
        Ok(lines
            .iter()
            .filter_map(|line| {
                let gap = Gap::from_line(line);
                if gap.is_none() {
                    tracing::warn!(record = %line, key = self.inner.keys.gaps(), "a recorded gap does not read; skipped");
                }
                gap
            })
            .filter(|g| g.overlaps(from_ms, to_ms))
            .collect())
    }

    async fn load_checkpoint(&self, generation: u64) -> Result<Option<LoadedSnapshot>> {
        self.load_checkpoint_impl(generation).await
    }

    fn refuse_generation(&self, generation: u64) {
        self.inner
            .refused
            .store(generation, std::sync::atomic::Ordering::Release);
    }

    async fn sweep_orphans(&self) -> Result<u64> {
        self.sweep_orphans_impl().await
    }
}

/// The changes of `entries` after `after`, each sequence once: overlapping batches (re-packed
/// differently by a retry) may repeat sequences.
fn once_after(mut entries: Vec<LogEntry>, after: u64) -> Vec<LogEntry> {
    let mut last = after;
    entries.retain(|e| {
        let keep = e.seq > last;
        last = last.max(e.seq);
        keep
    });
    entries
}

/// The [`PersistError::Fenced`] a script refused a write of epoch `ours` with, if that is why
/// it failed (`FENCED <stored epoch>`).
pub(crate) fn fenced(ours: u64, e: &redis::RedisError) -> Option<PersistError> {
    if e.code() != Some("FENCED") {
        return None;
    }
    let stored = e
        .detail()
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or(u64::MAX);
    Some(PersistError::Fenced { ours, stored })
}

/// How often the sentinels are asked where the master is.
pub const SENTINEL_POLL: Duration = Duration::from_millis(500);
/// How long one sentinel may take to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks the sentinels where the master is, every [`SENTINEL_POLL`], and moves the log's
/// connections when it moved (the redis crate does not follow `+switch-master` by itself), until
/// the log is dropped.
async fn follow_master(inner: std::sync::Weak<Inner>, sentinel: SentinelTarget) {
    let mut unanswered = false;
    loop {
        let Some(log) = inner.upgrade() else {
            return;
        };
        match master_addr(&sentinel).await {
            Some((host, port)) => {
                unanswered = false;
                let current = log.conns.load();
                let moved = match current.info.addr() {
                    ConnectionAddr::Tcp(h, p)
                    | ConnectionAddr::TcpTls {
                        host: h, port: p, ..
                    } => *h != host || *p != port,
                    _ => true,
                };
                if moved {
                    let addr = match current.info.addr().clone() {
                        ConnectionAddr::TcpTls {
                            insecure,
                            tls_params,
                            ..
                        } => ConnectionAddr::TcpTls {
                            host: host.clone(),
                            port,
                            insecure,
                            tls_params,
                        },
                        _ => ConnectionAddr::Tcp(host.clone(), port),
                    };
                    let info = current.info.clone().set_addr(addr);
                    match Conns::new(info, None, log.timeouts, current.generation + 1) {
                        Ok(conns) => {
                            tracing::info!(master = %sentinel.master, %host, port, "redis sentinel: the master is at a new address");
                            log.conns.store(Arc::new(conns));
                        }
                        Err(e) => {
                            tracing::warn!(error = %crate::error::ErrorChain(&e), "redis sentinel: cannot connect to the new master");
                        }
                    }
                }
            }
            None if !unanswered => {
                unanswered = true;
                tracing::warn!(master = %sentinel.master, "redis sentinel: no sentinel names the master; asking again");
            }
            None => {}
        }
        drop(log);
        tokio::time::sleep(SENTINEL_POLL).await;
    }
}

/// The master's address as the first sentinel that answers names it.
async fn master_addr(sentinel: &SentinelTarget) -> Option<(String, u16)> {
    for info in &sentinel.sentinels {
        let ask = async {
            let client = redis::Client::open(info.clone()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&sentinel.master)
                .query_async(&mut conn)
                .await
                .ok()?;
            reply
        };
        if let Ok(Some(addr)) = tokio::time::timeout(SENTINEL_TIMEOUT, ask).await {
            return Some(addr);
        }
    }
    None
}

/// Refuses a batch whose sequences do not strictly increase from above 0.
pub(crate) fn check_order(batch: &[(u64, Bytes)]) -> Result<()> {
    let mut previous = 0;
    for (seq, _) in batch {
        if *seq <= previous {
            return Err(PersistError::BatchOrder {
                previous,
                seq: *seq,
            });
        }
        previous = *seq;
    }
    Ok(())
}

/// Per-entry replies of an append (`None` for an entry written, else the server's error
/// message for it): "already present" counts as success; any other refusal followed by a
/// success is a hole.
fn classify_append(entries: &[Packed], replies: Vec<Option<String>>) -> Result<AppendOutcome> {
    if replies.len() != entries.len() {
        return Err(PersistError::UnexpectedReply {
            op: "XADD",
            detail: format!("{} replies for {} commands", replies.len(), entries.len()),
        });
    }
    let mut outcome = AppendOutcome::default();
    let mut first_failure: Option<(u64, String)> = None;
    for (entry, reply) in entries.iter().zip(replies) {
        match reply {
            Some(message) => {
                if message.contains(ALREADY_PRESENT) {
                    outcome.already_present += entry.count;
                } else if first_failure.is_none() {
                    first_failure = Some((entry.last, message));
                }
            }
            None => {
                if let Some((seq, message)) = first_failure {
                    return Err(PersistError::AppendGap { seq, message });
                }
                outcome.appended += entry.count;
            }
        }
    }
    match first_failure {
        Some((seq, message)) => Err(PersistError::AppendRejected { seq, message }),
        None => Ok(outcome),
    }
}

/// Parse an XRANGE/XREVRANGE reply into changes, unpacking packed entries. An entry that
/// cannot be unpacked (no payload field, unknown format, malformed) becomes one [`LogEntry`]
/// with its ID's sequence and a defect; an unparseable ID is an error.
pub(crate) fn parse_entries(reply: Value) -> Result<Vec<LogEntry>> {
    let bad = |detail: String| PersistError::UnexpectedReply {
        op: "XRANGE",
        detail,
    };
    let items = match reply {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(bad(format!("expected an array, got {other:?}"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            return Err(bad("entry is not an array".into()));
        };
        if pair.len() != 2 {
            return Err(bad(format!("entry has {} elements", pair.len())));
        }
        let fields = pair.pop();
        let id = match pair.pop() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(Value::SimpleString(s)) => s,
            other => return Err(bad(format!("entry id is {other:?}"))),
        };
        let seq = seq_of_id(&id).ok_or_else(|| bad(format!("entry id {id:?}")))?;
        let fields = match fields {
            Some(Value::Array(kv)) => kv,
            Some(Value::Map(kv)) => kv.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        };
        let defect = |why: String| LogEntry {
            seq,
            payload: Bytes::new(),
            defect: Some(why),
        };
        match payload_field(fields) {
            Some((Field::Packed, bytes)) => match unpack(seq, &bytes) {
                Ok(changes) => out.extend(changes.into_iter().map(|(seq, payload)| LogEntry {
                    seq,
                    payload,
                    defect: None,
                })),
                Err(why) => out.push(defect(why)),
            },
            Some((Field::Legacy, payload)) => out.push(LogEntry {
                seq,
                payload,
                defect: None,
            }),
            None => out.push(defect(format!(
                "no {PACKED_FIELD:?} or {LEGACY_FIELD:?} field"
            ))),
        }
    }
    Ok(out)
}

/// Which payload field an entry has.
enum Field {
    /// Several changes (the current format).
    Packed,
    /// One change (format 1).
    Legacy,
}

fn payload_field(kv: Vec<Value>) -> Option<(Field, Bytes)> {
    let mut it = kv.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Value::BulkString(k), Value::BulkString(v)) = (k, v) {
            if k == PACKED_FIELD.as_bytes() {
                return Some((Field::Packed, Bytes::from(v)));
            }
            if k == LEGACY_FIELD.as_bytes() {
                return Some((Field::Legacy, Bytes::from(v)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_order_is_checked() {
        let b = |s: &[u64]| s.iter().map(|s| (*s, Bytes::new())).collect::<Vec<_>>();
        assert!(check_order(&b(&[1, 2, 5])).is_ok());
        assert!(check_order(&b(&[0])).is_err());
        assert!(check_order(&b(&[3, 3])).is_err());
    }
}
