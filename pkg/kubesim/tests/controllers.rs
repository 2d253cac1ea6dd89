#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The emulator's controllers, through the library API and over HTTP with the real kubectl:
//! each test starts a served emulator with controllers and one Node, acts, and waits with
//! [`Sim::settle`] or a bounded poll.

mod common;

use std::time::Duration;

use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_testkit::Kubectl;
use common::{Served, fast_config};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(20);

/// A served emulator with controllers, the default namespaces, one Node and namespace `shop`.
async fn start() -> Served {
    let served = Served::start(SimConfig {
        controllers: true,
        default_namespaces: true,
        nodes: 1,
        ..fast_config()
    })
    .await;
    served
        .sim
        .create("Namespace", json!({"metadata": {"name": "shop"}}))
        .unwrap();
    astrolabe_testkit::until("controllers running", SETTLE, || {
        served.sim.controllers_running()
    })
    .await;
    settle(&served.sim).await;
    served
}

async fn settle(sim: &Sim) {
    sim.settle(SETTLE).await.unwrap();
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "shop"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
}

fn owned_by<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = &owner["metadata"]["uid"];
    items
        .iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| &r["uid"] == uid))
        })
        .collect()
}

fn pods_of(sim: &Sim, app: &str) -> Vec<Value> {
    sim.list_in("Pod", "shop")
        .unwrap()
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

#[tokio::test]
async fn settle_right_after_starting_the_controllers_waits_for_them() {
    // A library user (`astrolabe check`) on a current-thread runtime: the controllers' task has
    // not run yet when settle is called.
    let sim = Sim::new(SimConfig {
        controllers: true,
        default_namespaces: true,
        nodes: 1,
        ..fast_config()
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let _task = sim.start_controllers(stop.clone());
    let mut web = deployment("web", 2, "nginx");
    web["metadata"]["namespace"] = json!("default");
    sim.create("Deployment.apps", web).unwrap();
    sim.settle(SETTLE).await.unwrap();
    let pods = sim.list_in("Pod", "default").unwrap();
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(pods.iter().all(ready));
    stop.cancel();
}

#[tokio::test]
async fn settle_fails_without_controllers_and_returns_once_quiescent() {
    let bare = Sim::new(SimConfig::default());
    assert!(bare.settle(Duration::from_millis(50)).await.is_err());
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    let rv = sim.current_rv();
    assert_eq!(pods_of(sim, "web").len(), 2);
    assert!(pods_of(sim, "web").iter().all(ready));
    // Nothing changes once settled.
    settle(sim).await;
    assert_eq!(sim.current_rv(), rv);
}

#[tokio::test]
async fn deployment_gets_a_hashed_replicaset_and_its_pods() {
    let served = start().await;
    let sim = &served.sim;
    let d = sim
        .create("Deployment", deployment("web", 3, "nginx:1"))
        .unwrap();
    settle(sim).await;
    let rss = sim.list_in("ReplicaSet", "shop").unwrap();
    let rss = owned_by(&rss, &d);
    assert_eq!(rss.len(), 1);
    let rs = rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let pods = sim.list_in("Pod", "shop").unwrap();
    let pods = owned_by(&pods, rs);
    assert_eq!(pods.len(), 3);
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("web-{hash}-"))
                && name.len() == "web-".len() + hash.len() + 6,
            "{name}"
        );
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["spec"]["nodeName"], "node-1");
        assert!(ready(p));
    }
    let d = sim.get("Deployment", "shop", "web").unwrap();
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    let progressing = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
}

