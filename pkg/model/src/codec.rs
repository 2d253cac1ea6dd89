//! The versioned binary codec for changes and snapshots (postcard, see `docs/adr/0001`).
//!
//! Every encoded value starts with one format-version byte; a decoder refuses a version it does
//! not know instead of misreading it.

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kind::LegacyKinds;
use crate::patch::{PatchError, ResourcePatch, UidAt};
use crate::{Change, Resource, Uid};

/// The format version written by this build. Version 2 writes a kind outside the table of kinds
/// with its group, version, plural and scope; version 1 wrote every kind as its bare name.
pub const FORMAT_VERSION: u8 = 2;

/// The oldest format version this build still reads.
pub const OLDEST_FORMAT_VERSION: u8 = 1;

/// Decodes `body` of a payload in format `version`: the current one as is, version 1 with kinds
/// read by bare name ([`LegacyKinds`]).
fn decode_body<T>(version: u8, decode: impl FnOnce() -> T) -> Option<T> {
    match version {
        FORMAT_VERSION => Some(decode()),
        1 => {
            let _legacy = LegacyKinds::enter();
            Some(decode())
        }
        _ => None,
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No bytes at all.
    #[error("empty payload")]
    Empty,
    /// The first byte names a format version this build does not know.
    #[error(
        "unknown format version {found} (this build reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
    )]
    UnknownVersion {
        /// The version found.
        found: u8,
    },
    /// The payload is a patch ([`PATCH_FORMAT`]): it is decoded with [`decode_logged`] and
    /// needs the object's previous version.
    #[error("a patch of an earlier change (decode it with the object's previous version)")]
    Patch,
    /// The payload is not a valid encoding.
    #[error("malformed payload")]
    Malformed(#[source] postcard::Error),
    /// A value could not be encoded.
    #[error("encoding failed")]
    Encode(#[source] postcard::Error),
    /// The source of a streamed payload failed (a decompressor, say).
    #[error("reading the payload failed")]
    Read(#[source] std::io::Error),
}

/// The whole resource set at one point of the change history.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last change sequence the snapshot includes.
    pub seq: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// Every resource, in a stable order.
    pub resources: Vec<Arc<Resource>>,
}

/// A [`Snapshot`] copied from a store of numbered slots (the graph's node slots) a slice at a
/// time, with where each slice's resources are. An encoder that keeps what it encoded per slice
/// ([`Snapshot`] parts that did not change since the last snapshot) keys on the slice numbers,
/// which stay put while a resource lives.
#[derive(Clone, Debug)]
pub struct SlicedSnapshot {
    /// The snapshot; its resources in slot order.
    pub snapshot: Snapshot,
    /// The last change sequence the copy may reflect (see the graph's `snapshot_sliced`).
    pub copied_until: u64,
    /// `slices[i]` is the range of `snapshot.resources` copied from slice `i`: slots
    /// `i * len .. (i + 1) * len` for the source's slice length `len`. In order, tiling every
    /// resource.
    pub slices: Vec<std::ops::Range<usize>>,
}

impl SlicedSnapshot {
    /// Slices of `per_slice` resources each (the last one shorter) over `len` resources: for a
    /// snapshot that was not copied from slots.
    pub fn even_slices(len: usize, per_slice: usize) -> Vec<std::ops::Range<usize>> {
        let per_slice = per_slice.max(1);
        (0..len)
            .step_by(per_slice)
            .map(|from| from..(from + per_slice).min(len))
            .collect()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).map_err(CodecError::Encode)?;
    Ok(out)
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version == PATCH_FORMAT {
        return Err(CodecError::Patch);
    }
    decode_body(version, || {
        postcard::from_bytes(body).map_err(CodecError::Malformed)
    })
    .unwrap_or(Err(CodecError::UnknownVersion { found: version }))
}

/// Encodes one change.
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails (it does not for well-formed values).
pub fn encode_change(change: &Change) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_change_into(change, &mut out)?;
    Ok(out)
}

/// Appends the encoding of one change to `out` (several changes share one buffer on the write
/// path: no allocation per change).
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails; `out` may then hold a partial encoding after
/// its previous length.
pub fn encode_change_into(change: &Change, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.push(FORMAT_VERSION);
    postcard::to_io(change, &mut *out).map_err(CodecError::Encode)?;
    Ok(())
}

/// Decodes one change.
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed bytes.
pub fn decode_change(bytes: &[u8]) -> Result<Change, CodecError> {
    decode(bytes)
}

