//! The explorer at `/ui/` in a real headless Chromium (Debian's `chromium` and `chromedriver`,
//! driven over WebDriver by fantoccini), against the real `astrolabe demo` (changed through its
//! emulator with the real kubectl), and against `astrolabe serve` watching an emulator the test
//! fills directly where it needs thousands of objects at once. The history tests move the time
//! slider from the keyboard, compare views of the past and diffs with the API's answers, and
//! follow deep links to past points. The page's graph is read back through its test hook `window.astrolabe` (the
//! cytoscape model), and compared with what the API answers. Screenshots are saved under
//! `target/tmp/ui-e2e/` for review.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use astrolabe_testkit::Kubectl;
use common::{Emulator, Server, Sets, eventually};
use fantoccini::{Client, ClientBuilder, Locator, key::Key};
use serde_json::{Value, json};

/// `chromedriver` on a free port, and one headless Chromium session through it.
struct Browser {
    client: Client,
    driver: Child,
    driver_url: String,
    shots: PathBuf,
}

/// Fails with the command that installs them when the browser or its driver is missing: these
/// tests must never pass by skipping.
fn require(binary: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{binary} is not installed: the explorer's browser tests need Debian's chromium and \
             chromedriver (apt-get install -y chromium chromium-driver)"
        )
    })
}

