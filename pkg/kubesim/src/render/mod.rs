//! Rendering the model's generated [`Resource`]s as realistic Kubernetes JSON, so that a processor
//! reading the JSON recovers the same references (owner UIDs, configMapRef, claimName, selectors, ...),
//! and loading generated clusters (custom resources after their CRDs) into a [`Sim`].

use std::collections::HashMap;

use astrolabe_generator::{Cluster, Options};
use astrolabe_model::{EdgeKind, Kind, LabelSelector, Operator, Reference, Resource, Target, Uid};
use serde_json::{Value, json};

mod status;

use crate::error::Result;
use crate::sim::{Sim, resolve};

/// The image of containers whose resource carries no image fact.
const DEFAULT_IMAGE: &str = "registry.example.com/app:1.0";

fn str_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(pairs.map(|(k, v)| (k.to_owned(), json!(v))).collect())
}

/// A `metav1.LabelSelector`.
fn selector_json(sel: &LabelSelector) -> Value {
    let mut out = json!({});
    if !sel.match_labels.is_empty() {
        out["matchLabels"] = str_map(sel.match_labels.iter());
    }
    if !sel.match_expressions.is_empty() {
        let exprs: Vec<Value> = sel
            .match_expressions
            .iter()
            .map(|r| {
                let op = match r.operator {
                    Operator::In => "In",
                    Operator::NotIn => "NotIn",
                    Operator::Exists => "Exists",
                    Operator::DoesNotExist => "DoesNotExist",
                };
                let mut e = json!({"key": r.key.as_str(), "operator": op});
                if matches!(r.operator, Operator::In | Operator::NotIn) {
                    e["values"] = json!(r.values.iter().map(|v| v.as_str()).collect::<Vec<_>>());
                }
                e
            })
            .collect();
        out["matchExpressions"] = json!(exprs);
    }
    out
}

/// `(kind, namespace, name)` of a by-key reference.
fn key_of(r: &Reference) -> Option<(&str, &str, &str)> {
    match &r.target {
        Target::Key(k) => Some((k.kind.as_str(), k.namespace.as_str(), k.name.as_str())),
        Target::Uid { kind, name, .. } => Some((kind.as_str(), "", name.as_str())),
        Target::Selector { .. } | Target::SelectorIn { .. } => None,
    }
}

fn refs<'a>(res: &'a Resource, edge: EdgeKind) -> impl Iterator<Item = &'a Reference> + 'a {
    res.references.iter().filter(move |r| r.edge == edge)
}

fn names(res: &Resource, edge: EdgeKind) -> Vec<&str> {
    refs(res, edge)
        .filter_map(key_of)
        .map(|(_, _, n)| n)
        .collect()
}

/// The first name `res` references with `edge`, or else `fallback` (a fact).
fn first_named<'a>(
    res: &'a Resource,
    edge: EdgeKind,
    fallback: Option<&'a str>,
) -> Option<&'a str> {
    names(res, edge).first().copied().or(fallback)
}

fn selector_of(res: &Resource, edge: EdgeKind) -> Option<&LabelSelector> {
    refs(res, edge).find_map(|r| match &r.target {
        Target::Selector { selector, .. } => Some(selector),
        _ => None,
    })
}

