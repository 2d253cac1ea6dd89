#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The kubectl workflows people use, with the real kubectl against the emulator over HTTP, each
//! checked through the emulator's API: create generators, apply (twice, server-side, with client
//! validation), patches, dry runs, a missing namespace, describe (of every kind an applied app and
//! the controllers make) and events.

mod common;

use astrolabe_kubesim::Sim;
use astrolabe_testkit::Kubectl;
use common::{Served, fast_config};
use serde_json::{Value, json};

/// An emulator with namespace `shop`, and kubectl for it.
async fn start() -> (Served, Kubectl) {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create("Namespace", json!({"metadata": {"name": "shop"}}))
        .unwrap();
    let k = Kubectl::new(&served.url());
    (served, k)
}

fn get(sim: &Sim, kind: &str, name: &str) -> Value {
    sim.get(kind, "shop", name)
        .unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: "example/api:1"
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: blue}, {name: LEVEL, value: info}]
      - name: proxy
        image: "example/proxy:1"
"#;

/// Asserts that every field `expected` sets (nulls, empty objects and `status` aside) has the same
/// value in `actual`.
fn assert_contains(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), _) => {
            for (k, v) in e {
                if v.is_null()
                    || v.as_object().is_some_and(serde_json::Map::is_empty)
                    || (path.matches('.').count() == 0 && k == "status")
                {
                    continue;
                }
                let got = actual.get(k).unwrap_or(&Value::Null);
                assert_contains(v, got, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (n, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_contains(ev, av, &format!("{path}[{n}]"));
            }
        }
        _ => assert_eq!(expected, actual, "at {path}"),
    }
}