#[tokio::test]
async fn pod_names_are_deterministic() {
    let names = |sim: &Sim| {
        let mut n: Vec<String> = pods_of(sim, "web")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let a = start().await;
    a.sim
        .create("Deployment", deployment("web", 3, "nginx:1"))
        .unwrap();
    settle(&a.sim).await;
    let b = start().await;
    b.sim
        .create("Deployment", deployment("web", 3, "nginx:1"))
        .unwrap();
    settle(&b.sim).await;
    assert_eq!(names(&a.sim), names(&b.sim));
}

#[tokio::test]
async fn scaling_and_a_template_change_roll_and_undo_restores() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["replicas"] = json!(4)
    })
    .unwrap();
    settle(sim).await;
    assert_eq!(pods_of(sim, "web").len(), 4);
    let first = sim.list_in("ReplicaSet", "shop").unwrap();
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    })
    .unwrap();
    settle(sim).await;
    let rss = sim.list_in("ReplicaSet", "shop").unwrap();
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|r| r["metadata"]["name"] == first[0]["metadata"]["name"])
        .unwrap();
    let new = rss
        .iter()
        .find(|r| r["metadata"]["name"] != first[0]["metadata"]["name"])
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(new["spec"]["replicas"], 4);
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let pods = pods_of(sim, "web");
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
    );
    // The events show the rollout stepped (the scale-down of the old set took several steps).
    let scaled: Vec<String> = sim
        .list_in("Event", "shop")
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        scaled.iter().filter(|m| m.contains("down")).count() >= 2,
        "{scaled:?}"
    );

    // Undo: the old template again, as kubectl rollout undo writes it.
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1");
    })
    .unwrap();
    settle(sim).await;
    let old = sim
        .get(
            "ReplicaSet",
            "shop",
            first[0]["metadata"]["name"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 4);
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(sim.list_in("ReplicaSet", "shop").unwrap().len(), 2);
}

#[tokio::test]
async fn namespaces_get_the_default_serviceaccount_and_root_ca() {
    let served = start().await;
    let sim = &served.sim;
    for ns in ["default", "kube-system", "shop"] {
        sim.get("ServiceAccount", ns, "default").unwrap();
        let ca = sim.get("ConfigMap", ns, "kube-root-ca.crt").unwrap();
        assert!(
            ca["data"]["ca.crt"]
                .as_str()
                .unwrap()
                .contains("CERTIFICATE")
        );
    }
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_404() {
    let served = start().await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!(
            "{}/api/v1/namespaces/nowhere/configmaps",
            served.url()
        ))
        .json(&json!({"metadata": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["details"]["name"], "nowhere");
}

async fn delete(served: &Served, path: &str, policy: Option<&str>) -> reqwest::StatusCode {
    let mut req = reqwest::Client::new().delete(format!("{}{path}", served.url()));
    if let Some(p) = policy {
        req =
            req.json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": p}));
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    assert_eq!(delete(&served, "/api/v1/namespaces/shop", None).await, 200);
    let ns = sim.get("Namespace", "", "shop");
    // Terminating first (or already gone).
    if let Ok(ns) = ns {
        assert!(ns["metadata"]["deletionTimestamp"].is_string());
    }
    settle(sim).await;
    assert!(sim.get("Namespace", "", "shop").is_err());
    for kind in [
        "Deployment",
        "ReplicaSet",
        "Pod",
        "ServiceAccount",
        "ConfigMap",
        "Event",
    ] {
        assert!(sim.list_in(kind, "shop").unwrap().is_empty(), "{kind} left");
    }
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    assert_eq!(delete(&served, path, Some("Background")).await, 200);
    assert!(sim.get("Deployment", "shop", "web").is_err());
    settle(sim).await;
    assert!(sim.list_in("ReplicaSet", "shop").unwrap().is_empty());
    assert!(pods_of(sim, "web").is_empty());
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_dependents_are_gone() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    let before = sim.current_rv();
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    assert_eq!(delete(&served, path, Some("Foreground")).await, 200);
    settle(sim).await;
    assert!(sim.get("Deployment", "shop", "web").is_err());
    assert!(sim.list_in("ReplicaSet", "shop").unwrap().is_empty());
    assert!(pods_of(sim, "web").is_empty());
    // The Deployment's history: marked with the finalizer first, deleted last.
    let url = format!(
        "{}/apis/apps/v1/namespaces/shop/deployments?watch=1&resourceVersion={before}&timeoutSeconds=1",
        served.url()
    );
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let marked = events.iter().position(|e| {
        e["type"] == "MODIFIED"
            && e["object"]["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("foregroundDeletion")))
            && e["object"]["metadata"]["deletionTimestamp"].is_string()
    });
    let deleted = events.iter().position(|e| e["type"] == "DELETED");
    assert!(marked.is_some() && marked < deleted, "{body}");
}

#[tokio::test]
async fn orphan_deletion_leaves_dependents_without_the_reference() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    settle(sim).await;
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    assert_eq!(delete(&served, path, Some("Orphan")).await, 200);
    settle(sim).await;
    let rss = sim.list_in("ReplicaSet", "shop").unwrap();
    assert_eq!(rss.len(), 1);
    assert!(rss[0]["metadata"]["ownerReferences"].is_null());
    assert_eq!(pods_of(sim, "web").len(), 2);
}

#[tokio::test]
async fn scheduler_respects_node_selector_and_taints() {
    let served = start().await;
    let sim = &served.sim;
    let mut gpu = astrolabe_kubesim::controllers::node::ready_node("gpu-1");
    gpu["metadata"]["labels"]["gpu"] = json!("true");
    gpu["spec"]["taints"] = json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]);
    sim.create("Node", gpu).unwrap();
    let pod = |name: &str, spec: Value| {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "x"}]);
        json!({"metadata": {"name": name, "namespace": "shop"}, "spec": spec})
    };
    sim.create("Pod", pod("plain", json!({}))).unwrap();
    sim.create(
        "Pod",
        pod("wants-gpu", json!({"nodeSelector": {"gpu": "true"}})),
    )
    .unwrap();
    sim.create(
        "Pod",
        pod(
            "tolerates",
            json!({"nodeSelector": {"gpu": "true"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}),
        ),
    )
    .unwrap();
    sim.create(
        "Pod",
        pod("nowhere", json!({"nodeSelector": {"zone": "mars"}})),
    )
    .unwrap();
    settle(sim).await;
    let get = |n: &str| sim.get("Pod", "shop", n).unwrap();
    assert_eq!(get("plain")["spec"]["nodeName"], "node-1");
    assert_eq!(get("tolerates")["spec"]["nodeName"], "gpu-1");
    assert_eq!(get("tolerates")["status"]["phase"], "Running");
    for name in ["wants-gpu", "nowhere"] {
        let p = get(name);
        assert!(p["spec"]["nodeName"].is_null(), "{name} was scheduled");
        assert_eq!(p["status"]["phase"], "Pending");
        let cond = &p["status"]["conditions"][0];
        assert_eq!(
            (&cond["type"], &cond["status"], &cond["reason"]),
            (
                &json!("PodScheduled"),
                &json!("False"),
                &json!("Unschedulable")
            )
        );
    }
}