impl Browser {
    async fn start(test: &str) -> Browser {
        let chromium = require("chromium");
        let chromedriver = require("chromedriver");
        let port = astrolabe_testkit::free_port().unwrap();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,900"],
            }),
        );
        caps.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
        let url = driver_url.clone();
        let client = eventually(
            "chromedriver accepts a session",
            || "chromedriver did not answer".to_owned(),
            || {
                let caps = caps.clone();
                let url = url.clone();
                async move {
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await;
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("ui-e2e")
            .join(test);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver,
            driver_url,
            shots,
        }
    }

    /// Evaluates `expr` in the page (`return` is added).
    async fn js(&self, expr: &str) -> Value {
        self.client
            .execute(&format!("return {expr};"), vec![])
            .await
            .unwrap_or(Value::Null)
    }

    /// Waits until `expr` evaluates to something truthy, and returns it.
    async fn until(&self, what: &str, expr: &str) -> Value {
        eventually(what, String::new, || async {
            let v = self.js(expr).await;
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            truthy.then_some(v)
        })
        .await
    }

    /// Opens the explorer's `fragment` (a view, `#view=...`) on `server`.
    async fn open(&self, server: &Server, fragment: &str) {
        let url = format!("{}/ui/{fragment}", base(server));
        self.client.goto(&url).await.unwrap();
    }

    /// Waits until `cond` holds and the page has drawn its current view.
    async fn shows(&self, what: &str, cond: &str) -> Value {
        let ready = format!("({cond}) && document.body.dataset.state === 'ready'");
        self.until(what, &ready).await
    }

    /// Waits until the page has drawn its current view.
    async fn settled(&self) {
        self.shows("the view is drawn", "true").await;
    }

    /// The drawn nodes (UIDs) and edges (from, to, type).
    async fn drawn(&self) -> (BTreeSet<String>, BTreeSet<(String, String, String)>) {
        let g = self.js("window.astrolabe.graph()").await;
        let sets = Sets::of_json(&g["nodes"], "id", &g["edges"], ["source", "target", "type"]);
        (sets.nodes, sets.edges)
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The browser's console entries at level SEVERE since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["value"]
            .as_array()
            .expect("chromedriver's browser log")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn close(self) {
        self.close_allowing(&[]).await;
    }

    /// Closes the session; fails on console errors other than those containing one of `allowed`.
    async fn close_allowing(mut self, allowed: &[&str]) {
        let mut errors = self.console_errors().await;
        errors.retain(|e| !allowed.iter().any(|a| e.contains(a)));
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }
}

/// `astrolabe demo` (a generated cluster of about `size` objects, no churn), the URL of its
/// emulator (for kubectl) and a browser on its explorer.
async fn demo(test: &str, size: usize) -> (Server, Kubectl, tempfile::TempDir, Browser) {
    demo_with(test, size, &[]).await
}

/// As [`demo`], with `extra` flags for `astrolabe demo`.
async fn demo_with(
    test: &str,
    size: usize,
    extra: &[&str],
) -> (Server, Kubectl, tempfile::TempDir, Browser) {
    let logs = tempfile::tempdir().unwrap();
    let (server, sim_url) = Server::demo(logs.path(), size, extra);
    server.wait_ready().await;
    let browser = Browser::start(test).await;
    (server, Kubectl::new(&sim_url), logs, browser)
}

/// The server, its emulator and a browser on its explorer.
async fn explorer(test: &str, size: usize) -> (Emulator, Server, tempfile::TempDir, Browser) {
    let emu = Emulator::start(23, size).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    server.wait_ready().await;
    let browser = Browser::start(test).await;
    (emu, server, logs, browser)
}

fn base(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

/// `GET path` on the server's API, which must answer 200.
async fn api(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path).await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// UIDs of a subgraph answer's nodes, and its edges.
fn sets_of(body: &Value) -> (BTreeSet<String>, BTreeSet<(String, String, String)>) {
    let sets = Sets::of_json(
        &body["nodes"],
        "uid",
        &body["edges"],
        ["from", "to", "type"],
    );
    (sets.nodes, sets.edges)
}

fn kinds_of(body: &Value) -> BTreeSet<String> {
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// A Deployment whose neighbourhood (depth 2) holds a ReplicaSet and Pods, and whose Pods a
/// Service selects: `(uid, name, namespace, a Pod's uid, the Service's uid)`.
async fn a_served_deployment(server: &Server) -> (String, String, String, String, String) {
    let list = api(server, "/api/v1/objects?kind=Deployment&limit=500").await;
    for d in list["items"].as_array().unwrap() {
        let uid = d["uid"].as_str().unwrap();
        let near = api(server, &format!("/api/v1/neighbors/{uid}?depth=2")).await;
        let kinds = kinds_of(&near);
        if !(kinds.contains("ReplicaSet") && kinds.contains("Pod")) {
            continue;
        }
        for pod in near["nodes"].as_array().unwrap() {
            if pod["kind"] != "Pod" {
                continue;
            }
            let pod_uid = pod["uid"].as_str().unwrap();
            let detail = api(server, &format!("/api/v1/resources/{pod_uid}")).await;
            let service = detail["incoming"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == "selects" && e["peer"]["kind"] == "Service");
            if let Some(service) = service {
                return (
                    uid.to_owned(),
                    d["name"].as_str().unwrap().to_owned(),
                    d["namespace"].as_str().unwrap().to_owned(),
                    pod_uid.to_owned(),
                    service["from"].as_str().unwrap().to_owned(),
                );
            }
        }
    }
    panic!("the generated cluster has no Deployment with ReplicaSet, Pods and a Service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_look_ask_and_deep_link() {
    let (server, k, _logs, b) = demo("find_look_ask", 400).await;
    let (uid, name, ns, pod, service) = a_served_deployment(&server).await;

    // The page loads; `/` redirects to it.
    b.client.goto(&format!("{}/", base(&server))).await.unwrap();
    b.shows("the explorer loaded", "window.astrolabe").await;
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/"),
        "/ redirects to /ui/"
    );

    // Find: type, move through the results with the keyboard, open with Enter.
    let search = b.client.find(Locator::Id("search")).await.unwrap();
    search
        .send_keys(&format!("kind:Deployment ns:{ns}"))
        .await
        .unwrap();
    let listed = b
        .until(
            "the Deployment is among the results",
            &format!(
                "(() => {{ const ids = [...document.querySelectorAll('#results li')]
                    .map(li => li.dataset.uid); return ids.includes({uid:?}) ? ids : null; }})()"
            ),
        )
        .await;
    let position = listed
        .as_array()
        .unwrap()
        .iter()
        .position(|u| u == &json!(uid))
        .unwrap();
    for _ in 0..position {
        search
            .send_keys(&char::from(Key::Down).to_string())
            .await
            .unwrap();
    }
    let selected = b
        .js("document.querySelector('#results li[aria-selected=true]').dataset.uid")
        .await;
    assert_eq!(selected, json!(uid), "arrow keys select the Deployment");
    search
        .send_keys(&char::from(Key::Enter).to_string())
        .await
        .unwrap();
    b.shows(
        "the Deployment's view",
        &format!("window.astrolabe.view().uid === {uid:?}"),
    )
    .await;

    // Look: the drawn neighbourhood is the API's, with the ReplicaSet and Pods owned in turn.
    let near = api(
        &server,
        &format!("/api/v1/neighbors/{uid}?depth=2&direction=both"),
    )
    .await;
    let (want_nodes, want_edges) = sets_of(&near);
    let (nodes, edges) = b.drawn().await;
    assert_eq!(nodes, want_nodes, "drawn nodes");
    assert_eq!(edges, want_edges, "drawn edges");
    let owned_twice = edges.iter().any(|(from, rs, kind)| {
        *from == uid
            && kind == "owns"
            && edges
                .iter()
                .any(|(owner, pod, k)| owner == rs && k == "owns" && nodes.contains(pod))
    });
    assert!(
        owned_twice,
        "Deployment owns ReplicaSet owns Pods: {edges:?}"
    );
    assert!(nodes.contains(&pod));
    b.shot("neighbourhood").await;

    // The side panel lists every edge of the Deployment, each a link to its other end.
    let detail = api(&server, &format!("/api/v1/resources/{uid}")).await;
    let want_panel: BTreeSet<String> = ["incoming", "outgoing"]
        .iter()
        .flat_map(|dir| detail[dir].as_array().unwrap().clone())
        .map(|e| {
            format!(
                "{}|{}|{}",
                e["type"].as_str().unwrap(),
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    let panel: BTreeSet<String> = serde_json::from_value(
        b.js("[...document.querySelectorAll('#panel li[data-edge]')].map(li => li.dataset.edge)")
            .await,
    )
    .unwrap();
    assert_eq!(panel, want_panel, "the panel lists every edge");
    let links = b
        .js("[...document.querySelectorAll('#panel li[data-edge] a')].every(a => a.getAttribute('href').includes('uid='))")
        .await;
    assert_eq!(links, json!(true), "each edge links to its peer");
    let heading = b
        .js("document.querySelector('#panel h2').textContent")
        .await;
    assert_eq!(heading, json!(format!("Deployment {ns}/{name}")));

    // Expand: double-clicking a Pod adds its neighbours (the Service selecting it) in place.
    assert!(!nodes.contains(&service), "the Service is three edges away");
    b.js(&format!(
        "window.astrolabe.cy.getElementById({pod:?}).emit('dbltap')"
    ))
    .await;
    b.shows(
        "the expanded Pod's Service is drawn",
        &format!("window.astrolabe.cy.getElementById({service:?}).nonempty()"),
    )
    .await;
    let (_, edges) = b.drawn().await;
    assert!(edges.contains(&(service.clone(), pod.clone(), "selects".to_owned())));

    // Ask: impact highlights exactly what depends on the Deployment.
    b.client
        .find(Locator::Id("impact"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.shows("impact is shown", "window.astrolabe.view().impact")
        .await;
    let impact = api(&server, &format!("/api/v1/impact/{uid}")).await;
    let want_impact: BTreeSet<String> = sets_of(&impact)
        .0
        .into_iter()
        .filter(|u| *u != uid)
        .collect();
    assert!(!want_impact.is_empty(), "a Deployment has dependants");
    let highlighted = || async {
        serde_json::from_value::<BTreeSet<String>>(
            b.js("window.astrolabe.graph().nodes.filter(n => n.classes.includes('impact')).map(n => n.id)")
                .await,
        )
        .unwrap()
    };
    assert_eq!(
        highlighted().await,
        want_impact,
        "impact highlights the dependants"
    );
    b.shot("impact").await;

    // A deep link opens the same view: the URL holds the resource and the question.
    let link = b.client.current_url().await.unwrap().to_string();
    assert!(link.contains("impact=1") && link.contains(&uid), "{link}");
    b.client.goto("about:blank").await.unwrap();
    b.client.goto(&link).await.unwrap();
    b.shows(
        "the deep link's view",
        &format!("window.astrolabe && window.astrolabe.view().uid === {uid:?}"),
    )
    .await;
    assert_eq!(
        highlighted().await,
        want_impact,
        "the deep link shows the impact"
    );
    let (nodes_again, _) = b.drawn().await;
    assert!(
        want_nodes.is_subset(&nodes_again),
        "the deep link draws the neighbourhood"
    );

    // Path to: the shortest path from the Deployment to the Service is highlighted.
    b.open(&server, &format!("#view=resource&uid={uid}&to={service}"))
        .await;
    b.shows(
        "the path view",
        &format!("window.astrolabe.view().to === {service:?}"),
    )
    .await;
    let path = api(&server, &format!("/api/v1/path?from={uid}&to={service}")).await;
    assert_eq!(path["found"], json!(true));
    let (want_path, want_path_edges) = sets_of(&path);
    let on_path = b
        .js("(() => { const g = window.astrolabe.graph(); const p = x => x.classes.includes('path');
              return [g.nodes.filter(p).map(n => n.id),
                      g.edges.filter(p).map(e => [e.source, e.target, e.type])]; })()")
        .await;
    let (path_nodes, path_edges): (BTreeSet<String>, BTreeSet<(String, String, String)>) =
        serde_json::from_value(on_path).unwrap();
    assert_eq!(path_nodes, want_path, "the path's nodes are highlighted");
    assert_eq!(
        path_edges, want_path_edges,
        "the path's edges are highlighted"
    );
    b.shot("path").await;

    // The Helm release view draws the release's graph.
    let release = detail["resource"]["release"].as_str().unwrap();
    b.open(&server, &format!("#view=release&name={release}"))
        .await;
    b.shows(
        "the release view",
        &format!("window.astrolabe.view().name === {release:?}"),
    )
    .await;
    let release_graph = api(&server, &format!("/api/v1/graph?release={release}")).await;
    assert_eq!(
        b.drawn().await,
        sets_of(&release_graph),
        "the release's graph"
    );

    // The dangling references of the namespace, each linking to its source: one of them a Pod
    // using a ConfigMap that does not exist.
    let manifest = k.file(
        "needs-missing.json",
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "needs-missing", "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "x:1",
                    "envFrom": [{"configMapRef": {"name": "missing-cm"}}]}]}})
        .to_string(),
    );
    k.ok(&["apply", "-f", &manifest]).await;
    eventually("the dangling reference is served", String::new, || async {
        let d = api(&server, &format!("/api/v1/dangling?namespace={ns}")).await;
        let items = d["items"].as_array()?.clone();
        items
            .iter()
            .any(|i| i["source"]["name"] == "needs-missing")
            .then_some(())
    })
    .await;
    b.open(&server, &format!("#view=dangling&name={ns}")).await;
    b.shows(
        "the dangling list",
        "window.astrolabe.view().mode === 'dangling'",
    )
    .await;
    let dangling = api(&server, &format!("/api/v1/dangling?namespace={ns}")).await;
    let want_sources: Vec<String> = dangling["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"]["uid"].as_str().unwrap().to_owned())
        .collect();
    let linked: Vec<String> = serde_json::from_value(
        b.js("[...document.querySelectorAll('#dangling-list tbody tr a')]
              .map(a => new URLSearchParams(a.getAttribute('href').slice(1)).get('uid'))")
            .await,
    )
    .unwrap();
    assert_eq!(
        linked, want_sources,
        "one row per dangling reference, linking its source"
    );

    // Themes: dark and back, from the keyboard.
    let background = "getComputedStyle(document.body).backgroundColor";
    let light = b.js(background).await;
    b.client
        .find(Locator::Id("theme"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        b.js("document.documentElement.dataset.theme").await,
        json!("dark")
    );
    let dark = b.js(background).await;
    assert_ne!(light, dark, "the dark theme changes the page's colours");
    b.shot("dark").await;
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("t")
        .await
        .unwrap();
    assert_eq!(
        b.js("document.documentElement.dataset.theme").await,
        json!("light")
    );

    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_appear_live_in_place() {
    let (server, k, _logs, b) = demo("live", 200).await;
    let (deployment, name, ns, _, _) = a_served_deployment(&server).await;
    b.open(&server, &format!("#view=namespace&name={ns}")).await;
    b.settled().await;
    b.until(
        "the stream is followed",
        "window.astrolabe.live().connected",
    )
    .await;
    // A marker a reload would lose, and where every node stands.
    b.js("(window.notReloaded = true)").await;
    let positions =
        "Object.fromEntries(window.astrolabe.cy.nodes().map(n => [n.id(), n.position()]))";
    let before = b.js(positions).await;

    k.ok(&[
        "create",
        "configmap",
        "live-cm",
        "-n",
        &ns,
        "--from-literal=a=b",
    ])
    .await;
    b.until(
        "the new ConfigMap is drawn",
        "window.astrolabe.graph().nodes.some(n => n.name === 'live-cm')",
    )
    .await;
    assert_eq!(b.js("window.notReloaded").await, json!(true), "no reload");
    let after = b.js(positions).await;
    for (uid, at) in before.as_object().unwrap() {
        assert_eq!(&after[uid], at, "{uid} stayed where it was");
    }
    let seq = b.js("document.getElementById('st-seq').textContent").await;
    let served = server.seq().await;
    assert!(seq.as_str().unwrap().starts_with("seq "), "{seq}");
    assert!(served > 0);
    b.shot("live-added").await;

    k.ok(&["delete", "configmap", "live-cm", "-n", &ns]).await;
    b.until(
        "the deleted ConfigMap leaves",
        "!window.astrolabe.graph().nodes.some(n => n.name === 'live-cm')",
    )
    .await;
    let bar = b
        .js("document.getElementById('st-ready').textContent")
        .await;
    assert_eq!(bar, json!("ready"));

    // kubectl scale: the Deployment's node changes its status message in place.
    let message = format!("window.astrolabe.cy.getElementById({deployment:?}).data('message')");
    let was = b.js(&message).await;
    assert!(was.as_str().is_some_and(|m| !m.is_empty()), "{was}");
    k.ok(&["scale", "deployment", &name, "-n", &ns, "--replicas=17"])
        .await;
    let now = b
        .until(
            "the scaled Deployment's new status is drawn",
            &format!(
                "(() => {{ const m = {message}; return m && m.endsWith('/17)') ? m : null; }})()"
            ),
        )
        .await;
    assert_ne!(now, was);
    assert_eq!(b.js("window.notReloaded").await, json!(true), "no reload");
    let after = b.js(positions).await;
    for (uid, at) in before.as_object().unwrap() {
        assert_eq!(&after[uid], at, "{uid} stayed where it was after the scale");
    }
    b.shot("live-scaled").await;
    b.close().await;
}

/// A Namespace with `configmaps` ConfigMaps and `pods` Pods, each Pod using one ConfigMap.
fn fill_namespace(emu: &Emulator, ns: &str, configmaps: usize, pods: usize) {
    emu.sim
        .create(
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .unwrap();
    for i in 0..configmaps {
        emu.sim
            .create(
                "ConfigMap",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": format!("cm-{i:04}"), "namespace": ns}}),
            )
            .unwrap();
    }
    for i in 0..pods {
        emu.sim
            .create(
                "Pod",
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": format!("pod-{i:04}"), "namespace": ns},
                       "spec": {"containers": [{"name": "c", "image": "x:1",
                           "envFrom": [{"configMapRef": {"name": format!("cm-{i:04}")}}]}]}}),
            )
            .unwrap();
    }
}

async fn served_count(server: &Server, ns: &str) -> usize {
    server
        .get(&format!("/api/v1/graph?namespace={ns}"))
        .await
        .and_then(|(_, g)| g["nodes"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_namespaces_stay_interactive_then_group() {
    let (emu, server, _logs, b) = explorer("large", 60).await;
    // 1 Namespace + 500 ConfigMaps + 499 Pods: 1,000 nodes, 499 edges.
    fill_namespace(&emu, "big", 500, 499);
    fill_namespace(&emu, "huge", 3_100, 0);
    eventually("the large namespaces are served", String::new, || async {
        (served_count(&server, "big").await == 1_000
            && served_count(&server, "huge").await == 3_101)
            .then_some(())
    })
    .await;

    b.open(&server, "#view=namespace&name=big").await;
    b.settled().await;
    let drawn = b.js("window.astrolabe.drawn()").await;
    assert_eq!(drawn["nodes"], json!(1_000), "{drawn}");
    assert_eq!(drawn["edges"], json!(499), "{drawn}");
    assert_eq!(drawn["grouped"], json!(false), "{drawn}");
    // Time from navigation start to the drawn view, and one zoom-and-pan frame after it.
    let frame = b
        .client
        .execute_async(
            "const done = arguments[0]; const cy = window.astrolabe.cy; const t = performance.now();
             cy.zoom(cy.zoom() * 1.5); cy.panBy({x: 40, y: 25});
             requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));",
            vec![],
        )
        .await
        .unwrap();
    println!(
        "explorer: 1,000-node namespace drawn {:.0} ms after navigation ({}); zoom+pan frame {:.0} ms",
        drawn["ms"].as_f64().unwrap(),
        drawn["layout"],
        frame.as_f64().unwrap()
    );
    write_timing(&b.shots, &drawn, &frame);
    b.shot("namespace-1000").await;

    b.open(&server, "#view=namespace&name=huge").await;
    b.settled().await;
    let drawn = b.js("window.astrolabe.drawn()").await;
    assert_eq!(drawn["grouped"], json!(true), "{drawn}");
    let groups = b
        .js("window.astrolabe.graph().nodes.map(n => [n.kind, n.count])")
        .await;
    assert!(
        groups
            .as_array()
            .unwrap()
            .contains(&json!(["ConfigMap", 3_100])),
        "{groups}"
    );
    let notice = b.js("document.getElementById('notice').textContent").await;
    assert!(
        notice.as_str().unwrap().contains("grouped by kind"),
        "{notice}"
    );
    b.shot("namespace-grouped").await;
    b.close().await;
}

fn write_timing(dir: &Path, drawn: &Value, frame: &Value) {
    let line = json!({"nodes": drawn["nodes"], "drawMs": drawn["ms"], "layout": drawn["layout"], "frameMs": frame});
    std::fs::write(dir.join("timing.json"), line.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_flag_turns_the_explorer_off() {
    let emu = Emulator::start(23, 30).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &["--ui=false"]);
    server.wait_ready().await;
    for path in ["/", "/ui/", "/ui/app.js"] {
        let (status, _) = server.get(path).await.unwrap();
        assert_eq!(status, 404, "{path}");
    }
    let on = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    on.wait_ready().await;
    let page = on.get_text("/ui/").await;
    assert!(page.contains("<title>Astrolabe explorer</title>"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_the_page_asks_for_a_token() {
    let emu = Emulator::start(23, 60).await;
    let logs = tempfile::tempdir().unwrap();
    let tokens = logs.path().join("tokens.csv");
    std::fs::write(&tokens, "ui-s3cret,alice\n").unwrap();
    let server = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &[
            "--auth=token-file",
            "--auth-token-file",
            tokens.to_str().unwrap(),
        ],
    );
    server.wait_ready().await;
    let (status, _) = server.get("/api/v1/namespaces").await.unwrap();
    assert_eq!(status, 401, "the API needs a token");
    let b = Browser::start("auth").await;
    b.client
        .goto(&format!("{}/ui/", base(&server)))
        .await
        .unwrap();
    b.until(
        "the page asks for a token",
        "document.getElementById('token-dialog').open",
    )
    .await;
    b.shot("token-prompt").await;
    let input = b.client.find(Locator::Id("token-input")).await.unwrap();
    input.send_keys("ui-s3cret").await.unwrap();
    input
        .send_keys(&char::from(Key::Enter).to_string())
        .await
        .unwrap();
    b.until(
        "the namespaces are listed with the token",
        "document.querySelectorAll('#namespace option').length > 1",
    )
    .await;
    b.until(
        "the stream is followed with the token",
        "window.astrolabe.live().connected",
    )
    .await;
    let (_, namespaces) = server
        .get_as("/api/v1/namespaces", Some("ui-s3cret"))
        .await
        .unwrap();
    let listed = b
        .js("[...document.querySelectorAll('#namespace option')].slice(1).map(o => o.value)")
        .await;
    assert_eq!(listed, namespaces);
    // The refused calls before the token was given are the only console errors.
    b.close_allowing(&["status of 401"]).await;
}

/// Presses `key` on the element `id`.
async fn press(b: &Browser, id: &str, key: Key) {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(&char::from(key).to_string())
        .await
        .unwrap();
}

/// Clicks the element `id`.
async fn click(b: &Browser, id: &str) {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The page's classes of node or edge `id` in its drawn graph.
async fn classes(b: &Browser, id: &str) -> String {
    let v = b
        .js(&format!(
            "window.astrolabe.cy.getElementById({id:?}).classes().join(' ')"
        ))
        .await;
    v.as_str().unwrap_or_default().to_owned()
}

/// Waits until the slider's point is the view's, drawn; returns the view's `asOf`.
async fn drawn_at_slider(b: &Browser) -> Value {
    b.until(
        "the view is drawn at the slider's point",
        "(() => { const a = window.astrolabe; const s = document.getElementById('at');
                  const v = a.view(); return document.body.dataset.state === 'ready' && v.at
                    && Date.parse(v.at) === Number(s.value) && a.asOf(); })()",
    )
    .await
}

/// The sequence and time of the versions of the object at `path` (a history endpoint), newest
/// last.
async fn versions(server: &Server, path: &str) -> Vec<(u64, String, String)> {
    let h = api(server, path).await;
    h["objects"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["time"].as_str().unwrap().to_owned(),
                v["op"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slider_redraws_the_past_and_diff_mode_marks_changes() {
    let (server, k, _logs, b) = demo("history", 200).await;
    let (deployment, name, ns, _, _) = a_served_deployment(&server).await;
    let configmaps = api(
        &server,
        &format!("/api/v1/objects?kind=ConfigMap&namespace={ns}&limit=500"),
    )
    .await;
    // A ConfigMap something uses, so that its deletion removes edges too.
    let mut used = None;
    for c in configmaps["items"].as_array().unwrap() {
        let uid = c["uid"].as_str().unwrap();
        let detail = api(&server, &format!("/api/v1/resources/{uid}")).await;
        if !detail["incoming"].as_array().unwrap().is_empty() {
            used = Some((uid.to_owned(), c["name"].as_str().unwrap().to_owned()));
            break;
        }
    }
    let (cm_uid, cm_name) = used.expect("a used ConfigMap in the namespace");

    b.open(&server, &format!("#view=namespace&name={ns}")).await;
    b.settled().await;
    b.until(
        "the stream is followed",
        "window.astrolabe.live().connected",
    )
    .await;
    let label = b
        .js("document.getElementById('at-label').textContent")
        .await;
    assert!(label.as_str().unwrap().starts_with("live"), "{label}");
    assert_eq!(b.js("window.astrolabe.asOf()").await, Value::Null);

    // Two changes through the emulator: a ConfigMap deleted, the Deployment scaled.
    k.ok(&["delete", "configmap", &cm_name, "-n", &ns]).await;
    k.ok(&["scale", "deployment", &name, "-n", &ns, "--replicas=17"])
        .await;
    b.until(
        "the live view drops the deleted ConfigMap",
        &format!("window.astrolabe.cy.getElementById({cm_uid:?}).empty()"),
    )
    .await;
    let deleted = versions(
        &server,
        &format!("/api/v1/history/namespaces/{ns}/ConfigMap/{cm_name}"),
    )
    .await;
    let (deleted_seq, _, op) = deleted.last().unwrap().clone();
    assert_eq!(op, "deleted");
    let scaled = eventually("the scale is served", String::new, || async {
        let d = api(&server, &format!("/api/v1/resources/{deployment}")).await;
        let message = d["resource"]["message"].as_str()?.to_owned();
        message.ends_with("/17)").then_some(())?;
        versions(&server, &format!("/api/v1/history/{deployment}"))
            .await
            .last()
            .cloned()
    })
    .await;
    // The slider reaches the scale once its timeline is read again (at every poll).
    b.until(
        "the slider's span includes the changes",
        &format!(
            "Number(document.getElementById('at').max) >= Date.parse({:?})",
            scaled.1
        ),
    )
    .await;

    // Keyboard: one second back at a time, until the view is before the deletion.
    let mut as_of = Value::Null;
    for _ in 0..60 {
        press(&b, "at", Key::Left).await;
        as_of = drawn_at_slider(&b).await;
        if as_of["seq"].as_u64().unwrap() < deleted_seq {
            break;
        }
    }
    let seq = as_of["seq"].as_u64().unwrap();
    assert!(
        seq < deleted_seq,
        "the slider reaches before the deletion: {as_of}"
    );
    let at = b.js("window.astrolabe.view().at").await;
    let at = at.as_str().unwrap().to_owned();
    assert!(
        b.js(&format!(
            "window.astrolabe.cy.getElementById({cm_uid:?}).nonempty()"
        ))
        .await
            == json!(true),
        "the deleted ConfigMap is drawn again"
    );
    let past = api(&server, &format!("/api/v1/graph?namespace={ns}&at={at}")).await;
    assert_eq!(past["asOf"], as_of, "the page shows the API's point");
    assert_eq!(
        b.drawn().await,
        sets_of(&past),
        "the past namespace is drawn"
    );
    let message = b
        .js(&format!(
            "window.astrolabe.cy.getElementById({deployment:?}).data('message')"
        ))
        .await;
    assert!(
        !message.as_str().unwrap().ends_with("/17)"),
        "the Deployment as it was: {message}"
    );
    let label = b
        .js("document.getElementById('at-label').textContent")
        .await;
    assert!(
        label
            .as_str()
            .unwrap()
            .starts_with(&format!("as of seq {seq} ")),
        "the bar shows the point: {label}"
    );
    let live_text = b.js("document.getElementById('st-live').textContent").await;
    assert_eq!(live_text, json!("live: paused (past view)"));
    // The past view stays as it was when a change arrives on the stream.
    let events = b.js("window.astrolabe.live().events").await;
    k.ok(&["create", "configmap", "while-past", "-n", &ns])
        .await;
    b.until(
        "the page receives the change",
        &format!("window.astrolabe.live().events > {events}"),
    )
    .await;
    assert_eq!(
        b.js("window.astrolabe.graph().nodes.some(n => n.name === 'while-past')")
            .await,
        json!(false),
        "a view of the past does not follow the stream"
    );
    assert_eq!(b.drawn().await, sets_of(&past), "the past is still drawn");
    b.shot("past").await;

    // A deep link with the point opens the same past view.
    let link = b.client.current_url().await.unwrap().to_string();
    assert!(link.contains("at="), "{link}");
    b.client.goto("about:blank").await.unwrap();
    b.client.goto(&link).await.unwrap();
    b.shows(
        "the deep link's past view",
        "window.astrolabe && window.astrolabe.asOf()",
    )
    .await;
    let again = b.js("window.astrolabe.asOf()").await;
    assert_eq!(again, as_of, "the deep link opens the same point");
    assert_eq!(
        b.drawn().await,
        sets_of(&past),
        "the deep link draws the past"
    );

    // Diff mode between that point and now: the ConfigMap removed (drawn as it was), the
    // Deployment modified, the ConfigMap's edges removed; the panel lists the field changes.
    click(&b, "diff").await;
    b.shows(
        "the diff is drawn",
        "window.astrolabe.view().diff && window.astrolabe.diff()",
    )
    .await;
    let diff = b.js("window.astrolabe.diff()").await;
    assert_eq!(diff["from"], as_of, "the diff starts at the slider's point");
    assert!(diff["to"]["seq"].as_u64().unwrap() >= scaled.0, "{diff}");
    assert_eq!(b.js("window.astrolabe.view().at").await, Value::Null);
    assert!(
        classes(&b, &cm_uid).await.contains("diff-removed"),
        "the ConfigMap is marked removed"
    );
    assert!(
        classes(&b, &deployment).await.contains("diff-modified"),
        "the Deployment is marked modified"
    );
    let created = b
        .js("window.astrolabe.graph().nodes.find(n => n.name === 'while-past').classes")
        .await;
    assert!(
        created.as_array().unwrap().contains(&json!("diff-added")),
        "the ConfigMap created since is marked added: {created}"
    );
    let want = api(
        &server,
        &format!(
            "/api/v1/diff?from=seq:{seq}&to=seq:{}&namespace={ns}",
            diff["to"]["seq"]
        ),
    )
    .await;
    let removed_edges: BTreeSet<String> = want["edgesRemoved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}",
                e["kind"].as_str().unwrap(),
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    let (drawn_nodes, _) = b.drawn().await;
    let removed_edges: BTreeSet<String> = removed_edges
        .into_iter()
        .filter(|e| {
            let mut ends = e.split('|').skip(1);
            ends.all(|end| drawn_nodes.contains(end))
        })
        .collect();
    assert!(
        removed_edges.iter().any(|e| e.ends_with(&cm_uid)),
        "the ConfigMap's users lost their edges to it: {want}"
    );
    let marked: BTreeSet<String> = serde_json::from_value(
        b.js("window.astrolabe.graph().edges.filter(e => e.classes.includes('diff-removed')).map(e => e.id)")
            .await,
    )
    .unwrap();
    assert_eq!(marked, removed_edges, "removed edges are drawn and marked");
    let legend = b
        .js("[...document.querySelectorAll('#legend .diff-legend')].map(l => l.className)")
        .await;
    assert_eq!(
        legend,
        json!([
            "diff-legend diff-added",
            "diff-legend diff-removed",
            "diff-legend diff-modified"
        ])
    );
    b.js(&format!(
        "window.astrolabe.cy.getElementById({deployment:?}).emit('tap')"
    ))
    .await;
    let change = b
        .until(
            "the panel lists the Deployment's changes",
            "(() => { const r = document.querySelector('#panel table.changes tr[data-field=\"replicas.desired\"]');
                      return r && [...r.cells].map(c => c.textContent); })()",
        )
        .await;
    assert_eq!(change[2], json!("17"), "{change}");
    b.shot("diff").await;
    // Close up on the removed ConfigMap, once the canvas has drawn two frames at that zoom.
    b.client
        .execute_async(
            &format!(
                "const done = arguments[0]; const cy = window.astrolabe.cy;
                 cy.fit(cy.getElementById({cm_uid:?}).closedNeighborhood(), 60);
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));"
            ),
            vec![],
        )
        .await
        .unwrap();
    b.shot("diff-configmap").await;

    // Double-clicking the Deployment opens its neighbourhood at the same two points: it is
    // modified, the ConfigMap it used removed, and the panel lists its changes.
    b.js(&format!(
        "window.astrolabe.cy.getElementById({deployment:?}).emit('dbltap')"
    ))
    .await;
    b.shows(
        "the Deployment's neighbourhood in diff mode",
        &format!(
            "window.astrolabe.view().uid === {deployment:?} && window.astrolabe.view().diff && window.astrolabe.diff()"
        ),
    )
    .await;
    assert!(classes(&b, &deployment).await.contains("diff-modified"));
    assert!(
        classes(&b, &cm_uid).await.contains("diff-removed"),
        "the removed ConfigMap is in the neighbourhood as it was"
    );
    let fields = b
        .js("[...document.querySelectorAll('#panel table.changes tr[data-field]')].map(r => r.dataset.field)")
        .await;
    assert!(
        fields
            .as_array()
            .unwrap()
            .contains(&json!("replicas.desired")),
        "{fields}"
    );
    b.shot("diff-neighbourhood").await;

    // Live again: the deleted ConfigMap is gone from the drawing.
    click(&b, "live").await;
    b.shows(
        "the live view",
        "!window.astrolabe.view().at && !window.astrolabe.view().diff && !window.astrolabe.asOf()",
    )
    .await;
    assert_eq!(
        b.js(&format!(
            "window.astrolabe.cy.getElementById({cm_uid:?}).empty()"
        ))
        .await,
        json!(true)
    );
    b.close().await;
}

/// Clicks the notice's "Jump to the oldest point" until the page draws a point (the server may
/// trim its history again between the notice and the click; the page then names the new oldest
/// point); returns the view's point and its `asOf`.
async fn jump_to_oldest(b: &Browser) -> (String, Value) {
    for _ in 0..5 {
        let before = b.js("window.astrolabe.view().at").await;
        click(b, "jump-oldest").await;
        b.shows(
            "the jump is answered",
            &format!(
                "window.astrolabe.view().at !== {before} && (window.astrolabe.asOf() || document.getElementById('jump-oldest'))"
            ),
        )
        .await;
        let as_of = b.js("window.astrolabe.asOf()").await;
        if !as_of.is_null() {
            let at = b.js("window.astrolabe.view().at").await;
            return (at.as_str().unwrap().to_owned(), as_of);
        }
    }
    panic!("the page never drew the oldest point it offered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_older_than_the_history_kept_offers_the_oldest() {
    // A short history: a checkpoint every 20 changes, 50 changes kept behind it.
    let (server, k, _logs, b) = demo_with(
        "history_gone",
        200,
        &[
            "--history-max-changes",
            "50",
            "--snapshot-every-changes",
            "20",
            "--stream-retention",
            "0",
        ],
    )
    .await;
    let ns = "team-000";
    // Sixty changes after the initial sync: checkpoints follow, and the log is trimmed behind
    // them (however the sync was batched).
    let items: Vec<Value> = (0..60)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("filler-{i:02}"), "namespace": ns}})
        })
        .collect();
    let manifest = k.file(
        "fillers.json",
        &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    );
    k.ok(&["apply", "-f", &manifest]).await;
    eventually("the last filler is served", String::new, || async {
        let page = api(
            &server,
            &format!("/api/v1/objects?kind=ConfigMap&namespace={ns}&name=filler-59"),
        )
        .await;
        (!page["items"].as_array()?.is_empty()).then_some(())
    })
    .await;
    let oldest = eventually("the history is trimmed", String::new, || async {
        let (status, body) = server
            .get(&format!("/api/v1/graph?namespace={ns}&at=seq:1"))
            .await?;
        (status == 410).then(|| body["oldest"].clone())
    })
    .await;
    // A change after the oldest point, so that the oldest point is a past one.
    let before = server.seq().await;
    k.ok(&["create", "configmap", "after-oldest", "-n", ns])
        .await;
    eventually("the change is served", String::new, || async {
        (server.seq().await > before).then_some(())
    })
    .await;

    // A link to a time before the history kept: the page says so without asking the server
    // for it (no refused request, so no console error), and offers the oldest point.
    b.open(
        &server,
        &format!("#view=namespace&name={ns}&at=2020-01-01T00:00:00.000Z"),
    )
    .await;
    b.shows(
        "the notice offers the oldest point",
        "document.getElementById('jump-oldest')",
    )
    .await;
    let notice = b.js("document.getElementById('notice').textContent").await;
    assert!(
        notice
            .as_str()
            .unwrap()
            .contains("is older than the history this server keeps"),
        "{notice}"
    );
    assert_eq!(
        b.console_errors().await,
        Vec::<String>::new(),
        "the notice needed no refused request"
    );
    b.shot("gone").await;
    let (at, as_of) = jump_to_oldest(&b).await;
    let want = api(&server, &format!("/api/v1/graph?namespace={ns}&at={at}")).await;
    assert!(
        as_of["seq"].as_u64().unwrap() < server.seq().await,
        "{as_of}"
    );
    assert_eq!(want["asOf"], as_of);
    assert_eq!(b.drawn().await, sets_of(&want));
    assert!(
        !b.drawn().await.0.is_empty(),
        "the oldest point has the namespace"
    );

    // A sequence before the history kept: the server answers 410 with its oldest point, which
    // the notice names and jumps to.
    b.open(&server, &format!("#view=namespace&name={ns}&at=seq:1"))
        .await;
    b.shows(
        "the 410 notice",
        "document.getElementById('jump-oldest') && window.astrolabe.view().at === 'seq:1'",
    )
    .await;
    let notice = b.js("document.getElementById('notice').textContent").await;
    let named = notice
        .as_str()
        .unwrap()
        .split_once("the oldest point is seq ")
        .map(|(_, rest)| rest.split(' ').next().unwrap_or_default());
    // The server may have trimmed further since `oldest` was read, never less.
    let oldest_seq: u64 = named.and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(
        oldest_seq >= oldest["seq"].as_u64().unwrap(),
        "{notice} names the oldest point (at least {oldest})"
    );
    let (at, as_of) = jump_to_oldest(&b).await;
    assert!(at.starts_with("seq:"), "{at}");
    assert!(as_of["seq"].as_u64().unwrap() >= oldest_seq, "{as_of}");
    // The refused request is the browser's network log line, not an error of the page.
    b.close_allowing(&["status of 410"]).await;
}
