//! Real `redis-sentinel` processes watching a [`crate::RedisServer`] master, for tests of
//! failover: each on a free port with a configuration file of its own in a temporary directory
//! (sentinels rewrite it), quick to judge a master down. With [`Sentinels::start_tls`] they
//! serve TLS and speak TLS to the master, its replicas and each other. Killed (SIGKILL) on drop.

use std::io;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::redis::inline_command;
use crate::tls::TestPki;

/// How long a sentinel waits before judging an unanswering master down.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Sentinels monitoring one master.
#[derive(Debug)]
pub struct Sentinels {
    children: Vec<Child>,
    /// Plain ports (on 127.0.0.1), for the fixture's own commands.
    ports: Vec<u16>,
    /// TLS ports, when started by [`Sentinels::start_tls`].
    tls_ports: Vec<u16>,
    name: String,
    /// Their configuration files and logs.
    dir: tempfile::TempDir,
}

impl Sentinels {
    /// Starts `count` sentinels monitoring the master on 127.0.0.1:`master_port` as `name`,
    /// `quorum` of them needed to judge it down, and waits until each answers PING.
    ///
    /// # Errors
    /// When `redis-sentinel` cannot be spawned or does not become ready.
    pub fn start(master_port: u16, name: &str, quorum: u32, count: usize) -> io::Result<Self> {
        Self::start_with_auth(master_port, name, quorum, count, None)
    }

    /// [`Self::start`] for a master (and replicas) that require `master_password`.
    ///
    /// # Errors
    /// When `redis-sentinel` cannot be spawned or does not become ready.
    pub fn start_with_auth(
        master_port: u16,
        name: &str,
        quorum: u32,
        count: usize,
        master_password: Option<&str>,
    ) -> io::Result<Self> {
        Self::start_with(master_port, name, quorum, count, master_password, None)
    }

    /// [`Self::start`] over TLS with `pki`'s certificates: each sentinel serves TLS on a port of
    /// its own ([`Self::tls_addrs`]) and requires a client certificate signed by `pki`'s CA, and
    /// it speaks TLS, presenting `pki`'s client certificate, to the master (whose TLS port is
    /// `master_tls_port`), its replicas and the other sentinels (`tls-replication yes`), naming
    /// the TLS ports. The plain port stays open on 127.0.0.1 for the fixture's own commands
    /// (readiness, [`Self::master_port`]).
    ///
    /// # Errors
    /// When `redis-sentinel` cannot be spawned or does not become ready.
    pub fn start_tls(
        master_tls_port: u16,
        name: &str,
        quorum: u32,
        count: usize,
        pki: &TestPki,
    ) -> io::Result<Self> {
        Self::start_with(master_tls_port, name, quorum, count, None, Some(pki))
    }

    fn start_with(
        master_port: u16,
        name: &str,
        quorum: u32,
        count: usize,
        master_password: Option<&str>,
        pki: Option<&TestPki>,
    ) -> io::Result<Self> {
        let mut sentinels = Sentinels {
            children: Vec::new(),
            ports: Vec::new(),
            tls_ports: Vec::new(),
            name: name.to_owned(),
            dir: tempfile::tempdir()?,
        };
        let dir = sentinels.dir.path().to_owned();
        for i in 0..count {
            let port = free_port()?;
            let conf = dir.join(format!("sentinel-{i}.conf"));
            let tls = match pki {
                Some(pki) => {
                    let tls_port = free_port()?;
                    sentinels.tls_ports.push(tls_port);
                    tls_conf(tls_port, pki)
                }
                None => String::new(),
            };
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel-{i}.log\n\
                     sentinel monitor {name} 127.0.0.1 {master_port} {quorum}\n\
                     sentinel down-after-milliseconds {name} {down}\n\
                     sentinel failover-timeout {name} 2000\n\
                     sentinel parallel-syncs {name} 1\n{auth}{tls}",
                    dir = dir.display(),
                    down = DOWN_AFTER.as_millis(),
                    auth = master_password
                        .map(|pw| format!("sentinel auth-pass {name} {pw}\n"))
                        .unwrap_or_default(),
                ),
            )?;
            let child = Command::new("redis-sentinel")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            sentinels.children.push(child);
            sentinels.ports.push(port);
            wait_ready(port)?;
        }
        Ok(sentinels)
    }

    /// `127.0.0.1:<port>` of each sentinel.
    #[must_use]
    pub fn addrs(&self) -> Vec<String> {
        local_addrs(&self.ports)
    }

    /// `127.0.0.1:<tls port>` of each sentinel, when started by [`Self::start_tls`].
    #[must_use]
    pub fn tls_addrs(&self) -> Option<Vec<String>> {
        if self.tls_ports.is_empty() {
            return None;
        }
        Some(local_addrs(&self.tls_ports))
    }

    /// The master's port as the first sentinel names it.
    ///
    /// # Errors
    /// On I/O failure, or a reply that names no master.
    pub fn master_port(&self) -> io::Result<u16> {
        let reply = inline_command(
            self.ports[0],
            None,
            &format!("SENTINEL get-master-addr-by-name {}", self.name),
        )?;
        // `*2`, `$9`, `127.0.0.1`, `$<n>`, `<port>`.
        reply
            .lines()
            .nth(4)
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no master in {reply:?}")))
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `127.0.0.1:<port>` of each of `ports`.
fn local_addrs(ports: &[u16]) -> Vec<String> {
    ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()
}

/// The TLS lines of a sentinel's configuration: serve TLS on `tls_port` with `pki`'s server
/// certificate, require clients signed by its CA, and be such a client (with `pki`'s client
/// certificate) towards masters, replicas and sentinels.
fn tls_conf(tls_port: u16, pki: &TestPki) -> String {
    let file = |f: &str| pki.path(f).display().to_string();
    format!(
        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
         tls-client-cert-file {}\ntls-client-key-file {}\n\
         tls-auth-clients yes\ntls-replication yes\n",
        file(TestPki::SERVER_CERT),
        file(TestPki::SERVER_KEY),
        file(TestPki::CA),
        file(TestPki::CLIENT_CERT),
        file(TestPki::CLIENT_KEY),
    )
}

fn wait_ready(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if inline_command(port, None, "PING").is_ok_and(|r| r.starts_with("+PONG")) {
            return Ok(());
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    Err(io::Error::other("redis-sentinel not ready in time"))
}
