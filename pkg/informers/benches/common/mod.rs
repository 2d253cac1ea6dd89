//! Shared pieces of the informers benches: the [`harness`] (emulator, bounded waits, figure
//! lines) and a minimal ingest path (informers for every kind feeding a graph through a small
//! apply loop) that the restart bench relists through. The initial-sync bench lives in
//! `cmd/astrolabe/benches` and drives the product's real apply loop instead.
#![allow(dead_code)]

mod harness;

pub use harness::{Emulator, Versus, figure, within};

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use astrolabe_graph::{Graph, SharedGraph, now_ms};
use astrolabe_informers::{InformerConfig, InformerMetrics, IngestEvent, SyncStatus};
use astrolabe_model::{ChangeOp, Kind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on any initial list of the whole cluster.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// Capacity of the informers → apply loop channel.
pub const INGEST_CHANNEL: usize = 1024;

/// Counters of the apply loop.
#[derive(Debug, Default)]
pub struct Progress {
    /// Upserts and deletes received and applied (including no-op upserts).
    pub events: AtomicU64,
    /// Graph changes (applies that changed something).
    pub changes: AtomicU64,
    /// Lists started (the first list of each kind, then relists).
    pub list_starts: AtomicU64,
    /// Time spent applying (under the write lock), in nanoseconds.
    pub busy_ns: AtomicU64,
}

/// Astrolabe's ingest path: informers for every watched kind, one apply loop owning the writes
/// to a [`SharedGraph`].
pub struct Ingest {
    /// The graph being fed.
    pub graph: SharedGraph,
    /// The apply loop's counters.
    pub progress: Arc<Progress>,
    listed: watch::Receiver<usize>,
    shutdown: CancellationToken,
    informers: JoinHandle<()>,
    apply: JoinHandle<()>,
}

impl Ingest {
    /// Start informers against `url` and the apply loop into `graph`.
    pub fn start(url: &str, graph: SharedGraph) -> Result<Self> {
        let client = astrolabe_informers::client_for_url(url)?;
        let (tx, rx) = mpsc::channel(INGEST_CHANNEL);
        let shutdown = CancellationToken::new();
        let informers = astrolabe_informers::spawn(
            client,
            InformerConfig::default(),
            tx,
            SyncStatus::new(),
            InformerMetrics::unregistered(),
            shutdown.clone(),
        );
        let progress = Arc::new(Progress::default());
        let (listed_tx, listed) = watch::channel(0);
        let apply = tokio::spawn(apply_loop(rx, graph.clone(), progress.clone(), listed_tx));
        Ok(Self {
            graph,
            progress,
            listed,
            shutdown,
            informers,
            apply,
        })
    }

    /// Wait until every watched kind completed its first list (and was applied).
    pub async fn until_listed(&mut self, limit: Duration) -> Result<()> {
        let want = Kind::WATCHED.len();
        let listed = &mut self.listed;
        within(
            limit,
            "every kind to be listed",
            listed.wait_for(|n| *n >= want),
        )
        .await?
        .map_err(|_| anyhow::anyhow!("the apply loop ended before every kind was listed"))?;
        Ok(())
    }

    /// Stop the informers and the apply loop.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        within(Duration::from_secs(10), "informers to stop", self.informers).await??;
        within(
            Duration::from_secs(10),
            "the apply loop to stop",
            self.apply,
        )
        .await??;
        Ok(())
    }
}

/// The apply loop: upserts and deletes through [`Graph::apply`], a completed list removes what it
/// did not see ([`Graph::stale`]). Publishes the number of kinds listed at least once.
async fn apply_loop(
    mut rx: mpsc::Receiver<IngestEvent>,
    graph: SharedGraph,
    progress: Arc<Progress>,
    listed_tx: watch::Sender<usize>,
) {
    let mut listed: HashSet<Kind> = HashSet::new();
    while let Some(event) = rx.recv().await {
        let started = Instant::now();
        let mut g = graph.write();
        let completed = apply_event(&mut g, event, &progress);
        drop(g);
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        progress.busy_ns.fetch_add(busy, Ordering::Relaxed);
        if let Some(kind) = completed
            && listed.insert(kind)
        {
            listed_tx.send_replace(listed.len());
        }
    }
}

/// Apply one event; returns the kind whose list just completed, if any.
fn apply_event(g: &mut Graph, event: IngestEvent, progress: &Progress) -> Option<Kind> {
    let changed = |c: Option<_>| u64::from(c.is_some());
    match event {
        IngestEvent::Upsert(r) => {
            let c = g.apply(ChangeOp::Upsert(Arc::new(r)), now_ms(), &mut ());
            progress.events.fetch_add(1, Ordering::Relaxed);
            progress.changes.fetch_add(changed(c), Ordering::Relaxed);
            None
        }
        IngestEvent::Delete { uid, key } => {
            let c = g.apply(ChangeOp::Delete { uid, key }, now_ms(), &mut ());
            progress.events.fetch_add(1, Ordering::Relaxed);
            progress.changes.fetch_add(changed(c), Ordering::Relaxed);
            None
        }
        IngestEvent::ListStarted { .. } => {
            progress.list_starts.fetch_add(1, Ordering::Relaxed);
            None
        }
        IngestEvent::ListCompleted {
            kind,
            namespace,
            seen,
        } => {
            for uid in g.stale(&kind, namespace.as_deref(), &seen) {
                let c = g.delete(&uid);
                progress.changes.fetch_add(changed(c), Ordering::Relaxed);
            }
            Some(kind)
        }
    }
}

/// Full relist of the cluster at `url` into a fresh graph: seconds until every kind is listed,
/// and the graph.
pub async fn relist_into_graph(url: &str) -> Result<(f64, Graph)> {
    let started = Instant::now();
    let mut ingest = Ingest::start(url, SharedGraph::new())?;
    ingest.until_listed(SYNC_TIMEOUT).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  relist: {} resources in {seconds:.3} s ({:.3} s of it applying to the graph)",
        ingest.graph.read().node_count(),
        ingest.progress.busy_ns.load(Ordering::Relaxed) as f64 / 1e9
    );
    let graph = ingest.graph.clone();
    ingest.stop().await?;
    let graph = std::mem::take(&mut *graph.write());
    Ok((seconds, graph))
}

/// Check that a graph holds `want` resources.
pub fn expect_nodes(what: &str, graph: &Graph, want: usize) -> Result<()> {
    if graph.node_count() != want {
        bail!(
            "{what}: graph has {} resources, expected {want}",
            graph.node_count()
        );
    }
    Ok(())
}
