//! The Kubernetes API emulator served on a free port of 127.0.0.1, with a `kube::Client` and a
//! kubeconfig file that point at it, and optional churn.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use astrolabe_kubesim::{ChurnConfig, Sim, SimConfig, run_churn, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running task and the token that stops it.
type Task<T> = (CancellationToken, JoinHandle<T>);

/// An emulator answering on `127.0.0.1:<port>`; the server and its churn stop when it is dropped.
/// The port stays the same across [`stop_server`](Self::stop_server) and
/// [`start_server`](Self::start_server).
#[derive(Debug)]
pub struct Emulator {
    /// The emulated cluster (shared with the server: changes show through the API).
    pub sim: Sim,
    /// The port it answers on.
    pub port: u16,
    server: Option<Task<io::Result<()>>>,
    churn: Option<Task<u64>>,
    dir: tempfile::TempDir,
}

impl Emulator {
    /// An empty emulator with `config`.
    ///
    /// # Panics
    /// When it cannot be served (see [`try_serve`](Self::try_serve)).
    pub async fn start(config: SimConfig) -> Self {
        Self::serve(Sim::new(config)).await
    }

    /// An emulator (default config) holding the generated cluster of `seed` and `size`
    /// ([`Sim::with_generated`]).
    ///
    /// # Panics
    /// When the cluster cannot be loaded or served.
    pub async fn generated(seed: u64, size: usize) -> Self {
        let sim = Sim::with_generated(seed, size)
            .unwrap_or_else(|e| panic!("loading the generated cluster: {e}"));
        Self::serve(sim).await
    }

    /// Serves `sim`.
    ///
    /// # Panics
    /// When it cannot be served (see [`try_serve`](Self::try_serve)).
    pub async fn serve(sim: Sim) -> Self {
        Self::try_serve(sim)
            .await
            .unwrap_or_else(|e| panic!("serving the emulator: {e}"))
    }

    /// Serves `sim` on a free port and writes its kubeconfig.
    ///
    /// # Errors
    /// When no port can be bound or the kubeconfig cannot be written.
    pub async fn try_serve(sim: Sim) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut emulator = Self {
            sim,
            port,
            server: None,
            churn: None,
            dir: tempfile::tempdir()?,
        };
        emulator.spawn_server(listener);
        std::fs::write(emulator.kubeconfig(), kubeconfig(&emulator.url()))?;
        Ok(emulator)
    }

    /// `127.0.0.1:<port>`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A kube-rs client for the emulator.
    ///
    /// # Panics
    /// When the client cannot be built (a TLS or URL setup failure).
    #[must_use]
    pub fn client(&self) -> kube::Client {
        let uri = self
            .url()
            .parse()
            .unwrap_or_else(|e| panic!("the emulator's URL: {e}"));
        kube::Client::try_from(kube::Config::new(uri))
            .unwrap_or_else(|e| panic!("a client for the emulator: {e}"))
    }

    /// A kubeconfig file whose current context is the emulator (no credentials).
    #[must_use]
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Stops answering, as an API server that went down: the listener closes at once. A
    /// graceful stop would wait for the watch streams its clients keep open (kube's watcher
    /// asks for 290 s), so after [`STOP_GRACE`] the server task is dropped.
    pub async fn stop_server(&mut self) {
        if let Some((stop, mut task)) = self.server.take() {
            stop.cancel();
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Answers again, on the same port.
    ///
    /// # Panics
    /// When the port cannot be bound again.
    pub async fn start_server(&mut self) {
        let listener = TcpListener::bind(self.addr())
            .await
            .unwrap_or_else(|e| panic!("binding {} again: {e}", self.addr()));
        self.spawn_server(listener);
    }

    /// Starts churn of `rate` changes per second from `seed` ([`run_churn`]).
    pub fn start_churn(&mut self, rate: f64, seed: u64) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_churn(
            self.sim.clone(),
            ChurnConfig { rate, seed },
            stop.clone(),
        ));
        self.churn = Some((stop, task));
    }

    /// Stops churn; returns the number of steps it made (0 when it was not running).
    ///
    /// # Panics
    /// When the churn task panicked.
    pub async fn stop_churn(&mut self) -> u64 {
        match self.churn.take() {
            Some((stop, task)) => {
                stop.cancel();
                task.await
                    .unwrap_or_else(|e| panic!("the churn task failed: {e}"))
            }
            None => 0,
        }
    }

    fn spawn_server(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(self.sim.clone(), listener, stop.clone()));
        self.server = Some((stop, task));
    }
}

/// How long [`Emulator::stop_server`] lets open requests finish.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.server {
            stop.cancel();
        }
        if let Some((stop, _)) = &self.churn {
            stop.cancel();
        }
    }
}

/// A kubeconfig with one context for the server at `url`.
fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {url}\n\
         users:\n- name: u\n  user: {{}}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    \
         user: u\ncurrent-context: sim\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_stops_and_answers_again_on_the_same_port() {
        let mut emulator = Emulator::start(SimConfig::default()).await;
        let version = emulator.client().apiserver_version().await.unwrap();
        assert!(!version.git_version.is_empty());
        let config = std::fs::read_to_string(emulator.kubeconfig()).unwrap();
        assert!(
            config.contains(&format!("server: {}\n", emulator.url())),
            "{config}"
        );

        emulator.stop_server().await;
        assert!(emulator.client().apiserver_version().await.is_err());
        emulator.start_server().await;
        emulator.client().apiserver_version().await.unwrap();
    }

    #[tokio::test]
    async fn churn_changes_the_generated_cluster() {
        let mut emulator = Emulator::generated(1, 200).await;
        let before = emulator.sim.current_rv();
        emulator.start_churn(500.0, 2);
        crate::until("churn steps", std::time::Duration::from_secs(20), || {
            emulator.sim.current_rv() > before
        })
        .await;
        assert!(emulator.stop_churn().await > 0);
    }
}
