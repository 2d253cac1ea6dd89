//! The manifests applied to an in-process emulator, and the graph of what it then holds.

use std::collections::HashMap;
use std::time::Duration;

use astrolabe_graph::Graph;
use astrolabe_informers::Rules;
use astrolabe_informers::processors::process_json_with_rules;
use astrolabe_kubesim::{KindInfo, Sim, SimConfig};
use astrolabe_model::{Kind, ObjectKey};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::findings::{Finding, Severity};
use super::load::{Document, InputError};

/// The objects a check assumes the cluster already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// What a standard cluster provides: the namespaces `default`, `kube-system`, `kube-public`
    /// and `kube-node-lease`, the user-facing ClusterRoles (`cluster-admin`, `admin`, `edit`,
    /// `view`), a default StorageClass `standard` and one Node; and the CustomResourceDefinitions
    /// of cert-manager, the Gateway API, the Prometheus Operator and Istio networking, so their
    /// custom resources are checked without their CRDs in the input.
    #[default]
    Standard,
    /// Only the namespace `default`.
    Empty,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Profile::Standard),
            "empty" => Ok(Profile::Empty),
            other => Err(format!("{other:?}: expected standard or empty")),
        }
    }
}

/// How long the controllers may take to make what the manifests ask for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Kinds not made resources, as the server does not watch them by default.
const NOT_WATCHED: &[(&str, &str)] = &[
    ("", "Event"),
    ("events.k8s.io", "Event"),
    ("coordination.k8s.io", "Lease"),
    ("", "Endpoints"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
];

/// The emulated cluster after the manifests were applied, and its graph.
pub struct CheckCluster {
    /// The emulator.
    pub sim: Sim,
    /// The graph of every object it holds.
    pub graph: Graph,
    /// Each object of the input, by its key, with its document.
    pub sources: HashMap<ObjectKey, Document>,
    /// Objects the API refused (as `kubectl apply` would be refused).
    pub refused: Vec<Finding>,
}

impl CheckCluster {
    /// Applies `docs` (CustomResourceDefinitions first, then Namespaces, then the rest, in
    /// order) to an emulator holding `profile`'s objects and the `assume`d ones, lets its
    /// controllers settle, and builds the graph with `rules`.
    ///
    /// # Errors
    /// An `--assume` entry that names no kind or is malformed.
    pub async fn build(
        docs: Vec<Document>,
        profile: Profile,
        assume: &[String],
        rules: &Rules,
    ) -> Result<CheckCluster, InputError> {
        let sim = Sim::new(SimConfig {
            default_namespaces: profile == Profile::Standard,
            controllers: true,
            pod_start_delay: Duration::ZERO,
            nodes: usize::from(profile == Profile::Standard),
            ..SimConfig::default()
        });
        let stop = CancellationToken::new();
        let _stop_controllers = stop.clone().drop_guard();
        sim.start_controllers(stop);
        if profile == Profile::Empty {
            let _ = sim.upsert("Namespace", json!({"metadata": {"name": "default"}}));
        } else {
            standard(&sim);
        }
        for entry in assume {
            assumed(&sim, entry)?;
        }
        let rank = |d: &Document| match d.value["kind"].as_str() {
            Some("CustomResourceDefinition") => 0,
            Some("Namespace") => 1,
            _ => 2,
        };
        let mut ordered: Vec<Document> = docs;
        ordered.sort_by_key(rank);
        let mut sources = HashMap::new();
        let mut refused = Vec::new();
        for doc in ordered {
            match apply(&sim, &doc.value) {
                Ok(key) => {
                    sources.insert(key, doc);
                }
                Err(reason) => refused.push(Finding::refused(&doc, reason)),
            }
        }
        if let Err(e) = sim.settle(SETTLE_TIMEOUT).await {
            // Checked as they stand: what the controllers made by then is in the graph.
            tracing::warn!(error = %e, "check: the emulator's controllers did not settle");
        }
        let graph = graph_of(&sim, rules);
        Ok(CheckCluster {
            sim,
            graph,
            sources,
            refused,
        })
    }
}

/// The name the emulator resolves `apiVersion` and `kind` by (`Kind.group`).
fn qualified(api_version: &str, kind: &str) -> String {
    match api_version.rsplit_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_owned(),
    }
}

