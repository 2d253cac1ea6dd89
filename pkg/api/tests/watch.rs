#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SSE change stream: resume with Last-Event-ID without gap or duplicate, resync when too
//! far behind, lagging subscribers, filters.

mod common;

use std::time::Duration;

use astrolabe_api::{AppState, ChangeFeed, Limits, router};
use astrolabe_graph::{GraphEvent, SharedGraph};
use astrolabe_model::{ChangeOp, Resource};
use astrolabe_testkit::until;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One parsed SSE message.
#[derive(Debug)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// Reads messages off a streaming body.
struct Reader {
    body: Body,
    buf: String,
}

impl Reader {
    /// The next message with an event or an id (keep-alive comments are skipped).
    async fn message(&mut self) -> Sse {
        loop {
            if let Some(m) = astrolabe_testkit::sse::take(&mut self.buf) {
                if m.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = if m.data.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&m.data).unwrap()
                };
                return Sse {
                    id: m.id.map(|id| id.parse().unwrap()),
                    event: m.event,
                    data,
                };
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

    /// The next message that carries an id.
    async fn next(&mut self) -> Sse {
        loop {
            let m = self.message().await;
            if m.id.is_some() {
                return m;
            }
        }
    }

    /// The events up to and including the one with id `seq`, as `(seq, id)` pairs.
    async fn through(&mut self, seq: u64) -> Vec<(u64, Option<u64>)> {
        let mut out = Vec::new();
        loop {
            let m = self.message().await;
            assert!(
                !m.event.is_empty(),
                "an id-only message on an unfiltered stream: {m:?}"
            );
            out.push((m.data["seq"].as_u64().unwrap(), m.id));
            if m.id == Some(seq) {
                return out;
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
    state: AppState,
    graph: SharedGraph,
    feed: ChangeFeed,
    next: usize,
    pool: Vec<Resource>,
}

impl Fixture {
    fn new(feed: ChangeFeed) -> Self {
        Self::with_limits(feed, Limits::default())
    }

    fn with_limits(feed: ChangeFeed, limits: Limits) -> Self {
        let graph = SharedGraph::new();
        let state: AppState = common::state(graph.clone())
            .with_feed(feed.clone())
            .with_limits(limits);
        Fixture {
            app: router(state.clone()),
            state,
            graph,
            feed,
            next: 0,
            pool: astrolabe_generator::generate(5, 300),
        }
    }

    /// Applies the next `n` generated resources (one change each) and publishes their events;
    /// returns the sequence of each event published, in order.
    fn apply(&mut self, n: usize) -> Vec<u64> {
        let events = self.changes(n);
        let seqs = events.iter().map(|e| e.seq).collect();
        self.feed.publish(events);
        seqs
    }

    /// Applies the next `n` generated resources without publishing: their events.
    fn changes(&mut self, n: usize) -> Vec<GraphEvent> {
        let mut events: Vec<GraphEvent> = Vec::new();
        {
            let mut g = self.graph.write();
            for r in &self.pool[self.next..self.next + n] {
                g.apply(ChangeOp::Upsert(r.clone().into()), 0, &mut events);
            }
        }
        self.next += n;
        events
    }
}

/// The `(seq, id)` a stream sends for events of sequences `seqs`: the id on each change's last
/// event.
fn expected(seqs: &[u64]) -> Vec<(u64, Option<u64>)> {
    seqs.iter()
        .enumerate()
        .map(|(i, &seq)| {
            let closes = seqs.get(i + 1).is_none_or(|next| *next != seq);
            (seq, closes.then_some(seq))
        })
        .collect()
}

#[tokio::test]
async fn ids_are_change_sequences_on_the_last_event_of_each_change() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1_024));
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    let seqs = f.apply(20);
    assert!(
        seqs.windows(2).any(|w| w[0] == w[1]),
        "some change makes several events: {seqs:?}"
    );
    let got = reader.through(*seqs.last().unwrap()).await;
    assert_eq!(got, expected(&seqs));
}

#[tokio::test]
async fn reconnect_with_last_event_id_has_no_gap_and_no_duplicate() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1_024));
    let mut first = connect(&f.app, "/api/v1/watch", None).await;
    let seqs = f.apply(6);
    let seen = first.through(*seqs.last().unwrap()).await;
    let last_seen = seqs[seqs.len() / 2];
    drop(first); // disconnect
    let more = f.apply(4);
    let mut second = connect(&f.app, "/api/v1/watch", Some(last_seen)).await;
    let rest: Vec<u64> = seqs
        .iter()
        .chain(&more)
        .copied()
        .filter(|s| *s > last_seen)
        .collect();
    assert!(!seen.is_empty());
    assert_eq!(second.through(*more.last().unwrap()).await, expected(&rest));
    let live = f.apply(1);
    assert_eq!(
        second.through(*live.last().unwrap()).await,
        expected(&live),
        "live after backlog"
    );
}

