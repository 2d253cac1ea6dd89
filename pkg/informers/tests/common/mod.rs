//! Shared fixtures: an emulator served on an ephemeral port, informers against it, and waits on
//! the event channel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrolabe_informers::{Discover, InformerConfig, InformerMetrics, IngestEvent, SyncStatus};
use astrolabe_kubesim::Sim;
use astrolabe_model::Kind;
use astrolabe_testkit::Emulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An emulator and informers watching it; both stop when dropped.
pub struct Harness {
    pub sim: Sim,
    pub rx: Receiver<IngestEvent>,
    pub status: SyncStatus,
    pub registry: prometheus::Registry,
    pub task: JoinHandle<astrolabe_informers::Result<()>>,
    /// Stops the informers.
    pub shutdown: CancellationToken,
    pub emulator: Emulator,
}

impl Harness {
    /// Serves `sim` and starts typed informers for `kinds` (all built-in kinds when empty; no
    /// discovery).
    pub async fn start(sim: Sim, kinds: &[Kind]) -> Self {
        Self::start_with(sim, kinds, &[]).await
    }

    /// Like [`Harness::start`], watching namespaced kinds only in `namespaces` (all when empty).
    pub async fn start_with(sim: Sim, kinds: &[Kind], namespaces: &[&str]) -> Self {
        let mut config = InformerConfig {
            discover: Discover::Builtin,
            ..InformerConfig::default()
        };
        if !kinds.is_empty() {
            config.kinds = kinds.to_vec();
        }
        config.namespaces = namespaces.iter().map(|n| (*n).to_owned()).collect();
        Self::start_config(sim, config).await
    }

    /// Serves `sim` and starts informers with `config`.
    pub async fn start_config(sim: Sim, config: InformerConfig) -> Self {
        let emulator = Emulator::serve(sim.clone()).await;
        let addr = emulator.addr();
        Self::connect(sim, config, addr, emulator)
    }

    /// Like [`Harness::start_with`], with the emulator's server stopped before the informers
    /// start (an API server that is down); `emulator.start_server()` brings it up on the same
    /// port.
    pub async fn start_down(sim: Sim, kinds: &[Kind], namespaces: &[&str]) -> Self {
        let mut emulator = Emulator::serve(sim.clone()).await;
        emulator.stop_server().await;
        let addr = emulator.addr();
        let config = InformerConfig {
            kinds: kinds.to_vec(),
            namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
            discover: Discover::Builtin,
            ..InformerConfig::default()
        };
        Self::connect(sim, config, addr, emulator)
    }

    /// Like [`Harness::start_config`], with the informers talking to the emulator through a
    /// proxy that records every byte the emulator sends them.
    pub async fn start_recorded(sim: Sim, config: InformerConfig) -> (Self, Recorder) {
        let emulator = Emulator::serve(sim.clone()).await;
        let recorder = Recorder::start(emulator.addr()).await;
        let harness = Self::connect(sim, config, recorder.addr, emulator);
        (harness, recorder)
    }

    fn connect(sim: Sim, config: InformerConfig, addr: SocketAddr, emulator: Emulator) -> Self {
        let shutdown = CancellationToken::new();
        let client = astrolabe_informers::client_for_url(&format!("http://{addr}")).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let status = SyncStatus::new();
        let registry = prometheus::Registry::new();
        let metrics = InformerMetrics::new(&registry).unwrap();
        let task = astrolabe_informers::spawn(
            client,
            config,
            tx,
            status.clone(),
            metrics,
            shutdown.clone(),
        );
        Harness {
            sim,
            rx,
            status,
            registry,
            task,
            shutdown,
            emulator,
        }
    }

    /// Receives events until `stop` returns true for one (inclusive); all of them in order.
    pub async fn until(
        &mut self,
        what: &str,
        mut stop: impl FnMut(&IngestEvent) -> bool,
    ) -> Vec<IngestEvent> {
        let rx = &mut self.rx;
        within(20, what, async move {
            let mut out = Vec::new();
            while let Some(ev) = rx.recv().await {
                let done = stop(&ev);
                out.push(ev);
                if done {
                    return out;
                }
            }
            panic!("channel closed while waiting; got {out:?}");
        })
        .await
    }

    /// Receives events until a list of each of `kinds` completed.
    pub async fn until_listed(&mut self, kinds: &[Kind]) -> Vec<IngestEvent> {
        let mut left: Vec<Kind> = kinds.to_vec();
        self.until("lists completed", move |ev| {
            if let IngestEvent::ListCompleted { kind, .. } = ev {
                left.retain(|k| k != kind);
            }
            left.is_empty()
        })
        .await
    }

    /// Text exposition of the informer metrics.
    pub fn metrics_text(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A TCP proxy in front of the emulator keeping every byte the emulator sends back.
pub struct Recorder {
    /// Where clients connect.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                tokio::spawn(relay(client, server, sink.clone()));
            }
        });
        Recorder { addr, received }
    }

    /// Everything the emulator has sent so far.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

/// Copies requests up as they come and responses down, recording the responses.
async fn relay(client: TcpStream, server: TcpStream, sink: Arc<Mutex<Vec<u8>>>) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut client_rd, &mut server_wr).await });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match server_rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
                if client_wr.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// [`astrolabe_testkit::within`] `secs` seconds, panicking with `what` on expiry.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    astrolabe_testkit::within(Duration::from_secs(secs), what, fut)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`astrolabe_testkit::until`] `cond` (cheap, in-memory) holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    astrolabe_testkit::until(what, Duration::from_secs(secs), cond).await;
}
