//! Harness for end-to-end tests: the real `astrolabe` binary as a child process, the project's
//! Kubernetes API emulator over HTTP, and (in the persistence tests) a real redis-server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use astrolabe_graph::Graph;
use astrolabe_model::Kind;
use serde_json::Value;

pub mod persist;
pub mod replicas;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Polls `check` until it returns `Some` ([`astrolabe_testkit::eventually`] bounded by
/// [`DEADLINE`]); a timeout shows `context()` as the last observed state.
pub async fn eventually<T, F, Fut>(what: &str, context: impl Fn() -> String, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let context = &context;
    astrolabe_testkit::eventually(what, DEADLINE, move || {
        let polled = check();
        async move { polled.await.ok_or_else(context) }
    })
    .await
}

/// The emulator ([`astrolabe_testkit::Emulator`]) serving a generated cluster.
pub struct Emulator(astrolabe_testkit::Emulator);

impl Emulator {
    /// The generated cluster of `seed` and `size`, served on a free port.
    pub async fn start(seed: u64, size: usize) -> Emulator {
        Emulator(astrolabe_testkit::Emulator::generated(seed, size).await)
    }

    /// The graph the emulator's current objects should produce: every object through the
    /// processors, into a fresh graph.
    pub fn truth(&self) -> Graph {
        let mut g = Graph::new();
        for kind in Kind::WATCHED {
            for obj in self.sim.list(kind.as_str()).unwrap() {
                g.upsert(astrolabe_informers::processors::process_json(kind, obj).unwrap());
            }
        }
        g
    }
}

impl Deref for Emulator {
    type Target = astrolabe_testkit::Emulator;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Emulator {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Node and edge sets, comparable between the server's API and a [`Graph`].
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Sets {
    pub nodes: BTreeSet<String>,
    pub edges: BTreeSet<(String, String, String)>,
}

impl Sets {
    pub fn of(g: &Graph) -> Sets {
        Sets {
            nodes: g.node_set().into_iter().map(|u| u.to_string()).collect(),
            edges: g
                .edge_set()
                .into_iter()
                .map(|(a, b, k)| (a.to_string(), b.to_string(), k.as_str().to_owned()))
                .collect(),
        }
    }

    /// The sets of JSON lists: each node's `id` field, each edge's `(from, to, kind)` fields.
    pub fn of_json(nodes: &Value, id: &str, edges: &Value, [from, to, kind]: [&str; 3]) -> Sets {
        let text = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
        Sets {
            nodes: nodes
                .as_array()
                .unwrap()
                .iter()
                .map(|n| text(n, id))
                .collect(),
            edges: edges
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (text(e, from), text(e, to), text(e, kind)))
                .collect(),
        }
    }

    pub fn diff(&self, other: &Sets) -> String {
        format!(
            "nodes only here {}, only there {}; edges only here {:?}, only there {:?}",
            self.nodes.difference(&other.nodes).count(),
            other.nodes.difference(&self.nodes).count(),
            self.edges
                .difference(&other.edges)
                .take(5)
                .collect::<Vec<_>>(),
            other
                .edges
                .difference(&self.edges)
                .take(5)
                .collect::<Vec<_>>(),
        )
    }
}

/// The `astrolabe` binary running as a child process.
pub struct Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

impl Server {
    /// `astrolabe serve --kubeconfig <kubeconfig> --listen 127.0.0.1:<free port> <extra...>`.
    pub fn start(kubeconfig: &Path, log_dir: &Path, extra: &[&str]) -> Server {
        let kubeconfig = kubeconfig.to_string_lossy();
        let mut args = vec!["serve", "--kubeconfig", &kubeconfig];
        args.extend(extra);
        Server::spawn(log_dir, "astrolabe", &args)
    }

    /// `astrolabe demo --size <size> --churn-rate 0 --sim-listen 127.0.0.1:<free port>
    /// --listen 127.0.0.1:<free port> <extra...>`: the demo, without churn so that what a test
    /// sees changes only when it changes something. Returns the server and its emulator's URL
    /// (for kubectl).
    pub fn demo(log_dir: &Path, size: usize, extra: &[&str]) -> (Server, String) {
        Self::demo_on(
            log_dir,
            size,
            extra,
            astrolabe_testkit::free_port().unwrap(),
        )
    }

    /// [`Server::demo`] listening on `port` (0: every server of the demo on a port of its own,
    /// named in the log; [`Server::port`] is then 0).
    pub fn demo_on(log_dir: &Path, size: usize, extra: &[&str], port: u16) -> (Server, String) {
        let sim_port = astrolabe_testkit::free_port().unwrap();
        let (size, sim) = (size.to_string(), format!("127.0.0.1:{sim_port}"));
        let mut args = vec![
            "demo",
            "--size",
            &size,
            "--churn-rate",
            "0",
            "--sim-listen",
            &sim,
        ];
        args.extend(extra);
        let server = Server::spawn_on(log_dir, "astrolabe-demo", &args, port);
        (server, format!("http://{sim}"))
    }

    /// The ports the process's servers announced in its log (`serving the API addr=…`).
    pub fn announced_ports(&self) -> Vec<u16> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("serving the API"))
            .filter_map(|l| {
                l.split("addr=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// The binary with `args` and `--listen 127.0.0.1:<free port>`, its log (stderr) in
    /// `log_dir/<name>-<port>-<n>.log` (n counts the servers this process started).
    fn spawn(log_dir: &Path, name: &str, args: &[&str]) -> Server {
        Self::spawn_on(log_dir, name, args, astrolabe_testkit::free_port().unwrap())
    }

    /// [`Server::spawn`] with `--listen 127.0.0.1:<port>`.
    fn spawn_on(log_dir: &Path, name: &str, args: &[&str], port: u16) -> Server {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = log_dir.join(format!("{name}-{port}-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_astrolabe"))
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // As deploy/ and docker-compose.yaml set it.
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Server {
            child,
            port,
            log,
            http: reqwest::Client::new(),
        }
    }

    /// The SSE stream at `path` (a `/api/v1/watch` URL), read until `until` holds for what was
    /// read (bounded by [`DEADLINE`]); what was read.
    pub async fn sse_until(&self, path: &str, until: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let read = async move {
            let mut body = Vec::new();
            while !until(&body) {
                match resp.chunk().await.unwrap() {
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => panic!("SSE stream ended: {}", String::from_utf8_lossy(&body)),
                }
            }
            body
        };
        astrolabe_testkit::within(DEADLINE, "the SSE stream shows what is awaited", read)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path; `None` while the server does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, Value)> {
        self.get_as(path, None).await
    }

    /// GET a path with `Authorization: Bearer <token>` when a token is given; `None` while the
    /// server does not answer.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Option<(u16, Value)> {
        let mut req = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        let text = resp.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `/readyz` answers with a body for which `accept` holds.
    pub async fn wait_readyz(&self, what: &str, accept: impl Fn(u16, &Value) -> bool) -> Value {
        eventually(
            what,
            || self.log_tail(),
            || async {
                let (status, body) = self.get("/readyz").await?;
                accept(status, &body).then_some(body)
            },
        )
        .await
    }

    pub async fn wait_ready(&self) -> Value {
        self.wait_readyz("ready", |s, _| s == 200).await
    }

    /// The whole graph as the API serves it.
    pub async fn sets(&self) -> Sets {
        let (status, body) = self.get("/api/v1/graph").await.expect("graph");
        assert_eq!(status, 200);
        Sets::of_json(
            &body["nodes"],
            "uid",
            &body["edges"],
            ["from", "to", "type"],
        )
    }

    pub async fn seq(&self) -> u64 {
        self.get("/health")
            .await
            .and_then(|(_, b)| b["seq"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until the served graph's sequence is above `seq` (changes reached it).
    pub async fn wait_seq_above(&self, what: &str, seq: u64) {
        eventually(
            what,
            || self.log_tail(),
            || async { (self.seq().await > seq).then_some(()) },
        )
        .await;
    }

    /// Waits until the served graph equals `expected()` (re-evaluated on every poll).
    pub async fn wait_graph(&self, what: &str, expected: impl Fn() -> Sets) {
        let expected = &expected;
        astrolabe_testkit::eventually(what, DEADLINE, || async move {
            let (got, want) = (self.sets().await, expected());
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "served vs expected: {}\n{}",
                    got.diff(&want),
                    self.log_tail()
                ))
            }
        })
        .await;
    }

    /// A metric's value (sum over label sets) from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        Self::metric_in(&self.get_text("/metrics").await, name)
    }

    /// [`Server::metric`], `None` while the server does not answer.
    pub async fn try_metric(&self, name: &str) -> Option<f64> {
        let resp = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await
            .ok()?;
        Some(Self::metric_in(&resp.text().await.ok()?, name))
    }

    fn metric_in(text: &str, name: &str) -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l.as_bytes().get(name.len()) == Some(&b' ')
                        || l.as_bytes().get(name.len()) == Some(&b'{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the process to exit.
    pub async fn exit_status(&mut self) -> ExitStatus {
        let log = self.log.clone();
        let child = &mut self.child;
        eventually(
            "process exit",
            || std::fs::read_to_string(&log).unwrap_or_default(),
            || {
                let r = child.try_wait().unwrap();
                async move { r }
            },
        )
        .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
