//! Replicas (`--leader-election`): several servers over one Redis log, one of them leading.
//!
//! Every replica starts as a follower: it loads the log (the last snapshot, then the stream)
//! into its graph, serves reads from it, and tails the stream with blocking reads on a
//! connection of its own, applying each change as the leader applied it (same sequence, same
//! time). Its readiness holds while it is at most `--max-follower-lag` behind the log. A gap in
//! the stream (trimmed past the follower's position, or changes the leader dropped and covered
//! with a snapshot) makes it load the log again.
//!
//! The Lease election ([`astrolabe_informers::lease`]) picks the leader. The replica that wins
//! stops following, claims the log ([`RedisLog::claim_epoch`], which fences off any older
//! writer), applies what the stream holds after its graph, and only then starts the writer,
//! the snapshotter and the informers, which relist and reconcile the graph against the
//! cluster. A leader that loses the Lease, or whose write the log refuses, exits with an error:
//! the process restarts as a follower (see
//! `docs/adr/0023-replicas-follow-the-log-and-a-deposed-leader-restarts.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use astrolabe_api::ChangeFeed;
use astrolabe_graph::{GraphEvent, SharedGraph, now_ms};
use astrolabe_informers::lease::{ElectionConfig, Elector, Role};
use astrolabe_model::codec;
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, ErrorChain, EventLog, LogEntry, PersistMetrics, RedisLog, RedisTail,
    read_state,
};
use prometheus::{Gauge, IntCounter, IntGauge, Registry};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ReplicaConfig;
use crate::decoder::DECODER;
use crate::recovery::{Hydrated, build};
use crate::status::Origin;

/// Changes read per blocking read.
const PAGE: usize = 1_024;
/// How long one blocking read waits for the next change.
const BLOCK: Duration = Duration::from_secs(1);
/// Delay before a failed read or load is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// A setting is wrong (the election's timings, persistence off).
    #[error("invalid replica settings: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("registering the follower metrics failed")]
    Metrics(#[source] prometheus::Error),
    /// The tail's connection could not be configured.
    #[error("configuring the follower's redis connection failed")]
    Tail(#[source] astrolabe_persist::PersistError),
}

/// The follower's Prometheus series.
#[derive(Clone)]
struct FollowerMetrics {
    lag_seconds: Gauge,
    lag_changes: IntGauge,
    applied: IntCounter,
    reloads: IntCounter,
    leader: IntGauge,
}

impl FollowerMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let lag_seconds = Gauge::new(
            "astrolabe_follower_lag_seconds",
            "How long ago the newest change a follower has not applied yet was applied by the leader (0: caught up)",
        )?;
        let lag_changes = IntGauge::new(
            "astrolabe_follower_lag_changes",
            "Changes in the log a follower has not applied yet",
        )?;
        let applied = IntCounter::new(
            "astrolabe_follower_applied_total",
            "Changes a follower applied from the log",
        )?;
        let reloads = IntCounter::new(
            "astrolabe_follower_reloads_total",
            "Times a follower loaded the log again (a gap in the stream, a change it could not apply)",
        )?;
        let leader = IntGauge::new(
            "astrolabe_leader",
            "1 while this replica leads (watches the cluster and writes the log), else 0",
        )?;
        registry.register(Box::new(lag_seconds.clone()))?;
        registry.register(Box::new(lag_changes.clone()))?;
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(FollowerMetrics {
            lag_seconds,
            lag_changes,
            applied,
            reloads,
            leader,
        })
    }
}

/// How far the follower is, for readiness.
#[derive(Debug, Default)]
pub struct FollowerState {
    /// The graph holds the log (a load succeeded).
    loaded: AtomicBool,
    /// Lag in milliseconds (0: caught up).
    lag_ms: AtomicI64,
    /// Changes behind.
    behind: AtomicU64,
}

impl FollowerState {
    /// Whether the graph holds the log and is at most `max_lag` behind it.
    #[must_use]
    pub fn ready(&self, max_lag: Duration) -> bool {
        self.loaded.load(Ordering::Acquire)
            && u128::try_from(self.lag_ms.load(Ordering::Acquire)).unwrap_or(0)
                <= max_lag.as_millis()
    }

    /// Whether the graph holds the log.
    #[must_use]
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// A line for readiness.
    #[must_use]
    pub fn describe(&self) -> String {
        if !self.loaded.load(Ordering::Acquire) {
            return "follower, loading the log".to_owned();
        }
        format!(
            "follower, {} changes ({:.1} s) behind the log",
            self.behind.load(Ordering::Acquire),
            self.lag_ms.load(Ordering::Acquire) as f64 / 1000.0
        )
    }
}

