//! The typed layer: model [`Change`]s as writer [`Record`]s, model snapshots as
//! [`SnapshotBlob`]s, and [`ModelDecoder`] for [`crate::recover`].

use std::sync::Arc;

use astrolabe_model::codec::{self, CodecError, FORMAT_VERSION, Logged, SlicedSnapshot, Snapshot};
use astrolabe_model::patch::UidAt;
use astrolabe_model::{Change, ChangeOp, Resource, ResourcePatch, Uid};
use bytes::Bytes;
use rustc_hash::FxHashMap;

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

    type Memory = LastVersions;

    /// An update of an object whose last version the writer remembers is written as a patch
    /// (`docs/adr/0020`); anything else whole.
    fn encode_remembering(&self, memory: &mut LastVersions, out: &mut Vec<u8>) -> Result<()> {
        match &self.op {
            ChangeOp::Upsert(new) => {
                let patch = memory
                    .0
                    .get(&new.uid)
                    .and_then(|old| ResourcePatch::between(old, new));
                match patch {
                    Some(patch) => {
                        codec::encode_patch_into(self.ts_ms, &patch, out).map_err(|e| {
                            PersistError::Encode {
                                seq: self.seq,
                                detail: format!("{e}"),
                            }
                        })?
                    }
                    None => self.encode_into(out)?,
                }
                memory.0.insert(new.uid.clone(), new.clone());
            }
            ChangeOp::Delete { uid, .. } => {
                memory.0.remove(uid);
                self.encode_into(out)?;
            }
        }
        Ok(())
    }
}

/// The writer's memory for model changes: the last version of each object it wrote (the same
/// `Arc`s the graph holds while they are current).
#[derive(Debug, Default)]
pub struct LastVersions(FxHashMap<Uid, Arc<Resource>>);

impl LastVersions {
    /// Remembering `resources`: the state the log describes up to where the writer starts
    /// (recovered from it), whose next updates can then be patches.
    pub fn of<'a>(resources: impl IntoIterator<Item = &'a Arc<Resource>>) -> Self {
        LastVersions(
            resources
                .into_iter()
                .map(|r| (r.uid.clone(), r.clone()))
                .collect(),
        )
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
    type Change = Logged;

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

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> Result<Logged> {
        let change = codec::decode_logged(seq, bytes).map_err(|e| match e {
            CodecError::UnknownVersion { found } => unknown("entry", found),
            other => PersistError::EntryDecode {
                seq,
                source: Box::new(other),
            },
        })?;
        if change.seq() != seq {
            return Err(PersistError::EntryDecode {
                seq,
                source: format!("entry carries sequence {}", change.seq()).into(),
            });
        }
        Ok(change)
    }

    /// The object's UID (its text).
    fn change_key(&self, payload: &Bytes) -> Option<Bytes> {
        match codec::change_uid(payload)? {
            UidAt::Range(r) => Some(payload.slice(r)),
            UidAt::Text(t) => Some(Bytes::from(t)),
        }
    }

    fn needs_previous(&self, payload: &[u8]) -> bool {
        codec::is_patch(payload)
    }
}
