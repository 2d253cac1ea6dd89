#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Keys of the wrong Redis type against a real redis-server: recovery uses the other keys,
//! names the damaged one, and leaves it as it is.

mod common;

use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, EventLog, Fallback, KeyRole, PersistMetrics, recover,
};
use astrolabe_testkit::RedisServer;
use common::{ToyDecoder, batch, log, raw, toy_snapshot};
use redis::AsyncCommands;

#[tokio::test]
async fn a_stream_key_of_another_type_recovers_from_the_snapshot_alone() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=30)).await.unwrap();
    log.write_snapshot(&toy_snapshot(20)).await.unwrap();
    let events = log.keys().events().to_owned();
    let mut conn = raw(&server).await;
    let _: () = conn.del(&events).await.unwrap();
    let _: () = conn.set(&events, "garbage").await.unwrap();

    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(r.snapshot.as_deref(), Some(&[0xaa][..]));
    assert_eq!((r.snapshot_seq, r.last_seq), (20, 20));
    assert!(r.tail.is_empty());
    assert_eq!(r.wrong_type, vec![KeyRole::Events]);
    assert!(m.is_damaged(KeyRole::Events) && !m.is_damaged(KeyRole::Snapshot));
    // Appends are refused and named as the damage; the key is left as it was.
    let e = log.append(&batch(21..=22)).await.unwrap_err();
    assert_eq!(e.wrong_type_key(), Some(KeyRole::Events), "{e:#}");
    let kept: String = conn.get(&events).await.unwrap();
    assert_eq!(kept, "garbage");
}

#[tokio::test]
async fn a_metadata_key_of_another_type_recovers_from_the_stream_start() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=30)).await.unwrap();
    let meta = log.keys().snapshot_meta().to_owned();
    let mut conn = raw(&server).await;
    let _: () = conn.set(&meta, "garbage").await.unwrap();

    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(r.tail, (1..=30).collect::<Vec<_>>());
    assert_eq!(r.last_seq, 30);
    assert_eq!(r.wrong_type, vec![KeyRole::Snapshot]);
    assert!(m.is_damaged(KeyRole::Snapshot) && !m.is_damaged(KeyRole::Events));
    // Snapshots are refused and named as the damage; the key is left as it was.
    let e = log.write_snapshot(&toy_snapshot(30)).await.unwrap_err();
    assert_eq!(e.wrong_type_key(), Some(KeyRole::Snapshot), "{e:#}");
    let kept: String = conn.get(&meta).await.unwrap();
    assert_eq!(kept, "garbage");
}

#[tokio::test]
async fn a_previous_record_of_another_type_is_named_and_snapshots_go_on() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=30)).await.unwrap();
    let previous = log.keys().previous_meta().to_owned();
    let mut conn = raw(&server).await;
    let _: () = conn.set(&previous, "garbage").await.unwrap();

    // Commits go on without keeping the generation they replace; the stream is not trimmed.
    log.write_snapshot(&toy_snapshot(10)).await.unwrap();
    let committed = log.write_snapshot(&toy_snapshot(20)).await.unwrap();
    let e = log.trim_to(20).await.unwrap_err();
    assert_eq!(e.wrong_type_key(), Some(KeyRole::PreviousSnapshot), "{e:#}");
    assert_eq!(log.first_seq().await.unwrap(), Some(1));

    // The committed snapshot damaged too: the whole stream, and the previous record named.
    let _: () = conn
        .del(log.keys().chunk(committed.generation, 0))
        .await
        .unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(r.fallback, Some(Fallback::WholeStream));
    assert_eq!(r.tail, (1..=30).collect::<Vec<_>>());
    assert_eq!(r.wrong_type, vec![KeyRole::PreviousSnapshot]);
    assert!(m.is_damaged(KeyRole::PreviousSnapshot) && !m.is_damaged(KeyRole::Snapshot));
    let kept: String = conn.get(&previous).await.unwrap();
    assert_eq!(kept, "garbage");
}
