#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Connection bounds with real sockets: slow and silent clients, the connection cap, and the
//! answers to oversized or malformed requests (the router's JSON ones and hyper's own).

mod common;

use std::time::{Duration, Instant};

use astrolabe_api::router::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use astrolabe_api::{AppState, ServeOptions};
use common::wire::{
    PROMPTLY, Reply, ask, closed_within, exchange, get, options, read_reply, send, start,
};
use futures::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

fn state() -> AppState {
    common::state(common::graph_of(common::shop()))
}

const LONG: Duration = Duration::from_secs(60);

/// The start of a request whose head never ends.
const PARTIAL_HEAD: &str = "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ";

#[tokio::test]
async fn three_hundred_slow_request_heads_are_cut_off_after_the_header_read_timeout() {
    let header_read = Duration::from_secs(1);
    let server = start(state(), options(header_read, LONG, 1024)).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(send(server.addr, PARTIAL_HEAD).await);
    }
    // Every one closed by the header timer (the idle timeout and the cap are far off), with
    // slack for opening 300 connections on a busy machine.
    let bound = header_read + Duration::from_secs(4);
    join_all(slow.iter_mut().map(|s| closed_within(s, bound))).await;
    assert!(started.elapsed() >= header_read, "{:?}", started.elapsed());
    let reply = exchange(server.addr, &get("/healthz")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_keep_alive_connection_silent_after_its_answer_is_closed_after_the_header_read_timeout() {
    let header_read = Duration::from_millis(500);
    let server = start(state(), options(header_read, LONG, 16)).await;
    let mut stream = send(server.addr, "").await;
    assert_eq!(ask(&mut stream, &get("/healthz")).await.status, 200);
    let took = closed_within(&mut stream, PROMPTLY).await;
    assert!(took >= header_read - Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let server = start(state(), options(LONG, idle, 16)).await;
    let mut stream = send(server.addr, "").await;
    let took = closed_within(&mut stream, PROMPTLY).await;
    assert!(took >= idle - Duration::from_millis(100), "{took:?}");
}

/// Asserts that `stream`, which sent a request, gets no answer for a while: a bounded wait on
/// a negative, long enough for a loopback answer.
async fn not_answered(stream: &mut tokio::net::TcpStream) {
    let waited = timeout(Duration::from_millis(500), read_reply(stream)).await;
    assert!(waited.is_err(), "answered past the connection cap");
}

#[tokio::test]
async fn past_the_cap_new_connections_wait_and_open_ones_keep_being_served() {
    let server = start(state(), options(LONG, LONG, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = send(server.addr, "").await;
        assert_eq!(ask(&mut stream, &get("/healthz")).await.status, 200);
        held.push(stream);
    }
    let mut third = send(server.addr, &get("/healthz")).await;
    not_answered(&mut third).await;
    // The open connections are still served while the third waits.
    for stream in &mut held {
        assert_eq!(ask(stream, &get("/healthz")).await.status, 200);
    }
    drop(held.pop());
    let reply = timeout(PROMPTLY, read_reply(&mut third))
        .await
        .expect("not served after a connection closed");
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn slow_clients_holding_the_cap_keep_others_waiting_no_longer_than_the_header_read_timeout() {
    let header_read = Duration::from_secs(1);
    let server = start(state(), options(header_read, LONG, 2)).await;
    let _slow = [
        send(server.addr, PARTIAL_HEAD).await,
        send(server.addr, PARTIAL_HEAD).await,
    ];
    let started = Instant::now();
    let mut probe = send(server.addr, &get("/healthz")).await;
    let reply = timeout(header_read + PROMPTLY, read_reply(&mut probe))
        .await
        .expect("the probe was not served after the slow clients were cut off");
    assert_eq!(reply.status, 200);
    // It waited for a slot: the cap held while the slow clients had time left.
    assert!(
        started.elapsed() >= header_read / 2,
        "{:?}",
        started.elapsed()
    );
}

fn assert_json_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["error"], error);
    assert!(reply.json()["detail"].is_string(), "{}", reply.body);
}

#[tokio::test]
async fn oversized_requests_get_json_errors_below_hypers_limits() {
    let server = start(state(), ServeOptions::default()).await;
    let long = format!("/api/v1/kinds?x={}", "a".repeat(MAX_URI_BYTES));
    let reply = exchange(server.addr, &get(&long)).await;
    assert_json_error(&reply, 414, "uri too long");

    let header = format!("X-Big: {}\r\n", "b".repeat(8_000));
    let headers = header.repeat(MAX_HEADER_BYTES / 8_000 + 1);
    let request = format!("GET /api/v1/kinds HTTP/1.1\r\nHost: test\r\n{headers}\r\n");
    let reply = exchange(server.addr, &request).await;
    assert_json_error(&reply, 431, "headers too large");
}

/// hyper's read buffer for a request head (`DEFAULT_MAX_BUFFER_SIZE` in hyper's `proto::h1::io`).
const HYPER_MAX_HEAD: usize = 8192 + 4096 * 100;

#[tokio::test]
async fn hyper_answers_what_it_refuses_itself_with_an_empty_body() {
    let server = start(state(), ServeOptions::default()).await;
    let empty = |reply: Reply| (reply.status, reply.body);

    let reply = exchange(server.addr, "NOT HTTP\r\n\r\n").await;
    assert_eq!(empty(reply), (400, String::new()));

    let headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{headers}\r\n");
    assert_eq!(
        empty(exchange(server.addr, &request).await),
        (431, String::new())
    );

    let uri = format!("/healthz?x={}", "a".repeat(64 << 10));
    assert_eq!(
        empty(exchange(server.addr, &get(&uri)).await),
        (414, String::new())
    );

    // A head that fills hyper's buffer without ending (exactly, so nothing sent stays unread).
    let start_of_head = "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ";
    let head = format!(
        "{start_of_head}{}",
        "b".repeat(HYPER_MAX_HEAD - start_of_head.len())
    );
    let mut stream = send(server.addr, "").await;
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply = timeout(PROMPTLY, read_reply(&mut stream)).await.unwrap();
    assert_eq!(empty(reply), (431, String::new()));
}

#[tokio::test]
async fn http2_headers_past_the_routers_bound_get_the_json_431_too() {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = start(state(), ServeOptions::default()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let req = axum::http::Request::get("http://test/api/v1/kinds")
        .header("x-big", "b".repeat(MAX_HEADER_BYTES + 1024))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = timeout(PROMPTLY, client.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 431);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "headers too large");
}
