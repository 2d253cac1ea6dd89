//! `Kind`: the Kubernetes kinds Astrolabe knows, plus any other kind by name, and
//! [`for_each_kind!`](crate::for_each_kind), the one table of the watched kinds.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Str;

/// The table of the kinds Astrolabe watches: the one place a watched kind is declared. Each crate
/// that needs a per-kind list (the [`Kind`] enum here, the informers' processors and watched
/// types, the emulator's served kinds) passes a callback macro, which receives the whole table.
///
/// `for_each_kind!(callback)` expands to `callback! { [] <rows> }`; `for_each_kind!(callback, a b c)`
/// to `callback! { [a b c] <rows> }`, so the callback can take arguments of its own. Each row is
///
/// ```text
/// Variant => "Kind", group "g", version "v", plural "p", singular "s", namespaced bool,
///     short ["a", ...], metadata_only bool, snake ident, rust path::to::Type;
/// ```
///
/// where `metadata_only` says Astrolabe reads only the object's metadata (never its contents),
/// `snake` is the kind's name in snake_case (the informers name processor functions after it)
/// and `rust` is the type's path below `k8s_openapi::api` (plain tokens here: the model does not
/// depend on k8s-openapi).
#[macro_export]
macro_rules! for_each_kind {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            [$($($args)*)?]
            Pod => "Pod", group "", version "v1", plural "pods", singular "pod", namespaced true,
                short ["po"], metadata_only false, snake pod, rust core::v1::Pod;
            Service => "Service", group "", version "v1", plural "services", singular "service",
                namespaced true, short ["svc"], metadata_only false, snake service,
                rust core::v1::Service;
            EndpointSlice => "EndpointSlice", group "discovery.k8s.io", version "v1",
                plural "endpointslices", singular "endpointslice", namespaced true, short [],
                metadata_only false, snake endpoint_slice, rust discovery::v1::EndpointSlice;
            ConfigMap => "ConfigMap", group "", version "v1", plural "configmaps",
                singular "configmap", namespaced true, short ["cm"], metadata_only false,
                snake config_map, rust core::v1::ConfigMap;
            Secret => "Secret", group "", version "v1", plural "secrets", singular "secret",
                namespaced true, short [], metadata_only true, snake secret,
                rust core::v1::Secret;
            ServiceAccount => "ServiceAccount", group "", version "v1", plural "serviceaccounts",
                singular "serviceaccount", namespaced true, short ["sa"], metadata_only false,
                snake service_account, rust core::v1::ServiceAccount;
            PersistentVolumeClaim => "PersistentVolumeClaim", group "", version "v1",
                plural "persistentvolumeclaims", singular "persistentvolumeclaim",
                namespaced true, short ["pvc"], metadata_only false,
                snake persistent_volume_claim, rust core::v1::PersistentVolumeClaim;
            PersistentVolume => "PersistentVolume", group "", version "v1",
                plural "persistentvolumes", singular "persistentvolume", namespaced false,
                short ["pv"], metadata_only false, snake persistent_volume,
                rust core::v1::PersistentVolume;
            StorageClass => "StorageClass", group "storage.k8s.io", version "v1",
                plural "storageclasses", singular "storageclass", namespaced false, short ["sc"],
                metadata_only false, snake storage_class, rust storage::v1::StorageClass;
            Namespace => "Namespace", group "", version "v1", plural "namespaces",
                singular "namespace", namespaced false, short ["ns"], metadata_only false,
                snake namespace, rust core::v1::Namespace;
            Node => "Node", group "", version "v1", plural "nodes", singular "node",
                namespaced false, short ["no"], metadata_only false, snake node,
                rust core::v1::Node;
            Deployment => "Deployment", group "apps", version "v1", plural "deployments",
                singular "deployment", namespaced true, short ["deploy"], metadata_only false,
                snake deployment, rust apps::v1::Deployment;
            ReplicaSet => "ReplicaSet", group "apps", version "v1", plural "replicasets",
                singular "replicaset", namespaced true, short ["rs"], metadata_only false,
                snake replica_set, rust apps::v1::ReplicaSet;
            StatefulSet => "StatefulSet", group "apps", version "v1", plural "statefulsets",
                singular "statefulset", namespaced true, short ["sts"], metadata_only false,
                snake stateful_set, rust apps::v1::StatefulSet;
            DaemonSet => "DaemonSet", group "apps", version "v1", plural "daemonsets",
                singular "daemonset", namespaced true, short ["ds"], metadata_only false,
                snake daemon_set, rust apps::v1::DaemonSet;
            Job => "Job", group "batch", version "v1", plural "jobs", singular "job",
                namespaced true, short [], metadata_only false, snake job, rust batch::v1::Job;
            CronJob => "CronJob", group "batch", version "v1", plural "cronjobs",
                singular "cronjob", namespaced true, short ["cj"], metadata_only false,
                snake cron_job, rust batch::v1::CronJob;
            Ingress => "Ingress", group "networking.k8s.io", version "v1", plural "ingresses",
                singular "ingress", namespaced true, short ["ing"], metadata_only false,
                snake ingress, rust networking::v1::Ingress;
            IngressClass => "IngressClass", group "networking.k8s.io", version "v1",
                plural "ingressclasses", singular "ingressclass", namespaced false, short [],
                metadata_only false, snake ingress_class, rust networking::v1::IngressClass;
            NetworkPolicy => "NetworkPolicy", group "networking.k8s.io", version "v1",
                plural "networkpolicies", singular "networkpolicy", namespaced true,
                short ["netpol"], metadata_only false, snake network_policy,
                rust networking::v1::NetworkPolicy;
            HorizontalPodAutoscaler => "HorizontalPodAutoscaler", group "autoscaling",
                version "v2", plural "horizontalpodautoscalers",
                singular "horizontalpodautoscaler", namespaced true, short ["hpa"],
                metadata_only false, snake horizontal_pod_autoscaler,
                rust autoscaling::v2::HorizontalPodAutoscaler;
            PodDisruptionBudget => "PodDisruptionBudget", group "policy", version "v1",
                plural "poddisruptionbudgets", singular "poddisruptionbudget", namespaced true,
                short ["pdb"], metadata_only false, snake pod_disruption_budget,
                rust policy::v1::PodDisruptionBudget;
            Role => "Role", group "rbac.authorization.k8s.io", version "v1", plural "roles",
                singular "role", namespaced true, short [], metadata_only false, snake role,
                rust rbac::v1::Role;
            RoleBinding => "RoleBinding", group "rbac.authorization.k8s.io", version "v1",
                plural "rolebindings", singular "rolebinding", namespaced true, short [],
                metadata_only false, snake role_binding, rust rbac::v1::RoleBinding;
            ClusterRole => "ClusterRole", group "rbac.authorization.k8s.io", version "v1",
                plural "clusterroles", singular "clusterrole", namespaced false, short [],
                metadata_only false, snake cluster_role, rust rbac::v1::ClusterRole;
            ClusterRoleBinding => "ClusterRoleBinding", group "rbac.authorization.k8s.io",
                version "v1", plural "clusterrolebindings", singular "clusterrolebinding",
                namespaced false, short [], metadata_only false, snake cluster_role_binding,
                rust rbac::v1::ClusterRoleBinding;
        }
    };
}

