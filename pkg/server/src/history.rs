//! [`LogHistory`]: the event log read as history. The graph at a past point is the newest
//! checkpoint (a retained snapshot) at or before it, decoded, plus the changes after it up to the
//! point, replayed; materialised graphs are kept in a bounded cache. Works over any
//! [`EventLog`]: the in-memory log when persistence is off, Redis when it is on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::history::{
    AsOf, GapInfo, HistoryError, HistorySource, Keep, Located, PastGraph,
};
use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_history::{GraphCache, Point, Touch};
use astrolabe_informers::SyncStatus;
use astrolabe_model::codec::{self, Logged};
use astrolabe_model::patch::UidAt;
use astrolabe_model::{Change, ChangeOp, Resource, Uid};
use astrolabe_persist::{Decoder as _, ErrorChain, EventLog, SnapshotMeta};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::decoder::{DECODER, replay_logged};

/// Stream entries read per round trip while replaying.
const PAGE: usize = 64;

/// How far in the future (by the server's clock) a time may lie and still mean "now": clients'
/// clocks are not exactly the server's.
const CLOCK_SLACK_MS: i64 = 2_000;

/// Most exact times remembered with the sequence they resolved to.
const TIMES_REMEMBERED: usize = 256;

/// Bytes a resource takes in a materialised graph, for the cache's accounting (the graph
/// memory benchmark's figure, rounded up).
const BYTES_PER_RESOURCE: usize = 1_024;

/// Stream entries read per round trip while indexing the log.
const INDEX_PAGE: usize = 1_024;

/// How long [`HistorySource::touched`] waits for the log to hold the last change it is asked
/// for (the writer appends within milliseconds while Redis answers).
const LOG_WAIT: Duration = Duration::from_secs(5);

/// Which object each change of the log is about, and when: all a diff needs of the changes
/// between two points (it compares the graphs at both over the objects they touched), read
/// from the log without decoding a change. About 40 bytes per change kept.
#[derive(Default)]
struct ChangeIndex {
    /// Each change read, ascending.
    entries: VecDeque<Indexed>,
    /// The last sequence read.
    top: u64,
    /// One `Uid` per object, shared by its entries.
    interned: HashMap<Vec<u8>, Uid>,
}

/// One change of the log, as [`ChangeIndex`] keeps it.
struct Indexed {
    seq: u64,
    ts_ms: i64,
    uid: Uid,
    /// Whether it left its object's labels, owners and references ([`codec::keeps_edges`]).
    keeps_edges: bool,
}

impl ChangeIndex {
    /// Reads the changes the log appended since the last call, and forgets those it trimmed.
    async fn extend<L: EventLog>(&mut self, log: &L) -> Result<(), HistoryError> {
        let log_top = log.last_seq().await.map_err(unavailable)?.unwrap_or(0);
        if log_top < self.top {
            // Not the log this index read (a new epoch, or the stream set aside): start over.
            *self = ChangeIndex::default();
        }
        loop {
            let page = log
                .read_after(self.top, INDEX_PAGE)
                .await
                .map_err(unavailable)?;
            let full = page.len() == INDEX_PAGE;
            for entry in page {
                self.top = self.top.max(entry.seq);
                if entry.defect.is_some() {
                    continue;
                }
                let Some((ts_ms, at)) = codec::change_stamp(&entry.payload) else {
                    continue;
                };
                let text: &[u8] = match &at {
                    UidAt::Range(r) => &entry.payload[r.clone()],
                    UidAt::Text(t) => t.as_bytes(),
                };
                let uid = match self.interned.get(text) {
                    Some(uid) => uid.clone(),
                    None => {
                        let uid = Uid::from(String::from_utf8_lossy(text).as_ref());
                        self.interned.insert(text.to_vec(), uid.clone());
                        uid
                    }
                };
                self.entries.push_back(Indexed {
                    seq: entry.seq,
                    ts_ms,
                    uid,
                    keeps_edges: codec::keeps_edges(&entry.payload),
                });
            }
            if !full {
                break;
            }
        }
        let first = log
            .first_seq()
            .await
            .map_err(unavailable)?
            .unwrap_or(self.top + 1);
        while self.entries.front().is_some_and(|e| e.seq < first) {
            self.entries.pop_front();
        }
        if self.interned.len() > 2 * self.entries.len() + 4_096 {
            // Objects gone from the window: the entries keep their own `Uid`s.
            self.interned.clear();
        }
        Ok(())
    }

