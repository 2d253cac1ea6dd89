//! Command-line flags and environment variables (clap derive; every flag has an `env`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use astrolabe_server::config::{
    AuthConfig, AuthMode, ClusterConfig, Config, DEFAULT_HISTORY_CACHE_MIB,
    DEFAULT_HISTORY_MAX_CHANGES, DEFAULT_LIST_INTERVAL, DEFAULT_MAX_WATCHES,
    DEFAULT_REDISCOVER_INTERVAL, DEFAULT_SNAPSHOT_EVERY_CHANGES, DemoConfig, Discover,
    HistoryConfig, PersistConfig, RedisTarget, RedisTls, ReplicaConfig, ServerConfig, SimConfig,
};
use astrolabe_server::rules::RulesConfig;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Astrolabe: a Kubernetes state server. Watches a cluster, keeps every resource and the
/// relationships between them in an in-memory graph, serves graph queries over HTTP, and
/// (optionally) persists the graph as an event log in Redis Streams.
#[derive(Parser, Debug)]
#[command(name = "astrolabe", version, about, long_about = None)]
pub struct Cli {
    /// What to run (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch a real cluster (in-cluster config or a kubeconfig) and serve the API.
    Serve(ServeArgs),
    /// Run the built-in Kubernetes API emulator with a generated cluster and churn, and the
    /// server against it, in one process. No cluster needed.
    Demo(DemoArgs),
    /// Run the Kubernetes API emulator alone (for kubectl, or `serve --kubeconfig`).
    Sim(SimArgs),
    /// Back up or restore a cluster's persisted state (Redis) without Redis tooling.
    Snapshot(SnapshotArgs),
    /// Check manifests offline: apply them to an in-process emulator, let its controllers
    /// settle, and report dangling references, selectors that select nothing, backends without
    /// Pods and unused ConfigMaps and Secrets. Exit 0 clean, 1 findings at or above
    /// --fail-on, 2 bad input.
    Check(CheckArgs),
}

/// `astrolabe check`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Manifests: files, directories (read recursively: *.yaml, *.yml, *.json) or `-` for
    /// standard input (`helm template ... | astrolabe check -`).
    #[arg(required = true, value_name = "FILE|DIR|-")]
    pub inputs: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json", "sarif"])]
    pub output: String,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, default_value = "warning", value_parser = ["error", "warning", "info"])]
    pub fail_on: String,
    /// What the cluster is assumed to have: `standard` (the default namespaces, the
    /// cluster-admin, admin, edit and view ClusterRoles, a default StorageClass `standard`, one
    /// Node) or `empty` (the namespace `default` only).
    #[arg(long, default_value = "standard", value_parser = ["standard", "empty"])]
    pub profile: String,
    /// Further objects assumed present: KIND/NAME or KIND/NAMESPACE/NAME (repeat or
    /// comma-separate), e.g. `--assume secret/shop/registry,ingressclass/nginx`.
    #[arg(long, value_delimiter = ',')]
    pub assume: Vec<String>,
    /// A relationship rule file, for the edges of custom resources (as `serve` reads it).
    #[arg(long)]
    pub relation_rules: Option<PathBuf>,
    /// Keep the built-in rule pack in force; `--builtin-rules=false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub builtin_rules: bool,
}

