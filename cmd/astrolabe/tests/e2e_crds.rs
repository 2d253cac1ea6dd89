//! Custom kinds end to end, with the real kubectl and the real binary: CRDs applied after the
//! server is ready get watched; the built-in rule pack's edges appear between custom objects and
//! built-in ones; `impact` of a Secret lists the Certificate that writes it and the Gateway that
//! serves it; deleting a CRD removes its objects; editing the rule file changes edges without a
//! restart, and a broken edit is refused and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use astrolabe_testkit::{Kubectl, eventually};
use common::{Emulator, Server};
use serde_json::Value;

/// CRDs with the upstream groups, versions, kinds and scopes (the emulator's test fixtures).
fn crd_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../pkg/kubesim/crds")
        .join(name)
        .display()
        .to_string()
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Secret
metadata: {name: web-tls, namespace: apps}
type: kubernetes.io/tls
data: {tls.crt: "", tls.key: ""}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: letsencrypt}
spec: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: apps}
spec:
  secretName: web-tls
  dnsNames: [web.example.com]
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: envoy}
spec: {controllerName: example.com/gateway}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: apps, annotations: {example.com/config: edge-config}}
spec:
  gatewayClassName: envoy
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: web-tls}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: apps}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web, namespace: apps}
spec:
  selector: {matchLabels: {app: web}}
  namespaceSelector: {matchNames: [apps]}
  endpoints: [{port: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: edge-config, namespace: apps}
data: {mode: strict}
"#;

/// A user rule: a Gateway names the ConfigMap it reads in an annotation.
const USER_RULE: &str = r#"- name: gateway-config
  description: "Gateway → the ConfigMap its annotation names."
  from: {group: gateway.networking.k8s.io, kind: Gateway}
  path: metadata.annotations["example.com/config"]
  match: name
  to: {group: "", kind: ConfigMap}
  edge: configured-by
  dependency: source-needs-target
"#;

/// `(edge, peer kind, peer name)` of one object's outgoing edges; `None` while it is absent.
async fn outgoing(server: &Server, path: &str) -> Option<Vec<(String, String, String)>> {
    let (status, body) = server.get(path).await?;
    if status != 200 {
        return None;
    }
    let mut out: Vec<(String, String, String)> = body["outgoing"]
        .as_array()?
        .iter()
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (s(&e["type"]), s(&e["peer"]["kind"]), s(&e["peer"]["name"]))
        })
        .collect();
    out.sort();
    Some(out)
}

fn edge(kind: &str, peer: &str, name: &str) -> (String, String, String) {
    (kind.to_owned(), peer.to_owned(), name.to_owned())
}