/// Where the UID of the object an encoded change is about sits in `bytes`, read without
/// decoding the change (recovery keeps only the last change per object, see
/// `astrolabe_persist::Decoder::change_key`). `None` when the bytes are not a change of this
/// format version, or are cut short.
pub fn change_uid_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let (&version, body) = bytes.split_first()?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return None;
    }
    // `Change { seq, ts_ms, op }`: two integers, the variant's index, then both variants
    // (`Upsert(Arc<Resource>)`, `Delete { uid, .. }`) start with the UID as a string: its
    // length, then its bytes.
    let (len, rest) = postcard::take_from_bytes::<(u64, i64, u32, u64)>(body)
        .ok()
        .map(|((_, _, _, len), rest)| (len, rest))?;
    let start = bytes.len() - rest.len();
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= bytes.len()).then_some(start..end)
}

/// The format byte of a change payload that holds a [`ResourcePatch`] (the fields of an
/// object that changed since its previous change) instead of a whole record: see
/// [`encode_patch_into`] and [`decode_logged`]. Its sequence is not in the payload; the log
/// keeps it beside it.
pub const PATCH_FORMAT: u8 = 3;

/// A change as the log keeps it: whole, or as a patch of the object's previous version.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Logged {
    /// A whole change.
    Change(Change),
    /// An update of an object the log already holds.
    Patch {
        /// The change's sequence.
        seq: u64,
        /// When it was applied (Unix milliseconds).
        ts_ms: i64,
        /// What changed.
        patch: ResourcePatch,
    },
}

impl Logged {
    /// The change's sequence.
    pub fn seq(&self) -> u64 {
        match self {
            Logged::Change(c) => c.seq,
            Logged::Patch { seq, .. } => *seq,
        }
    }

    /// When it was applied.
    pub fn ts_ms(&self) -> i64 {
        match self {
            Logged::Change(c) => c.ts_ms,
            Logged::Patch { ts_ms, .. } => *ts_ms,
        }
    }

    /// The object it is about.
    pub fn uid(&self) -> &Uid {
        match self {
            Logged::Change(c) => c.op.uid(),
            Logged::Patch { patch, .. } => &patch.uid,
        }
    }

    /// The whole change, a patch applied to `base` (the object's version before it, looked up
    /// by UID). A patch whose result `base` already holds (the same `resourceVersion`) gives
    /// that version.
    ///
    /// # Errors
    /// [`PatchError`] when `base` has no version of the object, or not the one the patch was
    /// made against.
    pub fn resolve<'a>(
        self,
        base: impl FnOnce(&Uid) -> Option<&'a Arc<Resource>>,
    ) -> Result<Change, PatchError> {
        match self {
            Logged::Change(c) => Ok(c),
            Logged::Patch { seq, ts_ms, patch } => {
                let current = base(&patch.uid);
                let new = match current {
                    // Its result already: a snapshot copied while the change was applied.
                    Some(c) if patch.resource_version.as_ref() == Some(&c.resource_version) => {
                        c.clone()
                    }
                    _ => crate::patch::apply_arc(&patch, current)?,
                };
                Ok(Change {
                    seq,
                    ts_ms,
                    op: crate::ChangeOp::Upsert(new),
                })
            }
        }
    }
}

/// Appends the payload of change `ts_ms` as a patch to `out` (its sequence is kept beside it).
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails (it does not for well-formed values).
pub fn encode_patch_into(
    ts_ms: i64,
    patch: &ResourcePatch,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.push(PATCH_FORMAT);
    patch.encode_into(ts_ms, out).map_err(CodecError::Encode)
}

/// Decodes a change payload of sequence `seq`: whole ([`decode_change`]'s formats) or a patch.
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed bytes.
pub fn decode_logged(seq: u64, bytes: &[u8]) -> Result<Logged, CodecError> {
    match bytes.split_first() {
        Some((&PATCH_FORMAT, body)) => {
            let (ts_ms, patch) = ResourcePatch::decode(body).map_err(CodecError::Malformed)?;
            Ok(Logged::Patch { seq, ts_ms, patch })
        }
        _ => decode_change(bytes).map(Logged::Change),
    }
}

/// Whether a change payload is a patch (it needs the object's previous version).
pub fn is_patch(bytes: &[u8]) -> bool {
    bytes.first() == Some(&PATCH_FORMAT)
}

