//! End-to-end persistence figures against a real `redis-server` (the repository's redis.conf:
//! AOF, fsync every second), each next to a baseline measured in the same run:
//!
//! (a) durable appends/s of the real `Writer` (200k model `Change`s, Pods from the generator)
//!     against `redis-benchmark -c 1 -P 64 XADD` of a payload of the same size;
//! (b) snapshot time for 100k resources (take, encode and compress in parts, upload + commit)
//!     against one raw `SET` of the same compressed byte count: cold (nothing kept, every part
//!     encoded) and periodic (the encoder kept across snapshots, as the server keeps it, with
//!     100,000 Pod updates before each);
//! (c) the longest read stall (wait for the read lock) while snapshots are taken and uploaded
//!     repeatedly, with a reader running 2-hop neighbour queries and a writer applying changes
//!     on the same `SharedGraph`, against the same reader and writer with no snapshot running
//!     (query latencies and the longest Redis PING during the uploads are printed too).
//!
//! (d) only when named, a design study rather than a product figure: what snapshots made of
//!     resources compressed one by one against a trained zstd dictionary would cost (size,
//!     compression, decompression, and assembling a snapshot from such records kept per
//!     resource), against the product's whole-stream zstd level 1 of the same encodings.
//!
//! `cargo bench -p astrolabe-persist --bench persist [-- appends|snapshot|stalls|dictionary ...]`
//! (the first three without names). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_generator as generator;
use astrolabe_graph::query::{self, NeighborQuery};
use astrolabe_graph::{Graph, SNAPSHOT_SLICE, SharedGraph, snapshot_sliced};
use astrolabe_model::{Change, ChangeOp, Resource, Uid};
use astrolabe_persist::encoder::PROMOTE_AFTER;
use astrolabe_persist::{
    EventLog, PersistError, PersistMetrics, Record, RedisConfig, RedisLog, SendOutcome,
    SnapshotBlob, SnapshotEncoder, Writer, WriterConfig, copy_then_encode, take_snapshot,
    wait_acked,
};
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{Versus, figure, pod_update, pods, within};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

