//! History's bound under sustained churn: the server's persistence as `astrolabe serve` wires
//! it — `persistence::start_memory` (the in-memory log, persistence off) and
//! `persistence::start` against a real `redis-server` — each over its own graph of the generated
//! 100k cluster, fed [`RATE`] changes a second (Pod status updates; one Pod created and one
//! deleted per thousand) for `SOAK_MINUTES` (10) with a short retention
//! (`--history-retention 2m`, a checkpoint every 30 s), both side by side.
//!
//! Every 30 s it samples the in-memory log's bytes (`astrolabe_history_log_bytes`) and the
//! memory Redis uses (`INFO memory`, `used_memory`). The figure per log: the most memory over
//! the second half of the run, against the memory when retention first filled (retention plus
//! two checkpoint intervals after the churn started): bounded means that ratio stays near 1.
//! At the end a point behind the retention must be gone (410 with the oldest point).
//!
//! The changes come from this process rather than the emulator (whose churn reaches a few
//! hundred changes a second on two cores); what the figure is about — the writer, the
//! checkpoints, retention's trimming, both logs — is the server's own code.
//!
//! `cargo bench -q -p astrolabe-server --bench history_soak` (`SOAK_MINUTES`, `SOAK_RATE` and
//! `SOAK_SIZE` override the defaults). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_api::history::{HistoryError, HistorySource};
use astrolabe_generator as generator;
use astrolabe_graph::SharedGraph;
use astrolabe_history::Point;
use astrolabe_informers::SyncStatus;
use astrolabe_model::{ChangeOp, Resource, now_ms};
use astrolabe_persist::RedisTarget;
use astrolabe_server::config::{HistoryConfig, PersistConfig};
use astrolabe_server::persistence::{self, Persistence};
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{pod_churn, pods};
use common::{Versus, apply_and_send, env_u64, figure, within};
use prometheus::Registry;

const SEED: u64 = 7;
const SIZE: usize = 100_000;
const MINUTES: u64 = 10;
/// Changes a second.
const RATE: u64 = 1_000;
const RETENTION: Duration = Duration::from_secs(120);
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// Changes applied per tick of [`TICK`].
const TICK: Duration = Duration::from_millis(10);
/// The most memory in the second half may exceed the memory when retention filled by this
/// factor (checkpoints come and go in steps of one).
const BOUND: f64 = 1.25;

fn main() -> Result<()> {
    common::block_on(run())
}

/// One log under churn: its persistence, graph, and how to read its memory.
struct Soaked {
    name: &'static str,
    graph: SharedGraph,
    persistence: Persistence,
    memory: Box<dyn Fn() -> Result<u64> + Send + Sync>,
    samples: Vec<(f64, u64, u64)>,
}

