//! The diff by replay equals the difference of the two graphs computed independently: node sets
//! by UID and resource equality, edge sets by (kind, from, to) read from each whole graph;
//! unfiltered and for a namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use astrolabe_graph::Graph;
use astrolabe_history::{Diff, DiffFilter, diff_by_replay};
use astrolabe_model::{Change, ChangeOp, EdgeKind, Resource, Str, Uid};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Versions of objects to draw from: a generated cluster (with its cross-references), for each
/// object a second version (other labels, one reference fewer), and for every fifth object
/// another one under the same name with a new UID (recreated), so deletions of an object whose
/// name another holds are exercised.
fn pool() -> &'static [Vec<Arc<Resource>>] {
    static POOL: OnceLock<Vec<Vec<Arc<Resource>>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut out = Vec::new();
        for (i, r) in astrolabe_generator::generate(5, 200)
            .into_iter()
            .enumerate()
        {
            let mut other = r.clone();
            other.resource_version = "other".into();
            other.labels.insert("variant", "yes");
            if other.labels.get("app.kubernetes.io/name").is_some() {
                other.labels.insert("app.kubernetes.io/name", "shared");
            }
            if !other.references.is_empty() {
                other.references.remove(0);
            }
            if i % 5 == 0 {
                let mut recreated = r.clone();
                recreated.uid = Uid::from(format!("{}-recreated", r.uid));
                out.push(vec![Arc::new(recreated)]);
            }
            out.push(vec![Arc::new(r), Arc::new(other)]);
        }
        out
    })
}

fn namespaces() -> Vec<Str> {
    let set: BTreeSet<Str> = pool().iter().map(|v| v[0].namespace.clone()).collect();
    set.into_iter().collect()
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, usize),
    Delete(usize),
}

fn ops(n: usize, max: usize) -> impl Strategy<Value = Vec<(Op, i64)>> {
    prop::collection::vec(
        (
            prop_oneof![
                3 => (0..n, 0..2usize).prop_map(|(i, v)| Op::Upsert(i, v)),
                1 => (0..n).prop_map(Op::Delete),
            ],
            0..5_000i64,
        ),
        0..max,
    )
}

/// Applies the operations as the server does, returning the logged changes.
fn apply(g: &mut Graph, ops: &[(Op, i64)], ts: &mut i64) -> Vec<Change> {
    let mut changes = Vec::new();
    for (op, step) in ops {
        *ts += step;
        let op = match *op {
            Op::Upsert(i, v) => {
                let versions = &pool()[i];
                ChangeOp::Upsert(versions[v % versions.len()].clone())
            }
            Op::Delete(i) => match g.delete_op(&pool()[i][0].uid) {
                Some(op) => op,
                None => continue,
            },
        };
        changes.extend(g.apply(op, *ts, &mut ()));
    }
    changes
}

/// What the diff says, in the shape the reference is computed in.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    added: BTreeSet<Uid>,
    removed: BTreeSet<Uid>,
    modified: BTreeSet<Uid>,
    edges_added: BTreeSet<(Uid, Uid, EdgeKind)>,
    edges_removed: BTreeSet<(Uid, Uid, EdgeKind)>,
}

fn summary(d: &Diff) -> Summary {
    let edge =
        |e: &astrolabe_history::EdgeDiff| (e.edge.from.clone(), e.edge.to.clone(), e.edge.kind);
    Summary {
        added: d.added.iter().map(|o| o.object.uid.clone()).collect(),
        removed: d.removed.iter().map(|o| o.object.uid.clone()).collect(),
        modified: d.modified.iter().map(|o| o.object.uid.clone()).collect(),
        edges_added: d.edges_added.iter().map(edge).collect(),
        edges_removed: d.edges_removed.iter().map(edge).collect(),
    }
}

/// The difference of two whole graphs; with a namespace, its objects and the edges with an
/// end in it.
fn reference(a: &Graph, b: &Graph, namespace: Option<&str>) -> Summary {
    let nodes = |g: &Graph| -> BTreeMap<Uid, Arc<Resource>> {
        g.resources().map(|r| (r.uid.clone(), r.clone())).collect()
    };
    let (na, nb) = (nodes(a), nodes(b));
    let inside = |r: &Resource| namespace.is_none_or(|ns| r.namespace == ns);
    let end_inside = |uid: &Uid| {
        [nb.get(uid), na.get(uid)]
            .into_iter()
            .flatten()
            .any(|r| inside(r))
    };
    let edge_inside = |e: &(Uid, Uid, EdgeKind)| end_inside(&e.0) || end_inside(&e.1);
    let (ea, eb) = (a.edge_set(), b.edge_set());
    Summary {
        added: nb
            .iter()
            .filter(|(uid, r)| !na.contains_key(*uid) && inside(r))
            .map(|(uid, _)| uid.clone())
            .collect(),
        removed: na
            .iter()
            .filter(|(uid, r)| !nb.contains_key(*uid) && inside(r))
            .map(|(uid, _)| uid.clone())
            .collect(),
        modified: na
            .iter()
            .filter(|(uid, r)| nb.get(*uid).is_some_and(|n| n != *r) && inside(r))
            .map(|(uid, _)| uid.clone())
            .collect(),
        edges_added: eb
            .difference(&ea)
            .filter(|e| edge_inside(e))
            .cloned()
            .collect(),
        edges_removed: ea
            .difference(&eb)
            .filter(|e| edge_inside(e))
            .cloned()
            .collect(),
    }
}

/// The last change of the window touching each UID.
fn last_changes(changes: &[Change]) -> BTreeMap<Uid, (u64, i64)> {
    changes
        .iter()
        .map(|c| (c.op.uid().clone(), (c.seq, c.ts_ms)))
        .collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn replay_diff_equals_the_difference_of_the_two_graphs(
        before in ops(pool().len(), 500),
        window in ops(pool().len(), 200),
        ns in any::<prop::sample::Index>(),
    ) {
        let mut live = Graph::new();
        let mut ts = 1_700_000_000_000;
        apply(&mut live, &before, &mut ts);
        let start = live.clone();
        let changes = apply(&mut live, &window, &mut ts);

        let mut replayed = start.clone();
        let diff = diff_by_replay(&mut replayed, &changes, &DiffFilter::default());
        prop_assert_eq!(replayed.edge_set(), live.edge_set());
        prop_assert_eq!((diff.from_seq, diff.to_seq), (start.seq(), live.seq()));
        prop_assert_eq!(summary(&diff), reference(&start, &live, None));

        let last = last_changes(&changes);
        let touched = diff.added.iter().chain(&diff.removed).map(|o| &o.object);
        for o in touched.chain(diff.modified.iter().map(|o| &o.object)) {
            prop_assert_eq!(last[&o.uid], (o.seq, o.ts_ms));
        }
        prop_assert!(diff.modified.iter().all(|o| !o.changes.is_empty()));
        let stamps: BTreeMap<u64, i64> = changes.iter().map(|c| (c.seq, c.ts_ms)).collect();
        for e in diff.edges_added.iter().chain(&diff.edges_removed) {
            prop_assert_eq!(stamps.get(&e.seq), Some(&e.ts_ms));
        }

        let namespaces = namespaces();
        let namespace = ns.get(&namespaces).clone();
        let mut replayed = start.clone();
        let filter = DiffFilter { namespace: Some(namespace.clone()), ..DiffFilter::default() };
        let diff = diff_by_replay(&mut replayed, &changes, &filter);
        prop_assert_eq!(summary(&diff), reference(&start, &live, Some(&namespace)));
    }
}