/// What following needs.
struct Follow {
    log: RedisLog,
    tail: RedisTail,
    graph: SharedGraph,
    feed: ChangeFeed,
    metrics: FollowerMetrics,
    persist_metrics: PersistMetrics,
    state: Arc<FollowerState>,
}

/// A replica: following, and waiting to lead.
pub struct Replica {
    follow: Arc<Follow>,
    role: watch::Receiver<Role>,
    elector: Option<JoinHandle<()>>,
    elector_stop: CancellationToken,
    /// The follower's task while it follows.
    follower: Option<Following>,
}

/// What a replica that now leads hands to persistence: the log it claimed, the metrics of it,
/// and what its graph holds of it.
pub struct Leading {
    /// The epoch it claimed the log with.
    pub epoch: u64,
    /// The log, claimed.
    pub log: RedisLog,
    /// The log's metrics.
    pub metrics: PersistMetrics,
    /// What the graph holds of the log, as recovery would describe it.
    pub hydrated: Hydrated,
}

impl Replica {
    /// Starts following `log` into `graph` (publishing its changes to `feed`) and takes part in
    /// the election through `client`.
    ///
    /// # Errors
    /// Invalid settings, metrics that cannot be registered.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &ReplicaConfig,
        cluster_name: &str,
        log: RedisLog,
        persist_metrics: PersistMetrics,
        graph: &SharedGraph,
        feed: ChangeFeed,
        registry: &Registry,
        client: kube::Client,
    ) -> Result<Replica, ReplicaError> {
        let election = election_config(config, cluster_name);
        election.validate().map_err(ReplicaError::Config)?;
        let following = follow(log, persist_metrics, graph, feed, registry)?;
        let elector_stop = CancellationToken::new();
        tracing::info!(identity = %election.identity, lease = %election.name, namespace = %election.namespace, "replica: following the log, taking part in the election");
        let (role, elector) = Elector::new(client, election).run(elector_stop.clone());
        Ok(Replica {
            follow: following.follow.clone(),
            role,
            elector: Some(elector),
            elector_stop,
            follower: Some(following),
        })
    }

    /// How far the follower is.
    #[must_use]
    pub fn state(&self) -> Arc<FollowerState> {
        self.follow.state.clone()
    }

    /// The log it follows.
    #[must_use]
    pub fn log(&self) -> &RedisLog {
        &self.follow.log
    }

    /// Stops the follower's task, if it runs.
    async fn stop_following(&mut self) {
        if let Some(following) = self.follower.take() {
            following.stop.cancel();
            let _ = following.task.await;
        }
    }

    /// Waits until this replica leads, then stops following, claims the log (fencing off any
    /// older writer) and applies what the stream holds after the graph. `None` when `shutdown`
    /// came first.
    pub async fn lead(&mut self, shutdown: &CancellationToken) -> Option<Leading> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                led = self.role.wait_for(Role::is_leader) => {
                    if led.is_err() {
                        // The election ended: only on shutdown.
                        shutdown.cancelled().await;
                        return None;
                    }
                }
            }
            self.stop_following().await;
            let epoch = loop {
                match self.follow.log.claim_epoch().await {
                    Ok(epoch) => break Some(epoch),
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "claiming the log failed; retrying");
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(RETRY) => {}
                }
                if !self.role.borrow().is_leader() {
                    break None;
                }
            };
            let Some(epoch) = epoch else {
                // Lost the lease before claiming the log: follow again.
                self.follower = Some(Following::spawn(self.follow.clone()));
                continue;
            };
            // The log is this replica's now: the owner's chores (chunks of snapshots nobody
            // committed), then apply all of it.
            match self.follow.log.sweep_orphans().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(chunks = n, "leader: swept orphan snapshot chunks"),
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "leader: sweeping orphan snapshot chunks failed")
                }
            }
            self.follow.clone().run(shutdown.clone(), true).await;
            self.follow.metrics.leader.set(1);
            self.follow.metrics.lag_seconds.set(0.0);
            self.follow.metrics.lag_changes.set(0);
            let (seq, ts_ms) = {
                let g = self.follow.graph.read();
                (g.seq(), g.ts_ms())
            };
            tracing::info!(
                epoch,
                seq,
                "replica: leading; the log is claimed and applied"
            );
            let snapshot_seq = self
                .follow
                .log
                .snapshot_meta()
                .await
                .ok()
                .flatten()
                .map_or(0, |m| m.covered_seq);
            return Some(Leading {
                epoch,
                log: self.follow.log.clone(),
                metrics: self.follow.persist_metrics.clone(),
                hydrated: Hydrated {
                    origin: if seq == 0 {
                        Origin::Fresh
                    } else {
                        Origin::Recovered
                    },
                    snapshot_seq,
                    // The graph applied every change of the log.
                    problems: false,
                    damage: None,
                    fallback: None,
                    // Nobody watched the cluster from the last change until this leader lists it.
                    last_change_ms: (seq > 0).then_some(ts_ms),
                },
            });
        }
    }

    /// Resolves when this replica, leading, no longer holds the Lease.
    pub async fn deposed(&mut self) {
        let _ = self.role.wait_for(|r| !r.is_leader()).await;
    }

    /// Stops the election (a leader releases the Lease) and the follower.
    pub async fn stop(mut self) {
        self.stop_following().await;
        self.elector_stop.cancel();
        if let Some(task) = self.elector.take() {
            let _ = task.await;
        }
        self.follow.metrics.leader.set(0);
    }
}