/// `apiVersion` from a group and a version: the version alone for the core group. The group must
/// reach this macro as a plain token (`tt`): a captured `literal` no longer matches `""`.
macro_rules! api_version {
    ("", $version:literal) => {
        $version
    };
    ($group:literal, $version:literal) => {
        concat!($group, "/", $version)
    };
}

macro_rules! define_kind {
    ([] $(
        $variant:ident => $name:literal, group $group:tt, version $version:tt,
        plural $plural:literal, singular $singular:literal, namespaced $namespaced:literal,
        short [$($short:literal),*], metadata_only $metadata_only:literal, snake $snake:ident,
        rust $($path:ident)::+;
    )*) => {
        /// A Kubernetes kind, group-qualified. The built-in kinds Astrolabe has processors for
        /// are variants; any other kind (a CRD, an aggregated API's kind, a kind only named by an
        /// owner reference) is `Other`, identified by its group and name.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum Kind {
            $(
                #[doc = concat!("`", $name, "` (", api_version!($group, $version), ")")]
                $variant,
            )*
            /// Any other kind, by group and name ([`OtherKind`]).
            Other(OtherKind),
        }

        impl Kind {
            /// Every kind Astrolabe watches, in a fixed order.
            pub const WATCHED: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The kind's name, as Kubernetes spells it (`Deployment`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Kind::$variant => $name,)*
                    Kind::Other(other) => other.kind(),
                }
            }

            /// The kind's row in the table of kinds; `None` for `Other`.
            fn row(&self) -> Option<&'static Row> {
                match self {
                    $(Kind::$variant => Some(&Row {
                        api_version: api_version!($group, $version),
                        group: $group,
                        version: $version,
                        plural: $plural,
                        singular: $singular,
                        short_names: &[$($short),*],
                        namespaced: $namespaced,
                        metadata_only: $metadata_only,
                    }),)*
                    Kind::Other(_) => None,
                }
            }

            /// The built-in kind of this name, matched exactly first, then case-insensitively
            /// (`pod`, `POD` and `Pod` are all `Pod`).
            fn builtin(name: &str) -> Option<Kind> {
                match name {
                    $($name => return Some(Kind::$variant),)*
                    _ => {}
                }
                $(if name.eq_ignore_ascii_case($name) { return Some(Kind::$variant); })*
                None
            }

            /// The built-in kind of this group and name (exact group, name as [`Kind::parse`]).
            fn builtin_in(group: &str, name: &str) -> Option<Kind> {
                Kind::builtin(name).filter(|k| k.group() == group)
            }
        }
    };
}

