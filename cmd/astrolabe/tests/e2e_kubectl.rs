//! kubectl's writes to the emulator reach Astrolabe's graph: objects made by `kubectl create`
//! (protobuf bodies), by server-side apply and changed by a strategic merge patch are served with
//! the edges the emulator's objects imply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_testkit::Kubectl;
use common::{Emulator, Server, Sets};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: kc}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: "web:1"
        envFrom: [{configMapRef: {name: app-config}}]
      - name: proxy
        image: "proxy:1"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_writes_reach_the_graph() {
    let emu = Emulator::start(3, 60).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    server.wait_ready().await;

    let k = Kubectl::new(&emu.url());
    k.ok(&["create", "namespace", "kc"]).await;
    k.ok(&[
        "create",
        "configmap",
        "app-config",
        "-n",
        "kc",
        "--from-literal=mode=blue",
    ])
    .await;
    let app = k.file("app.yaml", APP);
    k.ok(&["apply", "--server-side", "-f", &app]).await;
    // A new image for one container: its envFrom, and the other container, stay.
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "kc",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:2"}]}}}}"#,
    ])
    .await;

    server
        .wait_graph("kubectl's objects are in the graph", || {
            Sets::of(&emu.truth())
        })
        .await;
    let (_, deploy) = server
        .get("/api/v1/namespaces/kc/Deployment/web")
        .await
        .unwrap();
    let to_config = deploy["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["peer"]["kind"] == "ConfigMap" && e["peer"]["name"] == "app-config");
    assert!(to_config, "the Deployment still uses app-config: {deploy}");
}