const SEED: u64 = 42;
const SIZE: usize = 100_000;
/// Changes appended in (a).
const APPENDS: usize = 200_000;
/// Pipeline depth of the `redis-benchmark` baseline.
const BASELINE_PIPELINE: usize = 64;
/// Snapshots timed in (b), cold and periodic each; the medians are reported.
const SNAPSHOT_ROUNDS: usize = 3;
/// Changes applied before each periodic snapshot of (b): `--snapshot-every-changes`' default.
const PERIODIC_CHANGES: usize = 100_000;
/// Minimum number of snapshots and duration of (c).
const STALL_SNAPSHOTS: usize = 5;
const STALL_MIN: Duration = Duration::from_secs(5);
/// How long (c) runs its reader and writer with no snapshot first, as the baseline.
const STALL_QUIET: Duration = Duration::from_secs(2);
/// Pause of the graph writer between two applies in (c) (a busy but realistic change rate).
const WRITER_PAUSE: Duration = Duration::from_micros(200);
/// Bound on any single phase.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
const CLUSTER: &str = "bench";

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    // `cargo bench` passes `--bench`; other arguments name the phases to run.
    let phases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for p in &phases {
        if !["appends", "snapshot", "stalls", "dictionary"].contains(&p.as_str()) {
            bail!("unknown phase {p:?} (appends, snapshot, stalls, dictionary)");
        }
    }
    let wanted = |name: &str| {
        (phases.is_empty() && name != "dictionary") || phases.iter().any(|p| p == name)
    };
    let resources: Vec<Arc<Resource>> = generator::generate(SEED, SIZE)
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut graph = Graph::new();
    for r in &resources {
        graph.apply(ChangeOp::Upsert(r.clone()), 0, &mut ());
    }
    println!(
        "persist: generate({SEED}, {SIZE}) = {} resources, {} edges",
        graph.node_count(),
        graph.edge_count()
    );
    if wanted("appends") {
        within(PHASE_TIMEOUT, "(a) appends", appends(&resources)).await??;
    }
    let shared = SharedGraph::from_graph(graph);
    if wanted("snapshot") {
        within(PHASE_TIMEOUT, "(b) snapshots", snapshots(&shared)).await??;
    }
    if wanted("stalls") {
        within(PHASE_TIMEOUT, "(c) stalls", stalls(&shared, &resources)).await??;
    }
    if wanted("dictionary") {
        within(PHASE_TIMEOUT, "(d) dictionary", dictionary(&resources)).await??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (a) durable appends

async fn appends(resources: &[Arc<Resource>]) -> Result<()> {
    let pods = pods(resources)?;
    let changes: Vec<Change> = (0..APPENDS)
        .map(|i| Change {
            seq: i as u64 + 1,
            ts_ms: 1_700_000_000_000 + i as i64,
            op: ChangeOp::Upsert(pods[i % pods.len()].clone()),
        })
        .collect();
    // Encoded as the writer does: a batch into one buffer.
    let mut total_bytes = 0usize;
    let started = Instant::now();
    let mut buf = Vec::new();
    for batch in changes.chunks(WriterConfig::default().max_batch) {
        buf.clear();
        for c in batch {
            c.encode_into(&mut buf)?;
        }
        total_bytes += black_box(&buf).len();
    }
    let encode_rate = changes.len() as f64 / started.elapsed().as_secs_f64();
    let payload = total_bytes / changes.len();

    let config = WriterConfig::default();
    let astrolabe = writer_rate(changes.clone(), config.clone()).await?;
    let mut other = Vec::new();
    for pipelines in [1, 2, 4] {
        if pipelines != config.pipelines {
            let c = WriterConfig {
                pipelines,
                ..WriterConfig::default()
            };
            other.push((pipelines, writer_rate(changes.clone(), c).await?));
        }
    }
    println!(
        "  writer: {APPENDS} changes of {payload} B mean payload (max_batch {}, linger {:?}, \
         {} pipeline(s) by default)",
        config.max_batch, config.linger, config.pipelines
    );

    let raw = redis_benchmark_xadd(payload)?;
    figure("appends/payload_mean_bytes", payload as f64, "B", None);
    figure("appends/encode_only_per_s", encode_rate, "changes/s", None);
    for (pipelines, rate) in other {
        figure(
            &format!("appends/writer_{pipelines}_pipelines_per_s"),
            rate,
            "changes/s",
            None,
        );
    }
    figure("appends/redis_benchmark_xadd_per_s", raw, "XADD/s", None);
    let ratio = astrolabe / raw;
    figure(
        "appends/writer_durable_per_s",
        astrolabe,
        "changes/s",
        Some(Versus {
            ratio,
            baseline: "redis-benchmark -c 1 -P 64",
            target: ">= 1.00x",
            met: ratio >= 1.0,
        }),
    );
    Ok(())
}

/// Durable changes per second of the real writer with `config`, on a fresh server.
async fn writer_rate(changes: Vec<Change>, config: WriterConfig) -> Result<f64> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let log = RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER)?)?;
    log.ping().await?;
    let in_flight_cap = (config.channel_capacity / 2) as u64;
    let cancel = CancellationToken::new();
    let unused = Arc::new(|| -> astrolabe_persist::Result<SnapshotBlob> {
        Err(PersistError::SnapshotSource(
            "no snapshots in this bench".into(),
        ))
    });
    let metrics = PersistMetrics::unregistered()?;
    let pipelines = config.pipelines;
    let (sender, handle) =
        Writer::<_, _, Change>::spawn(log.clone(), unused, config, metrics.clone(), cancel.clone());
    let mut acked = handle.acked_seq();
    let count = changes.len() as u64;
    let started = Instant::now();
    for change in changes {
        // Keep the channel from overflowing (an overflow would diverge the log).
        while change.seq - *acked.borrow() > in_flight_cap {
            acked
                .changed()
                .await
                .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
        }
        if sender.send(change) == SendOutcome::Diverged {
            bail!("the writer's channel overflowed");
        }
    }
    wait_acked(&mut acked, count).await?;
    let seconds = started.elapsed().as_secs_f64();
    let handle_diverged = handle.is_diverged();
    cancel.cancel();
    drop(sender);
    handle.join().await?;
    let mut conn = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let entries: u64 = redis::cmd("XLEN")
        .arg(log.keys().events())
        .query_async(&mut conn)
        .await?;
    // Every change once, in order.
    let (mut after, mut stored) = (0u64, 0u64);
    loop {
        let page = log.read_after(after, 64).await?;
        let Some(last) = page.last() else { break };
        for e in &page {
            if e.seq != after + 1 || e.defect.is_some() {
                bail!(
                    "change {} read after {after} (defect {:?})",
                    e.seq,
                    e.defect
                );
            }
            after = e.seq;
        }
        stored += page.len() as u64;
        after = last.seq;
    }
    if stored != count || handle_diverged {
        bail!("the stream holds {stored} changes (diverged: {handle_diverged}), expected {count}");
    }
    let batches = metrics.batches.get();
    println!(
        "  writer with {pipelines} pipeline(s): {batches} batches of {:.0} changes in {entries} \
         stream entries, {:.2} ms per append round trip on average, {seconds:.3} s in all",
        metrics.batch_size.get_sample_sum() / batches as f64,
        metrics.append_seconds.get_sample_sum() * 1e3 / batches as f64,
    );
    Ok(count as f64 / seconds)
}

