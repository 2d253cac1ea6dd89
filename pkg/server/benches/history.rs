//! History at the scale of the 100k cluster. One hour at 100 changes/s (360,000 changes 10 ms
//! apart, ending now: Pod status updates, one Pod created and one deleted per thousand) is
//! written to the in-memory log and to a real `redis-server`, appended as the writer batches them
//! at that rate, with a checkpoint wherever the server's snapshotter commits one (every
//! `DEFAULT_SNAPSHOT_EVERY_CHANGES` changes or every `DEFAULT_SNAPSHOT_INTERVAL` of change
//! time, whichever comes first); both logs keep the server's default history retention. Then,
//! for each log, through the server's `LogHistory`:
//!
//! 1. `at=` one hour back (one second after the hour's start), uncached: a fresh `LogHistory`
//!    materialises it; baseline: the server's restart path on the same log (`recover` +
//!    `rebuild`).
//! 2. The same point again (cached), with one namespace's graph read from it; baseline: the
//!    same read on the live graph.
//! 3. A namespace `diff` across the last ten minutes, the work of `GET /api/v1/diff`
//!    (`locate(from)`, cached; a copy of the live graph; the objects changed between them, from
//!    the log's index; `diff_between`); baseline: the same diff by replaying the window's
//!    changes (`changes(from, now)`, a copy of the graph at `from`, `diff_by_replay`).
//!
//! and, for Redis, 4. the stream's bytes per retained change (`MEMORY USAGE`) against the Pod's
//! Kubernetes JSON (what a payload-per-version store keeps for each version).
//!
//! Points are given as `seq:N` (the last change at or before the time named): a checkpoint's
//! time is its commit time, and this bench writes the hour in a minute, so every checkpoint
//! would look newer than the points it covers. By sequence, `LogHistory` takes the same
//! checkpoint and replays the same changes as a server that lived through the hour.
//!
//! `cargo bench -q -p astrolabe-server --bench history`. Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_api::history::{HistorySource as _, Located, PastGraph};
use astrolabe_generator as generator;
use astrolabe_graph::{Graph, SharedGraph, query};
use astrolabe_history::{DiffFilter, Point, diff_between, diff_by_replay};
use astrolabe_model::{Change, ChangeOp, Resource, Str, now_ms};
use astrolabe_persist::snapshotter::{DEFAULT_SNAPSHOT_EVERY_CHANGES, DEFAULT_SNAPSHOT_INTERVAL};
use astrolabe_persist::writer::{DEFAULT_LINGER, DEFAULT_MAX_BATCH};
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, Decoder as _, EventLog, Keys, LastVersions, MemoryLog, PersistMetrics,
    Record, RedisConfig, RedisLog, recover, snapshot_blob,
};
use astrolabe_server::config::{DEFAULT_HISTORY_CACHE_MIB, HistoryConfig};
use astrolabe_server::decoder::{DECODER, replay_logged};
use astrolabe_server::history::LogHistory;
use astrolabe_server::recovery::rebuild;
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{pod_churn, pod_update, pods};
use bytes::Bytes;
use common::{Versus, figure, within};

const SEED: u64 = 42;
const SIZE: usize = 100_000;
const HOUR_MS: i64 = 3_600_000;
/// 100 changes/s for an hour.
const CHANGES: usize = 360_000;
const SPACING_MS: i64 = 10;
/// How far back the `at=` point lies, and the width of the diff's window.
const AT_BACK_MS: i64 = HOUR_MS - 1_000;
const DIFF_WINDOW_MS: i64 = 600_000;
/// Stream entries read per round trip by the breakdown (as `LogHistory` reads them).
const PAGE: usize = 64;
const UNCACHED_ROUNDS: usize = 5;
const CACHED_ROUNDS: usize = 101;
const DIFF_ROUNDS: usize = 5;
const AT_TARGET_MS: f64 = 300.0;
const CACHED_TARGET_MS: f64 = 5.0;
const DIFF_TARGET_MS: f64 = 20.0;
const BYTES_TARGET: f64 = 0.05;
const CLUSTER: &str = "history";

fn main() -> Result<()> {
    common::block_on(run())
}