/// Where and how to reach the cluster, what to watch.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Path to a kubeconfig (default: in-cluster config inside a pod, else ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, env = "KUBE_CONTEXT")]
    pub context: Option<String>,
    /// Namespaces to watch (repeat or comma-separate; default: all). Cluster-scoped kinds are
    /// always watched cluster-wide.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Server-side label selector applied to every watched kind.
    #[arg(long, env = "LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Kinds to watch (comma-separated patterns: `Kind`, `Kind.group`, `plural.group`, globs
    /// such as `*.cert-manager.io` or `cert*`; default: every kind). A plain name must be a
    /// kind the cluster serves at start.
    #[arg(long, env = "KINDS", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Kinds not to watch (comma-separated patterns). Given, it replaces the default list
    /// (Event, Event.events.k8s.io, Lease.coordination.k8s.io, Endpoints.core,
    /// ComponentStatus.core, CustomResourceDefinition.apiextensions.k8s.io); `--exclude-kinds=`
    /// excludes nothing. A kind `--kinds` names
    /// without a glob is watched despite the default list.
    #[arg(long, env = "EXCLUDE_KINDS", value_delimiter = ',')]
    pub exclude_kinds: Option<Vec<String>>,
    /// Which kinds are candidates: `all` (the built-in kinds and every kind the API server
    /// serves, CRDs included) or `builtin` (the built-in kinds only, no discovery).
    #[arg(long, env = "DISCOVER", value_enum, default_value_t = DiscoverFlag::All)]
    pub discover: DiscoverFlag,
    /// Most kinds watched at once (built-in kinds first, then kinds with rules, then the rest);
    /// the others are listed every --list-interval.
    #[arg(long, env = "MAX_WATCHES", default_value_t = DEFAULT_MAX_WATCHES)]
    pub max_watches: usize,
    /// Seconds between two lists of a kind past --max-watches.
    #[arg(long, env = "LIST_INTERVAL", default_value_t = DEFAULT_LIST_INTERVAL.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    pub list_interval: u64,
    /// Seconds between two discoveries of the API server's kinds (aggregated APIs; CRDs are
    /// followed as they change).
    #[arg(long, env = "REDISCOVER_INTERVAL",
        default_value_t = DEFAULT_REDISCOVER_INTERVAL.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    pub rediscover_interval: u64,
    /// List page size.
    #[arg(long, env = "LIST_PAGE_SIZE", default_value_t = 500)]
    pub page_size: u32,
    /// Use streaming lists (WatchList, `sendInitialEvents`) instead of paginated lists.
    #[arg(long, env = "STREAMING_LISTS")]
    pub streaming_lists: bool,
    /// A relation rule file (YAML) declaring references for any kind; reloaded when it changes
    /// (a bad edit is refused and the rules in force stay). Format: `pkg/rules/README.md`.
    #[arg(long, env = "RELATION_RULES")]
    pub relation_rules: Option<PathBuf>,
    /// Keep the built-in rule pack (cert-manager, Gateway API, Prometheus Operator, Argo CD,
    /// KEDA, External Secrets, Istio) in force; `--builtin-rules=false` turns it off.
    #[arg(
        long,
        env = "BUILTIN_RULES",
        action = clap::ArgAction::Set,
        default_value_t = true,
        default_missing_value = "true",
        num_args = 0..=1,
        require_equals = true
    )]
    pub builtin_rules: bool,
}

/// `--discover`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiscoverFlag {
    /// The built-in kinds and every kind the API server serves.
    #[default]
    All,
    /// The built-in kinds only.
    Builtin,
}