/// An RFC 3339 timestamp for Unix seconds.
pub(crate) fn timestamp(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn metadata(res: &Resource) -> Value {
    let mut meta = json!({
        "name": res.name.as_str(),
        "uid": res.uid.as_str(),
        "creationTimestamp": timestamp(res.created_at),
    });
    if res.kind.is_namespaced() {
        meta["namespace"] = json!(res.namespace.as_str());
    }
    if !res.labels.is_empty() {
        meta["labels"] = str_map(res.labels.iter());
    }
    if !res.annotations.is_empty() {
        meta["annotations"] = str_map(res.annotations.iter());
    }
    if !res.owners.is_empty() {
        let owners: Vec<Value> = res
            .owners
            .iter()
            .map(|o| {
                json!({
                    "apiVersion": o.kind.api_version(),
                    "kind": o.kind.as_str(),
                    "name": o.name.as_str(),
                    "uid": o.uid.as_str(),
                    "controller": o.controller,
                    "blockOwnerDeletion": o.controller,
                })
            })
            .collect();
        meta["ownerReferences"] = json!(owners);
    }
    meta
}

/// A PodSpec carrying the resource's ConfigMap/Secret/SA/PVC/node/pull-secret references.
fn pod_spec(res: &Resource) -> Value {
    let mut env_from = Vec::new();
    let mut env = Vec::new();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for r in &res.references {
        let Some((_, _, name)) = key_of(r) else {
            continue;
        };
        let keyed = |source: &str, var: String, key: &str| json!({"name": var, "valueFrom": {source: {"name": name, "key": key, "optional": r.optional}}});
        match (r.edge, r.key.as_deref()) {
            (EdgeKind::UsesConfigmap, None) => {
                env_from.push(json!({"configMapRef": {"name": name, "optional": r.optional}}))
            }
            (EdgeKind::UsesConfigmap, Some(k)) => {
                env.push(keyed("configMapKeyRef", k.to_uppercase(), k))
            }
            (EdgeKind::UsesSecret, None) => {
                env_from.push(json!({"secretRef": {"name": name, "optional": r.optional}}))
            }
            (EdgeKind::UsesSecret, Some(k)) => env.push(keyed("secretKeyRef", k.to_uppercase(), k)),
            (EdgeKind::Mounts, _) => {
                let vol = format!("vol-{}", volumes.len());
                volumes.push(json!({"name": vol, "persistentVolumeClaim": {"claimName": name}}));
                mounts.push(json!({"name": vol, "mountPath": format!("/data/{}", mounts.len())}));
            }
            _ => {}
        }
    }
    let facts = res.facts();
    let image = facts.image.as_deref().unwrap_or(DEFAULT_IMAGE);
    let mut container = json!({
        "name": "main",
        "image": image,
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    });
    if !env_from.is_empty() {
        container["envFrom"] = json!(env_from);
    }
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if !mounts.is_empty() {
        container["volumeMounts"] = json!(mounts);
    }
    let mut spec = json!({"containers": [container], "restartPolicy": "Always"});
    if !volumes.is_empty() {
        spec["volumes"] = json!(volumes);
    }
    if let Some(sa) = names(res, EdgeKind::UsesSa).first() {
        spec["serviceAccountName"] = json!(sa);
    }
    let pulls = names(res, EdgeKind::PullsWith);
    if !pulls.is_empty() {
        spec["imagePullSecrets"] =
            json!(pulls.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
    }
    if let Some(node) = first_named(res, EdgeKind::RunsOn, facts.node_name.as_deref()) {
        spec["nodeName"] = json!(node);
    }
    spec
}

/// The workload's selector labels: the well-known app labels it carries (or its name).
fn workload_selector(res: &Resource) -> Value {
    let keep = [
        "app.kubernetes.io/name",
        "app",
        "pod-template-hash",
        "k8s-app",
    ];
    let pairs: Vec<(&str, &str)> = res
        .labels
        .iter()
        .filter(|(k, _)| keep.contains(k))
        .collect();
    if pairs.is_empty() {
        json!({"app.kubernetes.io/name": res.name.as_str()})
    } else {
        str_map(pairs.into_iter())
    }
}

fn template(res: &Resource, selector: &Value) -> Value {
    json!({"metadata": {"labels": selector}, "spec": pod_spec(res)})
}

/// Renders one generated resource as the Kubernetes JSON object of its kind. A custom resource
/// (a kind outside the built-in table) gets its metadata and status here; its `spec` is the
/// generator's ([`render_generated`]).
#[must_use]
pub fn render(res: &Resource) -> Value {
    let mut obj = json!({
        "apiVersion": res.kind.api_version(),
        "kind": res.kind.as_str(),
        "metadata": metadata(res),
    });
    let facts = res.facts();
    let ns = res.namespace.as_str();
    if !res.kind.is_watched() {
        if let Some(status) = status::custom(res) {
            obj["status"] = status;
        }
        return obj;
    }
    let (spec, status): (Option<Value>, Option<Value>) = match res.kind.as_str() {
        "Pod" => (Some(pod_spec(res)), Some(status::pod(res))),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            let sel = workload_selector(res);
            let (replicas, status) = status::replicas(res);
            let mut spec =
                json!({"selector": {"matchLabels": sel}, "template": template(res, &sel)});
            if res.kind.as_str() != "DaemonSet" {
                spec["replicas"] = json!(replicas);
            }
            if res.kind.as_str() == "StatefulSet" {
                spec["serviceName"] = json!(res.name.as_str());
                let suffix = format!("-{}-", res.name);
                let mut templates: Vec<String> = names(res, EdgeKind::ClaimsFromTemplate)
                    .iter()
                    .filter_map(|claim| claim.find(&suffix).map(|i| claim[..i].to_owned()))
                    .collect();
                templates.dedup();
                spec["volumeClaimTemplates"] = json!(templates.iter().map(|t| json!({
                    "metadata": {"name": t},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}},
                })).collect::<Vec<_>>());
            }
            (Some(spec), Some(status))
        }
        "Job" => {
            let sel = workload_selector(res);
            (
                Some(json!({"template": template(res, &sel), "backoffLimit": 6})),
                Some(json!({"succeeded": 1})),
            )
        }
        "CronJob" => {
            let sel = workload_selector(res);
            let mut tpl = template(res, &sel);
            tpl["spec"]["restartPolicy"] = json!("OnFailure");
            let spec = json!({
                "schedule": "*/15 * * * *",
                "suspend": facts.suspended.unwrap_or(false),
                "jobTemplate": {"spec": {"template": tpl}},
            });
            (Some(spec), Some(json!({})))
        }
        "Service" => {
            let mut spec = json!({
                "type": facts.service_type.as_deref().unwrap_or("ClusterIP"),
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            });
            if let Some(ip) = &facts.cluster_ip {
                spec["clusterIP"] = json!(ip.as_str());
                spec["clusterIPs"] = json!([ip.as_str()]);
            }
            if let Some(sel) = selector_of(res, EdgeKind::Selects) {
                spec["selector"] = str_map(sel.match_labels.iter());
            }
            (Some(spec), Some(json!({"loadBalancer": {}})))
        }
        "EndpointSlice" => {
            let endpoints: Vec<Value> = refs(res, EdgeKind::Targets)
                .filter_map(key_of)
                .map(|(_, tns, name)| {
                    json!({
                        "addresses": [status::ip(name, 10, 244)],
                        "conditions": {"ready": true, "serving": true, "terminating": false},
                        "targetRef": {"kind": "Pod", "namespace": if tns.is_empty() { ns } else { tns }, "name": name},
                    })
                })
                .collect();
            obj["addressType"] = json!("IPv4");
            obj["endpoints"] = json!(endpoints);
            obj["ports"] = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
            (None, None)
        }
        "PersistentVolumeClaim" | "PersistentVolume" => {
            let mut spec = if res.kind == Kind::PersistentVolumeClaim {
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
            } else {
                json!({
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": res.name.as_str()},
                })
            };
            if let Some(v) = first_named(res, EdgeKind::Binds, facts.volume_name.as_deref()) {
                spec["volumeName"] = json!(v);
            }
            if let Some(c) = &facts.claim_ref {
                spec["claimRef"] = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": c.namespace.as_str(), "name": c.name.as_str(), "uid": c.uid.as_str()});
            }
            let class = facts.storage_class.as_deref();
            if let Some(sc) = first_named(res, EdgeKind::UsesStorageClass, class) {
                spec["storageClassName"] = json!(sc);
            }
            (
                Some(spec),
                Some(json!({"phase": facts.phase.as_deref().unwrap_or("Bound")})),
            )
        }
        "StorageClass" => {
            obj["provisioner"] = json!("pd.csi.storage.gke.io");
            obj["reclaimPolicy"] = json!("Delete");
            obj["volumeBindingMode"] = json!("WaitForFirstConsumer");
            (None, None)
        }
        "IngressClass" => (Some(json!({"controller": "k8s.io/ingress-nginx"})), None),
        "Ingress" => {
            let mut spec = json!({});
            let class = facts.ingress_class.as_deref();
            if let Some(c) = first_named(res, EdgeKind::UsesIngressClass, class) {
                spec["ingressClassName"] = json!(c);
            }
            let host = format!("{}.{}.example.com", res.name, ns);
            let paths: Vec<Value> = names(res, EdgeKind::RoutesTo)
                .iter()
                .map(|svc| json!({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}))
                .collect();
            spec["rules"] = json!([{"host": host, "http": {"paths": paths}}]);
            let tls = names(res, EdgeKind::UsesTlsSecret);
            if !tls.is_empty() {
                spec["tls"] = json!(
                    tls.iter()
                        .map(|s| json!({"hosts": [host], "secretName": s}))
                        .collect::<Vec<_>>()
                );
            }
            (Some(spec), Some(status::ingress(res)))
        }
        "HorizontalPodAutoscaler" => {
            let target = refs(res, EdgeKind::Scales).find_map(key_of);
            let scaling = facts.scaling.unwrap_or_default();
            let mut spec = json!({
                "maxReplicas": scaling.max.max(1),
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
            });
            if let Some(min) = scaling.min {
                spec["minReplicas"] = json!(min);
            }
            if let Some((kind, _, name)) = target {
                let target_kind = Kind::parse(kind);
                spec["scaleTargetRef"] =
                    json!({"apiVersion": target_kind.api_version(), "kind": kind, "name": name});
            }
            (Some(spec), Some(status::hpa(res)))
        }
        "PodDisruptionBudget" => {
            let sel = selector_of(res, EdgeKind::Protects).map_or_else(|| json!({}), selector_json);
            // The status message ("Healthy: 3/1") carries the counts.
            let (current, desired) = res
                .status
                .message
                .rsplit(' ')
                .next()
                .and_then(|c| c.split_once('/'))
                .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                .unwrap_or((1, 1));
            (
                Some(json!({"minAvailable": desired, "selector": sel})),
                Some(
                    json!({"currentHealthy": current, "desiredHealthy": desired, "expectedPods": current}),
                ),
            )
        }
        "NetworkPolicy" => {
            let sel =
                selector_of(res, EdgeKind::AppliesTo).map_or_else(|| json!({}), selector_json);
            (
                Some(
                    json!({"podSelector": sel, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]}),
                ),
                None,
            )
        }
        "Role" | "ClusterRole" => {
            obj["rules"] = json!([{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}]);
            (None, None)
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            if let Some((kind, _, name)) = refs(res, EdgeKind::Grants).find_map(key_of) {
                obj["roleRef"] =
                    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
            }
            let subjects: Vec<Value> = refs(res, EdgeKind::BindsSubject)
                .filter_map(key_of)
                .map(|(kind, sns, name)| json!({"kind": kind, "name": name, "namespace": if sns.is_empty() { ns } else { sns }}))
                .collect();
            obj["subjects"] = json!(subjects);
            (None, None)
        }
        "ServiceAccount" => {
            let pulls = names(res, EdgeKind::PullsWith);
            if !pulls.is_empty() {
                obj["imagePullSecrets"] =
                    json!(pulls.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
            }
            (None, None)
        }
        "ConfigMap" => {
            obj["data"] =
                json!({"LOG_LEVEL": "info", "config.yaml": format!("name: {}\n", res.name)});
            (None, None)
        }
        "Secret" => {
            obj["type"] = json!("Opaque");
            obj["data"] = json!({"password": "c2VjcmV0"});
            (None, None)
        }
        "Namespace" => (
            Some(json!({"finalizers": ["kubernetes"]})),
            Some(json!({"phase": "Active"})),
        ),
        "Node" => (
            Some(json!({"podCIDR": "10.244.0.0/24"})),
            Some(status::node(res)),
        ),
        _ => (None, None),
    };
    if let Some(spec) = spec {
        obj["spec"] = spec;
    }
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

