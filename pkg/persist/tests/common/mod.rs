//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod behaviour;

use std::time::Duration;

use astrolabe_persist::{
    Decoder, EventLog, PersistError, RedisConfig, RedisLog, Result, SnapshotBlob,
};
use astrolabe_testkit::RedisServer;
use bytes::Bytes;

/// A log on `server` for cluster `test`.
pub fn log(server: &RedisServer) -> RedisLog {
    log_with(server, |_| {})
}

/// A log with a tweaked config.
pub fn log_with(server: &RedisServer, tweak: impl FnOnce(&mut RedisConfig)) -> RedisLog {
    let mut cfg = RedisConfig::from_url(&server.url(), "test").unwrap();
    cfg.connect_timeout = Duration::from_millis(500);
    tweak(&mut cfg);
    RedisLog::new(&cfg).expect("log")
}

/// A raw redis connection for poking at keys directly.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Payload in the toy format used by the byte-level tests: version byte 1, then the seq.
pub fn payload(seq: u64) -> Bytes {
    let mut v = vec![1u8];
    v.extend_from_slice(&seq.to_le_bytes());
    Bytes::from(v)
}

/// `(seq, payload(seq))` for every seq in the range.
pub fn batch(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Bytes)> {
    range.map(|s| (s, payload(s))).collect()
}

/// Append `range` in batches of `per_batch` changes (one or more stream entries each).
pub async fn append_in<L: EventLog>(log: &L, range: std::ops::RangeInclusive<u64>, per_batch: u64) {
    let (mut start, end) = range.into_inner();
    while start <= end {
        let stop = (start + per_batch - 1).min(end);
        log.append(&batch(start..=stop)).await.unwrap();
        start = stop + 1;
    }
}

/// Commits one snapshot at each of `seqs`, each holding `len` copies of `byte`, in order.
pub async fn commit_each<L: EventLog>(
    log: &L,
    seqs: &[u64],
    byte: u8,
    len: usize,
) -> Vec<astrolabe_persist::SnapshotMeta> {
    let mut commits = Vec::with_capacity(seqs.len());
    for seq in seqs {
        commits.push(
            log.write_snapshot(&blob(*seq, vec![byte; len]))
                .await
                .unwrap(),
        );
    }
    commits
}

/// A snapshot of one resource at `seq` whose payload is `bytes`.
pub fn blob(seq: u64, bytes: Vec<u8>) -> SnapshotBlob {
    SnapshotBlob {
        taken_at_ms: 0,
        zstd_raw_len: None,
        seq,
        copied_until: seq,
        resource_count: 1,
        bytes: Bytes::from(bytes),
    }
}

/// A snapshot in the toy format at `seq`, holding the byte `0xaa`.
pub fn toy_snapshot(seq: u64) -> SnapshotBlob {
    SnapshotBlob {
        taken_at_ms: 0,
        zstd_raw_len: None,
        seq,
        copied_until: seq,
        resource_count: 0,
        bytes: Bytes::from(vec![1, 0xaa]),
    }
}

/// Decoder of the toy format: changes decode to their seq, snapshots to their bytes.
#[derive(Clone, Copy)]
pub struct ToyDecoder;

impl Decoder for ToyDecoder {
    type Snapshot = Vec<u8>;
    type Change = u64;

    fn decode_snapshot(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        match bytes.first() {
            Some(1) => Ok(bytes[1..].to_vec()),
            Some(v) => Err(PersistError::UnknownFormat {
                what: "snapshot",
                found: u32::from(*v),
                supported: 1,
            }),
            None => Err(PersistError::SnapshotDecode("empty".into())),
        }
    }

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<u64> {
        match bytes {
            [1, rest @ ..] if rest.len() == 8 => {
                let v = u64::from_le_bytes(rest.try_into().unwrap());
                if v == seq {
                    Ok(v)
                } else {
                    Err(PersistError::EntryDecode {
                        seq,
                        source: "seq mismatch".into(),
                    })
                }
            }
            _ => Err(PersistError::EntryDecode {
                seq,
                source: "bad payload".into(),
            }),
        }
    }
}