/// Persistence flags (names compatible with the Go server's environment).
#[derive(Args, Debug, Clone, Default)]
pub struct PersistArgs {
    /// Persist the graph to Redis (event log + snapshots) and recover it at start.
    #[arg(long, env = "ENABLE_PERSISTENCE")]
    pub enable_persistence: bool,
    /// Redis URL (`redis://` or `rediss://`, optional `:password@` and `/db`). Takes precedence
    /// over --redis-addr.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis host:port, used when --redis-url is not given.
    #[arg(long, env = "REDIS_ADDR", default_value = "127.0.0.1:6379")]
    pub redis_addr: String,
    /// Redis password (AUTH), when not in the URL.
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Redis database number, when not in the URL.
    #[arg(long, env = "REDIS_DB")]
    pub redis_db: Option<u32>,
    /// PEM bundle of the CA certificates a `rediss://` server's certificate must chain to,
    /// instead of the public roots (a private CA).
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with a `rediss://` server.
    #[arg(long, env = "REDIS_CLIENT_CERT", requires = "redis_client_key")]
    pub redis_client_cert: Option<PathBuf>,
    /// PEM private key of --redis-client-cert.
    #[arg(long, env = "REDIS_CLIENT_KEY", requires = "redis_client_cert")]
    pub redis_client_key: Option<PathBuf>,
    /// Accept any `rediss://` server certificate (no CA or hostname check). For tests only:
    /// logged as a warning.
    #[arg(long, env = "REDIS_TLS_INSECURE")]
    pub redis_tls_insecure: bool,
    /// Redis Sentinel: the sentinels' host:port (repeat or comma-separate). The master is the
    /// one they name --redis-sentinel-master, followed across failovers; --redis-url or
    /// --redis-addr then only give the scheme, password, database and TLS.
    #[arg(long, env = "REDIS_SENTINELS", value_delimiter = ',')]
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", default_value = "mymaster")]
    pub redis_sentinel_master: String,
    /// The sentinels' own password, when they ask for one.
    #[arg(long, env = "REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_password: Option<String>,
    /// Redis Cluster: host:port of some of its nodes (repeat or comma-separate). Every key of
    /// one --cluster-name is in one slot, on the master holding it; --redis-url or --redis-addr
    /// then only give the scheme, password and TLS (database 0 only). Excludes
    /// --redis-sentinels.
    #[arg(long, env = "REDIS_CLUSTER_NODES", value_delimiter = ',')]
    pub redis_cluster_nodes: Vec<String>,
    /// Name of this cluster: the Redis key prefix (several clusters can share one Redis).
    #[arg(long, env = "CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,
    /// Seconds between periodic snapshots.
    #[arg(long, env = "SNAPSHOT_INTERVAL", default_value_t = 300)]
    pub snapshot_interval: u64,
    /// Take a snapshot after this many changes since the last one.
    #[arg(
        long,
        env = "SNAPSHOT_EVERY_CHANGES",
        default_value_t = DEFAULT_SNAPSHOT_EVERY_CHANGES
    )]
    pub snapshot_every_changes: u64,
    /// Changes kept in the stream behind the snapshot when trimming (history window).
    #[arg(long, env = "STREAM_RETENTION", default_value_t = 10_000)]
    pub stream_retention: u64,
    /// Largest number of changes appended in one Redis round trip.
    #[arg(long, env = "WRITER_BATCH_SIZE", default_value_t = 1024)]
    pub batch_size: usize,
    /// Milliseconds the writer waits for more changes before appending a partial batch.
    #[arg(long, env = "WRITER_BATCH_LINGER_MS", default_value_t = 5)]
    pub batch_linger_ms: u64,
    /// Changes buffered while Redis is slow or down; past this the log is marked diverged and a
    /// full snapshot is written when Redis answers.
    #[arg(long, env = "WRITER_BUFFER", default_value_t = 100_000)]
    pub writer_buffer: usize,
    /// How far back history reaches (`at=`, diff, timelines): a duration such as 30m, 1h, 1d.
    /// Kept in Redis with persistence, in memory without.
    #[arg(long, env = "HISTORY_RETENTION", default_value = "1h", value_parser = duration)]
    pub history_retention: Duration,
    /// How many changes back history reaches; 0 keeps no history.
    #[arg(long, env = "HISTORY_MAX_CHANGES", default_value_t = DEFAULT_HISTORY_MAX_CHANGES)]
    pub history_max_changes: u64,
    /// Memory for materialised past graphs (repeated `at=` queries), in MiB.
    #[arg(long, env = "HISTORY_CACHE_MIB", default_value_t = DEFAULT_HISTORY_CACHE_MIB)]
    pub history_cache_mib: usize,
}