/// `redis-benchmark -c 1 -P 64 -n 200000 -q XADD <key> * f <payload>` against a fresh server with
/// the same configuration; its requests per second.
fn redis_benchmark_xadd(payload: usize) -> Result<f64> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let value = "x".repeat(payload);
    let mut child = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
        .args(["-c", "1", "-P", &BASELINE_PIPELINE.to_string()])
        .args(["-n", &APPENDS.to_string(), "-q"])
        .args(["XADD", "bench:raw", "*", "f", &value])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running redis-benchmark (Debian package redis-tools)")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("redis-benchmark did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    if !status.success() {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            stderr.read_to_string(&mut err)?;
        }
        bail!("redis-benchmark failed ({status}): {err}");
    }
    out.split(['\r', '\n'])
        .filter_map(|line| line.rsplit_once(" requests per second"))
        .filter_map(|(head, _)| head.rsplit(' ').next()?.parse::<f64>().ok())
        .next_back()
        .with_context(|| format!("no requests per second in redis-benchmark's output: {out:.200}"))
}

// ---------------------------------------------------------------------------------------------
// (b) snapshot time

#[derive(Debug, Clone, Copy, Default)]
struct SnapshotTiming {
    take: f64,
    encode: f64,
    write: f64,
    raw_set: f64,
    raw_bytes: usize,
    compressed_bytes: usize,
}

impl SnapshotTiming {
    fn total(&self) -> f64 {
        self.take + self.encode + self.write
    }
}

async fn snapshots(shared: &SharedGraph) -> Result<()> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let log = RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER)?)?;
    log.ping().await?;
    let client = redis::Client::open(redis.url())?;
    // Cold: nothing kept, every part encoded and compressed (the first snapshot after a start).
    let mut cold = Vec::with_capacity(SNAPSHOT_ROUNDS);
    for _ in 0..SNAPSHOT_ROUNDS {
        let mut encoder = SnapshotEncoder::default();
        cold.push(snapshot_once(shared, &mut encoder, &log, &client).await?);
    }
    report("snapshot", &cold);
    // Periodic: one encoder across snapshots, as the server keeps it, and before each timed
    // snapshot the changes that trigger one (`--snapshot-every-changes`, 100,000): every Pod
    // updated, over and over, as in the restart bench's tail.
    let pods = pods(shared.read().resources())?;
    let mut encoder = SnapshotEncoder::default();
    let mut update = 0usize;
    let mut churn = |shared: &SharedGraph| {
        for _ in 0..PERIODIC_CHANGES {
            let pod = pod_update(&pods, update);
            shared
                .write()
                .apply(ChangeOp::Upsert(Arc::new(pod)), 0, &mut ());
            update += 1;
        }
    };
    // Untimed: the first snapshot, then as many as the encoder needs to give the churning kind
    // parts of its own (the steady state of a server with this churn).
    snapshot_once(shared, &mut encoder, &log, &client).await?;
    for _ in 0..=PROMOTE_AFTER {
        churn(shared);
        snapshot_once(shared, &mut encoder, &log, &client).await?;
    }
    let mut periodic = Vec::with_capacity(SNAPSHOT_ROUNDS);
    for _ in 0..SNAPSHOT_ROUNDS {
        churn(shared);
        let t = snapshot_once(shared, &mut encoder, &log, &client).await?;
        let stats = encoder.last_stats();
        println!(
            "    after {PERIODIC_CHANGES} Pod updates: {} of {} parts kept, {} resources encoded, \
             own parts for {:?}",
            stats.kept, stats.parts, stats.encoded_resources, stats.own_parts
        );
        periodic.push(t);
    }
    report("snapshot/periodic", &periodic);
    drop(redis);
    Ok(())
}

