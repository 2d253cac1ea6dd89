//! Which annotations a [`Resource`](astrolabe_model::Resource) keeps: never one that carries a
//! whole object, and on Secrets only an allowlist.
//!
//! Deployment tools store the manifest they applied in an annotation, and a Secret's manifest
//! holds its `data`/`stringData`. Secrets are watched for their metadata only, so such an
//! annotation is the one way a Secret's content could reach the graph, the API, the change
//! stream, Redis and exports. The rules, in order:
//!
//! 1. On a Secret, only the keys in [`SECRET_ALLOWED`] are kept.
//! 2. On every kind, keys in [`WHOLE_OBJECT`], or ending in one of [`WHOLE_OBJECT_SUFFIXES`], are
//!    dropped, as are [`NOISY`] keys.
//! 3. On every kind, a value that looks like a whole object, or a part of one, is dropped
//!    whatever its key: a JSON object with a top-level field of [`OBJECT_FIELDS`] (`apiVersion`,
//!    `kind`, `metadata`, `spec`, `data`, `stringData`, …), a YAML manifest (lines starting with
//!    `apiVersion:` and `kind:`), or a gzip, zip or zstd stream in base64 (which tools use to fit
//!    a manifest).
//! 4. A value longer than [`MAX_VALUE_BYTES`] is dropped.

use astrolabe_model::Kind;
use astrolabe_model::well_known::{HELM_CHART, HELM_RELEASE, HELM_RELEASE_NAMESPACE};

/// The annotations a Secret keeps; every other one is dropped. Each names an owner or a policy,
/// never content:
/// - Helm's release name and namespace (the release the Secret belongs to, read by the model)
///   and its chart (`name-version`);
/// - the ServiceAccount a `kubernetes.io/service-account-token` Secret belongs to (name, uid);
/// - Helm's `helm.sh/resource-policy` (`keep`) and hook annotations (hook names, a weight,
///   deletion policies);
/// - cert-manager's owner of a certificate Secret: the Certificate's name and its issuer's name,
///   kind and group.
pub const SECRET_ALLOWED: &[&str] = &[
    HELM_RELEASE,
    HELM_RELEASE_NAMESPACE,
    HELM_CHART,
    "kubernetes.io/service-account.name",
    "kubernetes.io/service-account.uid",
    "helm.sh/resource-policy",
    "helm.sh/hook",
    "helm.sh/hook-weight",
    "helm.sh/hook-delete-policy",
    "cert-manager.io/certificate-name",
    "cert-manager.io/issuer-name",
    "cert-manager.io/issuer-kind",
    "cert-manager.io/issuer-group",
];

/// Annotation keys whose value is a whole object (or a diff of one), dropped on every kind; the
/// keys a [`WHOLE_OBJECT_SUFFIXES`] entry covers are not repeated here.
pub const WHOLE_OBJECT: &[&str] = &[
    // kapp (Carvel): the applied manifest, and the debugging diffs against it
    // (carvel-dev/kapp pkg/kapp/diff/resource_with_history.go; docs/diff.md).
    "kapp.k14s.io/original",
    "kapp.k14s.io/original-diff",
    "kapp.k14s.io/original-diff-full",
    // Rancher wrangler's apply (Fleet, k3s and RKE2 add-ons): the applied object, gzipped and
    // base64-encoded (rancher/wrangler pkg/apply/patch.go, `LabelApplied`).
    "objectset.rio.cattle.io/applied",
    // Cluster API's conversion webhooks: the object as the other API version holds it, for a
    // lossless round trip (sigs.k8s.io/cluster-api util/conversion, `DataAnnotation`).
    "cluster.x-k8s.io/conversion-data",
];

/// Key suffixes whose value is a whole object under a tool's own prefix, dropped on every kind:
/// - `/last-applied-configuration`: kubectl's client-side apply
///   (`kubectl.kubernetes.io/last-applied-configuration`, also what Argo CD, Pulumi and
///   Spinnaker run) and the tools that keep a copy of it under their own prefix (kubecfg's
///   `kubecfg.ksonnet.io/`, gzipped; KubeVela's `app.oam.dev/`; Kubekit's `kubekit/`);
/// - `/last-applied`: k8s-objectmatcher's patch annotation (Banzai Cloud / cisco-open, used by the
///   Kafka, Istio, Vault, CockroachDB and Seldon operators), `banzaicloud.com/last-applied` by
///   default and the operator's own prefix otherwise (`crdb.io/`, `seldon.io/`); zipped and
///   base64-encoded;
/// - `/last-handled-configuration`: kopf's diff base, the handled object's essence
///   (`kopf.zalando.org/` by default; nolar/kopf `AnnotationsDiffBaseStorage`);
/// - `/original-configuration`: Flagger's copy of the spec of the object it takes over
///   (`flagger.kubernetes.io/`).
pub const WHOLE_OBJECT_SUFFIXES: &[&str] = &[
    "/last-applied-configuration",
    "/last-applied",
    "/last-handled-configuration",
    "/original-configuration",
];

/// Top-level fields that make a JSON object value an object, or a part of one (its metadata,
/// spec or a Secret's or ConfigMap's data).
pub const OBJECT_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "data",
    "stringData",
    "binaryData",
];

/// Annotation keys dropped as large and noisy (they change often and say little).
pub const NOISY: &[&str] = &[
    "deployment.kubernetes.io/revision-history",
    "control-plane.alpha.kubernetes.io/leader",
];

/// The longest annotation value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 512;