/// A duration flag (`90s`, `15m`, `1h`, `1d`, `1h30m`).
fn duration(text: &str) -> Result<Duration, String> {
    let ms = astrolabe_server::config::parse_duration_ms(text).map_err(|e| e.to_string())?;
    Ok(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

impl From<PersistArgs> for PersistConfig {
    fn from(args: PersistArgs) -> Self {
        PersistConfig {
            enabled: args.enable_persistence,
            redis: RedisTarget {
                url: args.redis_url,
                addr: args.redis_addr,
                password: args.redis_password,
                db: args.redis_db,
                tls: RedisTls {
                    ca_file: args.redis_ca_file,
                    client_cert: args.redis_client_cert,
                    client_key: args.redis_client_key,
                    insecure: args.redis_tls_insecure,
                },
                sentinels: args.redis_sentinels,
                sentinel_master: args.redis_sentinel_master,
                sentinel_password: args.redis_sentinel_password,
                cluster_nodes: args.redis_cluster_nodes,
            },
            cluster_name: args.cluster_name,
            snapshot_interval: Duration::from_secs(args.snapshot_interval),
            snapshot_every_changes: args.snapshot_every_changes,
            stream_retention: args.stream_retention,
            batch_size: args.batch_size,
            batch_linger: Duration::from_millis(args.batch_linger_ms),
            writer_buffer: args.writer_buffer,
            history: HistoryConfig {
                retention: args.history_retention,
                max_changes: args.history_max_changes,
                cache_mib: args.history_cache_mib,
            },
        }
    }
}

/// HTTP and process flags.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Seconds allowed for a graceful shutdown (drain, flush, final snapshot).
    #[arg(long, env = "SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,
    /// Largest traversal depth a request may ask for.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 10)]
    pub max_depth: u32,
    /// Largest number of nodes a traversal returns.
    #[arg(long, env = "MAX_RESULTS", default_value_t = 10_000)]
    pub max_results: usize,
    /// Graph change events kept for SSE clients that reconnect with Last-Event-ID.
    #[arg(long, env = "WATCH_HISTORY", default_value_t = 10_000)]
    pub watch_history: usize,
    /// MiB of rendered resource JSON kept for reuse by list and traversal answers (0 disables).
    #[arg(long, env = "RESPONSE_CACHE_MIB", default_value_t = 64)]
    pub response_cache_mib: usize,
    /// Seconds a client has to send a request's head (from when the connection waits for it);
    /// slower connections are closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub http_header_read_timeout: u64,
    /// Seconds an HTTP connection may stay open with no request in progress.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub http_idle_timeout: u64,
    /// HTTP connections open at once; further clients wait to be accepted.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub http_max_connections: usize,
    /// Watch (SSE) streams open at once; more are answered with 503.
    #[arg(long, env = "WATCH_MAX_STREAMS", default_value_t = 256)]
    pub watch_max_streams: usize,
    /// Events a watch stream may have not yet sent (its client not reading) when more are
    /// published before it is closed.
    #[arg(long, env = "WATCH_MAX_PENDING", default_value_t = 10_000)]
    pub watch_max_pending: usize,
    /// Origins browsers may call the API from (repeat or comma-separate; `*` for any; default:
    /// none, no CORS headers).
    #[arg(
        long = "cors-allow-origin",
        env = "CORS_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,
    /// Serve the graph explorer at `/ui/` (`/` redirects there); `--ui=false` turns it off.
    #[arg(
        long,
        env = "UI",
        action = clap::ArgAction::Set,
        default_value_t = true,
        default_missing_value = "true",
        num_args = 0..=1,
        require_equals = true
    )]
    pub ui: bool,
    /// Authentication and authorization of API requests.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// `--auth`: how API requests are authenticated.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthFlag {
    /// Every request is served.
    #[default]
    None,
    /// Bearer tokens checked by the Kubernetes API (TokenReview), access by SubjectAccessReview.
    Kubernetes,
    /// Bearer tokens listed in --auth-token-file; each may read everything.
    TokenFile,
}

/// Authentication flags (see the README's "Authentication").
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// How API requests are authenticated. /healthz, /readyz and /health are always open.
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthFlag::None)]
    pub auth: AuthFlag,
    /// The token file of --auth=token-file: lines `token,user[,uid[,"groups"]]`
    /// (kube-apiserver's static token format), read once at start.
    #[arg(long, env = "AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// With --auth=kubernetes, the virtual resource `resource.group` on which a request's verb
    /// (`get`) must be allowed by a SubjectAccessReview.
    #[arg(long, env = "AUTH_RESOURCE", default_value = "graph.astrolabe.io")]
    pub auth_resource: String,
    /// Seconds an allowed decision is reused (--auth=kubernetes).
    #[arg(long, env = "AUTH_CACHE_ALLOWED_TTL", default_value_t = 60)]
    pub auth_cache_allowed_ttl: u64,
    /// Seconds a refused decision (invalid token, access denied) is reused (--auth=kubernetes).
    #[arg(long, env = "AUTH_CACHE_DENIED_TTL", default_value_t = 10)]
    pub auth_cache_denied_ttl: u64,
    /// Largest number of cached decisions (--auth=kubernetes).
    #[arg(long, env = "AUTH_CACHE_ENTRIES", default_value_t = 10_000)]
    pub auth_cache_entries: u64,
    /// Serve /metrics without a token when authentication is on.
    #[arg(long, env = "METRICS_OPEN")]
    pub metrics_open: bool,
}

impl Default for AuthArgs {
    fn default() -> Self {
        AuthArgs {
            auth: AuthFlag::None,
            auth_token_file: None,
            auth_resource: "graph.astrolabe.io".to_owned(),
            auth_cache_allowed_ttl: 60,
            auth_cache_denied_ttl: 10,
            auth_cache_entries: 10_000,
            metrics_open: false,
        }
    }
}

