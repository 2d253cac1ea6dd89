//! The versioned binary codec for changes and snapshots (postcard, see `docs/adr/0001`).
//!
//! Every encoded value starts with one format-version byte; a decoder refuses a version it does
//! not know instead of misreading it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Change, Resource};

/// The format version written by this build.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No bytes at all.
    #[error("empty payload")]
    Empty,
    /// The first byte names a format version this build does not know.
    #[error("unknown format version {found} (this build reads version {FORMAT_VERSION})")]
    UnknownVersion {
        /// The version found.
        found: u8,
    },
    /// The payload is not a valid encoding.
    #[error("malformed payload")]
    Malformed(#[source] postcard::Error),
    /// A value could not be encoded.
    #[error("encoding failed")]
    Encode(#[source] postcard::Error),
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

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).map_err(CodecError::Encode)?;
    Ok(out)
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => postcard::from_bytes(body).map_err(CodecError::Malformed),
        Some((&found, _)) => Err(CodecError::UnknownVersion { found }),
    }
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
    encode(snapshot)
}

/// Encodes a snapshot into `out` (a compressor, say, so that compression runs while encoding).
///
/// # Errors
/// [`CodecError::Encode`] if serialisation or writing fails.
pub fn encode_snapshot_into<W: std::io::Write>(
    snapshot: &Snapshot,
    out: W,
) -> Result<W, CodecError> {
    // A `u8` is one byte in postcard: the same bytes as `encode_snapshot`.
    postcard::to_io(&(FORMAT_VERSION, snapshot), out).map_err(CodecError::Encode)
}

/// Decodes a snapshot.
///
/// # Errors
/// [`CodecError`] for empty, unknown-version or malformed bytes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, CodecError> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeOp, EdgeKind, Kind, Reference};

    fn change(seq: u64) -> Change {
        let mut r = Resource::new("u1", Kind::Pod, "ns", "p");
        r.labels.insert("app", "web");
        r.references.push(Reference::to_key(
            EdgeKind::UsesConfigmap,
            Kind::ConfigMap,
            "ns",
            "cfg",
        ));
        Change {
            seq,
            ts_ms: 1_700_000_000_000,
            op: ChangeOp::Upsert(Arc::new(r)),
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
        let streamed = encode_snapshot_into(&s, Vec::new()).unwrap();
        assert_eq!(streamed, encode_snapshot(&s).unwrap());
    }
}
