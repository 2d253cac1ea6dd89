//! A real `redis-server` on a free port in a temporary directory, configured with the
//! repository's `redis.conf` (AOF, fsync every second); optionally also serving TLS with the
//! certificates of a [`TestPki`].

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::tls::TestPki;

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
    tls: Option<Tls>,
    /// Arguments given after the fixture's own ([`Self::start_args`]).
    args: Vec<String>,
    dir: tempfile::TempDir,
}

/// The TLS side of a server started by [`RedisServer::start_tls`].
#[derive(Debug, Clone)]
struct Tls {
    port: u16,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Presented as a client (a replica to its master).
    client_cert: PathBuf,
    client_key: PathBuf,
    auth_clients: bool,
}

impl RedisServer {
    /// Start on a free port in a fresh temporary directory and wait until it answers PING.
    ///
    /// # Errors
    /// When `redis-server` cannot be spawned or does not become ready.
    pub fn start() -> io::Result<Self> {
        Self::start_with(None, &[])
    }

    /// [`Self::start`] with `args` added to the command line (`--cluster-enabled yes`, ...).
    ///
    /// # Errors
    /// When `redis-server` cannot be spawned or does not become ready.
    pub fn start_args(args: &[&str]) -> io::Result<Self> {
        Self::start_with(None, args)
    }

    /// Start as [`Self::start`] does, and also serve TLS on a second port ([`Self::tls_url`])
    /// with `pki`'s server certificate, trusting `pki`'s CA for client certificates; with
    /// `auth_clients` a client without a certificate signed by that CA is refused. As a replica
    /// over TLS ([`Self::replicate_tls`]) it presents `pki`'s client certificate. The plain
    /// port stays open on 127.0.0.1 for the fixture's own commands ([`Self::command_line`],
    /// [`Self::require_password`]).
    ///
    /// # Errors
    /// When `redis-server` cannot be spawned or does not become ready.
    pub fn start_tls(pki: &TestPki, auth_clients: bool) -> io::Result<Self> {
        Self::start_tls_args(pki, auth_clients, &[])
    }

    /// [`Self::start_tls`] with `args` added to the command line.
    ///
    /// # Errors
    /// When `redis-server` cannot be spawned or does not become ready.
    pub fn start_tls_args(pki: &TestPki, auth_clients: bool, args: &[&str]) -> io::Result<Self> {
        Self::start_with(
            Some(Tls {
                port: 0,
                ca: pki.path(TestPki::CA),
                cert: pki.path(TestPki::SERVER_CERT),
                key: pki.path(TestPki::SERVER_KEY),
                client_cert: pki.path(TestPki::CLIENT_CERT),
                client_key: pki.path(TestPki::CLIENT_KEY),
                auth_clients,
            }),
            args,
        )
    }

    fn start_with(tls: Option<Tls>, args: &[&str]) -> io::Result<Self> {
        let mut dir = tempfile::tempdir()?;
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let tls = match &tls {
                Some(tls) => Some(Tls {
                    port: free_port()?,
                    ..tls.clone()
                }),
                None => None,
            };
            let mut server = Self {
                child: None,
                port,
                tls,
                args: args.iter().map(|a| (*a).to_owned()).collect(),
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

    /// The TLS port of a server started by [`Self::start_tls`].
    #[must_use]
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|tls| tls.port)
    }

