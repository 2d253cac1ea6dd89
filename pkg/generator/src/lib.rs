//! A generator of realistic clusters as [`Resource`]s: namespaces with Helm releases of
//! Deployments (ReplicaSets, Pods), StatefulSets (PVCs bound to PVs), Services, EndpointSlices,
//! Ingresses, ConfigMaps, Secrets, ServiceAccounts, HPAs, PDBs, NetworkPolicies and RBAC, plus
//! Nodes, StorageClasses, an IngressClass, DaemonSets and CronJobs. Deterministic for a seed.
//!
//! The proportions follow what real clusters show: Pods and ReplicaSets (old revisions scaled to
//! zero) dominate, then ConfigMaps, Secrets, Services and EndpointSlices; about 15 objects per
//! application. A small share of references is deliberately dangling (a Pod naming an optional
//! Secret that does not exist), so dangling-reference reports have something to find.
//!
//! [`generate`] makes built-in kinds only. [`generate_with`] can add custom resources
//! (cert-manager, Gateway API, Prometheus Operator; module `custom`), whose references the
//! built-in relationship rules derive from their `spec`, returned alongside in a [`Cluster`].

mod custom;

pub use custom::{custom_kinds, object_json, rule_references};

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use astrolabe_model::well_known::{
    HELM_CHART, HELM_RELEASE, HELM_RELEASE_NAMESPACE, MANAGED_BY, SERVICE_NAME,
};
use astrolabe_model::{
    ClaimRef, EdgeKind, Facts, Health, Kind, LabelSelector, Labels, OwnerRef, Reference, Replicas,
    Resource, Scaling, Status, Str, Uid,
};

/// About how many objects one application (a Helm release) contributes.
pub const OBJECTS_PER_APP: usize = 15;
/// Applications per namespace.
pub const APPS_PER_NAMESPACE: usize = 64;
/// Old ReplicaSets kept per Deployment (scaled to zero).
pub const OLD_REPLICASETS: usize = 2;
/// Objects per Node (one Node per this many objects, at least three).
pub const OBJECTS_PER_NODE: usize = 400;

/// Generates about `size` resources (never fewer than a minimal cluster), deterministically for
/// `seed`. The result is in creation order: every owner before what it owns, but references by
/// name may point forward, as they do in a real cluster.
pub fn generate(seed: u64, size: usize) -> Vec<Resource> {
    generate_with(seed, size, &Options::default()).resources
}

/// What [`generate_with`] adds to [`generate`]'s cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Add custom resources: a cert-manager ClusterIssuer, and per namespace an Issuer, a
    /// Gateway API Gateway (of one GatewayClass) serving a Certificate's TLS Secret, HTTPRoutes to
    /// Services, Certificates with their Secrets and Prometheus Operator ServiceMonitors; plus a
    /// `monitoring` namespace whose ServiceMonitors select Services in other namespaces.
    pub custom_resources: bool,
}

/// A generated cluster with the `spec` of its custom resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    /// Every resource, in creation order (as [`generate`] orders them).
    pub resources: Vec<Resource>,
    /// The `spec` of every custom resource, by UID: the fields the built-in relationship rules
    /// read, from which its references were derived.
    pub specs: HashMap<Uid, serde_json::Value>,
}

/// [`generate`]'s cluster (the same resources, in the same order, for the same `seed` and
/// `size`) with what `options` adds after it.
pub fn generate_with(seed: u64, size: usize, options: &Options) -> Cluster {
    let mut g = Gen {
        rng: SmallRng::seed_from_u64(seed),
        out: Vec::with_capacity(size + 64),
        nodes: Vec::new(),
    };
    g.cluster(size);
    let specs = if options.custom_resources {
        custom::add(&mut g)
    } else {
        HashMap::new()
    };
    Cluster {
        resources: g.out,
        specs,
    }
}

struct Gen {
    rng: SmallRng,
    out: Vec<Resource>,
    nodes: Vec<Str>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().copied().collect()
}

fn ready(message: &str) -> Status {
    Status {
        health: Health::Ready,
        message: message.into(),
    }
}