impl From<AuthArgs> for AuthConfig {
    fn from(args: AuthArgs) -> Self {
        let (resource, group) = args
            .auth_resource
            .split_once('.')
            .unwrap_or((args.auth_resource.as_str(), ""));
        AuthConfig {
            mode: match args.auth {
                AuthFlag::None => AuthMode::None,
                AuthFlag::Kubernetes => AuthMode::Kubernetes,
                AuthFlag::TokenFile => AuthMode::TokenFile,
            },
            token_file: args.auth_token_file,
            resource_group: group.to_owned(),
            resource: resource.to_owned(),
            allowed_ttl: Duration::from_secs(args.auth_cache_allowed_ttl),
            denied_ttl: Duration::from_secs(args.auth_cache_denied_ttl),
            cache_entries: args.auth_cache_entries,
            metrics_open: args.metrics_open,
        }
    }
}

impl Default for ServerArgs {
    fn default() -> Self {
        ServerArgs {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            shutdown_grace: 20,
            max_depth: 10,
            max_results: 10_000,
            watch_history: 10_000,
            response_cache_mib: 64,
            http_header_read_timeout: 10,
            http_idle_timeout: 60,
            http_max_connections: 1024,
            watch_max_streams: 256,
            watch_max_pending: 10_000,
            cors_allow_origins: Vec::new(),
            ui: true,
            auth: AuthArgs::default(),
        }
    }
}

impl Default for ClusterArgs {
    fn default() -> Self {
        let defaults = ClusterConfig::default();
        ClusterArgs {
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            label_selector: None,
            kinds: Vec::new(),
            exclude_kinds: None,
            discover: DiscoverFlag::All,
            max_watches: DEFAULT_MAX_WATCHES,
            list_interval: DEFAULT_LIST_INTERVAL.as_secs(),
            rediscover_interval: DEFAULT_REDISCOVER_INTERVAL.as_secs(),
            page_size: defaults.page_size,
            streaming_lists: false,
            relation_rules: None,
            builtin_rules: defaults.rules.builtin,
        }
    }
}

impl From<ClusterArgs> for ClusterConfig {
    fn from(args: ClusterArgs) -> Self {
        ClusterConfig {
            kubeconfig: args.kubeconfig,
            context: args.context,
            namespaces: args.namespaces,
            label_selector: args.label_selector,
            kinds: args.kinds,
            exclude_kinds: args.exclude_kinds,
            discover: match args.discover {
                DiscoverFlag::All => Discover::All,
                DiscoverFlag::Builtin => Discover::Builtin,
            },
            max_watches: args.max_watches,
            list_interval: Duration::from_secs(args.list_interval),
            rediscover_interval: Duration::from_secs(args.rediscover_interval),
            page_size: args.page_size,
            streaming_lists: args.streaming_lists,
            rules: RulesConfig {
                file: args.relation_rules,
                builtin: args.builtin_rules,
            },
        }
    }
}

impl From<ServerArgs> for ServerConfig {
    fn from(args: ServerArgs) -> Self {
        ServerConfig {
            listen: args.listen,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            max_depth: args.max_depth,
            max_results: args.max_results,
            watch_history: args.watch_history,
            response_cache_bytes: args.response_cache_mib << 20,
            header_read_timeout: Duration::from_secs(args.http_header_read_timeout),
            idle_timeout: Duration::from_secs(args.http_idle_timeout),
            max_connections: args.http_max_connections,
            max_watchers: args.watch_max_streams,
            watch_max_pending: args.watch_max_pending,
            cors_allow_origins: args.cors_allow_origins,
            ui: args.ui,
            auth: args.auth.into(),
        }
    }
}

/// `astrolabe serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Cluster access and scope.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Persistence.
    #[command(flatten)]
    pub persist: PersistArgs,
    /// HTTP and process.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Replicas.
    #[command(flatten)]
    pub replicas: ReplicaArgs,
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        Config {
            cluster: args.cluster.into(),
            persist: args.persist.into(),
            server: args.server.into(),
            replicas: args.replicas.into(),
        }
    }
}

/// Replica flags: leader election with a Lease, followers tailing the log.
#[derive(Args, Debug, Clone)]
pub struct ReplicaArgs {
    /// Run as one of several replicas over one Redis log: a leader elected with a
    /// coordination.k8s.io/v1 Lease watches the cluster and writes the log, the others follow
    /// it. Needs --enable-persistence.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease (in a pod: its own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the Lease (default: astrolabe-<cluster name>).
    #[arg(long, env = "LEASE_NAME", default_value = "")]
    pub lease_name: String,
    /// This replica's identity in the election (default: the host name and a random suffix).
    #[arg(long, env = "LEASE_IDENTITY", default_value = "")]
    pub lease_identity: String,
    /// How long a leader's lease lasts after its last renewal (whole seconds).
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,
    /// How long a leader keeps leading without renewing (below the lease duration).
    #[arg(long, env = "LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = duration)]
    pub lease_renew_deadline: Duration,
    /// How often the election runs (below the renew deadline).
    #[arg(long, env = "LEASE_RETRY_PERIOD", default_value = "2s", value_parser = duration)]
    pub lease_retry_period: Duration,
    /// A follower is ready while it is at most this far behind the log.
    #[arg(long, env = "MAX_FOLLOWER_LAG", default_value = "5s", value_parser = duration)]
    pub max_follower_lag: Duration,
}