#[tokio::test]
async fn endpointslice_lists_the_ready_selected_pods() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 2, "nginx:1"))
        .unwrap();
    let svc = sim
        .create("Service", json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}))
        .unwrap();
    settle(sim).await;
    let slices = sim.list_in("EndpointSlice", "shop").unwrap();
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
    assert_eq!(
        slice["metadata"]["ownerReferences"][0]["uid"],
        svc["metadata"]["uid"]
    );
    assert_eq!(slice["ports"][0]["port"], 8080);
    let mut want: Vec<Value> = pods_of(sim, "web")
        .iter()
        .map(|p| p["status"]["podIP"].clone())
        .collect();
    let mut got: Vec<Value> = slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["addresses"][0].clone())
        .collect();
    want.sort_by_key(ToString::to_string);
    got.sort_by_key(ToString::to_string);
    assert_eq!(got, want);
    assert!(
        slice["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["conditions"]["ready"] == true)
    );
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["replicas"] = json!(1)
    })
    .unwrap();
    settle(sim).await;
    let slice = &sim.list_in("EndpointSlice", "shop").unwrap()[0];
    assert_eq!(slice["endpoints"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn statefulset_makes_ordered_pods_and_bound_claims() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("StorageClass", json!({"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "example.com/fast"})).unwrap();
    sim.create("PersistentVolume", json!({"metadata": {"name": "pre"}, "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "fast"}})).unwrap();
    let mut pods_seen: Vec<String> = Vec::new();
    sim.create("StatefulSet", json!({"metadata": {"name": "db", "namespace": "shop"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})).unwrap();
    // Ordered: while pod i is not Ready, pod i+1 does not exist.
    astrolabe_testkit::until("three db pods", SETTLE, || {
        let pods = pods_of(sim, "db");
        for p in &pods {
            let n = p["metadata"]["name"].as_str().unwrap().to_owned();
            if !pods_seen.contains(&n) {
                pods_seen.push(n);
            }
        }
        pods.len() == 3
    })
    .await;
    settle(sim).await;
    assert_eq!(pods_seen, ["db-0", "db-1", "db-2"]);
    for i in 0..3 {
        let pod = sim.get("Pod", "shop", &format!("db-{i}")).unwrap();
        assert!(ready(&pod));
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            format!("data-db-{i}")
        );
        let pvc = sim
            .get("PersistentVolumeClaim", "shop", &format!("data-db-{i}"))
            .unwrap();
        assert_eq!(pvc["status"]["phase"], "Bound", "{pvc}");
        let pv = sim
            .get(
                "PersistentVolume",
                "",
                pvc["spec"]["volumeName"].as_str().unwrap(),
            )
            .unwrap();
        assert_eq!(pv["status"]["phase"], "Bound");
        assert_eq!(pv["spec"]["claimRef"]["name"], format!("data-db-{i}"));
    }
    // The pre-made volume was used once; the others were provisioned as pvc-<uid>.
    let pvs = sim.list("PersistentVolume").unwrap();
    assert_eq!(pvs.len(), 3);
    assert_eq!(
        pvs.iter()
            .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with("pvc-"))
            .count(),
        2
    );
    let sts = sim.get("StatefulSet", "shop", "db").unwrap();
    assert_eq!(sts["status"]["readyReplicas"], 3);
}

#[tokio::test]
async fn job_runs_its_pods_to_completion() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Job", json!({"metadata": {"name": "once", "namespace": "shop"},
        "spec": {"completions": 3, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).unwrap();
    settle(sim).await;
    let job = sim.get("Job", "shop", "once").unwrap();
    assert_eq!(job["status"]["succeeded"], 3);
    assert_eq!(job["status"]["active"], 0);
    assert!(job["status"]["completionTime"].is_string());
    let complete = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Complete" && c["status"] == "True");
    assert!(complete, "{job}");
    let pods = sim.list_in("Pod", "shop").unwrap();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
}

#[tokio::test]
async fn pods_wait_for_the_start_delay() {
    let served = Served::start(SimConfig {
        controllers: true,
        default_namespaces: true,
        nodes: 1,
        pod_start_delay: Duration::from_millis(300),
        ..fast_config()
    })
    .await;
    let sim = &served.sim;
    astrolabe_testkit::until("controllers", SETTLE, || sim.controllers_running()).await;
    let start = std::time::Instant::now();
    sim.create("Pod", json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})).unwrap();
    settle(sim).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        sim.get("Pod", "default", "p").unwrap()["status"]["phase"],
        "Running"
    );
}

fn node(name: &str, labels: Value, taints: Value) -> Value {
    let mut n = astrolabe_kubesim::controllers::node::ready_node(name);
    for (k, v) in labels.as_object().unwrap() {
        n["metadata"]["labels"][k] = v.clone();
    }
    n["spec"]["taints"] = taints;
    n
}

fn daemonset(name: &str, pod_spec: Value) -> Value {
    let mut spec = pod_spec;
    spec["containers"] = json!([{"name": "agent", "image": "agent:1"}]);
    json!({"metadata": {"name": name, "namespace": "shop"},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
}

/// The Nodes of `app`'s Pods, sorted.
fn nodes_of(sim: &Sim, app: &str) -> Vec<String> {
    let mut nodes: Vec<String> = pods_of(sim, app)
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_owned())
        .collect();
    nodes.sort();
    nodes
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_admitting_node() {
    let served = start().await;
    let sim = &served.sim;
    let taint = json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]);
    sim.create("Node", node("ssd-1", json!({"disk": "ssd"}), json!([])))
        .unwrap();
    sim.create("Node", node("ssd-2", json!({"disk": "ssd"}), taint))
        .unwrap();
    // Wants ssd Nodes, tolerates nothing: ssd-1 only.
    let agent = sim
        .create(
            "DaemonSet",
            daemonset("agent", json!({"nodeSelector": {"disk": "ssd"}})),
        )
        .unwrap();
    // Tolerates the taint, selects nothing: every Node.
    sim.create(
        "DaemonSet",
        daemonset(
            "logs",
            json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
        ),
    )
    .unwrap();
    settle(sim).await;
    assert_eq!(nodes_of(sim, "agent"), ["ssd-1"]);
    assert_eq!(nodes_of(sim, "logs"), ["node-1", "ssd-1", "ssd-2"]);
    let pod = &pods_of(sim, "agent")[0];
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["uid"],
        agent["metadata"]["uid"]
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(ready(pod));
    assert!(
        pod["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unschedulable")
    );
    let logs = sim.get("DaemonSet", "shop", "logs").unwrap();
    for field in [
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "numberReady",
        "numberAvailable",
        "updatedNumberScheduled",
    ] {
        assert_eq!(logs["status"][field], 3, "{field}: {logs}");
    }
    assert_eq!(
        logs["status"]["observedGeneration"],
        logs["metadata"]["generation"]
    );
    let created = sim
        .list_in("Event", "shop")
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate" && e["involvedObject"]["kind"] == "DaemonSet")
        .count();
    assert_eq!(created, 4);

    // A new Node gets the daemons it admits; a Node that loses the label loses the agent; a
    // deleted Node's Pods go; a cordoned Node keeps its daemons.
    sim.create("Node", node("ssd-3", json!({"disk": "ssd"}), json!([])))
        .unwrap();
    settle(sim).await;
    assert_eq!(nodes_of(sim, "agent"), ["ssd-1", "ssd-3"]);
    assert_eq!(nodes_of(sim, "logs"), ["node-1", "ssd-1", "ssd-2", "ssd-3"]);
    sim.update("Node", "", "ssd-1", |n| {
        n["metadata"]["labels"]["disk"] = json!("hdd");
    })
    .unwrap();
    sim.update("Node", "", "ssd-3", |n| {
        n["spec"]["unschedulable"] = json!(true);
    })
    .unwrap();
    sim.delete("Node", "", "ssd-2").unwrap();
    settle(sim).await;
    assert_eq!(nodes_of(sim, "agent"), ["ssd-3"]);
    assert_eq!(nodes_of(sim, "logs"), ["node-1", "ssd-1", "ssd-3"]);
    let agent = sim.get("DaemonSet", "shop", "agent").unwrap();
    assert_eq!(agent["status"]["desiredNumberScheduled"], 1);
    assert_eq!(agent["status"]["numberReady"], 1);
}

#[tokio::test]
async fn daemonset_rolls_a_template_change_out() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Node", node("node-2", json!({}), json!([])))
        .unwrap();
    sim.create("DaemonSet", daemonset("logs", json!({})))
        .unwrap();
    settle(sim).await;
    let before: Vec<Value> = pods_of(sim, "logs");
    assert_eq!(before.len(), 2);
    sim.update("DaemonSet", "shop", "logs", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
    })
    .unwrap();
    settle(sim).await;
    let after = pods_of(sim, "logs");
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "agent:2" && ready(p))
    );
    assert_eq!(nodes_of(sim, "logs"), ["node-1", "node-2"]);
    let ds = sim.get("DaemonSet", "shop", "logs").unwrap();
    assert_eq!(ds["status"]["updatedNumberScheduled"], 2);
    assert_eq!(ds["status"]["numberAvailable"], 2);
}

