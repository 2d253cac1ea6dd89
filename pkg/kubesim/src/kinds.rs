//! The table of Kubernetes kinds the emulator serves (group, version, plural, scope, short names).

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
        /// ones only the emulator serves ([`ENDPOINTS`], [`EVENTS`], [`EVENTS_V1`]).
        pub static KINDS: &[KindInfo] = &[
            $(KindInfo {
                kind: $name,
                group: $group,
                version: $version,
                plural: $plural,
                singular: $singular,
                namespaced: $namespaced,
                short_names: &[$($short),*],
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
};

astrolabe_model::for_each_kind!(served_kinds, ENDPOINTS, EVENTS, EVENTS_V1);

/// Finds a kind by its kind name, plural, singular or short name (case-insensitive).
#[must_use]
pub fn lookup(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| {
        k.kind.eq_ignore_ascii_case(name)
            || k.plural.eq_ignore_ascii_case(name)
            || k.singular.eq_ignore_ascii_case(name)
            || k.short_names.iter().any(|s| s.eq_ignore_ascii_case(name))
    })
}

/// Finds the kind served at `group`/`version`/`plural` (group empty for the core group).
#[must_use]
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The distinct group versions served, in table order, as `(group, version)`.
#[must_use]
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
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
        assert_eq!(KINDS.len(), astrolabe_model::Kind::WATCHED.len() + 3);
        assert_eq!(lookup("events").map(|k| k.group), Some(""));
        assert!(by_path("events.k8s.io", "v1", "events").is_some());
        assert_eq!(lookup("ep").map(|k| k.plural), Some("endpoints"));
        assert!(by_path("apps", "v1", "deployments").is_some());
    }
}