/// The UID of the object a change payload (whole or patch) is about, read without decoding the
/// change: where its text is in `bytes`, or the text. `None` when the bytes are not a change
/// of a known format, or are cut short.
pub fn change_uid(bytes: &[u8]) -> Option<UidAt> {
    match bytes.split_first()? {
        (&PATCH_FORMAT, body) => match ResourcePatch::key(body)? {
            UidAt::Range(r) => Some(UidAt::Range(r.start + 1..r.end + 1)),
            text => Some(text),
        },
        _ => change_uid_range(bytes).map(UidAt::Range),
    }
}

/// Whether a change payload is a patch that leaves its object's labels, owners and references
/// as they were, read without decoding the change: such a change moves no edge (the graph swaps
/// the object's version and keeps its edges). `false` for whole changes and unreadable bytes.
pub fn keeps_edges(bytes: &[u8]) -> bool {
    match bytes.split_first() {
        Some((&PATCH_FORMAT, body)) => ResourcePatch::keeps_edges(body).unwrap_or(false),
        _ => false,
    }
}

/// When a change payload (whole or patch) was applied, and its object's UID
/// ([`change_uid`]), read without decoding the change: what an index of the log keeps.
pub fn change_stamp(bytes: &[u8]) -> Option<(i64, UidAt)> {
    let (&version, body) = bytes.split_first()?;
    let ts_ms = if version == PATCH_FORMAT {
        postcard::take_from_bytes::<i64>(body).ok()?.0
    } else if (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        // `Change { seq, ts_ms, .. }`.
        postcard::take_from_bytes::<(u64, i64)>(body).ok()?.0.1
    } else {
        return None;
    };
    Some((ts_ms, change_uid(bytes)?))
}

/// Encodes several changes as one payload (for stream entries that carry a batch).
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails.
pub fn encode_changes(changes: &[Change]) -> Result<Vec<u8>, CodecError> {
    encode(&changes)
}

/// Decodes a payload written by [`encode_changes`].
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed bytes.
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, CodecError> {
    decode(bytes)
}

/// Encodes a snapshot.
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails.
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_snapshot_header(snapshot, &mut out)?;
    encode_resources_into(&snapshot.resources, &mut out)?;
    Ok(out)
}

/// Appends the start of a snapshot's encoding to `out`: everything before its resources.
/// Followed by every resource of `snapshot.resources` in order ([`encode_resources_into`],
/// in as many pieces as the caller likes, on as many threads), it makes the bytes of
/// [`encode_snapshot`].
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails (it does not for well-formed values).
pub fn encode_snapshot_header(snapshot: &Snapshot, out: &mut Vec<u8>) -> Result<(), CodecError> {
    // `(version, Snapshot { seq, taken_at_ms, resources })`: a byte, two integers, then the
    // resources as a sequence (its length, then its elements).
    let len = snapshot.resources.len() as u64;
    postcard::to_io(
        &(FORMAT_VERSION, snapshot.seq, snapshot.taken_at_ms, len),
        &mut *out,
    )
    .map_err(CodecError::Encode)?;
    Ok(())
}

/// Appends the encoding of `resources`, one after the other, to `out` (see
/// [`encode_snapshot_header`]).
///
/// # Errors
/// [`CodecError::Encode`] if serialisation fails (it does not for well-formed values).
pub fn encode_resources_into<'a>(
    resources: impl IntoIterator<Item = &'a Arc<Resource>>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    for r in resources {
        postcard::to_io(&**r, &mut *out).map_err(CodecError::Encode)?;
    }
    Ok(())
}

/// Decodes a snapshot.
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed bytes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, CodecError> {
    collect_snapshot(read_snapshot(bytes)?)
}

/// Collects what a [`SnapshotReader`] yields into a [`Snapshot`].
///
/// # Errors
/// The first resource's error.
pub fn collect_snapshot<R: Read>(reader: SnapshotReader<R>) -> Result<Snapshot, CodecError> {
    let (seq, taken_at_ms) = (reader.seq, reader.taken_at_ms);
    let resources = reader.map(|r| r.map(Arc::new)).collect::<Result<_, _>>()?;
    Ok(Snapshot {
        seq,
        taken_at_ms,
        resources,
    })
}

/// Bytes a [`SnapshotReader`] reads from its source at a time.
const READ_AHEAD: usize = 256 << 10;

