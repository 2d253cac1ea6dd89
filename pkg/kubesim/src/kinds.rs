//! The table of built-in Kubernetes kinds the emulator serves (group, version, plural, scope, short
//! names); kinds defined by CustomResourceDefinitions live in `registry`.

use std::borrow::Cow;

use serde_json::Value;

/// Static description of one Kubernetes resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindInfo {
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The API group, empty for the core group.
    pub group: &'static str,
    /// The API version within the group, e.g. `v1`.
    pub version: &'static str,
    /// The plural resource name used in URL paths, e.g. `deployments`.
    pub plural: &'static str,
    /// The singular resource name, e.g. `deployment`.
    pub singular: &'static str,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
    /// kubectl short names, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// The categories of a custom kind (`spec.names.categories`); built-in kinds answer theirs
    /// from [`crate::discovery`].
    pub categories: &'static [&'static str],
    /// Whether the kind is defined by a CustomResourceDefinition (see `registry`).
    pub custom: bool,
    /// Whether the `status` subresource is served: always for built-in kinds, for a custom kind
    /// when its CRD version declares `subresources.status`.
    pub status_subresource: bool,
}

impl KindInfo {
    /// The `apiVersion` string: `v1` for the core group, `<group>/<version>` otherwise.
    #[must_use]
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the kind has a `scale` subresource.
    #[must_use]
    pub fn scalable(&self) -> bool {
        self.group == "apps" && matches!(self.kind, "Deployment" | "ReplicaSet" | "StatefulSet")
    }

    /// The list kind, e.g. `DeploymentList`.
    #[must_use]
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The URL prefix of this kind's group version: `/api/v1` or `/apis/<group>/<version>`.
    #[must_use]
    pub fn gv_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection path, across all namespaces (or the only path for a cluster-scoped kind).
    #[must_use]
    pub fn collection_path(&self) -> String {
        format!("{}/{}", self.gv_prefix(), self.plural)
    }

    /// The collection path within one namespace (the cluster path for a cluster-scoped kind).
    #[must_use]
    pub fn namespaced_path(&self, namespace: &str) -> String {
        if self.namespaced {
            format!(
                "{}/namespaces/{namespace}/{}",
                self.gv_prefix(),
                self.plural
            )
        } else {
            self.collection_path()
        }
    }
}

/// Builds [`KINDS`] from the table of watched kinds ([`astrolabe_model::for_each_kind!`]), then the
/// kinds given as arguments.
macro_rules! served_kinds {
    ([$($extra:expr),* $(,)?] $(
        $variant:ident => $name:literal, group $group:literal, version $version:literal,
        plural $plural:literal, singular $singular:literal, namespaced $namespaced:literal,
        short [$($short:literal),*], metadata_only $metadata_only:tt, snake $snake:ident,
        rust $($path:ident)::+;
    )*) => {
        /// Every kind the emulator serves: the kinds Astrolabe watches, in its order, then the
        /// ones only the emulator serves ([`ENDPOINTS`], [`EVENTS`], [`EVENTS_V1`],
        /// [`CUSTOM_RESOURCE_DEFINITIONS`], [`LEASES`]).
        pub static KINDS: &[KindInfo] = &[
            $(KindInfo {
                kind: $name,
                group: $group,
                version: $version,
                plural: $plural,
                singular: $singular,
                namespaced: $namespaced,
                short_names: &[$($short),*],
                categories: &[],
                custom: false,
                status_subresource: true,
            },)*
            $($extra,)*
        ];
    };
}

/// `Endpoints`: served, as a real API server does, but not watched by Astrolabe.
pub const ENDPOINTS: KindInfo = KindInfo {
    kind: "Endpoints",
    group: "",
    version: "v1",
    plural: "endpoints",
    singular: "endpoints",
    namespaced: true,
    short_names: &["ep"],
    categories: &[],
    custom: false,
    status_subresource: true,
};

/// core/v1 `Event`: served (initially empty) so `kubectl get events` and `describe` find it.
pub const EVENTS: KindInfo = KindInfo {
    kind: "Event",
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    custom: false,
    status_subresource: true,
};

