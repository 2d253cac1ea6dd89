#![allow(clippy::unwrap_used, clippy::expect_used)]
//! History's invariant, on the in-memory log and on Redis alike: for random change sequences
//! with random timestamps (several changes may share one, as an apply batch's do), random
//! checkpoints (snapshots committed along the log) and a restart in the middle (a new history
//! over the log, a new connection for Redis), the graph `at` a time or a sequence equals the
//! graph recorded after the last change at or before it, and the diff between two points equals
//! the difference of the two recorded graphs, nodes and edges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use astrolabe_api::history::{HistorySource, Located};
use astrolabe_graph::{Graph, SharedGraph, query};
use astrolabe_history::{DiffFilter, Point, diff_between, diff_by_replay};
use astrolabe_model::{
    ChangeOp, EdgeKind, Kind, LabelSelector, ObjectKey, Reference, Resource, now_ms,
};
use astrolabe_persist::model_codec::snapshot_blob;
use astrolabe_persist::{
    EventLog, HistoryRetention, LastVersions, MemoryLog, PersistError, Record, RedisConfig,
    RedisLog,
};
use astrolabe_server::history::LogHistory;
use astrolabe_testkit::RedisServer;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

#[derive(Debug, Clone)]
enum Op {
    Upsert { id: u8, version: u8 },
    Delete { id: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, 0u8..6).prop_map(|(id, version)| Op::Upsert { id, version }),
        1 => (0u8..12).prop_map(|id| Op::Delete { id }),
    ]
}

/// Twelve objects that make edges among themselves: Services selecting Pods by label, Pods
/// using ConfigMaps by name (and so dangling while the ConfigMap is absent), three of the Pods
/// from another namespace. Versions `2k` and `2k + 1` of a Pod differ in their status only, as
/// versions 0, 2 and 4 of a Service differ in their resourceVersion only: updates that keep
/// every edge.
fn resource(id: u8, version: u8) -> Resource {
    let app = format!("a{}", version % 2);
    match id {
        0..3 => {
            let mut r = Resource::new(
                format!("svc-{id}").as_str(),
                Kind::Service,
                "ns",
                format!("svc-{id}"),
            );
            let selector = LabelSelector::parse(&format!("app={app}")).unwrap();
            r.references.push(Reference::to_selector(
                EdgeKind::Selects,
                Kind::Pod,
                selector,
                false,
            ));
            r.resource_version = version.to_string().into();
            r
        }
        3..9 => {
            let mut r = Resource::new(
                format!("pod-{id}").as_str(),
                Kind::Pod,
                if id < 6 { "ns" } else { "other" },
                format!("pod-{id}"),
            );
            r.labels.insert("app", format!("a{}", version / 2 % 2));
            r.references.push(Reference::to_key(
                EdgeKind::UsesConfigmap,
                Kind::ConfigMap,
                "ns",
                format!("cm-{}", version / 2 % 3),
            ));
            r.status.message = format!("step {version}").into();
            r.resource_version = version.to_string().into();
            r
        }
        _ => {
            let n = id - 9;
            let mut r = Resource::new(
                format!("cm-{n}").as_str(),
                Kind::ConfigMap,
                "ns",
                format!("cm-{n}"),
            );
            r.labels.insert("v", version.to_string());
            r
        }
    }
}

fn key(id: u8) -> ObjectKey {
    let r = resource(id, 0);
    r.key()
}

/// A graph as compared: each resource by UID, and each edge.
type State = (
    BTreeMap<String, Resource>,
    BTreeSet<(String, String, String)>,
);

fn state(g: &Graph) -> State {
    let nodes = g
        .resources()
        .map(|r| (r.uid.as_str().to_owned(), (**r).clone()))
        .collect();
    let edges = g
        .resources()
        .flat_map(|r| query::out_edges(g, &r.uid))
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.from.as_str().to_owned(),
                e.to.as_str().to_owned(),
            )
        })
        .collect();
    (nodes, edges)
}

/// One applied change and the graph right after it.
struct Step {
    seq: u64,
    ts: i64,
    payload: bytes::Bytes,
    after: Graph,
}

/// The graph after the last step at or before `t` (by time) or `n` (by sequence).
fn expected<'a>(empty: &'a Graph, steps: &'a [Step], at: Point) -> &'a Graph {
    steps
        .iter()
        .rev()
        .find(|s| match at {
            Point::Time(t) => s.ts <= t,
            Point::Seq(n) => s.seq <= n,
            Point::Now => true,
        })
        .map_or(empty, |s| &s.after)
}

async fn graph_at(history: &dyn HistorySource, live: &Graph, at: Point) -> (u64, Graph) {
    match history.locate(at, "test").await.unwrap() {
        Located::Live => (live.seq(), live.clone()),
        Located::Past(p) => (p.as_of.seq, (*p.graph).clone()),
    }
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Redis,
}

static CASE: AtomicUsize = AtomicUsize::new(0);

