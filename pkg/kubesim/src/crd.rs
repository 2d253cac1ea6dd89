//! CustomResourceDefinitions: what a CRD serves (its names, scope and versions), the defaults the
//! API server sets on its spec, and the status it reports once the names are accepted.
//!
//! Names are accepted at once (there is no naming controller): every stored CRD is
//! `NamesAccepted` and `Established`, and its served versions are servable as soon as the write
//! that stored it returns ([`crate::registry`]). Only the fields serving needs are checked;
//! `openAPIV3Schema` is kept but not enforced.

use serde_json::{Map, Value, json};

use crate::error::{Result, SimError};

/// One entry of `spec.versions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrdVersion {
    /// `name`, e.g. `v1`.
    pub name: String,
    /// `served`.
    pub served: bool,
    /// `storage`: exactly one version is stored.
    pub storage: bool,
    /// Whether `subresources.status` is declared.
    pub status: bool,
}

/// The parts of a CRD's spec that decide what is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrdSpec {
    /// `spec.group`.
    pub group: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// `spec.names.singular` (defaults to the lowercase kind).
    pub singular: String,
    /// `spec.names.listKind` (defaults to the kind + `List`).
    pub list_kind: String,
    /// `spec.names.shortNames`.
    pub short_names: Vec<String>,
    /// `spec.names.categories`.
    pub categories: Vec<String>,
    /// `spec.scope == Namespaced`.
    pub namespaced: bool,
    /// `spec.versions`.
    pub versions: Vec<CrdVersion>,
}

impl CrdSpec {
    /// The storage version.
    pub(crate) fn storage(&self) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.storage)
    }
}

fn invalid(name: &str, why: &str) -> SimError {
    SimError::Invalid(format!(
        "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {why}"
    ))
}

/// The strings of a JSON array (empty when `v` is not one).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `s` is a DNS-1123 label (lowercase alphanumerics and `-`, alphanumeric at both ends).
fn dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// Reads and checks the serving parts of a CRD.
///
/// # Errors
/// [`SimError::Invalid`] when the name is not `<plural>.<group>`, a name is missing or malformed,
/// the scope is unknown, or the versions do not have exactly one storage version.
pub(crate) fn parse(obj: &Value) -> Result<CrdSpec> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = obj
        .get("spec")
        .ok_or_else(|| invalid(name, "spec: Required value"))?;
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let group = text("/group");
    if group.is_empty() || !group.contains('.') || !group.split('.').all(dns_label) {
        return Err(invalid(
            name,
            "spec.group: Invalid value: should be a domain with at least one dot",
        ));
    }
    let kind = text("/names/kind");
    if kind.is_empty() || !kind.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(invalid(name, "spec.names.kind: Required value"));
    }
    let plural = text("/names/plural");
    if !dns_label(plural) {
        return Err(invalid(name, "spec.names.plural: Invalid value"));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            name,
            "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let singular = match text("/names/singular") {
        "" => kind.to_ascii_lowercase(),
        s => s.to_owned(),
    };
    let list_kind = match text("/names/listKind") {
        "" => format!("{kind}List"),
        s => s.to_owned(),
    };
    let namespaced = match text("/scope") {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(invalid(
                name,
                &format!(
                    "spec.scope: Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
                ),
            ));
        }
    };
    let versions: Vec<CrdVersion> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .map(|v| CrdVersion {
                    name: v
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
                    storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
                    status: v.pointer("/subresources/status").is_some(),
                })
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() || versions.iter().any(|v| !dns_label(&v.name)) {
        return Err(invalid(
            name,
            "spec.versions: Invalid value: must have at least one version, each with a name",
        ));
    }
    if versions.iter().filter(|v| v.storage).count() != 1 {
        return Err(invalid(
            name,
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        ));
    }
    Ok(CrdSpec {
        group: group.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
        singular,
        list_kind,
        short_names: strings(spec.pointer("/names/shortNames")),
        categories: strings(spec.pointer("/names/categories")),
        namespaced,
        versions,
    })
}

