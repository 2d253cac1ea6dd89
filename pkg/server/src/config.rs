//! The application's input: plain data, built by the binary from flags and environment (or by a
//! test or bench directly), with the defaults `astrolabe serve` uses.

use astrolabe_persist::HistoryRetention;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use astrolabe_history::parse_duration_ms;
pub use astrolabe_informers::Discover;
pub use astrolabe_informers::config::{
    DEFAULT_LIST_INTERVAL, DEFAULT_MAX_WATCHES, DEFAULT_REDISCOVER_INTERVAL,
};
pub use astrolabe_persist::{RedisTarget, RedisTls};

pub use astrolabe_persist::snapshotter::DEFAULT_SNAPSHOT_EVERY_CHANGES;

/// Everything `serve` needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Cluster access and what to watch.
    pub cluster: ClusterConfig,
    /// Persistence to Redis.
    pub persist: PersistConfig,
    /// HTTP and process.
    pub server: ServerConfig,
    /// Several replicas over one Redis log.
    pub replicas: ReplicaConfig,
}

/// Several replicas over one Redis log: a leader elected with a Lease writes it, followers
/// tail it (see `crate::replica`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Elect a leader with a Lease; without it the process leads alone.
    pub leader_election: bool,
    /// The Lease's namespace.
    pub lease_namespace: String,
    /// The Lease's name (empty: `astrolabe-<cluster name>`).
    pub lease_name: String,
    /// This replica's identity (empty: the host name and a random suffix).
    pub identity: String,
    /// How long a leader's lease lasts after its last renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the election runs a round.
    pub retry_period: Duration,
    /// A follower is ready while it is at most this far behind the log.
    pub max_follower_lag: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            leader_election: false,
            lease_namespace: "default".to_owned(),
            lease_name: String::new(),
            identity: String::new(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            max_follower_lag: Duration::from_secs(5),
        }
    }
}

/// Where and how to reach the cluster, and what to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// A kubeconfig (none: in-cluster config inside a pod, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context.
    pub context: Option<String>,
    /// Namespaces to watch (empty: all).
    pub namespaces: Vec<String>,
    /// Server-side label selector for every watched kind.
    pub label_selector: Option<String>,
    /// Kind patterns to watch (empty: all); see `astrolabe_informers::select`.
    pub kinds: Vec<String>,
    /// Kind patterns not to watch (`None`: the default exclusions,
    /// `astrolabe_informers::select::DEFAULT_EXCLUDED`).
    pub exclude_kinds: Option<Vec<String>>,
    /// The built-in kinds only, or every kind the API server serves.
    pub discover: Discover,
    /// At most this many kinds are watched; the rest are listed every `list_interval`.
    pub max_watches: usize,
    /// Time between two lists of a kind past the watch cap.
    pub list_interval: Duration,
    /// Time between two discoveries.
    pub rediscover_interval: Duration,
    /// List page size.
    pub page_size: u32,
    /// Streaming lists (WatchList) instead of paginated lists.
    pub streaming_lists: bool,
    /// The relation rules in force.
    pub rules: crate::rules::RulesConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            label_selector: None,
            kinds: Vec::new(),
            exclude_kinds: None,
            discover: Discover::All,
            max_watches: DEFAULT_MAX_WATCHES,
            list_interval: DEFAULT_LIST_INTERVAL,
            rediscover_interval: DEFAULT_REDISCOVER_INTERVAL,
            page_size: 500,
            streaming_lists: false,
            rules: crate::rules::RulesConfig::default(),
        }
    }
}

/// Persistence settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistConfig {
    /// Persist the graph to Redis and recover it at start.
    pub enabled: bool,
    /// Where Redis is (URL, or address, password and database).
    pub redis: RedisTarget,
    /// Name of this cluster: the Redis key prefix.
    pub cluster_name: String,
    /// Time between periodic snapshots.
    pub snapshot_interval: Duration,
    /// A snapshot after this many changes since the last one.
    pub snapshot_every_changes: u64,
    /// Changes kept in the stream behind the snapshot when trimming.
    pub stream_retention: u64,
    /// Largest number of changes appended in one round trip.
    pub batch_size: usize,
    /// How long the writer waits for more changes before appending a partial batch.
    pub batch_linger: Duration,
    /// Changes buffered while Redis is slow or down.
    pub writer_buffer: usize,
    /// How much history the log keeps (in Redis, or in memory without persistence).
    pub history: HistoryConfig,
}

/// How much history the server keeps: the log's checkpoints and the changes after the oldest,
/// in Redis with persistence, in memory without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// How far back in time history reaches.
    pub retention: Duration,
    /// How many changes back history reaches; 0 keeps no history (no in-memory log, no `at=`).
    pub max_changes: u64,
    /// Memory for materialised past graphs, in MiB.
    pub cache_mib: usize,
}

impl HistoryConfig {
    /// Whether the server keeps history.
    pub fn enabled(&self) -> bool {
        self.max_changes > 0 && !self.retention.is_zero()
    }

    /// The log's retention; none (two snapshot generations, as recovery needs) when history is
    /// off.
    pub fn retention(&self) -> HistoryRetention {
        if self.enabled() {
            HistoryRetention {
                max_age: self.retention,
                max_changes: self.max_changes,
            }
        } else {
            HistoryRetention::default()
        }
    }
}

