#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Redis Sentinel with real processes: a master, a replica and three `redis-sentinel`s. The log
//! finds the master the sentinels name; after the master is killed (kill -9) and the sentinels
//! promote the replica, the log follows it (the redis crate does not by itself): appends land
//! on the new master, and a tail reads them there. With a password, the log authenticates to
//! each master it follows.

mod common;

use std::ops::RangeInclusive;
use std::time::Duration;

use astrolabe_persist::{EventLog, RedisConfig, RedisLog, RedisTarget};
use astrolabe_testkit::{RedisServer, Sentinels};
use common::{all_seqs, batch};

/// A log whose only way to the master is `sentinels` (the configured address is nowhere).
fn log_through(sentinels: &Sentinels, password: Option<&str>, cluster: &str) -> RedisLog {
    let target = RedisTarget {
        addr: "127.0.0.1:1".to_owned(),
        password: password.map(str::to_owned),
        sentinels: sentinels.addrs(),
        sentinel_master: "mymaster".to_owned(),
        ..RedisTarget::default()
    };
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