/// A watched kind's columns of the table of kinds.
struct Row {
    api_version: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    metadata_only: bool,
}

for_each_kind!(define_kind);

/// What Astrolabe knows of a kind outside its table: its identity (group and name) and, when it
/// was discovered, the version it is read at, its plural and its scope. Shared and interned:
/// every resource of one kind points at one allocation.
#[derive(Clone)]
pub struct OtherKind(Arc<OtherInfo>);

#[derive(PartialEq, Eq, Hash)]
struct OtherInfo {
    kind: Str,
    group: Str,
    version: Str,
    api_version: Str,
    plural: Str,
    namespaced: bool,
}

/// The description of a kind outside the table, as discovery reports it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct KindInfo {
    /// The kind's name (`Certificate`).
    pub kind: Str,
    /// The API group (`cert-manager.io`; empty for the core group).
    pub group: Str,
    /// The version it is read at (`v1`; empty when unknown).
    pub version: Str,
    /// The plural resource name (`certificates`; empty when unknown).
    pub plural: Str,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
}

/// Distinct kinds interned at most; beyond, kinds are still made, just not shared.
const INTERN_CAP: usize = 4096;

fn interned() -> &'static Mutex<HashSet<Arc<OtherInfo>>> {
    static KINDS: OnceLock<Mutex<HashSet<Arc<OtherInfo>>>> = OnceLock::new();
    KINDS.get_or_init(Mutex::default)
}

impl OtherKind {
    fn new(info: &KindInfo) -> OtherKind {
        let api_version = match (info.group.is_empty(), info.version.is_empty()) {
            (_, true) => Str::default(),
            (true, false) => info.version.clone(),
            (false, false) => compact_str::format_compact!("{}/{}", info.group, info.version),
        };
        let other = OtherInfo {
            kind: info.kind.clone(),
            group: info.group.clone(),
            version: info.version.clone(),
            api_version,
            plural: info.plural.clone(),
            namespaced: info.namespaced,
        };
        let mut set = interned()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(shared) = set.get(&other) {
            return OtherKind(shared.clone());
        }
        let arc = Arc::new(other);
        if set.len() < INTERN_CAP {
            set.insert(arc.clone());
        }
        OtherKind(arc)
    }

