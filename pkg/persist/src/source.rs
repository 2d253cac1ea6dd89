//! What persistence needs from its caller: records to append ([`Record`]) and, when asked, the
//! whole state encoded at a known sequence ([`SnapshotSource`]), handed over frame by frame
//! as it is compressed ([`take_snapshot`]).

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::compress::{Frame, SNAPSHOT_ZSTD_LEVEL, concat_frames};
use crate::error::{PersistError, Result};
use crate::log::{SnapshotBlob, SnapshotHead};

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
}

/// Pre-encoded records, for tests and for callers that encode themselves.
impl Record for (u64, Bytes) {
    fn seq(&self) -> u64 {
        self.0
    }

    fn encode(&self) -> Result<Bytes> {
        Ok(self.1.clone())
    }
}

/// The live state (the graph), able to hand out its encoded contents and the sequence of the
/// last change they include, without blocking its readers. Called by [`take_snapshot`] on a
/// thread of its own, at normal priority.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Produce the whole current state into `sink`: copy it under whatever short locks it
    /// needs, give `sink` the copy's [`SnapshotHead`], lower the thread's priority, then encode
    /// and compress it, giving `sink` each zstd frame in order as soon as it is ready
    /// ([`crate::copy_then_encode`] does all of it, in that order). A thread at background
    /// priority that holds a lock the apply loop waits for stalls the apply loop, and with it
    /// every change readers would see (priority inversion; the stall bench saw 8–20 ms copies
    /// that way).
    ///
    /// # Errors
    /// [`crate::PersistError::SnapshotSource`] when the state cannot be encoded,
    /// [`crate::PersistError::SnapshotCompress`] when it cannot be compressed.
    fn snapshot(&self, sink: &mut SnapshotSink) -> Result<()>;
}

/// A source that hands out whole blobs (tests, and callers that encode themselves).
impl<F> SnapshotSource for F
where
    F: Fn() -> Result<SnapshotBlob> + Send + Sync + 'static,
{
    fn snapshot(&self, sink: &mut SnapshotSink) -> Result<()> {
        let blob = self()?;
        sink.head(blob.head());
        sink.frame(blob.into_frame(SNAPSHOT_ZSTD_LEVEL)?);
        Ok(())
    }
}

/// What a snapshot's frames travel as.
#[derive(Debug)]
enum Piece {
    Frame(Frame),
    End,
    Failed(PersistError),
}

/// Where a [`SnapshotSource`] puts a snapshot: first its head, then its zstd frames in stream
/// order. The reader ([`PendingSnapshot`]) may upload each frame while the next ones are still
/// being compressed.
#[derive(Debug)]
pub struct SnapshotSink {
    head: Option<oneshot::Sender<SnapshotHead>>,
    frames: mpsc::UnboundedSender<Piece>,
}

impl SnapshotSink {
    /// What the snapshot is of, once copied. Only the first call counts.
    pub fn head(&mut self, head: SnapshotHead) {
        if let Some(tx) = self.head.take() {
            // The reader only goes away when it no longer wants the snapshot.
            let _ = tx.send(head);
        }
    }

    /// The next frame of the snapshot, in stream order.
    pub fn frame(&mut self, frame: Frame) {
        // As above: a reader that went away wants no more frames.
        let _ = self.frames.send(Piece::Frame(frame));
    }

    /// The source returned `outcome`: the snapshot is whole, or failed.
    fn finish(self, outcome: Result<()>) {
        let piece = match outcome {
            Ok(()) if self.head.is_some() => Piece::Failed(PersistError::SnapshotSource(
                "the snapshot source gave no head".to_owned(),
            )),
            Ok(()) => Piece::End,
            Err(e) => Piece::Failed(e),
        };
        let _ = self.frames.send(piece);
    }
}

