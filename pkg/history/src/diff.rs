//! The net difference between two points of the log.
//!
//! [`diff_between`] compares the graphs at the two points over the objects the log changed
//! between them (the server knows them from its index of the log, without decoding a change);
//! [`diff_by_replay`] gets the second graph by replaying the changes on the first. The result
//! compares the two ends only, so an object added then removed inside the window, or an edge
//! removed then derived again, is not in the diff.
//!
//! Edges are compared around the objects the window touched, not over the whole graph: every
//! edge the graph adds or removes for a change ends at the changed object, or (when an object
//! is deleted while another holds its name) at the object holding that name. So the edges of the
//! changed objects and of the holders of their names, at both points, are all the edges that can
//! differ; the cost is their degree, not the graph's size.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, Direction, EdgeView, NeighborQuery};
use astrolabe_model::{Change, ChangeOp, Kind, ObjectKey, Reference, Resource, Str, Target, Uid};
use serde::Serialize;

use crate::fields::{FieldChange, field_changes};
use crate::point::serialize_time;

/// Restricts a diff. Every filter given must hold.
///
/// - `namespace` and `kind` keep the objects in that namespace and of that kind, and the edges
///   with at least one end that passes both, so that an edge leaving the namespace (a Pod's
///   `runs-on` Node, a cluster-wide binding) is still shown from the side that matches.
/// - `root_and_depth` keeps the objects within `depth` hops of the root (edges followed in both
///   directions) in the graph at the start or at the end of the window, and the edges whose two
///   ends are both kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffFilter {
    /// Only objects in this namespace (`""` for cluster-scoped objects).
    pub namespace: Option<Str>,
    /// Only objects of this kind.
    pub kind: Option<Kind>,
    /// Only the neighbourhood of this object, to this many hops.
    pub root_and_depth: Option<(Uid, u32)>,
}

/// Which object an entry of a diff is about, and the last change of the window that touched it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Touched {
    /// The object's UID.
    pub uid: Uid,
    /// Its kind, namespace and name (at the end, for an object present there).
    #[serde(flatten)]
    pub key: ObjectKey,
    /// The sequence number of the last change that touched it in the window.
    pub seq: u64,
    /// When that change was applied (RFC 3339 in the answer).
    #[serde(rename = "time", serialize_with = "serialize_time")]
    pub ts_ms: i64,
}

impl Touched {
    /// The order of a diff's objects: by kind, namespace, name, then UID.
    fn order(&self) -> (&ObjectKey, &Uid) {
        (&self.key, &self.uid)
    }
}

/// An object added or removed between the two points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectDiff {
    /// The object and its last change.
    #[serde(flatten)]
    pub object: Touched,
    /// The object as it is at the end where it exists (the end for an added one, the start for
    /// a removed one).
    pub resource: Arc<Resource>,
}

/// An object present at both points, with different contents.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModifiedObject {
    /// The object and its last change.
    #[serde(flatten)]
    pub object: Touched,
    /// What differs between the two versions.
    pub changes: Vec<FieldChange>,
    /// The version at the start.
    #[serde(skip)]
    pub old: Arc<Resource>,
    /// The version at the end.
    #[serde(skip)]
    pub new: Arc<Resource>,
}

/// An edge added or removed between the two points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDiff {
    /// The edge.
    #[serde(flatten)]
    pub edge: EdgeView,
    /// The sequence number of the last change that added or removed it in the window.
    pub seq: u64,
    /// When that change was applied (RFC 3339 in the answer).
    #[serde(rename = "time", serialize_with = "serialize_time")]
    pub ts_ms: i64,
}

/// The net difference between two points of the log. Objects are sorted by kind, namespace,
/// name and UID; edges by kind, source and target.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// The sequence number of the graph at the start.
    pub from_seq: u64,
    /// The sequence number of the graph at the end.
    pub to_seq: u64,
    /// Objects present at the end only.
    pub added: Vec<ObjectDiff>,
    /// Objects present at the start only.
    pub removed: Vec<ObjectDiff>,
    /// Objects present at both ends, with different contents.
    pub modified: Vec<ModifiedObject>,
    /// Edges present at the end only.
    pub edges_added: Vec<EdgeDiff>,
    /// Edges present at the start only.
    pub edges_removed: Vec<EdgeDiff>,
}

