//! The typed layer: model [`Change`]s as writer [`Record`]s, model snapshots as
//! [`SnapshotBlob`]s, and [`ModelDecoder`] for [`crate::recover`].

use astrolabe_model::Change;
use astrolabe_model::codec::{self, CodecError, FORMAT_VERSION, SlicedSnapshot, Snapshot};
use bytes::Bytes;

use crate::encoder::SnapshotEncoder;
use crate::error::{PersistError, Result};
use crate::log::SnapshotBlob;
use crate::recovery::Decoder;
use crate::source::Record;

impl Record for Change {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn encode(&self) -> Result<Bytes> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(Bytes::from(out))
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        codec::encode_change_into(self, out).map_err(|e| PersistError::Encode {
            seq: self.seq,
            detail: format!("{e}"),
        })
    }
}

/// Resources per slice when [`snapshot_blob`] cuts a snapshot that was not copied in slices.
const PART_RESOURCES: usize = 4096;

/// Encode a model snapshot for [`crate::EventLog::write_snapshot`], compressed at
/// [`crate::SNAPSHOT_ZSTD_LEVEL`] in parts encoded and compressed in parallel (a fresh
/// [`SnapshotEncoder`], keeping nothing).
///
/// # Errors
/// [`PersistError::SnapshotSource`] if encoding fails, [`PersistError::SnapshotCompress`] if
/// compressing does.
pub fn snapshot_blob(snapshot: &Snapshot) -> Result<SnapshotBlob> {
    let slices = SlicedSnapshot::even_slices(snapshot.resources.len(), PART_RESOURCES);
    SnapshotEncoder::default().encode_slices(snapshot, &slices, snapshot.seq)
}

/// The shape of a snapshot source ([`crate::SnapshotSource`]): `copy` runs first, at the
/// calling thread's priority, and returns the state copied in slices with the sequence its copy
/// ended at (see [`SnapshotBlob::copied_until`]); the thread is then lowered to background
/// priority ([`crate::priority`]) and the copy encoded by `encoder`. Lowering before the copy
/// would let a descheduled background thread hold a read lock the apply loop waits for (readers
/// use the other copy of the graph and do not wait, but ingest stalls).
///
/// # Errors
/// As [`SnapshotEncoder::encode`].
pub fn copy_then_encode(
    copy: impl FnOnce() -> SlicedSnapshot,
    encoder: &mut SnapshotEncoder,
) -> Result<SnapshotBlob> {
    let copy = copy();
    crate::priority::lower_current_thread();
    encoder.encode(&copy)
}

/// Decodes model snapshots and changes; an unknown format version is reported as
/// [`PersistError::UnknownFormat`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelDecoder;

fn unknown(what: &'static str, found: u8) -> PersistError {
    PersistError::UnknownFormat {
        what,
        found: u32::from(found),
        supported: u32::from(FORMAT_VERSION),
    }
}

/// A snapshot decoding error, as recovery reports it.
pub fn snapshot_error(e: CodecError) -> PersistError {
    match e {
        CodecError::UnknownVersion { found } => unknown("snapshot", found),
        other => PersistError::SnapshotDecode(Box::new(other)),
    }
}

impl ModelDecoder {
    /// A snapshot's header, and its resources decoded one at a time
    /// ([`codec::read_snapshot`]); map their errors with [`snapshot_error`]. For decoders
    /// that build from the resources as they come.
    ///
    /// # Errors
    /// As [`Decoder::decode_snapshot`], for the header.
    pub fn read_snapshot<R: std::io::Read>(&self, source: R) -> Result<codec::SnapshotReader<R>> {
        codec::read_snapshot(source).map_err(snapshot_error)
    }
}

impl Decoder for ModelDecoder {
    type Snapshot = Snapshot;
    type Change = Change;

    fn decode_snapshot(&self, bytes: &[u8]) -> Result<Snapshot> {
        codec::decode_snapshot(bytes).map_err(snapshot_error)
    }

    fn decode_snapshot_from(
        &self,
        payload: &mut (dyn std::io::Read + Send),
        _len: u64,
    ) -> Result<Snapshot> {
        codec::collect_snapshot(self.read_snapshot(payload)?).map_err(snapshot_error)
    }

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<Change> {
        let change = codec::decode_change(bytes).map_err(|e| match e {
            CodecError::UnknownVersion { found } => unknown("entry", found),
            other => PersistError::EntryDecode {
                seq,
                source: Box::new(other),
            },
        })?;
        if change.seq != seq {
            return Err(PersistError::EntryDecode {
                seq,
                source: format!("entry carries sequence {}", change.seq).into(),
            });
        }
        Ok(change)
    }

    /// The object's UID.
    fn change_key(&self, payload: &[u8]) -> Option<std::ops::Range<usize>> {
        codec::change_uid_range(payload)
    }
}