    /// `rediss://127.0.0.1:<tls port>/` for a server started by [`Self::start_tls`].
    #[must_use]
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|tls| format!("rediss://127.0.0.1:{}/", tls.port))
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
        inline_command(self.port, None, line)
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

    /// Makes this server a replica of the one on 127.0.0.1:`master_port` and waits (20 s at
    /// most) until its link to the master is up.
    ///
    /// # Errors
    /// On I/O failure, or when the link does not come up in time.
    pub fn replicate(&self, master_port: u16) -> io::Result<()> {
        self.replicate_with_auth(master_port, None)
    }

    /// [`Self::replicate`] of a master that requires `password` (this server's own AUTH, if
    /// any, is sent as the same password).
    ///
    /// # Errors
    /// On I/O failure, or when the link does not come up in time.
    pub fn replicate_with_auth(&self, master_port: u16, password: Option<&str>) -> io::Result<()> {
        if let Some(pw) = password {
            let reply = self.command_as(password, &format!("CONFIG SET masterauth {pw}"))?;
            if !reply.starts_with("+OK") {
                return Err(io::Error::other(format!("CONFIG SET masterauth: {reply}")));
            }
        }
        self.replicaof(master_port, password)
    }

    /// Makes this server (started by [`Self::start_tls`]) a replica over TLS of the one whose
    /// TLS port is 127.0.0.1:`master_tls_port` (`tls-replication yes`: it then also announces
    /// its own TLS port to the master, which Sentinel learns replicas from), and waits (20 s at
    /// most) until its link to the master is up.
    ///
    /// # Errors
    /// When this server serves no TLS, on I/O failure, or when the link does not come up in
    /// time.
    pub fn replicate_tls(&self, master_tls_port: u16) -> io::Result<()> {
        if self.tls.is_none() {
            return Err(io::Error::other(
                "replicating over TLS needs a server started by start_tls",
            ));
        }
        let reply = self.command_line("CONFIG SET tls-replication yes")?;
        if !reply.starts_with("+OK") {
            return Err(io::Error::other(format!(
                "CONFIG SET tls-replication: {reply}"
            )));
        }
        self.replicaof(master_tls_port, None)
    }

    /// `REPLICAOF 127.0.0.1 <master_port>`, then waits until the link is up.
    fn replicaof(&self, master_port: u16, password: Option<&str>) -> io::Result<()> {
        let reply = self.command_as(password, &format!("REPLICAOF 127.0.0.1 {master_port}"))?;
        if !reply.starts_with("+OK") {
            return Err(io::Error::other(format!("REPLICAOF: {reply}")));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self
                .command_as(password, "INFO replication")
                .is_ok_and(|r| r.contains("master_link_status:up"))
            {
                return Ok(());
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
        Err(io::Error::other(
            "the replica's link to its master is not up",
        ))
    }

    /// [`Self::command_line`], authenticated with `password` first when given.
    ///
    /// # Errors
    /// On I/O failure, or when AUTH is refused.
    pub fn command_as(&self, password: Option<&str>, line: &str) -> io::Result<String> {
        inline_command(self.port, password, line)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let dir: PathBuf = self.dir.path().to_path_buf();
        // A copy in the server's directory: `CONFIG REWRITE` (which Sentinel sends on a
        // failover) rewrites the file a server was started with.
        let conf = dir.join("redis.conf");
        if !conf.exists() {
            std::fs::copy(REDIS_CONF, &conf)?;
        }
        let mut command = Command::new("redis-server");
        command
            .arg(&conf)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if let Some(tls) = &self.tls {
            command
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .arg("--tls-client-cert-file")
                .arg(&tls.client_cert)
                .arg("--tls-client-key-file")
                .arg(&tls.client_key)
                .args([
                    "--tls-auth-clients",
                    if tls.auth_clients { "yes" } else { "no" },
                ]);
        }
        command.args(&self.args);
        let child = command
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

/// True when a plain (non-TLS) `PING` to 127.0.0.1:`port` is answered `PONG`: false for a port
/// that speaks TLS only (or nothing).
#[must_use]
pub fn answers_plain_ping(port: u16) -> bool {
    inline_command(port, None, "PING").is_ok_and(|r| r.contains("PONG"))
}

/// Sends one inline command to the server (or sentinel) on 127.0.0.1:`port`, after `AUTH` when
/// `password` is given, and returns the raw reply (one read).
///
/// # Errors
/// On I/O failure, or when AUTH is refused.
pub(crate) fn inline_command(port: u16, password: Option<&str>, line: &str) -> io::Result<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut ask = |text: &str| -> io::Result<String> {
        s.write_all(format!("{text}\r\n").as_bytes())?;
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    if let Some(pw) = password {
        let reply = ask(&format!("AUTH {pw}"))?;
        if !reply.starts_with("+OK") {
            return Err(io::Error::other(format!("AUTH: {reply}")));
        }
    }
    ask(line)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_keeps_its_data() {
        let mut server = RedisServer::start().unwrap();
        assert!(server.command_line("SET k v").unwrap().starts_with("+OK"));
        // The AOF is fsynced every second; ask for a rewrite so the value is on disk now.
        server.command_line("SAVE").unwrap();
        server.restart().unwrap();
        assert_eq!(server.command_line("GET k").unwrap(), "$1\r\nv\r\n");
        assert!(server.dir().join("redis.log").exists());
        assert!(server.url().ends_with(&format!(":{}/", server.port())));
        assert_eq!(server.tls_url(), None);
    }

    #[test]
    fn serves_tls_with_the_test_certificates() {
        let pki = TestPki::generate().unwrap();
        let mut server = RedisServer::start_tls(&pki, true).unwrap();
        let url = server.tls_url().unwrap();
        assert!(url.starts_with("rediss://127.0.0.1:"), "{url}");
        server.restart().unwrap();
        let port = server.tls_port().unwrap();
        assert!(url.ends_with(&format!(":{port}/")), "{url}");
        // The TLS port speaks TLS only: a plain PING gets no PONG.
        assert!(!answers_plain_ping(port));
        assert!(answers_plain_ping(server.port()));
    }
}
