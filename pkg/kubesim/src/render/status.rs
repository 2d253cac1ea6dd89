//! The `status` stanza of rendered objects, written the way the owning controller (kubelet,
//! ingress controller, HPA controller, ...) reports the resource's generated health and facts.

use astrolabe_model::{Health, Kind, Resource};
use serde_json::{Value, json};

use super::{DEFAULT_IMAGE, timestamp};

/// The generator words a failing container the way the processors read it back.
const NOT_READY_PREFIX: &str = "Container not ready: ";

/// A stable address `a.b.x.y` derived from `seed`, with `b` in `b..b + 8`.
pub(super) fn ip(seed: &str, a: u32, b: u32) -> String {
    let h = seed
        .bytes()
        .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)));
    format!(
        "{a}.{}.{}.{}",
        b + (h % 8),
        (h >> 8) % 256,
        1 + (h >> 16) % 254
    )
}

fn condition(kind: &str, ok: bool, since: &str) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": since})
}

/// A custom resource's status as its controller reports it: the condition its kind's
/// controller sets (cert-manager's `Ready`, Gateway API's `Accepted`/`Programmed`), with the
/// generated message; ServiceMonitors have none.
pub(super) fn custom(res: &Resource) -> Option<Value> {
    let ok = res.status.health == Health::Ready;
    let since = timestamp(res.created_at);
    let types: &[&str] = match res.kind.as_str() {
        "GatewayClass" => &["Accepted"],
        "Gateway" => &["Accepted", "Programmed"],
        "HTTPRoute" | "ServiceMonitor" => return None,
        _ => &["Ready"],
    };
    let conditions: Vec<Value> = types
        .iter()
        .map(|t| {
            let mut c = condition(t, ok, &since);
            c["message"] = json!(res.status.message.as_str());
            c
        })
        .collect();
    Some(json!({"conditions": conditions}))
}

/// A Pod's status as the kubelet reports it for the generated phase, health and restart count:
/// Pending before the kubelet reports containers; Running with a running container (not ready
/// unless the health is Ready), or a waiting one when failing (the reason the message names,
/// `CrashLoopBackOff` by default); Succeeded and Failed with a terminated container.
pub(super) fn pod(res: &Resource) -> Value {
    let facts = res.facts();
    let ready = res.status.health == Health::Ready;
    let phase = facts
        .phase
        .as_deref()
        .unwrap_or(if ready { "Running" } else { "Pending" });
    let since = timestamp(res.created_at);
    let scheduled = condition("PodScheduled", true, &since);
    if phase == "Pending" {
        return json!({"phase": phase, "conditions": [scheduled], "qosClass": "Burstable"});
    }
    let mut container = json!({
        "name": "main",
        "image": facts.image.as_deref().unwrap_or(DEFAULT_IMAGE),
        "imageID": "",
        "restartCount": facts.restart_count.unwrap_or(0),
    });
    let terminated = |code: i32, reason: &str| json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": since, "finishedAt": since}});
    let state = match phase {
        "Running" if res.status.health != Health::Error => {
            json!({"running": {"startedAt": since}})
        }
        "Running" => {
            let reason = res
                .status
                .message
                .strip_prefix(NOT_READY_PREFIX)
                .unwrap_or("CrashLoopBackOff");
            container["lastState"] = terminated(1, "Error");
            json!({"waiting": {
                "reason": reason,
                "message": format!("back-off 5m0s restarting failed container=main pod={}_{}({})", res.name, res.namespace, res.uid.as_str()),
            }})
        }
        "Succeeded" => terminated(0, "Completed"),
        _ => terminated(1, "Error"),
    };
    let running = phase == "Running" && ready;
    container["ready"] = json!(running);
    container["started"] = json!(state.get("running").is_some());
    container["state"] = state;
    let pod_ip = ip(res.uid.as_str(), 10, 244);
    json!({
        "phase": phase,
        "conditions": [
            condition("Initialized", true, &since),
            condition("Ready", running, &since),
            condition("ContainersReady", running, &since),
            scheduled,
        ],
        "hostIP": "192.168.0.10",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": since,
        "qosClass": "Burstable",
        "containerStatuses": [container],
    })
}

/// A workload's desired replicas (for its spec) and its status counts (DaemonSets count scheduled
/// nodes instead of replicas).
pub(super) fn replicas(res: &Resource) -> (i64, Value) {
    let r = res.facts().replicas.unwrap_or_default();
    let status = if res.kind == Kind::DaemonSet {
        json!({
            "desiredNumberScheduled": r.desired,
            "currentNumberScheduled": r.current,
            "updatedNumberScheduled": r.current,
            "numberReady": r.ready,
            "numberAvailable": r.available,
            "numberMisscheduled": 0,
            "observedGeneration": 1,
        })
    } else {
        // A ReplicaSet counts fully labeled replicas; Deployments and StatefulSets updated ones.
        let counted = if res.kind == Kind::ReplicaSet {
            "fullyLabeledReplicas"
        } else {
            "updatedReplicas"
        };
        json!({
            "replicas": r.current,
            counted: r.current,
            "readyReplicas": r.ready,
            "availableReplicas": r.available,
            "observedGeneration": 1,
        })
    };
    (i64::from(r.desired), status)
}

/// An Ingress's status: a load-balancer address once Ready.
pub(super) fn ingress(res: &Resource) -> Value {
    if res.status.health == Health::Ready {
        json!({"loadBalancer": {"ingress": [{"ip": ip(res.uid.as_str(), 34, 96)}]}})
    } else {
        json!({"loadBalancer": {}})
    }
}

/// An autoscaling/v2 HPA status: replica counts from the facts and the controller's conditions
/// (an Error cannot scale, a Pending has no metrics yet).
pub(super) fn hpa(res: &Resource) -> Value {
    let scaling = res.facts().scaling.unwrap_or_default();
    let since = timestamp(res.created_at);
    let cond = |kind: &str, ok: bool, reason: &str, message: &str| {
        let mut c = condition(kind, ok, &since);
        c["reason"] = json!(reason);
        c["message"] = json!(message);
        c
    };
    let conditions = match res.status.health {
        Health::Error => vec![cond(
            "AbleToScale",
            false,
            "FailedGetScale",
            "the HPA controller was unable to get the target's current scale",
        )],
        Health::Ready => vec![
            cond(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
            cond(
                "ScalingActive",
                true,
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
            ),
            cond(
                "ScalingLimited",
                false,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        ],
        _ => vec![
            cond(
                "AbleToScale",
                true,
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            ),
            cond(
                "ScalingActive",
                false,
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: did not receive metrics for targeted pods",
            ),
        ],
    };
    json!({
        "currentReplicas": scaling.current,
        "desiredReplicas": scaling.desired,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "45m"}}}],
        "conditions": conditions,
    })
}

/// A Node's status: the Ready condition carries the generated health and message.
pub(super) fn node(res: &Resource) -> Value {
    let ready = if res.status.health == Health::Ready {
        "True"
    } else {
        "False"
    };
    json!({
        "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady", "message": res.status.message.as_str()}],
        "addresses": [{"type": "Hostname", "address": res.name.as_str()}],
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Ubuntu 24.04", "architecture": "amd64", "operatingSystem": "linux",
                     "bootID": "", "containerRuntimeVersion": "containerd://2.0.0", "kernelVersion": "6.8.0", "kubeProxyVersion": "",
                     "machineID": "", "systemUUID": ""},
    })
}