async fn run() -> Result<()> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let mut config = RedisConfig::from_url(&redis.url(), CLUSTER)?;
    config.retention = HistoryConfig::default().retention();
    let memory = MemoryLog::new(config.retention);
    let now = now_ms();
    let hour = within(
        Duration::from_secs(900),
        "writing the hour of history",
        write_hour(now, &memory, &RedisLog::new(&config)?),
    )
    .await??;
    let live = SharedGraph::from_graph(hour.graph.clone());

    measure("memory", || Ok(memory.clone()), &hour, &live).await?;
    measure("redis", || Ok(RedisLog::new(&config)?), &hour, &live).await?;
    memory_log_bytes(&memory).await?;
    redis_bytes(&redis, &hour)?;
    Ok(())
}

/// The hour as written: the final graph and what the measurements look up in it.
struct Hour {
    graph: Graph,
    /// `(seq, ts)` of every change of the hour, in order.
    stamps: Vec<(u64, i64)>,
    /// The checkpoints' covered sequences, the one at the hour's start first.
    checkpoints: Vec<u64>,
    /// The Pods at the start, which the changes update in turn.
    pods: Vec<Arc<Resource>>,
    /// The namespace the `at=` read and the diff filter on: the first updated Pod's.
    namespace: Str,
    /// The sum of the changes' encoded sizes.
    payload_bytes: u64,
    /// When the hour ends (Unix milliseconds).
    end_ms: i64,
}

impl Hour {
    /// The last change at or before `ts_ms`.
    fn seq_at(&self, ts_ms: i64) -> Result<u64> {
        let i = self.stamps.partition_point(|&(_, ts)| ts <= ts_ms);
        i.checked_sub(1)
            .map(|i| self.stamps[i].0)
            .context("no change of the hour at or before that time")
    }
}

/// The 100k graph, checkpointed at `now - 1 h`, then the hour of changes appended to both logs
/// as the writer batches them at 100 changes/s, with the snapshotter's checkpoints.
async fn write_hour(now: i64, memory: &MemoryLog, redis: &RedisLog) -> Result<Hour> {
    let started = Instant::now();
    let start_ms = now - HOUR_MS;
    let mut graph = Graph::new();
    for r in generator::generate(SEED, SIZE) {
        graph.apply(ChangeOp::Upsert(Arc::new(r)), start_ms, &mut ());
    }
    let mut checkpoints = vec![checkpoint(&graph, memory, redis).await?];
    let pods = pods(graph.resources())?;
    let interval_ms = i64::try_from(DEFAULT_SNAPSHOT_INTERVAL.as_millis())?;
    let linger_ms = i64::try_from(DEFAULT_LINGER.as_millis())?;
    let (mut last_checkpoint_seq, mut last_checkpoint_ms) = (graph.seq(), start_ms);
    let mut stamps = Vec::with_capacity(CHANGES);
    let mut batch: Vec<(u64, Bytes)> = Vec::new();
    let mut batch_start_ms = start_ms;
    let mut payload_bytes = 0;
    let mut created: Option<Resource> = None;
    // The writer remembers the state it starts from (recovered, or written by the initial list).
    let mut last_versions = LastVersions::of(graph.resources());
    for i in 0..CHANGES {
        let ts = start_ms + (i as i64 + 1) * SPACING_MS;
        let op = pod_churn(&pods, i, "history", &mut created);
        // The writer appends what arrived within its linger of the first change of a batch.
        if !batch.is_empty()
            && (ts > batch_start_ms + linger_ms || batch.len() == DEFAULT_MAX_BATCH)
        {
            append(&batch, memory, redis).await?;
            batch.clear();
        }
        let change: Change = graph
            .apply(op, ts, &mut ())
            .context("a change of the hour changed nothing")?;
        // As the writer encodes it: an update of a Pod it wrote before is a patch.
        let mut payload = Vec::new();
        change.encode_remembering(&mut last_versions, &mut payload)?;
        let payload = Bytes::from(payload);
        payload_bytes += payload.len() as u64;
        if batch.is_empty() {
            batch_start_ms = ts;
        }
        batch.push((change.seq, payload));
        stamps.push((change.seq, ts));
        if ts - last_checkpoint_ms >= interval_ms
            || change.seq - last_checkpoint_seq >= DEFAULT_SNAPSHOT_EVERY_CHANGES
        {
            append(&batch, memory, redis).await?;
            batch.clear();
            checkpoints.push(checkpoint(&graph, memory, redis).await?);
            (last_checkpoint_seq, last_checkpoint_ms) = (change.seq, ts);
        }
    }
    append(&batch, memory, redis).await?;
    let namespace = pods
        .first()
        .map(|p| p.namespace.clone())
        .context("no Pods")?;
    println!(
        "history: {} resources, then {CHANGES} changes {SPACING_MS} ms apart ({} B mean \
         payload) up to seq {}, {} checkpoints (seqs {:?}); written to both logs in {:.1} s",
        graph.node_count(),
        payload_bytes / CHANGES as u64,
        graph.seq(),
        checkpoints.len(),
        checkpoints,
        started.elapsed().as_secs_f64()
    );
    Ok(Hour {
        graph,
        stamps,
        checkpoints,
        pods,
        namespace,
        payload_bytes,
        end_ms: now,
    })
}