fn cronjob(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["jobTemplate"] = json!({"metadata": {"labels": {"app": name}},
        "spec": {"template": {"metadata": {"labels": {"app": name}},
                              "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    json!({"metadata": {"name": name, "namespace": "shop"}, "spec": spec})
}

/// Yearly, so that real time does not reach a run while a test runs; the tests advance the
/// controllers' clock by [`YEAR`] instead.
const YEARLY: &str = "0 0 1 1 *";
const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);

fn jobs_of(sim: &Sim, cronjob: &str) -> Vec<Value> {
    let mut jobs: Vec<Value> = sim
        .list_in("Job", "shop")
        .unwrap()
        .into_iter()
        .filter(|j| j["metadata"]["ownerReferences"][0]["name"] == cronjob)
        .collect();
    jobs.sort_by_key(|j| j["metadata"]["name"].as_str().unwrap().to_owned());
    jobs
}

async fn advance(sim: &Sim, by: Duration) {
    sim.advance_clock(by);
    settle(sim).await;
}

#[tokio::test]
async fn cronjob_starts_one_job_per_due_schedule() {
    let served = start().await;
    let sim = &served.sim;
    let cj = sim
        .create(
            "CronJob",
            cronjob(
                "nightly",
                json!({"schedule": YEARLY, "successfulJobsHistoryLimit": 2}),
            ),
        )
        .unwrap();
    settle(sim).await;
    assert!(jobs_of(sim, "nightly").is_empty());

    advance(sim, YEAR).await;
    let jobs = jobs_of(sim, "nightly");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    let cj_now = sim.get("CronJob", "shop", "nightly").unwrap();
    let scheduled: jiff::Timestamp = cj_now["status"]["lastScheduleTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        job["metadata"]["name"],
        format!("nightly-{}", scheduled.as_second() / 60)
    );
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["uid"],
        cj["metadata"]["uid"]
    );
    assert_eq!(job["metadata"]["labels"]["app"], "nightly");
    // The Job ran (the emulated kubelet completes its Pods).
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(
        cj_now["status"]["lastSuccessfulTime"].is_string(),
        "{cj_now}"
    );
    assert_eq!(cj_now["status"]["active"], json!([]));

    // Three missed years start one Job, the latest.
    advance(sim, 3 * YEAR).await;
    let jobs = jobs_of(sim, "nightly");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let latest: jiff::Timestamp =
        sim.get("CronJob", "shop", "nightly").unwrap()["status"]["lastScheduleTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    assert!(latest.as_second() - scheduled.as_second() > 2 * 365 * 24 * 3600);
    assert_eq!(
        jobs[1]["metadata"]["name"],
        format!("nightly-{}", latest.as_second() / 60)
    );

    // The history limit (2) deletes the oldest finished Job.
    advance(sim, YEAR).await;
    let jobs = jobs_of(sim, "nightly");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(
        jobs.iter()
            .all(|j| j["metadata"]["name"] != job["metadata"]["name"])
    );
    let events = sim.list_in("Event", "shop").unwrap();
    let created = events
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate" && e["involvedObject"]["kind"] == "CronJob")
        .count();
    assert_eq!(created, 3);
}

#[tokio::test]
async fn cronjob_suspend_and_concurrency_policies() {
    let served = start().await;
    let sim = &served.sim;
    sim.create(
        "CronJob",
        cronjob("paused", json!({"schedule": YEARLY, "suspend": true})),
    )
    .unwrap();
    // Jobs that never finish: their Pods fit no Node.
    for (name, policy) in [
        ("allow", "Allow"),
        ("forbid", "Forbid"),
        ("replace", "Replace"),
    ] {
        let mut cj = cronjob(
            name,
            json!({"schedule": YEARLY, "concurrencyPolicy": policy}),
        );
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeSelector"] =
            json!({"zone": "mars"});
        sim.create("CronJob", cj).unwrap();
    }
    settle(sim).await;
    advance(sim, YEAR).await;
    let first = jobs_of(sim, "replace");
    assert_eq!(first.len(), 1);
    for name in ["allow", "forbid"] {
        assert_eq!(jobs_of(sim, name).len(), 1, "{name}");
        let cj = sim.get("CronJob", "shop", name).unwrap();
        assert_eq!(cj["status"]["active"].as_array().unwrap().len(), 1, "{cj}");
    }
    advance(sim, YEAR).await;
    assert!(jobs_of(sim, "paused").is_empty());
    assert!(sim.get("CronJob", "shop", "paused").unwrap()["status"]["lastScheduleTime"].is_null());
    assert_eq!(jobs_of(sim, "allow").len(), 2);
    assert_eq!(jobs_of(sim, "forbid").len(), 1);
    let replaced = jobs_of(sim, "replace");
    assert_eq!(replaced.len(), 1);
    assert_ne!(
        replaced[0]["metadata"]["name"],
        first[0]["metadata"]["name"]
    );
    let cj = sim.get("CronJob", "shop", "replace").unwrap();
    assert_eq!(
        cj["status"]["active"][0]["name"],
        replaced[0]["metadata"]["name"]
    );
}

fn hpa(name: &str, target: &str, min: i64, max: i64) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "minReplicas": min, "maxReplicas": max}})
}