/// A snapshot being produced by [`take_snapshot`]: its head, and its zstd frames in stream
/// order as they are compressed.
#[derive(Debug)]
pub struct PendingSnapshot {
    head: SnapshotHead,
    frames: mpsc::UnboundedReceiver<Piece>,
    ended: bool,
}

impl PendingSnapshot {
    /// A snapshot whose frames are all there.
    #[must_use]
    pub fn ready(head: SnapshotHead, frames: impl IntoIterator<Item = Frame>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        for frame in frames {
            let _ = tx.send(Piece::Frame(frame));
        }
        let _ = tx.send(Piece::End);
        Self {
            head,
            frames: rx,
            ended: false,
        }
    }

    /// What the snapshot is of.
    #[must_use]
    pub fn head(&self) -> SnapshotHead {
        self.head
    }

    /// The next frame, `None` once the source finished the snapshot.
    ///
    /// # Errors
    /// The source's error, or [`PersistError::SnapshotSource`] if it stopped before the end
    /// (a panic): a snapshot is never taken to be whole unless its source said so.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.ended {
            return Ok(None);
        }
        match self.frames.recv().await {
            Some(Piece::Frame(frame)) => Ok(Some(frame)),
            Some(Piece::End) => {
                self.ended = true;
                Ok(None)
            }
            Some(Piece::Failed(e)) => {
                self.ended = true;
                Err(e)
            }
            None => {
                self.ended = true;
                Err(PersistError::SnapshotSource(
                    "the snapshot thread stopped before the end of the snapshot".to_owned(),
                ))
            }
        }
    }

    /// The whole snapshot as one blob, once produced.
    ///
    /// # Errors
    /// As [`Self::next_frame`].
    pub async fn into_blob(mut self) -> Result<SnapshotBlob> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame().await? {
            frames.push(frame);
        }
        let (bytes, raw_len) = concat_frames(&frames);
        Ok(SnapshotBlob {
            seq: self.head.seq,
            resource_count: self.head.resource_count,
            bytes: Bytes::from(bytes),
            zstd_raw_len: Some(raw_len),
            copied_until: self.head.copied_until,
        })
    }
}

