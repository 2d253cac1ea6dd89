#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Redis Sentinel with real processes: a master, a replica and three `redis-sentinel`s. The log
//! finds the master the sentinels name; after the master is killed (kill -9) and the sentinels
//! promote the replica, the log follows it (the redis crate does not by itself): appends land
//! on the new master, and a tail reads them there. With a password, the log authenticates to
//! each master it follows. Over TLS (a `rediss://` URL, mutual TLS everywhere), the log asks the
//! sentinels over TLS and follows the master to the TLS port they name.

mod common;

use std::ops::RangeInclusive;
use std::time::Duration;

use astrolabe_persist::{EventLog, RedisConfig, RedisLog, RedisTarget, RedisTls};
use astrolabe_testkit::redis::answers_plain_ping;
use astrolabe_testkit::{RedisServer, Sentinels, TestPki};
use common::{all_seqs, batch, blob};

/// A log whose only way to the master is `sentinels` (the configured address is nowhere).
fn log_through(sentinels: &Sentinels, password: Option<&str>, cluster: &str) -> RedisLog {
    let target = RedisTarget {
        addr: "127.0.0.1:1".to_owned(),
        password: password.map(str::to_owned),
        sentinels: sentinels.addrs(),
        sentinel_master: "mymaster".to_owned(),
        ..RedisTarget::default()
    };
    log_for(&target, cluster)
}

/// A log configured from `target`, with short timeouts.
fn log_for(target: &RedisTarget, cluster: &str) -> RedisLog {
    let mut config = RedisConfig::new(target.connection_info().unwrap(), cluster);
    config.sentinel = target.sentinel().unwrap();
    config.connect_timeout = Duration::from_millis(500);
    config.response_timeout = Duration::from_secs(1);
    RedisLog::new(&config).unwrap()
}

/// Appends `seqs` once the log can (60 s at most).
async fn appended(log: &RedisLog, seqs: RangeInclusive<u64>, what: &str) {
    astrolabe_testkit::eventually(what, Duration::from_secs(60), || {
        let (log, seqs) = (log.clone(), seqs.clone());
        async move {
            log.append(&batch(seqs))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await;
}

/// A master and its replica (both requiring `password` when given), and three sentinels.
fn cluster(password: Option<&str>) -> (RedisServer, RedisServer, Sentinels) {
    let master = RedisServer::start().unwrap();
    let replica = RedisServer::start().unwrap();
    if let Some(pw) = password {
        master.require_password(pw).unwrap();
        replica.require_password(pw).unwrap();
    }
    replica
        .replicate_with_auth(master.port(), password)
        .unwrap();
    let sentinels = Sentinels::start_with_auth(master.port(), "mymaster", 2, 3, password).unwrap();
    (master, replica, sentinels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_follows_the_master_across_a_sentinel_failover() {
    let (mut master, replica, sentinels) = cluster(None);
    let log = log_through(&sentinels, None, "sentinel");
    appended(&log, 1..=10, "the log reaches the master").await;
    // On the replica too before the master goes.
    let waited = master.command_line("WAIT 1 5000").unwrap();
    assert!(waited.starts_with(":1"), "{waited}");
    let tail = log.tail().unwrap();

    master.kill9();
    appended(
        &log,
        11..=20,
        "the sentinels promote the replica, and the log follows",
    )
    .await;
    assert_eq!(sentinels.master_port().unwrap(), replica.port());
    assert_eq!(all_seqs(&log).await, (1..=20).collect::<Vec<u64>>());
    let read = tail
        .read_after(10, 100, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (11..=20).collect::<Vec<u64>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_password_the_log_authenticates_to_each_master_it_follows() {
    const PASSWORD: &str = "sentinel-test-password";
    let (mut master, _replica, sentinels) = cluster(Some(PASSWORD));
    let log = log_through(&sentinels, Some(PASSWORD), "sentinel-auth");
    appended(&log, 1..=5, "the log reaches the master").await;
    let waited = master.command_as(Some(PASSWORD), "WAIT 1 5000").unwrap();
    assert!(waited.starts_with(":1"), "{waited}");

    master.kill9();
    appended(&log, 6..=10, "the log follows the promoted replica").await;
    assert_eq!(all_seqs(&log).await, (1..=10).collect::<Vec<u64>>());
}

/// The port of a `127.0.0.1:<port>` address.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_log_asks_the_sentinels_and_follows_the_master_to_its_tls_port() {
    let pki = TestPki::generate().unwrap();
    // Mutual TLS everywhere: a client without a certificate of the test CA is refused.
    let mut master = RedisServer::start_tls(&pki, true).unwrap();
    let replica = RedisServer::start_tls(&pki, true).unwrap();
    let (master_tls, replica_tls) = (master.tls_port().unwrap(), replica.tls_port().unwrap());
    replica.replicate_tls(master_tls).unwrap();
    let sentinels = Sentinels::start_tls(master_tls, "mymaster", 2, 3, &pki).unwrap();
    let sentinel_addrs = sentinels.tls_addrs().unwrap();
    // What the sentinels serve and name speaks TLS only: a plain client gets nowhere.
    for addr in &sentinel_addrs {
        assert!(!answers_plain_ping(port_of(addr)), "{addr} answers plain");
    }
    assert_eq!(sentinels.master_port().unwrap(), master_tls);
    assert!(!answers_plain_ping(master_tls) && !answers_plain_ping(replica_tls));

    // Only a rediss:// URL (its address is nowhere) and the TLS sentinels.
    let target = RedisTarget {
        url: Some("rediss://127.0.0.1:1/".to_owned()),
        tls: RedisTls {
            ca_file: Some(pki.path(TestPki::CA)),
            client_cert: Some(pki.path(TestPki::CLIENT_CERT)),
            client_key: Some(pki.path(TestPki::CLIENT_KEY)),
            ..RedisTls::default()
        },
        sentinels: sentinel_addrs,
        sentinel_master: "mymaster".to_owned(),
        ..RedisTarget::default()
    };
    let log = log_for(&target, "sentinel-tls");
    appended(&log, 1..=10, "the log reaches the master over TLS").await;
    let snapshot = log.write_snapshot(&blob(10, vec![7; 64])).await.unwrap();
    let waited = master.command_line("WAIT 1 5000").unwrap();
    assert!(waited.starts_with(":1"), "{waited}");

    master.kill9();
    appended(
        &log,
        11..=20,
        "the sentinels promote the replica, and the log follows it over TLS",
    )
    .await;
    // The master is now the replica, named by its TLS port.
    assert_eq!(sentinels.master_port().unwrap(), replica_tls);
    let role = replica.command_line("ROLE").unwrap();
    assert!(role.contains("master"), "{role}");
    // The log's appends are in the promoted replica's stream (entry IDs are `<seq>-1`).
    let top = replica
        .command_line("XREVRANGE astrolabe:{sentinel-tls}:events + - COUNT 1")
        .unwrap();
    assert!(top.contains("20-1"), "{top}");
    assert_eq!(all_seqs(&log).await, (1..=20).collect::<Vec<u64>>());
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta, snapshot);
}
