//! The namespace controller: every namespace gets the `default` ServiceAccount and the
//! `kube-root-ca.crt` ConfigMap; a Terminating namespace (see [`super::gc::delete`]) loses its
//! objects, then goes away itself.

use serde_json::json;

use super::{Cx, is_deleting, name_of};
use crate::kinds::{KINDS, KindInfo};
use crate::store::State;

/// The ConfigMap holding the cluster's CA in every namespace.
pub const ROOT_CA: &str = "kube-root-ca.crt";

/// A placeholder CA certificate: the emulator serves plain HTTP and signs nothing.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nQXN0cm9sYWJlIGVtdWxhdG9yIENBIChwbGFjZWhvbGRlcik=\n-----END CERTIFICATE-----\n";

/// Creates what a namespace must hold; finishes the deletion of Terminating ones.
pub(crate) fn reconcile(cx: &mut Cx) {
    for ns in cx.list("Namespace") {
        let name = name_of(&ns).to_owned();
        if is_deleting(&ns) {
            finish_deletion(cx, &name);
            continue;
        }
        if cx.get("ServiceAccount", &name, "default").is_none() {
            cx.create(
                "ServiceAccount",
                json!({"metadata": {"name": "default", "namespace": name}}),
            );
        }
        if cx.get("ConfigMap", &name, ROOT_CA).is_none() {
            cx.create(
                "ConfigMap",
                json!({"metadata": {"name": ROOT_CA, "namespace": name, "annotations": {
                    "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
                }}, "data": {"ca.crt": CA_PEM}}),
            );
        }
    }
}

/// Every namespaced kind served now: the built-in ones, then those of CRDs.
pub(crate) fn namespaced_kinds(state: &State) -> Vec<&'static KindInfo> {
    KINDS
        .iter()
        .chain(state.custom.stores().map(|s| s.storage))
        .filter(|k| k.namespaced)
        .collect()
}

/// Deletes every object in `ns`; deletes `ns` once it is empty.
fn finish_deletion(cx: &mut Cx, ns: &str) {
    let mut state = cx.sim.inner.state.lock();
    let mut doomed = Vec::new();
    for info in namespaced_kinds(&state) {
        if let Ok(ks) = state.kind(info) {
            let key = (ns.to_owned(), String::new());
            doomed.extend(
                ks.objects
                    .range(key..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|((_, name), _)| (info, name.clone())),
            );
        }
    }
    let mut writes = 0;
    for (info, name) in &doomed {
        if state.delete(info, ns, name).is_ok() {
            writes += 1;
        }
    }
    if doomed.is_empty() && state.delete(&crate::store::NAMESPACE, "", ns).is_ok() {
        writes += 1;
    }
    drop(state);
    cx.writes += writes;
}
