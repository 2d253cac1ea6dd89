//! Defaulting on every write, as the API server's `SetDefaults_*` functions do, for the fields
//! kubectl's printers and describers and the controllers rely on (a field already set is kept).
//!
//! Covered: workload specs (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob), pod
//! specs wherever they appear (Pods and the templates of the workloads), containers, Services,
//! Namespaces, Secrets and PersistentVolumeClaims. Not covered: values an admission plugin or a
//! controller would fill (a Pod's serviceAccountName, node assignment). A Service's clusterIP is
//! allocated by the store on create.

use serde_json::{Map, Value, json};

use crate::kinds::KindInfo;

/// Sets `obj[key]` to `value` when it is absent or null.
fn or_set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match obj.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            obj.insert(key.to_owned(), value);
        }
    }
}

/// The object at `obj[key]`, created empty when absent (None when it holds a non-object).
fn child<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    or_set(obj, key, json!({}));
    obj.get_mut(key).and_then(Value::as_object_mut)
}

/// The existing object at a JSON pointer, if any.
fn at<'a>(obj: &'a mut Value, pointer: &str) -> Option<&'a mut Map<String, Value>> {
    obj.pointer_mut(pointer).and_then(Value::as_object_mut)
}

/// Applies the defaults of `info`'s kind to `obj` in place.
pub fn apply(info: &KindInfo, obj: &mut Value) {
    match (info.group, info.kind) {
        ("", "Pod") => {
            if let Some(spec) = at(obj, "/spec") {
                pod_spec(spec);
            }
            if let Some(status) = obj.as_object_mut().and_then(|o| child(o, "status")) {
                or_set(status, "phase", json!("Pending"));
            }
        }
        ("", "Service") => {
            if let Some(spec) = at(obj, "/spec") {
                service_spec(spec);
            }
        }
        ("", "Namespace") => {
            if let Some(o) = obj.as_object_mut() {
                if let Some(spec) = child(o, "spec") {
                    or_set(spec, "finalizers", json!(["kubernetes"]));
                }
                if let Some(status) = child(o, "status") {
                    or_set(status, "phase", json!("Active"));
                }
            }
        }
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                or_set(o, "type", json!("Opaque"));
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = at(obj, "/spec") {
                or_set(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = obj.as_object_mut().and_then(|o| child(o, "status")) {
                or_set(status, "phase", json!("Pending"));
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = at(obj, "/spec") {
                deployment_spec(spec);
            }
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = at(obj, "/spec") {
                or_set(spec, "replicas", json!(1));
                workload_template(spec);
            }
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = at(obj, "/spec") {
                or_set(spec, "replicas", json!(1));
                or_set(spec, "podManagementPolicy", json!("OrderedReady"));
                or_set(spec, "revisionHistoryLimit", json!(10));
                or_set(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                or_set(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                workload_template(spec);
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = at(obj, "/spec") {
                or_set(spec, "revisionHistoryLimit", json!(10));
                or_set(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                workload_template(spec);
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = at(obj, "/spec") {
                job_spec(spec);
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = at(obj, "/spec") {
                or_set(spec, "concurrencyPolicy", json!("Allow"));
                or_set(spec, "suspend", json!(false));
                or_set(spec, "successfulJobsHistoryLimit", json!(3));
                or_set(spec, "failedJobsHistoryLimit", json!(1));
            }
            if let Some(spec) = at(obj, "/spec/jobTemplate/spec") {
                job_spec(spec);
            }
        }
        _ => {}
    }
}

fn deployment_spec(spec: &mut Map<String, Value>) {
    or_set(spec, "replicas", json!(1));
    or_set(spec, "revisionHistoryLimit", json!(10));
    or_set(spec, "progressDeadlineSeconds", json!(600));
    if let Some(strategy) = child(spec, "strategy") {
        or_set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type") == Some(&json!("RollingUpdate"))
            && let Some(ru) = child(strategy, "rollingUpdate")
        {
            or_set(ru, "maxUnavailable", json!("25%"));
            or_set(ru, "maxSurge", json!("25%"));
        }
    }
    workload_template(spec);
}

fn job_spec(spec: &mut Map<String, Value>) {
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    or_set(spec, "parallelism", json!(1));
    or_set(spec, "backoffLimit", json!(6));
    or_set(spec, "completionMode", json!("NonIndexed"));
    or_set(spec, "suspend", json!(false));
    or_set(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template_pod_spec(spec);
}

/// The pod spec of `spec.template`, if any.
fn template_pod_spec(spec: &mut Map<String, Value>) {
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod_spec(pod);
    }
}

/// A workload's selector (from the template's labels when absent) and its pod template.
fn workload_template(spec: &mut Map<String, Value>) {
    let labels = spec
        .get("template")
        .and_then(|t| t.pointer("/metadata/labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = labels {
        or_set(spec, "selector", json!({"matchLabels": labels}));
    }
    template_pod_spec(spec);
}

fn pod_spec(spec: &mut Map<String, Value>) {
    or_set(spec, "restartPolicy", json!("Always"));
    or_set(spec, "dnsPolicy", json!("ClusterFirst"));
    or_set(spec, "terminationGracePeriodSeconds", json!(30));
    or_set(spec, "schedulerName", json!("default-scheduler"));
    or_set(spec, "securityContext", json!({}));
    or_set(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in items.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    or_set(c, "terminationMessagePath", json!("/dev/termination-log"));
    or_set(c, "terminationMessagePolicy", json!("File"));
    or_set(c, "resources", json!({}));
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = if image_tag(image).is_none_or(|t| t == "latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    or_set(c, "imagePullPolicy", json!(policy));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            or_set(p, "protocol", json!("TCP"));
        }
    }
}

/// The tag of an image reference (`None` for an untagged or digest-only reference).
fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return Some("digest");
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

fn service_spec(spec: &mut Map<String, Value>) {
    or_set(spec, "type", json!("ClusterIP"));
    or_set(spec, "sessionAffinity", json!("None"));
    let external = spec.get("type") == Some(&json!("ExternalName"));
    if !external {
        or_set(spec, "ipFamilyPolicy", json!("SingleStack"));
        or_set(spec, "ipFamilies", json!(["IPv4"]));
        or_set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            or_set(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                or_set(p, "targetPort", port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::lookup;

    #[test]
    fn deployment_defaults() {
        let info = lookup("Deployment").expect("deploy");
        let mut d = json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
                                    {"name": "b", "image": "reg:5000/b:1.2"}]}}}});
        apply(info, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "a");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
        let mut kept = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        apply(info, &mut kept);
        assert_eq!(kept["spec"]["replicas"], 0);
        assert!(kept["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn service_defaults() {
        let info = lookup("Service").expect("svc");
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply(info, &mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    }
}
