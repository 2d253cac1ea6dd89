//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>` and the APIResourceLists.

use serde_json::{Value, json};

use crate::kinds::{KINDS, KindInfo, group_versions};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Kinds kubectl shows for `get all`.
fn categories(info: &KindInfo) -> Value {
    match info.kind {
        "Pod"
        | "Service"
        | "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "CronJob"
        | "HorizontalPodAutoscaler" => json!(["all"]),
        _ => json!([]),
    }
}

/// `GET /version`.
#[must_use]
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-astrolabe-kubesim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `GET /api`.
#[must_use]
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis`.
#[must_use]
pub fn groups() -> Value {
    let mut names: Vec<&str> = Vec::new();
    for (g, _) in group_versions() {
        if !g.is_empty() && !names.contains(&g) {
            names.push(g);
        }
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": names.into_iter().map(group_json).collect::<Vec<_>>()})
}

/// `GET /apis/<group>`, or None for an unknown group.
#[must_use]
pub fn group(group: &str) -> Option<Value> {
    KINDS
        .iter()
        .any(|k| k.group == group && !group.is_empty())
        .then(|| {
            let mut g = group_json(group);
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`, or None for an unknown group version.
#[must_use]
pub fn resources(group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&KindInfo> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut resources: Vec<Value> = Vec::new();
    for k in kinds {
        resources.push(json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": VERBS,
            "shortNames": k.short_names,
            "categories": categories(k),
        }));
        // Subresources, which kubectl looks up here (`autoscale` needs `scale`).
        resources.push(json!({
            "name": format!("{}/status", k.plural),
            "singularName": "",
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": ["get", "patch", "update"],
        }));
        if k.scalable() {
            resources.push(json!({
                "name": format!("{}/scale", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        assert_eq!(groups()["groups"].as_array().map(Vec::len), Some(9));
        let core = resources("", "v1").expect("core");
        assert!(
            core["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["name"] == "pods"))
        );
        assert!(resources("apps", "v2").is_none());
        let apps = resources("apps", "v1").expect("apps");
        assert!(apps["resources"].as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["name"] == "deployments/scale" && x["kind"] == "Scale")
        }));
        assert_eq!(
            group("apps").expect("apps")["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert!(group("").is_none());
    }
}
