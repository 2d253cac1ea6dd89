//! The EndpointSlice controller: a Service with a selector gets one `discovery.k8s.io/v1`
//! EndpointSlice named `<service>-<5 chars>`, labelled `kubernetes.io/service-name` and owned by
//! the Service, listing the selected Pods that have an IP (ready or not, as `conditions` say),
//! with the Service's ports resolved to the Pods' target ports.

use serde_json::{Value, json};

use super::{
    Cx, is_deleting, name_of, ns_of, owner_ref, pod_finished, pod_ready, selects, short_hash,
    str_at, uid_of,
};

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The controller named in `endpointslice.kubernetes.io/managed-by`.
const MANAGER: &str = "endpointslice-controller.k8s.io";

/// The slice's port for a Service port: the named target port resolved in the first Pod that
/// declares it, else the number.
fn slice_port(port: &Value, pods: &[&Value]) -> Value {
    let number = port.get("port").cloned().unwrap_or(json!(0));
    let target = match port.get("targetPort") {
        Some(Value::Number(n)) => Value::Number(n.clone()),
        Some(Value::String(named)) => pods
            .iter()
            .flat_map(|p| {
                p.pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .find(|cp| str_at(cp, "/name") == named)
            .and_then(|cp| cp.get("containerPort").cloned())
            .unwrap_or(number),
        _ => number,
    };
    // Always named, "" for an unnamed Service port, as the real controller writes it (kubectl's
    // describe of a Service dereferences the name).
    json!({
        "name": port.get("name").cloned().unwrap_or(json!("")),
        "port": target,
        "protocol": port.get("protocol").cloned().unwrap_or(json!("TCP")),
    })
}

/// Syncs the EndpointSlice of every Service with a selector.
pub(crate) fn reconcile(cx: &mut Cx) {
    for svc in cx.list("Service") {
        let Some(selector) = svc
            .pointer("/spec/selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        else {
            continue;
        };
        if is_deleting(&svc) {
            continue;
        }
        let ns = ns_of(&svc).to_owned();
        let selector = json!({"matchLabels": selector});
        let pods = cx.list_in("Pod", &ns);
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                selects(&selector, p)
                    && !str_at(p, "/status/podIP").is_empty()
                    && !pod_finished(p)
                    && !is_deleting(p)
            })
            .map(|p| &**p)
            .collect();
        let endpoints: Vec<Value> = selected
            .iter()
            .map(|p| {
                let ready = pod_ready(p);
                json!({
                    "addresses": [str_at(p, "/status/podIP")],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                    "nodeName": str_at(p, "/spec/nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": name_of(p), "uid": uid_of(p)},
                })
            })
            .collect();
        let ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| slice_port(p, &selected))
            .collect();
        let name = format!("{}-{}", name_of(&svc), short_hash(name_of(&svc), 5));
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {SERVICE_NAME: name_of(&svc), "endpointslice.kubernetes.io/managed-by": MANAGER},
                "ownerReferences": [owner_ref(&svc)],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        });
        if cx.get("EndpointSlice", &ns, &name).is_some() {
            cx.modify("EndpointSlice", &ns, &name, |o| {
                for f in ["addressType", "endpoints", "ports"] {
                    if let (Some(m), Some(v)) = (o.as_object_mut(), slice.get(f)) {
                        m.insert(f.to_owned(), v.clone());
                    }
                }
            });
        } else {
            cx.create("EndpointSlice", slice);
        }
    }
}
