//! Snapshots taken in slices: a few thousand nodes per short read lock, so that neither the
//! readers nor the apply loop wait for a copy of the whole graph.

use std::sync::Arc;

use astrolabe_model::codec::{SlicedSnapshot, Snapshot};
use astrolabe_model::{Resource, now_ms};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::NodeIndexable;

use crate::{Graph, SharedGraph};

/// Node slots copied per read-lock hold (~0.05 ms at 100k resources).
pub const SNAPSHOT_SLICE: usize = 4096;

impl Graph {
    /// Copies the resources of node slots `from..from + max` into `out`; returns where the next
    /// slice starts, or `None` once every slot was visited.
    pub fn snapshot_slice(
        &self,
        from: usize,
        max: usize,
        out: &mut Vec<Arc<Resource>>,
    ) -> Option<usize> {
        let bound = self.g.node_bound();
        let end = from.saturating_add(max.max(1)).min(bound);
        out.extend((from..end).filter_map(|i| self.g.node_weight(NodeIndex::new(i)).cloned()));
        (end < bound).then_some(end)
    }
}

/// A snapshot copied in slices of [`SNAPSHOT_SLICE`] node slots, each under its own read lock,
/// with the sequence number when the copy ended and where each slice's resources are (slice
/// `i` is slots `i * SNAPSHOT_SLICE ..`; an encoder keeps its work per slice, see
/// `astrolabe_persist::SnapshotEncoder`).
///
/// It is *fuzzy*: the apply loop runs between slices, so each resource is copied as it was at
/// some moment between the start and the end of the copy (a resource re-created in another
/// slot may appear twice, the later copy last). It is recorded as covering the sequence at its
/// **start** (`Snapshot::seq`): replaying every change after that sequence gives the live state,
/// because every change is the full state of one resource (an upsert) or its removal, so the
/// last change of each resource decides it and resources without a later change were copied as
/// they were at the start. The log keeps most updates as patches of the resource's previous
/// version (`docs/adr/0020`); a patch whose result the copy already holds changes nothing, and
/// one made against an earlier version than the copy's is followed by the change the copy
/// holds, so the last change still decides. Commit it only once every change up to the end sequence
/// (`copied_until`) is durable, so that the copy never holds a change the log may lose.
/// Property-tested against Redis in `astrolabe-persist`'s `replay_prop`.
///
/// Consecutive slices may come from different copies of the [`SharedGraph`]; the copies agree
/// slot for slot (see [`crate::shared`]), so the slices still tile the slot range.
pub fn snapshot_sliced(shared: &SharedGraph) -> SlicedSnapshot {
    let mut resources = Vec::new();
    let mut slices = Vec::new();
    let (seq, taken_at_ms, mut next) = {
        let g = shared.read();
        // Read after the sequence, under the lock: every change up to it was applied (and
        // stamped) before this time, which history relies on.
        let taken_at_ms = now_ms();
        resources.reserve(g.node_count() + g.node_count() / 16);
        slices.reserve(g.g.node_bound() / SNAPSHOT_SLICE + 2);
        let first = g.snapshot_slice(0, SNAPSHOT_SLICE, &mut resources);
        (g.seq(), taken_at_ms, first)
    };
    slices.push(0..resources.len());
    let mut end = seq;
    while let Some(from) = next {
        let g = shared.read();
        let first = resources.len();
        next = g.snapshot_slice(from, SNAPSHOT_SLICE, &mut resources);
        slices.push(first..resources.len());
        end = g.seq();
    }
    SlicedSnapshot {
        snapshot: Snapshot {
            seq,
            taken_at_ms,
            resources,
        },
        copied_until: end,
        slices,
    }
}

#[cfg(test)]
mod tests {
    use astrolabe_model::{ChangeOp, Kind};

    use super::*;

    #[test]
    fn a_quiet_graph_slices_to_the_same_snapshot() {
        let mut g = Graph::new();
        for i in 0..10_000 {
            let r = Resource::new(
                format!("u{i}").as_str(),
                Kind::ConfigMap,
                "ns",
                format!("c{i}"),
            );
            g.apply(ChangeOp::Upsert(Arc::new(r)), 0, &mut ());
        }
        for i in (0..10_000).step_by(3) {
            g.delete(&format!("u{i}").as_str().into());
        }
        let whole = g.snapshot();
        let shared = SharedGraph::from_graph(g);
        let copy = snapshot_sliced(&shared);
        assert_eq!(
            (copy.snapshot.seq, copy.copied_until),
            (whole.seq, whole.seq)
        );
        assert_eq!(copy.snapshot.resources, whole.resources);
        // 10,000 slots: three slices, tiling the resources; the third holds what was left of
        // slots 8,192..10,000 after every third was deleted.
        let ends: Vec<_> = copy.slices.iter().map(|r| (r.start, r.end)).collect();
        let in_first = (0..SNAPSHOT_SLICE).filter(|i| i % 3 != 0).count();
        let in_two = (0..2 * SNAPSHOT_SLICE).filter(|i| i % 3 != 0).count();
        assert_eq!(
            ends,
            vec![
                (0, in_first),
                (in_first, in_two),
                (in_two, whole.resources.len())
            ]
        );
    }
}