async fn append(batch: &[(u64, Bytes)], memory: &MemoryLog, redis: &RedisLog) -> Result<()> {
    if !batch.is_empty() {
        memory.append(batch).await?;
        redis.append(batch).await?;
    }
    Ok(())
}

/// Commits `graph` as a checkpoint of both logs; returns its sequence.
async fn checkpoint(graph: &Graph, memory: &MemoryLog, redis: &RedisLog) -> Result<u64> {
    let blob = snapshot_blob(&graph.snapshot())?;
    memory.write_snapshot(&blob).await?;
    redis.write_snapshot(&blob).await?;
    Ok(graph.seq())
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Every round's time, in milliseconds, fastest first (the spread the median hides).
fn spread(values: &[f64]) -> String {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let rounds: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    format!("[{}]", rounds.join(", "))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1_000.0
}

/// The past graph `located` names, checked to stand at `seq`.
fn past(located: Located, seq: u64) -> Result<PastGraph> {
    match located {
        Located::Past(p) if p.as_of.seq == seq => Ok(p),
        Located::Past(p) => bail!("materialised seq {}, expected {seq}", p.as_of.seq),
        Located::Live => bail!("seq {seq} was answered by the live graph"),
    }
}

/// Figures 1 to 3 on the log `open` returns (a fresh handle each time, as a new process would
/// have).
async fn measure<L: EventLog + Clone>(
    name: &str,
    open: impl Fn() -> Result<L>,
    hour: &Hour,
    live: &SharedGraph,
) -> Result<()> {
    let at = hour.seq_at(hour.end_ms - AT_BACK_MS)?;
    let history = || -> Result<LogHistory<L>> {
        Ok(LogHistory::new(
            open()?,
            live.clone(),
            DEFAULT_HISTORY_CACHE_MIB,
        ))
    };

    // Baseline of 1: what a restart on the same log costs.
    let mut restarts = Vec::new();
    for _ in 0..UNCACHED_ROUNDS {
        let metrics = PersistMetrics::unregistered()?;
        let started = Instant::now();
        let recovered = recover(&open()?, &DECODER, DEFAULT_REPLAY_PAGE, &metrics).await?;
        let graph = rebuild(recovered);
        restarts.push(ms(started));
        if graph.seq() != hour.graph.seq() {
            bail!("{name}: restart reached seq {}", graph.seq());
        }
    }
    let restart = median(&restarts);

    // 1. Uncached: a fresh history each round.
    let (uncached_rounds_ms, h) = uncached_rounds(&history, at, "-1h").await?;
    let uncached = median(&uncached_rounds_ms);
    breakdown(name, &open()?, at).await?;

    // The costliest point: the last change before a checkpoint, the most changes to replay.
    let worst = hour
        .checkpoints
        .get(2)
        .map(|cp| cp - 1)
        .context("fewer than three checkpoints")?;
    let (worst_rounds_ms, _) = uncached_rounds(&history, worst, "worst").await?;
    let worst_ms = median(&worst_rounds_ms);
    let replayed = worst - hour.checkpoints[1];

    // 2. Cached, with one namespace's graph read from it, against the same read on the live
    // graph.
    let ns = Some(hour.namespace.as_str());
    let (mut cached, mut locate_only, mut on_live) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CACHED_ROUNDS {
        let started = Instant::now();
        let graph = past(h.locate(Point::Seq(at), "-1h").await?, at)?.graph;
        locate_only.push(ms(started));
        std::hint::black_box(query::compat_graph(&graph, None, ns));
        cached.push(ms(started));
        let started = Instant::now();
        std::hint::black_box(query::compat_graph(&live.read(), None, ns));
        on_live.push(ms(started));
    }
    let (cached, locate_only, on_live) = (median(&cached), median(&locate_only), median(&on_live));

    // 3. The diff of a namespace across ten minutes, as `GET /api/v1/diff` computes it.
    let from = hour.seq_at(hour.end_ms - DIFF_WINDOW_MS)?;
    let started = Instant::now();
    past(h.locate(Point::Seq(from), "-10m").await?, from)?;
    let from_uncached = ms(started);
    let filter = DiffFilter {
        namespace: Some(hour.namespace.clone()),
        ..DiffFilter::default()
    };
    // The first diff reads the whole retained log into the index; later ones what was appended.
    let started = Instant::now();
    h.touched(from, hour.graph.seq()).await?;
    let index_first = ms(started);
    let mut parts: [Vec<f64>; 6] = Default::default();
    let mut sizes = (0, 0, 0, 0, 0);
    for _ in 0..DIFF_ROUNDS {
        let started = Instant::now();
        let base = past(h.locate(Point::Seq(from), "-10m").await?, from)?;
        let located = ms(started);
        let t = Instant::now();
        let target = live.read().clone();
        let clone = ms(t);
        let t = Instant::now();
        let touched = h.touched(from, target.seq()).await?;
        let read = ms(t);
        let t = Instant::now();
        let diff = diff_between(&base.graph, &target, &touched, &filter);
        let compare = ms(t);
        let t = Instant::now();
        drop(target);
        let dropped = ms(t);
        let total = ms(started);
        if diff.to_seq != hour.graph.seq() {
            bail!("{name}: the diff ends at seq {}", diff.to_seq);
        }
        sizes = (
            touched.len(),
            diff.added.len() + diff.removed.len(),
            diff.modified.len(),
            diff.edges_added.len() + diff.edges_removed.len(),
            touched.iter().filter(|t| t.keeps_edges).count(),
        );
        for (part, value) in parts
            .iter_mut()
            .zip([total, located, clone, read, compare, dropped])
        {
            part.push(value);
        }
    }
    let [
        diff_total,
        diff_locate,
        diff_clone,
        diff_touched,
        diff_compare,
        diff_drop,
    ] = parts.map(|part| median(&part));
    // The compare again, as if every change of the window could have moved edges (the index
    // knows the status updates that cannot): what a window of creations, deletions and
    // relabellings costs per object.
    let mut moving = Vec::new();
    {
        let base = past(h.locate(Point::Seq(from), "-10m").await?, from)?;
        let target = live.read().clone();
        let mut touched = h.touched(from, target.seq()).await?;
        for t in &mut touched {
            t.keeps_edges = false;
        }
        for _ in 0..DIFF_ROUNDS {
            let t = Instant::now();
            std::hint::black_box(diff_between(&base.graph, &target, &touched, &filter));
            moving.push(ms(t));
        }
    }
    let compare_moving = median(&moving);
    // Baseline: the same diff by replaying the window's changes on a copy of the graph at
    // `from` (decoding every change).
    let mut replay_rounds = Vec::new();
    for _ in 0..DIFF_ROUNDS {
        let started = Instant::now();
        let base = past(h.locate(Point::Seq(from), "-10m").await?, from)?;
        let changes = h
            .changes(Point::Seq(from), Point::Now, "-10m", None)
            .await?;
        let mut graph = Arc::unwrap_or_clone(base.graph);
        let diff = diff_by_replay(&mut graph, &changes, &filter);
        if diff.modified.len() != sizes.2 {
            bail!("{name}: the replayed diff differs");
        }
        replay_rounds.push(ms(started));
    }
    let diff_by_replay_ms = median(&replay_rounds);
    let (log_read, plain_replay) = diff_parts(&h, &open()?, from).await?;

    println!(
        "  {name}: at= seq {at} (1 h back), uncached {uncached:.1} ms (rounds {}; restart \
         rounds {}); cached {cached:.3} ms (locate {locate_only:.3} ms, then namespace {} \
         compat_graph), live {on_live:.3} ms; worst point (seq {worst}, {replayed} changes \
         after its checkpoint) {worst_ms:.1} ms (rounds {})",
        spread(&uncached_rounds_ms),
        spread(&restarts),
        hour.namespace,
        spread(&worst_rounds_ms),
    );
    println!(
        "  {name}: diff of namespace {} from seq {from} (10 min back; uncached locate \
         {from_uncached:.1} ms; the first diff indexes the retained log in {index_first:.1} ms) \
         to now: {} objects changed, {} added or removed, {} modified, {} edges; median \
         {diff_total:.1} ms = locate (cached) {diff_locate:.3} + copy of the live graph \
         {diff_clone:.1} + touched objects from the index {diff_touched:.1} + compare \
         {diff_compare:.1} + drop {diff_drop:.1} ({} of the objects changed by status updates \
         only, which move no edge; the compare had every change moved edges \
         {compare_moving:.1}); by replay instead (changes decoded and \
         replayed on a copy) {diff_by_replay_ms:.1}, of it the log read alone {log_read:.1} \
         (pages of {PAGE}, not decoded) and a plain replay {plain_replay:.1}",
        hour.namespace, sizes.0, sizes.1, sizes.2, sizes.3, sizes.4
    );
    figure(&format!("history/{name}/restart_ms"), restart, "ms", None);
    figure(
        &format!("history/{name}/at_1h_uncached_ms"),
        uncached,
        "ms",
        Some(Versus {
            ratio: uncached / restart,
            baseline: "restart (recover + rebuild)",
            target: "<= 300 ms",
            met: uncached <= AT_TARGET_MS,
        }),
    );
    figure(
        &format!("history/{name}/at_worst_uncached_ms"),
        worst_ms,
        "ms",
        None,
    );
    figure(
        &format!("history/{name}/live_query_ms"),
        on_live,
        "ms",
        None,
    );
    figure(
        &format!("history/{name}/at_1h_cached_ms"),
        cached,
        "ms",
        Some(Versus {
            ratio: cached / on_live,
            baseline: "the same read on the live graph",
            target: "<= 5 ms",
            met: cached <= CACHED_TARGET_MS,
        }),
    );
    figure(
        &format!("history/{name}/diff_by_replay_ms"),
        diff_by_replay_ms,
        "ms",
        None,
    );
    figure(
        &format!("history/{name}/diff_compare_edges_moved_ms"),
        compare_moving,
        "ms",
        None,
    );
    figure(
        &format!("history/{name}/diff_10min_namespace_ms"),
        diff_total,
        "ms",
        Some(Versus {
            ratio: diff_total / diff_by_replay_ms,
            baseline: "the same diff by replay",
            target: "<= 20 ms",
            met: diff_total <= DIFF_TARGET_MS,
        }),
    );
    Ok(())
}

/// The times of [`UNCACHED_ROUNDS`] materialisations of `seq`, each by a fresh history from
/// `history`, with the last of those histories (`seq` in its cache).
async fn uncached_rounds<L: EventLog + Clone>(
    history: &impl Fn() -> Result<LogHistory<L>>,
    seq: u64,
    text: &str,
) -> Result<(Vec<f64>, LogHistory<L>)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..UNCACHED_ROUNDS {
        let h = history()?;
        let started = Instant::now();
        let located = h.locate(Point::Seq(seq), text).await?;
        times.push(ms(started));
        past(located, seq)?;
        last = Some(h);
    }
    Ok((times, last.context("no round ran")?))
}