/// Every sequence in the stream, oldest first.
pub async fn all_seqs<L: EventLog>(log: &L) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = log.read_after(after, 1000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        after = page.last().unwrap().seq;
        out.extend(page.iter().map(|e| e.seq));
    }
}

/// The epochs of a write refused by the fence; panics on any other outcome.
pub fn fenced(result: Result<impl std::fmt::Debug>) -> (u64, u64) {
    match result {
        Err(PersistError::Fenced { ours, stored }) => (ours, stored),
        other => panic!("expected a fenced write, got {other:?}"),
    }
}

/// Two writers of one log: once `new` claims it after `old`, `old`'s appends and snapshot
/// commits are refused whole and nothing of them is left, while `new` continues.
pub async fn an_older_epoch_is_refused_whole_and_the_newer_writes(old: &RedisLog, new: &RedisLog) {
    assert_eq!(old.claim_epoch().await.unwrap(), 1);
    old.append(&batch(1..=3)).await.unwrap();
    old.write_snapshot(&blob(3, b"three".to_vec()))
        .await
        .unwrap();

    // Another replica takes over: its claim fences the old writer off.
    assert_eq!(new.claim_epoch().await.unwrap(), 2);
    assert_eq!(fenced(old.append(&batch(4..=6)).await), (1, 2));
    assert_eq!(
        fenced(old.write_snapshot(&blob(6, b"six".to_vec())).await),
        (1, 2)
    );
    assert_eq!(
        all_seqs(new).await,
        vec![1, 2, 3],
        "nothing of the refused batch"
    );
    assert_eq!(new.snapshot_meta().await.unwrap().unwrap().covered_seq, 3);

    // The new writer continues the sequence, and commits.
    new.append(&batch(4..=5)).await.unwrap();
    new.write_snapshot(&blob(5, b"five".to_vec()))
        .await
        .unwrap();
    assert_eq!(all_seqs(new).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(new.snapshot_meta().await.unwrap().unwrap().covered_seq, 5);
    // No chunk of the refused generation is left behind.
    assert_eq!(new.sweep_orphans().await.unwrap(), 0);
}

/// A follower's tail of `log`: a read finds nothing yet, starts inside a batch, and a read after
/// the top waits for the next append, blocked in Redis (`client_list`: the `CLIENT LIST` of the
/// server holding the log) before that append is made.
pub async fn a_tail_waits_for_the_next_entries_and_starts_inside_a_batch(
    log: &RedisLog,
    client_list: impl Fn() -> String,
) {
    let tail = log.tail().unwrap();
    // Nothing yet: the block times out empty.
    assert!(
        tail.read_after(0, 16, Duration::from_millis(20))
            .await
            .unwrap()
            .is_empty()
    );
    log.append(&batch(1..=3)).await.unwrap();
    let seqs = |entries: Vec<astrolabe_persist::LogEntry>| {
        entries.into_iter().map(|e| e.seq).collect::<Vec<u64>>()
    };
    // One entry holds 1..=3: a tail after 2 gets 3 only.
    assert_eq!(
        seqs(
            tail.read_after(2, 16, Duration::from_millis(20))
                .await
                .unwrap()
        ),
        vec![3]
    );
    let waiting =
        tokio::spawn(async move { tail.read_after(3, 16, Duration::from_secs(10)).await });
    astrolabe_testkit::eventually("the tail's read blocks", Duration::from_secs(10), || {
        let clients = client_list();
        let blocked = clients
            .lines()
            .any(|c| c.contains("cmd=xread") && c.contains("flags=b"));
        async move { if blocked { Ok(()) } else { Err(clients) } }
    })
    .await;
    assert!(!waiting.is_finished());
    log.append(&batch(4..=5)).await.unwrap();
    assert_eq!(seqs(waiting.await.unwrap().unwrap()), vec![4, 5]);
}
