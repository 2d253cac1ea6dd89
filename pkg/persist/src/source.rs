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
    /// Encode the whole current state. Take whatever locks the copy needs first, then call
    /// [`crate::priority::lower_current_thread`] before the long encoding: a thread at
    /// background priority that holds a lock the apply loop waits for stalls every reader
    /// behind it (priority inversion; the stall bench saw 8–20 ms copies that way).
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
