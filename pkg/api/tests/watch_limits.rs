#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Watch stream bounds: the cap on open streams, streams outliving the idle timeout, and a
//! subscriber whose client stops reading, dropped while the others keep receiving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::{AppState, ChangeFeed, Limits, router};
use astrolabe_graph::{GraphChange, GraphEvent};
use astrolabe_model::{Kind, Resource};
use astrolabe_testkit::until;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::wire::{Events, PROMPTLY, closed_within, get, options, send, start};
use tokio::net::TcpSocket;
use tower::ServiceExt;

const LONG: Duration = Duration::from_secs(60);

fn state() -> AppState {
    common::state(common::graph_of(common::shop()))
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

#[tokio::test]
async fn watch_streams_past_the_cap_get_503() {
    let state = state().with_limits(Limits {
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
    // The status first: past the cap, a stream would not end and its body could not be read.
    assert_eq!(open().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let second = common::get(&app, "/api/v1/watch").await;
    common::assert_error(&second, StatusCode::SERVICE_UNAVAILABLE);
    drop(first); // the stream ends: its slot is free
    assert_eq!(open().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_watch_stream_keeps_its_connection_past_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let feed = ChangeFeed::default();
    let server = start(state().with_feed(feed.clone()), options(LONG, idle, 16)).await;
    let mut stream = send(server.addr, &get("/api/v1/watch")).await;
    let mut events = Events::default();
    events.read_head(&mut stream).await;
    // A silent connection opened after the stream: once the idle timeout closed it, the
    // stream has been open longer than the idle timeout.
    let mut silent = send(server.addr, "").await;
    closed_within(&mut silent, PROMPTLY).await;
    feed.publish(updates(&big_resource(1), 1, 1));
    events.until(&mut stream, feed.last_seq()).await;
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_dropped_and_the_others_keep_receiving() {
    let max_pending = 200;
    let feed = ChangeFeed::with_max_pending(1_000, 1_024, max_pending);
    let state = state().with_feed(feed.clone());
    let app = router(state.clone());
    let server = start(state.clone(), options(LONG, LONG, 16)).await;

    // The stalled client: a small receive buffer it never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, get("/api/v1/watch").as_bytes())
        .await
        .unwrap();
    // The reading client.
    let mut reader = send(server.addr, &get("/api/v1/watch")).await;
    let mut events = Events::default();
    events.read_head(&mut reader).await;
    let limit = Limits::default().max_watchers;
    until("both streams subscribed", PROMPTLY, || {
        state.watchers.available_permits() == limit - 2
    })
    .await;

    // Publish in rounds the reader keeps up with, until the stalled one is dropped (its
    // socket buffers fill after a few MiB).
    let r = big_resource(4);
    let mut seq = 1;
    for _ in 0..1_000 {
        if feed.dropped() > 0 {
            break;
        }
        feed.publish(updates(&r, seq, 20));
        seq += 20;
        events.until(&mut reader, feed.last_seq()).await;
    }
    assert_eq!(feed.dropped(), 1, "only the stalled client is dropped");

    // Its connection is closed (after what the kernel buffered), the reader keeps receiving.
    closed_within(&mut stalled, PROMPTLY).await;
    feed.publish(updates(&r, seq, 20));
    events.until(&mut reader, feed.last_seq()).await;
    let metrics = common::get(&app, "/metrics").await.text;
    assert!(
        metrics.contains("astrolabe_watch_streams_dropped_total 1"),
        "{metrics}"
    );
    until("the stalled stream's slot is free", PROMPTLY, || {
        state.watchers.available_permits() == limit - 1
    })
    .await;
    let metrics = common::get(&app, "/metrics").await.text;
    assert!(metrics.contains("astrolabe_watch_streams 1"), "{metrics}");
}
