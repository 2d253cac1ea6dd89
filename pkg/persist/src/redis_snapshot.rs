//! Snapshots on Redis: zstd-compressed, uploaded in chunks as a new generation outside any
//! transaction, then committed by one script that checks the committed record, rewrites it,
//! keeps the record it replaced as the previous generation, keeps the one before as an older
//! checkpoint or unlinks it, and unlinks the checkpoints retention drops, atomically. A crash
//! at any point leaves the old or the new snapshot committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use redis::Value;

use crate::compress::compress_blob;
use astrolabe_model::now_ms;

use crate::error::{ErrorChain, PersistError, Result};
use crate::log::{LoadedSnapshot, SNAPSHOT_FORMAT, SnapshotBlob, SnapshotMeta};
use crate::redis_log::RedisLog;

/// What [`COMMIT`] returns first when it committed.
const COMMITTED: i64 = 1;

/// Commits a snapshot in one atomic step and one round trip: refuses it if the committed
/// snapshot (of this format) covers a later sequence, else replaces the metadata record (keeping
/// the generation counter monotonic), demotes the record it replaced to the previous
/// generation's record, and either keeps the generation before that as an older checkpoint or
/// unlinks its chunks, as the retention decided. At least two generations stay: the committed
/// one and the one before it (recovery's fallback). Older checkpoints that retention no longer
/// keeps are unlinked (chunks and record) in the same step. A record this build cannot parse
/// (another format, or damaged) is replaced, not obeyed and not demoted: its chunks are left
/// for `sweep_orphans`, the previous record stays as it was, and a damaged record can no longer
/// stop every later snapshot. A record of the generation recovery refused
/// ([`crate::EventLog::refuse_generation`]) is not demoted either: its chunks are unlinked and
/// the previous record, the one recovery fell back to, stays. A checkpoint set of another Redis
/// type is left alone (no generation is kept in it or removed from it).
///
/// KEYS[1] the metadata hash; KEYS[2] the previous generation's metadata hash; KEYS[3] the
/// sorted set of older checkpoints; ARGV[1] the snapshot format; ARGV[2] the new covered
/// sequence; ARGV[3] the new generation; ARGV[4] the chunk key prefix; ARGV[5] the refused
/// generation (`0`: none); ARGV[6] the older checkpoints' record key prefix; ARGV[7] the
/// generations retention keeps, comma-separated; ARGV[8] the writer's epoch (`0`: unfenced);
/// KEYS[4] the fence; ARGV[9..] the record's fields and values. A fenced writer's commit is
/// refused with the error `FENCED <stored epoch>` when the fence holds a newer epoch.
/// Returns `{0, committed sequence}` when refused, else `{1, what it replaced}`: `none`,
/// `replaced` (a record of this format, now the previous one), `refused` (the refused
/// generation, unlinked), `previous damaged` (KEYS[2] holds another Redis type: left as it is,
/// the replaced generation is not kept), `format <f>` or `damaged`. Sequences are compared as
/// decimal strings: Lua's numbers are doubles and sequences may exceed 2^53. The generation
/// counter's field is [`NEXT_GEN`].
static COMMIT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
if ARGV[8] ~= '0' then
  local stored = redis.call('GET', KEYS[4])
  if stored and tonumber(stored) and tonumber(stored) > tonumber(ARGV[8]) then
    return redis.error_reply('FENCED ' .. stored)
  end
end
local function decimal(v)
  return v ~= nil and string.match(v, '^%d+$') ~= nil
end
local function above(a, b)
  a = (string.gsub(a, '^0+', ''))
  b = (string.gsub(b, '^0+', ''))
  if #a ~= #b then return #a > #b end
  return a > b
end
local function record(key)
  local flat = redis.call('HGETALL', key)
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r, #flat
end
local function fields(r)
  local flat = {}
  for field, value in pairs(r) do
    if field ~= 'next_gen' then
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
  end
  return flat
