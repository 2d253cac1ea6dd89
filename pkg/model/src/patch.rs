//! [`ResourcePatch`]: what changed in one object from one version to the next, as the event log
//! keeps an update of an object it already holds (see `docs/adr/0020`).
//!
//! A Pod's status moving from "Pending" to "Running" changes two or three of the fields the
//! server keeps; the whole record is thirty times larger. A patch carries the object's UID, a
//! check of the version it applies to (a hash of that version's `resourceVersion`), and the
//! top-level fields that differ, with their new values. Identity (UID, kind, namespace, name)
//! never changes within a patch: a change of identity is a whole record.
//!
//! Encoding (after the codec's format byte [`crate::codec::PATCH_FORMAT`]):
//!
//! ```text
//! ts_ms      zigzag varint
//! mask       varint: bit 0 set = the UID is text (else 16 bytes of a canonical UUID);
//!            bits 1..=8 = labels, annotations, created_at, resource_version, owners, status,
//!            facts, references present
//! uid        16 bytes, or a postcard string
//! base       u32 LE: FNV-1a of the base version's resourceVersion
//! fields     each present field in bit order, postcard; resource_version as a varint n
//!            (n - 1 is the decimal number it spells, in canonical form) or 0 then a string
//! ```

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::resource::{FactSet, OwnerRef, Status};
use crate::{Labels, Reference, Resource, Str, Uid};

/// The top-level fields of a [`Resource`] that differ between two versions of one object, with
/// their new values; `None` for a field that did not change.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResourcePatch {
    /// The object.
    pub uid: Uid,
    /// [`version_check`] of the version the patch applies to.
    pub base: u32,
    /// New `labels`.
    pub labels: Option<Labels>,
    /// New `annotations`.
    pub annotations: Option<Labels>,
    /// New `created_at`.
    pub created_at: Option<i64>,
    /// New `resource_version`.
    pub resource_version: Option<Str>,
    /// New `owners`.
    pub owners: Option<Vec<OwnerRef>>,
    /// New `status`.
    pub status: Option<Status>,
    /// New `facts`.
    pub facts: Option<FactSet>,
    /// New `references`.
    pub references: Option<Vec<Reference>>,
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// No version of the object to apply it to.
    #[error("patch of {uid}: no earlier version of the object to apply it to")]
    NoBase {
        /// The object.
        uid: Uid,
    },
    /// The version at hand is not the one the patch was made against.
    #[error("patch of {uid}: made against another version than resourceVersion {found:?}")]
    WrongBase {
        /// The object.
        uid: Uid,
        /// The resourceVersion of the version at hand.
        found: Str,
    },
}

