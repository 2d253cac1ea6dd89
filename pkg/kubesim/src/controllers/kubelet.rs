//! The kubelet's part, without a container runtime: a Pod bound to a Node runs once
//! [`crate::SimConfig::pod_start_delay`] has passed (phase `Running`, an IP, start time, the
//! `Initialized`/`ContainersReady`/`Ready` conditions and a running, ready status per
//! container); a Pod of a Job then succeeds after the same delay.

use serde_json::{Value, json};

use super::{
    Cx, fnv64, is_deleting, name_of, ns_of, owner_refs, set_at, set_condition, str_at, uid_of,
};
use crate::store::now_rfc3339;

/// The address of `node` (its InternalIP), or one hashed from its name.
fn node_ip(cx: &Cx, node: &str) -> String {
    cx.get("Node", "", node)
        .and_then(|n| {
            n.pointer("/status/addresses")?
                .as_array()?
                .iter()
                .find(|a| str_at(a, "/type") == "InternalIP")
                .map(|a| str_at(a, "/address").to_owned())
        })
        .unwrap_or_else(|| {
            let h = fnv64(node);
            format!("172.18.{}.{}", (h >> 8) % 250, h % 250 + 2)
        })
}

/// A Pod IP in 10.244.0.0/16 hashed from the Pod's namespace and name.
fn pod_ip(pod: &Value) -> String {
    let h = fnv64(&format!("{}/{}", ns_of(pod), name_of(pod)));
    format!("10.244.{}.{}", (h >> 8) % 256, h % 253 + 2)
}

fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn container_status(pod: &Value, c: &Value, state: Value, ready: bool) -> Value {
    let image = str_at(c, "/image");
    let id = fnv64(&format!("{}/{}", uid_of(pod), str_at(c, "/name")));
    json!({
        "name": str_at(c, "/name"),
        "image": image,
        "imageID": format!("{image}@sha256:{id:016x}"),
        "containerID": format!("emulated://{id:016x}"),
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
    })
}

fn owned_by_job(pod: &Value) -> bool {
    owner_refs(pod).iter().any(|r| str_at(r, "/kind") == "Job")
}

/// Starts bound Pods and completes the Pods of Jobs.
pub(crate) fn reconcile(cx: &mut Cx) {
    let delay = cx.sim.config().pod_start_delay;
    for pod in cx.list("Pod") {
        let node = str_at(&pod, "/spec/nodeName").to_owned();
        if node.is_empty() || is_deleting(&pod) {
            continue;
        }
        let (ns, name, uid) = (ns_of(&pod), name_of(&pod), uid_of(&pod));
        match str_at(&pod, "/status/phase") {
            "Pending" | "" if cx.elapsed(&format!("start/{uid}"), delay) => {
                let now = now_rfc3339();
                let host = node_ip(cx, &node);
                let ip = pod_ip(&pod);
                let running = json!({"running": {"startedAt": now}});
                let statuses: Vec<Value> = containers(&pod)
                    .iter()
                    .map(|c| container_status(&pod, c, running.clone(), true))
                    .collect();
                cx.modify("Pod", ns, name, |o| {
                    set_at(o, &["status", "phase"], json!("Running"));
                    set_at(o, &["status", "hostIP"], json!(host));
                    set_at(o, &["status", "hostIPs"], json!([{"ip": host}]));
                    set_at(o, &["status", "podIP"], json!(ip));
                    set_at(o, &["status", "podIPs"], json!([{"ip": ip}]));
                    set_at(o, &["status", "startTime"], json!(now));
                    set_at(o, &["status", "qosClass"], json!("BestEffort"));
                    set_at(o, &["status", "containerStatuses"], json!(statuses));
                    for ty in [
                        "PodReadyToStartContainers",
                        "Initialized",
                        "Ready",
                        "ContainersReady",
                        "PodScheduled",
                    ] {
                        set_condition(o, ty, "True", "", "");
                    }
                });
                for c in containers(&pod) {
                    let image = str_at(&c, "/image");
                    cx.event(
                        &pod,
                        "kubelet",
                        "Pulled",
                        &format!("Container image \"{image}\" already present on machine"),
                    );
                    cx.event(
                        &pod,
                        "kubelet",
                        "Started",
                        &format!("Started container {}", str_at(&c, "/name")),
                    );
                }
            }
            "Running" if owned_by_job(&pod) && cx.elapsed(&format!("finish/{uid}"), delay) => {
                let now = now_rfc3339();
                let started = str_at(&pod, "/status/startTime").to_owned();
                let done = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}});
                let statuses: Vec<Value> = containers(&pod)
                    .iter()
                    .map(|c| container_status(&pod, c, done.clone(), false))
                    .collect();
                cx.modify("Pod", ns, name, |o| {
                    set_at(o, &["status", "phase"], json!("Succeeded"));
                    set_at(o, &["status", "containerStatuses"], json!(statuses));
                    set_condition(o, "Ready", "False", "PodCompleted", "");
                    set_condition(o, "ContainersReady", "False", "PodCompleted", "");
                });
            }
            _ => {}
        }
    }
}
