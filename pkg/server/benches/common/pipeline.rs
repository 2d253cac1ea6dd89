//! Astrolabe's ingest pipeline for benches: the library's [`Ingest`] (the informers with the
//! default configuration, the ingest channel, the apply loop) into a graph, with the library's
//! readiness; persistence and HTTP left out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use astrolabe_api::{ChangeFeed, ReadinessSource as _};
use astrolabe_graph::SharedGraph;
use astrolabe_informers::{InformerConfig, SyncStatus};
use astrolabe_server::ServerConfig;
use astrolabe_server::apply::ApplyOutputs;
use astrolabe_server::ingest::Ingest;
use astrolabe_server::readiness::AppReadiness;
use astrolabe_server::status::Origin;
use prometheus::Registry;

use super::harness::within;

/// Bound on one full sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a wait re-checks its condition.
const POLL: Duration = Duration::from_millis(1);

/// Astrolabe's ingest pipeline as `astrolabe serve` runs it, minus persistence and HTTP.
pub struct Pipeline {
    pub graph: SharedGraph,
    pub sync: SyncStatus,
    pub registry: Registry,
    readiness: Arc<AppReadiness>,
    ingest: Ingest,
}

impl Pipeline {
    pub fn start(url: &str) -> Result<Self> {
        Self::start_config(url, InformerConfig::default())
    }

    /// [`Pipeline::start`] with informers configured by `config`.
    pub fn start_config(url: &str, config: InformerConfig) -> Result<Self> {
        let client = astrolabe_informers::client_for_url(url)?;
        let registry = Registry::new();
        let graph = SharedGraph::new();
        let sync = SyncStatus::new();
        let readiness = Arc::new(AppReadiness::new(Origin::Fresh, sync.clone(), None));
        readiness.set_hydrated();
        let feed = ChangeFeed::new(ServerConfig::default().watch_history, 1024);
        let outputs = ApplyOutputs::new(graph.clone(), feed, None, &registry)?;
        let ingest = Ingest::spawn(client, config, sync.clone(), &registry, outputs)?;
        Ok(Self {
            graph,
            sync,
            registry,
            readiness,
            ingest,
        })
    }

    /// Wait until the server would report ready (every kind completed its first list) and the
    /// graph holds all `objects`.
    pub async fn until_synced(&self, objects: usize) -> Result<()> {
        within(SYNC_TIMEOUT, "every kind to be listed and applied", async {
            while !(self.readiness.report().ready && self.graph.read().node_count() == objects) {
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
        self.ingest.stop.cancel();
        within(
            Duration::from_secs(10),
            "informers to stop",
            self.ingest.informers,
        )
        .await???;
        within(
            Duration::from_secs(10),
            "the apply loop to drain",
            self.ingest.apply,
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