/// Applies `changes` (those after the graph's point, oldest first; any at or below the graph's
/// sequence number are skipped) to `graph`, which ends at the last of them, and returns what
/// differs between the two points, restricted by `filter` ([`diff_between`] of the graph before
/// and after).
pub fn diff_by_replay(graph: &mut Graph, changes: &[Change], filter: &DiffFilter) -> Diff {
    let before = graph.clone();
    let from_seq = graph.seq();
    let mut last: HashMap<Uid, (u64, i64, bool)> = HashMap::new();
    for change in changes.iter().filter(|c| c.seq > from_seq) {
        let keeps = match (&change.op, graph.get(change.op.uid())) {
            (ChangeOp::Upsert(new), Some(old)) => astrolabe_graph::update_keeps_edges(old, new),
            _ => false,
        };
        graph.apply(change.op.clone(), change.ts_ms, &mut ());
        graph.advance_seq(change.seq);
        let entry = last.entry(change.op.uid().clone()).or_insert((0, 0, true));
        *entry = (change.seq, change.ts_ms, entry.2 && keeps);
    }
    let touched: Vec<Touch> = last
        .into_iter()
        .map(|(uid, (seq, ts_ms, keeps_edges))| Touch {
            uid,
            seq,
            ts_ms,
            keeps_edges,
        })
        .collect();
    diff_between(&before, graph, &touched, filter)
}

/// An object the log changed in a window, with its last change there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    /// The object.
    pub uid: Uid,
    /// Its last change in the window.
    pub seq: u64,
    /// When that change was applied.
    pub ts_ms: i64,
    /// Whether every change of the window to it was an update that left its identity, labels,
    /// owners and references as they were. Such changes move no edge (the graph swaps the
    /// object's version and keeps its edges), so the diff compares the object and leaves its
    /// edges to the changes of the objects at their other ends. `false` is always correct.
    pub keeps_edges: bool,
}