impl Gen {
    fn uid(&mut self) -> Uid {
        let a: u32 = self.rng.random();
        let b: u16 = self.rng.random();
        let c: u16 = self.rng.random::<u16>() & 0x0fff;
        let d: u16 = (self.rng.random::<u16>() & 0x3fff) | 0x8000;
        let e: u64 = self.rng.random::<u64>() & 0xffff_ffff_ffff;
        Uid::from(compact_str::format_compact!(
            "{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}"
        ))
    }

    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    fn object(&mut self, kind: Kind, ns: &str, name: &str) -> Resource {
        let mut r = Resource::new(self.uid(), kind, ns, name);
        r.created_at = 1_700_000_000 + self.rng.random_range(0..30_000_000);
        r.resource_version = compact_str::format_compact!("{}", self.out.len() + 1);
        r.status = ready(&format!("{} exists", r.kind));
        r
    }

    fn push(&mut self, mut r: Resource) -> (Uid, Str) {
        r.normalize();
        let id = (r.uid.clone(), r.name.clone());
        self.out.push(r);
        id
    }

    fn helm(r: &mut Resource, release: &str, ns: &str, chart: &str) {
        r.annotations.insert(HELM_RELEASE, release);
        r.annotations.insert(HELM_RELEASE_NAMESPACE, ns);
        r.labels.insert(HELM_CHART, chart);
        r.labels.insert(MANAGED_BY, "Helm");
        r.labels.insert("app.kubernetes.io/instance", release);
    }

    fn owned(r: &mut Resource, owner: &(Uid, Str), kind: Kind) {
        r.owners.push(OwnerRef {
            kind: kind.clone(),
            name: owner.1.clone(),
            uid: owner.0.clone(),
            controller: true,
        });
    }

    fn cluster(&mut self, size: usize) {
        let node_count = (size / OBJECTS_PER_NODE).max(3);
        for i in 0..node_count {
            let name = format!("node-{i:04}");
            let mut n = self.object(Kind::Node, "", &name);
            n.labels = labels(&[
                ("kubernetes.io/hostname", &name),
                ("kubernetes.io/os", "linux"),
            ]);
            n.status = ready("Node is ready");
            self.nodes.push(name.as_str().into());
            self.push(n);
        }
        for (name, default) in [("standard", true), ("fast-ssd", false)] {
            let mut sc = self.object(Kind::StorageClass, "", name);
            if default {
                sc.annotations
                    .insert("storageclass.kubernetes.io/is-default-class", "true");
            }
            self.push(sc);
        }
        let ic = self.object(Kind::IngressClass, "", "nginx");
        self.push(ic);
        for role in ["view", "edit", "admin", "cluster-admin"] {
            let r = self.object(Kind::ClusterRole, "", role);
            self.push(r);
        }
        self.system_namespace();
        let mut crb = self.object(Kind::ClusterRoleBinding, "", "node-exporter-view");
        crb.references.push(Reference::to_key(
            EdgeKind::Grants,
            Kind::ClusterRole,
            "",
            "view",
        ));
        crb.references.push(Reference::to_key(
            EdgeKind::BindsSubject,
            Kind::ServiceAccount,
            "kube-system",
            "default",
        ));
        self.push(crb);
        let apps = size.saturating_sub(self.out.len()) / OBJECTS_PER_APP;
        let namespaces = apps.div_ceil(APPS_PER_NAMESPACE).max(1);
        let mut left = apps.max(1);
        for n in 0..namespaces {
            let ns = format!("team-{n:03}");
            self.namespace(&ns);
            let here = left.min(APPS_PER_NAMESPACE);
            for a in 0..here {
                self.app(&ns, a);
            }
            left -= here;
        }
    }

    fn namespace(&mut self, ns: &str) {
        let mut n = self.object(Kind::Namespace, "", ns);
        n.labels = labels(&[("kubernetes.io/metadata.name", ns)]);
        n.status = ready("Active");
        n.update_facts(|f| f.phase = Some("Active".into()));
        self.push(n);
        let sa = self.object(Kind::ServiceAccount, ns, "default");
        self.push(sa);
        let mut cm = self.object(Kind::ConfigMap, ns, "kube-root-ca.crt");
        cm.status = ready("ConfigMap exists");
        self.push(cm);
    }