/// Whether an annotation of an object of `kind` is kept (see the module doc for the rules).
pub fn keep(kind: &Kind, key: &str, value: &str) -> bool {
    if *kind == Kind::Secret && !SECRET_ALLOWED.contains(&key) {
        return false;
    }
    !WHOLE_OBJECT.contains(&key)
        && !WHOLE_OBJECT_SUFFIXES.iter().any(|s| key.ends_with(s))
        && !NOISY.contains(&key)
        && value.len() <= MAX_VALUE_BYTES
        && !looks_like_an_object(value)
}

/// How base64 of a compressed stream starts (the encoding of its magic bytes): gzip (`H4sI`, as
/// wrangler and kubecfg store manifests), zip (`UEsDB`, as k8s-objectmatcher does) and zstd
/// (`KLUv/`).
const PACKED_PREFIXES: &[&str] = &["H4sI", "UEsDB", "KLUv/"];

/// Whether a value looks like a serialized object: a JSON object with a top-level field of
/// [`OBJECT_FIELDS`], a YAML manifest, or base64 of a compressed stream ([`PACKED_PREFIXES`]).
fn looks_like_an_object(value: &str) -> bool {
    let v = value.trim_start();
    if PACKED_PREFIXES.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    if v.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(v) {
            return OBJECT_FIELDS.iter().any(|f| map.contains_key(*f));
        }
        return false;
    }
    let yaml_key = |name: &str| v.lines().any(|l| l.starts_with(name));
    yaml_key("apiVersion:") && yaml_key("kind:")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANTED: &str = "hunter2-planted";

    fn manifest() -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"s"}},"stringData":{{"password":"{PLANTED}"}}}}"#
        )
    }

    #[test]
    fn secrets_keep_only_the_allowlist() {
        for key in SECRET_ALLOWED {
            assert!(keep(&Kind::Secret, key, "shop"), "{key}");
        }
        for key in [
            "note",
            "owner",
            "example.com/anything",
            "kubernetes.io/description",
        ] {
            assert!(!keep(&Kind::Secret, key, "harmless"), "{key}");
            assert!(keep(&Kind::ConfigMap, key, "harmless"), "{key}");
        }
    }

    #[test]
    fn allowlisted_secret_keys_still_pass_the_value_rules() {
        assert!(!keep(&Kind::Secret, HELM_RELEASE, &manifest()));
        assert!(!keep(
            &Kind::Secret,
            HELM_RELEASE,
            &"x".repeat(MAX_VALUE_BYTES + 1)
        ));
    }

    /// The keys deployers are known to keep whole objects under.
    const KNOWN: &[&str] = &[
        "kubectl.kubernetes.io/last-applied-configuration",
        "kapp.k14s.io/original",
        "kapp.k14s.io/original-diff",
        "banzaicloud.com/last-applied",
        "crdb.io/last-applied",
        "objectset.rio.cattle.io/applied",
        "kubecfg.ksonnet.io/last-applied-configuration",
        "app.oam.dev/last-applied-configuration",
        "kopf.zalando.org/last-handled-configuration",
        "flagger.kubernetes.io/original-configuration",
        "cluster.x-k8s.io/conversion-data",
    ];

    #[test]
    fn whole_object_keys_are_dropped_on_every_kind() {
        for kind in [Kind::Secret, Kind::ConfigMap, Kind::Deployment, Kind::Pod] {
            for key in KNOWN.iter().chain(WHOLE_OBJECT).chain(NOISY) {
                assert!(!keep(&kind, key, "short"), "{kind} {key}");
            }
        }
    }

    #[test]
    fn whole_object_suffixes_are_dropped_under_any_prefix() {
        for key in [
            "airflow.example.com/last-handled-configuration",
            "kubernetes.crossplane.io/last-applied-configuration",
            "example.com/last-applied",
        ] {
            assert!(!keep(&Kind::ConfigMap, key, "v2"), "{key}");
        }
        assert!(keep(&Kind::ConfigMap, "example.com/last-applied-at", "v2"));
    }

    #[test]
    fn values_that_are_objects_are_dropped_under_any_key() {
        let yaml = format!("apiVersion: v1\nkind: Secret\nstringData:\n  password: {PLANTED}\n");
        for value in [
            manifest(),
            format!("  {{\"kind\":\"ConfigMap\",\"data\":{{\"k\":\"{PLANTED}\"}}}}"),
            format!("{{\"stringData\":{{\"password\":\"{PLANTED}\"}}}}"),
            format!("{{\"spec\":{{\"template\":{{\"env\":\"{PLANTED}\"}}}}}}"),
            yaml,
            "H4sIAAAAAAAA/4yRz47UMAyHXwX53JYpnamqSBxg".to_owned(),
            "UEsDBBQACAAIAAAAAAAAAAAAAAAAAAAAAAAIAAAA".to_owned(),
            "KLUv/QBYVQAAeyJraW5kIjoiU2VjcmV0In0=".to_owned(),
        ] {
            assert!(
                !keep(&Kind::ConfigMap, "example.com/manifest", &value),
                "{value}"
            );
        }
        // JSON that is not an object manifest, and text that mentions the words, are kept.
        for value in [
            r#"{"replicas":3}"#,
            r#"[{"kind":"x"}]"#,
            "{not json",
            "kind: of a note",
            "the apiVersion: field",
        ] {
            assert!(keep(&Kind::ConfigMap, "example.com/note", value), "{value}");
        }
    }

    #[test]
    fn long_values_are_dropped() {
        let at_limit = "x".repeat(MAX_VALUE_BYTES);
        assert!(keep(&Kind::Pod, "note", &at_limit));
        assert!(!keep(&Kind::Pod, "note", &format!("{at_limit}x")));
    }
}
