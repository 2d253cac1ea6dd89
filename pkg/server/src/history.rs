//! [`LogHistory`]: the event log read as history. The graph at a past point is the newest
//! checkpoint (a retained snapshot) at or before it, decoded, plus the changes after it up to the
//! point, replayed; materialised graphs are kept in a bounded cache. Works over any
//! [`EventLog`]: the in-memory log when persistence is off, Redis when it is on.

use std::collections::HashMap;
use std::sync::Arc;

use astrolabe_api::history::{
    AsOf, GapInfo, HistoryError, HistorySource, Keep, Located, PastGraph,
};
use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_history::{GraphCache, Point};
use astrolabe_model::Change;
use astrolabe_persist::{Decoder as _, ErrorChain, EventLog, SnapshotMeta};
use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::decoder::DECODER;

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

/// The log read as history; see the module documentation.
pub struct LogHistory<L> {
    log: L,
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
            live,
            cache: GraphCache::new(cache_mib),
            times: Mutex::new(HashMap::new()),
            stamps: Mutex::new(HashMap::new()),
            building: tokio::sync::Mutex::new(()),
        }
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
                Target::Seq(n) => change.seq > n,
                Target::Time(t) => change.ts_ms > t,
            };
            if !stop {
                last_ts = change.ts_ms;
                graph.replay(&change);
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
        let bytes = graph.node_count().max(1) * BYTES_PER_RESOURCE;
        let graph = Arc::new(graph);
        {
            let mut stamps = self.stamps.lock();
            if stamps.len() >= TIMES_REMEMBERED {
                stamps.clear();
            }
            stamps.insert(seq, last_ts);
        }
        self.cache.insert(seq, graph.clone(), bytes);
        Ok(Located::Past(PastGraph {
            graph,
            as_of: AsOf::new(seq, last_ts),
        }))
    }

    /// The recorded gaps that overlap `[from_ms, to_ms]`, as the API shows them.
    async fn gaps_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<GapInfo>, HistoryError> {
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
            })
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
        mut visit: impl FnMut(Change) -> bool + Send,
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
            let after = |c: &Change, p: Point| match p {
                Point::Seq(n) => c.seq > n,
                Point::Time(t) => c.ts_ms > t,
                Point::Now => false,
            };
            let cursor = match from {
                Point::Now => return Ok(Vec::new()),
                Point::Seq(n) => self.base(Target::Seq(n), text).await?,
                Point::Time(t) => self.base(Target::Time(t), text).await?,
            }
            .map_or(0, |m| m.covered_seq);
            let mut out = Vec::new();
            self.each_change(cursor, |change| {
                if to != Point::Now && after(&change, to) {
                    return false;
                }
                if after(&change, from) && keep.is_none_or(|keep| keep(&change)) {
                    out.push(change);
                }
                true
            })
            .await?;
            Ok(out)
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
