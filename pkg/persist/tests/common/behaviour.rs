//! What the `EventLog` trait documents, asserted on any implementation: the Redis and the
//! in-memory log run these same checks (`tests/redis_log.rs`, `tests/memory_log.rs`).

use astrolabe_persist::{EventLog, Gap, PersistError, SnapshotBlob, SnapshotMeta};
use bytes::Bytes;

use super::{all_seqs, append_in, batch, blob, commit_each, payload};

/// Appends are idempotent, reads return each sequence once, a malformed batch is refused.
pub async fn appends_are_idempotent<L: EventLog>(log: &L) {
    let first = log.append(&batch(1..=10)).await.unwrap();
    assert_eq!((first.appended, first.already_present), (10, 0));
    let retry = log.append(&batch(1..=10)).await.unwrap();
    assert_eq!((retry.appended, retry.already_present), (0, 10));
    // A batch that overlaps the top: the new changes are written, each sequence read once.
    let overlap = log.append(&batch(8..=15)).await.unwrap();
    assert!(overlap.appended >= 5, "{overlap:?}");
    assert_eq!(all_seqs(log).await, (1..=15).collect::<Vec<_>>());
    assert_eq!(log.last_seq().await.unwrap(), Some(15));
    assert_eq!(log.first_seq().await.unwrap(), Some(1));
    assert!(matches!(
        log.append(&[(3, Bytes::new()), (2, Bytes::new())]).await,
        Err(PersistError::BatchOrder { .. })
    ));
    assert!(matches!(
        log.append(&[(0, Bytes::new())]).await,
        Err(PersistError::BatchOrder { .. })
    ));
}

/// An empty log has no sequences, no snapshot, no checkpoint and nothing to trim.
pub async fn an_empty_log_reads_empty<L: EventLog>(log: &L) {
    assert_eq!(log.last_seq().await.unwrap(), None);
    assert_eq!(log.first_seq().await.unwrap(), None);
    assert!(log.read_after(0, 10).await.unwrap().is_empty());
    assert!(log.load_snapshot().await.unwrap().is_none());
    assert!(log.load_previous_snapshot().await.unwrap().is_none());
    assert!(log.checkpoints().await.unwrap().is_empty());
    assert!(log.load_checkpoint(1).await.unwrap().is_none());
    assert_eq!(log.trim_to(100).await.unwrap().removed, 0);
    assert_eq!(log.sweep_orphans().await.unwrap(), 0);
}

/// Pages start strictly after `after`, even inside a batch, and cover the log once.
pub async fn reads_page_and_start_inside_a_batch<L: EventLog>(log: &L) {
    append_in(log, 1..=2500, 100).await;
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = log.read_after(after, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page[0].seq, after + 1, "exclusive start");
        assert_eq!(page[0].payload, payload(after + 1));
        after = page.last().unwrap().seq;
        pages += 1;
    }
    assert_eq!(after, 2500);
    assert!(pages >= 3, "{pages} pages of at most 10 entries");
    let page = log.read_after(1234, 2).await.unwrap();
    assert_eq!(page.first().map(|e| e.seq), Some(1235));
}

/// A commit replaces the committed snapshot and keeps the one it replaced as the previous
/// generation; an older snapshot never replaces a newer one.
pub async fn snapshots_keep_the_previous_and_refuse_stale<L: EventLog>(log: &L) {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let meta = log.write_snapshot(&blob(42, data.clone())).await.unwrap();
    assert_eq!(meta.covered_seq, 42);
    assert_eq!(meta.raw_bytes, data.len() as u64);
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta, meta);
    assert!(loaded.decompress().unwrap() == data);
    assert_eq!(log.snapshot_meta().await.unwrap(), Some(meta.clone()));

    let meta2 = log.write_snapshot(&blob(43, vec![7u8; 100])).await.unwrap();
    assert!(meta2.generation > meta.generation);
    let previous = log.load_previous_snapshot().await.unwrap().unwrap();
    assert_eq!(previous.meta, meta);
    assert!(previous.decompress().unwrap() == data);
    let committed = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(&committed.decompress().unwrap()[..], &[7u8; 100][..]);

    let stale = log.write_snapshot(&blob(10, vec![1])).await;
    assert!(
        matches!(
            stale,
            Err(PersistError::SnapshotSuperseded {
                covered_seq: 10,
                committed_seq: 43
            })
        ),
        "{stale:?}"
    );
    assert_eq!(log.snapshot_meta().await.unwrap(), Some(meta2));
}