/// The median of `v` (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The figures of a set of timed snapshots (medians), under `prefix`.
fn report(prefix: &str, rounds: &[SnapshotTiming]) {
    let median = |f: fn(&SnapshotTiming) -> f64| median(rounds.iter().map(f).collect());
    let name = |figure: &str| format!("{prefix}/{figure}");
    let last = rounds.last().copied().unwrap_or_default();
    figure(&name("raw_bytes"), last.raw_bytes as f64, "B", None);
    figure(
        &name("compressed_bytes"),
        last.compressed_bytes as f64,
        "B",
        None,
    );
    figure(&name("take_ms"), median(|t| t.take) * 1e3, "ms", None);
    figure(
        &name("encode_and_zstd_ms"),
        median(|t| t.encode) * 1e3,
        "ms",
        None,
    );
    let upload = median(|t| t.write);
    let raw_set = median(|t| t.raw_set);
    figure(&name("upload_commit_ms"), upload * 1e3, "ms", None);
    figure(&name("raw_set_ms"), raw_set * 1e3, "ms", None);
    figure(&name("upload_vs_raw_set"), upload / raw_set, "x", None);
    let total = median(SnapshotTiming::total);
    let ratio = total / raw_set;
    figure(
        &name("total_ms"),
        total * 1e3,
        "ms",
        Some(Versus {
            ratio,
            baseline: "raw SET",
            target: "<= 2.00x",
            met: ratio <= 2.0,
        }),
    );
}

/// One timed snapshot (copy in slices, encode what `encoder` does not keep, `write_snapshot`)
/// and the raw `SET` baseline of the same compressed byte count.
async fn snapshot_once(
    shared: &SharedGraph,
    encoder: &mut SnapshotEncoder,
    log: &RedisLog,
    client: &redis::Client,
) -> Result<SnapshotTiming> {
    let mut t = SnapshotTiming::default();
    let started = Instant::now();
    let copy = snapshot_sliced(shared);
    t.take = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let blob = encoder.encode(&copy)?;
    t.encode = started.elapsed().as_secs_f64();
    drop(copy);
    t.raw_bytes = usize::try_from(blob.zstd_raw_len.unwrap_or(0))?;
    let compressed = blob.bytes.clone();
    t.compressed_bytes = compressed.len();

    let started = Instant::now();
    let meta = log.write_snapshot(&blob).await?;
    t.write = started.elapsed().as_secs_f64();
    if meta.bytes as usize != compressed.len() {
        bail!(
            "write_snapshot stored {} B, expected {}",
            meta.bytes,
            compressed.len()
        );
    }

    t.raw_set = raw_set(client, compressed).await?;
    println!(
        "  snapshot: take {:.1} ms, encode + zstd {:.1} ms, write_snapshot {:.1} ms ({} chunks), \
         raw SET {:.1} ms",
        t.take * 1e3,
        t.encode * 1e3,
        t.write * 1e3,
        meta.chunks,
        t.raw_set * 1e3
    );
    Ok(t)
}

/// The baseline of the snapshot figures: one raw `SET` of `bytes` on a connection of its own,
/// in seconds.
async fn raw_set(client: &redis::Client, bytes: Bytes) -> Result<f64> {
    let client = client.clone();
    tokio::task::spawn_blocking(move || -> Result<f64> {
        let mut conn = client.get_connection()?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        let started = Instant::now();
        redis::cmd("SET")
            .arg("bench:raw-snapshot")
            .arg(bytes.as_ref())
            .query::<()>(&mut conn)?;
        Ok(started.elapsed().as_secs_f64())
    })
    .await?
}