#[allow(clippy::too_many_arguments)]
async fn run_case(
    backend: Backend,
    server: Option<&RedisServer>,
    ops: Vec<Op>,
    gaps: Vec<u16>,
    checkpoint_at: Vec<usize>,
    restart_at: usize,
    probes: Vec<(u16, u16)>,
) {
    // Times in the past, so that every point is a past one.
    let start_ms = now_ms() - 10_000_000;
    let retention = HistoryRetention {
        max_age: Duration::from_secs(86_400),
        max_changes: 1_000_000,
    };
    let cluster = format!("hist-{}", CASE.fetch_add(1, Ordering::SeqCst));
    let redis = |cluster: &str| {
        let server = server.expect("a redis-server for the Redis log");
        let mut cfg = RedisConfig::from_url(&server.url(), cluster.to_owned()).unwrap();
        cfg.retention = retention;
        RedisLog::new(&cfg).unwrap()
    };

    // The reference: the graph after every change.
    let mut g = Graph::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut ts = start_ms;
    let mut last_versions = LastVersions::default();
    for (i, op) in ops.iter().enumerate() {
        ts += i64::from(gaps.get(i).copied().unwrap_or(0) % 3_000);
        let op = match op {
            Op::Upsert { id, version } => ChangeOp::Upsert(Arc::new(resource(*id, *version))),
            Op::Delete { id } => ChangeOp::Delete {
                uid: resource(*id, 0).uid,
                key: key(*id),
            },
        };
        if let Some(change) = g.apply(op, ts, &mut ()) {
            // As the writer encodes it (updates of objects written before are patches); a
            // restarted server's writer starts remembering nothing.
            if steps.len() == restart_at {
                last_versions = LastVersions::default();
            }
            let mut payload = Vec::new();
            change
                .encode_remembering(&mut last_versions, &mut payload)
                .unwrap();
            steps.push(Step {
                seq: change.seq,
                ts,
                payload: bytes::Bytes::from(payload),
                after: g.clone(),
            });
        }
    }
    let empty = Graph::new();
    let restart_at = restart_at.min(steps.len());

    // The log: the changes, checkpoints along them, a restart in the middle.
    let memory = MemoryLog::new(retention);
    let first_redis = matches!(backend, Backend::Redis).then(|| redis(&cluster));
    for (i, step) in steps.iter().enumerate() {
        let log_append = async {
            match backend {
                Backend::Memory => memory.append(&[(step.seq, step.payload.clone())]).await,
                Backend::Redis if i < restart_at => {
                    first_redis
                        .as_ref()
                        .expect("a Redis log")
                        .append(&[(step.seq, step.payload.clone())])
                        .await
                }
                Backend::Redis => {
                    redis(&cluster)
                        .append(&[(step.seq, step.payload.clone())])
                        .await
                }
            }
        };
        log_append.await.unwrap();
        if checkpoint_at.contains(&i) {
            // Taken at the time of its last change, as the snapshotter stamps it.
            let mut snapshot = step.after.snapshot();
            snapshot.taken_at_ms = step.ts;
            let blob = snapshot_blob(&snapshot).unwrap();
            let written = match backend {
                Backend::Memory => memory.write_snapshot(&blob).await,
                Backend::Redis => redis(&cluster).write_snapshot(&blob).await,
            };
            match written {
                Ok(_) | Err(PersistError::SnapshotSuperseded { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    let live = SharedGraph::from_graph(g.clone());
    let history: Box<dyn HistorySource> = match backend {
        Backend::Memory => Box::new(LogHistory::new(memory.clone(), live, 64)),
        Backend::Redis => Box::new(LogHistory::new(redis(&cluster), live, 64)),
    };

    let (first_ts, last_ts) = (
        steps.first().map_or(start_ms, |s| s.ts),
        steps.last().map_or(start_ms, |s| s.ts),
    );
    let span = u64::try_from(last_ts - first_ts + 2_000).unwrap();
    let last_seq = steps.last().map_or(0, |s| s.seq);
    // A time is the exact time of a change one probe in two (several changes may share it),
    // else anywhere from before the first change to after the last.
    let point = |p: u16, by_seq: bool| {
        if by_seq {
            Point::Seq(u64::from(p) % (last_seq + 1))
        } else if p.is_multiple_of(2) && !steps.is_empty() {
            Point::Time(steps[usize::from(p / 2) % steps.len()].ts)
        } else {
            Point::Time(first_ts - 1_000 + i64::try_from(u64::from(p) * span / 65_536).unwrap())
        }
    };
    for (i, &(a, b)) in probes.iter().enumerate() {
        let by_seq = i % 2 == 0;
        // at(t) is the recorded graph.
        let at = point(a, by_seq);
        let want = expected(&empty, &steps, at);
        let (seq, got) = graph_at(history.as_ref(), &g, at).await;
        assert_eq!(seq, want.seq(), "{backend:?}: the sequence at {at:?}");
        assert_eq!(state(&got), state(want), "{backend:?}: the graph at {at:?}");

        // diff(t1, t2) is the difference of the recorded graphs.
        let (from, to) = {
            let (x, y) = (point(a, by_seq), point(b, by_seq));
            match (x, y) {
                (Point::Seq(p), Point::Seq(q)) if q < p => (y, x),
                (Point::Time(p), Point::Time(q)) if q < p => (y, x),
                _ => (x, y),
            }
        };
        let (from_seq, mut base) = graph_at(history.as_ref(), &g, from).await;
        let (to_seq, target) = graph_at(history.as_ref(), &g, to).await;
        // As the API computes it: the two graphs compared over the objects the log's index
        // says changed between them; and by replaying the changes on the first.
        let touched = history.touched(from_seq, to_seq).await.unwrap();
        let mut diffs = Vec::new();
        for namespace in [None, Some("ns"), Some("other")] {
            let filter = DiffFilter {
                namespace: namespace.map(Into::into),
                ..DiffFilter::default()
            };
            diffs.push((
                "between",
                namespace,
                diff_between(&base, &target, &touched, &filter),
            ));
        }
        let changes = history.changes(from, to, "test", None).await.unwrap();
        let replayed = diff_by_replay(&mut base, &changes, &DiffFilter::default());
        diffs.push(("replayed", None, replayed));
        let (before, after) = (
            state(expected(&empty, &steps, from)),
            state(expected(&empty, &steps, to)),
        );
        let namespace_of = |uid: &String| {
            let r = after.0.get(uid).or_else(|| before.0.get(uid)).unwrap();
            r.namespace.as_str().to_owned()
        };
        for (how, namespace, diff) in &diffs {
            let inside = |uid: &String| namespace.is_none_or(|ns| namespace_of(uid) == ns);
            let uids = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<BTreeSet<_>>();
            let added: BTreeSet<String> = after
                .0
                .keys()
                .filter(|u| !before.0.contains_key(*u) && inside(u))
                .cloned()
                .collect();
            let removed: BTreeSet<String> = before
                .0
                .keys()
                .filter(|u| !after.0.contains_key(*u) && inside(u))
                .cloned()
                .collect();
            let modified: BTreeSet<String> = before
                .0
                .iter()
                .filter(|(u, r)| after.0.get(*u).is_some_and(|n| n != *r) && inside(u))
                .map(|(u, _)| u.clone())
                .collect();
            let edge = |e: &astrolabe_history::EdgeDiff| {
                (
                    e.edge.kind.as_str().to_owned(),
                    e.edge.from.as_str().to_owned(),
                    e.edge.to.as_str().to_owned(),
                )
            };
            // An edge is the namespace's when one of its ends is.
            let kept = |e: &&(String, String, String)| inside(&e.1) || inside(&e.2);
            let edges_added: BTreeSet<_> = after
                .1
                .difference(&before.1)
                .filter(kept)
                .cloned()
                .collect();
            let edges_removed: BTreeSet<_> = before
                .1
                .difference(&after.1)
                .filter(kept)
                .cloned()
                .collect();
            fn object(o: &astrolabe_history::Touched) -> &str {
                o.uid.as_str()
            }
            let what = format!("{backend:?} {how} in {namespace:?}, {from:?}..{to:?}");
            assert_eq!(
                uids(diff.added.iter().map(|o| object(&o.object)).collect()),
                added,
                "{what}: added"
            );
            assert_eq!(
                uids(diff.removed.iter().map(|o| object(&o.object)).collect()),
                removed,
                "{what}: removed"
            );
            assert_eq!(
                uids(diff.modified.iter().map(|o| object(&o.object)).collect()),
                modified,
                "{what}: modified"
            );
            assert_eq!(
                diff.edges_added.iter().map(edge).collect::<BTreeSet<_>>(),
                edges_added,
                "{what}: edges added"
            );
            assert_eq!(
                diff.edges_removed.iter().map(edge).collect::<BTreeSet<_>>(),
                edges_removed,
                "{what}: edges removed"
            );
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// One case: the backend, the operations, the time between them (ms, modulo 3 s), after which
/// changes a checkpoint is committed, after which the history restarts, and the probes.
type Case = (
    Backend,
    Vec<Op>,
    Vec<u16>,
    Vec<usize>,
    usize,
    Vec<(u16, u16)>,
);

fn case(backend: Backend) -> impl Strategy<Value = Case> {
    (
        Just(backend),
        prop::collection::vec(op(), 1..60),
        prop::collection::vec(prop_oneof![Just(0u16), any::<u16>()], 60),
        prop::collection::vec(0usize..60, 0..5),
        0usize..60,
        prop::collection::vec((any::<u16>(), any::<u16>()), 1..8),
    )
}

fn run((backend, ops, gaps, checkpoint_at, restart_at, probes): Case) {
    let server = matches!(backend, Backend::Redis).then(|| SERVER.with(Arc::clone));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_case(
        backend,
        server.as_deref(),
        ops,
        gaps,
        checkpoint_at,
        restart_at,
        probes,
    ));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn in_memory_at_and_diff_equal_the_recorded_graphs(args in case(Backend::Memory)) {
        run(args);
    }

    #[test]
    fn on_redis_at_and_diff_equal_the_recorded_graphs(args in case(Backend::Redis)) {
        run(args);
    }
}

thread_local! {
    static SERVER: Arc<RedisServer> = Arc::new(RedisServer::start().unwrap());
}
