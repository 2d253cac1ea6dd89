#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fencing against a real redis-server: a writer that claimed the log with an older epoch has
//! its appends and snapshot commits refused once another claimed it, whole, and nothing of the
//! refused batch reaches the stream; a writer deposed that way stops for good and reports it;
//! a fenced log passes the log's behaviour suite like an unfenced one; a fence lost with Redis
//! comes back with the next fenced append.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrolabe_persist::{
    EventLog, PersistError, PersistMetrics, SnapshotBlob, Writer, WriterConfig, wait_acked,
};
use astrolabe_testkit::RedisServer;
use bytes::Bytes;
use common::{all_seqs, batch, behaviour, blob, fenced, log, raw};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_older_epoch_is_refused_whole_and_the_newer_writes() {
    let server = RedisServer::start().unwrap();
    let (old, new) = (log(&server), log(&server));
    common::an_older_epoch_is_refused_whole_and_the_newer_writes(&old, &new).await;
}

#[tokio::test]
async fn a_fenced_log_behaves_as_a_log() {
    let server = RedisServer::start().unwrap();
    let l = log(&server);
    l.claim_epoch().await.unwrap();
    behaviour::appends_are_idempotent(&l).await;
    let l = common::log_with(&server, |c| c.cluster = "second".into());
    l.claim_epoch().await.unwrap();
    behaviour::snapshots_keep_the_previous_and_refuse_stale(&l).await;
    let l = common::log_with(&server, |c| c.cluster = "third".into());
    l.claim_epoch().await.unwrap();
    behaviour::reads_page_and_start_inside_a_batch(&l).await;
}

#[tokio::test]
async fn a_lost_fence_is_raised_again_by_the_writer_that_holds_the_newest_epoch() {
    let server = RedisServer::start().unwrap();
    let (old, new) = (log(&server), log(&server));
    old.claim_epoch().await.unwrap();
    new.claim_epoch().await.unwrap();
    // The fence key is lost (a failover to a replica that had not received it).
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("DEL")
        .arg(new.keys().fence())
        .query_async(&mut conn)
        .await
        .unwrap();
    new.append(&batch(1..=2)).await.unwrap();
    let fence: u64 = redis::cmd("GET")
        .arg(new.keys().fence())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fence, 2);
    assert_eq!(fenced(old.append(&batch(3..=3)).await), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_writer_stops_and_reports_it() {
    let server = RedisServer::start().unwrap();
    let (old, new) = (log(&server), log(&server));
    old.claim_epoch().await.unwrap();
    let source =
        Arc::new(|| -> astrolabe_persist::Result<SnapshotBlob> { Ok(blob(0, Vec::new())) });
    let metrics = PersistMetrics::unregistered().unwrap();
    let (tx, handle) = Writer::<_, _, (u64, Bytes)>::spawn(
        old.clone(),
        source,
        WriterConfig {
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            ..WriterConfig::default()
        },
        metrics.clone(),
        CancellationToken::new(),
    );
    let mut acked = handle.acked_seq();
    for (seq, payload) in batch(1..=10) {
        tx.send((seq, payload));
    }
    wait_acked(&mut acked, 10).await.unwrap();

    new.claim_epoch().await.unwrap();
    for (seq, payload) in batch(11..=20) {
        tx.send((seq, payload));
    }
    let deposed = handle.deposed();
    tokio::time::timeout(Duration::from_secs(30), deposed.cancelled())
        .await
        .expect("the writer learns it was deposed");
    assert_eq!(handle.fenced(), Some((1, 2)));
    assert_eq!(
        *acked.borrow(),
        10,
        "nothing acknowledged after the refusal"
    );
    assert!(matches!(
        handle.join().await,
        Err(PersistError::Fenced { ours: 1, stored: 2 })
    ));
    assert_eq!(all_seqs(&new).await, (1..=10).collect::<Vec<u64>>());
    let refused = metrics.redis_errors.with_label_values(&["fenced"]).get();
    assert!(refused >= 1, "the refusal is counted");
}
