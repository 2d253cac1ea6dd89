#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Redis Sentinel with real processes: a master, a replica and three `redis-sentinel`s. The log
//! finds the master the sentinels name; after the master is killed (kill -9) and the sentinels
//! promote the replica, the log follows it (the redis crate does not by itself): appends land
//! on the new master, and a tail reads them there.

mod common;

use std::time::Duration;

use astrolabe_persist::{EventLog, RedisConfig, RedisLog, RedisTarget};
use astrolabe_testkit::{RedisServer, Sentinels};
use common::{all_seqs, batch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_follows_the_master_across_a_sentinel_failover() {
    let mut master = RedisServer::start().unwrap();
    let replica = RedisServer::start().unwrap();
    replica.replicate(master.port()).unwrap();
    let sentinels = Sentinels::start(master.port(), "mymaster", 2, 3).unwrap();

    // The configured address is nowhere: only the sentinels say where the master is.
    let target = RedisTarget {
        addr: "127.0.0.1:1".to_owned(),
        sentinels: sentinels.addrs(),
        sentinel_master: "mymaster".to_owned(),
        ..RedisTarget::default()
    };
    let mut config = RedisConfig::new(target.connection_info().unwrap(), "sentinel");
    config.sentinel = target.sentinel().unwrap();
    config.connect_timeout = Duration::from_millis(500);
    config.response_timeout = Duration::from_secs(1);
    let log = RedisLog::new(&config).unwrap();
    astrolabe_testkit::eventually(
        "the log reaches the master",
        Duration::from_secs(20),
        || {
            let log = log.clone();
            async move {
                log.append(&batch(1..=10))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    // On the replica too before the master goes.
    let waited = master.command_line("WAIT 1 5000").unwrap();
    assert!(waited.starts_with(":1"), "{waited}");
    let tail = log.tail().unwrap();

    master.kill9();
    astrolabe_testkit::eventually(
        "the sentinels promote the replica, and the log follows",
        Duration::from_secs(60),
        || {
            let log = log.clone();
            async move {
                log.append(&batch(11..=20))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        },
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
