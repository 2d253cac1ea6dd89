//! `serve`: wires recovery, informers, the apply loop, persistence and the HTTP API, and runs
//! them until shutdown. If any long-running task ends on its own, everything shuts down and
//! [`run`] returns an error (so the process exits non-zero and Kubernetes restarts it).
//!
//! With `--leader-election` the process is a replica (`crate::replica`): it serves the API
//! while it follows the log, and starts persistence and the informers only once it leads; a
//! leader that is deposed stops with [`ServerError::Deposed`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::fragments::FragmentCache;
use astrolabe_api::{AppState, ChangeFeed, Cors, Limits, ServeOptions};
use astrolabe_graph::SharedGraph;
use astrolabe_informers::{InformerConfig, SyncStatus};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::apply::ApplyOutputs;
use crate::config::Config;
use crate::durable_feed::Publisher;
use crate::ingest::{Ingest, IngestError};
use crate::persistence::{self, PersistenceError};
use crate::readiness::{AppReadiness, FollowerReadiness, ReadinessSwitch, graph_complete};
use crate::status::Origin;

/// What can stop the server with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The cluster's client could not be built (no kubeconfig, bad context).
    #[error("building the kubernetes client failed")]
    KubeClient(#[source] astrolabe_informers::Error),
    /// The informer settings are invalid (an unknown kind, a bad selector).
    #[error("invalid informer settings")]
    InformerConfig(#[source] astrolabe_informers::Error),
    /// Metrics of one part could not be registered.
    #[error("registering {part} metrics failed")]
    RegisterMetrics {
        /// Which part's metrics.
        part: &'static str,
        /// The registry's error.
        #[source]
        source: prometheus::Error,
    },
    /// The ingest pipeline could not start.
    #[error("starting the ingest pipeline failed")]
    Ingest(#[source] IngestError),
    /// The API's address could not be bound.
    #[error("binding {addr} failed")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Authentication could not be set up (a bad token file).
    #[error("invalid authentication settings")]
    Auth(#[source] crate::auth::AuthError),
    /// A `--cors-allow-origin` value is not an origin.
    #[error("invalid CORS settings")]
    Cors(#[source] astrolabe_api::cors::InvalidOrigin),
    /// The relation rules could not be loaded (the file, line, rule and reason).
    #[error(transparent)]
    Rules(crate::rules::RulesLoadError),
    /// Persistence could not start.
    #[error("starting persistence failed")]
    PersistenceStart(#[source] PersistenceError),
    /// A long-running task ended on its own.
    #[error("{task} stopped ({detail})")]
    TaskStopped {
        /// Which task.
        task: &'static str,
        /// How it ended.
        detail: String,
    },
    /// The replica settings are invalid, or following could not start.
    #[error("starting as a replica failed")]
    Replica(#[source] crate::replica::ReplicaError),
    /// This replica led and no longer does: it lost the Lease, or the log refused its write
    /// because another replica claimed it. The process exits so that it restarts as a
    /// follower.
    #[error("no longer the leader: {0}")]
    Deposed(&'static str),
    /// The graceful shutdown did not finish within the grace period.
    #[error("shutdown did not finish within {0:?}")]
    ShutdownTimeout(Duration),
    /// The final flush or snapshot failed.
    #[error("persisting on shutdown failed")]
    PersistenceShutdown(#[source] PersistenceError),
}

/// Runs the server against the cluster `config.cluster` names, until `shutdown` is cancelled.
///
/// # Errors
/// As [`serve`], and when the cluster's client cannot be built.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServerError> {
    let client = astrolabe_informers::client(
        config.cluster.kubeconfig.clone(),
        config.cluster.context.clone(),
    )
    .await
    .map_err(ServerError::KubeClient)?;
    serve(config, client, shutdown, |_| {}).await
}

/// Runs the server against `client` until `shutdown` is cancelled. `announce` is called with
/// the API's address once it listens.
///
/// # Errors
/// Invalid settings, a port that cannot be bound, a task that stopped on its own, or a shutdown
/// that did not finish within the grace period.
pub async fn serve(
    config: Config,
    client: kube::Client,
    shutdown: CancellationToken,
    announce: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let cluster = &config.cluster;
    let mut informer_config = InformerConfig::from_flags(
        &cluster.kinds,
        cluster.exclude_kinds.as_deref(),
        cluster.discover,
        &cluster.namespaces,
        cluster.label_selector.as_deref(),
        cluster.page_size,
        cluster.streaming_lists,
    )
    .map_err(ServerError::InformerConfig)?;
    // Before recovery, so the edge kinds rules declare read back with their directions.
    let (rules, rules_text) = crate::rules::load(&cluster.rules).map_err(ServerError::Rules)?;
    informer_config.max_watches = cluster.max_watches;
    informer_config.list_interval = cluster.list_interval;
    informer_config.rediscover_interval = cluster.rediscover_interval;
    let grace = config.server.shutdown_grace;
    let registry = Registry::new();
    let rules_metrics = crate::rules::RulesMetrics::register(&registry).map_err(|source| {
        ServerError::RegisterMetrics {
            part: "rules",
            source,
        }
    })?;
    let graph = SharedGraph::new();
    let sync = SyncStatus::new();
    let feed = ChangeFeed::with_max_pending(
        config.server.watch_history.max(1),
        1024,
        config.server.watch_max_pending,
    );

    // A replica follows the log until it leads; its persistence starts then.
    let mut replica = None;
    let (mut persistence, origin) = if config.replicas.leader_election {
        if !config.persist.enabled {
            return Err(ServerError::Replica(crate::replica::ReplicaError::Config(
                "--leader-election needs --enable-persistence: replicas share the Redis log"
                    .to_owned(),
            )));
        }
        let metrics = astrolabe_persist::PersistMetrics::register(&registry)
            .map_err(|e| ServerError::PersistenceStart(PersistenceError::RegisterMetrics(e)))?;
        let log = persistence::connect(&config.persist).map_err(ServerError::PersistenceStart)?;
        let r = crate::replica::Replica::start(
            &config.replicas,
            &config.persist.cluster_name,
            log,
            metrics,
            &graph,
            feed.clone(),
            &registry,
            client.clone(),
        )
        .map_err(ServerError::Replica)?;
        replica = Some(r);
        (None, Origin::Recovered)
    } else if config.persist.enabled {
        let listed = sync.clone();
        let complete = move || graph_complete(&listed);
        let (p, origin) =
            persistence::start(&config.persist, &registry, &graph, &sync, grace, complete)
                .await
                .map_err(ServerError::PersistenceStart)?;
        (Some(p), origin)
    } else {
        let memory = persistence::start_memory(&config.persist, &registry, &graph, &sync, grace);
        (memory.map(|(p, _)| p), Origin::Fresh)
    };
    let app_readiness = |origin: Origin, persistence: &Option<persistence::Persistence>| {
        let readiness = Arc::new(AppReadiness::new(
            origin,
            sync.clone(),
            persistence.as_ref().and_then(|p| p.status.clone()),
        ));
        readiness.set_hydrated();
        readiness
    };
    let readiness = Arc::new(ReadinessSwitch::new(match &replica {
        Some(r) => Arc::new(FollowerReadiness {
            state: r.state(),
            max_lag: config.replicas.max_follower_lag,
        }),
        None => app_readiness(origin, &persistence),
    }));

    let cors = Cors::from_origins(&config.server.cors_allow_origins).map_err(ServerError::Cors)?;
    let auth = crate::auth::api_auth(&config.server.auth, &client, &registry)
        .map_err(ServerError::Auth)?;
    let mut outputs = ApplyOutputs::new(
        graph.clone(),
        feed.clone(),
        persistence.as_ref().map(|p| p.sender.clone()),
        &registry,
    )
    .map_err(|source| ServerError::RegisterMetrics {
        part: "apply",
        source,
    })?;
    outputs.gaps = persistence.as_ref().and_then(|p| p.gaps.clone());
    // The change stream of a server writing the log carries what the log holds (event ids are
    // change sequences, see `durable_feed`).
    let durable = |p: &persistence::Persistence| {
        Publisher::durable(
            feed.clone(),
            p.acked_seq(),
            config.server.watch_history.max(1),
            shutdown.child_token(),
        )
    };
    if let Some(p) = &persistence {
        outputs.feed = durable(p);
    }
    if replica.is_none() {
        feed.start_at(graph.read().seq());
    }
    let state = AppState::new(graph.clone(), readiness.clone(), registry.clone())
        .map_err(|source| ServerError::RegisterMetrics {
            part: "API",
            source,
        })?
        .with_feed(feed.clone())
        .with_heartbeat(outputs.heartbeat.clone())
        .with_limits(Limits {
            max_depth: config.server.max_depth,
            max_results: config.server.max_results,
            max_watchers: config.server.max_watchers,
            ..Limits::default()
        })
        .with_cors(cors)
        .with_auth(auth)
        .with_ui(config.server.ui)
        .with_rules(rules.clone())
        .with_fragments(FragmentCache::new(config.server.response_cache_bytes));
    let history = match &replica {
        // The leader's history reads the same log: one for the replica's whole life.
        Some(r) if config.persist.history.enabled() => {
            let history: Arc<dyn astrolabe_api::history::HistorySource> = Arc::new(
                crate::history::LogHistory::new(
                    r.log().clone(),
                    graph.clone(),
                    config.persist.history.cache_mib,
                )
                .with_open_gaps(sync.clone()),
            );
            Some(history)
        }
        Some(_) => None,
        None => persistence.as_ref().and_then(|p| p.history.clone()),
    };
    let state = match history {
        Some(history) => state.with_history(history),
        None => state,
    };
    let bind = |source| ServerError::Bind {
        addr: config.server.listen,
        source,
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    tracing::info!(%addr, persistence = config.persist.enabled, "serving the API");
    announce(addr);

    let http_stop = CancellationToken::new();
    let mut http = Some(tokio::spawn(astrolabe_api::serve(
        listener,
        astrolabe_api::router(state),
        ServeOptions {
            header_read_timeout: config.server.header_read_timeout,
            idle_timeout: config.server.idle_timeout,
            max_connections: config.server.max_connections,
        },
        http_stop.clone(),
    )));
    // A replica leads before it watches the cluster and writes the log.
    let mut replica = match replica {
        None => None,
        Some(mut r) => {
            let Some(leading) = r.lead(&shutdown).await else {
                tracing::info!("shutting down a follower");
                r.stop().await;
                stop_serving(&feed, &http_stop, http.take()).await;
                return Ok(());
            };
            let listed = sync.clone();
            let complete = move || graph_complete(&listed);
            let (p, origin) = persistence::start_recovered(
                &config.persist,
                leading.metrics,
                leading.log,
                leading.hydrated,
                &graph,
                &sync,
                grace,
                complete,
            )
            .await
            .map_err(ServerError::PersistenceStart)?;
            outputs.persist = Some(p.sender.clone());
            outputs.gaps = p.gaps.clone();
            outputs.feed = durable(&p);
            persistence = Some(p);
            readiness.set(app_readiness(origin, &persistence));
            Some(r)
        }
    };
    let (rules_feed, _rules_feed_task) =
        crate::rules::spawn_informer_feed(&rules, shutdown.child_token());
    informer_config.rules = rules_feed;
    let ingest = Ingest::spawn(client, informer_config, sync, &registry, outputs)
        .map_err(ServerError::Ingest)?;
    let informer_stop = ingest.stop;
    let _reloader = crate::rules::spawn_reloader(
        cluster.rules.clone(),
        rules,
        rules_text,
        rules_metrics,
        informer_stop.child_token(),
    );
    let mut informers = Some(ingest.informers);
    let mut apply = Some(ingest.apply);

    // A leader that is deposed stops (and restarts as a follower).
    let writer_deposed = persistence.as_ref().map(persistence::Persistence::deposed);
    let deposed = async {
        match (&mut replica, writer_deposed) {
            (Some(r), Some(fenced)) => tokio::select! {
                () = r.deposed() => "the lease is lost",
                () = fenced.cancelled() => "the log refused a write: another replica claimed it",
            },
            _ => std::future::pending().await,
        }
    };
    // Run until asked to stop, or until a task ends on its own.
    let failure = tokio::select! {
        () = shutdown.cancelled() => None,
        why = deposed => Some(ServerError::Deposed(why)),
        r = informers.as_mut().expect("spawned above") => { informers = None; Some(stopped("the informers", r)) }
        r = apply.as_mut().expect("spawned above") => { apply = None; Some(stopped("the apply loop", r)) }
        r = http.as_mut().expect("spawned above") => { http = None; Some(stopped("the HTTP server", r)) }
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
        stop_serving(&feed, &http_stop, http.take()).await;
        if let Some(r) = replica.take() {
            r.stop().await;
        }
        persisted
    })
    .await;
    match (graceful, failure) {
        (Err(_), _) => Err(ServerError::ShutdownTimeout(grace)),
        (Ok(Err(e)), _) => Err(ServerError::PersistenceShutdown(e)),
        (Ok(Ok(())), Some(why)) => Err(why),
        (Ok(Ok(())), None) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Ends the change stream and the HTTP server, and waits for the server to stop.
async fn stop_serving<T>(
    feed: &ChangeFeed,
    http_stop: &CancellationToken,
    http: Option<tokio::task::JoinHandle<T>>,
) {
    feed.close();
    http_stop.cancel();
    if let Some(h) = http {
        let _ = h.await;
    }
}

/// [`ServerError::TaskStopped`] for `task`, which ended with `r`.
fn stopped<T: std::fmt::Debug>(
    task: &'static str,
    r: Result<T, tokio::task::JoinError>,
) -> ServerError {
    let detail = match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => e.to_string(),
    };
    ServerError::TaskStopped { task, detail }
}