/// Where an uncached materialisation at `at` spends its time, each part on its own: the
/// checkpoint fetched, decoded into a graph, the changes after it read and decoded, replayed.
async fn breakdown<L: EventLog>(name: &str, log: &L, at: u64) -> Result<()> {
    let t = Instant::now();
    let meta = log
        .checkpoints()
        .await?
        .into_iter()
        .rev()
        .find(|c| c.covered_seq <= at)
        .context("no checkpoint at or before the point")?;
    let loaded = log
        .load_checkpoint(meta.generation)
        .await?
        .context("the checkpoint is gone")?;
    let load = ms(t);
    let t = Instant::now();
    let mut stream = loaded.stream()?;
    let mut graph = DECODER.decode_snapshot_from(&mut stream, loaded.meta.raw_bytes)?;
    stream.finish()?;
    let decode = ms(t);
    let t = Instant::now();
    let mut after = meta.covered_seq;
    let mut changes = Vec::new();
    while after < at {
        let page = log.read_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in page.iter().filter(|e| e.seq <= at) {
            changes.push(DECODER.decode_change(entry.seq, &entry.payload)?);
        }
    }
    let read = ms(t);
    let t = Instant::now();
    for change in changes.iter().cloned() {
        replay_logged(&mut graph, change)?;
    }
    let replay = ms(t);
    println!(
        "  {name}: uncached at= seq {at}, one part after the other: checkpoint {} ({} KiB \
         compressed, {} MB raw) fetched {load:.1} ms, decoded into a graph {decode:.1} ms; {} \
         changes after it read and decoded {read:.1} ms, replayed {replay:.1} ms",
        meta.covered_seq,
        meta.bytes / 1024,
        meta.raw_bytes / 1_000_000,
        changes.len(),
    );
    Ok(())
}

