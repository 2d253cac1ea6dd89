//! A real Redis Cluster of masters only: one [`RedisServer`] per master with cluster mode on,
//! the 16384 slots split evenly (`CLUSTER ADDSLOTSRANGE`), joined with `CLUSTER MEET`, and
//! returned once every node reports `cluster_state:ok` and all agree on who holds which slots.
//! Optionally with a password on every node, or serving TLS (clients and the cluster bus) with
//! the certificates of a [`TestPki`]. The fixture's own commands always go to each node's plain
//! port on 127.0.0.1. Killed (SIGKILL) on drop.

use std::io;
use std::time::{Duration, Instant};

use crate::free_port;
use crate::redis::RedisServer;
use crate::tls::TestPki;

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16384;
/// How long a started cluster may take to agree on its slots.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between probes while waiting.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// A Redis Cluster of masters, each a `redis-server` on free ports in a directory of its own.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The first slot each node holds (node `i` holds `starts[i]..starts[i + 1]`).
    starts: Vec<u16>,
    password: Option<String>,
    tls: bool,
}

impl RedisCluster {
    /// Starts a cluster of `masters` masters (at least 1) and waits until it serves every slot.
    ///
    /// # Errors
    /// When a server cannot be started, or the cluster does not form in time.
    pub fn start(masters: usize) -> io::Result<Self> {
        Self::start_with(masters, None, None)
    }

    /// [`Self::start`], then requires `password` on every node (`requirepass`, and
    /// `masterauth` for replication between them).
    ///
    /// # Errors
    /// As [`Self::start`]'s, or when the password cannot be set.
    pub fn start_with_auth(masters: usize, password: &str) -> io::Result<Self> {
        Self::start_with(masters, Some(password), None)
    }

    /// [`Self::start`] with every node serving TLS with `pki`'s server certificate, clients and
    /// cluster bus alike (`--tls-cluster yes`, `--tls-replication yes`); clients need no
    /// certificate of their own. [`Self::nodes`] are then the TLS ports.
    ///
    /// # Errors
    /// As [`Self::start`]'s.
    pub fn start_tls(masters: usize, pki: &TestPki) -> io::Result<Self> {
        Self::start_with(masters, None, Some(pki))
    }