    /// The kind's name (`Certificate`).
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        &self.0.group
    }

    /// What this build knows of the kind.
    pub fn info(&self) -> KindInfo {
        KindInfo {
            kind: self.0.kind.clone(),
            group: self.0.group.clone(),
            version: self.0.version.clone(),
            plural: self.0.plural.clone(),
            namespaced: self.0.namespaced,
        }
    }
}

// Identity is the group and the name: the version read and the plural are facts about the kind,
// and two references to one kind (an owner reference without a plural, a watched object with
// one) must meet.
impl PartialEq for OtherKind {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.kind == other.0.kind && self.0.group == other.0.group)
    }
}

impl Eq for OtherKind {}

impl std::hash::Hash for OtherKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.kind.hash(state);
        self.0.group.hash(state);
    }
}

impl PartialOrd for OtherKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OtherKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.0.kind, &self.0.group).cmp(&(&other.0.kind, &other.0.group))
    }
}

impl fmt::Debug for OtherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.group.is_empty() {
            write!(f, "{}", self.0.kind)
        } else {
            write!(f, "{}.{}", self.0.kind, self.0.group)
        }
    }
}

impl Kind {
    /// Parses a kind as Kubernetes and kubectl name it: `Kind` or `Kind.group`. A built-in name
    /// (matched case-insensitively, with its own group if one is given) is the built-in kind;
    /// anything else is [`Kind::Other`] in the given group (the core group without one).
    pub fn parse(name: &str) -> Kind {
        match name.split_once('.') {
            None => Kind::builtin(name).unwrap_or_else(|| Kind::other(Str::default(), name)),
            Some((kind, group)) => Kind::builtin_in(group, kind)
                .or_else(|| {
                    // `Pod.core`, `Pod.` or a core kind qualified by the empty group.
                    (group == "core" || group.is_empty())
                        .then(|| Kind::builtin_in("", kind))
                        .flatten()
                })
                .unwrap_or_else(|| Kind::other(group, kind)),
        }
    }

    /// The kind named by an `apiVersion` and a `kind` (an owner reference, a `scaleTargetRef`):
    /// the built-in kind when the group is its group, else [`Kind::Other`] read at that version.
    /// Without an apiVersion, the kind is parsed by name alone ([`Kind::parse`]).
    pub fn from_api_version(api_version: &str, kind: &str) -> Kind {
        if api_version.is_empty() {
            return Kind::parse(kind);
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if let Some(builtin) = Kind::builtin_in(group, kind) {
            return builtin;
        }
        Kind::discovered(&KindInfo {
            kind: kind.into(),
            group: group.into(),
            version: version.into(),
            plural: Str::default(),
            namespaced: true,
        })
    }

    /// A kind outside the table, by group and name, with nothing else known (assumed
    /// namespaced).
    pub fn other(group: impl Into<Str>, kind: impl Into<Str>) -> Kind {
        Kind::discovered(&KindInfo {
            kind: kind.into(),
            group: group.into(),
            version: Str::default(),
            plural: Str::default(),
            namespaced: true,
        })
    }

    /// The kind a discovery reports: the built-in kind when group and name are one of the table's
    /// (exactly), else [`Kind::Other`] with what discovery said.
    pub fn discovered(info: &KindInfo) -> Kind {
        match Kind::builtin(&info.kind) {
            Some(k) if k.as_str() == info.kind && k.group() == info.group => k,
            _ => Kind::Other(OtherKind::new(info)),
        }
    }

    /// Whether this is one of the built-in kinds (the table's, with their own processors).
    pub fn is_watched(&self) -> bool {
        !matches!(self, Kind::Other(_))
    }

    /// The apiVersion this kind is read at (`apps/v1`); empty when unknown.
    pub fn api_version(&self) -> &str {
        match self {
            Kind::Other(o) => &o.0.api_version,
            _ => self.row().map_or("", |r| r.api_version),
        }
    }

    /// The API group (`apps`; empty for the core group).
    pub fn group(&self) -> &str {
        match self {
            Kind::Other(o) => &o.0.group,
            _ => self.row().map_or("", |r| r.group),
        }
    }

    /// The version within the group (`v1`); empty when unknown.
    pub fn version(&self) -> &str {
        match self {
            Kind::Other(o) => &o.0.version,
            _ => self.row().map_or("", |r| r.version),
        }
    }

    /// The plural resource name in URL paths (`deployments`); empty when unknown.
    pub fn plural(&self) -> &str {
        match self {
            Kind::Other(o) => &o.0.plural,
            _ => self.row().map_or("", |r| r.plural),
        }
    }

    /// The singular resource name (`deployment`); empty for `Other`.
    pub fn singular(&self) -> &'static str {
        self.row().map_or("", |r| r.singular)
    }