/// Reads a snapshot's header from `source`, then yields its resources one at a time as they
/// are decoded: building from them can start before the last one is read, and a compressed
/// snapshot can be decompressed as it is read (no buffer the size of the whole).
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed header bytes, or a failing
/// source; each resource is checked as it is read.
pub fn read_snapshot<R: Read>(source: R) -> Result<SnapshotReader<R>, CodecError> {
    let mut reader = SnapshotReader {
        seq: 0,
        taken_at_ms: 0,
        remaining: 0,
        version: FORMAT_VERSION,
        source,
        buf: Vec::new(),
        start: 0,
        eof: false,
    };
    let version = reader.take_value::<u8>().map_err(|e| match e {
        CodecError::Malformed(_) => CodecError::Empty,
        other => other,
    })?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(CodecError::UnknownVersion { found: version });
    }
    reader.version = version;
    // `Snapshot { seq, taken_at_ms, resources }`: two integers, then a sequence (its length,
    // then its elements).
    reader.seq = reader.take_value::<u64>()?;
    reader.taken_at_ms = reader.take_value::<i64>()?;
    reader.remaining = reader.take_value::<u64>()?;
    Ok(reader)
}

/// The resources of a snapshot, decoded one at a time ([`read_snapshot`]). After an error it
/// yields nothing more.
#[derive(Debug)]
pub struct SnapshotReader<R> {
    /// The last change sequence the snapshot includes.
    pub seq: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    remaining: u64,
    /// The payload's format version.
    version: u8,
    source: R,
    /// Bytes read from `source`; those before `start` are decoded.
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

/// The fewest bytes a resource encodes to (every field at least one byte); bounds the
/// capacity a corrupt resource count can ask for.
const MIN_RESOURCE_BYTES: usize = 12;

impl<R: Read> SnapshotReader<R> {
    /// How many resources are left, as far as a count that may be corrupt can be trusted:
    /// never more than `bound_bytes` (the payload's size, when known) could hold.
    pub fn capacity_hint(&self, bound_bytes: usize) -> usize {
        usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(bound_bytes / MIN_RESOURCE_BYTES)
    }

    /// Decodes the next value, reading more from the source while the buffered bytes end
    /// inside it.
    fn take_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, CodecError> {
        loop {
            match postcard::take_from_bytes::<T>(&self.buf[self.start..]) {
                Ok((value, rest)) => {
                    self.start = self.buf.len() - rest.len();
                    return Ok(value);
                }
                Err(postcard::Error::DeserializeUnexpectedEnd) if !self.eof => self.fill()?,
                Err(e) => return Err(CodecError::Malformed(e)),
            }
        }
    }

    /// Keeps the undecoded bytes and reads [`READ_AHEAD`] more (or up to the end).
    fn fill(&mut self) -> Result<(), CodecError> {
        self.buf.drain(..self.start);
        self.start = 0;
        let mut filled = self.buf.len();
        self.buf.resize(filled + READ_AHEAD, 0);
        while filled < self.buf.len() {
            match self.source.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(CodecError::Read(e));
                }
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }
}

impl<R: Read> Iterator for SnapshotReader<R> {
    type Item = Result<Resource, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let resource = {
            let _legacy = (self.version == 1).then(LegacyKinds::enter);
            self.take_value::<Resource>()
        };
        match resource {
            Ok(resource) => {
                self.remaining -= 1;
                Some(Ok(resource))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeOp, EdgeKind, Kind, ObjectKey, Reference, Uid};

    /// A labelled Pod in `ns` that references a ConfigMap.
    fn pod(uid: &str, name: &str) -> Resource {
        let mut r = Resource::new(uid, Kind::Pod, "ns", name);
        r.labels.insert("app", "web");
        r.references.push(Reference::to_key(
            EdgeKind::UsesConfigmap,
            Kind::ConfigMap,
            "ns",
            "cfg",
        ));
        r
    }

    fn change(seq: u64) -> Change {
        Change {
            seq,
            ts_ms: 1_700_000_000_000,
            op: ChangeOp::Upsert(Arc::new(pod("u1", "p"))),
        }
    }

    #[test]
    fn change_round_trips() {
        let c = change(7);
        let bytes = encode_change(&c).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_change(&bytes).unwrap(), c);
        let mut shared = vec![7u8];
        encode_change_into(&c, &mut shared).unwrap();
        assert_eq!(&shared[1..], &bytes[..]);
        let many = vec![change(1), change(2)];
        assert_eq!(
            decode_changes(&encode_changes(&many).unwrap()).unwrap(),
            many
        );
    }