async fn run() -> Result<()> {
    let minutes = env_u64("SOAK_MINUTES", MINUTES)?;
    let rate = env_u64("SOAK_RATE", RATE)?;
    let size = usize::try_from(env_u64("SOAK_SIZE", SIZE as u64)?)?;
    let redis = Arc::new(RedisServer::start().context("starting redis-server")?);
    let history = HistoryConfig {
        retention: RETENTION,
        ..HistoryConfig::default()
    };
    let config = PersistConfig {
        snapshot_interval: CHECKPOINT_EVERY,
        history,
        ..PersistConfig::default()
    };
    let grace = Duration::from_secs(30);

    let registry = Registry::new();
    let graph = SharedGraph::new();
    let (persistence, log) =
        persistence::start_memory(&config, &registry, &graph, &SyncStatus::new(), grace)
            .context("history is on: the in-memory log starts")?;
    let in_memory = Soaked {
        name: "memory",
        graph,
        persistence,
        memory: Box::new(move || Ok(log.bytes())),
        samples: Vec::new(),
    };

    let redis_config = PersistConfig {
        enabled: true,
        redis: RedisTarget {
            url: Some(redis.url()),
            ..RedisTarget::default()
        },
        cluster_name: "soak".to_owned(),
        ..config.clone()
    };
    let graph = SharedGraph::new();
    let (persistence, _) = persistence::start(
        &redis_config,
        &Registry::new(),
        &graph,
        &SyncStatus::new(),
        grace,
        || true,
    )
    .await?;
    let used = redis.clone();
    let on_redis = Soaked {
        name: "redis",
        graph,
        persistence,
        memory: Box::new(move || used_memory(&used)),
        samples: Vec::new(),
    };

    let mut soaked = [in_memory, on_redis];
    let generated = generator::generate(SEED, size);
    for s in &soaked {
        initial_list(s, &generated).await?;
    }
    println!(
        "history soak: {size} resources, then {rate} changes/s for {minutes} min, retention {} s, \
         a checkpoint every {} s; sampling every {} s",
        RETENTION.as_secs(),
        CHECKPOINT_EVERY.as_secs(),
        SAMPLE_EVERY.as_secs()
    );
    let pods: Vec<Arc<Resource>> = pods(soaked[0].graph.read().resources())?;
    let duration = Duration::from_secs(minutes * 60);
    let per_tick = (rate * TICK.as_millis() as u64 / 1_000).max(1);
    let started = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next_sample = Duration::ZERO;
    let mut i: u64 = 0;
    let mut created: Option<Resource> = None;
    while started.elapsed() < duration {
        tick.tick().await;
        for _ in 0..per_tick {
            let op = pod_churn(&pods, usize::try_from(i)?, "soak", &mut created);
            for s in &soaked {
                apply_and_send(&s.graph, &s.persistence.sender, op.clone());
            }
            i += 1;
        }
        if started.elapsed() >= next_sample {
            for s in &mut soaked {
                let bytes = (s.memory)()?;
                s.samples.push((started.elapsed().as_secs_f64(), i, bytes));
            }
            next_sample += SAMPLE_EVERY;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  {i} changes in {elapsed:.0} s: {:.0} changes/s",
        i as f64 / elapsed
    );
    let fill = (RETENTION + 2 * CHECKPOINT_EVERY).as_secs_f64();
    for s in soaked {
        report(&s, fill, elapsed)?;
        gone_behind_retention(&s).await?;
        within(grace, "persistence shutdown", s.persistence.shutdown()).await??;
    }
    Ok(())
}

/// The generated cluster applied and sent to the writer, as the first list would, then waited
/// for until it is in the log.
async fn initial_list(s: &Soaked, generated: &[Resource]) -> Result<()> {
    for r in generated {
        apply_and_send(
            &s.graph,
            &s.persistence.sender,
            ChangeOp::Upsert(Arc::new(r.clone())),
        );
    }
    let history = s.persistence.history.clone().context("history is kept")?;
    let seq = s.graph.read().seq();
    within(
        Duration::from_secs(120),
        "the initial list reaches the log",
        async {
            while history.touched(seq - 1, seq).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await?;
    Ok(())
}

fn used_memory(redis: &RedisServer) -> Result<u64> {
    let info = redis.command_line("INFO memory")?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no used_memory in {info:?}"))
}

/// The samples, and the figure: the most memory over the second half against the memory when
/// retention filled.
fn report(s: &Soaked, fill_s: f64, elapsed_s: f64) -> Result<()> {
    println!("  {}: seconds, changes, bytes", s.name);
    for (t, n, bytes) in &s.samples {
        println!("    {t:6.0} {n:9} {:10.1} MiB", *bytes as f64 / 1048576.0);
    }
    let at_fill = s
        .samples
        .iter()
        .find(|(t, _, _)| *t >= fill_s)
        .map(|(_, _, b)| *b)
        .context("the run ended before retention filled")?;
    let late = s
        .samples
        .iter()
        .filter(|(t, _, _)| *t >= elapsed_s / 2.0)
        .map(|(_, _, b)| *b)
        .max()
        .context("no sample in the second half")?;
    let mib = |b: u64| b as f64 / 1048576.0;
    figure(
        &format!("history_soak/{}/late_max_mib", s.name),
        mib(late),
        "MiB",
        Some(Versus {
            ratio: late as f64 / at_fill as f64,
            baseline: "the memory when retention filled",
            target: "<= 1.25x",
            met: late as f64 <= BOUND * at_fill as f64,
        }),
    );
    Ok(())
}

/// A point behind the retention is gone, with the oldest point the history answers.
async fn gone_behind_retention(s: &Soaked) -> Result<()> {
    let history: Arc<dyn HistorySource> = s.persistence.history.clone().context("history")?;
    match history.locate(Point::Seq(1), "seq:1").await {
        Err(HistoryError::Gone { oldest, .. }) => {
            let age_s = (now_ms() - oldest.time_ms) as f64 / 1_000.0;
            println!(
                "  {}: seq:1 is gone (410); the oldest point is seq {} from {age_s:.0} s ago",
                s.name, oldest.seq
            );
            if age_s > (RETENTION + 3 * CHECKPOINT_EVERY).as_secs_f64() {
                bail!(
                    "{}: the oldest point is older than retention allows",
                    s.name
                );
            }
            Ok(())
        }
        Err(e) => bail!("{}: seq:1 answered {e}", s.name),
        Ok(_) => bail!("{}: seq:1 is still answered after retention", s.name),
    }
}