/// Default of `--history-retention`.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(3_600);
/// Default of `--history-max-changes`.
pub const DEFAULT_HISTORY_MAX_CHANGES: u64 = 500_000;
/// Default of `--history-cache-mib`.
pub const DEFAULT_HISTORY_CACHE_MIB: usize = 256;

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            retention: DEFAULT_HISTORY_RETENTION,
            max_changes: DEFAULT_HISTORY_MAX_CHANGES,
            cache_mib: DEFAULT_HISTORY_CACHE_MIB,
        }
    }
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig {
            enabled: false,
            redis: RedisTarget {
                addr: "127.0.0.1:6379".to_owned(),
                // Sentinel's own default name (used only with sentinels).
                sentinel_master: "mymaster".to_owned(),
                ..RedisTarget::default()
            },
            cluster_name: "default".to_owned(),
            snapshot_interval: Duration::from_secs(300),
            snapshot_every_changes: DEFAULT_SNAPSHOT_EVERY_CHANGES,
            stream_retention: 10_000,
            batch_size: 1024,
            batch_linger: Duration::from_millis(5),
            writer_buffer: 100_000,
            history: HistoryConfig::default(),
        }
    }
}

/// HTTP and process settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Bound on a graceful shutdown (drain, flush, final snapshot).
    pub shutdown_grace: Duration,
    /// Largest traversal depth a request may ask for.
    pub max_depth: u32,
    /// Largest number of nodes a traversal returns.
    pub max_results: usize,
    /// Graph change events kept for SSE clients that reconnect.
    pub watch_history: usize,
    /// Bytes of rendered resource JSON kept for reuse (0 disables).
    pub response_cache_bytes: usize,
    /// Time allowed from waiting for a request to having its whole head.
    pub header_read_timeout: Duration,
    /// Time an HTTP connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// HTTP connections open at once; further clients wait to be accepted.
    pub max_connections: usize,
    /// Watch (SSE) streams open at once; more are answered with 503.
    pub max_watchers: usize,
    /// Events a watch stream may have not yet sent when more are published before it is closed.
    pub watch_max_pending: usize,
    /// Origins browsers may call the API from (`*` for any; empty: no CORS headers).
    pub cors_allow_origins: Vec<String>,
    /// Serve the graph explorer at `/ui/` (and redirect `/` there).
    pub ui: bool,
    /// Who may call the API.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            shutdown_grace: Duration::from_secs(20),
            max_depth: 10,
            max_results: 10_000,
            watch_history: 10_000,
            response_cache_bytes: 64 << 20,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_watchers: 256,
            watch_max_pending: 10_000,
            cors_allow_origins: Vec::new(),
            ui: true,
            auth: AuthConfig::default(),
        }
    }
}

/// How API requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request is served.
    #[default]
    None,
    /// Bearer tokens checked by the Kubernetes API: TokenReview, then SubjectAccessReview.
    Kubernetes,
    /// Bearer tokens listed in [`AuthConfig::token_file`].
    TokenFile,
}

/// Authentication and authorization of API requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The mode.
    pub mode: AuthMode,
    /// The token file of [`AuthMode::TokenFile`] (kube-apiserver's static token format).
    pub token_file: Option<PathBuf>,
    /// API group of the virtual resource reads are checked against (`astrolabe.io`).
    pub resource_group: String,
    /// The virtual resource reads are checked against (`graph`).
    pub resource: String,
    /// How long an allowed decision is reused.
    pub allowed_ttl: Duration,
    /// How long a refused decision (invalid token, access denied) is reused.
    pub denied_ttl: Duration,
    /// Largest number of decisions kept.
    pub cache_entries: u64,
    /// Serve `/metrics` without a token.
    pub metrics_open: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            token_file: None,
            resource_group: "astrolabe.io".to_owned(),
            resource: "graph".to_owned(),
            allowed_ttl: Duration::from_secs(60),
            denied_ttl: Duration::from_secs(10),
            cache_entries: 10_000,
            metrics_open: false,
        }
    }
}

/// `demo`: the emulator with a generated cluster and churn, and the server against it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Approximate number of objects in the generated cluster.
    pub size: usize,
    /// Seed of the generated cluster and its churn.
    pub seed: u64,
    /// Churn changes per second (0: none).
    pub churn_rate: f64,
    /// Address the emulator listens on.
    pub sim_listen: SocketAddr,
    /// Add custom resources and their CRDs to the generated cluster.
    pub custom_resources: bool,
    /// Servers run against the emulator: one, or this many replicas electing a leader (they
    /// need persistence: the log they share is in Redis).
    pub replicas: usize,
    /// The server's configuration (its cluster access is the emulator's).
    pub serve: Config,
}

/// `sim`: the emulator alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Generate a cluster of about this many objects (0: start empty).
    pub generate: usize,
    /// Seed of the generated cluster and its churn.
    pub seed: u64,
    /// Churn changes per second (0: none).
    pub churn_rate: f64,
    /// Add custom resources and their CRDs to the generated cluster.
    pub custom_resources: bool,
    /// Run the emulator's controllers (an empty cluster only).
    pub controllers: bool,
    /// How long a scheduled Pod stays Pending before it runs (with the controllers).
    pub pod_start_delay: std::time::Duration,
}