end
local function sound(r)
  return decimal(r['generation']) and decimal(r['chunks']) and #r['chunks'] <= 4
end
local function unlink_chunks(g, chunks)
  for i = 0, tonumber(chunks) - 1 do
    redis.call('UNLINK', ARGV[4] .. g .. ':' .. i)
  end
end
local keep = {}
for g in string.gmatch(ARGV[7], '%d+') do keep[g] = true end
local function checkpoints_usable()
  local kind = redis.call('TYPE', KEYS[3])['ok']
  return kind == 'zset' or kind == 'none'
end
local function prune(protected)
  if not checkpoints_usable() then return end
  for _, g in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    if not keep[g] and g ~= protected and g ~= ARGV[3] then
      local r = record(ARGV[6] .. g)
      if sound(r) and r['generation'] == g then unlink_chunks(g, r['chunks']) end
      redis.call('UNLINK', ARGV[6] .. g)
      redis.call('ZREM', KEYS[3], g)
    end
  end
end
local prev, n = record(KEYS[1])
local ours = prev['format'] == ARGV[1]
if ours and decimal(prev['covered_seq']) and above(prev['covered_seq'], ARGV[2]) then
  return {0, prev['covered_seq']}
end
local next_gen = ARGV[3]
if decimal(prev['next_gen']) and above(prev['next_gen'], next_gen) then
  next_gen = prev['next_gen']
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'next_gen', next_gen, unpack(ARGV, 9))
local gen = prev['generation']
if n == 0 or (prev['format'] == nil and gen == nil) then
  return {1, 'none'}
end
if not ours then
  return {1, 'format ' .. tostring(prev['format'])}
end
if not sound(prev) then
  return {1, 'damaged'}
end
if gen == ARGV[3] then
  return {1, 'replaced'}
end
if gen == ARGV[5] then
  unlink_chunks(gen, prev['chunks'])
  prune(nil)
  return {1, 'refused'}
end
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'hash' and kind ~= 'none' then
  return {1, 'previous damaged'}
end
local older = record(KEYS[2])
local old_gen = older['generation']
if sound(older) and old_gen ~= gen and old_gen ~= ARGV[3] then
  if keep[old_gen] and decimal(older['covered_seq']) and checkpoints_usable() then
    redis.call('DEL', ARGV[6] .. old_gen)
    redis.call('HSET', ARGV[6] .. old_gen, unpack(fields(older)))
    redis.call('ZADD', KEYS[3], older['covered_seq'], old_gen)
  else
    unlink_chunks(old_gen, older['chunks'])
  end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(fields(prev)))
prune(gen)
return {1, 'replaced'}
"#,
    )
});

/// Chunks transferred per pipelined round trip.
const CHUNKS_PER_ROUND_TRIP: usize = 2;
/// Keys per UNLINK command.
const UNLINK_BATCH: usize = 500;
/// SCAN COUNT hint.
const SCAN_COUNT: u64 = 1000;
/// Field of the metadata hash holding the generation counter (survives commits).
const NEXT_GEN: &str = "next_gen";
/// Attempts to load when the committed generation changes under the reader.
const LOAD_ATTEMPTS: usize = 3;

impl RedisLog {
    pub(crate) async fn write_snapshot_impl(&self, blob: &SnapshotBlob) -> Result<SnapshotMeta> {
        let _guard = self.inner.snapshot_lock.lock().await;
        let keys = &self.inner.keys;
        let (compressed, raw_bytes) = compress_blob(blob, self.inner.zstd_level).await?;

        let mut conn = self.snap_conn();
        let generation: u64 = redis::cmd("HINCRBY")
            .arg(keys.snapshot_meta())
            .arg(NEXT_GEN)
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|source| PersistError::SnapshotWrite {
                generation: 0,
                source,
            })?;
        let write_err = |source| PersistError::SnapshotWrite { generation, source };