/// What differs between `from` and `to`, the graphs at two points of the log, given `touched`:
/// every object changed between them, with its last change (each once). Restricted by
/// `filter`.
///
/// Only the touched objects are compared, and the edges around them and around the objects
/// that hold their names; the cost is their number and degree, not the graphs' size. An edge's
/// sequence and time are those of the last change in the window of its source, or of its target
/// when the source did not change or kept its edges (edges derive from the source's references
/// and selectors, and the target's identity and labels).
pub fn diff_between(from: &Graph, to: &Graph, touched: &[Touch], filter: &DiffFilter) -> Diff {
    let keep = Keep {
        filter,
        hood: neighbourhood(from, filter).map(|mut hood| {
            hood.extend(neighbourhood(to, filter).unwrap_or_default());
            hood
        }),
    };
    let mut diff = Diff {
        from_seq: from.seq(),
        to_seq: to.seq(),
        ..Diff::default()
    };
    // Each touched object's versions at the two points, looked up once. An object whose
    // changes kept its edges matters only as an object: when the namespace and kind filters
    // leave it out (and there is no neighbourhood to place it in), it is dropped after one
    // lookup. Identity never changes under one UID, so its version at the end says.
    let narrowed =
        filter.root_and_depth.is_none() && (filter.namespace.is_some() || filter.kind.is_some());
    let mut versions: Vec<(&Touch, Versions<'_>)> = Vec::with_capacity(touched.len());
    for t in touched {
        let new = to.get(&t.uid);
        if narrowed && t.keeps_edges && new.is_some_and(|r| !keep.matches(r)) {
            continue;
        }
        versions.push((t, (from.get(&t.uid), new)));
    }
    for &(t, (old, new)) in &versions {
        let touched = |resource: &Resource| Touched {
            uid: t.uid.clone(),
            key: resource.key(),
            seq: t.seq,
            ts_ms: t.ts_ms,
        };
        let entry = |resource: &Arc<Resource>| ObjectDiff {
            object: touched(resource),
            resource: resource.clone(),
        };
        match (old, new) {
            (None, Some(new)) if keep.object(new) => diff.added.push(entry(new)),
            (Some(old), None) if keep.object(old) => diff.removed.push(entry(old)),
            (Some(old), Some(new)) if (keep.object(old) || keep.object(new)) && old != new => {
                diff.modified.push(ModifiedObject {
                    object: touched(new),
                    changes: field_changes(old, new),
                    old: old.clone(),
                    new: new.clone(),
                });
            }
            _ => {}
        }
    }
    diff.added
        .sort_by(|a, b| a.object.order().cmp(&b.object.order()));
    diff.removed
        .sort_by(|a, b| a.object.order().cmp(&b.object.order()));
    diff.modified
        .sort_by(|a, b| a.object.order().cmp(&b.object.order()));

    // The ends at which edges can differ: the touched objects, and the objects that hold (at
    // either point) the name one of them has (a UID's kind, namespace and name never change).
    // Every touched object counts, even one whose owners, references and labels did not change:
    // re-applying it resolves its references by name again, which moves an edge when two objects
    // hold one name (recreated under a new UID before the old one's deletion arrived).
    //
    // With a namespace filter (and no neighbourhood), an object outside the namespace matters
    // only through edges whose other end is inside ([`outside_and_unchanged`] says when none of
    // those can differ at it).
    let outside = filter
        .namespace
        .as_ref()
        .filter(|_| filter.root_and_depth.is_none());
    //
    // An object whose changes kept its edges is not an end of its own: an edge at it differs
    // only through a change of the object at the other end, or of one holding its name.
    let mut around: HashSet<&Uid> = HashSet::with_capacity(versions.len());
    let mut holders: Vec<&Uid> = Vec::new();
    for &(t, (old, new)) in versions.iter().filter(|(t, _)| !t.keeps_edges) {
        if let (Some(ns), Some(old), Some(new)) = (outside, old, new)
            && outside_and_unchanged(from, to, old, new, ns)
        {
            continue;
        }
        around.insert(&t.uid);
        if let Some(r) = new.or(old) {
            let key = r.key();
            for graph in [from, to] {
                if let Some(holder) = graph.get_by_key(&key)
                    && holder.uid != t.uid
                {
                    holders.push(&holder.uid);
                }
            }
        }
    }
    around.extend(holders);
    let kept = |a: &Arc<Resource>, b: &Arc<Resource>| keep.edge(a, b);
    let edges_before = edges_around(from, &around, &kept);
    let edges_after = edges_around(to, &around, &kept);
    let stamps: HashMap<&Uid, (u64, i64)> = touched
        .iter()
        .filter(|t| !t.keeps_edges)
        .map(|t| (&t.uid, (t.seq, t.ts_ms)))
        .collect();
    let last = (diff.to_seq, to.ts_ms());
    let stamped = |edge: &EdgeView| {
        let (seq, ts_ms) = stamps
            .get(&edge.from)
            .or_else(|| stamps.get(&edge.to))
            .copied()
            .unwrap_or(last);
        EdgeDiff {
            edge: edge.clone(),
            seq,
            ts_ms,
        }
    };
    diff.edges_added = edges_after.difference(&edges_before).map(stamped).collect();
    diff.edges_removed = edges_before.difference(&edges_after).map(stamped).collect();
    diff
}

/// An object's versions at the start and at the end of a window (`None`: absent there).
type Versions<'g> = (Option<&'g Arc<Resource>>, Option<&'g Arc<Resource>>);

/// Whether an object, `old` and `new` at the two points and outside namespace `ns`, can have no
/// edge with an end in `ns` that differs between them, without reading its edges. Edges derive from
/// the source's owners and references and the target's identity and labels, so an edge at it
/// with its other end in `ns` differs only if:
/// - it points into `ns` (a reference to a key or a UID there, a selector over namespaces
///   including `ns`, an owner there), and re-applying it re-resolved or changed that;
/// - it is pointed at from `ns`: by a selector (its labels changed), by its name (another object
///   took or gave back the name), or because the source changed (the source, inside `ns`, is
///   touched and read in full).
fn outside_and_unchanged(
    from: &Graph,
    to: &Graph,
    old: &Arc<Resource>,
    new: &Arc<Resource>,
    ns: &Str,
) -> bool {
    if old.namespace == *ns || old.labels != new.labels {
        return false;
    }
    // A UID's namespace never changes: whichever point holds it says where it is.
    let inside = |uid: &Uid| {
        to.get(uid)
            .or_else(|| from.get(uid))
            .is_some_and(|r| r.namespace == *ns)
    };
    let reaches = |r: &Reference| match &r.target {
        Target::Key(k) => k.namespace == *ns,
        Target::Uid { uid, .. } => inside(uid),
        Target::Selector { .. } => false,
        Target::SelectorIn { namespaces, .. } => namespaces.contains(ns),
    };
    let points_in =
        |r: &Resource| r.references.iter().any(reaches) || r.owners.iter().any(|o| inside(&o.uid));
    if points_in(old) || (!Arc::ptr_eq(old, new) && points_in(new)) {
        return false;
    }
    let key = new.key();
    let holds = |g: &Graph| g.get_by_key(&key).is_some_and(|h| h.uid == new.uid);
    holds(from) && holds(to)
}

/// What a [`DiffFilter`] keeps, with its neighbourhood (at either end) resolved.
struct Keep<'a> {
    filter: &'a DiffFilter,
    hood: Option<HashSet<Uid>>,
}

