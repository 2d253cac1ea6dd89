#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SSE change stream: resume with Last-Event-ID without gap or duplicate, resync when too
//! far behind, lagging subscribers, filters.

mod common;

use std::time::Duration;

use astrolabe_api::{AppState, ChangeFeed, router};
use astrolabe_graph::{GraphEvent, SharedGraph};
use astrolabe_model::{ChangeOp, Resource};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One parsed SSE event.
#[derive(Debug)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// Reads events off a streaming body.
struct Reader {
    body: Body,
    buf: String,
}

impl Reader {
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let Some(id) = id {
                    return Sse {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
                continue; // a keep-alive comment
            }
            // A guard against a hung test, not a synchronisation point.
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("no event within 10 s")
                .expect("stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

async fn connect(app: &Router, uri: &str, last_event_id: Option<u64>) -> Reader {
    let mut req = Request::get(uri);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Reader {
        body: resp.into_body(),
        buf: String::new(),
    }
}

struct Fixture {
    app: Router,
    graph: SharedGraph,
    feed: ChangeFeed,
    next: usize,
    pool: Vec<Resource>,
}

impl Fixture {
    fn new(feed: ChangeFeed) -> Self {
        let graph = SharedGraph::new();
        let state: AppState = common::state(graph.clone()).with_feed(feed.clone());
        Fixture {
            app: router(state),
            graph,
            feed,
            next: 0,
            pool: astrolabe_generator::generate(5, 300),
        }
    }

    /// Applies the next `n` generated resources and publishes their events; returns how many
    /// events were published.
    fn apply(&mut self, n: usize) -> usize {
        let mut events: Vec<GraphEvent> = Vec::new();
        {
            let mut g = self.graph.write();
            for r in &self.pool[self.next..self.next + n] {
                g.apply(ChangeOp::Upsert(r.clone().into()), 0, &mut events);
            }
        }
        self.next += n;
        let count = events.len();
        self.feed.publish(events);
        count
    }
}

#[tokio::test]
async fn reconnect_with_last_event_id_has_no_gap_and_no_duplicate() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1_024));
    let mut first = connect(&f.app, "/api/v1/watch", None).await;
    let published = f.apply(3);
    let mut seen = Vec::new();
    for _ in 0..published {
        let ev = first.next().await;
        assert!(ev.event.starts_with("node-") || ev.event.starts_with("edge-"));
        assert!(ev.data["seq"].is_u64());
        seen.push(ev.id);
    }
    assert_eq!(seen, (1..=published as u64).collect::<Vec<_>>());
    let last_seen = seen[published / 2];
    drop(first); // disconnect
    let more = f.apply(4);
    let mut second = connect(&f.app, "/api/v1/watch", Some(last_seen)).await;
    let total = (published + more) as u64;
    for expected in last_seen + 1..=total {
        assert_eq!(second.next().await.id, expected);
    }
    let live = f.apply(1) as u64;
    for expected in total + 1..=total + live {
        assert_eq!(second.next().await.id, expected, "live after backlog");
    }
}

#[tokio::test]
async fn too_far_behind_gets_resync() {
    let mut f = Fixture::new(ChangeFeed::new(5, 1_024));
    let published = f.apply(10) as u64;
    assert!(published > 6);
    let mut reader = connect(&f.app, "/api/v1/watch", Some(1)).await;
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.id, published);
    assert_eq!(ev.data["lastEventId"], published);
    f.apply(1);
    assert_eq!(reader.next().await.id, published + 1);
    assert_eq!(ev.data["reason"], "too far behind");
}

#[tokio::test]
async fn an_id_ahead_of_the_server_says_so() {
    let mut f = Fixture::new(ChangeFeed::new(100, 1_024));
    let published = f.apply(3) as u64;
    let requested = published + 100;
    let mut reader = connect(&f.app, "/api/v1/watch", Some(requested)).await;
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.data["reason"], "ahead of the server", "{:?}", ev.data);
    let detail = ev.data["detail"].as_str().unwrap();
    assert!(detail.contains(&requested.to_string()), "{detail}");
    assert!(
        detail.contains("ahead of the server's newest event"),
        "{detail}"
    );
    assert!(detail.contains("restarted"), "{detail}");
    // the event's id is the server's newest, so a client resumes from there
    assert_eq!(ev.id, published);
    assert_eq!(ev.data["lastEventId"], published);
    f.apply(1);
    assert_eq!(reader.next().await.id, published + 1);
}

#[tokio::test]
async fn lagging_subscriber_catches_up_from_the_ring() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1));
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    let published = f.apply(20) as u64; // far more than the live buffer of 1
    for expected in 1..=published {
        assert_eq!(reader.next().await.id, expected);
    }
}

#[tokio::test]
async fn lagging_past_the_ring_gets_resync() {
    let mut f = Fixture::new(ChangeFeed::new(3, 1));
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    let published = f.apply(20) as u64;
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.id, published);
    // With a live buffer of 1 and a ring of 3, the next batch may lag again: whatever comes
    // next continues after the resync point.
    let more = f.apply(1) as u64;
    let next = reader.next().await;
    assert!(
        next.id > published && next.id <= published + more,
        "{next:?}"
    );
}

#[tokio::test]
async fn filters_by_kind_and_namespace() {
    let mut f = Fixture::new(ChangeFeed::default());
    let mut pods = connect(&f.app, "/api/v1/watch?kind=pod", None).await;
    f.apply(200);
    for _ in 0..5 {
        let ev = pods.next().await;
        if let Some(r) = ev.data.get("resource") {
            assert_eq!(r["kind"], "Pod", "{ev:?}");
        } else if let Some(r) = ev.data.get("removed") {
            assert_eq!(r["kind"], "Pod", "{ev:?}");
        } else {
            assert!(ev.data["edge"]["from"].is_string(), "{ev:?}");
        }
    }
    let mut none = connect(&f.app, "/api/v1/watch?namespace=no-such-ns", None).await;
    f.apply(50);
    f.feed.close();
    let end = tokio::time::timeout(Duration::from_secs(10), none.body.frame())
        .await
        .unwrap();
    assert!(end.is_none(), "nothing matched, then the stream ended");
}

#[tokio::test]
async fn bad_last_event_id_is_400() {
    let f = Fixture::new(ChangeFeed::default());
    let req = Request::get("/api/v1/watch")
        .header("last-event-id", "abc")
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let r = common::get(&f.app, "/api/v1/watch?lastEventId=-3").await;
    common::assert_error(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn closing_the_feed_ends_streams() {
    let f = Fixture::new(ChangeFeed::default());
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    f.feed.close();
    let end = tokio::time::timeout(Duration::from_secs(10), reader.body.frame())
        .await
        .unwrap();
    assert!(end.is_none(), "stream ends");
}
