//! The binary's HTTP flags reach the served API: a slow request head is cut off at
//! `--http-header-read-timeout`, `--watch-max-streams` caps the watch streams, and
//! `--cors-allow-origin` turns CORS on (it is off without the flag).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Emulator, Server};
use reqwest::{Method, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ORIGIN: &str = "https://ui.example";
const ALLOW_ORIGIN: &str = "access-control-allow-origin";

async fn preflight(server: &Server) -> Response {
    reqwest::Client::new()
        .request(
            Method::OPTIONS,
            format!("http://127.0.0.1:{}/api/v1/objects", server.port),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap()
}

async fn get_from_origin(server: &Server, path: &str) -> Response {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}{path}", server.port))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_flags_bound_the_served_api() {
    let emu = Emulator::start(3, 60).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &[
            "--http-header-read-timeout",
            "1",
            "--watch-max-streams",
            "1",
            "--cors-allow-origin",
            ORIGIN,
        ],
    );
    server.wait_ready().await;

    // A request head that never ends is cut off after about a second.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = [0_u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while slow.read(&mut buf).await.unwrap_or(0) > 0 {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the slow connection was still open after 5 s"
    );

    // One watch stream open; the next gets the JSON 503.
    let first = get_from_origin(&server, "/api/v1/watch").await;
    assert_eq!(first.status(), 200);
    let second = get_from_origin(&server, "/api/v1/watch").await;
    assert_eq!(second.status(), 503);
    let body: serde_json::Value = second.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    drop(first);

    // CORS for the allowed origin.
    let answer = preflight(&server).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[ALLOW_ORIGIN], ORIGIN);
    let answer = get_from_origin(&server, "/api/v1/kinds").await;
    assert_eq!(answer.headers()[ALLOW_ORIGIN], ORIGIN);

    // Without the flag: no CORS headers, and a preflight is just an unserved method.
    let plain = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    plain.wait_ready().await;
    let answer = preflight(&plain).await;
    assert_eq!(answer.status(), 405);
    assert!(!answer.headers().contains_key(ALLOW_ORIGIN));
    let answer = get_from_origin(&plain, "/api/v1/kinds").await;
    assert_eq!(answer.status(), 200);
    assert!(!answer.headers().contains_key(ALLOW_ORIGIN));
}