impl Keep<'_> {
    fn matches(&self, r: &Resource) -> bool {
        let f = self.filter;
        f.namespace.as_ref().is_none_or(|ns| r.namespace == *ns)
            && f.kind.as_ref().is_none_or(|k| r.kind == *k)
    }

    fn in_hood(&self, uid: &Uid) -> bool {
        self.hood.as_ref().is_none_or(|hood| hood.contains(uid))
    }

    fn object(&self, r: &Resource) -> bool {
        self.matches(r) && self.in_hood(&r.uid)
    }

    /// Whether the edge between these two resources (source, target) is kept.
    fn edge(&self, from: &Resource, to: &Resource) -> bool {
        let by_attributes = self.filter.namespace.is_some() || self.filter.kind.is_some();
        (!by_attributes || self.matches(from) || self.matches(to))
            && self.in_hood(&from.uid)
            && self.in_hood(&to.uid)
    }
}

/// The UIDs within the filter's depth of its root, when it has one (empty when the root is not
/// in the graph).
fn neighbourhood(graph: &Graph, filter: &DiffFilter) -> Option<HashSet<Uid>> {
    let (root, depth) = filter.root_and_depth.as_ref()?;
    let q = NeighborQuery {
        depth: *depth,
        direction: Direction::Both,
        edge_kinds: None,
        limit: usize::MAX,
    };
    Some(
        query::neighbors(graph, root, &q).map_or_else(HashSet::new, |sub| {
            sub.nodes.iter().map(|r| r.uid.clone()).collect()
        }),
    )
}

