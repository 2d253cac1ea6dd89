//! The HorizontalPodAutoscaler controller, without metrics: the emulator serves none, so an HPA
//! only keeps its target's `spec.replicas` within `[minReplicas, maxReplicas]` (scaling a
//! Deployment, StatefulSet or ReplicaSet named by `scaleTargetRef` up to the minimum or down to
//! the maximum, never elsewhere) and reports it: `currentReplicas` (the target's `spec.replicas`),
//! `desiredReplicas` (that, clamped), `lastScaleTime`, and the conditions `AbleToScale`,
//! `ScalingActive` (`False`, reason `FailedGetResourceMetric`: there are no metrics) and
//! `ScalingLimited`. A target that is missing or not scalable makes `AbleToScale` `False` with
//! reason `FailedGetScale`. A target of zero replicas disables scaling (`ScalingDisabled`), as
//! in Kubernetes.

use serde_json::{Value, json};

use super::{Cx, is_deleting, name_of, ns_of, replicas, set_at, set_condition, str_at};
use crate::store::now_rfc3339;

/// The component named in the Events this controller records.
const COMPONENT: &str = "horizontal-pod-autoscaler";

/// The kinds an HPA can scale here, and their API groups.
const TARGETS: &[(&str, &str)] = &[
    ("Deployment", "apps"),
    ("StatefulSet", "apps"),
    ("ReplicaSet", "apps"),
];

/// Syncs every HorizontalPodAutoscaler.
pub(crate) fn reconcile(cx: &mut Cx) {
    for hpa in cx.list("HorizontalPodAutoscaler") {
        if !is_deleting(&hpa) {
            sync(cx, &hpa);
        }
    }
}

/// The target's kind as the store knows it, when it is one the HPA can scale: the
/// `scaleTargetRef` kind, with an `apiVersion` in the kind's group (or none).
fn target_kind(hpa: &Value) -> Option<&'static str> {
    let kind = str_at(hpa, "/spec/scaleTargetRef/kind");
    let api_version = str_at(hpa, "/spec/scaleTargetRef/apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    TARGETS
        .iter()
        .find(|(k, g)| *k == kind && (api_version.is_empty() || group == *g))
        .map(|(k, _)| *k)
}

fn count(hpa: &Value, pointer: &str, default: i64) -> i64 {
    hpa.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn sync(cx: &mut Cx, hpa: &Value) {
    let (ns, name) = (ns_of(hpa).to_owned(), name_of(hpa).to_owned());
    let target_name = str_at(hpa, "/spec/scaleTargetRef/name").to_owned();
    let generation = hpa
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let target = target_kind(hpa).and_then(|kind| {
        cx.get(kind, &ns, &target_name)
            .filter(|t| !is_deleting(t))
            .map(|t| (kind, t))
    });
    let Some((kind, target)) = target else {
        let ref_kind = str_at(hpa, "/spec/scaleTargetRef/kind").to_owned();
        let msg = format!(
            "the HPA controller was unable to get the target's current scale: {ref_kind} \"{target_name}\" not found or not scalable"
        );
        cx.modify("HorizontalPodAutoscaler", &ns, &name, |o| {
            set_at(o, &["status", "observedGeneration"], generation);
            set_condition(o, "AbleToScale", "False", "FailedGetScale", &msg);
        });
        return;
    };
    let current = replicas(&target).max(0);
    let min = count(hpa, "/spec/minReplicas", 1).max(1);
    let max = count(hpa, "/spec/maxReplicas", min).max(min);
    let desired = if current == 0 {
        0
    } else {
        current.clamp(min, max)
    };
    let rescaled = desired != current
        && cx.modify(kind, &ns, &target_name, |o| {
            set_at(o, &["spec", "replicas"], json!(desired));
        });
    if rescaled {
        let why = if current < min {
            "Current number of replicas below Spec.MinReplicas"
        } else {
            "Current number of replicas above Spec.MaxReplicas"
        };
        let msg = format!("New size: {desired}; reason: {why}");
        cx.event(hpa, COMPONENT, "SuccessfulRescale", &msg);
    }
    let now = now_rfc3339();
    cx.modify("HorizontalPodAutoscaler", &ns, &name, |o| {
        set_at(o, &["status", "observedGeneration"], generation);
        set_at(o, &["status", "currentReplicas"], json!(current));
        set_at(o, &["status", "desiredReplicas"], json!(desired));
        if rescaled {
            set_at(o, &["status", "lastScaleTime"], json!(now));
            let msg = format!("the HPA controller was able to update the target scale to {desired}");
            set_condition(o, "AbleToScale", "True", "SucceededRescale", &msg);
        } else {
            set_condition(
                o,
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
            );
        }
        if current == 0 {
            set_condition(
                o,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
        } else {
            set_condition(
                o,
                "ScalingActive",
                "False",
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: the Kubernetes API emulator serves no metrics",
            );
        }
        let (status, reason, msg) = if current < min {
            (
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        } else if current > max {
            (
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        } else {
            (
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        };
        set_condition(o, "ScalingLimited", status, reason, msg);
    });
}