impl Default for ReplicaArgs {
    fn default() -> Self {
        ReplicaConfig::default().into()
    }
}

impl From<ReplicaConfig> for ReplicaArgs {
    fn from(c: ReplicaConfig) -> Self {
        ReplicaArgs {
            leader_election: c.leader_election,
            lease_namespace: c.lease_namespace,
            lease_name: c.lease_name,
            lease_identity: c.identity,
            lease_duration: c.lease_duration,
            lease_renew_deadline: c.renew_deadline,
            lease_retry_period: c.retry_period,
            max_follower_lag: c.max_follower_lag,
        }
    }
}

impl From<ReplicaArgs> for ReplicaConfig {
    fn from(a: ReplicaArgs) -> Self {
        ReplicaConfig {
            leader_election: a.leader_election,
            lease_namespace: a.lease_namespace,
            lease_name: a.lease_name,
            identity: a.lease_identity,
            lease_duration: a.lease_duration,
            renew_deadline: a.lease_renew_deadline,
            retry_period: a.lease_retry_period,
            max_follower_lag: a.max_follower_lag,
        }
    }
}

/// `astrolabe demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Approximate number of objects in the generated cluster.
    #[arg(long, env = "DEMO_SIZE", default_value_t = 5_000)]
    pub size: usize,
    /// Seed of the generated cluster and its churn.
    #[arg(long, env = "DEMO_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Churn changes per second (rolling updates, scaling, config changes); 0 for none.
    #[arg(long, env = "DEMO_CHURN_RATE", default_value_t = 5.0)]
    pub churn_rate: f64,
    /// Address the emulator listens on (kubectl can use it too).
    #[arg(long, env = "DEMO_SIM_LISTEN", default_value = "127.0.0.1:0")]
    pub sim_listen: SocketAddr,
    /// What the generated cluster holds besides built-in kinds.
    #[command(flatten)]
    pub generated: GeneratedArgs,
    /// Run this many replicas of the server, electing a leader with a Lease in the emulator;
    /// replica i listens on --listen's port + i. More than one needs --enable-persistence (the
    /// replicas share the Redis log).
    #[arg(long, env = "DEMO_REPLICAS", default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Server flags (persistence, HTTP); cluster flags other than scope are ignored.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl From<DemoArgs> for DemoConfig {
    fn from(args: DemoArgs) -> Self {
        DemoConfig {
            size: args.size,
            seed: args.seed,
            churn_rate: args.churn_rate,
            sim_listen: args.sim_listen,
            custom_resources: args.generated.custom_resources,
            replicas: usize::from(args.replicas),
            serve: args.serve.into(),
        }
    }
}

/// The generated cluster's options, shared by `demo` and `sim`.
#[derive(Args, Debug, Clone)]
pub struct GeneratedArgs {
    /// Add custom resources (cert-manager, Gateway API, Prometheus Operator) and their CRDs to
    /// the generated cluster; `--custom-resources=false` generates built-in kinds only.
    #[arg(
        long,
        env = "CUSTOM_RESOURCES",
        action = clap::ArgAction::Set,
        default_value_t = true,
        default_missing_value = "true",
        num_args = 0..=1,
        require_equals = true
    )]
    pub custom_resources: bool,
}

