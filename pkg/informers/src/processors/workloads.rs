//! Workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob.

use astrolabe_model::{
    EdgeKind, Facts, Health, Kind, Reference, Replicas, Resource, Status, Target,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::common::{finish, from_meta, status};
use super::pod_spec::{template_image, template_references};

/// Replica counts as Kubernetes reports them: `spec.replicas` defaults to 1, absent status
/// counts are 0.
fn counts(
    desired: Option<i32>,
    current: Option<i32>,
    ready: Option<i32>,
    available: Option<i32>,
) -> Replicas {
    Replicas {
        desired: desired.unwrap_or(1),
        current: current.unwrap_or(0),
        ready: ready.unwrap_or(0),
        available: available.unwrap_or(0),
    }
}

/// Turns a Deployment into a [`Resource`].
pub fn deployment(obj: &Deployment) -> Resource {
    let spec = &obj.spec;
    let st = obj.status.as_ref();
    let replicas = counts(
        spec.replicas,
        st.and_then(|s| s.replicas),
        st.and_then(|s| s.ready_replicas),
        st.and_then(|s| s.available_replicas),
    );
    replicated(
        Kind::Deployment,
        &obj.metadata,
        Some(&spec.template),
        replicas,
    )
}

/// Turns a ReplicaSet into a [`Resource`]. One scaled to zero is kept up to date like any
/// other (`Scaled to zero (0/0)`), never skipped.
pub fn replica_set(obj: &ReplicaSet) -> Resource {
    let spec = &obj.spec;
    let st = obj.status.as_ref();
    let replicas = counts(
        spec.replicas,
        st.map(|s| s.replicas),
        st.and_then(|s| s.ready_replicas),
        st.and_then(|s| s.available_replicas),
    );
    replicated(
        Kind::ReplicaSet,
        &obj.metadata,
        spec.template.as_ref(),
        replicas,
    )
}

/// Turns a StatefulSet into a [`Resource`]: besides its template's references, one
/// `claims-from-template` per volumeClaimTemplate and ordinal (`<template>-<set>-<i>`). A template
/// volume whose `claimName` is a claim template's name makes no `mounts`: no claim of that name
/// exists, each Pod gets its own (and the Pod's processor links it).
pub fn stateful_set(obj: &StatefulSet) -> Resource {
    let spec = &obj.spec;
    let st = obj.status.as_ref();
    let replicas = counts(
        spec.replicas,
        st.map(|s| s.replicas),
        st.and_then(|s| s.ready_replicas),
        st.and_then(|s| s.available_replicas),
    );
    let mut r = replicated(
        Kind::StatefulSet,
        &obj.metadata,
        Some(&spec.template),
        replicas,
    );
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let templates: Vec<&str> = spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|tpl| tpl.metadata.name.as_deref().filter(|n| !n.is_empty()))
        .collect();
    r.references.retain(|x| {
        !(x.edge == EdgeKind::Mounts
            && matches!(&x.target, Target::Key(k)
                if k.kind == Kind::PersistentVolumeClaim && templates.contains(&k.name.as_str())))
    });
    for tpl_name in templates {
        for i in 0..replicas.desired.max(0) {
            r.references.push(Reference::to_key(
                EdgeKind::ClaimsFromTemplate,
                Kind::PersistentVolumeClaim,
                r.namespace.clone(),
                format!("{tpl_name}-{}-{}", r.name, start + i),
            ));
        }
    }
    finish(r)
}

/// Turns a DaemonSet into a [`Resource`].
pub fn daemon_set(obj: &DaemonSet) -> Resource {
    let mut r = from_meta(Kind::DaemonSet, &obj.metadata);
    let st = obj.status.as_ref();
    let replicas = Replicas {
        desired: st.map_or(0, |s| s.desired_number_scheduled),
        current: st.map_or(0, |s| s.current_number_scheduled),
        ready: st.map_or(0, |s| s.number_ready),
        available: st.and_then(|s| s.number_available).unwrap_or(0),
    };
    template_references(&obj.spec.template, &r.namespace.clone(), &mut r.references);
    let (d, n) = (replicas.desired, replicas.ready);
    r.status = if d == 0 && n == 0 {
        status(Health::Ready, "No nodes to schedule (0/0)")
    } else if n == d {
        status(Health::Ready, format!("All pods ready ({n}/{d})"))
    } else if n == 0 {
        status(Health::Error, format!("No pods ready (0/{d})"))
    } else {
        status(Health::Pending, format!("Partially ready ({n}/{d})"))
    };
    r.set_facts(&Facts {
        replicas: Some(replicas),
        image: template_image(&obj.spec.template),
        ..Facts::default()
    });
    finish(r)
}

