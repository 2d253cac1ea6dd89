#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Connection bounds with real sockets: slow and silent clients, the connection cap, watch
//! streams whose clients stop reading, and the answers to oversized or malformed requests.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_api::{AppState, ChangeFeed, Limits, ServeOptions, router, serve};
use astrolabe_graph::{GraphChange, GraphEvent};
use astrolabe_model::{Kind, Resource};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A served router; stops serving when dropped.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(state: AppState, options: ServeOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, router(state), options, stop.clone()));
    Server { addr, stop }
}

fn options(header_read: Duration, idle: Duration, max_connections: usize) -> ServeOptions {
    ServeOptions {
        header_read_timeout: header_read,
        idle_timeout: idle,
        max_connections,
    }
}

fn state() -> AppState {
    common::state(common::graph_of(common::shop()))
}

/// How long until the server closes `stream` (reading and discarding what it sends); panics
/// past `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = vec![0_u8; 64 << 10];
    timeout(bound, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the connection was still open after {bound:?}"));
    start.elapsed()
}

/// A response read off a socket: status, headers (lowercase names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Reads one response with a `Content-Length` body (or none) off `stream`.
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the body's end");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends `request` (a whole request head) on a new connection and reads the answer.
async fn exchange(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    timeout(Duration::from_secs(10), read_reply(&mut stream))
        .await
        .expect("no answer within 10 s")
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off_after_the_header_read_timeout() {
    let header_read = Duration::from_millis(500);
    let server = start(state(), options(header_read, Duration::from_secs(60), 16)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= header_read - Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let server = start(state(), options(Duration::from_secs(60), idle, 16)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= idle - Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_streaming_response_keeps_its_connection_past_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let feed = ChangeFeed::default();
    let server = start(
        state().with_feed(feed.clone()),
        options(Duration::from_secs(60), idle, 16),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(get("/api/v1/watch").as_bytes())
        .await
        .unwrap();
    let mut events = Events::default();
    events.read_head(&mut stream).await;
    // Let several idle timeouts pass while the stream is open, then expect an event.
    tokio::time::sleep(idle * 4).await;
    feed.publish(updates(&big_resource(16), 1, 1));
    timeout(
        Duration::from_secs(10),
        events.until(&mut stream, feed.last_id()),
    )
    .await
    .expect("the stream was closed or stalled");
}

#[tokio::test]
async fn connections_past_the_bound_wait_until_one_closes() {
    let server = start(
        state(),
        options(Duration::from_secs(60), Duration::from_secs(60), 2),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(get("/api/v1/kinds").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_reply(&mut stream).await.status, 200);
        held.push(stream); // kept alive
    }
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(get("/api/v1/kinds").as_bytes())
        .await
        .unwrap();
    // A bound on a negative: the third is not served while two are open.
    let waited = timeout(Duration::from_millis(500), read_reply(&mut third)).await;
    assert!(waited.is_err(), "served past the connection bound");
    drop(held.pop());
    let reply = timeout(Duration::from_secs(10), read_reply(&mut third))
        .await
        .expect("not served after a connection closed");
    assert_eq!(reply.status, 200);
}

/// A resource whose JSON is at least `kib` KiB (one large annotation).
fn big_resource(kib: usize) -> Arc<Resource> {
    let mut r = Resource::new("big-uid", Kind::ConfigMap, "ns", "big");
    r.annotations.insert("padding", "x".repeat(kib << 10));
    Arc::new(r)
}

/// `n` update events of `r`, sequences from `first`.
fn updates(r: &Arc<Resource>, first: u64, n: u64) -> Vec<GraphEvent> {
    (first..first + n)
        .map(|seq| GraphEvent {
            seq,
            ts_ms: 0,
            change: GraphChange::NodeUpdated(Arc::clone(r)),
        })
        .collect()
}

/// The ids of SSE events read off a raw chunked response.
#[derive(Default)]
struct Events {
    text: String,
    last: u64,
}

impl Events {
    async fn read_head(&mut self, stream: &mut TcpStream) {
        let mut buf = [0_u8; 4096];
        while !self.text.contains("\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response head");
            self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(self.text.starts_with("HTTP/1.1 200"), "{}", self.text);
        let end = self.text.find("\r\n\r\n").unwrap() + 4;
        self.text.drain(..end);
    }

    /// Reads until the event with id `id` arrived.
    async fn until(&mut self, stream: &mut TcpStream, id: u64) {
        let mut buf = vec![0_u8; 64 << 10];
        while self.last < id {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended");
            self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(end) = self.text.find('\n') {
                let line: String = self.text.drain(..=end).collect();
                if let Some(v) = line.trim_end().strip_prefix("id: ") {
                    self.last = v.parse().unwrap();
                }
            }
        }
    }
}

/// Waits until `f` holds, checking every 10 ms, for at most 10 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    timeout(Duration::from_secs(10), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within 10 s: {what}"));
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_dropped_and_the_others_keep_receiving() {
    let max_pending = 200;
    let feed = ChangeFeed::with_max_pending(1_000, 1_024, max_pending);
    let state = state().with_feed(feed.clone());
    let app = router(state.clone());
    let server = start(
        state.clone(),
        options(Duration::from_secs(60), Duration::from_secs(60), 16),
    )
    .await;

    // The stalled client: a small receive buffer it never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(get("/api/v1/watch").as_bytes())
        .await
        .unwrap();
    // The reading client.
    let mut reader = TcpStream::connect(server.addr).await.unwrap();
    reader
        .write_all(get("/api/v1/watch").as_bytes())
        .await
        .unwrap();
    let mut events = Events::default();
    events.read_head(&mut reader).await;
    let limit = Limits::default().max_watchers;
    eventually("both streams subscribed", || {
        state.watchers.available_permits() == limit - 2
    })
    .await;

    // Publish in rounds the reader keeps up with, until the stalled one is dropped (its
    // socket buffers fill after a few MiB).
    let r = big_resource(4);
    let mut seq = 1;
    for _ in 0..5_000 {
        if feed.dropped() > 0 {
            break;
        }
        feed.publish(updates(&r, seq, 20));
        seq += 20;
        timeout(
            Duration::from_secs(10),
            events.until(&mut reader, feed.last_id()),
        )
        .await
        .expect("the reading client stopped receiving");
    }
    assert_eq!(feed.dropped(), 1, "only the stalled client is dropped");

    // Its connection is closed (after what the kernel buffered), the reader keeps receiving.
    closed_within(&mut stalled, Duration::from_secs(10)).await;
    feed.publish(updates(&r, seq, 20));
    timeout(
        Duration::from_secs(10),
        events.until(&mut reader, feed.last_id()),
    )
    .await
    .expect("the reading client stopped receiving after the drop");
    let metrics = common::get(&app, "/metrics").await.text;
    assert!(
        metrics.contains("astrolabe_watch_streams_dropped_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("astrolabe_watch_streams 1"), "{metrics}");
}

#[tokio::test]
async fn oversized_requests_get_json_errors_below_hypers_limits() {
    let server = start(state(), ServeOptions::default()).await;
    let long = format!("/api/v1/kinds?x={}", "a".repeat(10_000));
    let reply = exchange(server.addr, &get(&long)).await;
    assert_eq!(reply.status, 414);
    assert_eq!(reply.json()["error"], "uri too long");
    assert!(reply.json()["detail"].is_string());

    let header = format!("X-Big: {}\r\n", "b".repeat(8_000));
    let request = format!(
        "GET /api/v1/kinds HTTP/1.1\r\nHost: test\r\n{}\r\n",
        header.repeat(5)
    );
    let reply = exchange(server.addr, &request).await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.json()["error"], "headers too large");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn hyper_answers_malformed_requests_itself_without_a_body() {
    let server = start(state(), ServeOptions::default()).await;
    let reply = exchange(server.addr, "NOT HTTP\r\n\r\n").await;
    assert_eq!((reply.status, reply.body.as_str()), (400, ""));
    let headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let reply = exchange(
        server.addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{headers}\r\n"),
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (431, ""));
}

#[tokio::test]
async fn watch_streams_past_the_bound_get_503() {
    let feed = ChangeFeed::default();
    let state = state().with_feed(feed).with_limits(Limits {
        max_watchers: 1,
        ..Limits::default()
    });
    let app = router(state);
    let open = || async {
        let req = Request::get("/api/v1/watch").body(Body::empty()).unwrap();
        app.clone().oneshot(req).await.unwrap()
    };
    let first = open().await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = common::get(&app, "/api/v1/watch").await;
    common::assert_error(&second, StatusCode::SERVICE_UNAVAILABLE);
    drop(first); // the stream ends: its slot is free
    assert_eq!(open().await.status(), StatusCode::OK);
}