/// Waits until `path`'s outgoing edges include every one of `want` (and, with `absent`, none of
/// those).
async fn wait_edges(
    server: &Server,
    path: &str,
    want: &[(String, String, String)],
    absent: &[(String, String, String)],
) {
    eventually(
        &format!("the edges of {path}"),
        Duration::from_secs(30),
        || async {
            let got = outgoing(server, path).await;
            match &got {
                Some(got)
                    if want.iter().all(|w| got.contains(w))
                        && absent.iter().all(|a| !got.contains(a)) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "have {got:?}, want {want:?}, not {absent:?}\n{}",
                    server.log_tail()
                )),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_kinds_and_rules_end_to_end() {
    let emu = Emulator::start(5, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "[]\n").unwrap();
    let server = Server::start(
        &emu.kubeconfig(),
        dir.path(),
        &["--relation-rules", rules.to_str().unwrap()],
    );
    server.wait_ready().await;

    // CRDs after the server is ready, then objects of them and of built-in kinds.
    let k = Kubectl::new(&emu.url());
    for file in [
        "cert-manager.yaml",
        "gateway-api.yaml",
        "prometheus-operator.yaml",
    ] {
        k.ok(&["apply", "-f", &crd_file(file)]).await;
    }
    let objects = k.file("objects.yaml", OBJECTS);
    eventually(
        "the custom objects are accepted",
        Duration::from_secs(30),
        || async {
            let (ok, out) = k.run(&["apply", "-f", &objects]).await;
            if ok { Ok(()) } else { Err(out) }
        },
    )
    .await;

    let cert = "/api/v1/namespaces/apps/certificates.cert-manager.io/web";
    wait_edges(
        &server,
        cert,
        &[
            edge("writes", "Secret", "web-tls"),
            edge("issued-by", "ClusterIssuer", "letsencrypt"),
        ],
        &[],
    )
    .await;
    let gateway = "/api/v1/namespaces/apps/gateways.gateway.networking.k8s.io/edge";
    wait_edges(
        &server,
        gateway,
        &[
            edge("uses-gateway-class", "GatewayClass", "envoy"),
            edge("uses-tls-secret", "Secret", "web-tls"),
        ],
        &[edge("configured-by", "ConfigMap", "edge-config")],
    )
    .await;
    wait_edges(
        &server,
        "/api/v1/namespaces/apps/httproutes.gateway.networking.k8s.io/web",
        &[
            edge("attaches-to", "Gateway", "edge"),
            edge("routes-to", "Service", "web"),
        ],
        &[],
    )
    .await;
    wait_edges(
        &server,
        "/api/v1/namespaces/apps/servicemonitors.monitoring.coreos.com/web",
        &[edge("monitors", "Service", "web")],
        &[],
    )
    .await;
    // Responses spell apiVersion and kind as Kubernetes does.
    let (_, body) = server.get(cert).await.unwrap();
    assert_eq!(body["resource"]["apiVersion"], "cert-manager.io/v1");
    assert_eq!(body["resource"]["kind"], "Certificate");
    // kind= accepts the CRD's short name, as kubectl does.
    let (status, by_short) = server
        .get("/api/v1/namespaces/apps/cert/web")
        .await
        .unwrap();
    assert_eq!(status, 200, "{by_short}");
    assert_eq!(by_short["resource"]["uid"], body["resource"]["uid"]);

    // What breaks if the Secret goes: the Certificate that writes it, the Gateway serving it.
    let (_, secret) = server
        .get("/api/v1/namespaces/apps/Secret/web-tls")
        .await
        .unwrap();
    let uid = secret["resource"]["uid"].as_str().unwrap().to_owned();
    let (_, impact) = server.get(&format!("/api/v1/impact/{uid}")).await.unwrap();
    let kinds: Vec<&str> = impact["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"Certificate"), "{impact}");
    assert!(kinds.contains(&"Gateway"), "{impact}");

    // A rule added to the file: the Gateway's annotation becomes an edge, without a restart.
    std::fs::write(&rules, USER_RULE).unwrap();
    wait_edges(
        &server,
        gateway,
        &[edge("configured-by", "ConfigMap", "edge-config")],
        &[],
    )
    .await;
    // A broken edit is refused and counted; the edge stays.
    std::fs::write(&rules, "- name: [broken\n").unwrap();
    eventually(
        "the broken edit is counted",
        Duration::from_secs(30),
        || async {
            let refused = server
                .get_text("/metrics")
                .await
                .lines()
                .any(|l| l == r#"astrolabe_rules_reloads_total{result="refused"} 1"#);
            if refused {
                Ok(())
            } else {
                Err("not yet refused")
            }
        },
    )
    .await;
    let (_, listed) = server.get("/api/v1/rules").await.unwrap();
    assert_eq!(listed["refusedReloads"], 1);
    assert!(
        listed["lastRefusal"]
            .as_str()
            .unwrap()
            .contains("rules.yaml")
    );
    wait_edges(
        &server,
        gateway,
        &[edge("configured-by", "ConfigMap", "edge-config")],
        &[],
    )
    .await;
    // The rule removed: its edge leaves.
    std::fs::write(&rules, "[]\n").unwrap();
    wait_edges(
        &server,
        gateway,
        &[edge("uses-tls-secret", "Secret", "web-tls")],
        &[edge("configured-by", "ConfigMap", "edge-config")],
    )
    .await;

    // Deleting a CRD deletes its objects, and they leave the graph.
    k.ok(&["delete", "crd", "certificates.cert-manager.io"])
        .await;
    eventually(
        "the Certificate leaves the graph",
        Duration::from_secs(30),
        || async {
            match server.get(cert).await {
                Some((status, _)) if status != 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let (_, after) = server.get(&format!("/api/v1/impact/{uid}")).await.unwrap();
    assert!(
        after["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "Certificate"),
        "{after}"
    );
}