/// The condition `ty` of `status`, True, keeping its `lastTransitionTime` when it was True already.
fn condition(old: Option<&Value>, ty: &str, reason: &str, message: &str, now: &str) -> Value {
    let since = old
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.get("type") == Some(&json!(ty)) && c.get("status") == Some(&json!("True"))
            })
        })
        .and_then(|c| c.get("lastTransitionTime"))
        .cloned()
        .unwrap_or_else(|| json!(now));
    json!({"type": ty, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message})
}

/// Sets the defaults of `spec` on `obj` (`names.singular`, `names.listKind`,
/// `conversion.strategy`) and its status: `NamesAccepted` and `Established`, the accepted names
/// and the stored versions (those of `old_status` plus the storage version).
pub(crate) fn accept(obj: &mut Value, spec: &CrdSpec, old_status: Option<&Value>, now: &str) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(names) = map
        .get_mut("spec")
        .and_then(|s| s.get_mut("names"))
        .and_then(Value::as_object_mut)
    {
        names.insert("singular".into(), json!(spec.singular));
        names.insert("listKind".into(), json!(spec.list_kind));
    }
    if let Some(s) = map.get_mut("spec").and_then(Value::as_object_mut) {
        s.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
    let mut stored = strings(old_status.and_then(|s| s.get("storedVersions")));
    if let Some(v) = spec.storage()
        && !stored.contains(&v.name)
    {
        stored.push(v.name.clone());
    }
    let mut accepted = Map::new();
    accepted.insert("plural".into(), json!(spec.plural));
    accepted.insert("singular".into(), json!(spec.singular));
    accepted.insert("kind".into(), json!(spec.kind));
    accepted.insert("listKind".into(), json!(spec.list_kind));
    if !spec.short_names.is_empty() {
        accepted.insert("shortNames".into(), json!(spec.short_names));
    }
    if !spec.categories.is_empty() {
        accepted.insert("categories".into(), json!(spec.categories));
    }
    map.insert(
        "status".into(),
        json!({
            "conditions": [
                condition(old_status, "NamesAccepted", "NoConflicts", "no conflicts found", now),
                condition(old_status, "Established", "InitialNamesAccepted", "the initial names have been accepted", now),
            ],
            "acceptedNames": accepted,
            "storedVersions": stored,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, scope: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"group": "cert-manager.io", "scope": scope,
            "names": {"kind": "Certificate", "plural": "certificates", "shortNames": ["cert"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "subresources": {"status": {}}}]}})
    }

    #[test]
    fn parses_and_accepts() {
        let mut obj = crd("certificates.cert-manager.io", "Namespaced");
        let spec = parse(&obj).expect("valid");
        assert_eq!(spec.singular, "certificate");
        assert!(spec.namespaced && spec.versions[0].status);
        accept(&mut obj, &spec, None, "2026-01-01T00:00:00Z");
        assert_eq!(obj["spec"]["names"]["listKind"], "CertificateList");
        assert_eq!(obj["status"]["conditions"][1]["type"], "Established");
        assert_eq!(obj["status"]["conditions"][1]["status"], "True");
        assert_eq!(
            obj["status"]["acceptedNames"]["shortNames"],
            json!(["cert"])
        );
        assert_eq!(obj["status"]["storedVersions"], json!(["v1"]));
        let status = obj["status"].clone();
        accept(&mut obj, &spec, Some(&status), "2027-01-01T00:00:00Z");
        assert_eq!(
            obj["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn refuses_what_cannot_be_served() {
        assert!(parse(&crd("certs.cert-manager.io", "Namespaced")).is_err());
        assert!(parse(&crd("certificates.cert-manager.io", "Global")).is_err());
        let mut two = crd("certificates.cert-manager.io", "Cluster");
        two["spec"]["versions"] = json!([{"name": "v1", "served": true, "storage": false}]);
        assert!(parse(&two).is_err());
    }
}
