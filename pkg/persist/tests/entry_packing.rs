#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Measurement (ignored by default): one change per stream entry vs several per entry.
//! `cargo test -p astrolabe-persist --test entry_packing -- --ignored --nocapture`

mod common;

use std::time::Instant;

use astrolabe_persist::EventLog;
use astrolabe_persist::testing::RedisServer;
use bytes::Bytes;

const CHANGES: u64 = 200_000;
const SIZE: usize = 200;

#[tokio::test]
#[ignore = "measurement"]
async fn one_vs_many_changes_per_entry() {
    for per_entry in [1u64, 4, 16, 64] {
        let server = RedisServer::start().unwrap();
        let log = common::log(&server);
        let entries = CHANGES / per_entry;
        let payload = Bytes::from(vec![7u8; SIZE * per_entry as usize]);
        // Batches of ~1024 changes per round trip in every variant.
        let per_batch = (1024 / per_entry).max(1);
        let started = Instant::now();
        let mut seq = 0;
        while seq < entries {
            let batch: Vec<(u64, Bytes)> = (seq + 1..=(seq + per_batch).min(entries))
                .map(|s| (s, payload.clone()))
                .collect();
            seq = batch.last().unwrap().0;
            log.append(&batch).await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{per_entry:>3} changes/entry: {:>9.0} changes/s ({entries} entries)",
            CHANGES as f64 / secs
        );
    }
}
