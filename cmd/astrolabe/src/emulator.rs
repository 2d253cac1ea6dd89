//! `demo` and `sim`: the built-in Kubernetes API emulator with a generated cluster and churn,
//! alone (`sim`) or with the server running against it through the real kube-rs client (`demo`).

use std::net::SocketAddr;

use anyhow::Context as _;
use astrolabe_kubesim::{ChurnConfig, Sim, SimConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, SimArgs};

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
    ) -> anyhow::Result<Emulator> {
        let sim = if size > 0 {
            Sim::with_generated(seed, size).context("generating the cluster")?
        } else {
            Sim::new(SimConfig {
                default_namespaces: true,
                ..SimConfig::default()
            })
        };
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the emulator to {listen}"))?;
        let addr = listener
            .local_addr()
            .context("reading the emulator's address")?;
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
pub async fn sim(args: SimArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
pub async fn demo(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
        astrolabe_informers::client_for_url(&emulator.url()).context("building the kube client")?;
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
    result
}