fn condition_of<'a>(obj: &'a Value, ty: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or_else(|| panic!("no {ty} condition in {obj}"))
}

#[tokio::test]
async fn hpa_keeps_its_target_within_bounds_and_reports_it() {
    let served = start().await;
    let sim = &served.sim;
    sim.create("Deployment", deployment("web", 1, "nginx:1"))
        .unwrap();
    sim.create("Deployment", deployment("api", 6, "nginx:1"))
        .unwrap();
    sim.create("HorizontalPodAutoscaler", hpa("web", "web", 2, 4))
        .unwrap();
    sim.create("HorizontalPodAutoscaler", hpa("api", "api", 1, 3))
        .unwrap();
    sim.create("HorizontalPodAutoscaler", hpa("ghost", "nothing", 1, 3))
        .unwrap();
    settle(sim).await;
    assert_eq!(
        sim.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        2
    );
    assert_eq!(pods_of(sim, "web").len(), 2);
    assert_eq!(
        sim.get("Deployment", "shop", "api").unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(pods_of(sim, "api").len(), 3);
    let web = sim.get("HorizontalPodAutoscaler", "shop", "web").unwrap();
    assert_eq!(web["status"]["currentReplicas"], 2);
    assert_eq!(web["status"]["desiredReplicas"], 2);
    assert!(web["status"]["lastScaleTime"].is_string());
    assert_eq!(condition_of(&web, "AbleToScale")["status"], "True");
    let active = condition_of(&web, "ScalingActive");
    assert_eq!(
        (&active["status"], &active["reason"]),
        (&json!("False"), &json!("FailedGetResourceMetric"))
    );
    assert!(active["message"].as_str().unwrap().contains("no metrics"));
    assert_eq!(
        condition_of(&web, "ScalingLimited")["reason"],
        "DesiredWithinRange"
    );
    let ghost = sim.get("HorizontalPodAutoscaler", "shop", "ghost").unwrap();
    let able = condition_of(&ghost, "AbleToScale");
    assert_eq!(
        (&able["status"], &able["reason"]),
        (&json!("False"), &json!("FailedGetScale"))
    );
    let rescales: Vec<String> = sim
        .list_in("Event", "shop")
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "SuccessfulRescale")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rescales.len(), 2, "{rescales:?}");
    assert!(rescales.iter().any(|m| m.contains("New size: 2")));

    // Scaled by hand within the bounds: left alone; beyond them: back to the bound.
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["replicas"] = json!(3)
    })
    .unwrap();
    settle(sim).await;
    assert_eq!(
        sim.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(
        sim.get("HorizontalPodAutoscaler", "shop", "web").unwrap()["status"]["currentReplicas"],
        3
    );
    sim.update("Deployment", "shop", "web", |d| {
        d["spec"]["replicas"] = json!(9)
    })
    .unwrap();
    settle(sim).await;
    assert_eq!(
        sim.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        4
    );
}

