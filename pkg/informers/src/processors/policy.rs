//! Policy: HorizontalPodAutoscaler (autoscaling/v2) and PodDisruptionBudget (policy/v1).

use astrolabe_model::{EdgeKind, Facts, Health, Kind, Reference, Resource, Scaling, Status, Str};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::common::{finish, from_meta, selector, status};

/// Turns a HorizontalPodAutoscaler into a [`Resource`]: it `scales` its scale target.
pub fn horizontal_pod_autoscaler(obj: &HorizontalPodAutoscaler) -> Resource {
    let mut r = from_meta(Kind::HorizontalPodAutoscaler, &obj.metadata);
    let st = obj.status.as_ref();
    let current = st.and_then(|s| s.current_replicas).unwrap_or(0);
    let desired = st.map_or(0, |s| s.desired_replicas);
    let spec = &obj.spec;
    let target = &spec.scale_target_ref;
    let mut facts = Facts::default();
    if !target.name.is_empty() && !target.kind.is_empty() {
        let kind = Kind::from_api_version(
            target.api_version.as_deref().unwrap_or_default(),
            &target.kind,
        );
        r.references.push(Reference::to_key(
            EdgeKind::Scales,
            kind.clone(),
            r.namespace.clone(),
            target.name.as_str(),
        ));
        facts.scale_target = Some((kind, Str::from(target.name.as_str())));
    }
    facts.scaling = Some(Scaling {
        min: spec.min_replicas,
        max: spec.max_replicas,
        current,
        desired,
    });
    r.set_facts(&facts);
    r.status = hpa_status(st, current, desired);
    finish(r)
}

/// The v2 conditions: `AbleToScale` false is an error, `ScalingActive` false is pending,
/// otherwise ready with the replica counts.
fn hpa_status(st: Option<&HorizontalPodAutoscalerStatus>, current: i32, desired: i32) -> Status {
    let conditions = st.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let find = |kind: &str| conditions.iter().find(|c| c.type_ == kind);
    let reason = |c: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition| {
        c.reason.clone().unwrap_or_else(|| c.type_.clone())
    };
    if conditions.is_empty() {
        return status(Health::Pending, "Waiting for autoscaler status");
    }
    if let Some(c) = find("AbleToScale").filter(|c| c.status == "False") {
        return status(Health::Error, format!("Unable to scale: {}", reason(c)));
    }
    if let Some(c) = find("ScalingActive").filter(|c| c.status == "False") {
        return status(Health::Pending, format!("Scaling inactive: {}", reason(c)));
    }
    status(
        Health::Ready,
        format!("Scaling: {current}/{desired} replicas"),
    )
}