/// `events.k8s.io/v1` `Event`: the same events in the newer group, served like [`EVENTS`].
pub const EVENTS_V1: KindInfo = KindInfo {
    kind: "Event",
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    singular: "event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    custom: false,
    status_subresource: true,
};

/// `apiextensions.k8s.io/v1` `CustomResourceDefinition`: creating one serves new kinds
/// (`crd`, `registry`).
pub const CUSTOM_RESOURCE_DEFINITIONS: KindInfo = KindInfo {
    kind: "CustomResourceDefinition",
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    singular: "customresourcedefinition",
    namespaced: false,
    short_names: &["crd", "crds"],
    categories: &["api-extensions"],
    custom: false,
    status_subresource: true,
};

/// `coordination.k8s.io/v1` `Lease`: what leader election updates (only if the
/// `resourceVersion` it read is still current: 409 Conflict otherwise, as for every kind).
pub const LEASES: KindInfo = KindInfo {
    kind: "Lease",
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    namespaced: true,
    short_names: &[],
    categories: &[],
    custom: false,
    status_subresource: false,
};

astrolabe_model::for_each_kind!(
    served_kinds,
    ENDPOINTS,
    EVENTS,
    EVENTS_V1,
    CUSTOM_RESOURCE_DEFINITIONS,
    LEASES
);

impl KindInfo {
    /// Whether this is the CustomResourceDefinition kind.
    #[must_use]
    pub fn is_crd(&self) -> bool {
        self.group == CUSTOM_RESOURCE_DEFINITIONS.group
            && self.kind == CUSTOM_RESOURCE_DEFINITIONS.kind
    }

    /// `obj` as this kind's version serves it: the objects of a custom kind are shared by the
    /// versions of their CRD, and a read in another version than the one written carries this
    /// version's `apiVersion` (the conversion of `conversion.strategy: None`). Built-in kinds
    /// borrow `obj` as it is.
    #[must_use]
    pub fn as_served<'a>(&self, obj: &'a Value) -> Cow<'a, Value> {
        if !self.custom {
            return Cow::Borrowed(obj);
        }
        let same = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|av| av.strip_prefix(self.group))
            .and_then(|av| av.strip_prefix('/'))
            .is_some_and(|v| v == self.version);
        if same {
            return Cow::Borrowed(obj);
        }
        let mut owned = obj.clone();
        if let Some(map) = owned.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.api_version()));
        }
        Cow::Owned(owned)
    }

    /// The kind name whose list merge strategies apply to this kind's objects (in server-side
    /// apply and managed fields): its own, or [`crate::patch::keys::CUSTOM`] for a custom kind.
    #[must_use]
    pub fn merge_kind(&self) -> &'static str {
        if self.custom {
            crate::patch::keys::CUSTOM
        } else {
            self.kind
        }
    }

    /// Whether `name` names this kind: its kind, plural, singular or a short name
    /// (case-insensitive), optionally qualified by the group as kubectl spells it
    /// (`certificates.cert-manager.io`).
    #[must_use]
    pub fn is_named(&self, name: &str) -> bool {
        let name = match name.split_once('.') {
            Some((n, g)) if g == self.group => n,
            Some(_) => return false,
            None => name,
        };
        self.kind.eq_ignore_ascii_case(name)
            || self.plural.eq_ignore_ascii_case(name)
            || self.singular.eq_ignore_ascii_case(name)
            || self
                .short_names
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
    }
}

/// Finds a built-in kind by its kind name, plural, singular or short name (case-insensitive),
/// optionally qualified by its group ([`KindInfo::is_named`]).
#[must_use]
pub fn lookup(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.is_named(name))
}

