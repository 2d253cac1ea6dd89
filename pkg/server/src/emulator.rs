//! `demo` and `sim`: the built-in Kubernetes API emulator with a generated cluster and churn,
//! alone (`sim`) or with the server running against it through the real kube-rs client (`demo`).

use std::net::SocketAddr;

use astrolabe_kubesim::{ChurnConfig, Sim};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::ServerError;
use crate::config::{DemoConfig, SimConfig};

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
    /// 0) and churn at `rate` changes per second (none when 0).
    ///
    /// # Errors
    /// When the cluster cannot be generated or the address bound.
    pub async fn start(
        listen: SocketAddr,
        size: usize,
        seed: u64,
        rate: f64,
        stop: &CancellationToken,
    ) -> Result<Emulator, EmulatorError> {
        let sim = if size > 0 {
            Sim::with_generated(seed, size).map_err(EmulatorError::Generate)?
        } else {
            Sim::new(astrolabe_kubesim::SimConfig {
                default_namespaces: true,
                ..astrolabe_kubesim::SimConfig::default()
            })
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
        args.churn_rate,
        &shutdown,
    )
    .await?;
    println!(
        "Kubernetes API emulator at {url} ({n} objects)",
        url = emulator.url(),
        n = emulator.sim.object_count()
    );
    println!("  kubectl --server {url} get pods -A", url = emulator.url());
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
        args.churn_rate,
        &sim_stop,
    )
    .await?;
    let client =
        astrolabe_informers::client_for_url(&emulator.url()).map_err(EmulatorError::KubeClient)?;
    let sim_url = emulator.url();
    let objects = emulator.sim.object_count();
    let result = crate::app::serve(args.serve, client, shutdown, |addr| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        let api = format!("http://{host}:{}", addr.port());
        println!();
        println!("Astrolabe demo: {objects} objects in the emulated cluster at {sim_url}");
        println!("API at {api}   (Ctrl-C to stop)");
        println!("  curl -s {api}/readyz");
        println!("  curl -s {api}/api/v1/namespaces");
        println!("  curl -s '{api}/api/v1/objects?kind=Deployment&limit=5'");
        println!("  curl -s '{api}/api/v1/graph?namespace=team-000' | head -c 600");
        println!("  curl -s '{api}/api/v1/dangling'");
        println!("  curl -sN {api}/api/v1/watch");
        println!("  kubectl --server {sim_url} get deployments -A");
        println!();
    })
    .await;
    sim_stop.cancel();
    emulator.join().await;
    Ok(result?)
}