    fn start_with(
        masters: usize,
        password: Option<&str>,
        pki: Option<&TestPki>,
    ) -> io::Result<Self> {
        let masters = masters.max(1);
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            // Explicit bus port: the default (port + 10000) may not exist.
            let bus = free_port()?.to_string();
            let mut args = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus,
            ];
            let node = match pki {
                Some(pki) => {
                    // A node verifies the certificate of every node that connects to its bus
                    // (whatever `tls-auth-clients` says), and the server certificate is not
                    // one for clients: the nodes connect with the client certificate
                    // (`start_tls_args` gives it).
                    args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"]);
                    RedisServer::start_tls_args(pki, false, &args)?
                }
                None => RedisServer::start_args(&args)?,
            };
            nodes.push(node);
        }
        let starts: Vec<u16> = (0..masters)
            .map(|i| u16::try_from(i * usize::from(SLOTS) / masters).unwrap_or(SLOTS))
            .collect();
        let cluster = Self {
            nodes,
            starts,
            password: None,
            tls: pki.is_some(),
        };
        for (i, node) in cluster.nodes.iter().enumerate() {
            let (first, last) = cluster.range(i);
            expect_ok(
                node.command_line(&format!("CLUSTER ADDSLOTSRANGE {first} {last}"))?,
                "CLUSTER ADDSLOTSRANGE",
            )?;
        }
        // Every other node meets the first one (its client port and bus port); gossip does
        // the rest.
        let first = &cluster.nodes[0];
        let meet = format!(
            "CLUSTER MEET 127.0.0.1 {} {}",
            cluster.client_port(first),
            bus_port(first)?
        );
        for node in &cluster.nodes[1..] {
            expect_ok(node.command_line(&meet)?, "CLUSTER MEET")?;
        }
        cluster.wait_formed()?;
        let mut cluster = cluster;
        if let Some(password) = password {
            for node in &cluster.nodes {
                expect_ok(
                    node.command_line(&format!("CONFIG SET masterauth {password}"))?,
                    "CONFIG SET masterauth",
                )?;
                node.require_password(password)?;
            }
            cluster.password = Some(password.to_owned());
        }
        Ok(cluster)
    }

    /// `127.0.0.1:<port>` of every node (the TLS ports of a TLS cluster).
    #[must_use]
    pub fn nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", self.client_port(node)))
            .collect()
    }

    /// The node at `index` (in [`Self::nodes`] order).
    #[must_use]
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// The node at `index`, to kill it.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The index of the node that holds `key`'s slot, as `CLUSTER KEYSLOT` names the slot.
    ///
    /// # Errors
    /// On I/O failure or an unexpected reply.
    pub fn index_of_key(&self, key: &str) -> io::Result<usize> {
        let reply = self.command(0, &format!("CLUSTER KEYSLOT {key}"))?;
        let slot: u16 = reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .map_err(|_| io::Error::other(format!("CLUSTER KEYSLOT: {reply:?}")))?;
        Ok(self.starts.iter().rposition(|s| *s <= slot).unwrap_or(0))
    }

    /// Sends one inline command to node `index` (authenticated when the cluster has a
    /// password) and returns the raw reply.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn command(&self, index: usize, line: &str) -> io::Result<String> {
        self.nodes[index].command_as(self.password.as_deref(), line)
    }

    /// The number of keys on node `index` (`DBSIZE`).
    ///
    /// # Errors
    /// On I/O failure or an unexpected reply.
    pub fn key_count(&self, index: usize) -> io::Result<u64> {
        let reply = self.command(index, "DBSIZE")?;
        reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .map_err(|_| io::Error::other(format!("DBSIZE: {reply:?}")))
    }

    /// The slots node `index` holds, first and last.
    fn range(&self, index: usize) -> (u16, u16) {
        let next = self.starts.get(index + 1).copied().unwrap_or(SLOTS);
        (self.starts[index], next - 1)
    }

    /// The port clients use on `node`.
    fn client_port(&self, node: &RedisServer) -> u16 {
        if self.tls {
            node.tls_port().unwrap_or(node.port())
        } else {
            node.port()
        }
    }

    /// Waits until every node says `cluster_state:ok`, knows every node, and all name the same
    /// holders of the same slots.
    fn wait_formed(&self) -> io::Result<()> {
        let deadline = Instant::now() + FORM_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.agreed_slots() {
                Ok(()) => return Ok(()),
                Err(state) => last = state.to_string(),
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
        Err(io::Error::other(format!(
            "the cluster did not form in {FORM_TIMEOUT:?}; last observed: {last}"
        )))
    }

    /// `Ok` when the cluster is formed (see [`Self::wait_formed`]), else what is missing.
    fn agreed_slots(&self) -> io::Result<()> {
        let mut views = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let info = node.command_line("CLUSTER INFO")?;
            let known = format!("cluster_known_nodes:{}", self.nodes.len());
            if !info.contains("cluster_state:ok") || !info.contains(&known) {
                return Err(io::Error::other(format!("node {i}: {info}")));
            }
            views.push(slot_holders(&node.command_line("CLUSTER NODES")?));
        }
        if views.windows(2).all(|w| w[0] == w[1]) && views[0].len() == self.nodes.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!("the nodes disagree: {views:?}")))
        }
    }
}

/// `address slots...` of each node holding slots in a `CLUSTER NODES` reply, sorted.
fn slot_holders(reply: &str) -> Vec<String> {
    let mut holders: Vec<String> = reply
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // id address flags master ping pong epoch link slots...
            let slots = fields.get(8..).filter(|s| !s.is_empty())?;
            let address = fields.get(1)?.split('@').next()?;
            Some(format!("{address} {}", slots.join(" ")))
        })
        .collect();
    holders.sort();
    holders
}

/// The cluster bus port `node` was started with.
fn bus_port(node: &RedisServer) -> io::Result<u16> {
    let reply = node.command_line("CONFIG GET cluster-port")?;
    // `*2`, `$12`, `cluster-port`, `$<n>`, `<port>`.
    reply
        .lines()
        .nth(4)
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("CONFIG GET cluster-port: {reply:?}")))
}

/// `Ok` when `reply` is `+OK`.
fn expect_ok(reply: String, what: &str) -> io::Result<()> {
    if reply.starts_with("+OK") {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what}: {reply}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_cluster_answers_and_spreads_its_slots() {
        let cluster = RedisCluster::start(3).unwrap();
        assert_eq!(cluster.nodes().len(), 3);
        let holders = slot_holders(&cluster.node(0).command_line("CLUSTER NODES").unwrap());
        assert_eq!(holders.len(), 3, "{holders:?}");
        // Keys land on different nodes, and a key's node is the one that stores it.
        let mut seen = std::collections::BTreeSet::new();
        for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let index = cluster.index_of_key(key).unwrap();
            seen.insert(index);
            let reply = cluster.command(index, &format!("SET {key} v")).unwrap();
            assert!(reply.starts_with("+OK"), "{key} on node {index}: {reply}");
        }
        assert!(seen.len() > 1, "{seen:?}");
        let elsewhere = (cluster.index_of_key("a").unwrap() + 1) % 3;
        let moved = cluster.command(elsewhere, "GET a").unwrap();
        assert!(moved.starts_with("-MOVED"), "{moved}");
    }
}
