//! [`Conn`]: the log's one connection type, to a single Redis (a master) or to a Redis Cluster.
//! It implements [`ConnectionLike`] by delegation, so every command, script and pipeline of the
//! log runs unchanged on either. Every key of one log shares one hash tag (see `keys.rs`), so
//! the cluster routes each keyed command, script and pipeline to the one master holding that
//! slot; keyless commands that must reach that master (`SCAN` of the orphan sweep, `PING`) go
//! through [`Conn::query_on_node_of`].
//!
//! A cluster connection is established lazily, on the first command, and established again on
//! the next command after a failure, as [`redis::aio::ConnectionManager`] does for a single
//! Redis: the log can be created while the cluster is down.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, RedisFuture, RedisResult, TlsMode, Value};

use crate::connection::ClusterTarget;

/// Retries of one command inside the cluster client (redirections, reconnections); the
/// writer retries with its own backoff beyond these.
const CLUSTER_RETRIES: u32 = 2;
/// Shortest and longest pause between the cluster client's own retries, in milliseconds.
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (10, 500);

/// A connection of the log: cheap to clone (clones share the underlying connections).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis (a standalone server or the master Sentinel names).
    Single(ConnectionManager),
    /// A Redis Cluster, connected on first use.
    Cluster(LazyCluster),
}

impl Conn {
    /// Runs the keyless `cmd` on the master that holds `key`'s slot (on a single Redis: there).
    ///
    /// # Errors
    /// The command's error, or the cluster's when it cannot be reached.
    pub(crate) async fn query_on_node_of<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match self {
            Self::Single(conn) => cmd.query_async(conn).await,
            Self::Cluster(cluster) => {
                let mut conn = cluster.connection().await?;
                let route = Route::with_key(key, SlotAddr::Master);
                let value = conn
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(value.extract_error()?)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(cluster) => Box::pin(async move {
                let mut conn = cluster.connection().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => Box::pin(async move {
                let mut conn = cluster.connection().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            // A cluster has database 0 only.
            Self::Cluster(_) => 0,
        }
    }
}

/// A cluster client and the connection it made, once one was made.
#[derive(Clone)]
pub(crate) struct LazyCluster(Arc<LazyInner>);

struct LazyInner {
    client: ClusterClient,
    /// Set by the first command that connects; left unset by a failed attempt, so the next
    /// command tries again. Once connected, the cluster connection follows slot moves and
    /// reconnects to nodes by itself.
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

impl LazyCluster {
    /// A client for `target` whose commands wait `response` at most (including the client's
    /// own retries) and whose connects wait `connect` at most. Connects nothing yet.
    ///
    /// # Errors
    /// When the redis crate refuses the settings (TLS certificates, mixed passwords).
    pub(crate) fn new(
        target: &ClusterTarget,
        response: Duration,
        connect: Duration,
    ) -> RedisResult<Self> {
        let mut builder = ClusterClientBuilder::new(target.nodes.clone())
            .response_timeout(response)
            .connection_timeout(connect)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
            .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1);
        if let Some(certs) = &target.certs {
            builder = builder.certs(certs.clone());
        }
        if target.insecure {
            builder = builder.tls(TlsMode::Insecure);
        }
        Ok(Self(Arc::new(LazyInner {
            client: builder.build()?,
            conn: tokio::sync::OnceCell::new(),
        })))
    }

    /// The cluster connection, made now if none was made yet.
    async fn connection(&self) -> RedisResult<ClusterConnection> {
        self.0
            .conn
            .get_or_try_init(|| self.0.client.get_async_connection())
            .await
            .cloned()
    }
}
