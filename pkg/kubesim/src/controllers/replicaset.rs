//! The ReplicaSet controller: keeps `spec.replicas` Pods from the template, each named
//! `<replicaset>-<5 chars>` and controlled by the ReplicaSet, and reports replicas, ready and
//! available counts in the status.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{
    Cx, controlled_by, is_deleting, name_of, ns_of, pod_finished, pod_from_template, pod_ready,
    replicas, set_status, str_at, uid_of,
};

/// The component named in the Events this controller records.
const COMPONENT: &str = "replicaset-controller";

/// Syncs every ReplicaSet.
pub(crate) fn reconcile(cx: &mut Cx) {
    for rs in cx.list("ReplicaSet") {
        if !is_deleting(&rs) {
            sync(cx, &rs);
        }
    }
}

/// The live (not finished, not deleting) Pods controlled by `owner`, and the names taken in
/// its namespace.
pub(crate) fn live_pods(cx: &Cx, owner: &Value) -> (Vec<Value>, HashSet<String>) {
    let all = cx.list_in("Pod", ns_of(owner));
    let taken = all.iter().map(|p| name_of(p).to_owned()).collect();
    let uid = uid_of(owner);
    let pods = all
        .into_iter()
        .filter(|p| controlled_by(p, uid) && !is_deleting(p) && !pod_finished(p))
        .map(|p| Value::clone(&p))
        .collect();
    (pods, taken)
}

fn sync(cx: &mut Cx, rs: &Value) {
    let (ns, name) = (ns_of(rs).to_owned(), name_of(rs).to_owned());
    let (mut pods, mut taken) = live_pods(cx, rs);
    let want = usize::try_from(replicas(rs).max(0)).unwrap_or(0);
    let template = rs
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    while pods.len() < want {
        let pod_name = Cx::free_name(&name, &taken);
        taken.insert(pod_name.clone());
        let Some(pod) = cx.create("Pod", pod_from_template(rs, &template, &pod_name, &[])) else {
            break;
        };
        cx.event(
            rs,
            COMPONENT,
            "SuccessfulCreate",
            &format!("Created pod: {pod_name}"),
        );
        pods.push(pod);
    }
    if pods.len() > want {
        // Unscheduled first, then not ready, then the newest names.
        pods.sort_by(|a, b| {
            let key = |p: &Value| (!str_at(p, "/spec/nodeName").is_empty(), pod_ready(p));
            key(a).cmp(&key(b)).then_with(|| name_of(b).cmp(name_of(a)))
        });
        let extra = pods.len() - want;
        for pod in pods.drain(..extra) {
            if cx.delete("Pod", &ns, name_of(&pod)) {
                cx.event(
                    rs,
                    COMPONENT,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name_of(&pod)),
                );
            }
        }
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let generation = rs
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": generation,
    });
    cx.modify("ReplicaSet", &ns, &name, |o| set_status(o, status));
}
