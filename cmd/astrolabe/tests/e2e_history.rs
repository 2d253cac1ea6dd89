//! History end to end: the real binary, kubectl against the emulator, and (with persistence) a
//! real redis-server. The incident walk-through of the docs: scale a Deployment to zero and break
//! a Service's selector, then find both with `diff` and `at=`; with persistence off (the log in
//! memory, as the demo runs) and on (the log in Redis, where a restart keeps the history).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use astrolabe_testkit::{Kubectl, RedisServer};
use common::persist::{start, wait_durable, wait_hydrated};
use common::{Emulator, Server, eventually};
use serde_json::Value;

/// `GET path`, which must answer 200.
async fn ok(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path).await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A Service of `ns` that selects Pods, and a Deployment whose Pods it selects:
/// `(service name, service uid, deployment name, deployment uid)`.
async fn service_and_deployment(server: &Server, ns: &str) -> (String, String, String, String) {
    let services = ok(
        server,
        &format!("/api/v1/objects?kind=Service&namespace={ns}"),
    )
    .await;
    for svc in services["items"].as_array().unwrap() {
        let uid = svc["uid"].as_str().unwrap();
        let near = ok(
            server,
            &format!("/api/v1/neighbors/{uid}?depth=3&direction=both"),
        )
        .await;
        let selects = near["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "selects" && e["from"] == uid);
        let deployment = near["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "Deployment");
        if let (true, Some(d)) = (selects, deployment) {
            return (
                svc["name"].as_str().unwrap().to_owned(),
                uid.to_owned(),
                d["name"].as_str().unwrap().to_owned(),
                d["uid"].as_str().unwrap().to_owned(),
            );
        }
    }
    panic!("no Service selecting a Deployment's Pods in {ns}");
}

/// The `selects` edges leaving `uid` in a `/api/v1/neighbors` answer.
fn selects_from(body: &Value, uid: &str) -> BTreeSet<String> {
    body["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "selects" && e["from"] == uid)
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect()
}

/// The incident: before it, `seq:before`; the Deployment scaled to zero and the Service's
/// selector broken through kubectl; then `diff` and `at=` find both. Returns the sequence after
/// the incident and the Service's UID.
async fn incident(server: &Server, kubectl: &Kubectl, ns: &str) -> (u64, String) {
    let (svc, svc_uid, deploy, deploy_uid) = service_and_deployment(server, ns).await;
    let before = server.seq().await;
    let selected = selects_from(
        &ok(server, &format!("/api/v1/neighbors/{svc_uid}?depth=1")).await,
        &svc_uid,
    );
    assert!(!selected.is_empty());

    kubectl
        .ok(&["scale", "deployment", &deploy, "-n", ns, "--replicas=0"])
        .await;
    kubectl
        .ok(&[
            "patch",
            "service",
            &svc,
            "-n",
            ns,
            "-p",
            r#"{"spec":{"selector":{"app":"nothing-matches"}}}"#,
        ])
        .await;
    // Both changes applied: the Service updated after `before` (its history says so), and
    // then its selects edges gone.
    let after = eventually(
        "the broken selector reaches the graph",
        || server.log_tail(),
        || async {
            let history = ok(server, &format!("/api/v1/history/{svc_uid}")).await;
            let updated = history["objects"][0]["versions"]
                .as_array()?
                .iter()
                .filter(|v| v["op"] == "updated")
                .filter_map(|v| v["seq"].as_u64())
                .find(|seq| *seq > before)?;
            let now = ok(server, &format!("/api/v1/neighbors/{svc_uid}?depth=1")).await;
            let seq = now["seq"].as_u64()?;
            (seq >= updated && selects_from(&now, &svc_uid).is_empty()).then_some(seq)
        },
    )
    .await;

    // diff: the Deployment and the Service modified, the Service's edges removed.
    let diff = ok(
        server,
        &format!("/api/v1/diff?from=seq:{before}&to=seq:{after}&namespace={ns}"),
    )
    .await;
    assert_eq!(diff["from"]["seq"], before, "{diff}");
    let modified: BTreeSet<&str> = diff["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uid"].as_str().unwrap())
        .collect();
    assert!(modified.contains(deploy_uid.as_str()), "{diff}");
    assert!(modified.contains(svc_uid.as_str()), "{diff}");
    let scaled = diff["modified"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["uid"] == deploy_uid)
        .unwrap();
    assert!(
        scaled["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "replicas.desired" && c["new"] == 0),
        "the scale shows as a field change: {scaled}"
    );
    let removed: BTreeSet<String> = diff["edgesRemoved"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "selects" && e["from"] == svc_uid)
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(removed, selected, "the selects edges the selector lost");

    // at=: before the incident the Service still selects its Pods, with the point named.
    let (status, past) = server
        .get(&format!(
            "/api/v1/neighbors/{svc_uid}?depth=1&at=seq:{before}"
        ))
        .await
        .unwrap();
    assert_eq!(status, 200, "{past}");
    assert_eq!(past["asOf"]["seq"], before, "{past}");
    assert_eq!(selects_from(&past, &svc_uid), selected);
    let at_time = past["asOf"]["time"].as_str().unwrap().to_owned();
    let by_time = ok(
        server,
        &format!("/api/v1/neighbors/{svc_uid}?depth=1&at={at_time}"),
    )
    .await;
    assert_eq!(selects_from(&by_time, &svc_uid), selected, "at= a time");

    // The Deployment's history lists the scale.
    let history = ok(server, &format!("/api/v1/history/{deploy_uid}")).await;
    let versions = history["objects"][0]["versions"].as_array().unwrap();
    assert!(
        versions
            .iter()
            .any(|v| v["op"] == "updated" && v["seq"].as_u64().unwrap() > before),
        "{history}"
    );
    let by_key = ok(
        server,
        &format!("/api/v1/history/namespaces/{ns}/deployments/{deploy}"),
    )
    .await;
    assert_eq!(by_key["objects"][0]["uid"], deploy_uid);

    // A future point is a 400, a malformed one too.
    let (status, body) = server
        .get(&format!(
            "/api/v1/graph?namespace={ns}&at=seq:{}",
            after + 1_000_000
        ))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get("/api/v1/graph?at=yesterday").await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("at:"), "{body}");
    (after, svc_uid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_is_found_in_the_demos_memory() {
    let logs = tempfile::tempdir().unwrap();
    let (server, sim) = Server::demo(logs.path(), 300, &[]);
    server.wait_ready().await;
    incident(&server, &Kubectl::new(&sim), "team-000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_history_survives_a_restart() {
    let redis = RedisServer::start().unwrap();
    let emu = Emulator::start(31, 300).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    let ns = "team-000";
    let (after, svc_uid) = incident(&server, &Kubectl::new(&emu.url()), ns).await;
    let before_restart = ok(
        &server,
        &format!("/api/v1/neighbors/{svc_uid}?depth=1&at=seq:{after}"),
    )
    .await;
    wait_durable(&server, &redis).await;

    // kill -9 and start again: the points before the restart still answer, the same.
    server.kill9();
    let server = start(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    server.wait_ready().await;
    let after_restart = ok(
        &server,
        &format!("/api/v1/neighbors/{svc_uid}?depth=1&at=seq:{after}"),
    )
    .await;
    assert_eq!(after_restart["asOf"], before_restart["asOf"]);
    assert_eq!(
        selects_from(&after_restart, &svc_uid),
        selects_from(&before_restart, &svc_uid)
    );
    let diff = ok(
        &server,
        &format!("/api/v1/diff?from=seq:1&to=seq:{after}&namespace={ns}"),
    )
    .await;
    assert!(!diff["added"].as_array().unwrap().is_empty(), "{diff}");

    // The time the server was down is a gap of every kind, listed by answers that span it.
    let gaps = |body: &Value| body["gaps"].as_array().cloned().unwrap_or_default();
    eventually(
        "the downtime is recorded as a gap",
        || {
            server
                .log_text()
                .lines()
                .filter(|l| l.contains("gap") || l.contains("listed") || l.contains("ready"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        || async {
            let diff = ok(&server, &format!("/api/v1/diff?from=seq:{after}")).await;
            gaps(&diff).into_iter().find(|g| {
                g["kind"].is_null() && g["reason"].as_str().unwrap().starts_with("server down")
            })
        },
    )
    .await;

    // A watch that fails (the API server down) and recovers leaves a gap of its kinds.
    let mut emu = emu;
    let before_outage = server.seq().await;
    emu.stop_server().await;
    server
        .wait_readyz("the watches fail", |_, b| {
            b["kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["retrying"] == true))
        })
        .await;
    // While they fail, answers list their gaps as open (the log records them on recovery).
    let open = eventually(
        "the failing watches are listed as open gaps",
        || server.log_tail(),
        || async {
            let diff = ok(&server, &format!("/api/v1/diff?from=seq:{before_outage}")).await;
            gaps(&diff).into_iter().find(|g| g["ongoing"] == true)
        },
    )
    .await;
    assert!(open["kind"].is_string(), "{open}");
    emu.start_server().await;
    let gap = eventually(
        "the failed watches are recorded as gaps",
        || server.log_tail(),
        || async {
            let diff = ok(&server, &format!("/api/v1/diff?from=seq:{before_outage}")).await;
            // The kinds whose watch was cut while the API server was down (which ones depends
            // on when each watch reconnected).
            gaps(&diff)
                .into_iter()
                .find(|g| g["kind"].is_string() && g["ongoing"].is_null())
        },
    )
    .await;
    assert!(gap["reason"].as_str().unwrap().contains(':'), "{gap}");
}

/// `/api/v1/watch?since=`: the changes since the point first (no ids), `caught-up` with the
/// feed's id, then live events; a point older than retention is a 410, a malformed one a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_stream_starts_from_a_past_point() {
    let logs = tempfile::tempdir().unwrap();
    let (server, sim) = Server::demo(logs.path(), 200, &[]);
    server.wait_ready().await;
    let kubectl = Kubectl::new(&sim);
    let ns = "team-000";
    let before = server.seq().await;
    kubectl
        .ok(&[
            "create",
            "configmap",
            "past-cm",
            "-n",
            ns,
            "--from-literal=a=b",
        ])
        .await;
    eventually(
        "the ConfigMap reaches the graph",
        || server.log_tail(),
        || async {
            let (status, _) = server
                .get(&format!("/api/v1/namespaces/{ns}/configmaps/past-cm"))
                .await?;
            (status == 200).then_some(())
        },
    )
    .await;

    let path = format!("/api/v1/watch?since=seq:{before}&namespace={ns}");
    let replayed = server
        .sse_until(&path, |b| {
            String::from_utf8_lossy(b).contains("event: caught-up")
        })
        .await;
    let replayed = String::from_utf8_lossy(&replayed).into_owned();
    let (past, caught_up) = replayed.split_once("event: caught-up").unwrap();
    assert!(
        past.contains("event: node-added") && past.contains("\"name\":\"past-cm\""),
        "the replay holds the ConfigMap's creation: {past}"
    );
    assert!(!past.contains("id:"), "replayed events carry no id: {past}");
    assert!(caught_up.contains("\"lastEventId\""), "{caught_up}");

    // Then live: a change made once a stream has caught up arrives with an id.
    let (caught_tx, caught_rx) = tokio::sync::oneshot::channel();
    let live = tokio::spawn({
        let url = format!("http://127.0.0.1:{}{path}", server.port);
        async move {
            let mut resp = reqwest::get(url).await.unwrap();
            let mut body = String::new();
            let mut caught_tx = Some(caught_tx);
            while !body.contains("live-cm") {
                match resp.chunk().await.unwrap() {
                    Some(chunk) => body.push_str(&String::from_utf8_lossy(&chunk)),
                    None => break,
                }
                if body.contains("event: caught-up")
                    && let Some(tx) = caught_tx.take()
                {
                    let _ = tx.send(());
                }
            }
            body
        }
    });
    astrolabe_testkit::within(common::DEADLINE, "the second stream catches up", caught_rx)
        .await
        .unwrap()
        .unwrap();
    kubectl
        .ok(&[
            "create",
            "configmap",
            "live-cm",
            "-n",
            ns,
            "--from-literal=a=b",
        ])
        .await;
    let body = astrolabe_testkit::within(common::DEADLINE, "the live change", live)
        .await
        .unwrap()
        .unwrap();
    let (_, after_caught_up) = body.split_once("event: caught-up").unwrap();
    let live_part = after_caught_up
        .split("\n\n")
        .find(|e| e.contains("live-cm"))
        .unwrap();
    assert!(
        live_part.contains("id: "),
        "live events carry ids: {live_part}"
    );
    assert_eq!(
        body.matches("\"name\":\"past-cm\"").count(),
        1,
        "no change is sent twice: {body}"
    );

    // Bad points.
    let (status, body) = server.get("/api/v1/watch?since=yesterday").await.unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .get(&format!("/api/v1/watch?since=seq:{}", before + 1_000_000))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}