/// Two parts of the diff on their own: the log read from the checkpoint at `from` to the end
/// (entries only, not decoded), and a plain replay of the changes after `from` on a clone of the
/// graph there (no diff kept). Returns both in milliseconds.
async fn diff_parts<L: EventLog + Clone>(
    history: &LogHistory<L>,
    log: &L,
    from: u64,
) -> Result<(f64, f64)> {
    let t = Instant::now();
    let mut after = from;
    loop {
        let page = log.read_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
    }
    let read = ms(t);
    let changes = history
        .changes(Point::Seq(from), Point::Now, "-10m", None)
        .await?;
    let base = past(history.locate(Point::Seq(from), "-10m").await?, from)?;
    let mut graph = Arc::unwrap_or_clone(base.graph);
    let t = Instant::now();
    for change in &changes {
        graph.replay(change);
    }
    Ok((read, ms(t)))
}

/// The in-memory log's bytes per change (the changes' payloads; checkpoints apart).
async fn memory_log_bytes(memory: &MemoryLog) -> Result<()> {
    let checkpoints = memory.checkpoints().await?;
    let checkpoint_bytes: u64 = checkpoints.iter().map(|c| c.bytes).sum();
    let per_change = (memory.bytes() - checkpoint_bytes) as f64 / CHANGES as f64;
    println!(
        "  memory: {} checkpoints, {} KiB compressed in all",
        checkpoints.len(),
        checkpoint_bytes / 1024
    );
    figure("history/memory/log_bytes_per_change", per_change, "B", None);
    Ok(())
}