// ---- the real kubectl ----

/// `kubectl -n shop <args>` (split at spaces), which must succeed.
async fn shop(k: &Kubectl, args: &str) -> String {
    let mut all = vec!["-n", "shop"];
    all.extend(args.split_whitespace());
    k.ok(&all).await
}

/// `kubectl -n shop rollout status <what>`, which must succeed within 30 s.
async fn rollout_status(k: &Kubectl, what: &str) -> String {
    shop(k, &format!("rollout status {what} --timeout=30s")).await
}

async fn kubectl() -> (Served, Kubectl) {
    let served = start().await;
    let k = Kubectl::new(&served.url());
    (served, k)
}

#[tokio::test]
async fn kubectl_deployment_rollout_scale_undo_and_delete() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    shop(&k, "create deployment web --image=nginx:1 --replicas=3").await;
    rollout_status(&k, "deployment/web").await;
    let out = shop(&k, "get pods -l app=web --no-headers").await;
    assert_eq!(
        out.lines().filter(|l| l.contains("Running")).count(),
        3,
        "{out}"
    );

    shop(&k, "scale deployment/web --replicas=5").await;
    rollout_status(&k, "deployment/web").await;
    settle(sim).await;
    assert_eq!(pods_of(sim, "web").len(), 5);

    shop(&k, "set image deployment/web nginx=nginx:2").await;
    rollout_status(&k, "deployment/web").await;
    settle(sim).await;
    assert!(
        pods_of(sim, "web")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
    );
    let history = shop(&k, "rollout history deployment/web").await;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    shop(&k, "rollout undo deployment/web").await;
    rollout_status(&k, "deployment/web").await;
    settle(sim).await;
    let pods = pods_of(sim, "web");
    assert_eq!(pods.len(), 5);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1")
    );

    let described = shop(&k, "describe deployment web").await;
    assert!(
        described.contains("NewReplicaSet:") && described.contains("ScalingReplicaSet"),
        "{described}"
    );
    let events = shop(&k, "get events").await;
    for reason in ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"] {
        assert!(events.contains(reason), "{reason} missing from:\n{events}");
    }
    // The same events in events.k8s.io/v1, which `kubectl events` reads.
    let newer = shop(&k, "events").await;
    for reason in ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"] {
        assert!(newer.contains(reason), "{reason} missing from:\n{newer}");
    }
    let v1 = sim.list_in("Event.events.k8s.io", "shop").unwrap();
    assert!(
        v1.iter()
            .any(|e| e["regarding"]["kind"] == "Deployment" && e["reason"] == "ScalingReplicaSet"),
        "{v1:?}"
    );

    shop(&k, "delete deployment web").await;
    settle(sim).await;
    assert!(sim.list_in("ReplicaSet", "shop").unwrap().is_empty());
    assert!(pods_of(sim, "web").is_empty());
}