/// `astrolabe sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Generate a cluster of about this many objects (0: start empty).
    #[arg(long, env = "SIM_GENERATE", default_value_t = 0)]
    pub generate: usize,
    /// Seed of the generated cluster and its churn.
    #[arg(long, env = "SIM_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Churn changes per second; 0 for none.
    #[arg(long, env = "SIM_CHURN_RATE", default_value_t = 0.0)]
    pub churn_rate: f64,
    /// What the generated cluster holds besides built-in kinds.
    #[command(flatten)]
    pub generated: GeneratedArgs,
    /// Run the emulator's controllers (Deployments make ReplicaSets and Pods, a scheduler and
    /// one Node, EndpointSlices, claims bound, garbage collection, namespace lifecycle);
    /// `--controllers=false` for the bare API. An empty cluster only: a generated one
    /// (`--generate`) already holds what they would make.
    #[arg(long, env = "SIM_CONTROLLERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub controllers: bool,
    /// How long a scheduled Pod stays Pending before it runs and becomes Ready, with the
    /// controllers (`0s`, `500ms`, `2s`).
    #[arg(long, env = "SIM_POD_START_DELAY", default_value = "0s", value_parser = duration)]
    pub pod_start_delay: Duration,
}

impl From<SimArgs> for SimConfig {
    fn from(args: SimArgs) -> Self {
        SimConfig {
            listen: args.listen,
            generate: args.generate,
            seed: args.seed,
            churn_rate: args.churn_rate,
            custom_resources: args.generated.custom_resources,
            controllers: args.controllers,
            pod_start_delay: args.pod_start_delay,
        }
    }
}

/// `astrolabe snapshot`.
#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// Export or import.
    #[command(subcommand)]
    pub action: SnapshotAction,
}

/// Snapshot actions.
#[derive(Subcommand, Debug, Clone)]
pub enum SnapshotAction {
    /// Write the persisted state (last snapshot + the stream after it) to FILE.
    Export(SnapshotFile),
    /// Replace the persisted state with the contents of FILE (stop the server first).
    Import(SnapshotFile),
}