    /// Each object changed after `after` up to `upto`, with its last change there, in sequence
    /// order of those changes.
    fn touched(&self, after: u64, upto: u64) -> Vec<Touch> {
        let start = self.entries.partition_point(|e| e.seq <= after);
        let end = self.entries.partition_point(|e| e.seq <= upto);
        let mut last: FxHashMap<&Uid, (u64, i64, bool)> = FxHashMap::default();
        for e in self.entries.range(start..end) {
            let entry = last.entry(&e.uid).or_insert((0, 0, true));
            *entry = (e.seq, e.ts_ms, entry.2 && e.keeps_edges);
        }
        let mut out: Vec<Touch> = last
            .into_iter()
            .map(|(uid, (seq, ts_ms, keeps_edges))| Touch {
                uid: uid.clone(),
                seq,
                ts_ms,
                keeps_edges,
            })
            .collect();
        out.sort_unstable_by_key(|t| t.seq);
        out
    }
}

/// The log read as history; see the module documentation.
pub struct LogHistory<L> {
    log: L,
    /// The log's index, read on demand (the first diff reads the whole retained log).
    index: tokio::sync::Mutex<ChangeIndex>,
    live: SharedGraph,
    cache: GraphCache,
    /// Absolute times asked for, with the sequence they resolved to: the same RFC 3339 time
    /// asked again is a cache lookup.
    times: Mutex<HashMap<i64, u64>>,
    /// The time of the last change of each cached graph, by its sequence.
    stamps: Mutex<HashMap<u64, i64>>,
    /// One materialisation at a time: each decodes a checkpoint, and an incident's clients ask
    /// for the same points.
    building: tokio::sync::Mutex<()>,
    /// The watches failing now, whose gaps the log records only once they recover.
    open_gaps: Option<SyncStatus>,
}

/// Where a materialisation must stop.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// After this sequence.
    Seq(u64),
    /// After the last change at or before this time.
    Time(i64),
}

impl<L: EventLog + Clone> LogHistory<L> {
    /// History over `log`, next to the live graph `live`, caching up to `cache_mib` MiB of
    /// materialised graphs.
    pub fn new(log: L, live: SharedGraph, cache_mib: usize) -> Self {
        LogHistory {
            log,
            index: tokio::sync::Mutex::new(ChangeIndex::default()),
            live,
            cache: GraphCache::new(cache_mib),
            times: Mutex::new(HashMap::new()),
            stamps: Mutex::new(HashMap::new()),
            building: tokio::sync::Mutex::new(()),
            open_gaps: None,
        }
    }

    /// Answers also list the gaps still open in `sync`: the watches failing now (the log
    /// records a gap once its watch recovers).
    #[must_use]
    pub fn with_open_gaps(mut self, sync: SyncStatus) -> Self {
        self.open_gaps = Some(sync);
        self
    }

    /// The cache's counters (for metrics and tests).
    pub fn cache_stats(&self) -> astrolabe_history::CacheStats {
        self.cache.stats()
    }

    async fn checkpoints(&self) -> Result<Vec<SnapshotMeta>, HistoryError> {
        self.log.checkpoints().await.map_err(unavailable)
    }

    /// Whether the log still holds every change from sequence 1 (or none yet): the empty graph
    /// is then a base for any point.
    async fn starts_at_one(&self) -> Result<bool, HistoryError> {
        let first = self.log.first_seq().await.map_err(unavailable)?;
        Ok(first.unwrap_or(1) <= 1)
    }

