//! Discovery: every resource the API server serves that can be listed and watched, outside the
//! table of built-in kinds, through kube's `Discovery` (aggregated when the server offers it,
//! else the legacy walk, one group at a time so one broken aggregated API costs only itself).

use astrolabe_model::{Kind, KindInfo};
use kube::Client;
use kube::core::GroupVersion;
use kube::discovery::{self, ApiCapabilities, ApiGroup, ApiResource, Discovery, Scope, verbs};

use crate::{Error, Result};

/// A kind the API server serves, outside the table, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The kind, with the version it is read at, its plural and scope.
    pub kind: Kind,
    /// Its resource, for dynamic `Api`s.
    pub resource: ApiResource,
}

impl Served {
    /// The served kind of `resource`, or `None` for a built-in kind (it has its typed watcher).
    pub fn new(resource: ApiResource, namespaced: bool) -> Option<Served> {
        let kind = Kind::discovered(&KindInfo {
            kind: resource.kind.as_str().into(),
            group: resource.group.as_str().into(),
            version: resource.version.as_str().into(),
            plural: resource.plural.as_str().into(),
            namespaced,
        });
        (!kind.is_watched()).then_some(Served { kind, resource })
    }

    /// Whether watching `self` instead of `other` needs a new watch (another version, plural or
    /// scope).
    pub fn differs(&self, other: &Served) -> bool {
        self.resource != other.resource || self.kind.is_namespaced() != other.kind.is_namespaced()
    }
}

/// What one discovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The listable and watchable kinds outside the table, each at its group's preferred
    /// version.
    pub served: Vec<Served>,
    /// Groups whose resources could not be read this time (an aggregated API server down): what
    /// an earlier discovery found of them still holds.
    pub failed_groups: Vec<String>,
}

/// Discovers the served kinds: aggregated discovery (two requests) when the server answers it,
/// else the legacy walk.
///
/// # Errors
/// [`Error::Discovery`] when the list of groups cannot be read.
pub async fn discover(client: &Client) -> Result<Discovered> {
    // A server without aggregated discovery answers with the legacy documents, which decode
    // as an empty aggregated list: without the core group, it was not aggregated.
    match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) if d.has_group(ApiGroup::CORE_GROUP) => {
            let served = d.groups().flat_map(group_served).collect();
            return Ok(Discovered {
                served,
                failed_groups: Vec::new(),
            });
        }
        Ok(_) => tracing::debug!("no aggregated discovery; walking the groups"),
        Err(err) => tracing::debug!(%err, "aggregated discovery failed; walking the groups"),
    }
    legacy(client).await
}

/// The legacy walk: one request per group, at its preferred version.
async fn legacy(client: &Client) -> Result<Discovered> {
    let groups = client.list_api_groups().await.map_err(Error::Discovery)?;
    let mut versions = vec![GroupVersion::gv(ApiGroup::CORE_GROUP, "v1")];
    for group in groups.groups {
        let preferred = group
            .preferred_version
            .map(|v| v.version)
            .or_else(|| group.versions.first().map(|v| v.version.clone()));
        if let Some(version) = preferred {
            versions.push(GroupVersion::gv(&group.name, &version));
        }
    }
    let mut out = Discovered::default();
    for gv in versions {
        match discovery::pinned_group(client, &gv).await {
            Ok(group) => out.served.extend(group_served(&group)),
            Err(err) => {
                tracing::warn!(group = %gv.group, version = %gv.version, %err, "discovering a group failed; kept as it was");
                out.failed_groups.push(gv.group);
            }
        }
    }
    Ok(out)
}

/// The listable and watchable kinds of `group` outside the table.
fn group_served(group: &ApiGroup) -> Vec<Served> {
    group
        .recommended_resources()
        .into_iter()
        .filter_map(|(ar, caps)| watchable(ar, &caps))
        .collect()
}

/// `resource` when it can be listed and watched and is not a built-in kind.
fn watchable(resource: ApiResource, caps: &ApiCapabilities) -> Option<Served> {
    let ok = caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::WATCH);
    ok.then(|| Served::new(resource, caps.scope == Scope::Namespaced))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn caps(verbs: &[&str], scope: Scope) -> ApiCapabilities {
        ApiCapabilities {
            scope,
            subresources: Vec::new(),
            operations: verbs.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn only_listable_watchable_kinds_outside_the_table() {
        let lw = caps(&["list", "watch", "get"], Scope::Namespaced);
        let s = watchable(ar("", "v1", "Endpoints", "endpoints"), &lw).expect("served");
        assert_eq!(s.kind.qualified(), "Endpoints");
        assert_eq!(s.kind.plural(), "endpoints");
        assert!(s.kind.is_namespaced());
        let cluster = caps(&["list", "watch"], Scope::Cluster);
        let issuer = watchable(
            ar("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers"),
            &cluster,
        )
        .expect("served");
        assert!(!issuer.kind.is_namespaced());
        assert_eq!(issuer.kind.api_version(), "cert-manager.io/v1");
        assert!(
            watchable(ar("", "v1", "Pod", "pods"), &lw).is_none(),
            "typed"
        );
        let create_only = caps(&["create"], Scope::Namespaced);
        assert!(watchable(ar("", "v1", "Binding", "bindings"), &create_only).is_none());
        let list_only = caps(&["list"], Scope::Namespaced);
        assert!(watchable(ar("x.io", "v1", "X", "xs"), &list_only).is_none());
    }

    #[test]
    fn a_new_version_is_a_new_watch() {
        let lw = caps(&["list", "watch"], Scope::Namespaced);
        let v1 = watchable(ar("x.io", "v1", "X", "xs"), &lw).expect("served");
        let v2 = watchable(ar("x.io", "v2", "X", "xs"), &lw).expect("served");
        assert_eq!(v1.kind, v2.kind, "one kind");
        assert!(v1.differs(&v2));
        assert!(!v1.differs(&v1.clone()));
    }
}