/// The check a patch carries of the version it applies to: 32-bit FNV-1a of its
/// `resourceVersion` (which the API server changes on every write of an object).
pub fn version_check(resource_version: &str) -> u32 {
    resource_version.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl ResourcePatch {
    /// The patch from `old` to `new`, or `None` where a patch would not identify its base
    /// unambiguously: another object or identity, an `old` without a `resourceVersion`, or a
    /// `new` with the same one.
    pub fn between(old: &Resource, new: &Resource) -> Option<Self> {
        if old.uid != new.uid
            || old.kind != new.kind
            || old.namespace != new.namespace
            || old.name != new.name
            || old.resource_version.is_empty()
            || old.resource_version == new.resource_version
        {
            return None;
        }
        fn differs<T: PartialEq + Clone>(old: &T, new: &T) -> Option<T> {
            (old != new).then(|| new.clone())
        }
        Some(ResourcePatch {
            uid: new.uid.clone(),
            base: version_check(&old.resource_version),
            labels: differs(&old.labels, &new.labels),
            annotations: differs(&old.annotations, &new.annotations),
            created_at: differs(&old.created_at, &new.created_at),
            resource_version: differs(&old.resource_version, &new.resource_version),
            owners: differs(&old.owners, &new.owners),
            status: differs(&old.status, &new.status),
            facts: differs(&old.facts, &new.facts),
            references: differs(&old.references, &new.references),
        })
    }

    /// The version this patch makes of `base` (`None`: no version at hand).
    ///
    /// # Errors
    /// [`PatchError`] when there is no base, or it is not the version the patch was made
    /// against.
    pub fn apply(&self, base: Option<&Resource>) -> Result<Resource, PatchError> {
        let Some(base) = base else {
            return Err(PatchError::NoBase {
                uid: self.uid.clone(),
            });
        };
        if base.uid != self.uid || version_check(&base.resource_version) != self.base {
            return Err(PatchError::WrongBase {
                uid: self.uid.clone(),
                found: base.resource_version.clone(),
            });
        }
        let mut new = base.clone();
        fn set<T: Clone>(field: &mut T, value: Option<&T>) {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        set(&mut new.labels, self.labels.as_ref());
        set(&mut new.annotations, self.annotations.as_ref());
        set(&mut new.created_at, self.created_at.as_ref());
        set(&mut new.resource_version, self.resource_version.as_ref());
        set(&mut new.owners, self.owners.as_ref());
        set(&mut new.status, self.status.as_ref());
        set(&mut new.facts, self.facts.as_ref());
        set(&mut new.references, self.references.as_ref());
        Ok(new)
    }

    /// Applies the patch to `version` in place (the version it was made against). A version
    /// that already has the patch's `resourceVersion` is left as it is.
    ///
    /// # Errors
    /// [`PatchError::WrongBase`] when `version` is another one; it is then left as it was.
    pub fn apply_in_place(self, version: &mut Resource) -> Result<(), PatchError> {
        if self.resource_version.as_ref() == Some(&version.resource_version) {
            return Ok(());
        }
        if version.uid != self.uid || version_check(&version.resource_version) != self.base {
            return Err(PatchError::WrongBase {
                uid: self.uid,
                found: version.resource_version.clone(),
            });
        }
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut version.labels, self.labels);
        set(&mut version.annotations, self.annotations);
        set(&mut version.created_at, self.created_at);
        set(&mut version.resource_version, self.resource_version);
        set(&mut version.owners, self.owners);
        set(&mut version.status, self.status);
        set(&mut version.facts, self.facts);
        set(&mut version.references, self.references);
        Ok(())
    }

    /// Appends the encoding (after the format byte, see the [module](self)) to `out`.
    pub(crate) fn encode_into(&self, ts_ms: i64, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
        let uuid = uuid_bytes(self.uid.as_str());
        let mut mask = u16::from(uuid.is_none());
        let present = [
            self.labels.is_some(),
            self.annotations.is_some(),
            self.created_at.is_some(),
            self.resource_version.is_some(),
            self.owners.is_some(),
            self.status.is_some(),
            self.facts.is_some(),
            self.references.is_some(),
        ];
        for (bit, set) in present.iter().enumerate() {
            if *set {
                mask |= 1 << (bit + 1);
            }
        }
        put(&(ts_ms, mask), out)?;
        match uuid {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => put(self.uid.as_str(), out)?,
        }
        out.extend_from_slice(&self.base.to_le_bytes());
        opt(self.labels.as_ref(), out)?;
        opt(self.annotations.as_ref(), out)?;
        opt(self.created_at.as_ref(), out)?;
        if let Some(rv) = &self.resource_version {
            match decimal(rv) {
                Some(n) => put(&(n + 1), out)?,
                None => put(&(0u64, rv.as_str()), out)?,
            }
        }
        opt(self.owners.as_ref(), out)?;
        opt(self.status.as_ref(), out)?;
        opt(self.facts.as_ref(), out)?;
        opt(self.references.as_ref(), out)
    }

    /// Decodes what [`ResourcePatch::encode_into`] wrote: the timestamp and the patch.
    pub(crate) fn decode(body: &[u8]) -> Result<(i64, ResourcePatch), postcard::Error> {
        let ((ts_ms, mask), mut rest) = postcard::take_from_bytes::<(i64, u16)>(body)?;
        let uid = if mask & 1 == 0 {
            let (bytes, tail) = rest
                .split_first_chunk::<16>()
                .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            rest = tail;
            let ascii = uuid_ascii(bytes);
            Uid::from(std::str::from_utf8(&ascii).map_err(|_| postcard::Error::DeserializeBadUtf8)?)
        } else {
            Uid::from(take::<&str>(&mut rest)?)
        };
        let (base, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        rest = tail;
        let has = |bit: u16| mask & (1 << (bit + 1)) != 0;
        let mut patch = ResourcePatch {
            uid,
            base: u32::from_le_bytes(*base),
            labels: take_if(has(0), &mut rest)?,
            annotations: take_if(has(1), &mut rest)?,
            created_at: take_if(has(2), &mut rest)?,
            resource_version: None,
            owners: None,
            status: None,
            facts: None,
            references: None,
        };
        if has(3) {
            let n = take::<u64>(&mut rest)?;
            patch.resource_version = Some(match n.checked_sub(1) {
                Some(n) => compact_str::format_compact!("{n}"),
                None => Str::from(take::<&str>(&mut rest)?),
            });
        }
        patch.owners = take_if(has(4), &mut rest)?;
        patch.status = take_if(has(5), &mut rest)?;
        patch.facts = take_if(has(6), &mut rest)?;
        patch.references = take_if(has(7), &mut rest)?;
        if mask >> 9 != 0 || !rest.is_empty() {
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        Ok((ts_ms, patch))
    }

    /// Whether the patch encoded in `body` leaves the fields edges derive from (labels, owners,
    /// references) as they were, read from its mask alone. `None` when `body` is cut short.
    pub(crate) fn keeps_edges(body: &[u8]) -> Option<bool> {
        let ((_, mask), _) = postcard::take_from_bytes::<(i64, u16)>(body).ok()?;
        // Bits 1 (labels), 5 (owners) and 8 (references); see the module documentation.
        Some(mask & (1 << 1 | 1 << 5 | 1 << 8) == 0)
    }

    /// The UID as the codec keys changes by (its text), read without decoding the rest.
    pub(crate) fn key(body: &[u8]) -> Option<UidAt> {
        let ((_, mask), rest) = postcard::take_from_bytes::<(i64, u16)>(body).ok()?;
        let start = body.len() - rest.len();
        if mask & 1 == 0 {
            let bytes = rest.first_chunk::<16>()?;
            return Some(UidAt::Text(uuid_text(bytes)));
        }
        let (len, text) = postcard::take_from_bytes::<u64>(rest).ok()?;
        let from = start + (rest.len() - text.len());
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        (to <= body.len()).then_some(UidAt::Range(from..to))
    }
}

/// Where a change's UID is: a range of its payload, or text decoded from a compact form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UidAt {
    /// These bytes of the payload (relative to the start of the payload).
    Range(std::ops::Range<usize>),
    /// The UID's text.
    Text(String),
}

fn put<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    postcard::to_io(value, &mut *out).map(|_| ())
}

fn opt<T: Serialize>(value: Option<&T>, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    value.map_or(Ok(()), |v| put(v, out))
}

fn take<'a, T: serde::Deserialize<'a>>(rest: &mut &'a [u8]) -> Result<T, postcard::Error> {
    let (value, tail) = postcard::take_from_bytes::<T>(rest)?;
    *rest = tail;
    Ok(value)
}

fn take_if<T: DeserializeOwned>(
    present: bool,
    rest: &mut &[u8],
) -> Result<Option<T>, postcard::Error> {
    if !present {
        return Ok(None);
    }
    let (value, tail) = postcard::take_from_bytes::<T>(rest)?;
    *rest = tail;
    Ok(Some(value))
}

/// `text` as a number, when it is one in canonical decimal form (no sign, no leading zero)
/// below `u64::MAX`.
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|n| *n < u64::MAX)
}

