//! Snapshots that re-encode only what changed: [`SnapshotEncoder`] keeps each part of the last
//! snapshot as a compressed zstd frame, and uses it again while the part's resources are the
//! very same.
//!
//! A snapshot is cut into parts per slice of the source's copy ([`SlicedSnapshot::slices`]: the
//! graph's node slots, which stay put while a resource lives). Within a slice, the kinds that
//! keep changing (Pods, in most clusters; learnt from the snapshots themselves) get a part each,
//! and everything else shares one part in slot order. Resources of one application sit next to
//! each other in slot order and share names and labels, so that shared part compresses as well
//! as the whole (a part per kind would cost 23% more bytes for the generated clusters, a part
//! for Pods alone 4%: docs/benchmarks.md); and a churning kind does not make its neighbours'
//! parts change with it.
//!
//! Every part is a zstd frame of its own ([`compress_parts`]), so a snapshot is still one zstd
//! stream of [`codec::encode_snapshot`]'s format, whatever was kept: readers do not know.

use std::ops::Range;
use std::sync::{Arc, Weak};

use astrolabe_model::codec::{self, CodecError, SlicedSnapshot, Snapshot};
use astrolabe_model::{Kind, Resource};
use bytes::Bytes;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::compress::{CompressError, Frame, SNAPSHOT_ZSTD_LEVEL, compress_parts, concat_frames};
use crate::error::{PersistError, Result};
use crate::log::SnapshotBlob;

/// Snapshots in a row a kind must change in before it gets parts of its own.
pub const PROMOTE_AFTER: u32 = 2;
/// Snapshots in a row without a change after which a kind goes back to the shared parts.
pub const DEMOTE_AFTER: u32 = 8;

/// A part: the slice it is in, and its kind when the kind has parts of its own (`None` for the
/// slice's shared part).
type PartKey = (usize, Option<Kind>);

/// A part's frame, kept while none of its resources changed.
#[derive(Debug)]
struct Kept {
    /// The part's resources when it was encoded. A `Weak` keeps the allocation, so an address
    /// is never reused while the part is kept: the same addresses in the same order are the same
    /// resources (the graph never changes a stored resource; an update swaps in a new `Arc`).
    members: Vec<Weak<Resource>>,
    frame: Frame,
}

/// How a kind changed in the last snapshots.
#[derive(Debug, Default, Clone, Copy)]
struct Churn {
    /// Snapshots in a row in which it changed.
    changed: u32,
    /// Snapshots in a row in which it did not.
    quiet: u32,
    /// Whether it has parts of its own.
    own_parts: bool,
}

/// Encodes the snapshots of one source, keeping each part's compressed frame for the next
/// snapshot (see the [module](self)).
///
/// Costs: the kept frames (the compressed snapshot's size), a `Weak` per resource (which keeps
/// the allocation, not the contents, of a resource replaced since the last snapshot), and a
/// part per churning kind per slice (Pods: 4% more bytes).
#[derive(Debug, Default)]
pub struct SnapshotEncoder {
    kept: FxHashMap<PartKey, Kept>,
    churn: FxHashMap<Kind, Churn>,
    last: EncodeStats,
}

/// What the last [`SnapshotEncoder::encode`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EncodeStats {
    /// Parts in the snapshot.
    pub parts: usize,
    /// Parts whose kept frame was used.
    pub kept: usize,
    /// Resources encoded and compressed.
    pub encoded_resources: usize,
    /// The kinds with parts of their own in this snapshot, in order.
    pub own_parts: Vec<Kind>,
}

/// One part of a snapshot being encoded.
struct Part<'a> {
    key: PartKey,
    members: Vec<&'a Arc<Resource>>,
}

impl SnapshotEncoder {
    /// Encode `copy`, compressed at [`SNAPSHOT_ZSTD_LEVEL`]: the parts that changed since the
    /// last call are encoded and compressed in parallel ([`compress_parts`]), the others use
    /// their kept frames. Afterwards the encoder keeps exactly this snapshot's parts.
    ///
    /// # Errors
    /// [`PersistError::SnapshotSource`] if encoding fails, [`PersistError::SnapshotCompress`] if
    /// compressing does; what the encoder keeps is then left as it was.
    pub fn encode(&mut self, copy: &SlicedSnapshot) -> Result<SnapshotBlob> {
        self.encode_slices(&copy.snapshot, &copy.slices, copy.copied_until)
    }

    /// What the last [`SnapshotEncoder::encode`] did.
    pub fn last_stats(&self) -> &EncodeStats {
        &self.last
    }