/// Turns a PodDisruptionBudget into a [`Resource`]: it `protects` the Pods its selector
/// selects (no selector: no reference; an empty selector selects every Pod in the namespace).
pub fn pod_disruption_budget(obj: &PodDisruptionBudget) -> Resource {
    let mut r = from_meta(Kind::PodDisruptionBudget, &obj.metadata);
    if let Some(sel) = obj.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        r.references.push(Reference::to_selector(
            EdgeKind::Protects,
            Kind::Pod,
            selector(sel),
            true,
        ));
    }
    r.status = match &obj.status {
        None => status(Health::Pending, "Waiting for disruption budget status"),
        Some(st) => {
            let current = st.current_healthy.unwrap_or(0);
            let desired = st.desired_healthy.unwrap_or(0);
            if current >= desired {
                status(Health::Ready, format!("Healthy: {current}/{desired}"))
            } else {
                status(Health::Pending, format!("Unhealthy: {current}/{desired}"))
            }
        }
    };
    finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, map, meta};
    use astrolabe_model::Target;
    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerSpec,
    };
    use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

    fn hpa(kind: &str, conditions: Vec<(&str, &str)>) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: meta("ns", "web"),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: kind.into(),
                    name: "web".into(),
                },
                min_replicas: Some(1),
                max_replicas: 10,
                ..Default::default()
            },
            status: Some(HorizontalPodAutoscalerStatus {
                current_replicas: Some(2),
                desired_replicas: 3,
                conditions: Some(
                    conditions
                        .into_iter()
                        .map(|(t, s)| HorizontalPodAutoscalerCondition {
                            type_: t.into(),
                            status: s.into(),
                            reason: Some(format!("{t}Reason")),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hpa_scales_its_target() {
        let r = horizontal_pod_autoscaler(&hpa(
            "Deployment",
            vec![("AbleToScale", "True"), ("ScalingActive", "True")],
        ));
        assert_eq!(
            r.references,
            vec![key(EdgeKind::Scales, Kind::Deployment, "ns", "web")]
        );
        assert_eq!(r.status, status(Health::Ready, "Scaling: 2/3 replicas"));
        assert_eq!(
            r.facts().scaling,
            Some(Scaling {
                min: Some(1),
                max: 10,
                current: 2,
                desired: 3
            })
        );
        assert_eq!(
            r.facts().scale_target,
            Some((Kind::Deployment, Str::from("web")))
        );
        // A custom workload is named by its group, from the target's apiVersion.
        let mut rollout = hpa("Rollout", vec![("AbleToScale", "True")]);
        rollout.spec.scale_target_ref.api_version = Some("argoproj.io/v1alpha1".into());
        let crd = horizontal_pod_autoscaler(&rollout);
        assert_eq!(
            crd.references[0].target_kind(),
            &Kind::other("argoproj.io", "Rollout")
        );
        assert_eq!(
            crd.references[0].target_kind().api_version(),
            "argoproj.io/v1alpha1"
        );
    }

    #[test]
    fn hpa_v2_conditions() {
        assert_eq!(
            horizontal_pod_autoscaler(&hpa("Deployment", vec![("AbleToScale", "False")])).status,
            status(Health::Error, "Unable to scale: AbleToScaleReason")
        );
        assert_eq!(
            horizontal_pod_autoscaler(&hpa(
                "Deployment",
                vec![("AbleToScale", "True"), ("ScalingActive", "False")]
            ))
            .status,
            status(Health::Pending, "Scaling inactive: ScalingActiveReason")
        );
        assert_eq!(
            horizontal_pod_autoscaler(&hpa("Deployment", vec![]))
                .status
                .health,
            Health::Pending
        );
    }

    fn pdb(sel: Option<metav1::LabelSelector>, current: i32, desired: i32) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: meta("ns", "web"),
            spec: Some(PodDisruptionBudgetSpec {
                selector: sel,
                ..Default::default()
            }),
            status: Some(PodDisruptionBudgetStatus {
                current_healthy: Some(current),
                desired_healthy: Some(desired),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pdb_selector_cases() {
        assert!(
            pod_disruption_budget(&pdb(None, 1, 1))
                .references
                .is_empty()
        );
        let empty = pod_disruption_budget(&pdb(Some(metav1::LabelSelector::default()), 1, 1));
        match &empty.references[..] {
            [r] => match &r.target {
                Target::Selector {
                    selector,
                    empty_selects_all,
                    ..
                } => {
                    assert!(selector.is_empty());
                    assert!(empty_selects_all);
                    assert_eq!(r.edge, EdgeKind::Protects);
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
        let labelled = pod_disruption_budget(&pdb(
            Some(metav1::LabelSelector {
                match_labels: Some(map(&[("app", "web")])),
                match_expressions: None,
            }),
            1,
            1,
        ));
        assert_eq!(labelled.references.len(), 1);
    }

    #[test]
    fn pdb_health() {
        assert_eq!(
            pod_disruption_budget(&pdb(None, 2, 2)).status,
            status(Health::Ready, "Healthy: 2/2")
        );
        assert_eq!(
            pod_disruption_budget(&pdb(None, 1, 2)).status,
            status(Health::Pending, "Unhealthy: 1/2")
        );
    }
}
