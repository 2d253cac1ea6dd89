//! Restart-to-ready for a 100k-resource cluster with 100k tail changes, as the server does it:
//! the server's `recover_with_deadline` from Redis with its own decoder (the snapshot decompressed and decoded on
//! one thread while another builds the graph from it, and the stream after it read meanwhile,
//! only the last change per object decoded), its `rebuild` (those changes replayed), then
//! `SharedGraph::replace`, after which readers are served; against a full relist of the same
//! final state from the emulator through the informers and the product's apply loop into a
//! graph (`common::Pipeline`, as `astrolabe serve` wires it).
//!
//! `cargo bench -p astrolabe-server --bench restart` (add `-- --restart-only` to skip the relist,
//! e.g. under a profiler). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_generator as generator;
use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::codec::Logged;
use astrolabe_model::{Change, ChangeOp, Resource};
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, EventLog, LastVersions, ModelDecoder, PersistMetrics, Record, RedisConfig,
    RedisLog, snapshot_blob,
};
use astrolabe_server::decoder::replay_logged;
use astrolabe_server::recovery::{RECOVERY_DEADLINE, rebuild, recover_with_deadline};
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{pod_update, pods};
use bytes::Bytes;
use common::{Emulator, Pipeline, Versus, figure, within};

const SEED: u64 = 42;
const SIZE: usize = 100_000;
const TAIL: usize = 100_000;
/// Changes per append while writing the tail (the writer's default batch).
const APPEND_BATCH: usize = 1024;
const RESTART_ROUNDS: usize = 3;
const RELIST_ROUNDS: usize = 2;
const TARGET_SECONDS: f64 = 1.0;
const TARGET_RATIO: f64 = 0.2;
const CLUSTER: &str = "bench";

fn main() -> Result<()> {
    common::block_on(run())
}

async fn run() -> Result<()> {
    let redis = RedisServer::start().context("starting redis-server")?;
    let config = RedisConfig::from_url(&redis.url(), CLUSTER)?;
    let generated = generator::generate(SEED, SIZE);
    let final_graph = within(
        Duration::from_secs(300),
        "writing the snapshot and the tail",
        prepare(&config, &generated),
    )
    .await??;
    let expected_nodes = final_graph.node_count();

    // The final state, in generation order, served by the emulator for the relist baseline.
    let final_resources: Vec<Resource> = generated
        .iter()
        .map(|r| final_graph.get(&r.uid).map(|f| (**f).clone()))
        .collect::<Option<_>>()
        .context("a generated resource is missing from the final graph")?;
    let sim = Sim::new(SimConfig::default());
    sim.load_resources(&final_resources)?;
    if sim.object_count() != expected_nodes {
        bail!(
            "the emulator holds {} objects, the graph {expected_nodes}",
            sim.object_count()
        );
    }

    breakdown(&config).await?;
    let mut restart_best = f64::INFINITY;
    for _ in 0..RESTART_ROUNDS {
        let seconds = within(
            Duration::from_secs(120),
            "a restart",
            restart(&config, &final_graph),
        )
        .await??;
        restart_best = restart_best.min(seconds);
    }
    if std::env::args().any(|a| a == "--restart-only") {
        figure("restart/restart_seconds", restart_best, "s", None);
        return Ok(());
    }

    let emulator = Emulator::try_serve(sim).await?;
    let mut relist_best = f64::INFINITY;
    for _ in 0..RELIST_ROUNDS {
        let seconds = relist(&emulator.url(), expected_nodes).await?;
        relist_best = relist_best.min(seconds);
    }

    figure("restart/relist_seconds", relist_best, "s", None);
    figure(
        "restart/restart_seconds",
        restart_best,
        "s",
        Some(Versus {
            ratio: restart_best / TARGET_SECONDS,
            baseline: "1 s budget",
            target: "<= 1.00x",
            met: restart_best <= TARGET_SECONDS,
        }),
    );
    let ratio = restart_best / relist_best;
    figure(
        "restart/restart_vs_relist",
        restart_best,
        "s",
        Some(Versus {
            ratio,
            baseline: "full relist",
            target: "<= 0.20x",
            met: ratio <= TARGET_RATIO,
        }),
    );
    Ok(())
}

/// Build the 100k graph, commit its snapshot, then append [`TAIL`] Pod updates. Returns the final
/// graph.
async fn prepare(config: &RedisConfig, generated: &[Resource]) -> Result<Graph> {
    let log = RedisLog::new(config)?;
    let mut graph = Graph::new();
    for r in generated {
        graph.apply(ChangeOp::Upsert(Arc::new(r.clone())), 0, &mut ());
    }
    let meta = log
        .write_snapshot(&snapshot_blob(&graph.snapshot())?)
        .await?;
    let pods = pods(graph.resources())?;
    let mut batch: Vec<(u64, Bytes)> = Vec::with_capacity(APPEND_BATCH);
    // The writer remembers the state it starts from (recovered, or written by the initial list).
    let mut last_versions = LastVersions::of(graph.resources());
    for i in 0..TAIL {
        let pod = pod_update(&pods, i);
        let change: Change = graph
            .apply(ChangeOp::Upsert(Arc::new(pod)), graph_ts(i), &mut ())
            .context("a Pod update changed nothing")?;
        // As the writer encodes it: an update of a Pod it wrote before is a patch.
        let mut payload = Vec::new();
        change.encode_remembering(&mut last_versions, &mut payload)?;
        batch.push((change.seq, Bytes::from(payload)));
        if batch.len() == APPEND_BATCH || i + 1 == TAIL {
            log.append(&batch).await?;
            batch.clear();
        }
    }
    println!(
        "restart: snapshot of {} resources ({} KiB compressed) at seq {}, then {TAIL} Pod updates \
         up to seq {}",
        meta.resource_count,
        meta.bytes / 1024,
        meta.covered_seq,
        graph.seq()
    );
    Ok(graph)
}