/// [`render`] with `spec` as the object's `spec` when given (a custom resource's, from
/// [`Cluster::specs`]).
#[must_use]
pub fn render_generated(res: &Resource, spec: Option<&Value>) -> Value {
    let mut obj = render(res);
    if let Some(spec) = spec {
        obj["spec"] = spec.clone();
    }
    obj
}

impl Sim {
    /// Loads resources rendered with [`render`], keeping their UIDs and creation times (existing
    /// objects with the same key are replaced). Resources of kinds the emulator does not serve are
    /// skipped. Returns how many were stored.
    ///
    /// # Errors
    /// A rendered object the store rejects.
    pub fn load_resources(&self, resources: &[Resource]) -> Result<usize> {
        self.load(resources, &HashMap::new())
    }

    /// Loads a generated [`Cluster`]: the CustomResourceDefinitions of its custom kinds first
    /// ([`Sim::install_crds`], when it has any), then every resource as [`Sim::load_resources`]
    /// does, custom resources with their `spec`. Returns how many resources were stored.
    ///
    /// # Errors
    /// A CRD or rendered object the store rejects.
    pub fn load_cluster(&self, cluster: &Cluster) -> Result<usize> {
        if !cluster.specs.is_empty() {
            self.install_crds()?;
        }
        self.load(&cluster.resources, &cluster.specs)
    }