#[tokio::test]
async fn kubectl_delete_with_cascade_orphan_leaves_the_pods() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    shop(&k, "create deployment api --image=nginx --replicas=2").await;
    rollout_status(&k, "deployment/api").await;
    shop(&k, "delete deployment api --cascade=orphan").await;
    settle(sim).await;
    assert_eq!(sim.list_in("ReplicaSet", "shop").unwrap().len(), 1);
    assert_eq!(pods_of(sim, "api").len(), 2);
}

#[tokio::test]
async fn kubectl_delete_namespace_removes_its_objects() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    k.ok(&["create", "namespace", "x"]).await;
    k.ok(&[
        "-n",
        "x",
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;
    k.ok(&[
        "-n",
        "x",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
    ])
    .await;
    k.ok(&[
        "-n",
        "x",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ])
    .await;
    k.ok(&["delete", "namespace", "x", "--timeout=30s"]).await;
    assert!(sim.get("Namespace", "", "x").is_err());
    for kind in [
        "Deployment",
        "ReplicaSet",
        "Pod",
        "ConfigMap",
        "ServiceAccount",
    ] {
        assert!(
            sim.list_in(kind, "x").unwrap().is_empty(),
            "{kind} left in x"
        );
    }
}

#[tokio::test]
async fn kubectl_daemonset_rollout_status_returns() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    sim.create("Node", node("node-2", json!({}), json!([])))
        .unwrap();
    let mut ds = daemonset("logs", json!({}));
    ds["apiVersion"] = json!("apps/v1");
    ds["kind"] = json!("DaemonSet");
    let file = k.file("ds.json", &ds.to_string());
    k.ok(&["create", "-f", &file]).await;
    rollout_status(&k, "daemonset/logs").await;
    assert_eq!(nodes_of(sim, "logs"), ["node-1", "node-2"]);
    shop(&k, "set image daemonset/logs agent=agent:2").await;
    let out = rollout_status(&k, "daemonset/logs").await;
    assert!(out.contains("successfully rolled out"), "{out}");
    settle(sim).await;
    assert!(
        pods_of(sim, "logs")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "agent:2")
    );
    let got = shop(&k, "get daemonset logs --no-headers").await;
    assert!(got.split_whitespace().nth(1) == Some("2"), "{got}");
}

