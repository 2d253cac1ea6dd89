//! The typed layer: model [`Change`]s as writer [`Record`]s, model snapshots as
//! [`SnapshotBlob`]s, and [`ModelDecoder`] for [`crate::recover`].

use astrolabe_model::Change;
use astrolabe_model::codec::{self, CodecError, FORMAT_VERSION, Snapshot};
use bytes::Bytes;

use crate::compress::{CompressError, SNAPSHOT_ZSTD_LEVEL, compress_parts};
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

/// Resources per part of a snapshot: each part is encoded and compressed on its own
/// ([`compress_parts`]), about 1.5 MB raw and 220 KB compressed for the generated clusters.
const PART_RESOURCES: usize = 4096;

/// Encode a model snapshot for [`crate::EventLog::write_snapshot`], compressed at
/// [`SNAPSHOT_ZSTD_LEVEL`] in parts of 4,096 resources encoded and compressed in parallel
/// ([`compress_parts`]).
///
/// # Errors
/// [`PersistError::SnapshotSource`] if encoding fails, [`PersistError::SnapshotCompress`] if
/// compressing does.
pub fn snapshot_blob(snapshot: &Snapshot) -> Result<SnapshotBlob> {
    let parts: Vec<_> = snapshot.resources.chunks(PART_RESOURCES).collect();
    let (bytes, raw_len) = compress_parts(SNAPSHOT_ZSTD_LEVEL, parts.len().max(1), |i, out| {
        if i == 0 {
            codec::encode_snapshot_header(snapshot, out)?;
        }
        parts
            .get(i)
            .map_or(Ok(()), |part| codec::encode_resources_into(part, out))
    })
    .map_err(|e| match e {
        CompressError::Encode(e) => {
            PersistError::SnapshotSource(format!("encoding the snapshot failed: {e}"))
        }
        CompressError::Io(e) => PersistError::SnapshotCompress(e),
    })?;
    Ok(SnapshotBlob {
        seq: snapshot.seq,
        resource_count: snapshot.resources.len() as u64,
        bytes: Bytes::from(bytes),
        zstd_raw_len: Some(raw_len),
        copied_until: snapshot.seq,
    })
}

/// The shape of a snapshot source ([`crate::SnapshotSource`]): `copy` runs first, at the
/// calling thread's priority, and returns the state with the sequence its copy ended at (see
/// [`SnapshotBlob::copied_until`]); the thread is then lowered to background priority
/// ([`crate::priority`]) and the copy encoded with [`snapshot_blob`]. Lowering before the copy
/// would let a descheduled background thread hold a read lock the apply loop waits for (readers
/// use the other copy of the graph and do not wait, but ingest stalls).
///
/// # Errors
/// As [`snapshot_blob`].
pub fn copy_then_encode(copy: impl FnOnce() -> (Snapshot, u64)) -> Result<SnapshotBlob> {
    let (snapshot, copied_until) = copy();
    crate::priority::lower_current_thread();
    let mut blob = snapshot_blob(&snapshot)?;
    blob.copied_until = copied_until;
    Ok(blob)
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