    /// The oldest point: the oldest checkpoint, or the start of the log when it still begins at
    /// sequence 1.
    async fn oldest_point(&self) -> Result<AsOf, HistoryError> {
        let checkpoints = self.checkpoints().await?;
        if self.starts_at_one().await? {
            return Ok(AsOf::new(0, 0));
        }
        match checkpoints.first() {
            Some(c) => Ok(AsOf::new(c.covered_seq, c.time_ms())),
            None => Ok(AsOf::new(self.live.read().seq(), astrolabe_model::now_ms())),
        }
    }

    /// The base a materialisation at `target` starts from: the newest checkpoint at or before
    /// it, or the empty graph when the log still begins at sequence 1 and no checkpoint fits.
    /// A checkpoint's time ([`SnapshotMeta::time_ms`]) is at or after every change it covers.
    async fn base(&self, target: Target, text: &str) -> Result<Option<SnapshotMeta>, HistoryError> {
        let checkpoints = self.checkpoints().await?;
        let fits = |c: &&SnapshotMeta| match target {
            Target::Seq(n) => c.covered_seq <= n,
            Target::Time(t) => c.time_ms() <= t,
        };
        if let Some(c) = checkpoints.iter().rev().find(fits) {
            return Ok(Some(c.clone()));
        }
        if self.starts_at_one().await? {
            return Ok(None);
        }
        Err(HistoryError::Gone {
            point: text.to_owned(),
            oldest: self.oldest_point().await?,
        })
    }

    /// The graph at `target`, from the cache or materialised; `None` when it is the live graph.
    async fn materialise(&self, target: Target, text: &str) -> Result<Located, HistoryError> {
        let cached = match target {
            Target::Seq(n) => Some(n),
            Target::Time(t) => self.times.lock().get(&t).copied(),
        };
        if let Some(n) = cached
            && let Some(graph) = self.cache.get(n)
        {
            return Ok(self.past(graph));
        }
        let _one = self.building.lock().await;
        let base = self.base(target, text).await?;
        let mut graph = match &base {
            Some(meta) => self.decode(meta).await?,
            None => Graph::new(),
        };
        let after = graph.seq();
        let mut last_ts = match (&base, target) {
            (Some(m), _) => m.time_ms(),
            (None, Target::Time(t)) => t,
            (None, Target::Seq(_)) => 0,
        };
        self.each_change(after, |change| {
            let stop = match target {
                Target::Seq(n) => change.seq() > n,
                Target::Time(t) => change.ts_ms() > t,
            };
            if !stop {
                last_ts = change.ts_ms();
                let seq = change.seq();
                if let Err(e) = replay_logged(&mut graph, change) {
                    tracing::warn!(seq, error = %e, "history: a patch of the log does not apply; skipped");
                }
            }
            !stop
        })
        .await?;
        let seq = graph.seq();
        if let Target::Seq(n) = target
            && seq < n
        {
            // Between the log's top and the live graph: the writer has not appended it yet.
            if n >= self.live.read().seq() {
                return Ok(Located::Live);
            }
            return Err(HistoryError::Unavailable(format!(
                "seq {n} is not in the log yet (it holds up to {seq}); retry"
            )));
        }
        if seq >= self.live.read().seq() {
            return Ok(Located::Live);
        }
        if let Target::Time(t) = target {
            let mut times = self.times.lock();
            if times.len() >= TIMES_REMEMBERED {
                times.clear();
            }
            times.insert(t, seq);
        }
        Ok(Located::Past(PastGraph {
            graph: self.remember(graph, last_ts),
            as_of: AsOf::new(seq, last_ts),
        }))
    }

