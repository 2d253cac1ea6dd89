//! `serve`: wires recovery, informers, the apply loop, persistence and the HTTP API, and runs
//! them until shutdown. If any long-running task ends on its own, everything shuts down and the
//! process exits non-zero (so Kubernetes restarts it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use astrolabe_api::fragments::FragmentCache;
use astrolabe_api::{AppState, ChangeFeed, Heartbeat, Limits};
use astrolabe_graph::SharedGraph;
use astrolabe_informers::{InformerConfig, InformerMetrics, SyncStatus};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::apply::{self, ApplyMetrics, ApplyOutputs};
use crate::cli::ServeArgs;
use crate::persistence::{self, Origin};
use crate::readiness::AppReadiness;

/// Capacity of the channel from the informers to the apply loop.
pub const INGEST_CHANNEL: usize = 8192;
/// Liveness fails when the apply loop has not touched its heartbeat for this long.
pub const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(30);

/// Runs the server against `client` until `shutdown` is cancelled. `announce` is called with
/// the API's address once it listens.
///
/// # Errors
/// Invalid flags, a port that cannot be bound, a task that stopped on its own, or a shutdown
/// that did not finish within the grace period.
pub async fn serve(
    args: ServeArgs,
    client: kube::Client,
    shutdown: CancellationToken,
    announce: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let cluster = &args.cluster;
    let informer_config = InformerConfig::from_flags(
        &cluster.kinds,
        &cluster.exclude_kinds,
        &cluster.namespaces,
        cluster.label_selector.as_deref(),
        cluster.page_size,
        cluster.streaming_lists,
    )
    .context("invalid informer flags")?;
    let grace = Duration::from_secs(args.server.shutdown_grace);
    let registry = Registry::new();
    let graph = SharedGraph::new();
    let sync = SyncStatus::new();

    let (persistence, origin) = if args.persist.enable_persistence {
        let (p, origin) = persistence::start(&args.persist, &registry, &graph, grace).await?;
        (Some(p), origin)
    } else {
        (None, Origin::Fresh)
    };
    let readiness = Arc::new(AppReadiness::new(
        origin,
        sync.clone(),
        persistence.as_ref().map(|p| p.status.clone()),
    ));
    readiness.set_hydrated();

    let feed = ChangeFeed::new(args.server.watch_history.max(1), 1024);
    let heartbeat = Heartbeat::new(HEARTBEAT_MAX_AGE);
    let state = AppState::new(graph.clone(), readiness.clone(), registry.clone())
        .context("registering API metrics")?
        .with_feed(feed.clone())
        .with_heartbeat(heartbeat.clone())
        .with_limits(Limits {
            max_depth: args.server.max_depth,
            max_results: args.server.max_results,
            ..Limits::default()
        })
        .with_fragments(FragmentCache::new(args.server.response_cache_mib << 20));
    let listener = TcpListener::bind(args.server.listen)
        .await
        .with_context(|| format!("binding {}", args.server.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, persistence = args.persist.enable_persistence, "serving the API");
    announce(addr);

    let http_stop = CancellationToken::new();
    let mut http = Some(tokio::spawn(astrolabe_api::serve(
        listener,
        astrolabe_api::router(state),
        http_stop.clone(),
    )));
    let (tx, rx) = mpsc::channel(INGEST_CHANNEL);
    let informer_stop = CancellationToken::new();
    let metrics = InformerMetrics::new(&registry).context("registering informer metrics")?;
    let mut informers = Some(astrolabe_informers::spawn(
        client,
        informer_config,
        tx,
        sync,
        metrics,
        informer_stop.clone(),
    ));
    let outputs = ApplyOutputs {
        graph,
        feed: feed.clone(),
        persist: persistence.as_ref().map(|p| p.sender.clone()),
        heartbeat,
        metrics: ApplyMetrics::register(&registry).context("registering apply metrics")?,
    };
    let mut apply = Some(tokio::spawn(apply::run(rx, outputs)));

    // Run until asked to stop, or until a task ends on its own.
    let failure = tokio::select! {
        () = shutdown.cancelled() => None,
        r = informers.as_mut().expect("spawned above") => { informers = None; Some(format!("the informers stopped ({})", join_text(r))) }
        r = apply.as_mut().expect("spawned above") => { apply = None; Some(format!("the apply loop stopped ({})", join_text(r))) }
        r = http.as_mut().expect("spawned above") => { http = None; Some(format!("the HTTP server stopped ({})", join_text(r))) }
    };
    if let Some(why) = &failure {
        tracing::error!("{why}; shutting down");
    } else {
        tracing::info!("shutting down: stopping informers, draining, flushing, final snapshot");
    }

    // Stop intake; dropping the informers' sender ends the apply loop after it drains; then
    // persistence flushes and takes the final snapshot. All of it bounded by the grace period.
    let graceful = tokio::time::timeout(grace, async {
        informer_stop.cancel();
        if let Some(h) = informers.take() {
            let _ = h.await;
        }
        if let Some(h) = apply.take() {
            match h.await {
                Ok(n) => tracing::info!(changes = n, "apply loop drained"),
                Err(e) => tracing::error!(error = %e, "apply loop failed"),
            }
        }
        let persisted = match persistence {
            Some(p) => p.shutdown().await,
            None => Ok(()),
        };
        feed.close();
        http_stop.cancel();
        if let Some(h) = http.take() {
            let _ = h.await;
        }
        persisted
    })
    .await;
    match (graceful, failure) {
        (Err(_), _) => bail!("shutdown did not finish within {grace:?}"),
        (Ok(Err(e)), _) => Err(e.context("persisting on shutdown")),
        (Ok(Ok(())), Some(why)) => bail!(why),
        (Ok(Ok(())), None) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

fn join_text<T: std::fmt::Debug>(r: Result<T, tokio::task::JoinError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => e.to_string(),
    }
}
