//! The churn driver: a seeded task making realistic changes to whatever objects exist — rolling
//! updates of Deployments (new ReplicaSet, new Pods, old ones removed, EndpointSlices following),
//! scaling, ConfigMap edits, and deletion plus re-creation of standalone objects.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::sim::Sim;

/// Churn settings.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// Changes per second (each change may write several objects).
    pub rate: f64,
    /// Seed of the random choices.
    pub seed: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            rate: 10.0,
            seed: 1,
        }
    }
}

/// What one churn step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChurnAction {
    /// A Deployment got a new ReplicaSet and Pods (namespace, name).
    RollingUpdate(String, String),
    /// A Deployment was scaled (namespace, name, new replicas).
    Scale(String, String, i64),
    /// A ConfigMap's data changed (namespace, name).
    ConfigMapEdit(String, String),
    /// A standalone object was deleted and created again (kind, namespace, name).
    Recreate(String, String, String),
    /// Nothing suitable existed.
    Idle,
}

/// Makes one realistic change at a time; deterministic choices for a given seed and store state.
#[derive(Debug)]
pub struct Churner {
    sim: Sim,
    rng: SmallRng,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

fn has_owner(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

/// Whether every `key: value` of a Service-style selector is among the labels.
fn selector_matches(selector: &Map<String, Value>, obj: &Value) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| obj.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
}

fn owner_ref(kind: &str, api_version: &str, obj: &Value) -> Value {
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": str_at(obj, "/metadata/name"),
        "uid": str_at(obj, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

impl Churner {
    /// A churner over `sim` with a seed.
    #[must_use]
    pub fn new(sim: Sim, seed: u64) -> Self {
        Self {
            sim,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
            .collect()
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())].clone())
    }

    /// Performs one change.
    ///
    /// # Errors
    /// A store error (e.g. an object deleted concurrently by another writer).
    pub fn step(&mut self) -> Result<ChurnAction> {
        let roll = self.rng.random_range(0..100u32);
        let deployments = self.sim.keys("Deployment")?;
        match roll {
            0..30 if !deployments.is_empty() => {
                let Some((ns, name)) = self.pick(&deployments) else {
                    return Ok(ChurnAction::Idle);
                };
                self.rolling_update(&ns, &name)?;
                Ok(ChurnAction::RollingUpdate(ns, name))
            }
            30..55 if !deployments.is_empty() => {
                let Some((ns, name)) = self.pick(&deployments) else {
                    return Ok(ChurnAction::Idle);
                };
                let replicas = self.scale(&ns, &name)?;
                Ok(ChurnAction::Scale(ns, name, replicas))
            }
            0..85 => self.edit_configmap(),
            _ => self.recreate(),
        }
    }

    fn edit_configmap(&mut self) -> Result<ChurnAction> {
        let keys = self.sim.keys("ConfigMap")?;
        let Some((ns, name)) = self.pick(&keys) else {
            return Ok(ChurnAction::Idle);
        };
        let value = self.suffix(8);
        self.sim.update("ConfigMap", &ns, &name, |o| {
            if !o.get("data").is_some_and(Value::is_object) {
                o["data"] = json!({});
            }
            o["data"]["churn"] = json!(value);
        })?;
        Ok(ChurnAction::ConfigMapEdit(ns, name))
    }

    fn recreate(&mut self) -> Result<ChurnAction> {
        let kind = if self.rng.random_bool(0.5) {
            "ConfigMap"
        } else {
            "Secret"
        };
        let candidates: Vec<(String, String)> = self
            .sim
            .list(kind)?
            .iter()
            .filter(|o| !has_owner(o))
            .map(|o| {
                (
                    str_at(o, "/metadata/namespace").to_owned(),
                    str_at(o, "/metadata/name").to_owned(),
                )
            })
            .collect();
        let Some((ns, name)) = self.pick(&candidates) else {
            return Ok(ChurnAction::Idle);
        };
        let mut old = self.sim.delete(kind, &ns, &name)?;
        if let Some(meta) = old.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
                meta.remove(f);
            }
        }
        self.sim.create(kind, old)?;
        Ok(ChurnAction::Recreate(kind.to_owned(), ns, name))
    }

    /// ReplicaSets owned by a Deployment, most recently written last.
    fn replicasets_of(&self, ns: &str, deployment: &Value) -> Result<Vec<Value>> {
        let uid = str_at(deployment, "/metadata/uid");
        let mut sets: Vec<Value> = self
            .sim
            .list_in("ReplicaSet", ns)?
            .into_iter()
            .filter(|r| owned_by(r, uid))
            .collect();
        sets.sort_by_key(|r| {
            str_at(r, "/metadata/resourceVersion")
                .parse::<u64>()
                .unwrap_or(0)
        });
        Ok(sets)
    }

    fn rolling_update(&mut self, ns: &str, name: &str) -> Result<()> {
        let stamp = format!("{}", self.rng.random_range(0..1_000_000u32));
        let deployment = self.sim.update("Deployment", ns, name, |d| {
            d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                json!(stamp);
        })?;
        let old_sets = self.replicasets_of(ns, &deployment)?;
        let hash = self.suffix(10);
        let replicas = deployment
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut template = deployment
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = deployment
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or_else(|| json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let rs_name = format!("{name}-{hash}");
        let rs = self.sim.create(
            "ReplicaSet",
            json!({
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "labels": template["metadata"]["labels"],
                    "annotations": {"deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                    "ownerReferences": owner_ref("Deployment", "apps/v1", &deployment),
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template},
                "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
            }),
        )?;
        for _ in 0..replicas {
            self.create_pod(ns, &rs)?;
        }
        for old in &old_sets {
            let old_name = str_at(old, "/metadata/name").to_owned();
            self.set_pods(ns, old, 0)?;
            self.sim.update("ReplicaSet", ns, &old_name, |r| {
                r["spec"]["replicas"] = json!(0);
                r["status"] =
                    json!({"replicas": 0, "observedGeneration": r["metadata"]["generation"]});
            })?;
        }
        self.sync_endpoints(ns)
    }

    fn scale(&mut self, ns: &str, name: &str) -> Result<i64> {
        let current = self.sim.get("Deployment", ns, name)?;
        let replicas = current
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let target = if replicas <= 1 || (replicas < 10 && self.rng.random_bool(0.5)) {
            replicas + 1
        } else {
            replicas - 1
        };
        let deployment = self.sim.update("Deployment", ns, name, |d| {
            d["spec"]["replicas"] = json!(target)
        })?;
        let mut sets = self.replicasets_of(ns, &deployment)?;
        let active = sets
            .iter()
            .rposition(|r| r.pointer("/spec/replicas").and_then(Value::as_i64) != Some(0));
        if let Some(rs) = active.map(|i| sets.swap_remove(i)).or_else(|| sets.pop()) {
            let rs_name = str_at(&rs, "/metadata/name").to_owned();
            let rs = self.sim.update("ReplicaSet", ns, &rs_name, |r| {
                r["spec"]["replicas"] = json!(target);
                r["status"]["replicas"] = json!(target);
                r["status"]["readyReplicas"] = json!(target);
            })?;
            self.set_pods(ns, &rs, target)?;
        }
        self.sim.update("Deployment", ns, name, |d| {
            d["status"]["replicas"] = json!(target);
            d["status"]["readyReplicas"] = json!(target);
            d["status"]["availableReplicas"] = json!(target);
        })?;
        self.sync_endpoints(ns)?;
        Ok(target)
    }

    /// Creates or deletes Pods of a ReplicaSet until it has `target`.
    fn set_pods(&mut self, ns: &str, rs: &Value, target: i64) -> Result<()> {
        let uid = str_at(rs, "/metadata/uid");
        let pods: Vec<Value> = self
            .sim
            .list_in("Pod", ns)?
            .into_iter()
            .filter(|p| owned_by(p, uid))
            .collect();
        let have = i64::try_from(pods.len()).unwrap_or(i64::MAX);
        for pod in pods
            .iter()
            .skip(usize::try_from(target.max(0)).unwrap_or(0))
        {
            self.sim.delete("Pod", ns, str_at(pod, "/metadata/name"))?;
        }
        for _ in have..target {
            self.create_pod(ns, rs)?;
        }
        Ok(())
    }

    fn create_pod(&mut self, ns: &str, rs: &Value) -> Result<Value> {
        let nodes = self.sim.keys("Node")?;
        let node = self
            .pick(&nodes)
            .map_or_else(|| "node-1".to_owned(), |(_, n)| n);
        let name = format!("{}-{}", str_at(rs, "/metadata/name"), self.suffix(5));
        let template = rs
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut spec = template
            .get("spec")
            .cloned()
            .unwrap_or_else(|| json!({"containers": []}));
        spec["nodeName"] = json!(node);
        let ip = format!(
            "10.{}.{}.{}",
            self.rng.random_range(0..255u8),
            self.rng.random_range(0..255u8),
            self.rng.random_range(1..255u8)
        );
        let containers: Vec<Value> = spec
            .get("containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| json!({"name": c["name"], "image": c["image"], "ready": true, "restartCount": 0, "started": true, "state": {"running": {"startedAt": crate::store::now_rfc3339()}}}))
                    .collect()
            })
            .unwrap_or_default();
        self.sim.create(
            "Pod",
            json!({
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
                    "ownerReferences": owner_ref("ReplicaSet", "apps/v1", rs),
                },
                "spec": spec,
                "status": {
                    "phase": "Running",
                    "podIP": ip,
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": containers,
                },
            }),
        )
    }

    /// Points the EndpointSlices of every selecting Service in `ns` at its current Pods.
    fn sync_endpoints(&mut self, ns: &str) -> Result<()> {
        let pods = self.sim.list_in("Pod", ns)?;
        let slices = self.sim.list_in("EndpointSlice", ns)?;
        for svc in self.sim.list_in("Service", ns)? {
            let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
                continue;
            };
            let svc_name = str_at(&svc, "/metadata/name").to_owned();
            let endpoints: Vec<Value> = pods
                .iter()
                .filter(|p| selector_matches(selector, p))
                .map(|p| {
                    json!({
                        "addresses": [str_at(p, "/status/podIP")],
                        "conditions": {"ready": str_at(p, "/status/phase") == "Running", "serving": true, "terminating": false},
                        "nodeName": str_at(p, "/spec/nodeName"),
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": str_at(p, "/metadata/name"), "uid": str_at(p, "/metadata/uid")},
                    })
                })
                .collect();
            let existing = slices
                .iter()
                .find(|s| str_at(s, "/metadata/labels/kubernetes.io~1service-name") == svc_name);
            match existing {
                Some(slice) if slice.get("endpoints") == Some(&Value::Array(endpoints.clone())) => {
                }
                Some(slice) => {
                    self.sim
                        .update("EndpointSlice", ns, str_at(slice, "/metadata/name"), |s| {
                            s["endpoints"] = json!(endpoints)
                        })?;
                }
                None => {
                    let name = format!("{svc_name}-{}", self.suffix(5));
                    self.sim.create(
                        "EndpointSlice",
                        json!({
                            "metadata": {
                                "name": name,
                                "namespace": ns,
                                "labels": {"kubernetes.io/service-name": svc_name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc_name, "uid": str_at(&svc, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true}],
                            },
                            "addressType": "IPv4",
                            "endpoints": endpoints,
                            "ports": svc.pointer("/spec/ports").and_then(Value::as_array).map(|ps| ps.iter().map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p.get("targetPort").filter(|t| t.is_number()).or(p.get("port")), "protocol": "TCP"})).collect::<Vec<_>>()).unwrap_or_default(),
                        }),
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Runs churn at `config.rate` changes per second until `shutdown` is cancelled; returns how many
/// steps were made. Failed steps (objects deleted under its feet) are logged and skipped.
pub async fn run_churn(sim: Sim, config: ChurnConfig, shutdown: CancellationToken) -> u64 {
    let period = if config.rate > 0.0 {
        Duration::from_secs_f64(1.0 / config.rate)
    } else {
        Duration::from_secs(3600)
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut churner = Churner::new(sim, config.seed);
    let mut steps = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return steps,
            _ = ticks.tick() => {
                match churner.step() {
                    Ok(action) => tracing::trace!(?action, "churn"),
                    Err(e) => tracing::debug!(error = %e, "churn step failed"),
                }
                steps += 1;
            }
        }
    }
}
