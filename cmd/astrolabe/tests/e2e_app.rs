#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A multi-tier application applied with the real kubectl to the emulator with its controllers,
//! and watched by the real binary: the cluster gets the ReplicaSets, Pods, EndpointSlices, claims
//! and volumes a real one would, and Astrolabe's graph of it has every `owns`, `selects`,
//! `endpoints`, `targets`, `mounts`, `binds`, `claims-from-template`, `routes-to`, `scales`,
//! `protects`, `applies-to`, `uses-*` and `runs-on` edge those objects make in a real cluster.
//! Then kubectl workflows (scale, set image and rollout undo, deletes with orphan, foreground and
//! background propagation, namespace deletion) show their effect in the graph.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use astrolabe_kubesim::SimConfig;
use astrolabe_testkit::{Emulator, Kubectl};
use common::Server;
use serde_json::Value;

const APP: &str = include_str!("fixtures/multi-tier.yaml");

/// `Kind/name` of a node of the served graph, by uid.
fn names(graph: &Value) -> std::collections::HashMap<String, String> {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["uid"].as_str().unwrap().to_owned(),
                format!(
                    "{}/{}",
                    n["kind"].as_str().unwrap(),
                    n["name"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

/// The graph's edges as `(from Kind/name, edge, to Kind/name)`.
fn edges(graph: &Value) -> BTreeSet<(String, String, String)> {
    let names = names(graph);
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = |f: &str| {
                names
                    .get(e[f].as_str().unwrap())
                    .cloned()
                    .unwrap_or_default()
            };
            (
                name("from"),
                e["type"].as_str().unwrap().to_owned(),
                name("to"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_app_settles_into_the_objects_and_edges_of_a_real_cluster() {
    let emu = Emulator::start(SimConfig {
        controllers: true,
        default_namespaces: true,
        nodes: 2,
        ..SimConfig::default()
    })
    .await;
    let kubectl = Kubectl::new(&emu.url());
    let file = kubectl.file("app.yaml", APP);
    kubectl.ok(&["apply", "-f", &file]).await;
    for workload in ["deployment/web", "deployment/api", "statefulset/db"] {
        rollout(&kubectl, workload).await;
    }
    emu.sim.settle(Duration::from_secs(30)).await.unwrap();

    // What the controllers made.
    let count = |kind: &str| emu.sim.list_in(kind, "shop").unwrap().len();
    assert_eq!(count("Pod"), 6, "2 web, 2 api, 2 db");
    assert_eq!(count("ReplicaSet.apps"), 2);
    assert_eq!(count("EndpointSlice.discovery.k8s.io"), 3);
    assert_eq!(count("PersistentVolumeClaim"), 2);
    assert_eq!(emu.sim.list("PersistentVolume").unwrap().len(), 2);

    // The graph the server builds of it.
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    server.wait_ready().await;
    let pods: Vec<String> = emu
        .sim
        .list_in("Pod", "shop")
        .unwrap()
        .iter()
        .map(|p| format!("Pod/{}", p["metadata"]["name"].as_str().unwrap()))
        .collect();
    let graph = astrolabe_testkit::eventually(
        "the server's graph holds the app's Pods",
        Duration::from_secs(60),
        || async {
            let (status, graph) = server.get("/api/v1/graph").await.ok_or("no answer")?;
            let names: BTreeSet<String> = names(&graph).into_values().collect();
            if status == 200 && pods.iter().all(|p| names.contains(p)) {
                Ok(graph)
            } else {
                Err(format!("{status}: {} nodes", names.len()))
            }
        },
    )
    .await;
    let got = edges(&graph);
    let of = |app: &str| -> Vec<String> {
        pods.iter()
            .filter(|p| p.starts_with(&format!("Pod/{app}-")))
            .cloned()
            .collect()
    };
    let rs_of = |deploy: &str| -> String {
        got.iter()
            .find(|(from, edge, to)| {
                from == &format!("Deployment/{deploy}")
                    && edge == "owns"
                    && to.starts_with("ReplicaSet/")
            })
            .map(|(_, _, to)| to.clone())
            .unwrap_or_else(|| panic!("Deployment/{deploy} owns no ReplicaSet: {got:?}"))
    };
    let slice_of = |svc: &str| -> String {
        got.iter()
            .find(|(from, edge, _)| from == &format!("Service/{svc}") && edge == "endpoints")
            .map(|(_, _, to)| to.clone())
            .unwrap_or_else(|| panic!("Service/{svc} has no EndpointSlice: {got:?}"))
    };
    let mut want: Vec<(String, &str, String)> = Vec::new();
    let mut add = |from: &str, edge: &'static str, to: &str| {
        want.push((from.to_owned(), edge, to.to_owned()))
    };
    for (deploy, extra) in [
        ("web", "ConfigMap/web-config"),
        ("api", "Secret/api-credentials"),
    ] {
        let rs = rs_of(deploy);
        let slice = slice_of(deploy);
        for pod in of(deploy) {
            add(&rs, "owns", &pod);
            add(&format!("Service/{deploy}"), "selects", &pod);
            add(&slice, "targets", &pod);
            let uses = if extra.starts_with("ConfigMap") {
                "uses-configmap"
            } else {
                "uses-secret"
            };
            add(&pod, uses, extra);
            add(&pod, "runs-on", "");
        }
    }
    for pod in of("api") {
        add("PodDisruptionBudget/api", "protects", &pod);
        add("NetworkPolicy/api-from-web", "applies-to", &pod);
        add(&pod, "uses-sa", "ServiceAccount/api");
    }
    let db_slice = slice_of("db");
    for i in 0..2 {
        let (pod, claim) = (
            format!("Pod/db-{i}"),
            format!("PersistentVolumeClaim/data-db-{i}"),
        );
        add("StatefulSet/db", "owns", &pod);
        add("StatefulSet/db", "claims-from-template", &claim);
        add(&pod, "mounts", &claim);
        add(&claim, "binds", "");
        add(&claim, "uses-storage-class", "StorageClass/standard");
        add("Service/db", "selects", &pod);
        add(&db_slice, "targets", &pod);
        add("NetworkPolicy/db-from-api", "applies-to", &pod);
    }
    add("Ingress/shop", "routes-to", "Service/web");
    add("Ingress/shop", "routes-to", "Service/api");
    add("HorizontalPodAutoscaler/api", "scales", "Deployment/api");
    let missing: Vec<_> = want
        .iter()
        .filter(|(from, edge, to)| {
            !got.iter().any(|(f, e, t)| {
                f == from
                    && e == edge
                    && (to.is_empty() || t == to)
                    && (!to.is_empty() || !t.is_empty())
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "edges a real cluster gives, missing: {missing:?}\ngraph: {got:#?}"
    );
    // A claim binds a volume, a Pod runs on a Node: the targets the emptiness above allowed.
    assert!(
        got.iter()
            .any(|(f, e, t)| f == "PersistentVolumeClaim/data-db-0"
                && e == "binds"
                && t.starts_with("PersistentVolume/"))
    );
    assert!(got.iter().any(|(f, e, t)| f.starts_with("Pod/web-")
        && e == "runs-on"
        && t.starts_with("Node/node-")));

    // kubectl workflows, their effect seen in the graph: a scale, a rollout and its undo, and a
    // delete of each propagation policy.
    kubectl
        .ok(&["scale", "-n", "shop", "deployment/api", "--replicas=4"])
        .await;
    app_pods_in_graph(&server, "api", 4, "the api scaled to 4").await;
    kubectl
        .ok(&["set", "image", "-n", "shop", "deployment/web", "web=web:2"])
        .await;
    rollout(&kubectl, "deployment/web").await;
    // The Pods' ReplicaSet: a new one after the image change, the first one again after undo.
    let owners = |pods: &[Value]| -> BTreeSet<String> {
        pods.iter()
            .map(|p| {
                format!(
                    "ReplicaSet/{}",
                    p["ownerReferences"][0]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let first = BTreeSet::from([rs_of("web")]);
    let web = app_pods_in_graph(&server, "web", 2, "the web rolled to web:2").await;
    assert!(
        owners(&web).is_disjoint(&first),
        "{:?} after the image change",
        owners(&web)
    );
    kubectl
        .ok(&["rollout", "undo", "-n", "shop", "deployment/web"])
        .await;
    rollout(&kubectl, "deployment/web").await;
    astrolabe_testkit::eventually(
        "the web rolled back to its first ReplicaSet",
        Duration::from_secs(60),
        || async {
            let web = app_pods_in_graph(&server, "web", 2, "web Pods").await;
            if owners(&web) == first {
                Ok(())
            } else {
                Err(format!("{:?}", owners(&web)))
            }
        },
    )
    .await;
    kubectl
        .ok(&["delete", "-n", "shop", "deployment/web", "--cascade=orphan"])
        .await;
    emu.sim.settle(Duration::from_secs(30)).await.unwrap();
    let orphans = app_pods_in_graph(&server, "web", 2, "orphaned web Pods stay").await;
    assert!(
        orphans
            .iter()
            .all(|p| p["ownerReferences"][0]["kind"] == "ReplicaSet")
    );
    kubectl
        .ok(&[
            "delete",
            "-n",
            "shop",
            "replicasets",
            "-l",
            "app=web",
            "--cascade=foreground",
        ])
        .await;
    app_pods_in_graph(&server, "web", 0, "a foreground delete takes the Pods").await;
    kubectl
        .ok(&["delete", "-n", "shop", "deployment/api"])
        .await;
    app_pods_in_graph(
        &server,
        "api",
        0,
        "a background delete takes the ReplicaSet's Pods",
    )
    .await;
    kubectl
        .ok(&["delete", "namespace", "shop", "--wait=false"])
        .await;
    astrolabe_testkit::eventually(
        "the namespace's objects leave the graph",
        Duration::from_secs(60),
        || async {
            let (status, body) = server
                .get("/api/v1/objects?namespace=shop")
                .await
                .ok_or("no answer")?;
            match body["items"].as_array().map(Vec::len) {
                Some(0) if status == 200 => Ok(()),
                n => Err(format!("{status}: {n:?} objects left in shop")),
            }
        },
    )
    .await;
}

/// `kubectl rollout status` of `workload` in `shop`, which must finish within a minute.
async fn rollout(kubectl: &Kubectl, workload: &str) {
    kubectl
        .ok(&["rollout", "status", "-n", "shop", workload, "--timeout=60s"])
        .await;
}

/// Waits until the server's graph holds exactly `n` Pods labelled `app`; their objects, as the
/// server serves them.
async fn app_pods_in_graph(server: &Server, app: &str, n: usize, what: &str) -> Vec<Value> {
    let path = format!("/api/v1/objects?kind=Pod&namespace=shop&labelSelector=app%3D{app}");
    astrolabe_testkit::eventually(what, Duration::from_secs(60), || async {
        let (status, body) = server.get(&path).await.ok_or("no answer")?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if status == 200 && items.len() == n {
            Ok(items)
        } else {
            Err(format!("{status}: {} Pods", items.len()))
        }
    })
    .await
}