    /// [`SnapshotEncoder::encode`] of a snapshot and its slices.
    pub(crate) fn encode_slices(
        &mut self,
        snapshot: &Snapshot,
        slices: &[Range<usize>],
        copied_until: u64,
    ) -> Result<SnapshotBlob> {
        let mut own_parts: Vec<Kind> = self
            .churn
            .iter()
            .filter(|(_, c)| c.own_parts)
            .map(|(k, _)| k.clone())
            .collect();
        own_parts.sort();
        let parts = parts(&snapshot.resources, slices, &own_parts);
        let changed: Vec<usize> = (0..parts.len())
            .filter(|&i| !self.unchanged(&parts[i]))
            .collect();
        let mut header = Vec::new();
        codec::encode_snapshot_header(snapshot, &mut header).map_err(source_error)?;
        // The header is a frame of its own, compressed with the changed parts.
        let mut fresh = compress_parts(SNAPSHOT_ZSTD_LEVEL, changed.len() + 1, |i, out| {
            match i.checked_sub(1) {
                None => {
                    out.extend_from_slice(&header);
                    Ok(())
                }
                Some(c) => {
                    codec::encode_resources_into(parts[changed[c]].members.iter().copied(), out)
                }
            }
        })
        .map_err(|e| match e {
            CompressError::Encode(e) => source_error(e),
            CompressError::Io(e) => PersistError::SnapshotCompress(e),
        })?
        .into_iter();
        let header = fresh.next().unwrap_or_default();

        let changed_kinds = self.changed_kinds(&parts, &changed);
        let stats = EncodeStats {
            parts: parts.len(),
            kept: parts.len() - changed.len(),
            encoded_resources: changed.iter().map(|&c| parts[c].members.len()).sum(),
            own_parts,
        };
        let mut fresh = changed.iter().copied().zip(fresh).peekable();
        let mut kept = FxHashMap::default();
        kept.reserve(parts.len());
        let mut frames = Vec::with_capacity(parts.len() + 1);
        frames.push(header);
        for (i, part) in parts.into_iter().enumerate() {
            let entry = match fresh.next_if(|(c, _)| *c == i) {
                Some((_, frame)) => Kept {
                    members: part.members.iter().map(|r| Arc::downgrade(r)).collect(),
                    frame,
                },
                // Unchanged: the kept entry moves over as it is.
                None => self.kept.remove(&part.key).ok_or_else(|| {
                    PersistError::SnapshotSource(format!(
                        "no kept frame for the unchanged part {:?}",
                        part.key
                    ))
                })?,
            };
            frames.push(entry.frame.clone());
            kept.insert(part.key, entry);
        }
        let (bytes, raw_len) = concat_frames(&frames);
        self.kept = kept;
        self.learn(&changed_kinds);
        self.last = stats;
        Ok(SnapshotBlob {
            seq: snapshot.seq,
            resource_count: snapshot.resources.len() as u64,
            bytes: Bytes::from(bytes),
            zstd_raw_len: Some(raw_len),
            copied_until,
            taken_at_ms: snapshot.taken_at_ms,
        })
    }

    /// Whether `part` is the very part kept from the last snapshot.
    fn unchanged(&self, part: &Part<'_>) -> bool {
        self.kept.get(&part.key).is_some_and(|k| {
            k.members.len() == part.members.len()
                && k.members
                    .iter()
                    .zip(&part.members)
                    .all(|(kept, now)| std::ptr::eq(kept.as_ptr(), Arc::as_ptr(now)))
        })
    }

