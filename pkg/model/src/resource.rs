//! `Resource`: the compact record Astrolabe keeps per Kubernetes object, and its identity types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Kind, Labels, Reference, Str};

/// A Kubernetes object UID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Uid(pub Str);

impl Uid {
    /// The UID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Uid {
    fn from(s: &str) -> Self {
        Uid(Str::from(s))
    }
}

impl From<String> for Uid {
    fn from(s: String) -> Self {
        Uid(Str::from(s))
    }
}

/// An object's identity by name: kind, namespace (empty for cluster-scoped kinds) and name.
/// Ordered by kind, then namespace, then name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: Str,
    /// The name.
    pub name: Str,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(kind: Kind, namespace: impl Into<Str>, name: impl Into<Str>) -> Self {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// An entry of `metadata.ownerReferences`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct OwnerRef {
    /// The owner's kind.
    pub kind: Kind,
    /// The owner's name (in the owned object's namespace, or cluster-scoped).
    pub name: Str,
    /// The owner's UID.
    pub uid: Uid,
    /// Whether this owner is the managing controller.
    pub controller: bool,
}

/// The coarse health every resource is summarised to.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize, Default,
)]
pub enum Health {
    /// Working as intended.
    Ready,
    /// Progressing, waiting or partially ready.
    Pending,
    /// Failed or failing.
    Error,
    /// Nothing to say, or an unrecognised state.
    #[default]
    Unknown,
}

impl Health {
    /// The API name (`Ready`).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ready => "Ready",
            Health::Pending => "Pending",
            Health::Error => "Error",
            Health::Unknown => "Unknown",
        }
    }
}

/// Status summary: health plus a human message.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct Status {
    /// The coarse health.
    pub health: Health,
    /// A human-readable explanation (`Partially ready (1/2)`).
    pub message: Str,
}

/// Replica counts of a workload (or a scaler's view of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct Replicas {
    /// Wanted replicas.
    pub desired: i32,
    /// Existing replicas.
    pub current: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Available replicas.
    pub available: i32,
}

/// A PersistentVolume's claim reference.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct ClaimRef {
    /// The claim's namespace.
    pub namespace: Str,
    /// The claim's name.
    pub name: Str,
    /// The claim's UID, when set.
    pub uid: Str,
}

/// An autoscaler's bounds and current view.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct Scaling {
    /// `spec.minReplicas`, when set.
    pub min: Option<i32>,
    /// `spec.maxReplicas`.
    pub max: i32,
    /// `status.currentReplicas`.
    pub current: i32,
    /// `status.desiredReplicas`.
    pub desired: i32,
}

/// Kind-specific facts worth keeping. Every field is optional; most resources set two or three,
/// so the whole record is boxed and absent when empty.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct Facts {
    /// Workload replica counts.
    pub replicas: Option<Replicas>,
    /// Pod: sum of container restart counts.
    pub restart_count: Option<u32>,
    /// Pod: the Node it runs on.
    pub node_name: Option<Str>,
    /// Pod or workload: the first container's image.
    pub image: Option<Str>,
    /// Service: `spec.clusterIP`.
    pub cluster_ip: Option<Str>,
    /// Service: `spec.type`.
    pub service_type: Option<Str>,
    /// PVC: `spec.volumeName`.
    pub volume_name: Option<Str>,
    /// PV: `spec.claimRef`.
    pub claim_ref: Option<ClaimRef>,
    /// Ingress: `spec.ingressClassName`.
    pub ingress_class: Option<Str>,
    /// PVC/PV: the storage class name.
    pub storage_class: Option<Str>,
    /// HPA: bounds and current/desired replicas.
    pub scaling: Option<Scaling>,
    /// HPA: the scale target, as kind and name.
    pub scale_target: Option<(Kind, Str)>,
    /// A phase, where the kind has one (Pod, PVC, PV, Namespace).
    pub phase: Option<Str>,
    /// CronJob: `spec.suspend`.
    pub suspended: Option<bool>,
}

impl Facts {
    /// Whether no fact is set.
    pub fn is_empty(&self) -> bool {
        *self == Facts::default()
    }
}

/// Helm identity of an object: the release that manages it and the chart it came from.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct Helm {
    /// `meta.helm.sh/release-name`.
    pub release: Str,
    /// `meta.helm.sh/release-namespace`.
    pub release_namespace: Str,
    /// `helm.sh/chart` (label, or annotation).
    pub chart: Str,
}

