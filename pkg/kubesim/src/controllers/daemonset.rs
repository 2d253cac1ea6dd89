//! The DaemonSet controller: one Pod per Node that admits the Pod template (its `nodeSelector`
//! and the Node's taints, by the scheduler's [`admits`]), each named `<set>-<5 chars>`,
//! controlled by the DaemonSet and bound with `spec.nodeName` set directly (the real controller
//! binds through a `metadata.name` node affinity and the scheduler; the emulator's scheduler does
//! not read affinity, and the outcome, one Pod on that Node, is the same). Pods carry the
//! tolerations the real controller adds (`node.kubernetes.io/unschedulable` and the others), so a
//! cordoned Node keeps its daemon. A Pod whose Node is gone or no longer admits it is deleted, as
//! is a second Pod on one Node. A template change rolls out with `RollingUpdate` (an outdated
//! Pod is deleted, then recreated, while fewer than `maxUnavailable`, default 1, Pods are not
//! Ready) or waits for Pods to be deleted with `OnDelete`. The status holds the counts
//! `kubectl rollout status daemonset` reads.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::replicaset::live_pods;
use super::scheduler::admits;
use super::{
    Cx, canonical, is_deleting, name_of, ns_of, pod_from_template, pod_ready, set_at, set_status,
    short_hash, str_at,
};

/// The component named in the Events this controller records.
const COMPONENT: &str = "daemonset-controller";

/// The label naming the template revision a Pod was made from.
const REVISION: &str = "controller-revision-hash";

/// The tolerations the real controller adds to every daemon Pod (key, effect).
const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// Syncs every DaemonSet.
pub(crate) fn reconcile(cx: &mut Cx) {
    let nodes: Vec<Value> = cx
        .list("Node")
        .into_iter()
        .filter(|n| !is_deleting(n))
        .map(|n| Value::clone(&n))
        .collect();
    for ds in cx.list("DaemonSet") {
        if !is_deleting(&ds) {
            sync(cx, &ds, &nodes);
        }
    }
}

/// A daemon Pod of `ds` for `node` (an empty node name for the Pod the Nodes are checked with).
fn daemon_pod(ds: &Value, name: &str, node: &str, revision: &str) -> Value {
    let template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut pod = pod_from_template(ds, &template, name, &[(REVISION, revision)]);
    let mut tolerations: Vec<Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, effect) in DAEMON_TOLERATIONS {
        let present = tolerations
            .iter()
            .any(|t| str_at(t, "/key") == *key && str_at(t, "/effect") == *effect);
        if !present {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    set_at(&mut pod, &["spec", "tolerations"], json!(tolerations));
    if !node.is_empty() {
        set_at(&mut pod, &["spec", "nodeName"], json!(node));
    }
    pod
}

/// `maxUnavailable` of a RollingUpdate: an integer, or a percentage of `desired` rounded down
/// (at least 1, as a rollout must make progress).
fn max_unavailable(ds: &Value, desired: usize) -> usize {
    let n = match ds.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Some(Value::String(s)) => s
            .trim_end_matches('%')
            .parse::<usize>()
            .ok()
            .map(|pct| desired.saturating_mul(pct) / 100),
        _ => None,
    };
    n.unwrap_or(1).max(1)
}

fn delete_pod(cx: &mut Cx, ds: &Value, pod: &Value) {
    if cx.delete("Pod", ns_of(pod), name_of(pod)) {
        let msg = format!("Deleted pod: {}", name_of(pod));
        cx.event(ds, COMPONENT, "SuccessfulDelete", &msg);
    }
}

fn sync(cx: &mut Cx, ds: &Value, nodes: &[Value]) {
    let (ns, set) = (ns_of(ds).to_owned(), name_of(ds).to_owned());
    let revision = short_hash(
        &canonical(ds.pointer("/spec/template").unwrap_or(&Value::Null)),
        10,
    );
    let probe = daemon_pod(ds, "", "", &revision);
    let wanted: Vec<&str> = nodes
        .iter()
        .filter(|n| admits(&probe, n))
        .map(name_of)
        .collect();
    let (mut pods, mut taken) = live_pods(cx, ds);
    pods.sort_by(|a, b| name_of(a).cmp(name_of(b)));

    // Pods on Nodes that are gone or no longer admit them, and extra Pods on one Node.
    let mut placed: HashSet<String> = HashSet::new();
    let mut kept = Vec::with_capacity(pods.len());
    for pod in pods {
        let node = str_at(&pod, "/spec/nodeName").to_owned();
        if !wanted.contains(&node.as_str()) || !placed.insert(node) {
            delete_pod(cx, ds, &pod);
        } else {
            kept.push(pod);
        }
    }
    let mut pods = kept;

    // A rolling update: outdated Pods go while few enough Pods are unavailable.
    let outdated = |p: &Value| str_at(p, &format!("/metadata/labels/{REVISION}")) != revision;
    if str_at(ds, "/spec/updateStrategy/type") != "OnDelete" {
        let budget = max_unavailable(ds, wanted.len());
        let mut unavailable =
            wanted.len().saturating_sub(pods.len()) + pods.iter().filter(|p| !pod_ready(p)).count();
        // Not-ready outdated Pods first: replacing them costs no availability.
        let mut old: Vec<Value> = pods.iter().filter(|p| outdated(p)).cloned().collect();
        old.sort_by_key(pod_ready);
        for pod in old {
            let ready = pod_ready(&pod);
            if ready && unavailable >= budget {
                break;
            }
            delete_pod(cx, ds, &pod);
            pods.retain(|p| name_of(p) != name_of(&pod));
            placed.remove(str_at(&pod, "/spec/nodeName"));
            if ready {
                unavailable += 1;
            }
        }
    }

    // A Pod for every admitting Node without one.
    for node in &wanted {
        if placed.contains(*node) {
            continue;
        }
        let pod_name = Cx::free_name(&set, &taken);
        taken.insert(pod_name.clone());
        let Some(pod) = cx.create("Pod", daemon_pod(ds, &pod_name, node, &revision)) else {
            break;
        };
        cx.event(
            ds,
            COMPONENT,
            "SuccessfulCreate",
            &format!("Created pod: {pod_name}"),
        );
        placed.insert((*node).to_owned());
        pods.push(pod);
    }

    let desired = wanted.len();
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let updated = pods.iter().filter(|p| !outdated(p)).count();
    let generation = ds
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let status = json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": pods.len(),
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": desired.saturating_sub(ready),
        "updatedNumberScheduled": updated,
    });
    cx.modify("DaemonSet", &ns, &set, |o| set_status(o, status));
}
