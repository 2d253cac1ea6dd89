//! Test harness (feature `testing`): a real `redis-server` on a free port in a temporary
//! directory, configured with the repository's `redis.conf` (AOF, fsync every second), and the
//! helpers every bench uses: figure lines ([`figure`]), a bounded wait ([`within`]) and the
//! churn of Pod updates ([`pods`], [`pod_update`]).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_model::{Kind, Resource};

/// The repository's production Redis configuration.
pub const REDIS_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../redis.conf");
/// How long to wait for a started server to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between PING probes while waiting.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// A `redis-server` child process. Killed (SIGKILL) on drop; its directory is removed.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start on a free port in a fresh temporary directory and wait until it answers PING.
    ///
    /// # Errors
    /// When `redis-server` cannot be spawned or does not become ready.
    pub fn start() -> io::Result<Self> {
        let mut dir = tempfile::tempdir()?;
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut server = Self {
                child: None,
                port,
                dir,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last_err = Some(e);
                    dir = std::mem::replace(&mut server.dir, tempfile::tempdir()?);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (AOF, RDB, log file `redis.log`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kill the server with SIGKILL (no shutdown, no final fsync) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill if running, then start again on the same port and directory (replaying its AOF),
    /// and wait until it answers PING.
    ///
    /// # Errors
    /// When the server cannot be spawned or does not become ready.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill9();
        self.spawn()
    }

    /// Send one inline command and return the raw reply line (for tests that poke at Redis
    /// without a client, e.g. `DEBUG` or `CONFIG`).
    ///
    /// # Errors
    /// On I/O failure.
    pub fn command_line(&self, line: &str) -> io::Result<String> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(format!("{line}\r\n").as_bytes())?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Require `password` (AUTH) from every client from now on (`CONFIG SET requirepass`,
    /// sent as a RESP array so the password may hold any character). A [`Self::restart`]
    /// forgets it.
    ///
    /// # Errors
    /// On I/O failure, or when the server does not answer `+OK`.
    pub fn require_password(&self, password: &str) -> io::Result<()> {
        let mut command = b"*4\r\n".to_vec();
        for arg in ["CONFIG", "SET", "requirepass", password] {
            command.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            command.extend_from_slice(arg.as_bytes());
            command.extend_from_slice(b"\r\n");
        }
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(&command)?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf)?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply.starts_with("+OK") {
            Ok(())
        } else {
            Err(io::Error::other(format!("CONFIG SET requirepass: {reply}")))
        }
    }

    fn spawn(&mut self) -> io::Result<()> {
        let dir: PathBuf = self.dir.path().to_path_buf();
        let child = Command::new("redis-server")
            .arg(REDIS_CONF)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Wait until PING answers PONG (not LOADING), or the process exits, or the timeout.
    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!("redis-server exited: {status}")));
            }
            if self
                .command_line("PING")
                .is_ok_and(|r| r.starts_with("+PONG"))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(io::Error::other("redis-server not ready in time"));
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// How a bench figure compares with its baseline.
#[derive(Debug)]
pub struct Versus<'a> {
    /// Figure / baseline.
    pub ratio: f64,
    /// What the baseline is.
    pub baseline: &'a str,
    /// The target, as text (`>= 0.8x`).
    pub target: &'a str,
    /// Whether the target is met.
    pub met: bool,
}

/// Print one bench figure line: name, value, unit and, when given, the comparison with its
/// baseline and whether the target is MET or MISSED.
pub fn figure(name: &str, value: f64, unit: &str, versus: Option<Versus<'_>>) {
    let value = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    };
    match versus {
        Some(v) => println!(
            "{name:<36} {value:>12} {unit:<11} {:>6.2}x {} (target {}) {}",
            v.ratio,
            v.baseline,
            v.target,
            if v.met { "MET" } else { "MISSED" }
        ),
        None => println!("{name:<36} {value:>12} {unit}"),
    }
}

/// Runs `fut`, failing with a [`io::ErrorKind::TimedOut`] error naming `what` after `limit`.
///
/// # Errors
/// When `fut` does not finish within `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> io::Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {limit:?} waiting for {what}"),
        )
    })
}

/// The Pods among `resources`: what the benches' churn updates ([`pod_update`]).
///
/// # Errors
/// When there is none.
pub fn pods<'a>(
    resources: impl IntoIterator<Item = &'a Arc<Resource>>,
) -> io::Result<Vec<Arc<Resource>>> {
    let pods: Vec<_> = resources
        .into_iter()
        .filter(|r| r.kind == Kind::Pod)
        .cloned()
        .collect();
    if pods.is_empty() {
        return Err(io::Error::other("the generated cluster has no Pods"));
    }
    Ok(pods)
}

/// Update `i` of the benches' churn: the Pods of `pods` in turn, each with a new
/// resourceVersion and status message (a status change, as most of a real cluster's changes).
///
/// # Panics
/// If `pods` is empty ([`pods`] never returns an empty list).
pub fn pod_update(pods: &[Arc<Resource>], i: usize) -> Resource {
    let mut pod = (*pods[i % pods.len()]).clone();
    pod.resource_version = format!("update-{i}").into();
    pod.status.message = format!("restarted {i} times").into();
    pod
}
