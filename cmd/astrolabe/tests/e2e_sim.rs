#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `astrolabe sim` as a kubectl user meets it: with its controllers (the default) a Deployment
//! created by kubectl rolls out into Running Pods and `kubectl rollout status` returns; with
//! `--controllers=false` the API is bare (no ReplicaSet appears, no default ServiceAccount).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use astrolabe_testkit::Kubectl;

/// What a user types to run two nginx Pods.
const CREATE_WEB: &[&str] = &[
    "create",
    "deployment",
    "web",
    "--image=nginx",
    "--replicas=2",
];

/// `astrolabe sim` on a free port; killed on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sim(extra: &[&str]) -> Sim {
    let port = astrolabe_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_astrolabe"))
        .args(["sim", "--listen", &listen])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{listen}");
    let health = format!("{url}/healthz");
    astrolabe_testkit::eventually("the emulator answers", Duration::from_secs(30), || async {
        match reqwest::get(&health).await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    Sim { child, url }
}

/// Creates the `web` Deployment, waits for `kubectl rollout status`, and returns `jsonpath` of
/// its Pods.
async fn rolled_out_web(kubectl: &Kubectl, jsonpath: &str) -> String {
    kubectl.ok(CREATE_WEB).await;
    kubectl
        .ok(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await;
    let output = format!("jsonpath={jsonpath}");
    kubectl
        .ok(&["get", "pods", "-l", "app=web", "-o", &output])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rolls_out_a_deployment_on_the_emulators_controllers() {
    let sim = sim(&[]).await;
    let kubectl = Kubectl::new(&sim.url);
    let pods = rolled_out_web(&kubectl, "{.items[*].status.phase}").await;
    assert_eq!(
        pods.split_whitespace().collect::<Vec<_>>(),
        ["Running", "Running"]
    );
    kubectl.ok(&["get", "serviceaccount", "default"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_controllers_the_api_is_bare() {
    let sim = sim(&["--controllers=false"]).await;
    let kubectl = Kubectl::new(&sim.url);
    kubectl.ok(CREATE_WEB).await;
    let (rolled, text) = kubectl
        .run(&["rollout", "status", "deployment/web", "--timeout=2s"])
        .await;
    assert!(!rolled, "nothing rolls the Deployment out: {text}");
    let rs = kubectl.ok(&["get", "replicasets", "-o", "name"]).await;
    assert!(rs.trim().is_empty() || rs.contains("No resources"), "{rs}");
    let (found, _) = kubectl.run(&["get", "serviceaccount", "default"]).await;
    assert!(!found, "no default ServiceAccount without the controllers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_start_after_the_configured_delay() {
    let sim = sim(&["--pod-start-delay", "2s"]).await;
    let kubectl = Kubectl::new(&sim.url);
    let times = rolled_out_web(
        &kubectl,
        "{range .items[*]}{.metadata.creationTimestamp} {.status.startTime}{\"\\n\"}{end}",
    )
    .await;
    for line in times.lines().filter(|l| !l.trim().is_empty()) {
        let (created, started) = line.split_once(' ').unwrap();
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        let waited = at(started).duration_since(at(created));
        assert!(
            waited >= jiff::SignedDuration::from_secs(1),
            "started {waited} after creation: {line}"
        );
    }
}
