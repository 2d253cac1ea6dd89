#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CustomResourceDefinitions served by the emulator, through the real kubectl, the real kube-rs
//! client (discovery, `DynamicObject` and metadata watchers) and plain HTTP. The CRDs are the
//! upstream group/version/kind/scope, in `crds/`.

mod common;

use std::path::PathBuf;

use astrolabe_testkit::Kubectl;
use common::{Served, fast_config, get_json, within};
use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

fn fixture_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crds")
        .join(file)
}

/// The CRDs of a fixture file.
fn crds(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture_path(file)).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

/// An emulator with the default namespaces and the CRDs of `files` (created over HTTP).
async fn served_with(files: &[&str]) -> Served {
    let served = Served::start(astrolabe_kubesim::SimConfig {
        default_namespaces: true,
        ..fast_config()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        served.url()
    );
    for file in files {
        for crd in crds(file) {
            let resp = http.post(&url).json(&crd).send().await.unwrap();
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        }
    }
    served
}

fn certificate(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"secretName": format!("{name}-tls"), "dnsNames": ["shop.example.com"],
                 "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}})
}

const CERTIFICATE: &str = r#"
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: shop-tls
  namespace: default
spec:
  secretName: shop-tls
  dnsNames: [shop.example.com]
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crds_and_custom_objects() {
    let served = Served::start(astrolabe_kubesim::SimConfig {
        default_namespaces: true,
        ..fast_config()
    })
    .await;
    let k = Kubectl::new(&served.url());
    let file = fixture_path("cert-manager.yaml");
    let out = k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/certificates.cert-manager.io created"
        ),
        "{out}"
    );
    let crd: Value = serde_json::from_str(
        &k.ok(&["get", "crd", "certificates.cert-manager.io", "-o", "json"])
            .await,
    )
    .unwrap();
    let conditions = crd["status"]["conditions"].as_array().unwrap();
    for ty in ["NamesAccepted", "Established"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == ty && c["status"] == "True"),
            "{crd}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Certificate");
    // Applying the same file again updates the CRDs (kubectl computes a patch).
    let again = k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        again.contains("unchanged") || again.contains("configured"),
        "{again}"
    );

    let none = k.ok(&["get", "certificates", "-A"]).await;
    assert!(none.contains("No resources found"), "{none}");
    let manifest = k.file("cert.yaml", CERTIFICATE);
    let out = k.ok(&["apply", "-f", &manifest]).await;
    assert!(
        out.contains("certificate.cert-manager.io/shop-tls created"),
        "{out}"
    );
    let listed = k.ok(&["get", "certs"]).await;
    assert!(listed.contains("shop-tls"), "{listed}");
    let cert: Value =
        serde_json::from_str(&k.ok(&["get", "cert", "shop-tls", "-o", "json"]).await).unwrap();
    assert_eq!(cert["kind"], "Certificate");
    assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
    assert_eq!(cert["spec"]["secretName"], "shop-tls");

    k.ok(&[
        "patch",
        "certificate",
        "shop-tls",
        "--type=merge",
        "-p",
        r#"{"spec":{"secretName":"shop-tls-2"}}"#,
    ])
    .await;
    // A second apply of the manifest: a merge patch computed by kubectl for a custom kind.
    k.ok(&["apply", "-f", &manifest]).await;
    let stored = served
        .sim
        .get("Certificate", "default", "shop-tls")
        .unwrap();
    assert_eq!(stored["spec"]["secretName"], "shop-tls", "{stored}");
    assert_eq!(stored["metadata"]["generation"], 3, "{stored}");
    let (ok, text) = k
        .run(&[
            "patch",
            "certificate",
            "shop-tls",
            "--type=strategic",
            "-p",
            r#"{"spec":{"secretName":"x"}}"#,
        ])
        .await;
    assert!(
        !ok && (text.contains("UnsupportedMediaType") || text.contains("unknown format")),
        "{text}"
    );

    let resources = k
        .ok(&["api-resources", "--api-group=cert-manager.io"])
        .await;
    assert!(
        resources.contains("certificates") && resources.contains("cert,certs"),
        "{resources}"
    );

    k.ok(&["delete", "crd", "certificates.cert-manager.io"])
        .await;
    assert!(served.sim.kind_info("Certificate").is_err());
    let (ok, text) = k.run(&["get", "certificates", "-A"]).await;
    assert!(!ok, "{text}");
    assert_eq!(served.sim.list("Issuer").unwrap().len(), 0);
}

