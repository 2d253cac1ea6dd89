//! `Resource`: the compact record Astrolabe keeps per Kubernetes object, and its identity types.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Kind, Labels, Reference, Str};

/// A Kubernetes object UID. Shared, immutable text: cloning it (for edges, events, indexes)
/// is a reference-count increment, not a copy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Uid(Arc<str>);

impl Uid {
    /// The UID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Heap bytes this UID owns (its shared allocation).
    pub fn heap_bytes(&self) -> usize {
        2 * std::mem::size_of::<usize>() + self.0.len()
    }
}

impl Default for Uid {
    fn default() -> Self {
        Uid(Arc::from(""))
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Uid {
    fn from(s: &str) -> Self {
        Uid(Arc::from(s))
    }
}

impl From<String> for Uid {
    fn from(s: String) -> Self {
        Uid(Arc::from(s))
    }
}

impl From<Str> for Uid {
    fn from(s: Str) -> Self {
        Uid(Arc::from(s.as_str()))
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

/// Kind-specific facts worth keeping, as a plain struct: the view readers get from
/// [`Resource::facts`] and writers give to [`Resource::set_facts`]. The resource itself stores
/// only the facts that are set, in a compact list ([`FactSet`]).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
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

/// One stored fact (see [`Facts`] for their meaning).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Fact {
    Replicas(Replicas),
    RestartCount(u32),
    NodeName(Str),
    Image(Str),
    ClusterIp(Str),
    ServiceType(Str),
    VolumeName(Str),
    ClaimRef(Box<ClaimRef>),
    IngressClass(Str),
    StorageClass(Str),
    Scaling(Scaling),
    ScaleTarget(Box<(Kind, Str)>),
    Phase(Str),
    Suspended(bool),
}

/// The facts a resource stores: only those that are set, in a fixed order, in one allocation
/// (none when empty).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, Default)]
pub struct FactSet(Box<[Fact]>);

impl From<&Facts> for FactSet {
    fn from(f: &Facts) -> Self {
        let mut v = Vec::new();
        let Facts {
            replicas,
            restart_count,
            node_name,
            image,
            cluster_ip,
            service_type,
            volume_name,
            claim_ref,
            ingress_class,
            storage_class,
            scaling,
            scale_target,
            phase,
            suspended,
        } = f.clone();
        v.extend(replicas.map(Fact::Replicas));
        v.extend(restart_count.map(Fact::RestartCount));
        v.extend(node_name.map(Fact::NodeName));
        v.extend(image.map(Fact::Image));
        v.extend(cluster_ip.map(Fact::ClusterIp));
        v.extend(service_type.map(Fact::ServiceType));
        v.extend(volume_name.map(Fact::VolumeName));
        v.extend(claim_ref.map(|c| Fact::ClaimRef(Box::new(c))));
        v.extend(ingress_class.map(Fact::IngressClass));
        v.extend(storage_class.map(Fact::StorageClass));
        v.extend(scaling.map(Fact::Scaling));
        v.extend(scale_target.map(|t| Fact::ScaleTarget(Box::new(t))));
        v.extend(phase.map(Fact::Phase));
        v.extend(suspended.map(Fact::Suspended));
        FactSet(v.into_boxed_slice())
    }
}

impl FactSet {
    /// The facts as a struct.
    pub fn to_facts(&self) -> Facts {
        let mut f = Facts::default();
        for fact in self.0.iter().cloned() {
            match fact {
                Fact::Replicas(x) => f.replicas = Some(x),
                Fact::RestartCount(x) => f.restart_count = Some(x),
                Fact::NodeName(x) => f.node_name = Some(x),
                Fact::Image(x) => f.image = Some(x),
                Fact::ClusterIp(x) => f.cluster_ip = Some(x),
                Fact::ServiceType(x) => f.service_type = Some(x),
                Fact::VolumeName(x) => f.volume_name = Some(x),
                Fact::ClaimRef(x) => f.claim_ref = Some(*x),
                Fact::IngressClass(x) => f.ingress_class = Some(x),
                Fact::StorageClass(x) => f.storage_class = Some(x),
                Fact::Scaling(x) => f.scaling = Some(x),
                Fact::ScaleTarget(x) => f.scale_target = Some(*x),
                Fact::Phase(x) => f.phase = Some(x),
                Fact::Suspended(x) => f.suspended = Some(x),
            }
        }
        f
    }

    /// The stored facts.
    pub fn iter(&self) -> impl Iterator<Item = &Fact> {
        self.0.iter()
    }

    /// Whether no fact is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn heap_bytes(&self) -> usize {
        self.0.len() * std::mem::size_of::<Fact>()
            + self
                .0
                .iter()
                .map(|f| match f {
                    Fact::NodeName(s)
                    | Fact::Image(s)
                    | Fact::ClusterIp(s)
                    | Fact::ServiceType(s)
                    | Fact::VolumeName(s)
                    | Fact::IngressClass(s)
                    | Fact::StorageClass(s)
                    | Fact::Phase(s) => crate::str_heap(s),
                    Fact::ClaimRef(_) => std::mem::size_of::<ClaimRef>(),
                    Fact::ScaleTarget(_) => std::mem::size_of::<(Kind, Str)>(),
                    _ => 0,
                })
                .sum::<usize>()
    }
}

/// Helm identity of an object, derived from its labels and annotations.
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
/// owners, a status summary and the references it makes to other objects. Helm identity and
/// `managed-by` are read from the labels and annotations (see [`Resource::release`]), so they are
/// stored once. Never holds Secret or ConfigMap data, managedFields or the last-applied
/// annotation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Resource {
    /// `metadata.uid`.
    pub uid: Uid,
    /// The kind (its apiVersion is [`Resource::api_version`]).
    pub kind: Kind,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: Str,
    /// The name.
    pub name: Str,
    /// `metadata.labels`.
    pub labels: Labels,
    /// The annotations worth keeping: the informers drop those that carry whole objects, keep only
    /// an allowlist on Secrets, and drop long values.
    pub annotations: Labels,
    /// `metadata.creationTimestamp`, in seconds since the Unix epoch (0 when unknown).
    pub created_at: i64,
    /// `metadata.resourceVersion`.
    pub resource_version: Str,
    /// `metadata.ownerReferences`. Each makes an `owns` edge from the owner (by UID), so they
    /// are not repeated in `references`.
    pub owners: Vec<OwnerRef>,
    /// Status summary.
    pub status: Status,
    /// Kind-specific facts (read with [`Resource::facts`], write with [`Resource::set_facts`]).
    pub facts: FactSet,
    /// The references this object makes, from which the graph derives edges.
    pub references: Vec<Reference>,
}

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
            kind,
            namespace: namespace.into(),
            name: name.into(),
            labels: Labels::new(),
            annotations: Labels::new(),
            created_at: 0,
            resource_version: Str::default(),
            owners: Vec::new(),
            status: Status::default(),
            facts: FactSet::default(),
            references: Vec::new(),
        }
    }

    /// The object's key (kind, namespace, name).
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.kind.clone(), self.namespace.clone(), self.name.clone())
    }

    /// The apiVersion Astrolabe reads this kind at.
    pub fn api_version(&self) -> &str {
        self.kind.api_version()
    }

    /// The facts, as a struct (built on each call; cheap).
    pub fn facts(&self) -> Facts {
        self.facts.to_facts()
    }

    /// Replaces the facts.
    pub fn set_facts(&mut self, facts: &Facts) {
        self.facts = FactSet::from(facts);
    }

    /// Changes some facts: `r.update_facts(|f| f.phase = Some("Bound".into()))`.
    pub fn update_facts(&mut self, change: impl FnOnce(&mut Facts)) {
        let mut facts = self.facts();
        change(&mut facts);
        self.set_facts(&facts);
    }

    /// The Helm release name (`meta.helm.sh/release-name` annotation), or "".
    pub fn release(&self) -> &str {
        self.annotations
            .get(crate::well_known::HELM_RELEASE)
            .unwrap_or("")
    }

    /// The Helm release namespace (`meta.helm.sh/release-namespace` annotation), or "".
    pub fn release_namespace(&self) -> &str {
        self.annotations
            .get(crate::well_known::HELM_RELEASE_NAMESPACE)
            .unwrap_or("")
    }

    /// The Helm chart (`helm.sh/chart` label, else annotation), or "".
    pub fn chart(&self) -> &str {
        self.labels
            .get(crate::well_known::HELM_CHART)
            .or_else(|| self.annotations.get(crate::well_known::HELM_CHART))
            .unwrap_or("")
    }

    /// `app.kubernetes.io/managed-by`, when set.
    pub fn managed_by(&self) -> Option<&str> {
        self.labels.get(crate::well_known::MANAGED_BY)
    }

    /// Helm identity, when the object belongs to a release or names a chart.
    pub fn helm(&self) -> Option<Helm> {
        (!self.release().is_empty() || !self.chart().is_empty()).then(|| Helm {
            release: self.release().into(),
            release_namespace: self.release_namespace().into(),
            chart: self.chart().into(),
        })
    }

    /// Puts stored parts in canonical form so equal objects compare and encode equal, and
    /// releases spare capacity.
    pub fn normalize(&mut self) {
        // Owner references are edges already (see `owners`); a reference that repeats one
        // would only be stored twice.
        let owners = &self.owners;
        self.references.retain(|r| {
            !(r.edge == crate::EdgeKind::Owns
                && r.reverse
                && matches!(&r.target, crate::Target::Uid { uid, .. } if owners.iter().any(|o| o.uid == *uid)))
        });
        self.references.sort();
        self.references.dedup();
        self.references.shrink_to_fit();
        self.owners.shrink_to_fit();
        self.labels.shrink_to_fit();
        self.annotations.shrink_to_fit();
    }

    /// Approximate bytes this resource owns on the heap and inline, for memory accounting.
    pub fn approx_bytes(&self) -> usize {
        use crate::str_heap;
        std::mem::size_of::<Resource>()
            + self.uid.heap_bytes()
            + str_heap(&self.namespace)
            + str_heap(&self.name)
            + self.labels.heap_bytes()
            + self.annotations.heap_bytes()
            + str_heap(&self.resource_version)
            + str_heap(&self.status.message)
            + self.owners.capacity() * std::mem::size_of::<OwnerRef>()
            + self.facts.heap_bytes()
            + self.references.capacity() * std::mem::size_of::<Reference>()
    }
}