        let chunks: Vec<Bytes> = chunk_bytes(&compressed, self.inner.chunk_size);
        let count = chunks.len() as u64;
        let uploaded = async {
            for (group_no, group) in chunks.chunks(CHUNKS_PER_ROUND_TRIP).enumerate() {
                let mut pipe = redis::pipe();
                for (i, chunk) in group.iter().enumerate() {
                    let index = (group_no * CHUNKS_PER_ROUND_TRIP + i) as u64;
                    pipe.cmd("SET")
                        .arg(keys.chunk(generation, index))
                        .arg(chunk.as_ref())
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn.clone()).await?;
            }
            Ok::<(), redis::RedisError>(())
        }
        .await;
        if let Err(source) = uploaded {
            self.unlink_generation(generation, count).await;
            return Err(write_err(source));
        }

        let meta = SnapshotMeta::committed_now(blob, generation, count, &compressed, raw_bytes);
        let refused = self.inner.refused.load(Ordering::Acquire);
        let epoch = self.epoch();
        let keep = self.generations_to_keep(&meta).await;
        let mut commit = COMMIT.prepare_invoke();
        commit
            .key(keys.snapshot_meta())
            .key(keys.previous_meta())
            .key(keys.checkpoints())
            .key(keys.fence())
            .arg(SNAPSHOT_FORMAT)
            .arg(blob.seq)
            .arg(generation)
            .arg(keys.chunk_prefix())
            .arg(refused)
            .arg(keys.checkpoint_prefix())
            .arg(keep)
            .arg(epoch);
        for (field, value) in meta_fields(&meta) {
            commit.arg(field).arg(value);
        }
        // On an error the outcome is unknown: the chunks stay (sweep_orphans removes them if the
        // commit did not happen).
        let (status, detail): (i64, String) = match commit.invoke_async(&mut conn).await {
            Ok(reply) => reply,
            Err(source) => {
                if let Some(refused) = crate::redis_log::fenced(epoch, &source) {
                    self.unlink_generation(generation, count).await;
                    return Err(refused);
                }
                return Err(write_err(source));
            }
        };
        if status != COMMITTED {
            self.unlink_generation(generation, count).await;
            return Err(PersistError::SnapshotSuperseded {
                covered_seq: blob.seq,
                committed_seq: detail.parse().unwrap_or(u64::MAX),
            });
        }
        if detail == "refused" {
            self.inner.refused.store(0, Ordering::Release);
            tracing::info!(
                generation,
                "replaced the snapshot recovery refused; the generation it fell back to stays the previous one"
            );
        } else if detail == "previous damaged" {
            tracing::error!(
                key = keys.previous_meta(),
                generation,
                "the previous generation's record holds another redis type: the replaced generation is not kept"
            );
        } else if detail != "none" && detail != "replaced" {
            tracing::warn!(
                previous = %detail,
                generation,
                "replaced a snapshot record this build cannot read; its chunks are left to the sweep"
            );
        }
        Ok(meta)
    }

    pub(crate) async fn snapshot_meta_impl(&self) -> Result<Option<SnapshotMeta>> {
        self.read_meta(self.inner.keys.snapshot_meta()).await
    }

    /// The previous generation's record (the one the last commit replaced), `None` if there is
    /// none.
    pub(crate) async fn previous_meta_impl(&self) -> Result<Option<SnapshotMeta>> {
        self.read_meta(self.inner.keys.previous_meta())
            .await
            .map_err(|e| match e {
                PersistError::SnapshotRead(e) => PersistError::PreviousSnapshotRead(e),
                other => other,
            })
    }

    async fn read_meta(&self, key: &str) -> Result<Option<SnapshotMeta>> {
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut self.snap_conn())
            .await
            .map_err(PersistError::SnapshotRead)?;
        parse_meta(&map)
    }

    /// The generations retention keeps once `new` is committed, comma-separated, for
    /// [`COMMIT`] (which never unlinks the previous record, nor keeps a refused generation).
    /// When the retained checkpoints cannot be read (a damaged record the commit replaces),
    /// none: the commit keeps the committed and the previous generation only.
    async fn generations_to_keep(&self, new: &SnapshotMeta) -> String {
        let mut all = match self.checkpoints_impl().await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(
                    error = %ErrorChain(&e),
                    "the retained checkpoints cannot be read: only the committed and the previous generation stay"
                );
                return String::new();
            }
        };
        all.push(new.clone());
        let (keep, _) = self.inner.retention.select(all, now_ms());
        keep.iter()
            .map(|m| m.generation.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The generations of the older checkpoints (neither the committed nor the previous one).
    async fn older_generations(&self) -> Result<Vec<u64>> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.inner.keys.checkpoints())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.snap_conn())
            .await
            .map_err(PersistError::SnapshotRead)?;
        Ok(members.iter().filter_map(|g| g.parse().ok()).collect())
    }

    /// The retained checkpoints, oldest first: the older ones, the previous generation and the
    /// committed one. An older checkpoint whose record is missing or unreadable is left out
    /// (it cannot be loaded).
    pub(crate) async fn checkpoints_impl(&self) -> Result<Vec<SnapshotMeta>> {
        let Some(committed) = self.snapshot_meta_impl().await? else {
            return Ok(Vec::new());
        };
        let older = self.older_generations().await?;
        let mut pipe = redis::pipe();
        for generation in &older {
            pipe.cmd("HGETALL")
                .arg(self.inner.keys.checkpoint_meta(*generation));
        }
        let records: Vec<HashMap<String, String>> = if older.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.snap_conn())
                .await
                .map_err(PersistError::SnapshotRead)?
        };
        let mut out = Vec::with_capacity(older.len() + 2);
        for (generation, record) in older.into_iter().zip(records) {
            match parse_meta(&record) {
                Ok(Some(meta)) if meta.generation == generation => out.push(meta),
                Ok(_) => tracing::warn!(generation, "a retained checkpoint has no usable record"),
                Err(e) => tracing::warn!(
                    generation,
                    error = %ErrorChain(&e),
                    "a retained checkpoint's record is unreadable"
                ),
            }
        }
        out.sort_by_key(|m| (m.covered_seq, m.generation));
        if let Some(previous) = self.previous_meta_impl().await?
            && previous.covered_seq <= committed.covered_seq
        {
            out.push(previous);
        }
        out.push(committed);
        Ok(out)
    }

    pub(crate) async fn load_checkpoint_impl(
        &self,
        generation: u64,
    ) -> Result<Option<LoadedSnapshot>> {
        let found = self
            .checkpoints_impl()
            .await?
            .into_iter()
            .find(|m| m.generation == generation);
        match found {
            Some(meta) => self.load_generation(meta).await.map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn load_previous_impl(&self) -> Result<Option<LoadedSnapshot>> {
        match self.previous_meta_impl().await? {
            Some(meta) => self.load_generation(meta).await.map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn load_snapshot_impl(&self) -> Result<Option<LoadedSnapshot>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(meta) = self.snapshot_meta_impl().await? else {
                return Ok(None);
            };
            match self.load_generation(meta.clone()).await {
                Err(PersistError::SnapshotMissingChunk { .. }) if attempt < LOAD_ATTEMPTS => {
                    // A concurrent commit may have replaced the generation: retry if it moved.
                    let now = self.snapshot_meta_impl().await?;
                    if now.as_ref().map(|m| m.generation) != Some(meta.generation) {
                        continue;
                    }
                    return self.load_generation(meta).await.map(Some);
                }
                other => return other.map(Some),
            }
        }
    }

    async fn load_generation(&self, meta: SnapshotMeta) -> Result<LoadedSnapshot> {
        let keys = &self.inner.keys;
        let mut conn = self.snap_conn();
        let capacity = usize::try_from(meta.bytes).unwrap_or(0);
        let mut data = BytesMut::with_capacity(capacity);
        let indexes: Vec<u64> = (0..meta.chunks).collect();
        for group in indexes.chunks(CHUNKS_PER_ROUND_TRIP) {
            let mut pipe = redis::pipe();
            for i in group {
                pipe.cmd("GET").arg(keys.chunk(meta.generation, *i));
            }
            let replies: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(PersistError::SnapshotRead)?;
            for (i, reply) in group.iter().zip(replies) {
                match reply {
                    Value::BulkString(b) => data.extend_from_slice(&b),
                    Value::Nil => {
                        return Err(PersistError::SnapshotMissingChunk {
                            generation: meta.generation,
                            index: *i,
                            count: meta.chunks,
                        });
                    }
                    other => {
                        return Err(PersistError::SnapshotCorrupt {
                            generation: meta.generation,
                            detail: format!("chunk {i} is {other:?}"),
                        });
                    }
                }
            }
        }
        // Decompressed by whoever reads it, as it is read (`LoadedSnapshot::stream`).
        LoadedSnapshot::verified(meta, data.freeze())
    }

    pub(crate) async fn sweep_orphans_impl(&self) -> Result<u64> {
        let _guard = self.inner.snapshot_lock.lock().await;
        let committed = self.snapshot_meta_impl().await?.map(|m| m.generation);
        let previous = self.previous_meta_impl().await?.map(|m| m.generation);
        let older = self.older_generations().await?;
        let keys = &self.inner.keys;
        let pattern = keys.chunk_pattern();
        let mut conn = self.snap_conn();
        let mut orphans = Vec::new();
        let mut cursor = 0u64;
        loop {
            // Keyless: on a cluster it must go to the master holding the log's slot.
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, found): (u64, Vec<String>) = conn
                .query_on_node_of(keys.events(), &scan)
                .await
                .map_err(PersistError::SweepFailed)?;
            orphans.extend(found.into_iter().filter(|k| {
                keys.parse_chunk(k).is_some_and(|(generation, _)| {
                    Some(generation) != committed
                        && Some(generation) != previous
                        && !older.contains(&generation)
                })
            }));
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut deleted = 0;
        for batch in orphans.chunks(UNLINK_BATCH) {
            let n: u64 = redis::cmd("UNLINK")
                .arg(batch)
                .query_async(&mut conn)
                .await
                .map_err(PersistError::SweepFailed)?;
            deleted += n;
        }
        if deleted > 0 {
            tracing::info!(deleted, "swept orphan snapshot chunks");
        }
        Ok(deleted)
    }

    /// Best effort: a failure leaves orphans for `sweep_orphans`.
    async fn unlink_generation(&self, generation: u64, chunks: u64) {
        let keys: Vec<String> = (0..chunks)
            .map(|i| self.inner.keys.chunk(generation, i))
            .collect();
        for batch in keys.chunks(UNLINK_BATCH) {
            let res = redis::cmd("UNLINK")
                .arg(batch)
                .query_async::<u64>(&mut self.snap_conn())
                .await;
            if let Err(e) = res {
                tracing::warn!(generation, error = %e, "unlinking snapshot chunks failed");
                return;
            }
        }
    }
}

/// Split into chunks of at most `size` bytes (always at least one chunk).
fn chunk_bytes(data: &Bytes, size: usize) -> Vec<Bytes> {
    if data.is_empty() {
        return vec![Bytes::new()];
    }
    (0..data.len())
        .step_by(size)
        .map(|s| data.slice(s..(s + size).min(data.len())))
        .collect()
}

fn meta_fields(m: &SnapshotMeta) -> Vec<(&'static str, String)> {
    vec![
        ("format", m.format.to_string()),
        ("generation", m.generation.to_string()),
        ("chunks", m.chunks.to_string()),
        ("covered_seq", m.covered_seq.to_string()),
        ("stream_id", m.stream_id.clone()),
        ("created_at_ms", m.created_at_ms.to_string()),
        ("taken_at_ms", m.taken_at_ms.to_string()),
        ("resource_count", m.resource_count.to_string()),
        ("bytes", m.bytes.to_string()),
        ("raw_bytes", m.raw_bytes.to_string()),
        ("checksum", format!("{:08x}", m.checksum)),
        ("compression", "zstd".to_owned()),
    ]
}

/// `None` when no snapshot was ever committed (the hash is absent or holds only the counter).
/// The format is checked first so a future layout is reported as unknown, not as malformed.
pub(crate) fn parse_meta(map: &HashMap<String, String>) -> Result<Option<SnapshotMeta>> {
    if !map.contains_key("format") && !map.contains_key("generation") {
        return Ok(None);
    }
    let get = |k: &str| {
        map.get(k)
            .ok_or_else(|| PersistError::SnapshotMeta(format!("field {k} is missing")))
    };
    let num = |k: &str| {
        get(k)?
            .parse::<u64>()
            .map_err(|e| PersistError::SnapshotMeta(format!("field {k}: {e}")))
    };
    let format = get("format")?
        .parse::<u32>()
        .map_err(|e| PersistError::SnapshotMeta(format!("field format: {e}")))?;
    if format != SNAPSHOT_FORMAT {
        return Err(PersistError::UnknownFormat {
            what: "snapshot",
            found: format,
            supported: SNAPSHOT_FORMAT,
        });
    }
    Ok(Some(SnapshotMeta {
        format,
        generation: num("generation")?,
        chunks: num("chunks")?,
        covered_seq: num("covered_seq")?,
        stream_id: get("stream_id")?.clone(),
        created_at_ms: get("created_at_ms")?
            .parse()
            .map_err(|e| PersistError::SnapshotMeta(format!("field created_at_ms: {e}")))?,
        // Absent from metadata written before it was kept: unknown.
        taken_at_ms: match map.get("taken_at_ms") {
            Some(v) => v
                .parse()
                .map_err(|e| PersistError::SnapshotMeta(format!("field taken_at_ms: {e}")))?,
            None => 0,
        },
        resource_count: num("resource_count")?,
        bytes: num("bytes")?,
        raw_bytes: num("raw_bytes")?,
        checksum: u32::from_str_radix(get("checksum")?, 16)
            .map_err(|e| PersistError::SnapshotMeta(format!("field checksum: {e}")))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_everything() {
        let data = Bytes::from(vec![7u8; 10]);
        let c = chunk_bytes(&data, 4);
        assert_eq!(c.iter().map(Bytes::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(chunk_bytes(&Bytes::new(), 4).len(), 1);
    }

    #[test]
    fn meta_round_trips_and_refuses_unknown_format() {
        let meta = SnapshotMeta {
            format: SNAPSHOT_FORMAT,
            generation: 3,
            chunks: 2,
            covered_seq: 99,
            stream_id: crate::keys::entry_id(99),
            created_at_ms: 1,
            taken_at_ms: 1,
            resource_count: 5,
            bytes: 10,
            raw_bytes: 20,
            checksum: 0xdead_beef,
        };
        let mut map: HashMap<String, String> = meta_fields(&meta)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(parse_meta(&map).ok().flatten(), Some(meta.clone()));
        // Metadata written without the copy's time: unknown, and the commit time stands in.
        map.remove("taken_at_ms");
        let old = parse_meta(&map).ok().flatten().unwrap();
        assert_eq!((old.taken_at_ms, old.time_ms()), (0, meta.created_at_ms));
        map.insert("format".into(), "9".into());
        assert!(matches!(
            parse_meta(&map),
            Err(PersistError::UnknownFormat { found: 9, .. })
        ));
        let only_counter = HashMap::from([(NEXT_GEN.to_owned(), "4".to_owned())]);
        assert!(matches!(parse_meta(&only_counter), Ok(None)));
    }
}