/// The kind `kind` of `group` as discovery reports it.
fn find(
    d: &Discovery,
    group: &str,
    kind: &str,
) -> Option<(ApiResource, kube::discovery::ApiCapabilities)> {
    d.get(group)?
        .recommended_resources()
        .into_iter()
        .find(|(ar, _)| ar.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_discovery_finds_custom_kinds_and_kinds_of_one_name_never_collide() {
    let served = served_with(&["gateway-api.yaml", "istio-networking.yaml"]).await;
    let client = served.client();
    for aggregated in [true, false] {
        let d = if aggregated {
            Discovery::new(client.clone())
                .run_aggregated()
                .await
                .unwrap()
        } else {
            Discovery::new(client.clone()).run().await.unwrap()
        };
        let (gw, caps) = find(&d, "gateway.networking.k8s.io", "Gateway").expect("gateway api");
        assert_eq!(gw.plural, "gateways");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.supports_operation(verbs::WATCH), "{caps:?}");
        assert!(
            caps.subresources.iter().any(|(s, _)| s.plural == "status"),
            "{caps:?}"
        );
        let (_, class) =
            find(&d, "gateway.networking.k8s.io", "GatewayClass").expect("gateway class");
        assert_eq!(class.scope, Scope::Cluster);
        let (istio, _) = find(&d, "networking.istio.io", "Gateway").expect("istio gateway");
        assert_eq!(istio.api_version, "networking.istio.io/v1");
        // Built-in kinds are in the same documents.
        assert!(
            find(&d, "apps", "Deployment").is_some(),
            "aggregated={aggregated}"
        );
        assert!(find(&d, "", "Pod").is_some(), "aggregated={aggregated}");
    }

    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (gw, _) = find(&d, "gateway.networking.k8s.io", "Gateway").unwrap();
    let (istio, _) = find(&d, "networking.istio.io", "Gateway").unwrap();
    let gateways: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &gw);
    let istio_gateways: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &istio);
    let obj = |ar: &ApiResource, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": "edge"}, "spec": spec}))
        .unwrap()
    };
    gateways
        .create(
            &PostParams::default(),
            &obj(&gw, json!({"gatewayClassName": "eg"})),
        )
        .await
        .unwrap();
    istio_gateways
        .create(
            &PostParams::default(),
            &obj(&istio, json!({"selector": {"istio": "ingress"}})),
        )
        .await
        .unwrap();
    let a = gateways.get("edge").await.unwrap();
    let b = istio_gateways.get("edge").await.unwrap();
    assert_eq!(a.data["spec"]["gatewayClassName"], "eg");
    assert_eq!(b.data["spec"]["selector"]["istio"], "ingress");
    assert_ne!(a.metadata.uid, b.metadata.uid);
    assert_eq!(
        gateways
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // An injected failure names one kind, not every kind of its plural.
    served
        .sim
        .fail_kind("Gateway.networking.istio.io", 500)
        .unwrap();
    assert!(istio_gateways.get("edge").await.is_err());
    assert!(gateways.get("edge").await.is_ok());
    served.sim.clear_faults();
    // Deleting one CRD leaves the other's objects.
    served
        .sim
        .delete(
            "CustomResourceDefinition",
            "",
            "gateways.networking.istio.io",
        )
        .unwrap();
    assert!(gateways.get("edge").await.is_ok());
    assert!(istio_gateways.get("edge").await.is_err());
}

type Item<K> = Result<Event<K>, watcher::Error>;

