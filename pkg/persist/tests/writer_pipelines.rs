#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The writer with several appends in flight, against an in-memory log that can fail one batch
//! half way while the batches after it land: the hole is detected on the retry (entries reported
//! present are read back) and a snapshot supersedes the log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astrolabe_persist::{
    AppendOutcome, EventLog, LoadedSnapshot, LogEntry, PersistError, PersistMetrics, Result,
    SNAPSHOT_FORMAT, SendOutcome, SnapshotBlob, SnapshotMeta, TrimOutcome, Writer, WriterConfig,
    wait_acked,
};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// A stream in memory. `fail_at`: the first append whose batch starts there writes only its
/// first half, then fails (once).
#[derive(Clone, Default)]
struct MemLog(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    entries: BTreeMap<u64, Bytes>,
    fail_at: Option<u64>,
    snapshot: Option<SnapshotMeta>,
}

impl MemLog {
    fn apply(&self, batch: &[(u64, Bytes)]) -> Result<AppendOutcome> {
        let mut s = self.0.lock().unwrap();
        let fail = s
            .fail_at
            .is_some_and(|at| batch.first().is_some_and(|b| b.0 == at));
        let take = if fail { batch.len() / 2 } else { batch.len() };
        let mut out = AppendOutcome::default();
        for (seq, payload) in &batch[..take] {
            if s.entries.keys().next_back().is_some_and(|top| seq <= top) {
                out.already_present += 1;
            } else {
                s.entries.insert(*seq, payload.clone());
                out.appended += 1;
            }
        }
        if fail {
            s.fail_at = None;
            return Err(PersistError::AppendFailed {
                count: batch.len(),
                source: redis::RedisError::from((redis::ErrorKind::Io, "injected")),
            });
        }
        Ok(out)
    }
}

impl EventLog for MemLog {
    async fn append(&self, batch: &[(u64, Bytes)]) -> Result<AppendOutcome> {
        // Like Redis: applied when sent (on the first poll), answered later, so several appends
        // are in flight together.
        let result = self.apply(batch);
        tokio::time::sleep(Duration::from_millis(2)).await;
        result
    }

    async fn last_seq(&self) -> Result<Option<u64>> {
        Ok(self.0.lock().unwrap().entries.keys().next_back().copied())
    }

    async fn first_seq(&self) -> Result<Option<u64>> {
        Ok(self.0.lock().unwrap().entries.keys().next().copied())
    }

    async fn read_after(&self, after: u64, page_size: usize) -> Result<Vec<LogEntry>> {
        let s = self.0.lock().unwrap();
        Ok(s.entries
            .range(after + 1..)
            .take(page_size)
            .map(|(seq, payload)| LogEntry {
                seq: *seq,
                payload: payload.clone(),
            })
            .collect())
    }

    async fn trim_to(&self, _upto: u64) -> Result<TrimOutcome> {
        Ok(TrimOutcome::default())
    }

    async fn write_snapshot(&self, blob: &SnapshotBlob) -> Result<SnapshotMeta> {
        let meta = SnapshotMeta {
            format: SNAPSHOT_FORMAT,
            generation: 1,
            chunks: 1,
            covered_seq: blob.seq,
            stream_id: format!("{}-1", blob.seq),
            created_at_ms: 0,
            resource_count: blob.resource_count,
            bytes: blob.bytes.len() as u64,
            raw_bytes: blob.bytes.len() as u64,
            checksum: 0,
        };
        self.0.lock().unwrap().snapshot = Some(meta.clone());
        Ok(meta)
    }

    async fn snapshot_meta(&self) -> Result<Option<SnapshotMeta>> {
        Ok(self.0.lock().unwrap().snapshot.clone())
    }

    async fn load_snapshot(&self) -> Result<Option<LoadedSnapshot>> {
        Ok(None)
    }

    async fn sweep_orphans(&self) -> Result<u64> {
        Ok(0)
    }
}

const N: u64 = 200;

fn config(pipelines: usize) -> WriterConfig {
    WriterConfig {
        max_batch: 10,
        pipelines,
        retry_min: Duration::from_millis(1),
        retry_max: Duration::from_millis(10),
        ..WriterConfig::default()
    }
}

/// Send 1..=N at once, wait for every ack; returns the log and whether a snapshot was needed.
async fn run(log: MemLog, pipelines: usize) -> Option<SnapshotMeta> {
    let source = Arc::new(|| -> Result<SnapshotBlob> {
        Ok(SnapshotBlob {
            seq: N,
            resource_count: 0,
            bytes: Bytes::from_static(b"state"),
        })
    });
    let cancel = CancellationToken::new();
    let (tx, handle) = Writer::<_, _, (u64, Bytes)>::spawn(
        log.clone(),
        source,
        config(pipelines),
        PersistMetrics::unregistered().unwrap(),
        cancel.clone(),
    );
    let mut acked = handle.acked_seq();
    for seq in 1..=N {
        assert_eq!(
            tx.send((seq, Bytes::from(seq.to_string()))),
            SendOutcome::Queued
        );
    }
    tokio::time::timeout(Duration::from_secs(10), wait_acked(&mut acked, N))
        .await
        .expect("acked in time")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while handle.is_diverged() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("divergence resolved in time");
    cancel.cancel();
    handle.join().await.unwrap();
    log.snapshot_meta().await.unwrap()
}

#[tokio::test]
async fn pipelined_appends_without_failures_write_everything_in_order() {
    let log = MemLog::default();
    assert!(run(log.clone(), 4).await.is_none(), "no snapshot needed");
    let seqs: Vec<u64> = log.0.lock().unwrap().entries.keys().copied().collect();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_hole_behind_a_later_batch_is_detected_and_superseded_by_a_snapshot() {
    let log = MemLog::default();
    log.0.lock().unwrap().fail_at = Some(11);
    let snapshot = run(log.clone(), 4).await;
    let s = log.0.lock().unwrap();
    // The injected hole stays (changes after the divergence may be left to the snapshot too).
    assert!((1..=15).all(|q| s.entries.contains_key(&q)));
    assert!((16..=20).all(|q| !s.entries.contains_key(&q)));
    assert!(
        s.entries.contains_key(&21),
        "the batch after the hole landed"
    );
    let snapshot = snapshot.expect("a snapshot superseded the log with a hole");
    assert_eq!(snapshot.covered_seq, N);
}

#[tokio::test]
async fn one_pipeline_retries_a_partial_batch_without_a_hole() {
    let log = MemLog::default();
    log.0.lock().unwrap().fail_at = Some(11);
    assert!(run(log.clone(), 1).await.is_none(), "no snapshot needed");
    let seqs: Vec<u64> = log.0.lock().unwrap().entries.keys().copied().collect();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
}