/// 4. The Redis stream's memory per retained change against the Pod's Kubernetes JSON.
fn redis_bytes(redis: &RedisServer, hour: &Hour) -> Result<()> {
    let keys = Keys::new(CLUSTER)?;
    let reply = redis.command_line(&format!("MEMORY USAGE {} SAMPLES 0", keys.events()))?;
    let stream_bytes: f64 = reply
        .trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("MEMORY USAGE answered {reply:?}"))?;
    let length = redis.command_line(&format!("XLEN {}", keys.events()))?;
    let json: Vec<usize> = (0..hour.pods.len())
        .map(|i| {
            serde_json::to_vec(&astrolabe_kubesim::render::render(&pod_update(
                &hour.pods, i,
            )))
            .map(|v| v.len())
        })
        .collect::<Result<_, _>>()?;
    let json_mean = json.iter().sum::<usize>() as f64 / json.len() as f64;
    let per_change = stream_bytes / CHANGES as f64;
    println!(
        "  redis: the stream holds {CHANGES} changes in {} entries, {:.0} KiB (MEMORY USAGE); \
         {per_change:.0} B per change of which {} B the encoded change; a Pod status change \
         kept as the Pod's JSON: {json_mean:.0} B (mean over the {} Pods)",
        length.trim().trim_start_matches(':'),
        stream_bytes / 1024.0,
        hour.payload_bytes / CHANGES as u64,
        json.len(),
    );
    figure("history/redis/pod_json_bytes", json_mean, "B", None);
    let ratio = per_change / json_mean;
    figure(
        "history/redis/bytes_per_change",
        per_change,
        "B",
        Some(Versus {
            ratio,
            baseline: "the Pod's JSON per version",
            target: "<= 0.05x",
            met: ratio <= BYTES_TARGET,
        }),
    );
    Ok(())
}