// ---------------------------------------------------------------------------------------------
// (c) read stalls during snapshots

/// Latency samples in nanoseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// (max, p99) in milliseconds.
    fn max_p99(mut self) -> (f64, f64, usize) {
        if self.0.is_empty() {
            return (0.0, 0.0, 0);
        }
        self.0.sort_unstable();
        let n = self.0.len();
        let max = self.0[n - 1] as f64 / 1e6;
        let p99 = self.0[(n * 99 / 100).min(n - 1)] as f64 / 1e6;
        (max, p99, n)
    }
}

/// Samples taken while no snapshot runs (`[0]`) and while snapshots run (`[1]`).
type Phased = [Samples; 2];

fn spawn_sampler<S: Default + Send + 'static>(
    name: &str,
    stop: &Arc<AtomicBool>,
    mut body: impl FnMut(&mut S) -> Result<()> + Send + 'static,
) -> Result<JoinHandle<Result<S>>> {
    let stop = stop.clone();
    Ok(std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut samples = S::default();
            while !stop.load(Ordering::Relaxed) {
                body(&mut samples)?;
            }
            Ok(samples)
        })?)
}

/// What the stall phase measures, per sampler, split by whether snapshots were running.
#[derive(Default)]
struct ReaderSamples {
    /// Time from asking for the read lock to holding it: what a snapshot (or the writer) can
    /// add to a query. This is the stall.
    lock_wait: Phased,
    /// The whole query, lock wait included: also the query's own cost (2-hop neighbourhoods of
    /// Nodes and Namespaces run to milliseconds with nothing else running) and any time the
    /// reader thread itself is descheduled on the 2 shared cores.
    query: Phased,
}

