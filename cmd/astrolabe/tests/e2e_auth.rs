//! Authentication of the real binary's API: `--auth=kubernetes` against the emulator's
//! TokenReview and SubjectAccessReview over HTTP (allowed, unknown token, denied user, no
//! token, API server down), the open probes, `/metrics` closed unless opened, and
//! `--auth=token-file`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_kubesim::{SimAuth, SimConfig};
use astrolabe_testkit::Emulator;
use common::Server;
use serde_json::Value;

/// A cheap route that reads the graph.
const API: &str = "/api/v1/kinds";

async fn emulator() -> Emulator {
    let auth = SimAuth::default()
        .token("reader-token", "reader", &["astrolabe-readers"])
        .token("late-reader-token", "late-reader", &["astrolabe-readers"])
        .token("stranger-token", "stranger", &["system:authenticated"])
        .grant("group:astrolabe-readers", "get", "graph.astrolabe.io")
        .grant("reader", "get", "/metrics");
    Emulator::start(SimConfig {
        auth,
        default_namespaces: true,
        ..SimConfig::default()
    })
    .await
}

/// Status and the `error` field of the JSON body (empty for an answer that is not an error).
async fn answer(server: &Server, path: &str, token: Option<&str>) -> (u16, String) {
    let (status, body) = server
        .get_as(path, token)
        .await
        .expect("the server answers");
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (status, error.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_tokens_are_reviewed_by_the_api_server() {
    let mut emu = emulator().await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &["--auth", "kubernetes"]);
    let open_metrics = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &["--auth", "kubernetes", "--metrics-open"],
    );
    server.wait_ready().await;
    open_metrics.wait_ready().await;

    // Allowed: TokenReview accepts the token, SubjectAccessReview allows the reader's group.
    assert_eq!(
        answer(&server, API, Some("reader-token")).await,
        (200, String::new())
    );
    // Unknown token, no token, a malformed header: 401.
    assert_eq!(
        answer(&server, API, Some("forged-token")).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        answer(&server, API, None).await,
        (401, "unauthorized".into())
    );
    // Authenticated, but no grant: 403.
    let (status, body) = server.get_as(API, Some("stranger-token")).await.unwrap();
    assert_eq!(
        (status, &body["error"]),
        (403, &Value::from("forbidden")),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("stranger") && detail.contains("graph.astrolabe.io"),
        "{detail}"
    );

    // The probes stay open.
    for probe in ["/healthz", "/readyz", "/health"] {
        assert_eq!(server.get(probe).await.unwrap().0, 200, "{probe}");
    }
    // /metrics needs a token allowed on the /metrics path, unless opened.
    assert_eq!(
        answer(&server, "/metrics", None).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        server
            .get_as("/metrics", Some("late-reader-token"))
            .await
            .unwrap()
            .0,
        403,
        "the group's grant is on the API, not on /metrics"
    );
    let (status, text) = server
        .get_as("/metrics", Some("reader-token"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        text.as_str()
            .unwrap()
            .contains("astrolabe_http_auth_total{outcome=\"forbidden\"} 2"),
        "{text}"
    );
    assert_eq!(open_metrics.get("/metrics").await.unwrap().0, 200);
    assert_eq!(
        answer(&open_metrics, API, None).await,
        (401, "unauthorized".into())
    );

    // The API server goes away: a token not reviewed yet is neither allowed nor refused: 503.
    emu.stop_server().await;
    assert_eq!(
        answer(&server, API, Some("late-reader-token")).await,
        (503, "service unavailable".into())
    );
    // Decisions already made are reused for their time.
    assert_eq!(
        answer(&server, API, Some("reader-token")).await,
        (200, String::new())
    );
    let log = server.log_text();
    for token in ["reader-token", "stranger-token", "forged-token"] {
        assert!(!log.contains(token), "the log names {token}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_lists_the_tokens_that_may_read() {
    let emu = emulator().await;
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("tokens.csv");
    std::fs::write(
        &file,
        "# token,user,uid,groups\nfile-token,alice,1000,\"ops\"\n",
    )
    .unwrap();
    let server = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &[
            "--auth",
            "token-file",
            "--auth-token-file",
            file.to_str().unwrap(),
        ],
    );
    server.wait_ready().await;
    assert_eq!(
        answer(&server, API, Some("file-token")).await,
        (200, String::new())
    );
    assert_eq!(
        answer(&server, API, Some("reader-token")).await,
        (401, "unauthorized".into()),
        "a token the cluster knows is not in the file"
    );
    assert_eq!(
        answer(&server, API, None).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        server
            .get_as("/metrics", Some("file-token"))
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(server.get("/readyz").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_file_stops_the_server_with_its_line() {
    let emu = emulator().await;
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("tokens.csv");
    std::fs::write(&file, "only-a-token\n").unwrap();
    let mut server = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &[
            "--auth",
            "token-file",
            "--auth-token-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(!server.exit_status().await.success());
    let log = server.log_text();
    assert!(log.contains("line 1"), "{log}");
    assert!(!log.contains("only-a-token"), "{log}");
}