    /// Caches `graph` (its last change applied at `last_ts`) under its sequence.
    fn remember(&self, graph: Graph, last_ts: i64) -> Arc<Graph> {
        let (seq, bytes) = (graph.seq(), graph.node_count().max(1) * BYTES_PER_RESOURCE);
        let graph = Arc::new(graph);
        {
            let mut stamps = self.stamps.lock();
            if stamps.len() >= TIMES_REMEMBERED {
                stamps.clear();
            }
            stamps.insert(seq, last_ts);
        }
        self.cache.insert(seq, graph.clone(), bytes);
        graph
    }

    /// The gaps that overlap `[from_ms, to_ms]`, as the API shows them: those recorded, and
    /// those still open (each from its start to now).
    async fn gaps_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<GapInfo>, HistoryError> {
        let now = astrolabe_model::now_ms();
        let open = self
            .open_gaps
            .iter()
            .flat_map(SyncStatus::open_gaps)
            .filter(|g| g.from_ms <= to_ms && now >= from_ms)
            .map(|g| GapInfo {
                kind: Some(g.kind.qualified().into_owned()),
                namespace: g.namespace.map(|n| n.to_string()),
                from: g.from_ms,
                to: now,
                reason: g.reason,
                ongoing: true,
            });
        Ok(self
            .log
            .gaps(from_ms, to_ms)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|g| GapInfo {
                kind: g.kind,
                namespace: g.namespace,
                from: g.from_ms,
                to: g.to_ms,
                reason: g.reason,
                ongoing: false,
            })
            .chain(open)
            .collect())
    }

    /// A past answer with the gaps that overlap it: from its last change to the time asked
    /// (`until`), or at that change when a sequence was asked.
    async fn with_gaps(
        &self,
        located: Located,
        until: Option<i64>,
    ) -> Result<Located, HistoryError> {
        match located {
            Located::Live => Ok(Located::Live),
            Located::Past(mut past) => {
                let from = past.as_of.time_ms;
                past.as_of.gaps = self
                    .gaps_between(from, until.unwrap_or(from).max(from))
                    .await?;
                Ok(Located::Past(past))
            }
        }
    }

    /// Reads the log's changes after `after`, oldest first, handing each to `visit` until it
    /// answers `false` or the log ends. Defective entries and changes that do not decode are
    /// skipped (recovery counts them; here they are logged).
    async fn each_change(
        &self,
        mut after: u64,
        mut visit: impl FnMut(Logged) -> bool + Send,
    ) -> Result<(), HistoryError> {
        loop {
            let entries = self
                .log
                .read_after(after, PAGE)
                .await
                .map_err(unavailable)?;
            if entries.is_empty() {
                return Ok(());
            }
            for entry in entries {
                after = after.max(entry.seq);
                if entry.defect.is_some() {
                    continue;
                }
                match DECODER.decode_change(entry.seq, &entry.payload) {
                    Ok(change) => {
                        if !visit(change) {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(seq = entry.seq, error = %ErrorChain(&e), "history: a change of the log does not decode; skipped");
                    }
                }
            }
        }
    }

    /// A cached graph as an answer.
    fn past(&self, graph: Arc<Graph>) -> Located {
        let seq = graph.seq();
        let time = self.stamps.lock().get(&seq).copied().unwrap_or(0);
        Located::Past(PastGraph {
            graph,
            as_of: AsOf::new(seq, time),
        })
    }

    /// The graph of checkpoint `meta`, from the cache or decoded (and then cached).
    async fn checkpoint(&self, meta: &SnapshotMeta) -> Result<Arc<Graph>, HistoryError> {
        if let Some(graph) = self.cache.get(meta.covered_seq) {
            return Ok(graph);
        }
        let _one = self.building.lock().await;
        let graph = self.decode(meta).await?;
        Ok(self.remember(graph, meta.time_ms()))
    }

    /// Loads and decodes checkpoint `meta` into a graph, off the async threads.
    async fn decode(&self, meta: &SnapshotMeta) -> Result<Graph, HistoryError> {
        let loaded = self
            .log
            .load_checkpoint(meta.generation)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                HistoryError::Unavailable(format!(
                    "checkpoint {} was dropped meanwhile; retry",
                    meta.generation
                ))
            })?;
        tokio::task::spawn_blocking(move || -> astrolabe_persist::Result<Graph> {
            let mut stream = loaded.stream()?;
            let graph = DECODER.decode_snapshot_from(&mut stream, loaded.meta.raw_bytes)?;
            stream.finish()?;
            Ok(graph)
        })
        .await
        .map_err(|e| HistoryError::Unavailable(format!("decoding a checkpoint failed: {e}")))?
        .map_err(unavailable)
    }
}