    #[test]
    fn change_uid_range_finds_the_uid_of_both_variants() {
        let upsert = change(300);
        let deleted = Change {
            seq: u64::MAX,
            ts_ms: -5,
            op: ChangeOp::Delete {
                uid: Uid::from("uid-that-went"),
                key: ObjectKey::new(Kind::Pod, "ns", "p"),
            },
        };
        for c in [upsert, deleted] {
            let bytes = encode_change(&c).unwrap();
            let range = change_uid_range(&bytes).expect("a change");
            assert_eq!(&bytes[range], c.op.uid().as_str().as_bytes());
        }
        let bytes = encode_change(&change(1)).unwrap();
        let uid_end = change_uid_range(&bytes).unwrap().end;
        assert_eq!(change_uid_range(&bytes[..uid_end - 1]), None, "cut short");
        assert_eq!(change_uid_range(&[]), None);
        assert_eq!(
            change_uid_range(&[9, 1, 1, 0, 1, b'u']),
            None,
            "unknown version"
        );
        let overlong = [[FORMAT_VERSION].as_slice(), &[0xff; 11]].concat();
        assert_eq!(
            change_uid_range(&overlong),
            None,
            "a varint longer than ten bytes"
        );
    }

    #[test]
    fn unknown_version_and_garbage_are_refused() {
        let mut bytes = encode_change(&change(1)).unwrap();
        bytes[0] = 9;
        assert!(matches!(
            decode_change(&bytes),
            Err(CodecError::UnknownVersion { found: 9 })
        ));
        assert!(matches!(decode_change(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode_change(&[FORMAT_VERSION, 0xff, 0xff]),
            Err(CodecError::Malformed(_))
        ));
        let good = encode_change(&change(1)).unwrap();
        assert!(
            decode_change(&good[..good.len() / 2]).is_err(),
            "truncated payload"
        );
    }

    #[test]
    fn snapshot_round_trips() {
        let s = Snapshot {
            seq: 3,
            taken_at_ms: 5,
            resources: vec![Arc::new(Resource::new("a", Kind::Node, "", "n1"))],
        };
        assert_eq!(decode_snapshot(&encode_snapshot(&s).unwrap()).unwrap(), s);
        let mut many = s.clone();
        many.resources = (0..300)
            .map(|i| Arc::new(pod(&format!("uid-{i}"), &format!("pod-{i}"))))
            .collect();
        let bytes = encode_snapshot(&many).unwrap();
        assert_eq!(decode_snapshot(&bytes).unwrap(), many);
        let reader = read_snapshot(&bytes[..]).unwrap();
        assert_eq!((reader.seq, reader.taken_at_ms), (3, 5));
        assert_eq!(reader.capacity_hint(bytes.len()), many.resources.len());
        // A source that hands out a few bytes per read: values span many refills.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = out.len().min(self.0.len()).min(7);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert_eq!(
            collect_snapshot(read_snapshot(Trickle(&bytes)).unwrap()).unwrap(),
            many
        );
        for cut in [bytes.len() - 1, bytes.len() / 2, 4] {
            assert!(decode_snapshot(&bytes[..cut]).is_err(), "cut at {cut}");
            let items: Vec<_> = read_snapshot(&bytes[..cut]).into_iter().flatten().collect();
            assert!(
                items.last().is_none_or(|r| r.is_err()),
                "a reader of cut bytes ends in an error"
            );
        }
        // seq 1, taken at 0, then a count of 2^64 - 1.
        let huge_count = [[FORMAT_VERSION, 1, 0].as_slice(), &[0xff; 9], &[0x01, 7]].concat();
        let reader = read_snapshot(&huge_count[..]).unwrap();
        assert_eq!(
            reader.capacity_hint(huge_count.len()),
            1,
            "a corrupt count reserves no more than the bytes can hold"
        );
        assert!(decode_snapshot(&huge_count).is_err());
        let mut pieces = Vec::new();
        encode_snapshot_header(&many, &mut pieces).unwrap();
        for part in many.resources.chunks(7) {
            encode_resources_into(part, &mut pieces).unwrap();
        }
        assert_eq!(pieces, bytes, "encoded in pieces");
        assert_eq!(bytes, encode(&many).unwrap(), "the layout serde derives");
    }
}
