//! CustomResourceDefinitions after start: a watch on `apiextensions.k8s.io/v1`
//! `CustomResourceDefinition`s tells the supervisor which custom kinds are served, at which
//! version, as they are established, changed and deleted.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::Version;
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

use crate::discovery::Served;

/// What the CRD watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrdEvent {
    /// Every CRD, as a (re)list found them: CRD name and the kind it serves (`None`: not
    /// established, or no version served).
    Listed(Vec<(String, Option<Served>)>),
    /// One CRD was created or changed.
    Changed(String, Option<Served>),
    /// One CRD was deleted.
    Deleted(String),
}

/// The kind a CRD serves: its group, kind, plural and scope, read at its storage version when
/// that is served, else at the served version of highest priority; `None` until it is
/// `Established` or when no version is served.
pub fn served(crd: &CustomResourceDefinition) -> Option<Served> {
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if !established {
        return None;
    }
    let spec = &crd.spec;
    let served: Vec<_> = spec.versions.iter().filter(|v| v.served).collect();
    let version = served
        .iter()
        .find(|v| v.storage)
        .or_else(|| {
            served
                .iter()
                .max_by_key(|v| Version::parse(&v.name).priority())
        })?
        .name
        .clone();
    let resource = ApiResource {
        api_version: format!("{}/{version}", spec.group),
        group: spec.group.clone(),
        version,
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
    };
    let served = Served::new(resource, spec.scope == "Namespaced")?;
    // kubectl's other names for the kind, so that `kind=` parameters accept them too.
    let names = &spec.names;
    astrolabe_model::Kind::register_names(
        &served.kind,
        names
            .singular
            .iter()
            .chain(names.short_names.iter().flatten())
            .map(String::as_str),
    );
    Some(served)
}

/// Watches CRDs until `shutdown`, sending what changes to `tx`. Errors are retried with kube's
/// default backoff; a server that serves no CRDs (404) is retried quietly.
pub(crate) async fn watch(client: kube::Client, tx: Sender<CrdEvent>, shutdown: CancellationToken) {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut listing: Vec<(String, Option<Served>)> = Vec::new();
    let mut failing = false;
    loop {
        let item = tokio::select! {
            () = shutdown.cancelled() => return,
            item = stream.next() => item,
        };
        let event = match item {
            None => return,
            Some(Err(err)) => {
                if !failing {
                    tracing::debug!(%err, "watching CRDs failed; retrying with backoff");
                }
                failing = true;
                continue;
            }
            Some(Ok(event)) => event,
        };
        failing = false;
        let out = match event {
            watcher::Event::Init => {
                listing.clear();
                None
            }
            watcher::Event::InitApply(crd) => {
                listing.push((crd.name_any(), served(&crd)));
                None
            }
            watcher::Event::InitDone => Some(CrdEvent::Listed(std::mem::take(&mut listing))),
            watcher::Event::Apply(crd) => Some(CrdEvent::Changed(crd.name_any(), served(&crd))),
            watcher::Event::Delete(crd) => Some(CrdEvent::Deleted(crd.name_any())),
        };
        if let Some(out) = out
            && tx.send(out).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(
        versions: serde_json::Value,
        established: &str,
        scope: &str,
    ) -> CustomResourceDefinition {
        let value = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "certificates.cert-manager.io"},
            "spec": {
                "group": "cert-manager.io",
                "names": {"kind": "Certificate", "plural": "certificates", "singular": "certificate", "listKind": "CertificateList"},
                "scope": scope,
                "versions": versions,
            },
            "status": {"conditions": [{"type": "Established", "status": established}]},
        });
        serde_json::from_value(value).expect("a CRD")
    }

    fn v(name: &str, served: bool, storage: bool) -> serde_json::Value {
        serde_json::json!({"name": name, "served": served, "storage": storage})
    }

    #[test]
    fn an_established_crd_serves_its_kind_at_the_storage_version() {
        let c = crd(
            serde_json::json!([v("v1alpha2", true, false), v("v1", true, true)]),
            "True",
            "Namespaced",
        );
        let s = served(&c).expect("served");
        assert_eq!(s.kind.qualified(), "Certificate.cert-manager.io");
        assert_eq!(s.kind.api_version(), "cert-manager.io/v1");
        assert_eq!(s.resource.plural, "certificates");
        assert!(s.kind.is_namespaced());
        let cluster = crd(serde_json::json!([v("v1", true, true)]), "True", "Cluster");
        assert!(!served(&cluster).expect("served").kind.is_namespaced());
    }

    #[test]
    fn not_established_or_nothing_served_is_nothing() {
        let c = crd(
            serde_json::json!([v("v1", true, true)]),
            "False",
            "Namespaced",
        );
        assert_eq!(served(&c), None);
        let c = crd(
            serde_json::json!([v("v1", false, true)]),
            "True",
            "Namespaced",
        );
        assert_eq!(served(&c), None);
    }

    #[test]
    fn a_version_change_is_a_new_watch() {
        let before = crd(
            serde_json::json!([v("v1beta1", true, true), v("v1", true, false)]),
            "True",
            "Namespaced",
        );
        let after = crd(
            serde_json::json!([v("v1beta1", true, false), v("v1", true, true)]),
            "True",
            "Namespaced",
        );
        let (a, b) = (served(&before).expect("a"), served(&after).expect("b"));
        assert_eq!(a.resource.version, "v1beta1");
        assert_eq!(b.resource.version, "v1");
        assert!(a.differs(&b));
        // The storage version no longer served: the served version of highest priority.
        let moved = crd(
            serde_json::json!([
                v("v1alpha1", true, false),
                v("v1beta1", true, false),
                v("v1", false, true)
            ]),
            "True",
            "Namespaced",
        );
        assert_eq!(served(&moved).expect("served").resource.version, "v1beta1");
    }
}