/// Runs `source.snapshot()` on a thread of its own, which the source lowers to background CPU
/// priority ([`crate::priority`]) once its short read locks are done, so that the encoding and
/// compression only use CPU the serving threads leave idle. Returns once the state is copied:
/// the frames follow as they are compressed ([`PendingSnapshot::next_frame`]). Dropping the
/// [`PendingSnapshot`] lets the source finish unobserved.
///
/// # Errors
/// The source's error before it gave its head, or [`crate::PersistError::SnapshotSource`] when
/// the thread cannot be started or panics before that.
pub async fn take_snapshot<S: SnapshotSource>(
    source: &std::sync::Arc<S>,
) -> Result<PendingSnapshot> {
    let source = source.clone();
    let (head_tx, head_rx) = oneshot::channel();
    let (tx, mut rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("astrolabe-snapshot".into())
        .spawn(move || {
            let mut sink = SnapshotSink {
                head: Some(head_tx),
                frames: tx,
            };
            let outcome = source.snapshot(&mut sink);
            sink.finish(outcome);
        })
        .map_err(|e| {
            crate::PersistError::SnapshotSource(format!("starting the snapshot thread failed: {e}"))
        })?;
    match head_rx.await {
        Ok(head) => Ok(PendingSnapshot {
            head,
            frames: rx,
            ended: false,
        }),
        // No head: the source failed before its copy (its error comes last), or panicked.
        Err(_) => {
            while let Some(piece) = rx.recv().await {
                if let Piece::Failed(e) = piece {
                    return Err(e);
                }
            }
            Err(crate::PersistError::SnapshotSource(
                "the snapshot thread stopped before its copy".to_owned(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn frame(b: &'static [u8]) -> Frame {
        Frame {
            bytes: Bytes::from_static(b),
            raw_len: b.len() as u64,
        }
    }

    const HEAD: SnapshotHead = SnapshotHead {
        seq: 3,
        resource_count: 2,
        copied_until: 4,
    };

    /// A source giving its head and one frame, then `rest`.
    struct Stepped<F>(F);

    impl<F: Fn(&mut SnapshotSink) -> Result<()> + Send + Sync + 'static> SnapshotSource for Stepped<F> {
        fn snapshot(&self, sink: &mut SnapshotSink) -> Result<()> {
            sink.head(HEAD);
            sink.frame(frame(b"one"));
            (self.0)(sink)
        }
    }

    async fn next(pending: &mut PendingSnapshot) -> Result<Option<Frame>> {
        tokio::time::timeout(Duration::from_secs(30), pending.next_frame())
            .await
            .expect("a frame within 30 s")
    }

    /// Frames reach the reader while the source is still producing the next ones.
    #[tokio::test]
    async fn frames_arrive_while_the_source_still_works() {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let source = Arc::new(Stepped(move |sink: &mut SnapshotSink| {
            let waited = go_rx
                .lock()
                .map_err(|_| PersistError::SnapshotSource("poisoned".into()))?
                .recv_timeout(Duration::from_secs(30));
            waited.map_err(|e| PersistError::SnapshotSource(format!("no go: {e}")))?;
            sink.frame(frame(b"two"));
            Ok(())
        }));
        let mut pending = take_snapshot(&source).await.expect("head");
        assert_eq!(pending.head(), HEAD);
        // The source waits for the first frame to be seen before it makes the second.
        assert_eq!(next(&mut pending).await.expect("ok"), Some(frame(b"one")));
        go_tx.send(()).expect("source waits");
        assert_eq!(next(&mut pending).await.expect("ok"), Some(frame(b"two")));
        assert_eq!(next(&mut pending).await.expect("ok"), None);
        assert_eq!(next(&mut pending).await.expect("ok"), None, "stays ended");
    }

    /// A source that fails or panics half-way never reads as a whole snapshot.
    #[tokio::test]
    async fn a_snapshot_cut_short_is_an_error_not_a_snapshot() {
        let failing = Arc::new(Stepped(|_: &mut SnapshotSink| {
            Err(PersistError::SnapshotSource("broke".into()))
        }));
        let mut pending = take_snapshot(&failing).await.expect("head");
        assert_eq!(next(&mut pending).await.expect("ok"), Some(frame(b"one")));
        let err = next(&mut pending).await.expect_err("the source's error");
        assert!(err.to_string().contains("broke"), "{err}");
        let err = take_snapshot(&failing)
            .await
            .expect("head")
            .into_blob()
            .await
            .expect_err("no blob");
        assert!(err.to_string().contains("broke"), "{err}");

        let panicking = Arc::new(Stepped(|_: &mut SnapshotSink| -> Result<()> {
            panic!("source panics half-way (expected by this test)")
        }));
        let mut pending = take_snapshot(&panicking).await.expect("head");
        assert_eq!(next(&mut pending).await.expect("ok"), Some(frame(b"one")));
        let err = next(&mut pending).await.expect_err("cut short");
        assert!(err.to_string().contains("before the end"), "{err}");
    }

    /// A source that fails before its copy, or gives no head, fails `take_snapshot`.
    #[tokio::test]
    async fn no_head_is_an_error() {
        let failing = Arc::new(|| -> Result<SnapshotBlob> {
            Err(PersistError::SnapshotSource("no copy".into()))
        });
        let err = take_snapshot(&failing).await.expect_err("fails");
        assert!(err.to_string().contains("no copy"), "{err}");

        struct Headless;
        impl SnapshotSource for Headless {
            fn snapshot(&self, sink: &mut SnapshotSink) -> Result<()> {
                sink.frame(frame(b"x"));
                Ok(())
            }
        }
        let err = take_snapshot(&Arc::new(Headless)).await.expect_err("fails");
        assert!(err.to_string().contains("no head"), "{err}");
    }

    #[tokio::test]
    async fn a_ready_snapshot_reads_back_as_its_blob() {
        let blob = PendingSnapshot::ready(HEAD, [frame(b"ab"), frame(b"c")])
            .into_blob()
            .await
            .expect("whole");
        assert_eq!(blob.head(), HEAD);
        assert_eq!((&blob.bytes[..], blob.zstd_raw_len), (&b"abc"[..], Some(3)));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod priority_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI32, Ordering};

    use astrolabe_model::codec::{self, SlicedSnapshot, Snapshot};
    use astrolabe_model::{Kind, Resource};

    use super::{SnapshotSink, SnapshotSource, take_snapshot};
    use crate::priority::BACKGROUND_NICE;
    use crate::priority::tests::own_nice;
    use crate::{Result, SnapshotBlob, SnapshotEncoder, SnapshotHead, copy_then_encode};

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 7,
            taken_at_ms: 0,
            resources: vec![Arc::new(Resource::new("u1", Kind::Pod, "ns", "p"))],
        }
    }

    /// The nice values a source saw: at its start, during its copy, after encoding.
    #[derive(Default)]
    struct Recording {
        before: AtomicI32,
        during_copy: AtomicI32,
        after: AtomicI32,
    }

    impl SnapshotSource for Recording {
        fn snapshot(&self, sink: &mut SnapshotSink) -> Result<()> {
            self.before.store(own_nice(), Ordering::Relaxed);
            let encoded = copy_then_encode(
                || {
                    self.during_copy.store(own_nice(), Ordering::Relaxed);
                    SlicedSnapshot {
                        snapshot: snapshot(),
                        copied_until: 9,
                        slices: std::iter::once(0..1).collect(),
                    }
                },
                &mut SnapshotEncoder::default(),
                sink,
            );
            self.after.store(own_nice(), Ordering::Relaxed);
            encoded
        }
    }

    /// The copy (which takes read locks) must not run at background priority: a descheduled
    /// low-priority lock holder stalls the apply loop waiting for that copy.
    #[tokio::test]
    async fn copy_then_encode_copies_at_the_callers_priority_and_encodes_lowered() {
        let caller = own_nice();
        let source = Arc::new(Recording::default());
        let pending = take_snapshot(&source).await.expect("head");
        assert_eq!(
            pending.head(),
            SnapshotHead {
                seq: 7,
                resource_count: 1,
                copied_until: 9
            }
        );
        let blob = pending.into_blob().await.expect("encodes");
        let nice = |n: &AtomicI32| n.load(Ordering::Relaxed);
        assert_eq!(nice(&source.before), caller, "started at normal priority");
        assert_eq!(nice(&source.during_copy), caller, "copied at it");
        assert_eq!(
            nice(&source.after),
            BACKGROUND_NICE,
            "lowered for the encoding"
        );
        assert_eq!(own_nice(), caller, "the caller's thread is untouched");
        let raw = zstd::decode_all(&blob.bytes[..]).expect("zstd frames");
        let decoded = codec::decode_snapshot(&raw).expect("decodes");
        assert_eq!(decoded.resources, snapshot().resources);
    }

    #[tokio::test]
    async fn take_snapshot_starts_a_blob_source_at_normal_priority() {
        let caller = own_nice();
        let seen = Arc::new(AtomicI32::new(i32::MIN));
        let source = {
            let seen = seen.clone();
            Arc::new(move || -> Result<SnapshotBlob> {
                seen.store(own_nice(), Ordering::Relaxed);
                crate::snapshot_blob(&snapshot())
            })
        };
        let pending = take_snapshot(&source).await.expect("snapshot");
        assert_eq!(pending.head().resource_count, 1);
        assert_eq!(seen.load(Ordering::Relaxed), caller);
        assert_eq!(own_nice(), caller, "the caller's thread is untouched");
    }
}