/// Turns a Job into a [`Resource`].
pub fn job(obj: &Job) -> Resource {
    let mut r = from_meta(Kind::Job, &obj.metadata);
    if let Some(spec) = &obj.spec {
        template_references(&spec.template, &r.namespace.clone(), &mut r.references);
        r.set_facts(&Facts {
            image: template_image(&spec.template),
            ..Facts::default()
        });
    }
    r.status = job_status(obj);
    finish(r)
}

fn job_status(obj: &Job) -> Status {
    let st = obj.status.as_ref();
    let condition = |kind: &str| {
        st.and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if let Some(c) = condition("Failed") {
        let reason = c.reason.as_deref().unwrap_or("Failed");
        return status(Health::Error, format!("Job failed: {reason}"));
    }
    if condition("Complete").is_some() {
        return status(Health::Ready, "Job completed successfully");
    }
    if condition("Suspended").is_some() {
        return status(Health::Pending, "Job suspended");
    }
    let succeeded = st.and_then(|s| s.succeeded).unwrap_or(0);
    let failed = st.and_then(|s| s.failed).unwrap_or(0);
    let active = st.and_then(|s| s.active).unwrap_or(0);
    if succeeded > 0 && active == 0 {
        status(Health::Ready, "Job completed successfully")
    } else if active > 0 {
        status(Health::Pending, "Job is running")
    } else if failed > 0 {
        status(Health::Error, format!("Job failed ({failed} failures)"))
    } else {
        status(Health::Pending, "Job is pending")
    }
}

/// Turns a CronJob into a [`Resource`] (references from its job template's pod template).
pub fn cron_job(obj: &CronJob) -> Resource {
    let mut r = from_meta(Kind::CronJob, &obj.metadata);
    let tpl = obj.spec.job_template.spec.as_ref().map(|j| &j.template);
    if let Some(tpl) = tpl {
        template_references(tpl, &r.namespace.clone(), &mut r.references);
    }
    let suspended = obj.spec.suspend.unwrap_or(false);
    let active = obj
        .status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .map_or(0, Vec::len);
    r.status = if suspended {
        status(Health::Ready, "CronJob suspended")
    } else if active > 0 {
        status(Health::Pending, format!("{active} active job(s)"))
    } else {
        status(Health::Ready, "CronJob scheduled")
    };
    r.set_facts(&Facts {
        image: tpl.and_then(template_image),
        suspended: Some(suspended),
        ..Facts::default()
    });
    finish(r)
}

/// Deployments, ReplicaSets and StatefulSets: replica facts, status and template references.
fn replicated(
    kind: Kind,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    template: Option<&PodTemplateSpec>,
    replicas: Replicas,
) -> Resource {
    let mut r = from_meta(kind, meta);
    if let Some(tpl) = template {
        template_references(tpl, &r.namespace.clone(), &mut r.references);
    }
    r.status = replica_status(replicas.desired, replicas.ready);
    r.set_facts(&Facts {
        replicas: Some(replicas),
        image: template.and_then(template_image),
        ..Facts::default()
    });
    finish(r)
}

/// The replica rules: scaled to zero, all ready, none ready, partially ready.
fn replica_status(desired: i32, ready: i32) -> Status {
    if desired == 0 && ready == 0 {
        status(Health::Ready, "Scaled to zero (0/0)")
    } else if ready == desired {
        status(
            Health::Ready,
            format!("All replicas ready ({ready}/{desired})"),
        )
    } else if ready == 0 {
        status(Health::Error, format!("No replicas ready (0/{desired})"))
    } else {
        status(
            Health::Pending,
            format!("Partially ready ({ready}/{desired})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, meta, template};
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetStatus, DeploymentSpec, DeploymentStatus, ReplicaSetSpec,
        ReplicaSetStatus, StatefulSetSpec, StatefulSetStatus,
    };
    use k8s_openapi::api::batch::v1::{
        CronJobSpec, CronJobStatus, JobCondition, JobSpec, JobStatus, JobTemplateSpec,
    };
    use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn sa_template(sa: &str) -> PodTemplateSpec {
        let mut t = template("app:2");
        if let Some(s) = t.spec.as_mut() {
            s.service_account_name = Some(sa.into());
        }
        t
    }

    #[test]
    fn deployment_rules_and_template_references() {
        let d = |desired: i32, ready: i32| Deployment {
            metadata: meta("ns", "web"),
            spec: DeploymentSpec {
                replicas: Some(desired),
                template: sa_template("web"),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                replicas: Some(desired),
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                ..Default::default()
            }),
        };
        let r = deployment(&d(2, 2));
        assert_eq!(r.status, status(Health::Ready, "All replicas ready (2/2)"));
        assert_eq!(
            r.references,
            vec![key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "web")]
        );
        assert_eq!(r.facts().image.as_deref(), Some("app:2"));
        assert_eq!(
            r.facts().replicas,
            Some(Replicas {
                desired: 2,
                current: 2,
                ready: 2,
                available: 2
            })
        );
        assert_eq!(
            deployment(&d(3, 1)).status,
            status(Health::Pending, "Partially ready (1/3)")
        );
        assert_eq!(
            deployment(&d(3, 0)).status,
            status(Health::Error, "No replicas ready (0/3)")
        );
        assert_eq!(
            deployment(&d(0, 0)).status,
            status(Health::Ready, "Scaled to zero (0/0)")
        );
    }

    #[test]
    fn template_without_service_account_makes_no_uses_sa() {
        let d = Deployment {
            metadata: meta("ns", "web"),
            spec: DeploymentSpec {
                template: template("x"),
                ..Default::default()
            },
            status: None,
        };
        let r = deployment(&d);
        assert!(r.references.is_empty());
        // spec.replicas defaults to 1.
        assert_eq!(r.status, status(Health::Error, "No replicas ready (0/1)"));
    }

    #[test]
    fn replica_set_scaled_to_zero_is_updated() {
        let rs = ReplicaSet {
            metadata: meta("ns", "web-old"),
            spec: ReplicaSetSpec {
                replicas: Some(0),
                template: Some(sa_template("web")),
                ..Default::default()
            },
            status: Some(ReplicaSetStatus {
                replicas: 0,
                ready_replicas: Some(0),
                ..Default::default()
            }),
        };
        let r = replica_set(&rs);
        assert_eq!(r.uid.as_str(), "uid-web-old");
        assert_eq!(r.status, status(Health::Ready, "Scaled to zero (0/0)"));
        assert_eq!(
            r.references,
            vec![key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "web")]
        );
    }

    #[test]
    fn stateful_set_claims_from_templates() {
        let tpl = |name: &str| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let sts = StatefulSet {
            metadata: meta("ns", "db"),
            spec: StatefulSetSpec {
                replicas: Some(2),
                template: template("pg:16"),
                volume_claim_templates: Some(vec![tpl("data"), tpl("wal")]),
                ..Default::default()
            },
            status: Some(StatefulSetStatus {
                replicas: 2,
                ready_replicas: Some(2),
                ..Default::default()
            }),
        };
        let r = stateful_set(&sts);
        let mut want: Vec<_> = ["data-db-0", "data-db-1", "wal-db-0", "wal-db-1"]
            .into_iter()
            .map(|n| {
                key(
                    EdgeKind::ClaimsFromTemplate,
                    Kind::PersistentVolumeClaim,
                    "ns",
                    n,
                )
            })
            .collect();
        want.sort();
        assert_eq!(r.references, want);
        assert!(r.references.iter().all(|x| !x.reverse));
        assert_eq!(r.status.health, Health::Ready);
    }

    #[test]
    fn stateful_set_template_volume_is_not_a_dangling_mount() {
        use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};
        let mut pod = template("pg:16");
        let claim = |name: &str| Volume {
            name: name.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: name.into(),
                read_only: None,
            }),
            ..Default::default()
        };
        if let Some(spec) = pod.spec.as_mut() {
            spec.volumes = Some(vec![claim("data"), claim("shared")]);
        }
        let sts = StatefulSet {
            metadata: meta("ns", "db"),
            spec: StatefulSetSpec {
                replicas: Some(1),
                template: pod,
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: None,
        };
        let mut want = vec![
            key(
                EdgeKind::ClaimsFromTemplate,
                Kind::PersistentVolumeClaim,
                "ns",
                "data-db-0",
            ),
            // A claim that is not a template is a real, shared claim.
            key(
                EdgeKind::Mounts,
                Kind::PersistentVolumeClaim,
                "ns",
                "shared",
            ),
        ];
        want.sort();
        assert_eq!(stateful_set(&sts).references, want);
    }

    #[test]
    fn daemon_set_rules() {
        let ds = |desired: i32, ready: i32| DaemonSet {
            metadata: meta("kube-system", "proxy"),
            spec: DaemonSetSpec {
                template: template("proxy:1"),
                ..Default::default()
            },
            status: Some(DaemonSetStatus {
                desired_number_scheduled: desired,
                current_number_scheduled: desired,
                number_ready: ready,
                ..Default::default()
            }),
        };
        assert_eq!(
            daemon_set(&ds(0, 0)).status,
            status(Health::Ready, "No nodes to schedule (0/0)")
        );
        assert_eq!(
            daemon_set(&ds(3, 3)).status,
            status(Health::Ready, "All pods ready (3/3)")
        );
        assert_eq!(daemon_set(&ds(3, 0)).status.health, Health::Error);
        assert_eq!(daemon_set(&ds(3, 2)).status.health, Health::Pending);
        assert_eq!(
            daemon_set(&ds(3, 3)).facts().image.as_deref(),
            Some("proxy:1")
        );
    }

    #[test]
    fn job_rules() {
        let j = |st: JobStatus| Job {
            metadata: meta("ns", "migrate"),
            spec: Some(JobSpec {
                template: sa_template("migrator"),
                ..Default::default()
            }),
            status: Some(st),
        };
        let done = job(&j(JobStatus {
            succeeded: Some(1),
            ..Default::default()
        }));
        assert_eq!(
            done.status,
            status(Health::Ready, "Job completed successfully")
        );
        assert_eq!(
            done.references,
            vec![key(
                EdgeKind::UsesSa,
                Kind::ServiceAccount,
                "ns",
                "migrator"
            )]
        );
        let running = job(&j(JobStatus {
            active: Some(1),
            failed: Some(1),
            ..Default::default()
        }));
        assert_eq!(running.status, status(Health::Pending, "Job is running"));
        let failed = job(&j(JobStatus {
            failed: Some(3),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }));
        assert_eq!(
            failed.status,
            status(Health::Error, "Job failed: BackoffLimitExceeded")
        );
        assert_eq!(
            job(&j(JobStatus::default())).status,
            status(Health::Pending, "Job is pending")
        );
    }

    #[test]
    fn cron_job_rules_and_job_template_references() {
        let cj = |suspend: bool, active: usize| CronJob {
            metadata: meta("ns", "cleanup"),
            spec: CronJobSpec {
                schedule: "0 * * * *".into(),
                suspend: Some(suspend),
                job_template: JobTemplateSpec {
                    metadata: None,
                    spec: Some(JobSpec {
                        template: sa_template("cleaner"),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            },
            status: Some(CronJobStatus {
                active: Some(vec![ObjectReference::default(); active]),
                ..Default::default()
            }),
        };
        let r = cron_job(&cj(false, 0));
        assert_eq!(r.status, status(Health::Ready, "CronJob scheduled"));
        assert_eq!(
            r.references,
            vec![key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "cleaner")]
        );
        assert_eq!(r.facts().suspended, Some(false));
        assert_eq!(
            cron_job(&cj(false, 2)).status,
            status(Health::Pending, "2 active job(s)")
        );
        let suspended = cron_job(&cj(true, 0));
        assert_eq!(suspended.status.message, "CronJob suspended");
        assert_eq!(suspended.facts().suspended, Some(true));
    }
}
