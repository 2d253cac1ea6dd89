//! What persistence needs from its caller: records to append ([`Record`]) and, when asked, the
//! whole state encoded at a known sequence ([`SnapshotSource`]).

use bytes::Bytes;

use crate::error::Result;
use crate::log::SnapshotBlob;

/// A change as the writer sees it: a sequence number and a way to encode it. Encoding runs on
/// the writer task, not on the producer.
pub trait Record: Send + 'static {
    /// The change's sequence number (> 0, strictly increasing in send order).
    fn seq(&self) -> u64;

    /// The stream payload.
    ///
    /// # Errors
    /// [`crate::PersistError::Encode`] if the change cannot be encoded (the writer then treats
    /// the change as dropped and the log as diverged).
    fn encode(&self) -> Result<Bytes>;

    /// Append the stream payload to `out` (the writer encodes a whole batch into one buffer).
    /// The default copies [`Record::encode`]'s result.
    ///
    /// # Errors
    /// As [`Record::encode`]; `out` may then hold a partial encoding after its previous length.
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.encode()?);
        Ok(())
    }

    /// What the writer remembers of the records it encoded, to encode the next ones smaller
    /// (for model changes: each object's last version, so that an update is written as the
    /// fields that changed). The writer starts it empty and empties it whenever the log may
    /// have lost a record (see [`Record::encode_remembering`]).
    type Memory: Default + Send + 'static;

    /// Append the stream payload to `out`, given what the writer remembers of the records
    /// before this one (all of them, in order, since `memory` was last emptied), and remember
    /// this one. A payload may depend on earlier records only through what `memory` holds;
    /// readers resolve it against the state those records left.
    ///
    /// # Errors
    /// As [`Record::encode`]; the writer then empties `memory`.
    fn encode_remembering(&self, memory: &mut Self::Memory, out: &mut Vec<u8>) -> Result<()>;
}

/// Pre-encoded records, for tests and for callers that encode themselves.
impl Record for (u64, Bytes) {
    fn seq(&self) -> u64 {
        self.0
    }

    fn encode(&self) -> Result<Bytes> {
        Ok(self.1.clone())
    }

    type Memory = ();

    fn encode_remembering(&self, (): &mut (), out: &mut Vec<u8>) -> Result<()> {
        self.encode_into(out)
    }
}

/// The live state (the graph), able to hand out its encoded contents and the sequence of the
/// last change they include, without blocking its readers. Called by [`take_snapshot`] on a
/// thread of its own, at normal priority.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Encode the whole current state: copy it under whatever short locks it needs, then lower
    /// the thread's priority and encode ([`crate::copy_then_encode`] does both in that order).
    /// A thread at background priority that holds a lock the apply loop waits for stalls the
    /// apply loop, and with it every change readers would see (priority inversion; the stall
    /// bench saw 8–20 ms copies that way).
    ///
    /// # Errors
    /// [`crate::PersistError::SnapshotSource`] when the state cannot be encoded.
    fn snapshot(&self) -> Result<SnapshotBlob>;
}

impl<F> SnapshotSource for F
where
    F: Fn() -> Result<SnapshotBlob> + Send + Sync + 'static,
{
    fn snapshot(&self) -> Result<SnapshotBlob> {
        self()
    }
}

/// Runs `source.snapshot()` on a thread of its own, which the source lowers to background CPU
/// priority ([`crate::priority`]) once its short read locks are done, so that the encoding and
/// compression only use CPU the serving threads leave idle. A panic in the source is an error.
///
/// # Errors
/// The source's error, or [`crate::PersistError::SnapshotSource`] when the thread cannot be
/// started or panics.
pub async fn take_snapshot<S: SnapshotSource>(source: &std::sync::Arc<S>) -> Result<SnapshotBlob> {
    let source = source.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("astrolabe-snapshot".into())
        .spawn(move || {
            // The receiver only goes away when the caller stopped waiting.
            let _ = tx.send(source.snapshot());
        })
        .map_err(|e| {
            crate::PersistError::SnapshotSource(format!("starting the snapshot thread failed: {e}"))
        })?;
    rx.await.map_err(|_| {
        crate::PersistError::SnapshotSource("the snapshot thread panicked".to_owned())
    })?
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI32, Ordering};

    use astrolabe_model::codec::{self, SlicedSnapshot, Snapshot};
    use astrolabe_model::{Kind, Resource};

    use super::take_snapshot;
    use crate::priority::BACKGROUND_NICE;
    use crate::priority::tests::own_nice;
    use crate::{Result, SnapshotBlob, SnapshotEncoder, copy_then_encode};

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 7,
            taken_at_ms: 0,
            resources: vec![Arc::new(Resource::new("u1", Kind::Pod, "ns", "p"))],
        }
    }

    /// The copy (which takes read locks) must not run at background priority: a descheduled
    /// low-priority lock holder stalls the apply loop waiting for that copy.
    #[test]
    fn copy_then_encode_copies_at_the_callers_priority_and_encodes_lowered() {
        let (before, during_copy, after, blob) = std::thread::spawn(|| {
            let before = own_nice();
            let mut during_copy = None;
            let blob = copy_then_encode(
                || {
                    during_copy = Some(own_nice());
                    SlicedSnapshot {
                        snapshot: snapshot(),
                        copied_until: 9,
                        slices: std::iter::once(0..1).collect(),
                    }
                },
                &mut SnapshotEncoder::default(),
            );
            (before, during_copy, own_nice(), blob)
        })
        .join()
        .expect("thread");
        assert_eq!(
            during_copy,
            Some(before),
            "copied at the thread's own priority"
        );
        assert_eq!(after, BACKGROUND_NICE, "lowered for the encoding");
        let blob = blob.expect("encodes");
        assert_eq!(
            (blob.seq, blob.copied_until, blob.resource_count),
            (7, 9, 1)
        );
        let raw = zstd::decode_all(&blob.bytes[..]).expect("zstd frames");
        let decoded = codec::decode_snapshot(&raw).expect("decodes");
        assert_eq!(decoded.resources, snapshot().resources);
    }

    #[tokio::test]
    async fn take_snapshot_starts_the_source_at_normal_priority() {
        let caller = own_nice();
        let seen = Arc::new(AtomicI32::new(i32::MIN));
        let source = {
            let seen = seen.clone();
            Arc::new(move || -> Result<SnapshotBlob> {
                seen.store(own_nice(), Ordering::Relaxed);
                crate::snapshot_blob(&snapshot())
            })
        };
        let blob = take_snapshot(&source).await.expect("snapshot");
        assert_eq!(blob.resource_count, 1);
        assert_eq!(seen.load(Ordering::Relaxed), caller);
        assert_eq!(own_nice(), caller, "the caller's thread is untouched");
    }
}