    fn load(&self, resources: &[Resource], specs: &HashMap<Uid, Value>) -> Result<usize> {
        let mut stored = 0;
        let mut state = self.inner.state.lock();
        for res in resources {
            let info = if res.kind.is_watched() {
                resolve(res.kind.as_str()).ok()
            } else {
                state.custom.lookup(&res.kind.qualified())
            };
            let Some(info) = info else {
                continue;
            };
            let obj = render_generated(res, specs.get(&res.uid));
            match state.create_with(
                info,
                obj.clone(),
                None,
                true,
                crate::store::Write::default(),
            ) {
                Err(crate::SimError::AlreadyExists(..)) => {
                    state.replace(info, obj, None, None, crate::store::Write::default())?;
                }
                other => {
                    other?;
                }
            }
            stored += 1;
        }
        Ok(stored)
    }

    /// An emulator (default config) loaded with `astrolabe_generator::generate(seed, size)`.
    ///
    /// # Errors
    /// A rendered object the store rejects.
    pub fn with_generated(seed: u64, size: usize) -> Result<Self> {
        Self::generated_with(crate::SimConfig::default(), seed, size)
    }

    /// An emulator with `config` loaded with `astrolabe_generator::generate(seed, size)`.
    ///
    /// # Errors
    /// A rendered object the store rejects.
    pub fn generated_with(config: crate::SimConfig, seed: u64, size: usize) -> Result<Self> {
        Self::generated_with_options(config, seed, size, &Options::default())
    }

    /// An emulator with `config` loaded with
    /// `astrolabe_generator::generate_with(seed, size, options)` ([`Sim::load_cluster`]).
    ///
    /// # Errors
    /// A CRD or rendered object the store rejects.
    pub fn generated_with_options(
        config: crate::SimConfig,
        seed: u64,
        size: usize,
        options: &Options,
    ) -> Result<Self> {
        let sim = Self::new(config);
        sim.load_cluster(&astrolabe_generator::generate_with(seed, size, options))?;
        Ok(sim)
    }
}
