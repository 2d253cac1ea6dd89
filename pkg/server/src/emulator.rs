//! `demo` and `sim`: the built-in Kubernetes API emulator with a generated cluster and churn,
//! alone (`sim`) or with the server running against it through the real kube-rs client (`demo`).

use std::net::SocketAddr;
use std::time::Duration;

use astrolabe_kubesim::{ChurnConfig, Sim, SimAuth};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::ServerError;
use crate::config::{AuthMode, DemoConfig, SimConfig};

/// What can stop `demo` or `sim` with an error.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The cluster could not be generated.
    #[error("generating the cluster failed")]
    Generate(#[source] astrolabe_kubesim::SimError),
    /// The emulator's address could not be bound.
    #[error("binding the emulator to {addr} failed")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The kube client for the emulator could not be built.
    #[error("building the kube client failed")]
    KubeClient(#[source] astrolabe_informers::Error),
    /// The server running against the emulator failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The demo's settings do not go together.
    #[error("{0}")]
    Config(String),
}

/// The bearer token the emulator's TokenReview accepts, as user `demo`, whom its
/// SubjectAccessReview allows to read Astrolabe's API and `/metrics` (for `--auth=kubernetes`
/// against `demo` or `sim`). The emulator is never a real cluster; this token grants nothing else.
pub const DEMO_TOKEN: &str = "astrolabe-demo";

/// The emulator's reviews: [`DEMO_TOKEN`] is user `demo`, who may `get` the default virtual
/// resource and `/metrics`.
fn demo_auth() -> SimAuth {
    let defaults = crate::config::AuthConfig::default();
    let resource = format!("{}.{}", defaults.resource, defaults.resource_group);
    SimAuth::default()
        .token(DEMO_TOKEN, "demo", &[])
        .grant("demo", "get", &resource)
        .grant("demo", "get", astrolabe_api::auth::METRICS_PATH)
}

/// A running emulator.
pub struct Emulator {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its handle (objects, fault injection).
    pub sim: Sim,
    server: JoinHandle<std::io::Result<()>>,
    churn: Option<JoinHandle<u64>>,
}

impl Emulator {
    /// Starts an emulator on `listen` with a generated cluster of about `size` objects (none when
    /// 0), with custom resources and their CRDs when `custom_resources`, and churn at `rate`
    /// changes per second (none when 0); with its controllers and one Node when `controllers`
    /// names their Pod start delay (only for an empty cluster: a generated one already holds
    /// what they would make, and its churn would fight them).
    ///
    /// # Errors
    /// When the cluster cannot be generated or the address bound.
    pub async fn start(
        listen: SocketAddr,
        size: usize,
        seed: u64,
        custom_resources: bool,
        rate: f64,
        controllers: Option<Duration>,
        stop: &CancellationToken,
    ) -> Result<Emulator, EmulatorError> {
        let controllers = controllers.filter(|_| size == 0);
        let config = astrolabe_kubesim::SimConfig {
            default_namespaces: size == 0,
            controllers: controllers.is_some(),
            pod_start_delay: controllers.unwrap_or_default(),
            nodes: usize::from(controllers.is_some()),
            auth: demo_auth(),
            ..astrolabe_kubesim::SimConfig::default()
        };
        let sim = if size > 0 {
            let options = astrolabe_kubesim::GenerateOptions { custom_resources };
            Sim::generated_with_options(config, seed, size, &options)
                .map_err(EmulatorError::Generate)?
        } else {
            Sim::new(config)
        };
        let bind = |source| EmulatorError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let server = tokio::spawn(astrolabe_kubesim::serve(
            sim.clone(),
            listener,
            stop.clone(),
        ));
        let churn = (rate > 0.0).then(|| {
            tokio::spawn(astrolabe_kubesim::run_churn(
                sim.clone(),
                ChurnConfig { rate, seed },
                stop.clone(),
            ))
        });
        tracing::info!(%addr, objects = sim.object_count(), churn_per_second = rate, "kubernetes API emulator listening");
        Ok(Emulator {
            addr,
            sim,
            server,
            churn,
        })
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for the server and churn tasks (after the stop token was cancelled).
    pub async fn join(self) {
        if let Some(churn) = self.churn
            && let Ok(steps) = churn.await
        {
            tracing::info!(steps, "churn stopped");
        }
        let _ = self.server.await;
    }
}

/// `astrolabe sim`: the emulator alone, until `shutdown`.
///
/// # Errors
/// As [`Emulator::start`].
pub async fn sim(args: SimConfig, shutdown: CancellationToken) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(
        args.listen,
        args.generate,
        args.seed,
        args.custom_resources,
        args.churn_rate,
        args.controllers.then_some(args.pod_start_delay),
        &shutdown,
    )
    .await?;
    if args.controllers && args.generate > 0 {
        tracing::warn!("--controllers runs only on an empty cluster: off for the generated one");
    }
    println!(
        "Kubernetes API emulator at {url} ({n} objects)",
        url = emulator.url(),
        n = emulator.sim.object_count()
    );
    println!("  kubectl --server {url} get pods -A", url = emulator.url());
    println!(
        "  (its TokenReview accepts the bearer token {DEMO_TOKEN}, for astrolabe serve --auth=kubernetes)"
    );
    println!(
        "  kubectl --server {url} create -f manifests.yaml",
        url = emulator.url()
    );
    shutdown.cancelled().await;
    emulator.join().await;
    Ok(())
}

/// `astrolabe demo`: the emulator with a generated cluster and churn, and the server against it.
///
/// # Errors
/// As [`Emulator::start`] and [`crate::app::serve`].
pub async fn demo(args: DemoConfig, shutdown: CancellationToken) -> Result<(), EmulatorError> {
    let sim_stop = CancellationToken::new();
    let emulator = Emulator::start(
        args.sim_listen,
        args.size,
        args.seed,
        args.custom_resources,
        args.churn_rate,
        None,
        &sim_stop,
    )
    .await?;
    let client =
        astrolabe_informers::client_for_url(&emulator.url()).map_err(EmulatorError::KubeClient)?;
    let sim_url = emulator.url();
    let objects = emulator.sim.object_count();
    let curl = match args.serve.server.auth.mode {
        AuthMode::None => "curl -s".to_owned(),
        AuthMode::Kubernetes => format!("curl -s -H 'Authorization: Bearer {DEMO_TOKEN}'"),
        AuthMode::TokenFile => {
            "curl -s -H 'Authorization: Bearer <a token of the file>'".to_owned()
        }
    };
    let ui = args.serve.server.ui;
    let ui_token = match args.serve.server.auth.mode {
        AuthMode::None => String::new(),
        AuthMode::Kubernetes => format!("   (token: {DEMO_TOKEN})"),
        AuthMode::TokenFile => "   (token: one of the token file)".to_owned(),
    };
    if args.replicas > 1 {
        let result = replicas(&args, &emulator, client, shutdown, &curl).await;
        sim_stop.cancel();
        emulator.join().await;
        return result;
    }
    let result = crate::app::serve(args.serve, client, shutdown, |addr| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        let api = format!("http://{host}:{}", addr.port());
        println!();
        if ui {
            println!("Explorer at {api}/ui/{ui_token}");
        }
        println!("Astrolabe demo: {objects} objects in the emulated cluster at {sim_url}");
        println!("API at {api}   (Ctrl-C to stop)");
        println!("  curl -s {api}/readyz");
        println!("  {curl} {api}/api/v1/namespaces");
        println!("  {curl} '{api}/api/v1/objects?kind=Deployment&limit=5'");
        println!("  {curl} '{api}/api/v1/graph?namespace=team-000' | head -c 600");
        println!("  {curl} '{api}/api/v1/dangling'");
        println!("  {curl} -N {api}/api/v1/watch");
        println!("  kubectl --server {sim_url} get deployments -A");
        println!();
    })
    .await;
    sim_stop.cancel();
    emulator.join().await;
    Ok(result?)
}