#[tokio::test]
async fn a_client_resumes_on_another_replica_from_the_same_id() {
    // Two replicas apply the same changes; the second started later (its feed holds only the
    // changes after its load).
    let mut a = Fixture::new(ChangeFeed::new(10_000, 1_024));
    let mut b = Fixture::new(ChangeFeed::new(10_000, 1_024));
    let loaded = a.apply(5);
    b.changes(5);
    let mut on_a = connect(&a.app, "/api/v1/watch", None).await;
    let seqs = a.apply(6);
    let on_b = b.apply(6);
    assert_eq!(seqs, on_b, "the same changes make the same sequences");
    let got = on_a.through(*seqs.last().unwrap()).await;
    let resume = got[got.len() / 2].0 - 1;
    drop(on_a);
    let mut reader = connect(&b.app, "/api/v1/watch", Some(resume)).await;
    let rest: Vec<u64> = seqs.iter().copied().filter(|s| *s > resume).collect();
    assert_eq!(reader.through(*seqs.last().unwrap()).await, expected(&rest));
    // A sequence from before b's feed began is not in it: b says so.
    let mut early = connect(&b.app, "/api/v1/watch", Some(loaded[0])).await;
    let ev = early.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.data["reason"], "too far behind");
}

#[tokio::test]
async fn a_replica_behind_the_id_waits_for_it() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1_024));
    f.apply(3);
    // An id from a replica further on (change 4): the stream waits for this replica to get
    // there instead of answering "ahead".
    let app = f.app.clone();
    let reader = tokio::spawn(async move {
        let mut r = connect(&app, "/api/v1/watch", Some(4)).await;
        r.message().await
    });
    let limit = Limits::default().max_watchers;
    until("the stream is waiting", Duration::from_secs(10), || {
        f.state.watchers.available_permits() == limit - 1
    })
    .await;
    let more = f.apply(3);
    let first = reader.await.unwrap();
    assert_ne!(first.event, "resync", "{first:?}");
    assert_eq!(
        first.data["seq"].as_u64(),
        more.iter().find(|s| **s > 4).copied()
    );
}

#[tokio::test]
async fn too_far_behind_gets_resync() {
    let mut f = Fixture::new(ChangeFeed::new(5, 1_024));
    let seqs = f.apply(10);
    let newest = *seqs.last().unwrap();
    let mut reader = connect(&f.app, "/api/v1/watch", Some(seqs[0])).await;
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.data["reason"], "too far behind");
    assert_eq!(ev.id, Some(newest));
    assert_eq!(ev.data["lastEventId"], newest);
    let live = f.apply(1);
    assert_eq!(reader.through(*live.last().unwrap()).await, expected(&live));
}

#[tokio::test]
async fn an_id_ahead_of_the_server_says_so() {
    let limits = Limits {
        min_seq_wait: Duration::from_millis(50),
        ..Limits::default()
    };
    let mut f = Fixture::with_limits(ChangeFeed::new(100, 1_024), limits);
    let newest = *f.apply(3).last().unwrap();
    let requested = newest + 100;
    let mut reader = connect(&f.app, "/api/v1/watch", Some(requested)).await;
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.data["reason"], "ahead of the server", "{:?}", ev.data);
    let detail = ev.data["detail"].as_str().unwrap();
    assert!(detail.contains(&requested.to_string()), "{detail}");
    assert!(
        detail.contains("ahead of the server's newest change"),
        "{detail}"
    );
    assert!(detail.contains("restarted"), "{detail}");
    // the event's id is the server's newest, so a client resumes from there
    assert_eq!(ev.id, Some(newest));
    assert_eq!(ev.data["lastEventId"], newest);
    let live = f.apply(1);
    assert_eq!(reader.through(*live.last().unwrap()).await, expected(&live));
}

#[tokio::test]
async fn lagging_subscriber_catches_up_from_the_ring() {
    let mut f = Fixture::new(ChangeFeed::new(10_000, 1));
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    let seqs = f.apply(20); // far more events than the live buffer of 1
    assert_eq!(reader.through(*seqs.last().unwrap()).await, expected(&seqs));
}

#[tokio::test]
async fn lagging_past_the_ring_gets_resync() {
    let mut f = Fixture::new(ChangeFeed::new(3, 1));
    let mut reader = connect(&f.app, "/api/v1/watch", None).await;
    let newest = *f.apply(20).last().unwrap();
    let ev = reader.next().await;
    assert_eq!(ev.event, "resync");
    assert_eq!(ev.id, Some(newest));
    // With a live buffer of 1 and a ring of 3, the next batch may lag again: whatever comes
    // next continues after the resync point.
    let more = f.apply(1);
    let next = reader.next().await;
    let id = next.id.unwrap();
    assert!(id > newest && id <= *more.last().unwrap(), "{next:?}");
}

#[tokio::test]
async fn a_filtered_stream_gets_the_id_of_each_change_it_saw_part_of() {
    let mut f = Fixture::new(ChangeFeed::default());
    let mut pods = connect(&f.app, "/api/v1/watch?kind=pod", None).await;
    let seqs = f.apply(200);
    let newest = *seqs.last().unwrap();
    // Every change with an event sent is closed by an id, event or id-only, before the next.
    let mut open: Option<u64> = None;
    let mut closed = Vec::new();
    loop {
        let m = pods.message().await;
        if m.event.is_empty() {
            let id = m.id.unwrap();
            assert_eq!(
                open.take(),
                Some(id),
                "an id alone closes a change partly sent"
            );
            closed.push(id);
        } else {
            let seq = m.data["seq"].as_u64().unwrap();
            if let Some(o) = open {
                assert_eq!(o, seq, "the change before was left open: {m:?}");
            }
            match m.id {
                Some(id) => {
                    assert_eq!(id, seq);
                    open = None;
                    closed.push(id);
                }
                None => open = Some(seq),
            }
        }
        if closed.last().is_some_and(|c| *c >= newest - 10) {
            break;
        }
    }
    assert!(closed.windows(2).all(|w| w[0] < w[1]), "{closed:?}");
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