    fn system_namespace(&mut self) {
        let ns = "kube-system";
        self.namespace(ns);
        for ds_name in ["kube-proxy", "node-exporter"] {
            let mut ds = self.object(Kind::DaemonSet, ns, ds_name);
            let n = self.nodes.len() as i32;
            ds.labels = labels(&[("app", ds_name)]);
            ds.status = ready(&format!("All pods ready ({n}/{n})"));
            ds.update_facts(|f| {
                f.replicas = Some(Replicas {
                    desired: n,
                    current: n,
                    ready: n,
                    available: n,
                });
                f.image = Some(compact_str::format_compact!(
                    "registry.example.com/{ds_name}:1.0"
                ));
            });
            ds.references.push(Reference::to_key(
                EdgeKind::UsesSa,
                Kind::ServiceAccount,
                ns,
                "default",
            ));
            let owner = self.push(ds);
            for node in self.nodes.clone() {
                let pod_name = format!("{ds_name}-{}", self.suffix(5));
                let mut pod = self.pod(ns, &pod_name, &[("app", ds_name)], "default", &[]);
                pod.update_facts(|f| f.node_name = Some(node.clone()));
                pod.references.retain(|r| r.edge != EdgeKind::RunsOn);
                pod.references
                    .push(Reference::to_key(EdgeKind::RunsOn, Kind::Node, "", node));
                Self::owned(&mut pod, &owner, Kind::DaemonSet);
                self.push(pod);
            }
        }
        // A CronJob with one finished Job and its Pod.
        let mut cj = self.object(Kind::CronJob, ns, "cleanup");
        cj.status = ready("CronJob scheduled");
        cj.update_facts(|f| {
            f.suspended = Some(false);
            f.image = Some("registry.example.com/cleanup:1.0".into());
        });
        let cj_id = self.push(cj);
        let mut job = self.object(Kind::Job, ns, "cleanup-28000000");
        job.status = ready("Job completed successfully");
        job.update_facts(|f| f.image = Some("registry.example.com/cleanup:1.0".into()));
        Self::owned(&mut job, &cj_id, Kind::CronJob);
        let job_id = self.push(job);
        let pod_name = format!("cleanup-28000000-{}", self.suffix(5));
        let mut pod = self.pod(
            ns,
            &pod_name,
            &[("job-name", "cleanup-28000000")],
            "default",
            &[],
        );
        pod.status = ready("Pod succeeded");
        pod.update_facts(|f| f.phase = Some("Succeeded".into()));
        Self::owned(&mut pod, &job_id, Kind::Job);
        self.push(pod);
    }

    /// A Pod with the usual references: its service account, config, node.
    fn pod(
        &mut self,
        ns: &str,
        name: &str,
        pod_labels: &[(&str, &str)],
        sa: &str,
        uses: &[Reference],
    ) -> Resource {
        let mut pod = self.object(Kind::Pod, ns, name);
        pod.labels = labels(pod_labels);
        let node = self.nodes[self.rng.random_range(0..self.nodes.len())].clone();
        let roll: f64 = self.rng.random();
        let (health, message, phase, restarts) = if roll < 0.93 {
            (Health::Ready, "Pod is running", "Running", 0)
        } else if roll < 0.97 {
            (Health::Pending, "Pod is pending", "Pending", 0)
        } else {
            (
                Health::Error,
                "Container not ready: CrashLoopBackOff",
                "Running",
                self.rng.random_range(3..40),
            )
        };
        pod.status = Status {
            health,
            message: message.into(),
        };
        pod.set_facts(&Facts {
            phase: Some(phase.into()),
            node_name: Some(node.clone()),
            image: Some(compact_str::format_compact!(
                "registry.example.com/{}:1.{}",
                pod_labels.first().map_or("app", |l| l.1),
                roll.to_bits() % 20
            )),
            restart_count: Some(restarts),
            ..Facts::default()
        });
        pod.references.push(Reference::to_key(
            EdgeKind::UsesSa,
            Kind::ServiceAccount,
            ns,
            sa,
        ));
        pod.references
            .push(Reference::to_key(EdgeKind::RunsOn, Kind::Node, "", node));
        pod.references.extend(uses.iter().cloned());
        pod
    }