    /// kubectl's short names (`deploy`); none for `Other`.
    pub fn short_names(&self) -> &'static [&'static str] {
        self.row().map_or(&[], |r| r.short_names)
    }

    /// Whether objects of this kind live in a namespace (`Other` kinds: as discovered, and
    /// assumed when unknown).
    pub fn is_namespaced(&self) -> bool {
        match self {
            Kind::Other(o) => o.0.namespaced,
            _ => self.row().is_none_or(|r| r.namespaced),
        }
    }

    /// Whether Astrolabe reads only the metadata of this kind's objects (Secrets), never their
    /// contents.
    pub fn is_metadata_only(&self) -> bool {
        self.row().is_some_and(|r| r.metadata_only)
    }

    /// The kind group-qualified, as kubectl accepts it: `Deployment.apps`, `Pod` for the core
    /// group.
    pub fn qualified(&self) -> std::borrow::Cow<'_, str> {
        let group = self.group();
        if group.is_empty() {
            std::borrow::Cow::Borrowed(self.as_str())
        } else {
            std::borrow::Cow::Owned(format!("{}.{group}", self.as_str()))
        }
    }
}

/// Why a kind name (a `kind=` parameter) names no single kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindLookupError {
    /// No known kind has that name.
    #[error("unknown kind {name:?}{}", suggest(close))]
    Unknown {
        /// The name asked for.
        name: String,
        /// Known kinds with a close name, group-qualified.
        close: Vec<String>,
    },
    /// Kinds of several groups have that name.
    #[error("kind {name:?} is ambiguous: qualify it with its group ({})", choices.join(", "))]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// The kinds it could be, group-qualified.
        choices: Vec<String>,
    },
}

fn suggest(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(", "))
    }
}

/// Names kubectl also accepts for kinds outside the table (a discovered singular and short
/// names), by kind.
type ExtraNames = Mutex<Vec<(Kind, Vec<Str>)>>;

fn extra_names() -> &'static ExtraNames {
    static NAMES: OnceLock<ExtraNames> = OnceLock::new();
    NAMES.get_or_init(Mutex::default)
}

