#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `kubectl` against the emulator: get -A, create -f, replace -f, scale, delete.

mod common;

use std::path::Path;

use astrolabe_testkit::Kubectl;
use common::{Served, fast_config, fixture};
use serde_json::json;

const MANIFEST: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: shop
  labels: {app: api}
data:
  mode: "blue"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "example/api:1"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
"#;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_round_trip() {
    let served = Served::start(fast_config()).await;
    fixture(&served.sim);
    let k = Kubectl::new(&served.url());

    let pods = k.ok(&["get", "pods", "-A"]).await;
    assert!(
        pods.contains("web-5d4f8-0") && pods.contains("shop"),
        "{pods}"
    );
    // kubectl asks for Tables or whole objects, never for metadata only.
    served
        .sim
        .create(
            "Secret",
            json!({"metadata": {"name": "creds", "namespace": "shop"}, "type": "Opaque",
                   "data": {"k": "dmFsdWU="}}),
        )
        .unwrap();
    let secrets = k.ok(&["get", "secrets", "-n", "shop"]).await;
    assert!(secrets.contains("creds"), "{secrets}");
    let data = k
        .ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.k}",
        ])
        .await;
    assert_eq!(data.trim(), "dmFsdWU=");
    let svc = k
        .ok(&[
            "get",
            "svc",
            "-n",
            "shop",
            "-o",
            "jsonpath={.items[0].spec.clusterIP}",
        ])
        .await;
    assert_eq!(svc.trim(), "10.96.0.10");

    let file = k.dir.path().join("m.yaml");
    write(&file, MANIFEST);
    let created = k.ok(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        created.contains("configmap/app-config created"),
        "{created}"
    );
    assert!(
        created.contains("clusterrole.rbac.authorization.k8s.io/reader created"),
        "{created}"
    );
    assert_eq!(
        served.sim.get("deploy", "shop", "api").unwrap()["spec"]["replicas"],
        1
    );
    let (dup_ok, dup) = k.run(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(!dup_ok && dup.contains("already exists"), "{dup}");

    write(&file, &MANIFEST.replace("\"blue\"", "\"green\""));
    let replaced = k.ok(&["replace", "-f", file.to_str().unwrap()]).await;
    assert!(
        replaced.contains("configmap/app-config replaced"),
        "{replaced}"
    );
    assert_eq!(
        served.sim.get("cm", "shop", "app-config").unwrap()["data"]["mode"],
        "green"
    );

    k.ok(&["scale", "deployment/api", "-n", "shop", "--replicas=3"])
        .await;
    assert_eq!(
        served.sim.get("deploy", "shop", "api").unwrap()["spec"]["replicas"],
        3
    );
    k.ok(&["label", "cm", "app-config", "-n", "shop", "tier=backend"])
        .await;
    let selected = k
        .ok(&["get", "cm", "-A", "-l", "tier in (backend)", "-o", "name"])
        .await;
    assert_eq!(selected.trim(), "configmap/app-config");

    let deleted = k.ok(&["delete", "-f", file.to_str().unwrap()]).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(served.sim.get("cm", "shop", "app-config").is_err());
    assert!(served.sim.get("ClusterRole", "", "reader").is_err());
    let resources = k.ok(&["api-resources"]).await;
    assert!(
        resources.contains("horizontalpodautoscalers") && resources.contains("hpa"),
        "{resources}"
    );
}
