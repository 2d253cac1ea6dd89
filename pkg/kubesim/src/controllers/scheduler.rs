//! The scheduler: a Pod without `spec.nodeName` goes to a schedulable Node whose labels satisfy
//! its `nodeSelector` and whose `NoSchedule`/`NoExecute` taints it tolerates, the one with the
//! fewest Pods (then by name); with none, the Pod stays Pending with `PodScheduled=False`,
//! reason `Unschedulable`. Affinity, resources and ports are not considered.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Cx, condition, is_deleting, name_of, ns_of, pod_finished, set_at, set_condition, str_at,
};

/// The component named in the Events this controller records.
const COMPONENT: &str = "default-scheduler";

/// Whether `toleration` tolerates `taint`.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_at(toleration, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(toleration, "/key");
    match str_at(toleration, "/operator") {
        "Exists" => key.is_empty() || key == str_at(taint, "/key"),
        _ => {
            key == str_at(taint, "/key") && str_at(toleration, "/value") == str_at(taint, "/value")
        }
    }
}

/// Whether the scheduler may place `pod` on `node`: the Node is schedulable and
/// [`admits`] the Pod.
pub(crate) fn fits(pod: &Value, node: &Value) -> bool {
    node.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true) && admits(pod, node)
}

/// Whether `node`'s labels satisfy `pod`'s `nodeSelector` and `pod` tolerates the Node's
/// `NoSchedule`/`NoExecute` taints: the part of [`fits`] the DaemonSet controller shares (its
/// Pods tolerate `node.kubernetes.io/unschedulable`, so a cordoned Node keeps them).
pub(crate) fn admits(pod: &Value, node: &Value) -> bool {
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| node.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v));
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let taints_ok = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| matches!(str_at(t, "/effect"), "NoSchedule" | "NoExecute"))
        .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)));
    selector_ok && taints_ok
}

/// Places every unscheduled Pod.
pub(crate) fn reconcile(cx: &mut Cx) {
    let nodes = cx.list("Node");
    let pods = cx.list("Pod");
    let mut load: BTreeMap<String, usize> =
        nodes.iter().map(|n| (name_of(n).to_owned(), 0)).collect();
    for p in &pods {
        if let Some(n) = load.get_mut(str_at(p, "/spec/nodeName")) {
            *n += 1;
        }
    }
    for pod in &pods {
        if !str_at(pod, "/spec/nodeName").is_empty() || is_deleting(pod) || pod_finished(pod) {
            continue;
        }
        let (ns, name) = (ns_of(pod), name_of(pod));
        let choice = nodes
            .iter()
            .filter(|n| fits(pod, n))
            .map(|n| name_of(n))
            .min_by_key(|n| (load.get(*n).copied().unwrap_or(0), (*n).to_owned()))
            .map(str::to_owned);
        match choice {
            Some(node) => {
                let wrote = cx.modify("Pod", ns, name, |o| {
                    set_at(o, &["spec", "nodeName"], json!(node));
                    set_condition(o, "PodScheduled", "True", "", "");
                });
                if wrote {
                    *load.entry(node.clone()).or_default() += 1;
                    let msg = format!("Successfully assigned {ns}/{name} to {node}");
                    cx.event(pod, COMPONENT, "Scheduled", &msg);
                }
            }
            None => {
                let msg = format!(
                    "0/{} nodes are available: no node matches the Pod's node selector and tolerates its taints.",
                    nodes.len()
                );
                let before = condition(pod, "PodScheduled").cloned();
                let wrote = cx.modify("Pod", ns, name, |o| {
                    set_condition(o, "PodScheduled", "False", "Unschedulable", &msg);
                });
                if wrote && before.is_none_or(|c| c.get("reason") != Some(&json!("Unschedulable")))
                {
                    cx.event(pod, COMPONENT, "FailedScheduling", &msg);
                }
            }
        }
    }
}