fn graph_ts(i: usize) -> i64 {
    1_700_000_000_000 + i as i64
}

/// One restart as the server's `persistence::start` does it: a fresh connection,
/// `recover_with_deadline` with the server's decoder (the graph built from the snapshot while the tail is read), its
/// `rebuild` (the tail replayed), then `SharedGraph::replace`, which serves the graph; the
/// apply loop's second copy is cloned after that, off the start-up path, as the server does
/// (timed and printed apart). Checked against the final graph. Returns the seconds until the
/// graph is served.
async fn restart(config: &RedisConfig, want: &Graph) -> Result<f64> {
    let metrics = PersistMetrics::unregistered()?;
    let started = Instant::now();
    let log = RedisLog::new(config)?;
    let recovered = recover_with_deadline(&log, &metrics, RECOVERY_DEADLINE)
        .await
        .context("recovery did not succeed")?;
    let recovered_at = started.elapsed();
    if recovered.snapshot.is_none() {
        bail!("recovery found no snapshot");
    }
    // Changes read: the last one per Pod is replayed, the rest superseded.
    let read = recovered.tail.len() as u64 + recovered.superseded;
    let replayed = recovered.tail.len();
    let shared = SharedGraph::new();
    shared.replace(rebuild(recovered));
    let seconds = started.elapsed().as_secs_f64();
    // The server clones the second copy after this, off the start-up path.
    let t = Instant::now();
    shared.catch_up();
    let second_copy = t.elapsed().as_secs_f64();
    let graph = shared.read();

    if read != TAIL as u64 || graph.seq() != want.seq() {
        bail!(
            "recovered {read} tail changes up to seq {}, expected {TAIL} up to {}",
            graph.seq(),
            want.seq()
        );
    }
    expect_nodes("restart", &graph, want.node_count())?;
    if graph.edge_count() != want.edge_count() {
        bail!(
            "restart: {} edges, expected {}",
            graph.edge_count(),
            want.edge_count()
        );
    }
    println!(
        "  restart: recover {:.3} s (snapshot load + decode + graph build, overlapped with \
         reading {TAIL} changes and decoding the last per object, {replayed}), replay {:.3} s, \
         total {seconds:.3} s; then the second copy {second_copy:.3} s",
        recovered_at.as_secs_f64(),
        seconds - recovered_at.as_secs_f64(),
    );
    Ok(seconds)
}

/// The parts of a restart timed one after the other (no overlap, no streaming, every tail change
/// decoded and replayed), to show what each part costs on its own.
async fn breakdown(config: &RedisConfig) -> Result<()> {
    let log = RedisLog::new(config)?;
    let t = Instant::now();
    let loaded = log
        .load_snapshot()
        .await?
        .context("recovery found no snapshot")?;
    let raw = loaded.decompress()?;
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let snapshot = astrolabe_persist::Decoder::decode_snapshot(&ModelDecoder, &raw)?;
    let decode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let graph = Graph::from_snapshot(&snapshot);
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut after = loaded.meta.covered_seq;
    let mut entries = Vec::new();
    loop {
        let page = log.read_after(after, DEFAULT_REPLAY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page);
    }
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let changes: Vec<Logged> = entries
        .iter()
        .map(|e| astrolabe_persist::Decoder::decode_change(&ModelDecoder, e.seq, &e.payload))
        .collect::<astrolabe_persist::Result<_>>()?;
    let decode_tail = t.elapsed().as_secs_f64();
    let mut graph = graph;
    let tail_len = changes.len();
    let t = Instant::now();
    for c in changes {
        replay_logged(&mut graph, c)?;
    }
    let replay = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let copy = graph.clone();
    let clone = t.elapsed().as_secs_f64();
    drop(copy);
    println!(
        "  breakdown, one after the other: snapshot get + unzstd {:.3} s ({} MB raw), decode \
         {:.3} s, from_snapshot {:.3} s; tail read {:.3} s ({} changes), decode {:.3} s and \
         replay {:.3} s of every change (recovery decodes and replays only the last per object); \
         a clone of the graph {:.3} s",
        load,
        raw.len() / 1_000_000,
        decode,
        build,
        read,
        tail_len,
        decode_tail,
        replay,
        clone
    );
    Ok(())
}

/// Full relist of the cluster at `url` into a fresh graph through the real pipeline: seconds
/// until every kind is listed and all `objects` are in the graph.
async fn relist(url: &str, objects: usize) -> Result<f64> {
    let started = Instant::now();
    let pipeline = Pipeline::start(url)?;
    pipeline.until_synced(objects).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!("  relist: {objects} resources in {seconds:.3} s");
    pipeline.stop().await?;
    Ok(seconds)
}

/// Check that a graph holds `want` resources.
fn expect_nodes(what: &str, graph: &Graph, want: usize) -> Result<()> {
    if graph.node_count() != want {
        bail!(
            "{what}: graph has {} resources, expected {want}",
            graph.node_count()
        );
    }
    Ok(())
}