/// A follower started by [`follow`].
pub struct Following {
    follow: Arc<Follow>,
    /// Stops it.
    pub stop: CancellationToken,
    /// Its task.
    pub task: JoinHandle<()>,
}

impl Following {
    /// Runs `follow` until [`Following::stop`].
    fn spawn(follow: Arc<Follow>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow.clone().run(stop.clone(), false));
        Following { follow, stop, task }
    }

    /// How far it is.
    #[must_use]
    pub fn state(&self) -> Arc<FollowerState> {
        self.follow.state.clone()
    }
}

/// Follows `log` into `graph` (loading it, then applying the stream's changes as they come),
/// publishing the graph's events to `feed`, until [`Following::stop`]. The follower's metrics
/// go to `registry`.
///
/// # Errors
/// Metrics that cannot be registered, a connection that cannot be configured.
pub fn follow(
    log: RedisLog,
    persist_metrics: PersistMetrics,
    graph: &SharedGraph,
    feed: ChangeFeed,
    registry: &Registry,
) -> Result<Following, ReplicaError> {
    let metrics = FollowerMetrics::register(registry).map_err(ReplicaError::Metrics)?;
    let tail = log.tail().map_err(ReplicaError::Tail)?;
    let follow = Arc::new(Follow {
        log,
        tail,
        graph: graph.clone(),
        feed,
        metrics,
        persist_metrics,
        state: Arc::new(FollowerState::default()),
    });
    Ok(Following::spawn(follow))
}