/// The 16 bytes of `text` when it is a UUID in canonical form (lowercase, hyphenated), which is
/// how the API server writes UIDs.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let raw = text.as_bytes();
    if raw.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for (i, &c) in raw.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
        nibbles += 1;
    }
    Some(out)
}

/// The canonical text of a UUID's 16 bytes (ASCII).
fn uuid_ascii(bytes: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(b >> 4)];
        out[at + 1] = HEX[usize::from(b & 15)];
        at += 2;
    }
    out
}

/// The canonical text of a UUID's 16 bytes.
fn uuid_text(bytes: &[u8; 16]) -> String {
    uuid_ascii(bytes).iter().map(|&b| char::from(b)).collect()
}

/// An `Arc` of the version `patch` makes of `base`.
///
/// # Errors
/// As [`ResourcePatch::apply`].
pub fn apply_arc(
    patch: &ResourcePatch,
    base: Option<&Arc<Resource>>,
) -> Result<Arc<Resource>, PatchError> {
    patch.apply(base.map(|b| &**b)).map(Arc::new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Health, Kind};

    fn pod(uid: &str, rv: &str) -> Resource {
        let mut r = Resource::new(uid, Kind::Pod, "shop", "web-1");
        r.resource_version = rv.into();
        r.labels.insert("app", "web");
        r
    }

    #[test]
    fn a_patch_carries_only_what_changed_and_round_trips() {
        for uid in [
            "0b6f3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "not-a-uuid",
            "0B6F3F0E-1C2D-4E5F-8A9B-0C1D2E3F4A5B",
        ] {
            for rv in ["1234567", "07", "opaque-rv"] {
                let old = pod(uid, "1000");
                let mut new = old.clone();
                new.resource_version = rv.into();
                new.status.health = Health::Ready;
                new.status.message = "Running".into();
                let patch = ResourcePatch::between(&old, &new).unwrap();
                assert!(patch.labels.is_none() && patch.owners.is_none());
                let mut out = Vec::new();
                patch.encode_into(1_700_000_000_123, &mut out).unwrap();
                let (ts, back) = ResourcePatch::decode(&out).unwrap();
                assert_eq!((ts, &back), (1_700_000_000_123, &patch), "{uid} {rv}");
                assert_eq!(back.apply(Some(&old)).unwrap(), new);
                let key = match ResourcePatch::key(&out).unwrap() {
                    UidAt::Text(t) => t,
                    UidAt::Range(r) => std::str::from_utf8(&out[r]).unwrap().to_owned(),
                };
                assert_eq!(key, uid);
                for cut in 0..out.len() {
                    assert!(ResourcePatch::decode(&out[..cut]).is_err(), "cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn the_codec_tells_patches_from_whole_changes_and_stamps_both() {
        use crate::codec::{self, CodecError};
        use crate::{Change, ChangeOp};
        let uid = "0b6f3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        let old = pod(uid, "1000");
        let mut new = old.clone();
        new.resource_version = "1001".into();
        new.status.message = "Running".into();
        let whole = Change {
            seq: 7,
            ts_ms: 1234,
            op: ChangeOp::Upsert(Arc::new(new.clone())),
        };
        let whole_bytes = codec::encode_change(&whole).unwrap();
        let mut patch_bytes = Vec::new();
        let patch = ResourcePatch::between(&old, &new).unwrap();
        codec::encode_patch_into(1234, &patch, &mut patch_bytes).unwrap();
        assert!(!codec::is_patch(&whole_bytes) && codec::is_patch(&patch_bytes));
        for bytes in [&whole_bytes, &patch_bytes] {
            let (ts, at) = codec::change_stamp(bytes).unwrap();
            let text = match at {
                UidAt::Text(t) => t,
                UidAt::Range(r) => std::str::from_utf8(&bytes[r]).unwrap().to_owned(),
            };
            assert_eq!((ts, text.as_str()), (1234, uid));
        }
        assert!(matches!(
            codec::decode_change(&patch_bytes),
            Err(CodecError::Patch)
        ));
        let logged = codec::decode_logged(7, &patch_bytes).unwrap();
        let base = Arc::new(old.clone());
        assert_eq!(logged.clone().resolve(|_| Some(&base)).unwrap(), whole);
        // Its result already at hand (a snapshot copied after it): that very version.
        let done = Arc::new(new.clone());
        let resolved = logged.clone().resolve(|_| Some(&done)).unwrap();
        assert!(matches!(resolved.op, ChangeOp::Upsert(r) if Arc::ptr_eq(&r, &done)));
        assert!(matches!(
            logged.resolve(|_| None),
            Err(PatchError::NoBase { .. })
        ));
    }

    #[test]
    fn only_patches_that_leave_labels_owners_and_references_keep_edges() {
        use crate::codec;
        use crate::{Change, ChangeOp, EdgeKind, OwnerRef};
        let old = pod("0b6f3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "1000");
        let encoded = |new: &Resource| {
            let mut out = Vec::new();
            let patch = ResourcePatch::between(&old, new).unwrap();
            codec::encode_patch_into(1, &patch, &mut out).unwrap();
            out
        };
        let mut status = old.clone();
        status.resource_version = "1001".into();
        status.status.message = "Running".into();
        status.annotations.insert("note", "x");
        assert!(codec::keeps_edges(&encoded(&status)));
        let mut labels = status.clone();
        labels.labels.insert("tier", "front");
        let mut owners = status.clone();
        owners.owners.push(OwnerRef {
            uid: "rs".into(),
            kind: Kind::ReplicaSet,
            name: "web".into(),
            controller: true,
        });
        let mut references = status.clone();
        references
            .references
            .push(Reference::to_key(EdgeKind::RunsOn, Kind::Node, "", "n1"));
        for new in [&labels, &owners, &references] {
            assert!(!codec::keeps_edges(&encoded(new)));
        }
        // A whole record, and bytes cut short, say nothing of what they leave.
        let whole = codec::encode_change(&Change {
            seq: 1,
            ts_ms: 1,
            op: ChangeOp::Upsert(Arc::new(status.clone())),
        })
        .unwrap();
        assert!(!codec::keeps_edges(&whole));
        assert!(!codec::keeps_edges(&encoded(&status)[..2]));
    }

    #[test]
    fn a_uuid_patch_of_a_status_change_is_small() {
        let old = pod("0b6f3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "1000000");
        let mut new = old.clone();
        new.resource_version = "1000042".into();
        new.status.message = "Running".into();
        let mut out = Vec::new();
        ResourcePatch::between(&old, &new)
            .unwrap()
            .encode_into(1_700_000_000_123, &mut out)
            .unwrap();
        // ts 6, mask 1, uid 16, base 4, rv 3, status 1 + 8.
        assert_eq!(out.len(), 39);
    }

    #[test]
    fn a_patch_applies_only_to_its_base() {
        let old = pod("u", "5");
        let mut new = old.clone();
        new.resource_version = "6".into();
        new.labels.insert("tier", "front");
        let patch = ResourcePatch::between(&old, &new).unwrap();
        assert_eq!(
            patch.apply(None),
            Err(PatchError::NoBase { uid: "u".into() })
        );
        assert!(matches!(
            patch.apply(Some(&new)),
            Err(PatchError::WrongBase { .. })
        ));
        assert!(matches!(
            patch.apply(Some(&pod("v", "5"))),
            Err(PatchError::WrongBase { .. })
        ));
        // No patch where the base is not identified.
        assert!(ResourcePatch::between(&pod("u", ""), &new).is_none());
        assert!(ResourcePatch::between(&old, &pod("u", "5")).is_none());
        let mut renamed = new.clone();
        renamed.name = "web-2".into();
        assert!(ResourcePatch::between(&old, &renamed).is_none());
    }
}