    /// The kinds of the resources that changed since the last snapshot, as far as the changed
    /// parts tell: a kind's own part changed, or a shared part holds a resource that no part of
    /// its slice held (removals alone are not seen; they do not make a kind churn).
    fn changed_kinds(&self, parts: &[Part<'_>], changed: &[usize]) -> FxHashSet<Kind> {
        let mut kinds = FxHashSet::default();
        for part in changed.iter().map(|&c| &parts[c]) {
            let (slice, kind) = &part.key;
            if let Some(kind) = kind {
                kinds.insert(kind.clone());
                continue;
            }
            // A slice has one shared part, so each slice's kept members are gathered once.
            let known: FxHashSet<*const Resource> = self
                .kept
                .iter()
                .filter(|((s, _), _)| s == slice)
                .flat_map(|(_, k)| k.members.iter().map(Weak::as_ptr))
                .collect();
            // Nothing kept for this slice (the first snapshot, say): nothing to compare.
            if known.is_empty() {
                continue;
            }
            kinds.extend(
                part.members
                    .iter()
                    .filter(|r| !known.contains(&Arc::as_ptr(r)))
                    .map(|r| r.kind.clone()),
            );
        }
        kinds
    }

    /// Give kinds that changed in [`PROMOTE_AFTER`] snapshots in a row parts of their own, and
    /// take them back after [`DEMOTE_AFTER`] quiet ones. Either move changes the shared parts
    /// of every slice the kind is in once, so both need a streak.
    fn learn(&mut self, changed: &FxHashSet<Kind>) {
        for kind in changed {
            self.churn.entry(kind.clone()).or_default();
        }
        self.churn.retain(|kind, c| {
            if changed.contains(kind) {
                c.changed += 1;
                c.quiet = 0;
                c.own_parts |= c.changed >= PROMOTE_AFTER;
            } else {
                c.changed = 0;
                c.quiet += 1;
                c.own_parts &= c.quiet < DEMOTE_AFTER;
            }
            c.own_parts || c.changed > 0
        });
    }
}

fn source_error(e: CodecError) -> PersistError {
    PersistError::SnapshotSource(format!("encoding the snapshot failed: {e}"))
}

/// The parts of a snapshot copied in `slices`: per slice, the shared part (every resource whose
/// kind is not in `own_parts`) and then a part per kind of `own_parts` present, each in slot
/// order. A resource copied twice (re-created in a later slot during the copy) keeps its later
/// copy last, as the fuzzy copy requires: both copies have the same kind, so the same class of
/// part, and slices and slots keep their order.
fn parts<'a>(
    resources: &'a [Arc<Resource>],
    slices: &[Range<usize>],
    own_parts: &[Kind],
) -> Vec<Part<'a>> {
    let mut parts: Vec<Part<'a>> = Vec::with_capacity(slices.len() * (own_parts.len() + 1));
    for (slice, range) in slices.iter().enumerate() {
        let from = parts.len();
        parts.push(Part {
            key: (slice, None),
            members: Vec::with_capacity(range.len()),
        });
        for r in resources.get(range.clone()).unwrap_or_default() {
            let at = if own_parts.contains(&r.kind) {
                match parts[from..]
                    .iter()
                    .position(|p| p.key.1.as_ref() == Some(&r.kind))
                {
                    Some(at) => from + at,
                    None => {
                        parts.push(Part {
                            key: (slice, Some(r.kind.clone())),
                            members: Vec::new(),
                        });
                        parts.len() - 1
                    }
                }
            } else {
                from
            };
            parts[at].members.push(r);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(i: usize, kind: Kind, version: usize) -> Arc<Resource> {
        let mut r = Resource::new(format!("u{i}").as_str(), kind, "ns", format!("r{i}"));
        r.resource_version = version.to_string().into();
        Arc::new(r)
    }

    fn sliced(resources: &[Arc<Resource>], per_slice: usize, seq: u64) -> SlicedSnapshot {
        SlicedSnapshot {
            snapshot: Snapshot {
                seq,
                taken_at_ms: 0,
                resources: resources.to_vec(),
            },
            copied_until: seq,
            slices: SlicedSnapshot::even_slices(resources.len(), per_slice),
        }
    }

    fn decoded(blob: &SnapshotBlob) -> Snapshot {
        let raw = zstd::decode_all(&blob.bytes[..]).unwrap_or_else(|e| panic!("zstd: {e}"));
        assert_eq!(Some(raw.len() as u64), blob.zstd_raw_len);
        codec::decode_snapshot(&raw).unwrap_or_else(|e| panic!("decode: {e}"))
    }

    /// Pods every third slot, ConfigMaps between them.
    fn cluster(n: usize) -> Vec<Arc<Resource>> {
        (0..n)
            .map(|i| {
                let kind = if i.is_multiple_of(3) {
                    Kind::Pod
                } else {
                    Kind::ConfigMap
                };
                resource(i, kind, 0)
            })
            .collect()
    }

    /// Only what changed is encoded again; what is kept decodes to the same resources.
    #[test]
    fn unchanged_parts_are_kept_and_the_snapshot_reads_the_same() {
        let mut live = cluster(300);
        let mut encoder = SnapshotEncoder::default();
        let first = encoder.encode(&sliced(&live, 100, 1)).expect("encodes");
        assert_eq!(decoded(&first).resources, live);
        assert_eq!(encoder.last_stats().kept, 0);
        assert_eq!(encoder.last_stats().encoded_resources, 300);

        let again = encoder.encode(&sliced(&live, 100, 2)).expect("encodes");
        assert_eq!(
            (
                encoder.last_stats().kept,
                encoder.last_stats().encoded_resources
            ),
            (3, 0),
            "nothing changed: every part kept"
        );
        assert_eq!(decoded(&again).seq, 2, "the header is the new snapshot's");
        assert_eq!(decoded(&again).resources, live);

        // One ConfigMap in the second slice changes: only that slice's part is encoded.
        live[150] = resource(150, Kind::ConfigMap, 1);
        let third = encoder.encode(&sliced(&live, 100, 3)).expect("encodes");
        assert_eq!(encoder.last_stats().kept, 2);
        assert_eq!(encoder.last_stats().encoded_resources, 100);
        assert_eq!(decoded(&third).resources, live);
    }

    /// A kind that keeps changing gets parts of its own after [`PROMOTE_AFTER`] snapshots, so
    /// its churn no longer re-encodes its neighbours; after [`DEMOTE_AFTER`] quiet ones it goes
    /// back. Every snapshot reads back as the live set.
    #[test]
    fn a_churning_kind_gets_parts_of_its_own_and_gives_them_back() {
        let mut live = cluster(300);
        let mut encoder = SnapshotEncoder::default();
        let mut seq = 0;
        let mut snapshot = |encoder: &mut SnapshotEncoder, live: &[Arc<Resource>]| {
            seq += 1;
            let blob = encoder.encode(&sliced(live, 100, seq)).expect("encodes");
            let back = decoded(&blob).resources;
            let mut want: Vec<_> = live.iter().map(|r| r.uid.clone()).collect();
            let mut got: Vec<_> = back.iter().map(|r| r.uid.clone()).collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "snapshot {seq} holds every resource once");
            for r in &back {
                assert!(live.iter().any(|l| **l == **r), "{} as it is live", r.uid);
            }
        };
        snapshot(&mut encoder, &live);
        let churn_pods = |live: &mut Vec<Arc<Resource>>, round: u32| {
            for i in (0..live.len()).step_by(3) {
                live[i] = resource(i, Kind::Pod, round as usize);
            }
        };
        for round in 1..=PROMOTE_AFTER {
            churn_pods(&mut live, round);
            snapshot(&mut encoder, &live);
            assert!(
                encoder.last_stats().own_parts.is_empty(),
                "round {round}: not yet"
            );
        }
        // The first snapshot with Pod parts moves the Pods: everything is encoded once.
        churn_pods(&mut live, 10);
        snapshot(&mut encoder, &live);
        assert_eq!(encoder.last_stats().own_parts, vec![Kind::Pod]);
        assert_eq!(encoder.last_stats().parts, 6);
        // From then on the Pods' churn encodes the Pods only.
        churn_pods(&mut live, 11);
        snapshot(&mut encoder, &live);
        assert_eq!(
            (
                encoder.last_stats().kept,
                encoder.last_stats().encoded_resources
            ),
            (3, 100),
            "the shared parts are kept"
        );
        // Quiet: the Pods keep their parts until DEMOTE_AFTER snapshots in a row saw no change.
        for quiet in 1..DEMOTE_AFTER {
            snapshot(&mut encoder, &live);
            assert_eq!(
                encoder.last_stats().own_parts,
                vec![Kind::Pod],
                "quiet {quiet}"
            );
            assert_eq!(encoder.last_stats().encoded_resources, 0);
        }
        snapshot(&mut encoder, &live);
        assert_eq!(encoder.last_stats().own_parts, vec![Kind::Pod]);
        snapshot(&mut encoder, &live);
        assert!(encoder.last_stats().own_parts.is_empty(), "given back");
        assert_eq!(encoder.last_stats().parts, 3);
        // Moving back is not mistaken for churn: the next quiet snapshot keeps everything.
        snapshot(&mut encoder, &live);
        assert_eq!(encoder.last_stats().kept, 3);
        assert!(encoder.churn.is_empty(), "{:?}", encoder.churn);
    }

    /// A slice where a resource was replaced or removed is encoded again, the others kept.
    #[test]
    fn replaced_and_removed_resources_are_encoded_again() {
        let mut live = cluster(200);
        let mut encoder = SnapshotEncoder::default();
        encoder.encode(&sliced(&live, 100, 1)).expect("encodes");
        live.remove(10);
        live.insert(10, resource(10, Kind::ConfigMap, 7));
        let blob = encoder.encode(&sliced(&live, 100, 2)).expect("encodes");
        assert_eq!(encoder.last_stats().kept, 1);
        assert_eq!(decoded(&blob).resources, live);
        live.truncate(150);
        let blob = encoder.encode(&sliced(&live, 100, 3)).expect("encodes");
        assert_eq!(encoder.last_stats().kept, 1);
        assert_eq!(decoded(&blob).resources, live);
    }
}
