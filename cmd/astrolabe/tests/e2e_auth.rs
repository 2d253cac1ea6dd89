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
use std::path::Path;

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

/// A served answer.
fn ok() -> (u16, String) {
    (200, String::new())
}

/// A refusal: its status and its `error`.
fn refused(status: u16) -> (u16, String) {
    let error = match status {
        401 => "unauthorized",
        403 => "forbidden",
        _ => "service unavailable",
    };
    (status, error.to_owned())
}

/// The server with `--auth=token-file` and a token file holding `text`.
fn with_token_file(emu: &Emulator, dir: &Path, text: &str) -> Server {
    let file = dir.join("tokens.csv");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    let args = ["--auth", "token-file", "--auth-token-file", file];
    Server::start(&emu.kubeconfig(), dir, &args)
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
    assert_eq!(answer(&server, API, Some("reader-token")).await, ok());
    // An unknown token, no token: 401.
    assert_eq!(
        answer(&server, API, Some("forged-token")).await,
        refused(401)
    );
    assert_eq!(answer(&server, API, None).await, refused(401));
    // Authenticated, but no grant: 403, naming the user and the permission.
    let (status, body) = server.get_as(API, Some("stranger-token")).await.unwrap();
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("stranger") && detail.contains("graph.astrolabe.io"),
        "{detail}"
    );

    // The probes stay open.
    for probe in ["/healthz", "/readyz", "/health"] {
        assert_eq!(answer(&server, probe, None).await.0, 200, "{probe}");
    }
    // /metrics needs a token allowed on the /metrics path, unless opened.
    assert_eq!(answer(&server, "/metrics", None).await, refused(401));
    assert_eq!(
        answer(&server, "/metrics", Some("late-reader-token")).await,
        refused(403),
        "the group's grant is on the API, not on /metrics"
    );
    let (status, text) = server
        .get_as("/metrics", Some("reader-token"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let forbidden = "astrolabe_http_auth_total{outcome=\"forbidden\"} 2";
    assert!(text.as_str().unwrap().contains(forbidden), "{text}");
    assert_eq!(answer(&open_metrics, "/metrics", None).await.0, 200);
    assert_eq!(answer(&open_metrics, API, None).await, refused(401));

    // The API server goes away: a token not reviewed yet is neither allowed nor refused: 503.
    emu.stop_server().await;
    let late = answer(&server, API, Some("late-reader-token")).await;
    assert_eq!(late, refused(503));
    // Decisions already made are reused for their time.
    assert_eq!(answer(&server, API, Some("reader-token")).await, ok());
    let log = server.log_text();
    for token in ["reader-token", "stranger-token", "forged-token"] {
        assert!(!log.contains(token), "the log names {token}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_lists_the_tokens_that_may_read() {
    let emu = emulator().await;
    let logs = tempfile::tempdir().unwrap();
    let text = "# token,user,uid,groups\nfile-token,alice,1000,\"ops\"\n";
    let server = with_token_file(&emu, logs.path(), text);
    server.wait_ready().await;
    assert_eq!(answer(&server, API, Some("file-token")).await, ok());
    assert_eq!(
        answer(&server, API, Some("reader-token")).await,
        refused(401),
        "a token the cluster knows is not in the file"
    );
    assert_eq!(answer(&server, API, None).await, refused(401));
    assert_eq!(answer(&server, "/metrics", Some("file-token")).await.0, 200);
    assert_eq!(answer(&server, "/readyz", None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_file_stops_the_server_with_its_line() {
    let emu = emulator().await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = with_token_file(&emu, logs.path(), "only-a-token\n");
    assert!(!server.exit_status().await.success());
    let log = server.log_text();
    assert!(log.contains("line 1"), "{log}");
    assert!(!log.contains("only-a-token"), "{log}");
}