/// A snapshot handed over already compressed (`zstd_raw_len`) is stored as it is.
pub async fn a_compressed_snapshot_is_stored_as_it_is<L: EventLog>(log: &L) {
    let data = vec![5u8; 10_000];
    let frames = zstd::bulk::compress(&data, 1).unwrap();
    let blob = SnapshotBlob {
        taken_at_ms: 0,
        seq: 7,
        resource_count: 1,
        bytes: Bytes::from(frames.clone()),
        zstd_raw_len: Some(data.len() as u64),
        copied_until: 7,
    };
    let meta = log.write_snapshot(&blob).await.unwrap();
    assert_eq!(
        (meta.bytes, meta.raw_bytes),
        (frames.len() as u64, data.len() as u64)
    );
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert!(loaded.compressed == frames);
    assert!(loaded.decompress().unwrap() == data);
}

/// With the default retention, the committed and the previous generation are the
/// checkpoints; the stream is trimmed behind the previous one only, and nothing while only
/// one generation exists. Returns the three commits.
pub async fn the_stream_is_trimmed_behind_the_previous_generation<L: EventLog>(
    log: &L,
) -> [SnapshotMeta; 3] {
    append_in(log, 1..=3000, 1).await;
    let first = log
        .write_snapshot(&blob(1000, vec![1u8; 64]))
        .await
        .unwrap();
    assert_eq!(log.checkpoints().await.unwrap(), vec![first.clone()]);
    assert_eq!(
        log.trim_to(1000).await.unwrap().upto,
        0,
        "one generation: no trim"
    );
    assert_eq!(log.first_seq().await.unwrap(), Some(1));
    let second = log
        .write_snapshot(&blob(2000, vec![2u8; 64]))
        .await
        .unwrap();
    assert_eq!(log.sweep_orphans().await.unwrap(), 0, "both kept");
    assert_eq!(
        log.checkpoints().await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    let trimmed = log.trim_to(2000).await.unwrap();
    assert_eq!(trimmed.upto, 1000);
    assert!(trimmed.removed > 0);
    let first_seq = log.first_seq().await.unwrap().unwrap();
    assert!(first_seq > 1 && first_seq <= 1001, "{first_seq}");

    let third = log
        .write_snapshot(&blob(2500, vec![3u8; 64]))
        .await
        .unwrap();
    assert_eq!(
        log.load_previous_snapshot().await.unwrap().unwrap().meta,
        second
    );
    assert_eq!(
        log.checkpoints().await.unwrap(),
        vec![second.clone(), third.clone()]
    );
    assert!(
        log.load_checkpoint(first.generation)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(log.trim_to(2500).await.unwrap().upto, 2000);
    [first, second, third]
}

/// The commit after recovery refused the committed generation drops that generation and keeps
/// the one recovery fell back to as the previous one. Returns the refused generation.
pub async fn a_refused_generation_is_not_kept<L: EventLog>(log: &L) -> SnapshotMeta {
    let fallback = log.write_snapshot(&blob(10, vec![1u8; 10])).await.unwrap();
    let refused = log.write_snapshot(&blob(20, vec![2u8; 10])).await.unwrap();
    log.refuse_generation(refused.generation);
    let next = log.write_snapshot(&blob(30, vec![3u8; 10])).await.unwrap();
    assert_eq!(
        log.load_previous_snapshot().await.unwrap().unwrap().meta,
        fallback
    );
    let listed = log.checkpoints().await.unwrap();
    assert!(listed.ends_with(&[fallback, next.clone()]), "{listed:?}");
    assert!(!listed.contains(&refused), "{listed:?}");
    assert!(
        log.load_checkpoint(refused.generation)
            .await
            .unwrap()
            .is_none()
    );
    // Only once: the next commit keeps the one it replaces again.
    let last = log.write_snapshot(&blob(40, vec![4u8; 10])).await.unwrap();
    let listed = log.checkpoints().await.unwrap();
    assert!(listed.ends_with(&[next, last]), "{listed:?}");
    refused
}

/// With a retention that keeps everything, a refused generation still goes, and the older
/// checkpoints stay.
pub async fn a_refused_generation_goes_and_older_checkpoints_stay<L: EventLog>(log: &L) {
    let first = log.write_snapshot(&blob(5, vec![9u8; 10])).await.unwrap();
    let refused = a_refused_generation_is_not_kept(log).await;
    let listed = log.checkpoints().await.unwrap();
    let covered: Vec<u64> = listed.iter().map(|m| m.covered_seq).collect();
    assert_eq!(covered, vec![5, 10, 30, 40]);
    assert_eq!(listed[0], first);
    assert!(
        log.load_checkpoint(first.generation)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        log.load_checkpoint(refused.generation)
            .await
            .unwrap()
            .is_none()
    );
}

/// Changes above a ceiling are set aside; appends above the last kept one succeed again.
pub async fn changes_beyond_a_ceiling_are_set_aside<L: EventLog>(log: &L) {
    append_in(log, 1..=10, 1).await;
    assert!(log.set_aside_beyond(10).await.unwrap().is_none());
    let aside = log.set_aside_beyond(5).await.unwrap().unwrap();
    assert_eq!((aside.entries, aside.kept), (5, 5));
    assert_eq!(log.last_seq().await.unwrap(), Some(5));
    let out = log.append(&batch(6..=7)).await.unwrap();
    assert_eq!(out.appended, 2);
    assert_eq!(all_seqs(log).await, (1..=7).collect::<Vec<_>>());
}

/// With a retention that keeps everything, every commit stays a checkpoint that loads and
/// verifies, and the stream is trimmed behind the oldest only.
pub async fn every_retained_checkpoint_loads<L: EventLog>(log: &L) -> Vec<SnapshotMeta> {
    append_in(log, 1..=400, 10).await;
    let mut commits = Vec::new();
    for seq in [100u64, 200, 300] {
        let data = vec![u8::try_from(seq / 100).unwrap(); 1000];
        commits.push(log.write_snapshot(&blob(seq, data)).await.unwrap());
    }
    let listed = log.checkpoints().await.unwrap();
    assert_eq!(listed, commits);
    for meta in &listed {
        let loaded = log.load_checkpoint(meta.generation).await.unwrap().unwrap();
        assert_eq!(&loaded.meta, meta);
        let expected = vec![u8::try_from(meta.covered_seq / 100).unwrap(); 1000];
        assert!(loaded.decompress().unwrap() == expected);
    }
    assert_eq!(log.sweep_orphans().await.unwrap(), 0);
    assert_eq!(log.trim_to(400).await.unwrap().upto, 100);
    let first = log.first_seq().await.unwrap().unwrap();
    assert!(first <= 101, "{first}");
    listed
}

/// With a retention of 1500 changes, four commits 1000 changes apart keep three checkpoints:
/// the oldest goes (its successor is outside retention), its successor stays (points inside
/// retention lie before the next one), and the stream is never trimmed past the oldest kept.
/// Returns the dropped checkpoint.
pub async fn retention_drops_what_no_point_inside_it_needs<L: EventLog>(log: &L) -> SnapshotMeta {
    append_in(log, 1..=4000, 100).await;
    let commits = commit_each(log, &[1000, 2000, 3000, 4000], 1, 64).await;
    assert_eq!(log.checkpoints().await.unwrap(), commits[1..].to_vec());
    assert!(
        log.load_checkpoint(commits[0].generation)
            .await
            .unwrap()
            .is_none()
    );
    let trimmed = log.trim_to(4000).await.unwrap();
    assert_eq!(trimmed.upto, 2000);
    let first = log.first_seq().await.unwrap().unwrap();
    assert!(first > 1 && first <= 2001, "{first}");
    let kept = log.load_checkpoint(commits[1].generation).await.unwrap();
    assert!(kept.is_some_and(|c| c.decompress().unwrap() == vec![1u8; 64]));
    commits[0].clone()
}

/// Gaps are recorded and read back by overlap; those older than retention's age are forgotten.
/// `log` keeps one hour.
pub async fn gaps_are_kept_and_read_by_overlap<L: EventLog>(log: &L) {
    let now = astrolabe_model::now_ms();
    let gap = |kind: Option<&str>, from: i64, to: i64| Gap {
        kind: kind.map(str::to_owned),
        namespace: None,
        from_ms: now - from,
        to_ms: now - to,
        reason: "watch failed:\tconnection\nrefused".to_owned(),
    };
    let old = gap(Some("Pod"), 3 * 3_600_000, 2 * 3_600_000);
    let down = gap(None, 600_000, 300_000);
    let pods = gap(Some("Certificate.cert-manager.io"), 200_000, 100_000);
    for g in [&old, &down, &pods] {
        log.record_gap(g).await.unwrap();
    }
    let all = log.gaps(i64::MIN, i64::MAX).await.unwrap();
    let reasons: Vec<&str> = all.iter().map(|g| g.reason.as_str()).collect();
    assert_eq!(reasons, ["watch failed: connection refused"; 2], "{all:?}");
    assert_eq!(all[0].kind, None, "by end time, the server's gap first");
    assert_eq!(all[1].kind.as_deref(), Some("Certificate.cert-manager.io"));
    // Overlap: a point inside the first gap, a span touching the second only at its start.
    let at = log.gaps(now - 400_000, now - 400_000).await.unwrap();
    assert_eq!(at.len(), 1);
    assert_eq!(at[0].from_ms, down.from_ms);
    let span = log.gaps(now - 100_000, now).await.unwrap();
    assert_eq!(span.len(), 1);
    assert_eq!(span[0].to_ms, pods.to_ms);
    assert!(log.gaps(now - 50_000, now).await.unwrap().is_empty());
}
