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

// ---- the real kubectl ----

async fn kubectl() -> (Served, Kubectl) {
    let served = start().await;
    let k = Kubectl::new(&served.url());
    (served, k)
}

#[tokio::test]
async fn kubectl_deployment_rollout_scale_undo_and_delete() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    k.ok(&[
        "-n",
        "shop",
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=3",
    ])
    .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ])
    .await;
    let out = k
        .ok(&["-n", "shop", "get", "pods", "-l", "app=web", "--no-headers"])
        .await;
    assert_eq!(
        out.lines().filter(|l| l.contains("Running")).count(),
        3,
        "{out}"
    );

    k.ok(&["-n", "shop", "scale", "deployment/web", "--replicas=5"])
        .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ])
    .await;
    settle(sim).await;
    assert_eq!(pods_of(sim, "web").len(), 5);

    k.ok(&[
        "-n",
        "shop",
        "set",
        "image",
        "deployment/web",
        "nginx=nginx:2",
    ])
    .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ])
    .await;
    settle(sim).await;
    assert!(
        pods_of(sim, "web")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
    );
    let history = k
        .ok(&["-n", "shop", "rollout", "history", "deployment/web"])
        .await;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    k.ok(&["-n", "shop", "rollout", "undo", "deployment/web"])
        .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ])
    .await;
    settle(sim).await;
    let pods = pods_of(sim, "web");
    assert_eq!(pods.len(), 5);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1")
    );

    let described = k.ok(&["-n", "shop", "describe", "deployment", "web"]).await;
    assert!(
        described.contains("NewReplicaSet:") && described.contains("ScalingReplicaSet"),
        "{described}"
    );
    let events = k.ok(&["-n", "shop", "get", "events"]).await;
    for reason in ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"] {
        assert!(events.contains(reason), "{reason} missing from:\n{events}");
    }

    k.ok(&["-n", "shop", "delete", "deployment", "web"]).await;
    settle(sim).await;
    assert!(sim.list_in("ReplicaSet", "shop").unwrap().is_empty());
    assert!(pods_of(sim, "web").is_empty());
}

#[tokio::test]
async fn kubectl_delete_with_cascade_orphan_leaves_the_pods() {
    let (served, k) = kubectl().await;
    let sim = &served.sim;
    k.ok(&[
        "-n",
        "shop",
        "create",
        "deployment",
        "api",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/api",
        "--timeout=30s",
    ])
    .await;
    k.ok(&[
        "-n",
        "shop",
        "delete",
        "deployment",
        "api",
        "--cascade=orphan",
    ])
    .await;
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
