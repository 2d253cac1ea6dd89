//! Astrolabe's ingest pipeline for benches: the informers with the default configuration, the
//! ingest channel and the product's apply loop (`astrolabe::apply::run`), into a graph.

use std::time::{Duration, Instant};

use anyhow::Result;
use astrolabe::app::{HEARTBEAT_MAX_AGE, INGEST_CHANNEL};
use astrolabe::apply::{self, ApplyMetrics, ApplyOutputs};
use astrolabe::cli::ServerArgs;
use astrolabe_api::{ChangeFeed, Heartbeat};
use astrolabe_graph::SharedGraph;
use astrolabe_informers::{InformerConfig, InformerMetrics, SyncStatus};
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::harness::within;

/// Bound on one full sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a wait re-checks its condition.
const POLL: Duration = Duration::from_millis(1);

/// Astrolabe's ingest pipeline as `astrolabe serve` wires it, minus persistence and HTTP: the
/// informers with the default configuration, the ingest channel, the real apply loop.
pub struct Pipeline {
    pub graph: SharedGraph,
    pub sync: SyncStatus,
    pub registry: Registry,
    shutdown: CancellationToken,
    informers: JoinHandle<()>,
    apply: JoinHandle<u64>,
}

impl Pipeline {
    pub fn start(url: &str) -> Result<Self> {
        let client = astrolabe_informers::client_for_url(url)?;
        let registry = Registry::new();
        let graph = SharedGraph::new();
        let sync = SyncStatus::new();
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::channel(INGEST_CHANNEL);
        let informers = astrolabe_informers::spawn(
            client,
            InformerConfig::default(),
            tx,
            sync.clone(),
            InformerMetrics::new(&registry)?,
            shutdown.clone(),
        );
        let outputs = ApplyOutputs {
            graph: graph.clone(),
            feed: ChangeFeed::new(ServerArgs::default().watch_history, 1024),
            persist: None,
            heartbeat: Heartbeat::new(HEARTBEAT_MAX_AGE),
            metrics: ApplyMetrics::register(&registry)?,
        };
        let apply = tokio::spawn(apply::run(rx, outputs));
        Ok(Self {
            graph,
            sync,
            registry,
            shutdown,
            informers,
            apply,
        })
    }

    /// Wait until every kind completed its first list and the graph holds all `objects`.
    pub async fn until_synced(&self, objects: usize) -> Result<()> {
        within(SYNC_TIMEOUT, "every kind to be listed and applied", async {
            while !(self.sync.all_listed() && self.graph.read().node_count() == objects) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await?;
        Ok(())
    }

    /// Graph changes the apply loop made so far (`astrolabe_apply_changes_total`).
    pub fn changes(&self) -> u64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "astrolabe_apply_changes_total")
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Relists (list starts after the first) over every kind.
    pub fn relists(&self) -> u64 {
        self.sync
            .report()
            .iter()
            .map(|k| k.relists.saturating_sub(1))
            .sum()
    }

    /// Wait until no change was applied for `quiet`, bounded by `limit`; returns the changes
    /// count and when the last of them was applied.
    pub async fn until_quiet(&self, quiet: Duration, limit: Duration) -> Result<(u64, Instant)> {
        within(limit, "the apply loop to catch up", async {
            let mut last = self.changes();
            let mut last_at = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let now = self.changes();
                if now != last {
                    (last, last_at) = (now, Instant::now());
                } else if last_at.elapsed() >= quiet {
                    return (now, last_at);
                }
            }
        })
        .await
        .map_err(Into::into)
    }

    /// Stop the informers; the apply loop drains and ends.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        within(Duration::from_secs(10), "informers to stop", self.informers).await??;
        within(
            Duration::from_secs(10),
            "the apply loop to drain",
            self.apply,
        )
        .await??;
        Ok(())
    }
}

/// CPU time (user + system) this process used so far (0 where that is not available). On a
/// shared machine the wall-clock figures move with the neighbours' load; the CPU time says how
/// much work each side did.
pub fn process_cpu_seconds() -> f64 {
    cpu_time::ProcessTime::try_now().map_or(0.0, |t| t.as_duration().as_secs_f64())
}