fn unavailable(e: astrolabe_persist::PersistError) -> HistoryError {
    HistoryError::Unavailable(ErrorChain(&e).to_string())
}

impl<L: EventLog + Clone> HistorySource for LogHistory<L> {
    fn locate<'a>(
        &'a self,
        point: Point,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Located, HistoryError>> {
        Box::pin(async move {
            let live_seq = self.live.read().seq();
            match point {
                Point::Now => Ok(Located::Live),
                Point::Seq(n) if n > live_seq => Err(HistoryError::Future {
                    point: text.to_owned(),
                    newest: AsOf::new(live_seq, astrolabe_model::now_ms()),
                }),
                Point::Seq(n) if n == live_seq => Ok(Located::Live),
                Point::Seq(n) => {
                    let located = self.materialise(Target::Seq(n), text).await?;
                    self.with_gaps(located, None).await
                }
                Point::Time(t) if t > astrolabe_model::now_ms() + CLOCK_SLACK_MS => {
                    Err(HistoryError::Future {
                        point: text.to_owned(),
                        newest: AsOf::new(live_seq, astrolabe_model::now_ms()),
                    })
                }
                Point::Time(t) => {
                    let located = self.materialise(Target::Time(t), text).await?;
                    self.with_gaps(located, Some(t)).await
                }
            }
        })
    }

