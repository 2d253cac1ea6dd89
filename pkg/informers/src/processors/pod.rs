//! Pods: references (pod spec, node), facts and the status summary.

use astrolabe_model::{EdgeKind, Facts, Health, Kind, Reference, Resource, Status, Str};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};

use super::common::{finish, from_meta, non_empty, status};
use super::pod_spec::{self, ServiceAccountDefault};

/// Waiting reasons that mean the container is failing, not merely starting.
const ERROR_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Turns a Pod into a [`Resource`].
pub fn pod(obj: &Pod) -> Resource {
    let mut r = from_meta(Kind::Pod, &obj.metadata);
    let ns = r.namespace.clone();
    let mut facts = Facts::default();
    if let Some(spec) = &obj.spec {
        pod_spec::references(spec, &ns, ServiceAccountDefault::Default, &mut r.references);
        if let Some(node) = non_empty(spec.node_name.as_ref()) {
            r.references.push(Reference::to_key(
                EdgeKind::RunsOn,
                Kind::Node,
                "",
                node.clone(),
            ));
            facts.node_name = Some(node);
        }
        facts.image = pod_spec::first_image(spec);
    }
    let st = obj.status.as_ref();
    let restarts: i64 = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| i64::from(c.restart_count.max(0)))
        .sum();
    facts.restart_count = Some(u32::try_from(restarts).unwrap_or(u32::MAX));
    facts.phase = st.and_then(|s| non_empty(s.phase.as_ref()));
    r.set_facts(&facts);
    r.status = if obj.metadata.deletion_timestamp.is_some() {
        status(Health::Pending, "Terminating")
    } else {
        pod_status(st)
    };
    finish(r)
}

fn pod_status(st: Option<&PodStatus>) -> Status {
    let phase = st.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    let containers = st
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let init = st
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    match phase {
        "Running" => running(containers),
        "Pending" => pending(st, init, containers),
        "Succeeded" => status(Health::Ready, "Pod succeeded"),
        "Failed" => {
            let reason = st.and_then(|s| s.reason.as_deref()).unwrap_or_default();
            if reason.is_empty() {
                status(Health::Error, "Pod failed")
            } else {
                status(Health::Error, format!("Pod failed: {reason}"))
            }
        }
        "Unknown" => status(Health::Unknown, "Pod status unknown"),
        other => status(Health::Unknown, format!("Unknown phase: {other}")),
    }
}

/// A failing waiting reason of any of `statuses`, if one is failing.
fn failing(statuses: &[ContainerStatus]) -> Option<&str> {
    statuses.iter().find_map(|c| {
        let reason = waiting_reason(c)?;
        ERROR_REASONS.contains(&reason).then_some(reason)
    })
}

fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
    c.state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .map(|w| w.reason.as_deref().unwrap_or("Waiting"))
}

fn running(containers: &[ContainerStatus]) -> Status {
    if let Some(reason) = failing(containers) {
        return status(Health::Error, format!("Container not ready: {reason}"));
    }
    for c in containers.iter().filter(|c| !c.ready) {
        let state = c.state.as_ref();
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            if t.exit_code != 0 {
                let reason = t.reason.as_deref().unwrap_or("Error");
                return status(Health::Error, format!("Container terminated: {reason}"));
            }
            // A container that finished successfully is done, not failing.
            continue;
        }
        if let Some(reason) = waiting_reason(c) {
            return status(Health::Pending, format!("Container not ready: {reason}"));
        }
        return status(Health::Pending, format!("Container not ready: {}", c.name));
    }
    status(Health::Ready, "Pod is running")
}