async fn stalls(shared: &SharedGraph, resources: &[Arc<Resource>]) -> Result<()> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let log = RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER)?)?;
    log.ping().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let snapshotting = Arc::new(AtomicBool::new(false));
    let uploading = Arc::new(AtomicBool::new(false));

    // Reader: 2-hop neighbourhoods of resources spread over the whole cluster.
    let uids: Vec<Uid> = resources.iter().step_by(7).map(|r| r.uid.clone()).collect();
    let reader = {
        let (shared, snapshotting) = (shared.clone(), snapshotting.clone());
        let query = NeighborQuery {
            depth: 2,
            ..NeighborQuery::default()
        };
        let mut i = 0usize;
        spawn_sampler("reader", &stop, move |samples: &mut ReaderSamples| {
            let uid = &uids[i % uids.len()];
            i += 1;
            let during = usize::from(snapshotting.load(Ordering::Acquire));
            let started = Instant::now();
            let g = shared.read();
            samples.lock_wait[during].push(started.elapsed());
            black_box(query::neighbors(&g, uid, &query));
            drop(g);
            samples.query[during].push(started.elapsed());
            Ok(())
        })?
    };

    // Writer: Pod status updates, alternating between two versions so each is a real change.
    let mut pods = pods(resources)?;
    pods.truncate(10_000);
    let updated: Vec<Arc<Resource>> = (0..pods.len())
        .map(|i| Arc::new(pod_update(&pods, i)))
        .collect();
    let writer = {
        let (shared, snapshotting) = (shared.clone(), snapshotting.clone());
        let mut i = 0usize;
        spawn_sampler("writer", &stop, move |samples: &mut Phased| {
            let (set, j) = (i / pods.len(), i % pods.len());
            let r = if set % 2 == 0 { &updated[j] } else { &pods[j] };
            i += 1;
            let during = usize::from(snapshotting.load(Ordering::Acquire));
            let started = Instant::now();
            let mut g = shared.write();
            samples[during].push(started.elapsed());
            g.apply(ChangeOp::Upsert(r.clone()), 0, &mut ());
            drop(g);
            std::thread::sleep(WRITER_PAUSE);
            Ok(())
        })?
    };

    // PING on a connection of its own, recorded while a snapshot is being written.
    let pinger = {
        let mut conn = redis::Client::open(redis.url())?.get_connection()?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let uploading = uploading.clone();
        spawn_sampler("pinger", &stop, move |samples: &mut Samples| {
            let during = uploading.load(Ordering::Acquire);
            let started = Instant::now();
            redis::cmd("PING").query::<()>(&mut conn)?;
            if during {
                samples.push(started.elapsed());
            }
            std::thread::sleep(Duration::from_micros(500));
            Ok(())
        })?
    };

    // The same reader and writer with no snapshot running first: the baseline.
    tokio::time::sleep(STALL_QUIET).await;
    snapshotting.store(true, Ordering::Release);

    // Snapshots, back to back: the source copies in slices (`snapshot_sliced`, as the server
    // does) on a thread of its own, then lowers it to background priority to encode.
    let started = Instant::now();
    let mut count = 0usize;
    let mut holds = Samples::default();
    while count < STALL_SNAPSHOTS || started.elapsed() < STALL_MIN {
        // The product's path (`take_snapshot`, the source shaped as the server's).
        let copy_ns = Arc::new(AtomicU64::new(0));
        let source = {
            let (shared, copy_ns) = (shared.clone(), copy_ns.clone());
            Arc::new(move || {
                // Nothing kept: every snapshot encodes everything, the most CPU it can take
                // from the reader and the writer.
                copy_then_encode(
                    || {
                        let t = Instant::now();
                        let copied = snapshot_sliced(&shared);
                        copy_ns.store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        copied
                    },
                    &mut SnapshotEncoder::default(),
                )
            })
        };
        let blob = take_snapshot(&source).await;
        holds.push(Duration::from_nanos(copy_ns.load(Ordering::Relaxed)));
        uploading.store(true, Ordering::Release);
        let written = log.write_snapshot(&blob?).await;
        uploading.store(false, Ordering::Release);
        written?;
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    fn join<S>(h: JoinHandle<Result<S>>) -> Result<S> {
        h.join()
            .map_err(|_| anyhow::anyhow!("a sampler thread panicked"))?
    }
    let ReaderSamples {
        lock_wait: [wait_quiet, wait_during],
        query: [query_quiet, query_during],
    } = join(reader)?;
    let [write_quiet, write_during] = join(writer)?;
    let (ping_max, ping_p99, pings) = join(pinger)?.max_p99();
    let (hold_max, _, _) = holds.max_p99();
    drop(redis);
    // Lock holds alone (nothing else running): the whole copy under one read lock, as before,
    // against the longest slice.
    let (mut whole, mut slice) = (Samples::default(), Samples::default());
    for _ in 0..5 {
        let t = Instant::now();
        black_box(shared.read().snapshot());
        whole.push(t.elapsed());
        let mut out = Vec::new();
        let mut next = Some(0);
        while let Some(from) = next {
            let t = Instant::now();
            let g = shared.read();
            next = g.snapshot_slice(from, SNAPSHOT_SLICE, &mut out);
            drop(g);
            slice.push(t.elapsed());
        }
    }
    let (whole_max, _, _) = whole.max_p99();
    let (slice_max, _, _) = slice.max_p99();

    let (wait_max, wait_p99, reads) = wait_during.max_p99();
    let (wait_quiet_max, wait_quiet_p99, reads_quiet) = wait_quiet.max_p99();
    let (query_max, query_p99, _) = query_during.max_p99();
    let (query_quiet_max, query_quiet_p99, _) = query_quiet.max_p99();
    let (write_max, write_p99, writes) = write_during.max_p99();
    let (write_quiet_max, write_quiet_p99, _) = write_quiet.max_p99();
    println!(
        "  stalls: {:.1} s without snapshots ({reads_quiet} queries), then {count} snapshots in \
         {seconds:.1} s ({reads} queries, {writes} applies, {pings} pings during uploads); longest \
         copy (in slices of {SNAPSHOT_SLICE} nodes, each under its own read lock) {hold_max:.2} ms",
        STALL_QUIET.as_secs_f64()
    );
    figure(
        "stall/read_lock_wait_max_ms",
        wait_max,
        "ms",
        Some(Versus {
            ratio: wait_max / 1.0,
            baseline: "1 ms budget",
            target: "<= 1.00x",
            met: wait_max <= 1.0,
        }),
    );
    for (name, ms) in [
        ("stall/read_lock_wait_p99_ms", wait_p99),
        ("stall/no_snapshot/read_lock_wait_max_ms", wait_quiet_max),
        ("stall/no_snapshot/read_lock_wait_p99_ms", wait_quiet_p99),
        ("stall/read_query_max_ms", query_max),
        ("stall/read_query_p99_ms", query_p99),
        ("stall/no_snapshot/read_query_max_ms", query_quiet_max),
        ("stall/no_snapshot/read_query_p99_ms", query_quiet_p99),
    ] {
        figure(name, ms, "ms", None);
    }
    figure(
        "stall/lock_hold_slice_max_ms",
        slice_max,
        "ms",
        Some(Versus {
            ratio: slice_max / whole_max,
            baseline: "whole copy under one lock",
            target: "<= 1 ms",
            met: slice_max <= 1.0,
        }),
    );
    for (name, ms) in [
        ("stall/lock_hold_whole_copy_max_ms", whole_max),
        ("stall/write_lock_wait_max_ms", write_max),
        ("stall/write_lock_wait_p99_ms", write_p99),
        ("stall/no_snapshot/write_lock_wait_max_ms", write_quiet_max),
        ("stall/no_snapshot/write_lock_wait_p99_ms", write_quiet_p99),
        ("stall/redis_ping_max_ms", ping_max),
        ("stall/redis_ping_p99_ms", ping_p99),
    ] {
        figure(name, ms, "ms", None);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (d) design study: one zstd frame per resource, against a trained dictionary

/// Resources sampled to train the dictionary, and its size.
const DICT_SAMPLES: usize = 5_000;
const DICT_BYTES: usize = 112 * 1024;

/// A figure of the study ([`figure`], no target), with what it is on the line after.
fn study(name: &str, value: f64, unit: &str, note: &str) {
    figure(name, value, unit, None);
    if !note.is_empty() {
        println!("    {note}");
    }
}

fn study_ms(name: &str, took: Duration, note: &str) {
    study(name, took.as_secs_f64() * 1e3, "ms", note);
}

async fn dictionary(resources: &[Arc<Resource>]) -> Result<()> {
    let records = resources
        .iter()
        .map(|r| {
            let mut one = Vec::new();
            astrolabe_model::codec::encode_resources_into(std::slice::from_ref(r), &mut one)?;
            Ok(one)
        })
        .collect::<Result<Vec<Vec<u8>>>>()?;
    let raw: usize = records.iter().map(Vec::len).sum();
    let whole = records.concat();
    let started = Instant::now();
    let stream = zstd::bulk::compress(&whole, 1)?;
    let stream_time = started.elapsed();
    study("dictionary/raw_bytes", raw as f64, "B", "");
    study(
        "dictionary/whole_stream_zstd1_bytes",
        stream.len() as f64,
        "B",
        &format!("one thread, {:.1} ms", stream_time.as_secs_f64() * 1e3),
    );

    let started = Instant::now();
    let back = zstd::bulk::decompress(&stream, raw)?;
    study_ms(
        "dictionary/whole_stream_decompress_ms",
        started.elapsed(),
        "one thread",
    );
    if back != whole {
        bail!("the whole stream did not round-trip");
    }
    drop(back);

    let step = (records.len() / DICT_SAMPLES).max(1);
    let samples: Vec<&[u8]> = records.iter().step_by(step).map(Vec::as_slice).collect();
    let started = Instant::now();
    let dict = zstd::dict::from_samples(&samples, DICT_BYTES)?;
    study_ms(
        "dictionary/train_ms",
        started.elapsed(),
        &format!("{} samples, {} B dictionary", samples.len(), dict.len()),
    );
    let mut level1 = None;
    for level in [1, 3] {
        let prepared = zstd::dict::EncoderDictionary::copy(&dict, level);
        let mut compressor = zstd::bulk::Compressor::with_prepared_dictionary(&prepared)?;
        compressor.include_checksum(false)?;
        compressor.include_dictid(false)?;
        let started = Instant::now();
        let frames = records
            .iter()
            .map(|r| compressor.compress(r))
            .collect::<std::io::Result<Vec<Vec<u8>>>>()?;
        let compress = started.elapsed();
        let size: usize = frames.iter().map(Vec::len).sum();

        let prepared = zstd::dict::DecoderDictionary::copy(&dict);
        let mut decompressor = zstd::bulk::Decompressor::with_prepared_dictionary(&prepared)?;
        let mut out = vec![0u8; records.iter().map(Vec::len).max().unwrap_or(0)];
        let started = Instant::now();
        for (frame, record) in frames.iter().zip(&records) {
            let n = decompressor.decompress_to_buffer(frame, &mut out)?;
            if out.get(..n) != Some(record.as_slice()) {
                bail!("a record did not round-trip");
            }
        }
        let decompress = started.elapsed();

        // A snapshot assembled from frames kept per resource: a length and the frame each.
        let started = Instant::now();
        let mut assembled = Vec::with_capacity(size + 4 * frames.len());
        for frame in &frames {
            assembled.extend_from_slice(&u32::try_from(frame.len())?.to_le_bytes());
            assembled.extend_from_slice(frame);
        }
        let assemble = started.elapsed();
        black_box(&assembled);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / records.len() as f64;
        study(
            &format!("dictionary/level{level}_bytes"),
            size as f64,
            "B",
            &format!(
                "{:.1} B per resource, {:.2}x the whole stream",
                size as f64 / records.len() as f64,
                size as f64 / stream.len() as f64
            ),
        );
        study_ms(
            &format!("dictionary/level{level}_compress_ms"),
            compress,
            &format!("one thread, {:.2} us per resource", per(compress)),
        );
        study_ms(
            &format!("dictionary/level{level}_decompress_ms"),
            decompress,
            &format!("one thread, {:.2} us per resource", per(decompress)),
        );
        study_ms(
            &format!("dictionary/level{level}_assemble_ms"),
            assemble,
            "concatenating the kept frames",
        );
        if level == 1 {
            level1 = Some((Bytes::from(assembled), assemble));
        }
    }
    let Some((assembled, assemble)) = level1 else {
        bail!("level 1 was not measured");
    };
    dictionary_upload(raw, assembled, assemble, Bytes::from(stream)).await
}

/// A snapshot assembled from kept frames costs the assembly plus the product's upload
/// (`write_snapshot`: chunks and commit); timed here next to raw `SET`s of those bytes and of
/// the whole-stream bytes, medians of [`SNAPSHOT_ROUNDS`].
async fn dictionary_upload(
    raw: usize,
    assembled: Bytes,
    assemble: Duration,
    stream: Bytes,
) -> Result<()> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let log = RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER)?)?;
    log.ping().await?;
    let client = redis::Client::open(redis.url())?;
    let (mut writes, mut sets, mut stream_sets) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..SNAPSHOT_ROUNDS {
        let blob = SnapshotBlob {
            taken_at_ms: 0,
            seq: round as u64 + 1,
            resource_count: 0,
            bytes: assembled.clone(),
            zstd_raw_len: Some(raw as u64),
            copied_until: round as u64 + 1,
        };
        let started = Instant::now();
        log.write_snapshot(&blob).await?;
        writes.push(started.elapsed().as_secs_f64());
        sets.push(raw_set(&client, assembled.clone()).await?);
        stream_sets.push(raw_set(&client, stream.clone()).await?);
    }
    drop(redis);
    let (write, set, stream_set) = (median(writes), median(sets), median(stream_sets));
    let steady = assemble.as_secs_f64() + write;
    study(
        "dictionary/upload_ms",
        write * 1e3,
        "ms",
        "write_snapshot of the assembled frames",
    );
    study(
        "dictionary/raw_set_ms",
        set * 1e3,
        "ms",
        "raw SET of the same bytes",
    );
    study(
        "dictionary/whole_stream_raw_set_ms",
        stream_set * 1e3,
        "ms",
        "raw SET of the whole-stream bytes",
    );
    study(
        "dictionary/unchanged_snapshot_ms",
        steady * 1e3,
        "ms",
        &format!(
            "assembly + upload, every frame kept: {:.2}x its raw SET, {:.2}x the whole stream's",
            steady / set,
            steady / stream_set
        ),
    );
    Ok(())
}