/// Every edge that ends at one of these objects and that `keep` keeps (given the resources at
/// its ends).
fn edges_around(
    graph: &Graph,
    uids: &HashSet<&Uid>,
    keep: &impl Fn(&Arc<Resource>, &Arc<Resource>) -> bool,
) -> BTreeSet<EdgeView> {
    uids.iter()
        .flat_map(|uid| query::edges_at_where(graph, uid, keep))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use astrolabe_model::{ChangeOp, EdgeKind, LabelSelector, Reference};

    use super::*;

    fn pod(name: &str, app: &str, node: &str) -> Resource {
        let mut r = Resource::new(name, Kind::Pod, "shop", name);
        r.labels.insert("app", app);
        r.references
            .push(Reference::to_key(EdgeKind::RunsOn, Kind::Node, "", node));
        r
    }

    fn service(app: &str) -> Resource {
        let mut r = Resource::new("svc", Kind::Service, "shop", "web");
        let selector = LabelSelector::parse(&format!("app={app}")).unwrap();
        r.references.push(Reference::to_selector(
            EdgeKind::Selects,
            Kind::Pod,
            selector,
            false,
        ));
        r
    }

    fn node(name: &str) -> Resource {
        Resource::new(name, Kind::Node, "", name)
    }

    /// The graph at the start (a Service selecting two Pods on one Node) and the changes of the
    /// window, stamped by the graph as the server stamps them.
    fn scenario() -> (Graph, Vec<Change>) {
        let mut g = Graph::new();
        for r in [
            node("n1"),
            pod("p1", "web", "n1"),
            pod("p2", "web", "n1"),
            service("web"),
        ] {
            g.upsert(r);
        }
        let start = g.clone();
        let p3 = pod("p3", "web", "n1");
        let ops = [
            // The edge svc -> p1 goes and comes back: not in the diff.
            ChangeOp::Upsert(Arc::new(pod("p1", "x", "n1"))),
            ChangeOp::Upsert(Arc::new(pod("p1", "web", "n1"))),
            // Added then removed: not in the diff.
            ChangeOp::Upsert(Arc::new(p3.clone())),
            ChangeOp::Delete {
                uid: p3.uid.clone(),
                key: p3.key(),
            },
            // The broken selector: both selects edges go.
            ChangeOp::Upsert(Arc::new(service("webx"))),
            ChangeOp::Upsert(Arc::new(node("n2"))),
            // p2 moves to n2.
            ChangeOp::Upsert(Arc::new(pod("p2", "web", "n2"))),
        ];
        let changes = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| g.apply(op, 1000 * (i as i64 + 1), &mut ()).unwrap())
            .collect();
        (start, changes)
    }

    fn diff(filter: DiffFilter) -> Diff {
        let (mut g, changes) = scenario();
        diff_by_replay(&mut g, &changes, &filter)
    }

    fn uids(objects: &[ObjectDiff]) -> Vec<&str> {
        objects.iter().map(|o| o.object.uid.as_str()).collect()
    }

    fn modified(d: &Diff) -> Vec<&str> {
        d.modified.iter().map(|o| o.object.uid.as_str()).collect()
    }

    fn edges(edges: &[EdgeDiff]) -> Vec<String> {
        edges
            .iter()
            .map(|e| format!("{}-{}->{}", e.edge.from, e.edge.kind.as_str(), e.edge.to))
            .collect()
    }

    #[test]
    fn net_difference_with_the_last_change_of_each_entry() {
        let d = diff(DiffFilter::default());
        assert_eq!((d.from_seq, d.to_seq), (4, 11));
        assert_eq!(uids(&d.added), ["n2"]);
        assert_eq!((d.added[0].object.seq, d.added[0].object.ts_ms), (10, 6000));
        assert!(d.removed.is_empty(), "p3 came and went");
        // Sorted by kind: Pod, then Service.
        assert_eq!(modified(&d), ["p2", "svc"]);
        assert_eq!(
            (d.modified[0].object.seq, d.modified[0].object.ts_ms),
            (11, 7000)
        );
        assert_eq!(
            (d.modified[1].object.seq, d.modified[1].object.ts_ms),
            (9, 5000)
        );
        assert_eq!(d.modified[1].changes.len(), 1);
        assert_eq!(d.modified[1].changes[0].field, "references");
        assert_eq!(edges(&d.edges_added), ["p2-runs-on->n2"]);
        assert_eq!(d.edges_added[0].seq, 11);
        assert_eq!(
            edges(&d.edges_removed),
            ["svc-selects->p1", "svc-selects->p2", "p2-runs-on->n1"],
            "sorted by edge kind first"
        );
        let stamps: Vec<(u64, i64)> = d.edges_removed.iter().map(|e| (e.seq, e.ts_ms)).collect();
        assert_eq!(stamps, [(9, 5000), (9, 5000), (11, 7000)]);
    }

    #[test]
    fn the_graph_ends_at_the_last_change() {
        let (mut g, changes) = scenario();
        let mut live = g.clone();
        for c in &changes {
            live.replay(c);
        }
        diff_by_replay(&mut g, &changes, &DiffFilter::default());
        assert_eq!(g.seq(), live.seq());
        assert_eq!(g.edge_set(), live.edge_set());
        // Changes the graph has already seen are skipped.
        let again = diff_by_replay(&mut g, &changes, &DiffFilter::default());
        assert_eq!(again.to_seq, again.from_seq);
        assert!(again.modified.is_empty() && again.edges_removed.is_empty());
    }

    #[test]
    fn a_namespace_keeps_edges_with_one_end_inside() {
        let d = diff(DiffFilter {
            namespace: Some("shop".into()),
            ..DiffFilter::default()
        });
        assert!(d.added.is_empty(), "the Node is cluster-scoped");
        assert_eq!(modified(&d), ["p2", "svc"]);
        assert_eq!(edges(&d.edges_added), ["p2-runs-on->n2"]);
        assert_eq!(d.edges_removed.len(), 3);
    }

    #[test]
    fn a_kind_keeps_its_objects_and_their_edges() {
        let d = diff(DiffFilter {
            kind: Some(Kind::Node),
            ..DiffFilter::default()
        });
        assert_eq!(uids(&d.added), ["n2"]);
        assert!(d.modified.is_empty());
        assert_eq!(edges(&d.edges_added), ["p2-runs-on->n2"]);
        assert_eq!(edges(&d.edges_removed), ["p2-runs-on->n1"]);
    }

    #[test]
    fn a_root_keeps_its_neighbourhood_at_either_end() {
        // n1's neighbours: p1 and p2 at the start, p1 alone at the end.
        let d = diff(DiffFilter {
            root_and_depth: Some((Uid::from("n1"), 1)),
            ..DiffFilter::default()
        });
        assert!(d.added.is_empty());
        assert_eq!(modified(&d), ["p2"]);
        assert!(d.edges_added.is_empty(), "n2 is outside");
        assert_eq!(edges(&d.edges_removed), ["p2-runs-on->n1"]);
        // Two hops reach the Service through the Pods.
        let d = diff(DiffFilter {
            root_and_depth: Some((Uid::from("n1"), 2)),
            ..DiffFilter::default()
        });
        assert_eq!(modified(&d), ["p2", "svc"]);
        assert_eq!(d.edges_removed.len(), 3);
        // n2 exists at the end only, with p2 beside it.
        let d = diff(DiffFilter {
            root_and_depth: Some((Uid::from("n2"), 1)),
            ..DiffFilter::default()
        });
        assert_eq!(uids(&d.added), ["n2"]);
        assert_eq!(modified(&d), ["p2"]);
        assert_eq!(edges(&d.edges_added), ["p2-runs-on->n2"]);
        assert!(d.edges_removed.is_empty(), "n1 is outside");
        let unknown = diff(DiffFilter {
            root_and_depth: Some((Uid::from("nope"), 3)),
            ..DiffFilter::default()
        });
        assert!(unknown.modified.is_empty() && unknown.edges_removed.is_empty());
    }

    #[test]
    fn serialised_in_camel_case_with_rfc3339_times() {
        let json = serde_json::to_value(diff(DiffFilter::default())).unwrap();
        assert_eq!(json["fromSeq"], 4);
        assert_eq!(json["toSeq"], 11);
        assert_eq!(json["added"][0]["uid"], "n2");
        assert_eq!(json["added"][0]["kind"], "Node");
        assert_eq!(json["added"][0]["name"], "n2");
        assert_eq!(json["added"][0]["time"], "1970-01-01T00:00:06Z");
        assert_eq!(json["modified"][1]["changes"][0]["field"], "references");
        assert!(json["modified"][1].get("old").is_none());
        assert_eq!(json["edgesAdded"][0]["kind"], "runs-on");
        assert_eq!(json["edgesAdded"][0]["from"], "p2");
        assert_eq!(json["edgesRemoved"].as_array().unwrap().len(), 3);
    }
}