/// Each generator, as `kubectl create` arguments (all in namespace `shop`).
const GENERATORS: &[&[&str]] = &[
    &[
        "configmap",
        "cfg",
        "--from-literal=mode=blue",
        "--from-literal=level=info",
    ],
    &["secret", "generic", "creds", "--from-literal=k=value"],
    &[
        "secret",
        "docker-registry",
        "pull",
        "--docker-server=r.example",
        "--docker-username=u",
        "--docker-password=p",
    ],
    &[
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--port=80",
        "--replicas=3",
    ],
    &[
        "deployment",
        "zero",
        "--image=nginx",
        "--replicas=0",
        "--",
        "sleep",
        "1d",
    ],
    &["serviceaccount", "robot"],
    &["service", "clusterip", "web", "--tcp=80:8080"],
    &["service", "nodeport", "np", "--tcp=443:8443"],
    &["job", "once", "--image=busybox", "--", "echo", "hi"],
    &[
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=0 3 * * *",
        "--",
        "date",
    ],
    &[
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods,configmaps",
    ],
    &[
        "rolebinding",
        "readers",
        "--role=reader",
        "--user=alice",
        "--serviceaccount=shop:robot",
    ],
    &["clusterrole", "watcher", "--verb=watch", "--resource=nodes"],
    &["clusterrole", "aggregated", "--aggregation-rule=team=a"],
    &[
        "clusterrolebinding",
        "watchers",
        "--clusterrole=watcher",
        "--group=ops",
    ],
    &[
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=50%",
    ],
    &[
        "ingress",
        "web",
        "--class=nginx",
        "--rule=shop.example/api*=web:80,tls=shop-tls",
        "--default-backend=web:http",
    ],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators() {
    let (served, k) = start().await;
    k.ok(&["create", "namespace", "team"]).await;
    assert!(served.sim.get("Namespace", "", "team").is_ok());
    for args in GENERATORS {
        let mut cmd = vec!["create", "-n", "shop"];
        cmd.extend_from_slice(args);
        // What kubectl sends, as JSON: every field of it must arrive.
        let (head, command) = match cmd.iter().position(|a| *a == "--") {
            Some(p) => cmd.split_at(p),
            None => (cmd.as_slice(), &[][..]),
        };
        let mut dry = head.to_vec();
        dry.extend_from_slice(&["--dry-run=client", "-o", "json"]);
        dry.extend_from_slice(command);
        let expected: Value = serde_json::from_str(&k.ok(&dry).await).unwrap();
        k.ok(&cmd).await;
        let kind = expected["kind"].as_str().unwrap();
        let name = expected["metadata"]["name"].as_str().unwrap();
        let stored = served.sim.get(kind, "shop", name).unwrap();
        assert_contains(&expected, &stored, &format!("{kind}/{name}"));
    }
    // `kubectl autoscale` needs the scale subresource in discovery, and sends protobuf too.
    k.ok(&[
        "autoscale",
        "deployment",
        "web",
        "-n",
        "shop",
        "--max=5",
        "--cpu-percent=70",
    ])
    .await;
    let hpa = get(&served.sim, "HorizontalPodAutoscaler", "web");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "web");
    assert_eq!(hpa["spec"]["maxReplicas"], 5);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    // A Service gets a cluster IP.
    let ip = get(&served.sim, "Service", "web")["spec"]["clusterIP"].clone();
    assert!(
        ip.as_str().is_some_and(|ip| ip.starts_with("10.100.")),
        "{ip}"
    );
    let secret = get(&served.sim, "Secret", "creds");
    assert_eq!(secret["data"]["k"], "dmFsdWU=");
    assert_eq!(
        get(&served.sim, "Deployment", "zero")["spec"]["replicas"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_twice_unchanged() {
    let (served, k) = start().await;
    let file = k.file("d.yaml", DEPLOY);
    let first = k.ok(&["apply", "-f", &file]).await;
    assert!(first.contains("deployment.apps/api created"), "{first}");
    let rv = get(&served.sim, "Deployment", "api")["metadata"]["resourceVersion"].clone();
    let second = k.ok(&["apply", "-f", &file]).await;
    assert!(second.contains("deployment.apps/api unchanged"), "{second}");
    assert_eq!(
        get(&served.sim, "Deployment", "api")["metadata"]["resourceVersion"],
        rv
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_force() {
    let (served, k) = start().await;
    let file = k.file("d.yaml", DEPLOY);
    let created = k.ok(&["apply", "--server-side", "-f", &file]).await;
    assert!(created.contains("serverside-applied"), "{created}");
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    let obj = get(&served.sim, "Deployment", "api");
    let fields = &obj["metadata"]["managedFields"];
    assert_eq!(fields.as_array().map(Vec::len), Some(1), "{fields}");
    assert_eq!(fields[0]["manager"], "kubectl");
    assert_eq!(fields[0]["operation"], "Apply");
    assert!(
        fields[0]["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{fields}"
    );

    let scaled = k.file("d5.yaml", &DEPLOY.replace("replicas: 2", "replicas: 5"));
    let (ok, out) = k
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "-f",
            &scaled,
        ])
        .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("conflict with \"kubectl\": .spec.replicas"),
        "{out}"
    );
    assert_eq!(get(&served.sim, "Deployment", "api")["spec"]["replicas"], 2);

    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=ops",
        "--force-conflicts",
        "-f",
        &scaled,
    ])
    .await;
    let obj = get(&served.sim, "Deployment", "api");
    assert_eq!(obj["spec"]["replicas"], 5);
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kubectl", "ops"]);
    assert!(
        obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none(),
        "kubectl lost .spec.replicas to ops: {obj}"
    );
}

/// The managers of an object's `managedFields`, as `operation/manager`.
fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["operation"].as_str().unwrap(),
                        e["manager"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_after_imperative_writes() {
    let (served, k) = start().await;
    // `kubectl create` owns what it set: a server-side apply changing it conflicts.
    k.ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "shop",
        "--image=example/api:1",
    ])
    .await;
    let created = get(&served.sim, "Deployment", "api");
    assert_eq!(managers(&created), ["Update/kubectl-create"]);
    let file = k.file("d.yaml", DEPLOY);
    let (ok, out) = k.run(&["apply", "--server-side", "-f", &file]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("conflict with \"kubectl-create\" using apps/v1 at")
            && out.contains(".spec.replicas"),
        "{out}"
    );
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        .await;
    assert_eq!(get(&served.sim, "Deployment", "api")["spec"]["replicas"], 2);

    // Client-side apply, then server-side: the fields of the last-applied annotation pass over.
    let other = DEPLOY.replace("name: api,", "name: web,");
    let file = k.file("w.yaml", &other);
    k.ok(&["apply", "-f", &file]).await;
    let file = k.file("w2.yaml", &other.replace("example/api:1", "example/api:2"));
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    let web = get(&served.sim, "Deployment", "web");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "example/api:2"
    );
    assert!(
        managers(&web).contains(&"Apply/kubectl".to_owned()),
        "{web}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_keep_unrelated_list_entries() {
    let (served, k) = start().await;
    let file = k.file("d.yaml", DEPLOY);
    k.ok(&["apply", "-f", &file]).await;
    let containers =
        |sim: &Sim| get(sim, "Deployment", "api")["spec"]["template"]["spec"]["containers"].clone();

    // Strategic merge: one container and one env entry change, the others stay.
    k.ok(&[
        "patch", "deployment", "api", "-n", "shop", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"example/api:2","env":[{"name":"MODE","value":"green"}]}]}}}}"#,
    ])
    .await;
    let c = containers(&served.sim);
    assert_eq!(c[0]["image"], "example/api:2");
    assert_eq!(
        c[0]["env"],
        json!([{"name": "MODE", "value": "green"}, {"name": "LEVEL", "value": "info"}])
    );
    assert_eq!(c[0]["ports"][0]["containerPort"], 8080);
    assert_eq!(c[1]["image"], "example/proxy:1");

    // JSON patch (RFC 6902): append an env entry.
    k.ok(&[
        "patch", "deployment", "api", "-n", "shop", "--type=json", "-p",
        r#"[{"op":"add","path":"/spec/template/spec/containers/1/env","value":[{"name":"UP","value":"api"}]}]"#,
    ])
    .await;
    let c = containers(&served.sim);
    assert_eq!(c[1]["env"][0]["name"], "UP");
    assert_eq!(c[0]["env"].as_array().map(Vec::len), Some(2));

    // JSON merge patch: a map key changes, its siblings stay.
    k.ok(&[
        "patch",
        "deployment",
        "api",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"backend"}},"spec":{"replicas":4}}"#,
    ])
    .await;
    let obj = get(&served.sim, "Deployment", "api");
    assert_eq!(obj["spec"]["replicas"], 4);
    assert_eq!(obj["metadata"]["labels"]["tier"], "backend");
    assert_eq!(containers(&served.sim).as_array().map(Vec::len), Some(2));

    // A resourceVersion in a patch is a precondition.
    let (ok, out) = k
        .run(&[
            "patch",
            "deployment",
            "api",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":9}}"#,
        ])
        .await;
    assert!(!ok && out.contains("the object has been modified"), "{out}");
    assert_eq!(get(&served.sim, "Deployment", "api")["spec"]["replicas"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_edits() {
    let (served, k) = start().await;
    let file = k.file("d.yaml", DEPLOY);
    k.ok(&["apply", "-f", &file]).await;
    let (ok, out) = k
        .run_with(
            &["edit", "deployment", "api", "-n", "shop"],
            &[("EDITOR", "sed -i s,proxy:1,proxy:2,")],
        )
        .await;
    assert!(ok && out.contains("edited"), "{out}");
    // kubectl edit patches with strict field validation: a field the type lacks is refused.
    let (ok, out) = k
        .run_with(
            &["edit", "deployment", "api", "-n", "shop"],
            &[(
                "EDITOR",
                "sed -i s,progressDeadlineSeconds,progressDeadlineSecondz,",
            )],
        )
        .await;
    assert!(
        !ok && out.contains("unknown field \"spec.progressDeadlineSecondz\""),
        "{out}"
    );
    let spec = get(&served.sim, "Deployment", "api")["spec"].clone();
    assert!(spec.get("progressDeadlineSecondz").is_none(), "{spec}");
    k.ok(&[
        "set",
        "image",
        "deployment/api",
        "-n",
        "shop",
        "api=example/api:3",
    ])
    .await;
    k.ok(&[
        "set",
        "env",
        "deployment/api",
        "-n",
        "shop",
        "-c",
        "proxy",
        "UP=1",
    ])
    .await;
    k.ok(&[
        "expose",
        "deployment",
        "api",
        "-n",
        "shop",
        "--port=80",
        "--target-port=8080",
    ])
    .await;
    let c = get(&served.sim, "Deployment", "api")["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(c[0]["image"], "example/api:3");
    assert_eq!(c[0]["env"].as_array().map(Vec::len), Some(2));
    assert_eq!(c[1]["image"], "example/proxy:2");
    assert_eq!(c[1]["env"], json!([{"name": "UP", "value": "1"}]));
    let svc = get(&served.sim, "Service", "api");
    assert_eq!(svc["spec"]["selector"], json!({"app": "api"}));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_server_persists_nothing() {
    let (served, k) = start().await;
    let file = k.file("d.yaml", DEPLOY);
    k.ok(&[
        "create",
        "configmap",
        "kept",
        "-n",
        "shop",
        "--from-literal=a=1",
    ])
    .await;
    let rv = served.sim.current_rv();
    let count = served.sim.object_count();

    let out = k
        .ok(&[
            "create",
            "configmap",
            "dry",
            "-n",
            "shop",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .await;
    assert!(out.contains("\"name\": \"dry\""), "{out}");
    k.ok(&["apply", "-f", &file, "--dry-run=server"]).await;
    k.ok(&["apply", "--server-side", "-f", &file, "--dry-run=server"])
        .await;
    let patched = k
        .ok(&[
            "patch",
            "cm",
            "kept",
            "-n",
            "shop",
            "--dry-run=server",
            "-p",
            r#"{"data":{"a":"2"}}"#,
            "-o",
            "json",
        ])
        .await;
    let patched: Value = serde_json::from_str(&patched).unwrap();
    assert_eq!(patched["data"]["a"], "2", "the answer shows the change");
    assert_eq!(
        patched["metadata"]["resourceVersion"],
        get(&served.sim, "ConfigMap", "kept")["metadata"]["resourceVersion"],
        "a dry run issues no resourceVersion"
    );
    k.ok(&["delete", "cm", "kept", "-n", "shop", "--dry-run=server"])
        .await;

    assert_eq!(served.sim.current_rv(), rv, "a dry run changed the store");
    assert_eq!(served.sim.object_count(), count);
    assert_eq!(get(&served.sim, "ConfigMap", "kept")["data"]["a"], "1");
    assert!(served.sim.get("Deployment", "shop", "api").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_a_missing_namespace_fails() {
    let (served, k) = start().await;
    let (ok, out) = k
        .run(&[
            "create",
            "configmap",
            "lost",
            "-n",
            "nowhere",
            "--from-literal=a=1",
        ])
        .await;
    assert!(!ok, "{out}");
    assert!(out.contains("namespaces \"nowhere\" not found"), "{out}");
    let file = k.file(
        "d.yaml",
        &DEPLOY.replace("namespace: shop", "namespace: nowhere"),
    );
    let (ok, out) = k.run(&["apply", "--server-side", "-f", &file]).await;
    assert!(
        !ok && out.contains("namespaces \"nowhere\" not found"),
        "{out}"
    );
    assert!(served.sim.list("ConfigMap").unwrap().is_empty());
    assert!(served.sim.list("Deployment").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_deployment() {
    let (served, k) = start().await;
    let minimal = DEPLOY.replace("  replicas: 2\n", "");
    let file = k.file("d.yaml", &minimal);
    k.ok(&["apply", "-f", &file]).await;
    let out = k.ok(&["describe", "deployment", "api", "-n", "shop"]).await;
    assert!(
        out.contains("Replicas:") && out.contains("1 desired"),
        "{out}"
    );
    assert!(
        out.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"),
        "{out}"
    );
    let obj = get(&served.sim, "Deployment", "api");
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_events() {
    let (served, k) = start().await;
    let none = k.ok(&["get", "events", "-A"]).await;
    assert!(none.contains("No resources found"), "{none}");
    served
        .sim
        .create(
            "Event",
            json!({"metadata": {"name": "api.1", "namespace": "shop"}, "reason": "Scheduled",
                   "message": "placed", "involvedObject": {"kind": "Pod", "name": "api-1", "namespace": "shop"}}),
        )
        .unwrap();
    let one = k.ok(&["get", "events", "-n", "shop", "-o", "name"]).await;
    assert_eq!(one.trim(), "event/api.1");
    let table = k.ok(&["get", "events", "-n", "shop"]).await;
    assert!(
        table.contains("Scheduled") && table.contains("placed"),
        "{table}"
    );
    let newer = k.ok(&["get", "events.events.k8s.io", "-A"]).await;
    assert!(newer.contains("No resources found"), "{newer}");
}

const LIST: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed, namespace: shop}
  data: {a: b}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_client_validation() {
    let (served, k) = start().await;
    let valid = k.file("d.yaml", DEPLOY);
    k.ok(&["apply", "-f", &valid]).await;
    let list = k.file("l.yaml", LIST);
    k.ok(&["apply", "-f", &list]).await;
    assert!(served.sim.get("ConfigMap", "shop", "listed").is_ok());

    let typo = DEPLOY.replace("image: \"example/proxy:1\"", "imagee: \"example/proxy:1\"");
    let invalid = k.file("bad.yaml", &typo.replace("name: api,", "name: bad,"));
    let (ok, out) = k.run(&["apply", "-f", &invalid]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("unknown field \"spec.template.spec.containers[1].imagee\""),
        "{out}"
    );
    assert!(served.sim.get("Deployment", "shop", "bad").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_every_kind_of_an_applied_app() {
    // The multi-tier app of the binary's tests, on an emulator with its controllers: kubectl
    // describes every object of every kind it and the controllers made.
    let served = Served::start(astrolabe_kubesim::SimConfig {
        controllers: true,
        default_namespaces: true,
        nodes: 1,
        ..fast_config()
    })
    .await;
    let k = Kubectl::new(&served.url());
    let app = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../cmd/astrolabe/tests/fixtures/multi-tier.yaml"
    ))
    .unwrap();
    let file = k.file("app.yaml", &app);
    k.ok(&["apply", "-f", &file]).await;
    astrolabe_testkit::until(
        "the controllers run",
        std::time::Duration::from_secs(20),
        || served.sim.controllers_running(),
    )
    .await;
    served
        .sim
        .settle(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let kinds = "deployments,replicasets,statefulsets,pods,services,endpointslices,configmaps,\
                 secrets,serviceaccounts,persistentvolumeclaims,ingresses,\
                 horizontalpodautoscalers,poddisruptionbudgets,networkpolicies,events";
    let names = k.ok(&["get", kinds, "-n", "shop", "-o", "name"]).await;
    let cluster = k
        .ok(&[
            "get",
            "nodes,persistentvolumes,storageclasses,namespaces",
            "-o",
            "name",
        ])
        .await;
    let mut described = std::collections::BTreeSet::new();
    for name in names.lines().filter(|l| !l.trim().is_empty()) {
        let out = k.ok(&["describe", name, "-n", "shop"]).await;
        assert!(out.contains("Name:"), "{name}: {out}");
        described.insert(name.split('/').next().unwrap_or_default().to_owned());
    }
    for name in cluster.lines().filter(|l| !l.trim().is_empty()) {
        let out = k.ok(&["describe", name]).await;
        assert!(out.contains("Name:"), "{name}: {out}");
        described.insert(name.split('/').next().unwrap_or_default().to_owned());
    }
    // Every kind had an object to describe (kubectl names them `kind.group/name`).
    assert!(described.len() >= 18, "{described:?}");
}
