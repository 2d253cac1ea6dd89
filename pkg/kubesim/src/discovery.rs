//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>` and the APIResourceLists
//! (legacy discovery), and the aggregated `APIGroupDiscoveryList` of `/api` and `/apis`
//! (`apidiscovery.k8s.io` v2 and v2beta1) for clients that ask for it in `Accept`.
//!
//! Each document is built from the built-in kinds and the custom kinds served at the moment
//! (the `custom` argument, from the store's registry).

use serde_json::{Value, json};

use crate::kinds::{KindInfo, group_versions, served};

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

const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];

/// The categories of a kind (built-in kinds in `all` are those kubectl shows for `get all`).
fn categories(info: &KindInfo) -> &'static [&'static str] {
    if info.custom || info.is_crd() {
        return info.categories;
    }
    match info.kind {
        "Pod"
        | "Service"
        | "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "CronJob"
        | "HorizontalPodAutoscaler" => &["all"],
        _ => &[],
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

fn group_json(group: &str, custom: &[&'static KindInfo]) -> Value {
    let versions: Vec<Value> = group_versions(custom)
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// The distinct named groups served, in order.
fn group_names(custom: &[&'static KindInfo]) -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for (g, _) in group_versions(custom) {
        if !g.is_empty() && !names.contains(&g) {
            names.push(g);
        }
    }
    names
}

/// `GET /apis`.
#[must_use]
pub fn groups(custom: &[&'static KindInfo]) -> Value {
    let groups: Vec<Value> = group_names(custom)
        .into_iter()
        .map(|g| group_json(g, custom))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, or None for an unknown group.
#[must_use]
pub fn group(group: &str, custom: &[&'static KindInfo]) -> Option<Value> {
    served(custom)
        .any(|k| k.group == group && !group.is_empty())
        .then(|| {
            let mut g = group_json(group, custom);
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`, or None for an unknown group version.
#[must_use]
pub fn resources(group: &str, version: &str, custom: &[&'static KindInfo]) -> Option<Value> {
    let kinds: Vec<&KindInfo> = served(custom)
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
        if k.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": SUBRESOURCE_VERBS,
            }));
        }
        if k.scalable() {
            resources.push(json!({
                "name": format!("{}/scale", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": SUBRESOURCE_VERBS,
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

/// The aggregated discovery versions a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregated {
    /// `apidiscovery.k8s.io/v2`.
    V2,
    /// `apidiscovery.k8s.io/v2beta1` (same shape).
    V2Beta1,
}

impl Aggregated {
    /// The aggregated form an `Accept` header asks for, in its order of preference, or None when
    /// it prefers the legacy documents (a plain media type comes first, or none is aggregated).
    #[must_use]
    pub fn from_accept(accept: &str) -> Option<Self> {
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            let has = |p: &str| params.contains(&p);
            if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
                if has("v=v2") {
                    return Some(Self::V2);
                }
                if has("v=v2beta1") {
                    return Some(Self::V2Beta1);
                }
            } else if params
                .first()
                .is_some_and(|m| m.contains("json") || *m == "*/*")
            {
                return None;
            }
        }
        None
    }

    fn version(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V2Beta1 => "v2beta1",
        }
    }

    /// The response's `Content-Type`, which clients check to tell aggregated from legacy.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::V2 => "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            Self::V2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
        }
    }

    /// The `APIGroupDiscoveryList` of `/api` (`core`: the core group) or of `/apis` (every named
    /// group), with each resource's scope, verbs, names, categories and subresources.
    #[must_use]
    pub fn document(self, core: bool, custom: &[&'static KindInfo]) -> Value {
        let groups = if core { vec![""] } else { group_names(custom) };
        let items: Vec<Value> = groups
            .into_iter()
            .map(|g| {
                let versions: Vec<Value> = group_versions(custom)
                    .into_iter()
                    .filter(|(group, _)| *group == g)
                    .map(|(_, v)| {
                        let resources: Vec<Value> = served(custom)
                            .filter(|k| k.group == g && k.version == v)
                            .map(resource_discovery)
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                let mut meta = json!({"creationTimestamp": null});
                if !g.is_empty() {
                    meta["name"] = json!(g);
                }
                json!({"metadata": meta, "versions": versions})
            })
            .collect();
        json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": format!("apidiscovery.k8s.io/{}", self.version()),
            "metadata": {},
            "items": items,
        })
    }
}

/// One resource of an aggregated discovery document.
fn resource_discovery(k: &KindInfo) -> Value {
    let gvk = |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
    let mut subresources = Vec::new();
    if k.status_subresource {
        subresources.push(json!({"subresource": "status",
            "responseKind": gvk(k.group, k.version, k.kind), "verbs": SUBRESOURCE_VERBS}));
    }
    if k.scalable() {
        subresources.push(json!({"subresource": "scale",
            "responseKind": gvk("autoscaling", "v1", "Scale"), "verbs": SUBRESOURCE_VERBS}));
    }
    let mut r = json!({
        "resource": k.plural,
        "responseKind": gvk(k.group, k.version, k.kind),
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": VERBS,
        "subresources": subresources,
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    let cats = categories(k);
    if !cats.is_empty() {
        r["categories"] = json!(cats);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        // The named groups, coordination.k8s.io (Leases) included.
        assert_eq!(groups(&[])["groups"].as_array().map(Vec::len), Some(11));
        let core = resources("", "v1", &[]).expect("core");
        assert!(
            core["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["name"] == "pods"))
        );
        assert!(resources("apps", "v2", &[]).is_none());
        let apps = resources("apps", "v1", &[]).expect("apps");
        assert!(apps["resources"].as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["name"] == "deployments/scale" && x["kind"] == "Scale")
        }));
        assert_eq!(
            group("apps", &[]).expect("apps")["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert!(group("", &[]).is_none());
    }
}

#[cfg(test)]
mod aggregated_tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let kube = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(Aggregated::from_accept(kube), Some(Aggregated::V2));
        assert_eq!(
            Aggregated::from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some(Aggregated::V2Beta1)
        );
        assert_eq!(Aggregated::from_accept("application/json, */*"), None);
        assert_eq!(Aggregated::from_accept(""), None);
    }

    #[test]
    fn documents() {
        let core = Aggregated::V2.document(true, &[]);
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        let pods = &core["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["resource"] == "pods").cloned())
            .expect("pods");
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["categories"], json!(["all"]));
        let apis = Aggregated::V2Beta1.document(false, &[]);
        assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(apis["items"].as_array().map(Vec::len), Some(11));
        let names: Vec<&Value> = apis["items"]
            .as_array()
            .map(|i| i.iter().map(|g| &g["metadata"]["name"]).collect())
            .unwrap_or_default();
        assert!(names.contains(&&json!("apps")), "{names:?}");
        assert!(
            !names.contains(&&json!("")),
            "the core group is served at /api"
        );
    }
}