    fn changes<'a>(
        &'a self,
        from: Point,
        to: Point,
        text: &'a str,
        keep: Option<&'a Keep<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Change>, HistoryError>> {
        Box::pin(async move {
            let base = match from {
                Point::Now => return Ok(Vec::new()),
                Point::Seq(n) => self.base(Target::Seq(n), text).await?,
                Point::Time(t) => self.base(Target::Time(t), text).await?,
            };
            let cursor = base.as_ref().map_or(0, |m| m.covered_seq);
            let past = |seq: u64, ts_ms: i64, p: Point| match p {
                Point::Seq(n) => seq > n,
                Point::Time(t) => ts_ms > t,
                Point::Now => false,
            };
            let mut logged = Vec::new();
            self.each_change(cursor, |change| {
                if to != Point::Now && past(change.seq(), change.ts_ms(), to) {
                    return false;
                }
                logged.push(change);
                true
            })
            .await?;
            // A patch is resolved against its object's previous change; one whose previous
            // change is not among these needs the checkpoint they start from.
            let mut whole: HashSet<&Uid> = HashSet::new();
            let needs_base = logged.iter().any(|c| match c {
                Logged::Change(c) => {
                    whole.insert(c.op.uid());
                    false
                }
                Logged::Patch { patch, .. } => !whole.contains(&patch.uid),
            });
            drop(whole);
            let base_graph = match (&base, needs_base) {
                (Some(meta), true) => Some(self.checkpoint(meta).await?),
                _ => None,
            };
            let mut latest: HashMap<Uid, Option<Arc<Resource>>> = HashMap::new();
            let mut out = Vec::new();
            for change in logged {
                let seq = change.seq();
                let resolved = change.resolve(|uid| match latest.get(uid) {
                    Some(version) => version.as_ref(),
                    None => base_graph.as_ref().and_then(|g| g.get(uid)),
                });
                let change = match resolved {
                    Ok(change) => change,
                    Err(e) => {
                        tracing::warn!(seq, error = %e, "history: a patch of the log does not apply; skipped");
                        continue;
                    }
                };
                let version = match &change.op {
                    ChangeOp::Upsert(r) => Some(r.clone()),
                    ChangeOp::Delete { .. } => None,
                };
                latest.insert(change.op.uid().clone(), version);
                if past(change.seq, change.ts_ms, from) && keep.is_none_or(|keep| keep(&change)) {
                    out.push(change);
                }
            }
            Ok(out)
        })
    }

    fn touched(&self, after: u64, upto: u64) -> BoxFuture<'_, Result<Vec<Touch>, HistoryError>> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let mut index = self.index.lock().await;
            loop {
                index.extend(&self.log).await?;
                if index.top >= upto {
                    return Ok(index.touched(after, upto));
                }
                if started.elapsed() > LOG_WAIT {
                    return Err(HistoryError::Unavailable(format!(
                        "the log does not hold the changes up to seq {upto} yet (it holds up to {}); retry",
                        index.top
                    )));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }

    fn gaps(&self, from_ms: i64, to_ms: i64) -> BoxFuture<'_, Result<Vec<GapInfo>, HistoryError>> {
        Box::pin(self.gaps_between(from_ms, to_ms))
    }

    fn oldest(&self) -> BoxFuture<'_, Result<AsOf, HistoryError>> {
        Box::pin(self.oldest_point())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use astrolabe_model::{ChangeOp, Kind, Resource};
    use astrolabe_persist::{HistoryRetention, MemoryLog, Record, snapshot_blob};

    use super::*;

    /// A log whose retention keeps 10 changes, written with a checkpoint every 10: after
    /// trimming, a point behind the oldest checkpoint is gone (410 with the oldest point), a
    /// point at or after it still answers.
    #[tokio::test]
    async fn points_behind_retention_are_gone_with_the_oldest_point() {
        let log = MemoryLog::new(HistoryRetention {
            max_age: Duration::from_secs(3_600),
            max_changes: 10,
        });
        let mut g = Graph::new();
        let now = astrolabe_model::now_ms();
        for i in 0..50u32 {
            let r = Resource::new(
                format!("uid-{}", i % 7).as_str(),
                Kind::ConfigMap,
                "ns",
                format!("cm-{}", i % 7),
            );
            let mut r = r;
            r.labels.insert("v", i.to_string());
            let change = g
                .apply(
                    ChangeOp::Upsert(Arc::new(r)),
                    now - 50_000 + i64::from(i),
                    &mut (),
                )
                .unwrap();
            log.append(&[(change.seq, change.encode().unwrap())])
                .await
                .unwrap();
            if change.seq.is_multiple_of(10) {
                let mut snapshot = g.snapshot();
                snapshot.taken_at_ms = change.ts_ms;
                log.write_snapshot(&snapshot_blob(&snapshot).unwrap())
                    .await
                    .unwrap();
                log.trim_to(change.seq).await.unwrap();
            }
        }
        let history = LogHistory::new(log.clone(), SharedGraph::from_graph(g), 16);
        let oldest = log.checkpoints().await.unwrap()[0].covered_seq;
        assert!(oldest > 1, "retention dropped the first checkpoints");
        match history.locate(Point::Seq(1), "seq:1").await {
            Err(HistoryError::Gone { oldest: o, .. }) => assert_eq!(o.seq, oldest),
            other => panic!("expected Gone, got {:?}", other.map(|_| ())),
        }
        match history.locate(Point::Seq(oldest), "oldest").await.unwrap() {
            Located::Past(p) => assert_eq!(p.as_of.seq, oldest),
            Located::Live => panic!("the oldest point is a past one"),
        }
        assert_eq!(history.oldest().await.unwrap().seq, oldest);
    }
}