fn pending(
    st: Option<&PodStatus>,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
) -> Status {
    if let Some(reason) = failing(init) {
        return status(Health::Error, format!("Init container not ready: {reason}"));
    }
    if let Some(reason) = failing(containers) {
        return status(Health::Error, format!("Container not ready: {reason}"));
    }
    let unschedulable = st
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unschedulable {
        let reason = c.reason.as_deref().unwrap_or("Unschedulable");
        return match c.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => status(Health::Pending, format!("{reason}: {m}")),
            None => status(Health::Pending, reason),
        };
    }
    let waiting = init
        .iter()
        .chain(containers)
        .find_map(waiting_reason)
        .map(Str::from);
    match waiting {
        Some(reason) => status(Health::Pending, format!("Pod is pending: {reason}")),
        None => status(Health::Pending, "Pod is pending"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, meta, pod_spec};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        PodCondition,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn cs(name: &str, ready: bool, state: ContainerState, restarts: i32) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready,
            state: Some(state),
            restart_count: restarts,
            ..Default::default()
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        }
    }

    fn running_state() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }
    }

    fn with_status(phase: &str, containers: Vec<ContainerStatus>) -> Pod {
        let mut spec = pod_spec("app:1");
        spec.node_name = Some("node-1".into());
        Pod {
            metadata: meta("shop", "web-1"),
            spec: Some(spec),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(containers),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn references_and_facts() {
        let r = pod(&with_status(
            "Running",
            vec![
                cs("a", true, running_state(), 2),
                cs("b", true, running_state(), 3),
            ],
        ));
        assert_eq!(r.references, {
            let mut v = vec![
                key(EdgeKind::UsesSa, Kind::ServiceAccount, "shop", "default"),
                key(EdgeKind::RunsOn, Kind::Node, "", "node-1"),
            ];
            v.sort();
            v
        });
        let f = r.facts();
        assert_eq!(f.restart_count, Some(5));
        assert_eq!(f.node_name.as_deref(), Some("node-1"));
        assert_eq!(f.image.as_deref(), Some("app:1"));
        assert_eq!(f.phase.as_deref(), Some("Running"));
        assert_eq!(r.status, status(Health::Ready, "Pod is running"));
    }

    #[test]
    fn failing_waiting_reasons_are_errors() {
        for reason in [
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
        ] {
            let r = pod(&with_status(
                "Running",
                vec![cs("a", false, waiting(reason), 4)],
            ));
            assert_eq!(
                r.status,
                status(Health::Error, format!("Container not ready: {reason}"))
            );
            let r = pod(&with_status(
                "Pending",
                vec![cs("a", false, waiting(reason), 0)],
            ));
            assert_eq!(r.status.health, Health::Error, "{reason} while pending");
        }
    }

    #[test]
    fn running_but_not_ready_is_pending() {
        let r = pod(&with_status(
            "Running",
            vec![
                cs("a", true, running_state(), 0),
                cs("b", false, running_state(), 0),
            ],
        ));
        assert_eq!(r.status, status(Health::Pending, "Container not ready: b"));
    }

    #[test]
    fn terminated_container() {
        let term = |code| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "OOMKilled" }.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = pod(&with_status("Running", vec![cs("a", false, term(137), 0)]));
        assert_eq!(
            r.status,
            status(Health::Error, "Container terminated: OOMKilled")
        );
        let r = pod(&with_status(
            "Running",
            vec![
                cs("a", false, term(0), 0),
                cs("b", true, running_state(), 0),
            ],
        ));
        assert_eq!(r.status.health, Health::Ready);
    }

    #[test]
    fn pending_shows_the_reason() {
        let mut p = with_status("Pending", vec![]);
        if let Some(st) = p.status.as_mut() {
            st.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/3 nodes are available".into()),
                ..Default::default()
            }]);
        }
        assert_eq!(
            pod(&p).status,
            status(Health::Pending, "Unschedulable: 0/3 nodes are available")
        );
        let r = pod(&with_status(
            "Pending",
            vec![cs("a", false, waiting("ContainerCreating"), 0)],
        ));
        assert_eq!(
            r.status,
            status(Health::Pending, "Pod is pending: ContainerCreating")
        );
        assert_eq!(
            pod(&with_status("Pending", vec![])).status,
            status(Health::Pending, "Pod is pending")
        );
    }

    #[test]
    fn other_phases_and_terminating() {
        assert_eq!(
            pod(&with_status("Succeeded", vec![])).status,
            status(Health::Ready, "Pod succeeded")
        );
        assert_eq!(
            pod(&with_status("Failed", vec![])).status.health,
            Health::Error
        );
        assert_eq!(
            pod(&with_status("Unknown", vec![])).status.health,
            Health::Unknown
        );
        let mut p = with_status("Running", vec![cs("a", true, running_state(), 0)]);
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(pod(&p).status, status(Health::Pending, "Terminating"));
    }

    #[test]
    fn empty_pod_defaults_service_account() {
        let p = Pod {
            metadata: meta("ns", "bare"),
            spec: Some(pod_spec("x")),
            status: None,
        };
        let r = pod(&p);
        assert_eq!(
            r.references,
            vec![key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "default")]
        );
        assert_eq!(r.status.health, Health::Unknown);
    }
}