/// Reads watcher events until `stop` holds for one; returns them as labels.
async fn labels_until<K: kube::Resource>(
    s: &mut (impl Stream<Item = Item<K>> + Unpin),
    stop: impl Fn(&str) -> bool,
) -> Vec<String> {
    let name = |k: &K| k.meta().name.clone().unwrap_or_default();
    within(20, "watcher events", async {
        let mut seen = Vec::new();
        while let Some(ev) = s.next().await {
            let l = match &ev {
                Ok(Event::Init) => "Init".into(),
                Ok(Event::InitApply(k)) => format!("InitApply({})", name(k)),
                Ok(Event::InitDone) => "InitDone".into(),
                Ok(Event::Apply(k)) => format!("Apply({})", name(k)),
                Ok(Event::Delete(k)) => format!("Delete({})", name(k)),
                Err(_) => "Err".into(),
            };
            let done = stop(&l);
            seen.push(l);
            if done {
                break;
            }
        }
        seen
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_watcher_sees_custom_objects_and_the_crds_deletion() {
    let served = served_with(&["cert-manager.yaml"]).await;
    let client = served.client();
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (ar, _) = find(&d, "cert-manager.io", "Certificate").unwrap();
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let mut events = watcher::watcher(all, watcher::Config::default()).boxed();
    let seen = labels_until(&mut events, |l| l == "InitDone").await;
    assert_eq!(seen, ["Init", "InitDone"]);

    let certs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    for name in ["a", "b"] {
        certs
            .create(
                &PostParams::default(),
                &serde_json::from_value(certificate("default", name)).unwrap(),
            )
            .await
            .unwrap();
    }
    certs
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"secretName": "a-2"}})),
        )
        .await
        .unwrap();
    let seen = labels_until(&mut events, |l| l == "Apply(a)").await;
    assert_eq!(seen, ["Apply(a)"]);
    let seen = labels_until(&mut events, |l| l == "Apply(a)").await;
    assert_eq!(seen, ["Apply(b)", "Apply(a)"]);
    certs.delete("b", &Default::default()).await.unwrap();
    assert_eq!(
        labels_until(&mut events, |l| l.starts_with("Delete")).await,
        ["Delete(b)"]
    );

    served
        .sim
        .delete(
            "CustomResourceDefinition",
            "",
            "certificates.cert-manager.io",
        )
        .unwrap();
    let seen = labels_until(&mut events, |l| l.starts_with("Delete")).await;
    assert_eq!(seen, ["Delete(a)"]);
    // The kind is gone: its watch ended and the watcher's relist fails.
    let seen = labels_until(&mut events, |l| l == "Err").await;
    assert!(seen.iter().all(|l| l == "Init" || l == "Err"), "{seen:?}");
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(find(&d, "cert-manager.io", "Certificate").is_none());
    assert!(find(&d, "cert-manager.io", "Issuer").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_watcher_over_a_custom_kind_gets_partial_objects() {
    let served = served_with(&["prometheus-operator.yaml"]).await;
    let client = served.client();
    let d = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, _) = find(&d, "monitoring.coreos.com", "ServiceMonitor").unwrap();
    let monitors: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    monitors
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor", "metadata": {"name": "web", "labels": {"team": "a"}},
                "spec": {"selector": {"matchLabels": {"app": "web"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    // kube's metadata watcher: an `Api` of `PartialObjectMeta` asks for metadata only.
    let all: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &ar);
    let mut events = watcher::watcher(all, watcher::Config::default()).boxed();
    let mut partial: Vec<PartialObjectMeta<DynamicObject>> = Vec::new();
    within(20, "metadata watcher", async {
        while let Some(ev) = events.next().await {
            match ev.unwrap() {
                Event::InitApply(p) | Event::Apply(p) => partial.push(p),
                Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(partial.len(), 1);
    let p = &partial[0];
    assert_eq!(p.metadata.name.as_deref(), Some("web"));
    assert_eq!(p.metadata.labels.as_ref().unwrap()["team"], "a");
    let types = p.types.as_ref().expect("type meta");
    assert_eq!(types.kind, "PartialObjectMetadata");
    assert_eq!(types.api_version, "meta.k8s.io/v1");
}

/// Sends `body` (none for `Value::Null`) with `method` and `ct`; returns the status and the JSON
/// answer.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    ct: &str,
    body: &Value,
) -> (u16, Value) {
    let mut req = http.request(method, url).header("content-type", ct);
    if !body.is_null() {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn custom_objects_over_http_have_the_built_in_semantics() {
    let served = served_with(&["cert-manager.yaml", "prometheus-operator.yaml"]).await;
    let http = reqwest::Client::new();
    let base = format!("{}/apis/cert-manager.io/v1", served.url());
    let certs = format!("{base}/namespaces/default/certificates");

    // Legacy discovery names the kinds with their verbs, short names and categories.
    let list: Value = get_json(&http, &base, None).await;
    let cert = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "certificates")
        .cloned()
        .unwrap();
    assert_eq!(cert["namespaced"], true);
    assert_eq!(cert["shortNames"], json!(["cert", "certs"]));
    assert_eq!(cert["categories"], json!(["cert-manager"]));
    assert!(cert["verbs"].as_array().unwrap().contains(&json!("watch")));
    let groups: Value = get_json(
        &http,
        &format!("{}/apis/cert-manager.io", served.url()),
        None,
    )
    .await;
    assert_eq!(
        groups["preferredVersion"]["groupVersion"],
        "cert-manager.io/v1"
    );

    // Aggregated discovery answers with its media type.
    let resp = http
        .get(format!("{}/apis", served.url()))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let agg: Value = resp.json().await.unwrap();
    let cm = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "cert-manager.io")
        .cloned()
        .unwrap();
    let issuer = cm["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "clusterissuers")
        .cloned()
        .unwrap();
    assert_eq!(issuer["scope"], "Cluster");
    assert_eq!(issuer["responseKind"]["kind"], "ClusterIssuer");

    // A missing namespace is 404; a kind that does not match the URL is refused.
    let (code, _) = post(
        &http,
        &format!("{base}/namespaces/nowhere/certificates"),
        &certificate("nowhere", "x"),
    )
    .await;
    assert_eq!(code, 404);
    let mut wrong = certificate("default", "x");
    wrong["kind"] = json!("Issuer");
    let (code, _) = post(&http, &certs, &wrong).await;
    assert_eq!(code, 400);
    let mut nameless = certificate("default", "x");
    nameless["metadata"].as_object_mut().unwrap().remove("name");
    let (code, _) = post(&http, &certs, &nameless).await;
    assert_eq!(code, 422);

    // Create ignores the status (the status subresource owns it); /status changes only it.
    let mut with_status = certificate("default", "a");
    with_status["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let (code, created) = post(&http, &certs, &with_status).await;
    assert_eq!(code, 201, "{created}");
    assert!(created.get("status").is_none(), "{created}");
    let (code, st) = patch(
        &http,
        &format!("{certs}/a/status"),
        "application/merge-patch+json",
        &json!({"spec": {"secretName": "ignored"}, "status": {"revision": 1}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["status"]["revision"], 1);
    assert_eq!(st["spec"]["secretName"], "a-tls");
    assert_eq!(st["metadata"]["generation"], 1);
    let (_, main) = patch(
        &http,
        &format!("{certs}/a"),
        "application/json-patch+json",
        &json!([{"op": "replace", "path": "/spec/secretName", "value": "a-2"},
                {"op": "add", "path": "/status", "value": {"revision": 9}}]),
    )
    .await;
    assert_eq!(main["spec"]["secretName"], "a-2");
    assert_eq!(main["status"]["revision"], 1, "{main}");
    assert_eq!(main["metadata"]["generation"], 2);
    // A kind whose CRD declares no status subresource has no /status.
    served
        .sim
        .create(
            "ServiceMonitor",
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {}}),
        )
        .unwrap();
    let monitors = format!(
        "{}/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors/web",
        served.url()
    );
    assert_eq!(get_code(&http, &monitors).await, 200);
    assert_eq!(get_code(&http, &format!("{monitors}/status")).await, 404);

    // Strategic merge patches are refused for custom kinds.
    let (code, body) = patch(
        &http,
        &format!("{certs}/a"),
        "application/strategic-merge-patch+json",
        &json!({"spec": {"secretName": "b"}}),
    )
    .await;
    assert_eq!(code, 415, "{body}");

    // Server-side apply creates and then merges.
    let apply = |name: &str, dns: &str| {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": name, "labels": {"app": "b"}},
            "spec": {"secretName": "b-tls", "dnsNames": [dns], "issuerRef": {"name": "ca"}}})
    };
    let ssa = format!("{certs}/b?fieldManager=test");
    let (code, b) = patch(
        &http,
        &ssa,
        "application/apply-patch+yaml",
        &apply("b", "one"),
    )
    .await;
    assert_eq!(code, 201, "{b}");
    let (code, b) = patch(
        &http,
        &ssa,
        "application/apply-patch+yaml",
        &apply("b", "two"),
    )
    .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["spec"]["dnsNames"], json!(["two"]));
    assert_eq!(b["metadata"]["managedFields"][0]["manager"], "test");
    // Lists of custom kinds are atomic: an applied list replaces another manager's whole list
    // (a built-in `containers` list would merge by name).
    let mut pod_like = certificate("default", "p");
    pod_like["spec"]["containers"] = json!([{"name": "a"}]);
    let (code, _) = post(&http, &format!("{certs}?fieldManager=before"), &pod_like).await;
    assert_eq!(code, 201);
    let mut applied = apply("p", "one");
    applied["spec"]["containers"] = json!([{"name": "b"}]);
    let (code, p) = patch(
        &http,
        &format!("{certs}/p?fieldManager=test&force=true"),
        "application/apply-patch+yaml",
        &applied,
    )
    .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["spec"]["containers"], json!([{"name": "b"}]), "{p}");
    served.sim.delete("Certificate", "default", "p").unwrap();

    // Lists: label selectors, pages with continue tokens, metadata only.
    for i in 0..3 {
        let (code, _) = post(&http, &certs, &certificate("default", &format!("c{i}"))).await;
        assert_eq!(code, 201);
    }
    let selected: Value = get_json(&http, &format!("{certs}?labelSelector=app%3Db"), None).await;
    assert_eq!(selected["kind"], "CertificateList");
    assert_eq!(selected["items"].as_array().unwrap().len(), 1);
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page: Value = get_json(
            &http,
            &format!("{}/certificates?limit=2&continue={token}", base),
            None,
        )
        .await;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].clone()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c0", "c1", "c2"]);
    let partial: Value = get_json(
        &http,
        &certs,
        Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
    )
    .await;
    assert_eq!(partial["kind"], "PartialObjectMetadataList");
    assert!(partial["items"][0].get("spec").is_none(), "{partial}");

    // A watch with bookmarks from the list's resourceVersion sees the change after it.
    let rv = selected["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = http
        .get(format!(
            "{certs}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"
        ))
        .send()
        .await
        .unwrap();
    served.sim.delete("Certificate", "default", "c0").unwrap();
    let mut text = String::new();
    within(10, "watch events", async {
        while !(text.contains("\"DELETED\"") && text.contains("\"BOOKMARK\"")) {
            let chunk = watch.chunk().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    let bookmark = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "BOOKMARK")
        .unwrap();
    assert_eq!(bookmark["object"]["kind"], "Certificate");
    assert_eq!(bookmark["object"]["apiVersion"], "cert-manager.io/v1");
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_objects_and_ends_its_watches() {
    let served = served_with(&["cert-manager.yaml"]).await;
    for name in ["a", "b"] {
        served
            .sim
            .create("Certificate", certificate("default", name))
            .unwrap();
    }
    served
        .sim
        .create(
            "ClusterIssuer",
            json!({"metadata": {"name": "ca"}, "spec": {"ca": {"secretName": "ca"}}}),
        )
        .unwrap();
    let http = reqwest::Client::new();
    let mut watch = http
        .get(format!(
            "{}/apis/cert-manager.io/v1/certificates?watch=true&resourceVersion={}",
            served.url(),
            served.sim.current_rv()
        ))
        .send()
        .await
        .unwrap();
    let (code, _) = send(
        &http,
        reqwest::Method::DELETE,
        &format!(
            "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.cert-manager.io",
            served.url()
        ),
        "application/json",
        &json!({}),
    )
    .await;
    assert_eq!(code, 200);
    // The stream carries a DELETED event per object, then ends.
    let text = within(10, "the watch ends", async {
        let mut text = String::new();
        while let Some(chunk) = watch.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await;
    let deleted: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "DELETED")
        .map(|e| e["object"]["metadata"]["name"].clone())
        .collect();
    assert_eq!(deleted, ["a", "b"], "{text}");
    assert_eq!(
        get_code(
            &http,
            &format!("{}/apis/cert-manager.io/v1/certificates", served.url())
        )
        .await,
        404
    );
    let list: Value = get_json(
        &http,
        &format!("{}/apis/cert-manager.io/v1", served.url()),
        None,
    )
    .await;
    let names: Vec<&Value> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert!(!names.contains(&&json!("certificates")), "{names:?}");
    assert_eq!(served.sim.list("ClusterIssuer").unwrap().len(), 1);
    assert!(served.sim.kind_info("Certificate").is_err());
}

/// The status code of a GET of `url`.
async fn get_code(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

/// A PATCH of `url` with `body` as `ct`.
async fn patch(http: &reqwest::Client, url: &str, ct: &str, body: &Value) -> (u16, Value) {
    send(http, reqwest::Method::PATCH, url, ct, body).await
}

/// A POST of `body` as JSON to `url`.
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    send(http, reqwest::Method::POST, url, "application/json", body).await
}

#[tokio::test]
async fn a_crd_with_two_versions_prefers_the_higher_and_both_serve_one_store() {
    let served = served_with(&[]).await;
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    served
        .sim
        .create(
            "CustomResourceDefinition",
            json!({"metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets"},
                    "versions": [version("v1alpha1", false), version("v1", true)]}}),
        )
        .unwrap();
    let http = reqwest::Client::new();
    let group = get_json(&http, &format!("{}/apis/example.com", served.url()), None).await;
    assert_eq!(group["preferredVersion"]["version"], "v1", "{group}");
    for d in [
        Discovery::new(served.client()).run().await.unwrap(),
        Discovery::new(served.client())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let g = d.get("example.com").expect("group");
        assert_eq!(g.preferred_version_or_latest(), "v1");
        assert_eq!(g.versions().collect::<Vec<_>>(), ["v1", "v1alpha1"]);
    }

    let v1 = format!(
        "{}/apis/example.com/v1/namespaces/default/widgets",
        served.url()
    );
    let alpha = format!(
        "{}/apis/example.com/v1alpha1/namespaces/default/widgets",
        served.url()
    );
    let (code, _) = post(
        &http,
        &v1,
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )
    .await;
    assert_eq!(code, 201);
    // Each version serves the object with its own apiVersion, in reads and in watches.
    let w = get_json(&http, &format!("{alpha}/w"), None).await;
    assert_eq!(w["apiVersion"], "example.com/v1alpha1", "{w}");
    let text = http
        .get(format!("{alpha}?watch=true&timeoutSeconds=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let added: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        added["object"]["apiVersion"], "example.com/v1alpha1",
        "{text}"
    );
    let w = get_json(&http, &format!("{v1}/w"), None).await;
    assert_eq!(w["apiVersion"], "example.com/v1", "{w}");
    // Stop serving v1alpha1: its path goes, the objects stay.
    served
        .sim
        .update(
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
            |crd| {
                crd["spec"]["versions"][0]["served"] = json!(false);
            },
        )
        .unwrap();
    assert_eq!(get_code(&http, &format!("{alpha}/w")).await, 404);
    assert_eq!(get_code(&http, &format!("{v1}/w")).await, 200);
}