/// A snapshot file and the Redis it goes to or comes from.
#[derive(Args, Debug, Clone)]
pub struct SnapshotFile {
    /// The file (`export` writes it, `import` reads it).
    pub file: PathBuf,
    /// Redis connection and cluster name.
    #[command(flatten)]
    pub persist: PersistArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(["astrolabe", "serve"].iter().chain(args)).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve expected")
        };
        args.into()
    }

    #[test]
    fn flags_parse_with_defaults() {
        let config = serve(&["--namespace", "a,b", "--kinds", "Pod"]);
        assert_eq!(config.cluster.namespaces, vec!["a", "b"]);
        assert_eq!(config.cluster.kinds, vec!["Pod"]);
        assert_eq!(config.persist.snapshot_interval, Duration::from_secs(300));
        assert_eq!(config.server.listen.port(), 8080);
        assert!(Cli::try_parse_from(["astrolabe", "serve", "--listen", "nope"]).is_err());
    }

    #[test]
    fn demo_and_sim_generate_custom_resources_unless_turned_off() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Some(Command::Demo(a)) => DemoConfig::from(a).custom_resources,
            Some(Command::Sim(a)) => SimConfig::from(a).custom_resources,
            _ => panic!("demo or sim expected"),
        };
        for cmd in ["demo", "sim"] {
            assert!(parse(&["astrolabe", cmd]), "{cmd} default");
            assert!(parse(&["astrolabe", cmd, "--custom-resources"]), "{cmd}");
            assert!(
                !parse(&["astrolabe", cmd, "--custom-resources=false"]),
                "{cmd}"
            );
        }
    }

    #[test]
    fn the_kind_flags_reach_the_library() {
        let cluster = serve(&[]).cluster;
        assert_eq!(cluster.exclude_kinds, None, "the default exclusions");
        assert_eq!(cluster.discover, Discover::All);
        let cluster = serve(&[
            "--kinds",
            "*.cert-manager.io,Pod",
            "--exclude-kinds=",
            "--discover",
            "builtin",
            "--max-watches",
            "3",
            "--list-interval",
            "7",
            "--rediscover-interval",
            "9",
        ])
        .cluster;
        assert_eq!(cluster.kinds, ["*.cert-manager.io", "Pod"]);
        assert_eq!(cluster.exclude_kinds, Some(vec![String::new()]));
        assert_eq!(cluster.discover, Discover::Builtin);
        assert_eq!(cluster.max_watches, 3);
        assert_eq!(cluster.list_interval, Duration::from_secs(7));
        assert_eq!(cluster.rediscover_interval, Duration::from_secs(9));
        assert!(Cli::try_parse_from(["astrolabe", "serve", "--list-interval", "0"]).is_err());
    }

    #[test]
    fn the_redis_cluster_nodes_reach_the_library() {
        assert!(serve(&[]).persist.redis.cluster_nodes.is_empty());
        let config = serve(&["--redis-cluster-nodes", "10.0.0.1:7000,10.0.0.2:7001"]);
        assert_eq!(
            config.persist.redis.cluster_nodes,
            ["10.0.0.1:7000", "10.0.0.2:7001"]
        );
    }

    #[test]
    fn the_flags_defaults_are_the_librarys() {
        assert_eq!(serve(&[]), Config::default());
    }

    #[test]
    fn the_http_flags_reach_the_library() {
        let config = serve(&[
            "--cors-allow-origin",
            "https://a.example,https://b.example",
            "--cors-allow-origin",
            "http://127.0.0.1:3000",
            "--http-header-read-timeout",
            "3",
            "--http-max-connections",
            "7",
            "--http-idle-timeout",
            "9",
            "--watch-max-streams",
            "5",
            "--watch-max-pending",
            "11",
        ]);
        let server = &config.server;
        assert_eq!(
            server.cors_allow_origins,
            [
                "https://a.example",
                "https://b.example",
                "http://127.0.0.1:3000"
            ]
        );
        assert_eq!(server.header_read_timeout, Duration::from_secs(3));
        assert_eq!(server.max_connections, 7);
        assert_eq!(server.idle_timeout, Duration::from_secs(9));
        assert_eq!(server.max_watchers, 5);
        assert_eq!(server.watch_max_pending, 11);
        assert!(server.ui, "the explorer is on by default");
        assert!(!serve(&["--ui=false"]).server.ui);
        assert!(serve(&["--ui"]).server.ui);
        for zero in ["--http-header-read-timeout", "--http-idle-timeout"] {
            let parsed = Cli::try_parse_from(["astrolabe", "serve", zero, "0"]);
            assert!(
                parsed.is_err(),
                "{zero} 0 would close every connection at once"
            );
        }
    }

    #[test]
    fn the_auth_flags_reach_the_library() {
        let auth = serve(&[]).server.auth;
        assert_eq!(auth.mode, AuthMode::None);
        assert_eq!(
            (auth.resource.as_str(), auth.resource_group.as_str()),
            ("graph", "astrolabe.io")
        );
        let auth = serve(&[
            "--auth",
            "kubernetes",
            "--auth-resource",
            "pods",
            "--auth-cache-denied-ttl",
            "3",
            "--metrics-open",
        ])
        .server
        .auth;
        assert_eq!(auth.mode, AuthMode::Kubernetes);
        assert_eq!(
            (auth.resource.as_str(), auth.resource_group.as_str()),
            ("pods", "")
        );
        assert_eq!(auth.denied_ttl, Duration::from_secs(3));
        assert!(auth.metrics_open);
        let auth = serve(&["--auth=token-file", "--auth-token-file", "/t.csv"])
            .server
            .auth;
        assert_eq!(auth.mode, AuthMode::TokenFile);
        assert_eq!(auth.token_file, Some(PathBuf::from("/t.csv")));
    }

    #[test]
    fn the_redis_flags_reach_the_library_as_given() {
        let password = "p@ss: /%";
        let config = serve(&[
            "--redis-addr",
            "r:6379",
            "--redis-password",
            password,
            "--redis-db",
            "2",
        ]);
        let redis = &config.persist.redis;
        assert_eq!(
            (redis.url.as_deref(), redis.addr.as_str(), redis.db),
            (None, "r:6379", Some(2))
        );
        let info = redis.connection_info().unwrap();
        assert_eq!(info.redis_settings().password(), Some(password));
        assert_eq!(info.redis_settings().db(), 2);
        let config = serve(&["--redis-url", "rediss://h:1/3"]);
        assert_eq!(config.persist.redis.url.as_deref(), Some("rediss://h:1/3"));
    }

    #[test]
    fn the_redis_tls_flags_reach_the_library() {
        let config = serve(&[
            "--redis-ca-file",
            "/ca.pem",
            "--redis-client-cert",
            "/c.pem",
            "--redis-client-key",
            "/k.pem",
            "--redis-tls-insecure",
        ]);
        let expected = RedisTls {
            ca_file: Some("/ca.pem".into()),
            client_cert: Some("/c.pem".into()),
            client_key: Some("/k.pem".into()),
            insecure: true,
        };
        assert_eq!(config.persist.redis.tls, expected);
        // A client certificate without its key (or the reverse) is a usage error.
        let half = ["astrolabe", "serve", "--redis-client-cert", "/c.pem"];
        assert!(Cli::try_parse_from(half).is_err());
    }
}