    fn app(&mut self, ns: &str, index: usize) {
        let app = format!("app{index}-{}", self.suffix(3));
        let chart = format!("{app}-1.{}.0", index % 7);
        let release = app.clone();
        let helm = |r: &mut Resource| Gen::helm(r, &release, ns, &chart);

        // Config, secrets, service account.
        let mut uses = Vec::new();
        let mut cm = self.object(Kind::ConfigMap, ns, &format!("{app}-config"));
        cm.status = ready("ConfigMap exists");
        helm(&mut cm);
        uses.push(Reference::to_key(
            EdgeKind::UsesConfigmap,
            Kind::ConfigMap,
            ns,
            cm.name.clone(),
        ));
        self.push(cm);
        if self.rng.random_bool(0.5) {
            let mut env = self.object(Kind::ConfigMap, ns, &format!("{app}-env"));
            env.status = ready("ConfigMap exists");
            helm(&mut env);
            uses.push(
                Reference::to_key(
                    EdgeKind::UsesConfigmap,
                    Kind::ConfigMap,
                    ns,
                    env.name.clone(),
                )
                .with_key("LOG_LEVEL"),
            );
            self.push(env);
        }
        let mut secret = self.object(Kind::Secret, ns, &format!("{app}-credentials"));
        secret.status = ready("Secret exists");
        helm(&mut secret);
        uses.push(Reference::to_key(
            EdgeKind::UsesSecret,
            Kind::Secret,
            ns,
            secret.name.clone(),
        ));
        self.push(secret);
        if self.rng.random_bool(0.03) {
            // Deliberately dangling: an optional Secret nobody created.
            uses.push(
                Reference::to_key(
                    EdgeKind::UsesSecret,
                    Kind::Secret,
                    ns,
                    format!("{app}-extra"),
                )
                .optional(true),
            );
        }
        let mut sa = self.object(Kind::ServiceAccount, ns, &app);
        helm(&mut sa);
        self.push(sa);

        let app_labels = [("app.kubernetes.io/name", app.as_str())];
        let mut selector = LabelSelector::default();
        selector
            .match_labels
            .insert("app.kubernetes.io/name", app.as_str());

        let stateful = self.rng.random_bool(0.15);
        let replicas = self.rng.random_range(1..=3);
        let workload_kind = if stateful {
            Kind::StatefulSet
        } else {
            Kind::Deployment
        };
        let mut workload = self.object(workload_kind.clone(), ns, &app);
        helm(&mut workload);
        workload.update_facts(|f| {
            f.replicas = Some(Replicas {
                desired: replicas,
                current: replicas,
                ready: replicas,
                available: replicas,
            })
        });
        workload.update_facts(|f| {
            f.image = Some(compact_str::format_compact!(
                "registry.example.com/{app}:1.0"
            ))
        });
        workload.status = ready(&format!("All replicas ready ({replicas}/{replicas})"));
        workload.references.extend(uses.iter().cloned());
        workload.references.push(Reference::to_key(
            EdgeKind::UsesSa,
            Kind::ServiceAccount,
            ns,
            app.as_str(),
        ));
        let mut pod_uses = uses.clone();
        let mut pods = Vec::new();
        if stateful {
            for i in 0..replicas {
                workload.references.push(Reference::to_key(
                    EdgeKind::ClaimsFromTemplate,
                    Kind::PersistentVolumeClaim,
                    ns,
                    format!("data-{app}-{i}"),
                ));
            }
            let owner = self.push(workload);
            for i in 0..replicas {
                let claim = format!("data-{app}-{i}");
                let pv_name = format!("pvc-{}", self.uid());
                let mut pvc = self.object(Kind::PersistentVolumeClaim, ns, &claim);
                pvc.labels = labels(&app_labels);
                pvc.status = ready("Bound");
                pvc.set_facts(&Facts {
                    phase: Some("Bound".into()),
                    volume_name: Some(pv_name.as_str().into()),
                    storage_class: Some("standard".into()),
                    ..Facts::default()
                });
                pvc.references.push(Reference::to_key(
                    EdgeKind::Binds,
                    Kind::PersistentVolume,
                    "",
                    pv_name.as_str(),
                ));
                pvc.references.push(Reference::to_key(
                    EdgeKind::UsesStorageClass,
                    Kind::StorageClass,
                    "",
                    "standard",
                ));
                let pvc_id = self.push(pvc);
                let mut pv = self.object(Kind::PersistentVolume, "", &pv_name);
                pv.status = ready("Bound");
                pv.set_facts(&Facts {
                    phase: Some("Bound".into()),
                    storage_class: Some("standard".into()),
                    claim_ref: Some(ClaimRef {
                        namespace: ns.into(),
                        name: claim.as_str().into(),
                        uid: pvc_id.0.as_str().into(),
                    }),
                    ..Facts::default()
                });
                pv.references.push(Reference::to_key(
                    EdgeKind::UsesStorageClass,
                    Kind::StorageClass,
                    "",
                    "standard",
                ));
                self.push(pv);
                pod_uses.truncate(uses.len());
                pod_uses.push(Reference::to_key(
                    EdgeKind::Mounts,
                    Kind::PersistentVolumeClaim,
                    ns,
                    claim.as_str(),
                ));
                let pod_name = format!("{app}-{i}");
                let mut pod = self.pod(
                    ns,
                    &pod_name,
                    &[
                        app_labels[0],
                        ("statefulset.kubernetes.io/pod-name", &pod_name),
                    ],
                    &app,
                    &pod_uses,
                );
                Self::owned(&mut pod, &owner, Kind::StatefulSet);
                pods.push(self.push(pod));
            }
        } else {
            let owner = self.push(workload);
            for rev in 0..=OLD_REPLICASETS {
                let current = rev == OLD_REPLICASETS;
                let hash = self.suffix(10);
                let mut rs = self.object(Kind::ReplicaSet, ns, &format!("{app}-{hash}"));
                rs.labels = labels(&[app_labels[0], ("pod-template-hash", &hash)]);
                let n = if current { replicas } else { 0 };
                rs.update_facts(|f| {
                    f.replicas = Some(Replicas {
                        desired: n,
                        current: n,
                        ready: n,
                        available: n,
                    });
                    f.image = Some(compact_str::format_compact!(
                        "registry.example.com/{app}:1.0"
                    ));
                });
                rs.status = if current {
                    ready(&format!("All replicas ready ({n}/{n})"))
                } else {
                    ready("Scaled to zero (0/0)")
                };
                rs.references.extend(uses.iter().cloned());
                rs.references.push(Reference::to_key(
                    EdgeKind::UsesSa,
                    Kind::ServiceAccount,
                    ns,
                    app.as_str(),
                ));
                Self::owned(&mut rs, &owner, Kind::Deployment);
                let rs_id = self.push(rs);
                if current {
                    for _ in 0..replicas {
                        let name = format!("{app}-{hash}-{}", self.suffix(5));
                        let mut pod = self.pod(
                            ns,
                            &name,
                            &[app_labels[0], ("pod-template-hash", &hash)],
                            &app,
                            &uses,
                        );
                        Self::owned(&mut pod, &rs_id, Kind::ReplicaSet);
                        pods.push(self.push(pod));
                    }
                }
            }
        }

        // Service and its EndpointSlice.
        let mut svc = self.object(Kind::Service, ns, &app);
        helm(&mut svc);
        svc.status = ready("Service is active");
        svc.set_facts(&Facts {
            cluster_ip: Some(compact_str::format_compact!(
                "10.96.{}.{}",
                self.out.len() / 250 % 250,
                self.out.len() % 250
            )),
            service_type: Some("ClusterIP".into()),
            ..Facts::default()
        });
        svc.references.push(Reference::to_selector(
            EdgeKind::Selects,
            Kind::Pod,
            selector.clone(),
            false,
        ));
        let svc_id = self.push(svc);
        let slice_name = format!("{app}-{}", self.suffix(5));
        let mut slice = self.object(Kind::EndpointSlice, ns, &slice_name);
        slice.labels = labels(&[(SERVICE_NAME, app.as_str())]);
        slice.status = ready(&format!("{} ready endpoint(s)", pods.len()));
        slice.references.push(
            Reference::to_key(EdgeKind::Endpoints, Kind::Service, ns, app.as_str()).reversed(),
        );
        for pod in &pods {
            slice.references.push(Reference::to_key(
                EdgeKind::Targets,
                Kind::Pod,
                ns,
                pod.1.clone(),
            ));
        }
        Self::owned(&mut slice, &svc_id, Kind::Service);
        self.push(slice);

        if self.rng.random_bool(0.5) {
            let mut ing = self.object(Kind::Ingress, ns, &app);
            helm(&mut ing);
            ing.status = ready("Ingress has load balancer");
            ing.update_facts(|f| f.ingress_class = Some("nginx".into()));
            ing.references.push(Reference::to_key(
                EdgeKind::RoutesTo,
                Kind::Service,
                ns,
                app.as_str(),
            ));
            ing.references.push(Reference::to_key(
                EdgeKind::UsesIngressClass,
                Kind::IngressClass,
                "",
                "nginx",
            ));
            ing.references.push(Reference::to_key(
                EdgeKind::UsesTlsSecret,
                Kind::Secret,
                ns,
                format!("{app}-tls"),
            ));
            self.push(ing);
            let mut tls = self.object(Kind::Secret, ns, &format!("{app}-tls"));
            tls.status = ready("Secret exists");
            helm(&mut tls);
            self.push(tls);
        }
        if !stateful && self.rng.random_bool(0.3) {
            let mut hpa = self.object(Kind::HorizontalPodAutoscaler, ns, &app);
            helm(&mut hpa);
            hpa.status = ready(&format!("Scaling: {replicas}/{replicas} replicas"));
            hpa.set_facts(&Facts {
                scaling: Some(Scaling {
                    min: Some(1),
                    max: 10,
                    current: replicas,
                    desired: replicas,
                }),
                scale_target: Some((workload_kind.clone(), app.as_str().into())),
                ..Facts::default()
            });
            hpa.references.push(Reference::to_key(
                EdgeKind::Scales,
                workload_kind.clone(),
                ns,
                app.as_str(),
            ));
            self.push(hpa);
        }
        if self.rng.random_bool(0.3) {
            let mut pdb = self.object(Kind::PodDisruptionBudget, ns, &app);
            helm(&mut pdb);
            pdb.status = ready(&format!("Healthy: {replicas}/1"));
            pdb.references.push(Reference::to_selector(
                EdgeKind::Protects,
                Kind::Pod,
                selector.clone(),
                true,
            ));
            self.push(pdb);
        }
        if self.rng.random_bool(0.3) {
            let mut np = self.object(Kind::NetworkPolicy, ns, &app);
            helm(&mut np);
            np.references.push(Reference::to_selector(
                EdgeKind::AppliesTo,
                Kind::Pod,
                selector.clone(),
                true,
            ));
            self.push(np);
        }
        if self.rng.random_bool(0.3) {
            let mut role = self.object(Kind::Role, ns, &app);
            helm(&mut role);
            self.push(role);
            let mut rb = self.object(Kind::RoleBinding, ns, &app);
            helm(&mut rb);
            rb.references.push(Reference::to_key(
                EdgeKind::Grants,
                Kind::Role,
                ns,
                app.as_str(),
            ));
            rb.references.push(Reference::to_key(
                EdgeKind::BindsSubject,
                Kind::ServiceAccount,
                ns,
                app.as_str(),
            ));
            self.push(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn deterministic_and_sized() {
        let a = generate(7, 5_000);
        let b = generate(7, 5_000);
        assert_eq!(a, b);
        assert!((4_000..=6_000).contains(&a.len()), "got {}", a.len());
        assert_ne!(generate(8, 5_000), a);
    }

    #[test]
    fn keys_and_uids_are_unique_and_owners_exist() {
        let all = generate(1, 3_000);
        let uids: HashSet<_> = all.iter().map(|r| r.uid.clone()).collect();
        assert_eq!(uids.len(), all.len());
        let keys: HashSet<_> = all.iter().map(Resource::key).collect();
        assert_eq!(keys.len(), all.len());
        for r in &all {
            for o in &r.owners {
                assert!(uids.contains(&o.uid), "{} has a missing owner", r.key());
            }
        }
    }

    #[test]
    fn proportions_look_like_a_cluster() {
        let all = generate(3, 20_000);
        let mut count: HashMap<Kind, usize> = HashMap::new();
        for r in &all {
            *count.entry(r.kind.clone()).or_default() += 1;
        }
        let share = |k: Kind| count.get(&k).copied().unwrap_or(0) as f64 / all.len() as f64;
        assert!(
            share(Kind::Pod) > 0.1 && share(Kind::Pod) < 0.35,
            "pods {}",
            share(Kind::Pod)
        );
        assert!(share(Kind::ReplicaSet) > 0.1, "replicasets");
        for kind in Kind::WATCHED {
            assert!(count.contains_key(kind), "no {kind} generated");
        }
    }
}