/// Creates (or, for a repeated object, replaces) `object`; its key.
fn apply(sim: &Sim, object: &Value) -> Result<ObjectKey, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let namespaced = sim
        .kind_info(&qualified(api_version, kind))
        .is_ok_and(|info| info.namespaced);
    if namespaced {
        // As the API server answers `kubectl apply` (Namespaces of the input are applied first).
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if sim.get("Namespace", "", namespace).is_err() {
            return Err(format!("namespaces \"{namespace}\" not found"));
        }
    }
    let stored = sim
        .upsert(&qualified(api_version, kind), object.clone())
        .map_err(|e| match e {
            astrolabe_kubesim::SimError::UnknownKind(_) => format!(
                "the cluster serves no kind {kind} in {api_version} (add its CustomResourceDefinition to the input)"
            ),
            other => other.to_string(),
        })?;
    Ok(key_of(&stored))
}

/// The key of a stored object.
fn key_of(object: &Value) -> ObjectKey {
    let kind = Kind::from_api_version(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
    );
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    ObjectKey::new(kind, text("/metadata/namespace"), text("/metadata/name"))
}

/// What a standard cluster has besides the default namespaces.
fn standard(sim: &Sim) {
    if let Err(e) = sim.install_crds() {
        tracing::warn!(error = %e, "check: the compiled-in CRDs were not installed");
    }
    for role in ["cluster-admin", "admin", "edit", "view"] {
        let _ = sim.upsert(
            "ClusterRole.rbac.authorization.k8s.io",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": role}, "rules": []}),
        );
    }
    let _ = sim.upsert(
        "StorageClass.storage.k8s.io",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "standard", "annotations":
                   {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": "rancher.io/local-path", "volumeBindingMode": "Immediate"}),
    );
}

/// Creates the object an `--assume KIND/NAME` or `KIND/NAMESPACE/NAME` names.
fn assumed(sim: &Sim, entry: &str) -> Result<(), InputError> {
    let bad = |reason: String| InputError {
        file: "--assume".to_owned(),
        line: None,
        reason,
    };
    let parts: Vec<&str> = entry.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [kind, name] => (*kind, None, *name),
        [kind, namespace, name] => (*kind, Some(*namespace), *name),
        _ => {
            return Err(bad(format!(
                "{entry:?}: expected KIND/NAME or KIND/NAMESPACE/NAME"
            )));
        }
    };
    let info = sim
        .kind_info(kind)
        .map_err(|_| bad(format!("{entry:?}: no kind {kind:?}")))?;
    let mut metadata = json!({ "name": name });
    if info.namespaced {
        metadata["namespace"] = json!(namespace.unwrap_or("default"));
    } else if namespace.is_some() {
        return Err(bad(format!("{entry:?}: {} is cluster-scoped", info.kind)));
    }
    let object = json!({"apiVersion": info.api_version(), "kind": info.kind, "metadata": metadata});
    sim.upsert(&qualified(&info.api_version(), info.kind), object)
        .map(drop)
        .map_err(|e| bad(format!("{entry:?}: {e}")))
}

/// The graph of every object `sim` holds, made resources as the informers make them.
fn graph_of(sim: &Sim, rules: &Rules) -> Graph {
    let mut graph = Graph::new();
    let custom: Vec<KindInfo> = sim
        .list("CustomResourceDefinition.apiextensions.k8s.io")
        .unwrap_or_default()
        .iter()
        .filter_map(|crd| {
            let group = crd.pointer("/spec/group")?.as_str()?;
            let kind = crd.pointer("/spec/names/kind")?.as_str()?;
            sim.kind_info(&format!("{kind}.{group}")).ok().copied()
        })
        .collect();
    for info in astrolabe_kubesim::KINDS.iter().chain(custom.iter()) {
        if NOT_WATCHED.contains(&(info.group, info.kind)) {
            continue;
        }
        let Ok(objects) = sim.list(&qualified(&info.api_version(), info.kind)) else {
            continue;
        };
        for object in objects {
            let kind = Kind::from_api_version(&info.api_version(), info.kind);
            let kind = match kind {
                Kind::Other(_) => Kind::discovered(&astrolabe_model::KindInfo {
                    kind: info.kind.into(),
                    group: info.group.into(),
                    version: info.version.into(),
                    plural: info.plural.into(),
                    namespaced: info.namespaced,
                }),
                builtin => builtin,
            };
            match process_json_with_rules(&kind, object, rules) {
                Ok(resource) => {
                    graph.upsert(resource);
                }
                Err(e) => tracing::warn!(%kind, error = %e, "check: an object that does not read"),
            }
        }
    }
    graph
}

impl Finding {
    /// The API refused `doc`'s object.
    fn refused(doc: &Document, reason: String) -> Finding {
        Finding {
            check: "refused",
            severity: Severity::Error,
            object: super::findings::object_text(&key_of(&doc.value)),
            file: doc.file.clone(),
            line: doc.line,
            field: String::new(),
            edge: None,
            target: None,
            message: format!("the API server would refuse it: {reason}"),
        }
    }
}