#[tokio::test]
async fn kubectl_create_cronjob_and_advancing_the_clock_shows_a_job() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    k.ok(&[
        "-n",
        "shop",
        "create",
        "cronjob",
        "report",
        "--image=busybox",
        &format!("--schedule={YEARLY}"),
        "--",
        "date",
    ])
    .await;
    settle(sim).await;
    let none = k.run(&["-n", "shop", "get", "jobs", "--no-headers"]).await;
    assert!(!none.1.contains("report-"), "{none:?}");
    advance(sim, YEAR).await;
    let out = shop(&k, "get jobs --no-headers").await;
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("report-")).collect();
    assert_eq!(lines.len(), 1, "{out}");
    let cj = shop(&k, "get cronjob report -o json").await;
    let cj: Value = serde_json::from_str(&cj).unwrap();
    assert!(cj["status"]["lastScheduleTime"].is_string(), "{cj}");
}

#[tokio::test]
async fn kubectl_autoscale_scales_the_deployment_to_the_minimum() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    shop(&k, "create deployment web --image=nginx --replicas=1").await;
    shop(&k, "autoscale deployment web --min=2 --max=4").await;
    settle(sim).await;
    rollout_status(&k, "deployment/web").await;
    assert_eq!(
        sim.get("Deployment", "shop", "web").unwrap()["spec"]["replicas"],
        2
    );
    assert_eq!(pods_of(sim, "web").len(), 2);
    let out = shop(&k, "get hpa web --no-headers").await;
    let cols: Vec<&str> = out.split_whitespace().collect();
    // NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE
    assert_eq!(
        cols.get(cols.len().saturating_sub(4)..cols.len() - 1),
        Some(&["2", "4", "2"][..]),
        "{out}"
    );
}
