//! How the lists of the served kinds merge, from the `patchStrategy`/`patchMergeKey` markers of
//! the Kubernetes API types (the same table serves strategic merge patches and server-side apply).

/// How one list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Items are objects identified by this field; a patch merges into the item with the same key.
    Key(&'static str),
    /// Items are scalars forming a set; a patch adds the missing ones.
    Set,
    /// The list is atomic: a patch replaces it whole.
    Atomic,
}

/// The kind name under which the objects of custom kinds merge: their lists are atomic outside
/// `metadata`, as for a CRD whose schema declares no `x-kubernetes-list-type`.
pub const CUSTOM: &str = "";

/// The strategy of the list at `path` (field names from the object's root, list items skipped)
/// in an object of `kind` ([`CUSTOM`] for custom kinds).
#[must_use]
pub fn list_strategy(kind: &str, path: &[&str]) -> ListStrategy {
    let Some((last, parent)) = path.split_last() else {
        return ListStrategy::Atomic;
    };
    if kind == CUSTOM && parent.first() != Some(&"metadata") {
        return ListStrategy::Atomic;
    }
    match *last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListStrategy::Key("name"),
        "volumes" if parent.last() == Some(&"spec") => ListStrategy::Key("name"),
        "env" => ListStrategy::Key("name"),
        "volumeMounts" => ListStrategy::Key("mountPath"),
        "volumeDevices" => ListStrategy::Key("devicePath"),
        "hostAliases" => ListStrategy::Key("ip"),
        "topologySpreadConstraints" => ListStrategy::Key("topologyKey"),
        "ports" if kind == "Service" && parent == ["spec"] => ListStrategy::Key("port"),
        "ports" if matches!(parent.last(), Some(&("containers" | "initContainers"))) => {
            ListStrategy::Key("containerPort")
        }
        "conditions" if parent.last() == Some(&"status") => ListStrategy::Key("type"),
        "addresses" if kind == "Node" && parent == ["status"] => ListStrategy::Key("type"),
        "ownerReferences" if parent == ["metadata"] => ListStrategy::Key("uid"),
        "finalizers" if parent == ["metadata"] => ListStrategy::Set,
        _ => ListStrategy::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let pod = ["spec", "template", "spec", "containers"];
        assert_eq!(list_strategy("Deployment", &pod), ListStrategy::Key("name"));
        let ports = ["spec", "containers", "ports"];
        assert_eq!(
            list_strategy("Pod", &ports),
            ListStrategy::Key("containerPort")
        );
        assert_eq!(
            list_strategy("Service", &["spec", "ports"]),
            ListStrategy::Key("port")
        );
        assert_eq!(
            list_strategy("Pod", &["spec", "tolerations"]),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Pod", &["metadata", "finalizers"]),
            ListStrategy::Set
        );
        assert_eq!(
            list_strategy(CUSTOM, &["spec", "template", "spec", "containers"]),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy(CUSTOM, &["metadata", "finalizers"]),
            ListStrategy::Set
        );
    }
}