/// One Kubernetes object as Astrolabe keeps it: identity, labels, the annotations worth keeping,
/// owners, a status summary, Helm identity and the references it makes to other objects.
/// Never holds Secret or ConfigMap data, managedFields or the last-applied annotation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Resource {
    /// `metadata.uid`.
    pub uid: Uid,
    /// The kind.
    pub kind: Kind,
    /// The apiVersion it was read at.
    pub api_version: Str,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: Str,
    /// The name.
    pub name: Str,
    /// `metadata.labels`.
    pub labels: Labels,
    /// The annotations worth keeping (see [`crate::keep_annotation`]).
    pub annotations: Labels,
    /// `metadata.creationTimestamp`, in seconds since the Unix epoch (0 when unknown).
    pub created_at: i64,
    /// `metadata.resourceVersion`.
    pub resource_version: Str,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerRef>,
    /// Status summary.
    pub status: Status,
    /// Kind-specific facts, absent when there are none.
    pub facts: Option<Box<Facts>>,
    /// Helm identity, absent when the object is not from a Helm release.
    pub helm: Option<Box<Helm>>,
    /// `app.kubernetes.io/managed-by`, when set.
    pub managed_by: Option<Str>,
    /// The references this object makes, from which the graph derives edges.
    pub references: Vec<Reference>,
}

static NO_FACTS: Facts = Facts {
    replicas: None,
    restart_count: None,
    node_name: None,
    image: None,
    cluster_ip: None,
    service_type: None,
    volume_name: None,
    claim_ref: None,
    ingress_class: None,
    storage_class: None,
    scaling: None,
    scale_target: None,
    phase: None,
    suspended: None,
};

impl Resource {
    /// A resource with identity only; everything else empty.
    pub fn new(
        uid: impl Into<Uid>,
        kind: Kind,
        namespace: impl Into<Str>,
        name: impl Into<Str>,
    ) -> Self {
        Resource {
            uid: uid.into(),
            api_version: Str::from(kind.api_version()),
            kind,
            namespace: namespace.into(),
            name: name.into(),
            labels: Labels::new(),
            annotations: Labels::new(),
            created_at: 0,
            resource_version: Str::default(),
            owners: Vec::new(),
            status: Status::default(),
            facts: None,
            helm: None,
            managed_by: None,
            references: Vec::new(),
        }
    }

    /// The object's key (kind, namespace, name).
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.kind.clone(), self.namespace.clone(), self.name.clone())
    }

    /// The facts, or an empty set.
    pub fn facts(&self) -> &Facts {
        self.facts.as_deref().unwrap_or(&NO_FACTS)
    }

    /// Mutable facts, created on first use.
    pub fn facts_mut(&mut self) -> &mut Facts {
        self.facts.get_or_insert_with(Box::default)
    }

    /// The Helm release name, or "".
    pub fn release(&self) -> &str {
        self.helm.as_deref().map_or("", |h| h.release.as_str())
    }

    /// The Helm chart, or "".
    pub fn chart(&self) -> &str {
        self.helm.as_deref().map_or("", |h| h.chart.as_str())
    }

    /// Drops empty optional parts so equal objects compare and encode equal.
    pub fn normalize(&mut self) {
        if self.facts.as_deref().is_some_and(Facts::is_empty) {
            self.facts = None;
        }
        if self
            .helm
            .as_deref()
            .is_some_and(|h| h.release.is_empty() && h.chart.is_empty())
        {
            self.helm = None;
        }
        self.references.sort();
        self.references.dedup();
        self.references.shrink_to_fit();
        self.owners.shrink_to_fit();
    }

    /// Approximate bytes this resource owns on the heap and inline, for memory accounting.
    pub fn approx_bytes(&self) -> usize {
        use crate::str_heap;
        std::mem::size_of::<Resource>()
            + str_heap(&self.uid.0)
            + str_heap(&self.api_version)
            + str_heap(&self.namespace)
            + str_heap(&self.name)
            + self.labels.heap_bytes()
            + self.annotations.heap_bytes()
            + str_heap(&self.resource_version)
            + str_heap(&self.status.message)
            + self.owners.capacity() * std::mem::size_of::<OwnerRef>()
            + self
                .facts
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Facts>())
            + self
                .helm
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Helm>())
            + self.references.capacity() * std::mem::size_of::<Reference>()
    }
}

/// Annotation keys never kept: large, noisy or secret-bearing.
const DROPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision-history",
    "control-plane.alpha.kubernetes.io/leader",
];

/// Whether an annotation is worth keeping: not in the drop list and not larger than 512 bytes.
pub fn keep_annotation(key: &str, value: &str) -> bool {
    !DROPPED_ANNOTATIONS.contains(&key) && value.len() <= 512
}