/// The index of a built-in kind in [`KINDS`]: pointer arithmetic for a reference into the
/// table (every lookup hands those out), a search by group and plural for a copy.
#[must_use]
pub fn index_of(info: &KindInfo) -> Option<usize> {
    let range = KINDS.as_ptr_range();
    let ptr: *const KindInfo = info;
    if range.contains(&ptr) {
        return Some((ptr.addr() - range.start.addr()) / std::mem::size_of::<KindInfo>());
    }
    KINDS
        .iter()
        .position(|k| k.plural == info.plural && k.group == info.group)
}

/// Finds the kind served at `group`/`version`/`plural` (group empty for the core group).
#[must_use]
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// Every served kind: the built-in table, then `custom` (the kinds served from CRDs).
pub fn served<'a>(custom: &'a [&'static KindInfo]) -> impl Iterator<Item = &'static KindInfo> + 'a {
    KINDS.iter().chain(custom.iter().copied())
}

/// The priority of an API version as Kubernetes orders them: GA before beta before alpha, a
/// higher major (then minor) first, and versions of another form last, alphabetically
/// (`v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > foo`). Smaller sorts first.
#[must_use]
pub fn version_priority(
    version: &str,
) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, &str) {
    use std::cmp::Reverse;
    let other = (3, Reverse(0), Reverse(0), version);
    let Some(rest) = version.strip_prefix('v') else {
        return other;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let Ok(major) = rest[..digits].parse::<u64>() else {
        return other;
    };
    let (level, minor) = match &rest[digits..] {
        "" => (0, ""),
        t if t.starts_with("beta") => (1, &t[4..]),
        t if t.starts_with("alpha") => (2, &t[5..]),
        _ => return other,
    };
    match minor {
        "" if level == 0 => (0, Reverse(major), Reverse(0), ""),
        m => match m.parse::<u64>() {
            Ok(minor) => (level, Reverse(major), Reverse(minor), ""),
            Err(_) => other,
        },
    }
}

/// The distinct group versions of [`served`] kinds as `(group, version)`: groups in order of
/// appearance, the versions of a group by [`version_priority`] (the first is the preferred one).
#[must_use]
pub fn group_versions(custom: &[&'static KindInfo]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for k in served(custom) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
        if !groups.contains(&k.group) {
            groups.push(k.group);
        }
    }
    out.sort_by_key(|(g, v)| (groups.iter().position(|x| x == g), version_priority(v)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_any_name() {
        assert_eq!(lookup("deploy").map(|k| k.kind), Some("Deployment"));
        assert_eq!(lookup("pods").map(|k| k.kind), Some("Pod"));
        assert_eq!(lookup("configmap").map(|k| k.plural), Some("configmaps"));
        assert_eq!(
            lookup("HorizontalPodAutoscaler").map(|k| k.api_version()),
            Some("autoscaling/v2".to_owned())
        );
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn paths() {
        let pod = lookup("Pod").expect("pod");
        assert_eq!(pod.collection_path(), "/api/v1/pods");
        assert_eq!(pod.namespaced_path("a"), "/api/v1/namespaces/a/pods");
        let cr = lookup("ClusterRole").expect("cr");
        assert_eq!(
            cr.namespaced_path("a"),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        );
        assert_eq!(KINDS.len(), astrolabe_model::Kind::WATCHED.len() + 5);
        assert_eq!(
            lookup("crd").map(|k| k.plural),
            Some("customresourcedefinitions")
        );
        assert_eq!(
            lookup("deployments.apps").map(|k| k.kind),
            Some("Deployment")
        );
        assert!(lookup("deployments.batch").is_none());
        let mut versions = ["v1alpha1", "foo", "v1", "v1beta1", "v2", "v1beta2", "v10"];
        versions.sort_by_key(|v| version_priority(v));
        assert_eq!(
            versions,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(index_of(k), Some(i));
            let copy = *k;
            assert_eq!(index_of(&copy), Some(i));
        }
        assert_eq!(lookup("events").map(|k| k.group), Some(""));
        assert!(by_path("events.k8s.io", "v1", "events").is_some());
        assert_eq!(lookup("ep").map(|k| k.plural), Some("endpoints"));
        assert!(by_path("apps", "v1", "deployments").is_some());
    }
}