impl Kind {
    /// Records the singular and short names discovery reports for a kind outside the table, so
    /// that [`Kind::resolve`] accepts them as kubectl does.
    pub fn register_names<'a>(kind: &Kind, names: impl IntoIterator<Item = &'a str>) {
        if kind.is_watched() {
            return;
        }
        let mut all = extra_names()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: Vec<Str> = names
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(Str::from)
            .collect();
        if let Some((_, known)) = all.iter_mut().find(|(k, _)| k == kind) {
            for n in names {
                if !known.contains(&n) {
                    known.push(n);
                }
            }
        } else if all.len() < INTERN_CAP {
            all.push((kind.clone(), names));
        }
    }

    /// Every kind this process knows: the table's, then every other kind met so far
    /// (discovered, watched, referenced or read back), each once, in kind order.
    pub fn known() -> Vec<Kind> {
        let mut out: Vec<Kind> = Kind::WATCHED.to_vec();
        let mut others: Vec<Kind> = interned()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|o| !o.kind.is_empty())
            .map(|o| Kind::Other(OtherKind(o.clone())))
            .collect();
        // Several versions of one kind are one kind; the one with the most known wins.
        others.sort_by(|a, b| {
            a.cmp(b)
                .then_with(|| b.plural().len().cmp(&a.plural().len()))
        });
        others.dedup();
        out.extend(others);
        out
    }

    /// Every name kubectl accepts for this kind, lowercase: its name, plural, singular and
    /// short names.
    fn names(&self) -> Vec<String> {
        let mut names = vec![self.as_str().to_ascii_lowercase()];
        if !self.plural().is_empty() {
            names.push(self.plural().to_ascii_lowercase());
        }
        names.push(self.singular().to_ascii_lowercase());
        names.extend(self.short_names().iter().map(|s| s.to_ascii_lowercase()));
        if !self.is_watched() {
            let extra = extra_names()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, more)) = extra.iter().find(|(k, _)| k == self) {
                names.extend(more.iter().map(|s| s.as_str().to_ascii_lowercase()));
            }
        }
        names.retain(|n| !n.is_empty());
        names
    }

    /// Resolves a kind as kubectl names it: `Kind`, `plural`, `singular` or a short name, each
    /// optionally qualified by its group (`Certificate.cert-manager.io`,
    /// `certificates.v1.cert-manager.io`), case-insensitively, among [`Kind::known`]. A
    /// built-in kind wins over a kind of the same name in another group, as in kubectl.
    ///
    /// # Errors
    /// [`KindLookupError::Unknown`] with close names when none matches;
    /// [`KindLookupError::Ambiguous`] when kinds of several groups match.
    pub fn resolve(name: &str) -> Result<Kind, KindLookupError> {
        let trimmed = name.trim();
        let (resource, group) = match trimmed.split_once('.') {
            None => (trimmed, None),
            Some((resource, rest)) => {
                // `resource.version.group`: drop the version.
                let group = match rest.split_once('.') {
                    Some((v, g)) if is_version(v) => g,
                    _ if is_version(rest) => "",
                    _ => rest,
                };
                (resource, Some(if group == "core" { "" } else { group }))
            }
        };
        // A built-in kind wins over any other of the same name: answer those (most `kind=`
        // parameters) without listing every known kind.
        if let Some(builtin) = Kind::WATCHED.iter().find(|k| {
            group.is_none_or(|g| k.group().eq_ignore_ascii_case(g))
                && (k.as_str().eq_ignore_ascii_case(resource)
                    || k.plural().eq_ignore_ascii_case(resource)
                    || k.singular().eq_ignore_ascii_case(resource)
                    || k.short_names()
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(resource)))
        }) {
            return Ok(builtin.clone());
        }
        let wanted = resource.to_ascii_lowercase();
        let known = Kind::known();
        let matches: Vec<&Kind> = known
            .iter()
            .filter(|k| group.is_none_or(|g| k.group().eq_ignore_ascii_case(g)))
            .filter(|k| k.names().contains(&wanted))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(KindLookupError::Unknown {
                name: name.to_owned(),
                close: close_names(&wanted, &known),
            }),
            many => Err(KindLookupError::Ambiguous {
                name: name.to_owned(),
                choices: many.iter().map(|k| k.qualified().into_owned()).collect(),
            }),
        }
    }
}

