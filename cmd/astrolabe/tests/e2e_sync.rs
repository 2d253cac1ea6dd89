//! The server against the emulator through the real kube-rs client: the served graph equals
//! what the emulator's objects imply, and follows creates, updates, deletes, rolling updates and
//! relists after a 410.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_kubesim::{ChurnAction, Churner};
use common::{Emulator, Server, Sets};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_emulator_truth_and_follows_changes() {
    let emu = Emulator::start(5, 900).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    let ready = server.wait_ready().await;
    assert_eq!(ready["graph"]["source"], "synced");
    let truth = Sets::of(&emu.truth());
    assert!(
        truth.nodes.len() > 500 && truth.edges.len() > 1000,
        "a real cluster: {} nodes",
        truth.nodes.len()
    );
    server
        .wait_graph("initial sync equals the emulator", || {
            Sets::of(&emu.truth())
        })
        .await;

    // Create, update, delete.
    let ns = "team-000";
    emu.sim
        .create("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new-cm", "namespace": ns}, "data": {"k": "v"}}))
        .unwrap();
    let svc = emu
        .sim
        .list_in("services", ns)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let svc_name = svc["metadata"]["name"].as_str().unwrap().to_owned();
    emu.sim.delete("services", ns, &svc_name).unwrap();
    let pod = emu
        .sim
        .list_in("pods", ns)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    emu.sim
        .update("pods", ns, &pod_name, |p| {
            p["metadata"]["labels"] = json!({"moved": "out"});
        })
        .unwrap();
    server
        .wait_graph("create/update/delete propagate", || Sets::of(&emu.truth()))
        .await;
    let (_, by_key) = server
        .get(&format!("/api/v1/namespaces/{ns}/ConfigMap/new-cm"))
        .await
        .unwrap();
    assert_eq!(by_key["resource"]["name"], "new-cm", "{by_key}");

    // Rolling updates move Service -> Pod and EndpointSlice -> Pod edges to the new Pods.
    let before = server.sets().await;
    let mut churner = Churner::new(emu.sim.clone(), 9);
    let mut rolled = 0;
    while rolled < 3 {
        if let ChurnAction::RollingUpdate(..) = churner.step().unwrap() {
            rolled += 1;
        }
    }
    server
        .wait_graph("rolling updates propagate", || Sets::of(&emu.truth()))
        .await;
    let after = server.sets().await;
    let moved = |kind: &str| {
        let a: Vec<_> = before.edges.iter().filter(|e| e.2 == kind).collect();
        let b: Vec<_> = after.edges.iter().filter(|e| e.2 == kind).collect();
        a != b
    };
    assert!(
        moved("selects") && moved("targets"),
        "rolling updates changed selects/targets edges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relist_after_410_deletes_what_vanished_while_disconnected() {
    let emu = Emulator::start(6, 500).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    server.wait_ready().await;
    server
        .wait_graph("initial sync", || Sets::of(&emu.truth()))
        .await;

    // Pods fail with 500 (watch reconnects fail), a Pod is deleted, history expires: the watch
    // comes back with ERROR 410, relists, and the deleted Pod disappears through reconciliation.
    emu.sim.fail_kind("pods", 500).unwrap();
    emu.sim.drop_watches();
    let pod = emu.sim.list("pods").unwrap().into_iter().next().unwrap();
    let (ns, name) = (
        pod["metadata"]["namespace"].as_str().unwrap().to_owned(),
        pod["metadata"]["name"].as_str().unwrap().to_owned(),
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    emu.sim.delete("pods", &ns, &name).unwrap();
    emu.sim.expire_history();
    assert!(
        server.sets().await.nodes.contains(&uid),
        "not seen yet while pods fail"
    );
    emu.sim.clear_faults();
    server
        .wait_graph("relist removes the pod deleted while disconnected", || {
            Sets::of(&emu.truth())
        })
        .await;
    assert!(!server.sets().await.nodes.contains(&uid));
    assert!(
        server.metric("astrolabe_reconcile_deletions_total").await >= 1.0
            || server.log_text().contains("deleted while unwatched")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_kind_is_reported_and_not_emptied() {
    let emu = Emulator::start(7, 400).await;
    emu.sim.fail_kind("secrets", 403).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    let body = server
        .wait_readyz("secrets reported forbidden", |_, b| {
            b["kinds"].as_array().is_some_and(|ks| {
                ks.iter()
                    .any(|k| k["kind"] == "Secret" && k["forbidden"] == true)
            })
        })
        .await;
    assert!(
        body["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kind"] == "Secret" && k["listed"] == false)
    );
    // Every other kind syncs; readiness does not wait forever for the forbidden one.
    server.wait_ready().await;
    assert!(server.metric("astrolabe_informer_forbidden").await >= 1.0);
    let (_, secrets) = server.get("/api/v1/objects?kind=Secret").await.unwrap();
    assert_eq!(secrets["items"].as_array().unwrap().len(), 0);
    emu.sim.clear_faults();
    server
        .wait_graph("secrets arrive once allowed", || Sets::of(&emu.truth()))
        .await;
}