/// `demo --replicas N`: N servers against the emulator, electing a leader with a Lease in it;
/// replica i listens on the configured port + i (or a port of its own when that is 0).
async fn replicas(
    args: &DemoConfig,
    emulator: &Emulator,
    client: kube::Client,
    shutdown: CancellationToken,
    curl: &str,
) -> Result<(), EmulatorError> {
    if !args.serve.persist.enabled {
        return Err(EmulatorError::Config(format!(
            "--replicas {} needs --enable-persistence and a Redis (--redis-url): the replicas share its log",
            args.replicas
        )));
    }
    let namespace = &args.serve.replicas.lease_namespace;
    // The Lease's namespace, unless the generated cluster has it already.
    let _ = emulator.sim.create(
        "namespaces",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    );
    println!(
        "Astrolabe demo: {} objects in the emulated cluster at {}; {} replicas, one leads (Lease {namespace}/{})",
        emulator.sim.object_count(),
        emulator.url(),
        args.replicas,
        if args.serve.replicas.lease_name.is_empty() {
            format!("astrolabe-{}", args.serve.persist.cluster_name)
        } else {
            args.serve.replicas.lease_name.clone()
        },
    );
    let runs = (0..args.replicas).map(|i| {
        let mut config = args.serve.clone();
        config.replicas.leader_election = true;
        if config.replicas.identity.is_empty() {
            config.replicas.identity = format!("demo-{i}");
        } else {
            config.replicas.identity = format!("{}-{i}", config.replicas.identity);
        }
        if config.server.listen.port() != 0 {
            let port = config.server.listen.port().saturating_add(u16::try_from(i).unwrap_or(0));
            config.server.listen.set_port(port);
        }
        let (client, shutdown) = (client.clone(), shutdown.clone());
        async move {
            crate::app::serve(config, client, shutdown, |addr| {
                println!(
                    "  replica {i}: API at http://127.0.0.1:{}   ({curl} http://127.0.0.1:{}/metrics | grep '^astrolabe_leader ')",
                    addr.port(),
                    addr.port()
                );
            })
            .await
        }
    });
    let results = futures::future::join_all(runs).await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use astrolabe_api::auth::{Access, Authorizer, Decision, Target};

    use super::*;
    use crate::auth::KubeAuthorizer;
    use crate::config::AuthConfig;

    #[tokio::test]
    async fn the_demo_token_reads_the_api_and_metrics_through_the_emulators_reviews() {
        let stop = CancellationToken::new();
        let emulator = Emulator::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            0,
            1,
            false,
            0.0,
            None,
            &stop,
        )
        .await
        .unwrap();
        let client = astrolabe_informers::client_for_url(&emulator.url()).unwrap();
        let auth = KubeAuthorizer::new(client, &AuthConfig::default()).unwrap();
        for target in [Target::Api, Target::Metrics] {
            let access = Access {
                verb: "get".into(),
                target,
            };
            let demo = Decision::Allowed {
                user: "demo".into(),
            };
            assert_eq!(auth.decide(DEMO_TOKEN, &access).await.unwrap(), demo);
            let other = auth.decide("not-the-demo-token", &access).await.unwrap();
            assert_eq!(other, Decision::Unauthenticated);
        }
        stop.cancel();
        emulator.join().await;
    }

    #[tokio::test]
    async fn custom_resources_are_generated_only_when_asked() {
        let stop = CancellationToken::new();
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        for custom in [true, false] {
            let emulator = Emulator::start(local, 300, 1, custom, 0.0, None, &stop)
                .await
                .unwrap();
            let certificates = emulator
                .sim
                .list("Certificate.cert-manager.io")
                .map(|l| l.len())
                .unwrap_or_default();
            let monitors = emulator
                .sim
                .list("ServiceMonitor.monitoring.coreos.com")
                .map(|l| l.len())
                .unwrap_or_default();
            assert_eq!(certificates > 0 && monitors > 0, custom, "custom={custom}");
        }
        stop.cancel();
    }
}