/// Whether a URL segment is a Kubernetes API version (`v1`, `v1beta1`, `v2alpha3`).
fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &rest[digits..];
    if digits == 0 || tail.is_empty() {
        return digits > 0;
    }
    ["alpha", "beta"].iter().any(|stage| {
        tail.strip_prefix(stage)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Up to five known kinds whose names are close to `wanted` (within two edits, or sharing a
/// prefix of four letters), group-qualified.
fn close_names(wanted: &str, known: &[Kind]) -> Vec<String> {
    // The first four letters (characters, not bytes: the name comes from a request).
    let prefix = wanted.char_indices().nth(4).map_or(
        (wanted.chars().count() >= 4).then_some(wanted),
        |(end, _)| Some(&wanted[..end]),
    );
    let mut scored: Vec<(usize, String)> = known
        .iter()
        .filter_map(|k| {
            let best = k
                .names()
                .iter()
                .map(|n| {
                    let d = edit_distance(wanted, n);
                    let shared = prefix.is_some_and(|p| n.starts_with(p));
                    if d <= 2 || shared { d } else { usize::MAX }
                })
                .min()
                .unwrap_or(usize::MAX);
            (best != usize::MAX).then(|| (best, k.qualified().into_owned()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

/// Levenshtein distance, for short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Kind::parse(s))
    }
}

thread_local! {
    /// Set while the codec decodes a payload of format version 1, which wrote every kind as its
    /// bare name ([`LegacyKinds`]).
    static LEGACY_KINDS: Cell<bool> = const { Cell::new(false) };
}

/// While alive, binary decoding on this thread reads kinds as format version 1 wrote them: a bare
/// name, every kind outside the table in the core group. The codec holds one while it decodes
/// a version-1 payload; the serde data model has no other way to pass a format version down.
pub struct LegacyKinds {
    previous: bool,
}

impl LegacyKinds {
    /// Starts reading kinds the version-1 way on this thread.
    pub fn enter() -> LegacyKinds {
        LegacyKinds {
            previous: LEGACY_KINDS.with(|l| l.replace(true)),
        }
    }
}

impl Drop for LegacyKinds {
    fn drop(&mut self) {
        LEGACY_KINDS.with(|l| l.set(self.previous));
    }
}

/// How a kind is written in binary formats: a built-in kind by its name (stable across table
/// reorderings), any other with what is known of it.
#[derive(Serialize, Deserialize)]
enum KindWire<'a> {
    Builtin(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Other(KindInfo),
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.serialize_str(self.as_str());
        }
        match self {
            Kind::Other(o) => KindWire::Other(o.info()).serialize(serializer),
            builtin => KindWire::Builtin(std::borrow::Cow::Borrowed(builtin.as_str()))
                .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Text (and version-1 binary) holds a name, parsed from the borrowed text: no string is
        // built for the built-in kinds.
        struct KindVisitor;
        impl serde::de::Visitor<'_> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a kind name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Kind, E> {
                Ok(Kind::parse(name))
            }
        }
        if deserializer.is_human_readable() || LEGACY_KINDS.with(Cell::get) {
            return deserializer.deserialize_str(KindVisitor);
        }
        match KindWire::deserialize(deserializer)? {
            KindWire::Builtin(name) => Kind::builtin(&name).ok_or_else(|| {
                serde::de::Error::custom(format_args!("{name:?} is not a built-in kind"))
            }),
            KindWire::Other(info) => Ok(Kind::discovered(&info)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_watched_kind() {
        for kind in Kind::WATCHED {
            assert_eq!(&Kind::parse(kind.as_str()), kind);
            assert_eq!(&Kind::parse(&kind.as_str().to_lowercase()), kind);
        }
        assert_eq!(Kind::WATCHED.len(), 26);
    }

    #[test]
    fn serde_round_trips_by_name() {
        for kind in Kind::WATCHED
            .iter()
            .cloned()
            .chain([Kind::parse("Rollout")])
        {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
            let bytes = postcard::to_allocvec(&kind).unwrap();
            assert_eq!(postcard::from_bytes::<Kind>(&bytes).unwrap(), kind);
        }
        // An escaped name is read through a temporary buffer, not borrowed.
        assert_eq!(
            serde_json::from_str::<Kind>(r#""P\u006fd""#).unwrap(),
            Kind::Pod
        );
    }

    #[test]
    fn unknown_kind_is_other_and_namespaced() {
        let kind = Kind::parse("Rollout");
        assert_eq!(kind, Kind::other("", "Rollout"));
        assert!(kind.is_namespaced());
        assert!(!kind.is_watched());
        assert!(!Kind::Node.is_namespaced());
        assert_eq!(kind.group(), "");
        assert!(kind.short_names().is_empty());
        assert!(!kind.is_metadata_only());
    }

    #[test]
    fn resolve_accepts_what_kubectl_accepts_and_explains_the_rest() {
        let cert = Kind::discovered(&KindInfo {
            kind: "Certificate".into(),
            group: "cert-manager.io".into(),
            version: "v1".into(),
            plural: "certificates".into(),
            namespaced: true,
        });
        Kind::register_names(&cert, ["certificate", "cert", "certs"]);
        let gateway = |group: &str| {
            Kind::discovered(&KindInfo {
                kind: "Gateway".into(),
                group: group.into(),
                version: "v1".into(),
                plural: "gateways".into(),
                namespaced: true,
            })
        };
        let (gw_api, gw_istio) = (
            gateway("gateway.networking.k8s.io"),
            gateway("networking.istio.io"),
        );
        for name in [
            "Certificate",
            "certificates",
            "cert",
            "CERTS",
            "Certificate.cert-manager.io",
            "certificates.cert-manager.io",
            "certificates.v1.cert-manager.io",
        ] {
            assert_eq!(Kind::resolve(name), Ok(cert.clone()), "{name}");
        }
        for (name, kind) in [
            ("deploy", Kind::Deployment),
            ("Deployment.apps", Kind::Deployment),
            ("deployments.v1.apps", Kind::Deployment),
            ("pods", Kind::Pod),
            ("Pod.core", Kind::Pod),
            ("svc", Kind::Service),
            ("hpa", Kind::HorizontalPodAutoscaler),
            ("Gateway.networking.istio.io", gw_istio.clone()),
            ("gateways.gateway.networking.k8s.io", gw_api.clone()),
        ] {
            assert_eq!(Kind::resolve(name), Ok(kind), "{name}");
        }
        match Kind::resolve("gateway") {
            Err(KindLookupError::Ambiguous { choices, .. }) => assert_eq!(
                choices,
                [
                    "Gateway.gateway.networking.k8s.io",
                    "Gateway.networking.istio.io"
                ]
            ),
            other => panic!("{other:?}"),
        }
        match Kind::resolve("deploymnet") {
            Err(e @ KindLookupError::Unknown { .. }) => {
                assert!(
                    e.to_string().contains("did you mean Deployment.apps"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Kind::resolve("Certificate.example.com"),
            Err(KindLookupError::Unknown { .. })
        ));
        // A built-in kind wins over a custom kind of the same name.
        let _custom_service = Kind::other("example.com", "Service");
        assert_eq!(Kind::resolve("Service"), Ok(Kind::Service));
        assert!(is_version("v1") && is_version("v1beta1") && is_version("v2alpha3"));
        assert!(!is_version("v") && !is_version("vbeta1") && !is_version("v1beta"));
    }

    /// Close matches compare the first four characters, whatever their byte lengths (a name
    /// from a request may be any text).
    #[test]
    fn close_matches_of_any_text_never_panic() {
        for name in ["ּ�:", "Depl", "dëplöyments", "日本語のカインド", "ab"] {
            assert!(Kind::resolve(name).is_err(), "{name}");
        }
        let err = Kind::resolve("deplo").unwrap_err().to_string();
        assert!(err.contains("Deployment"), "{err}");
    }

    #[test]
    fn api_version_is_group_and_version() {
        for kind in Kind::WATCHED {
            let joined = if kind.group().is_empty() {
                kind.version().to_owned()
            } else {
                format!("{}/{}", kind.group(), kind.version())
            };
            assert_eq!(kind.api_version(), joined, "{kind}");
        }
        assert_eq!(Kind::Deployment.api_version(), "apps/v1");
        assert_eq!(Kind::Deployment.short_names(), ["deploy"]);
        assert_eq!(Kind::Ingress.plural(), "ingresses");
        assert!(Kind::Secret.is_metadata_only());
        assert!(!Kind::ConfigMap.is_metadata_only());
    }
}