impl Follow {
    /// Loads the log if the graph does not hold it yet, then applies the stream's changes as
    /// they come, until `stop` (or, with `until_caught_up`, until the stream holds nothing
    /// more).
    async fn run(self: Arc<Self>, stop: CancellationToken, until_caught_up: bool) {
        loop {
            if !self.state.loaded.load(Ordering::Acquire) && !self.load(&stop).await {
                return;
            }
            let after = self.graph.read().seq();
            let block = if until_caught_up {
                Duration::from_millis(1)
            } else {
                BLOCK
            };
            let read = tokio::select! {
                () = stop.cancelled() => return,
                read = self.tail.read_after(after, PAGE, block) => read,
            };
            match read {
                Ok(entries) if entries.is_empty() => {
                    self.set_lag(0, 0);
                    if until_caught_up {
                        return;
                    }
                }
                Ok(entries) => {
                    let full = entries.len() >= PAGE;
                    match self.apply(entries) {
                        Ok(last_ts) => {
                            let behind = if full { self.behind().await } else { 0 };
                            let lag = if behind > 0 { now_ms() - last_ts } else { 0 };
                            self.set_lag(lag, behind);
                        }
                        Err(why) => {
                            tracing::warn!(%why, "follower: loading the log again");
                            self.metrics.reloads.inc();
                            self.state.loaded.store(false, Ordering::Release);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "follower: reading the log failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Loads the log into the graph (the graph served until then stays), retrying until it
    /// succeeds. Returns false when stopped first. Reads only: sweeping orphan chunks or
    /// setting a damaged stream aside is the leader's (an orphan may be the snapshot it is
    /// uploading).
    async fn load(&self, stop: &CancellationToken) -> bool {
        loop {
            let read = tokio::select! {
                () = stop.cancelled() => return false,
                r = read_state(&self.log, &DECODER, DEFAULT_REPLAY_PAGE, &self.persist_metrics) => r,
            };
            let recovered = match read {
                Ok(recovered) => Some(recovered),
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "follower: loading the log failed; retrying");
                    None
                }
            };
            if let Some(mut recovered) = recovered {
                // The leader appends while this reads: the graph holds what was read, and the
                // tail continues after it (not after the stream's top when the read ended).
                recovered.last_seq = recovered.read_seq;
                let (graph, unresolved) = build(recovered);
                if unresolved > 0 {
                    tracing::warn!(
                        unresolved,
                        "follower: the log holds changes that do not apply"
                    );
                }
                tracing::info!(
                    seq = graph.seq(),
                    resources = graph.node_count(),
                    "follower: loaded the log"
                );
                let seq = graph.seq();
                self.graph.replace(graph);
                // The changes the load skipped never reach the change stream: its clients
                // resume from here or re-read.
                self.feed.jump(seq);
                self.state.loaded.store(true, Ordering::Release);
                return true;
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Applies `entries` (after the graph's sequence, oldest first) as the leader applied
    /// them; returns the time of the last. An entry that does not read is skipped and counted,
    /// as recovery skips it. An entry that does not continue the graph's sequence, or a change
    /// that does not decode or apply, is an error: the log must be loaded again.
    fn apply(&self, entries: Vec<LogEntry>) -> Result<i64, String> {
        let mut events: Vec<GraphEvent> = Vec::new();
        let mut last_ts = now_ms();
        let mut applied = 0u64;
        let outcome = {
            let mut g = self.graph.write();
            let mut outcome = Ok(());
            for entry in entries {
                let seq = entry.seq;
                if seq <= g.seq() {
                    continue;
                }
                if seq != g.seq() + 1 {
                    outcome = Err(format!(
                        "the stream continues at {seq}, the graph is at {}",
                        g.seq()
                    ));
                    break;
                }
                let logged = match &entry.defect {
                    None => codec::decode_logged(seq, &entry.payload).map_err(|e| e.to_string()),
                    Some(defect) => Err(defect.to_string()),
                };
                let logged = match logged {
                    Ok(logged) => logged,
                    Err(why) => {
                        // As recovery does: skipped and counted (loading the log again would
                        // meet it again).
                        tracing::warn!(seq, %why, "follower: a change of the log does not read; skipped");
                        self.persist_metrics.corrupt_entries.inc();
                        g.advance_seq(seq);
                        continue;
                    }
                };
                let change = match logged.resolve(|uid| g.get(uid)) {
                    Ok(change) => change,
                    Err(e) => {
                        outcome = Err(format!("change {seq} does not apply: {e}"));
                        break;
                    }
                };
                last_ts = change.ts_ms;
                if g.apply(change.op, change.ts_ms, &mut events).is_none() {
                    g.advance_seq(seq);
                }
                applied += 1;
            }
            outcome
        };
        self.metrics.applied.inc_by(applied);
        if !events.is_empty() {
            self.feed.publish(events);
        }
        outcome.map(|()| last_ts)
    }

    /// Changes the stream holds after the graph.
    async fn behind(&self) -> u64 {
        let top = self.log.last_seq().await.ok().flatten().unwrap_or(0);
        top.saturating_sub(self.graph.read().seq())
    }

    fn set_lag(&self, lag_ms: i64, behind: u64) {
        let lag_ms = lag_ms.max(0);
        self.state.lag_ms.store(lag_ms, Ordering::Release);
        self.state.behind.store(behind, Ordering::Release);
        self.metrics.lag_seconds.set(lag_ms as f64 / 1000.0);
        self.metrics
            .lag_changes
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
    }
}

/// The election's settings for `config` and the cluster name (the Lease is
/// `astrolabe-<cluster name>` unless named).
fn election_config(config: &ReplicaConfig, cluster_name: &str) -> ElectionConfig {
    let name = if config.lease_name.is_empty() {
        format!("astrolabe-{cluster_name}")
    } else {
        config.lease_name.clone()
    };
    let identity = if config.identity.is_empty() {
        // In a pod the host name is the pod's name; the suffix tells a restarted process from
        // the one before it, which may still hold the Lease.
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "astrolabe".to_owned());
        let mut suffix = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut suffix);
        format!("{host}_{:08x}", u32::from_le_bytes(suffix))
    } else {
        config.identity.clone()
    };
    ElectionConfig {
        namespace: config.lease_namespace.clone(),
        name,
        identity,
        lease_duration: config.lease_duration,
        renew_deadline: config.renew_deadline,
        retry_period: config.retry_period,
    }
}
