//! The StatefulSet controller: Pods `<set>-0` … `<set>-(n-1)` created in order, each only once
//! the previous one is Ready, and removed from the highest ordinal down; a PersistentVolumeClaim
//! `<claim>-<set>-<i>` per `volumeClaimTemplates` entry and ordinal, mounted by that Pod's volume
//! of the same name. Template changes are not rolled out to existing Pods.

use serde_json::{Value, json};

use super::replicaset::live_pods;
use super::{
    Cx, canonical, is_deleting, name_of, ns_of, pod_from_template, pod_ready, replicas, set_status,
    short_hash, str_at,
};

/// Syncs every StatefulSet.
pub(crate) fn reconcile(cx: &mut Cx) {
    for sts in cx.list("StatefulSet") {
        if !is_deleting(&sts) {
            sync(cx, &sts);
        }
    }
}

fn ordinal(set: &str, pod: &Value) -> Option<i64> {
    name_of(pod)
        .strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The claim of template `t` for ordinal `i`.
fn claim(sts: &Value, t: &Value, i: i64) -> Value {
    let claim_name = format!("{}-{}-{i}", str_at(t, "/metadata/name"), name_of(sts));
    let labels = sts
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name, "namespace": ns_of(sts), "labels": labels},
        "spec": t.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Pod `i` of `sts`, with its claims mounted.
fn pod(sts: &Value, templates: &[Value], i: i64, revision: &str) -> Value {
    let set = name_of(sts);
    let name = format!("{set}-{i}");
    let template = sts
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let index = i.to_string();
    let labels = [
        ("statefulset.kubernetes.io/pod-name", name.as_str()),
        ("apps.kubernetes.io/pod-index", index.as_str()),
        ("controller-revision-hash", revision),
    ];
    let mut pod = pod_from_template(sts, &template, &name, &labels);
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("hostname".into(), json!(name));
        if let Some(svc) = sts.pointer("/spec/serviceName").and_then(Value::as_str) {
            spec.insert("subdomain".into(), json!(svc));
        }
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if !volumes.is_array() {
            *volumes = json!([]);
        }
        if let Some(volumes) = volumes.as_array_mut() {
            for t in templates {
                let vname = str_at(t, "/metadata/name");
                volumes.retain(|v| str_at(v, "/name") != vname);
                volumes.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": format!("{vname}-{set}-{i}")}}));
            }
        }
    }
    pod
}

fn sync(cx: &mut Cx, sts: &Value) {
    let (ns, set) = (ns_of(sts).to_owned(), name_of(sts).to_owned());
    let want = replicas(sts).max(0);
    let templates: Vec<Value> = sts
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let revision = format!(
        "{set}-{}",
        short_hash(
            &canonical(sts.pointer("/spec/template").unwrap_or(&Value::Null)),
            10
        )
    );
    let (mut pods, _) = live_pods(cx, sts);
    pods.sort_by_key(|p| ordinal(&set, p).unwrap_or(i64::MAX));
    // Scale down from the highest ordinal.
    for p in pods.iter().rev() {
        if ordinal(&set, p).is_none_or(|o| o >= want) {
            cx.delete("Pod", &ns, name_of(p));
        }
    }
    pods.retain(|p| ordinal(&set, p).is_some_and(|o| o < want));
    for i in 0..want {
        for t in &templates {
            let c = claim(sts, t, i);
            if cx.get("PersistentVolumeClaim", &ns, name_of(&c)).is_none() {
                cx.create("PersistentVolumeClaim", c);
            }
        }
        match pods.iter().find(|p| ordinal(&set, p) == Some(i)) {
            Some(p) if pod_ready(p) => {}
            Some(_) => break,
            None => {
                if let Some(created) = cx.create("Pod", pod(sts, &templates, i, &revision)) {
                    let msg = format!(
                        "create Pod {} in StatefulSet {set} successful",
                        name_of(&created)
                    );
                    cx.event(sts, "statefulset-controller", "SuccessfulCreate", &msg);
                }
                break;
            }
        }
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let generation = sts
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let status = json!({
        "observedGeneration": generation,
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": pods.len(),
        "updatedReplicas": pods.len(),
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    cx.modify("StatefulSet", &ns, &set, |o| set_status(o, status));
}
