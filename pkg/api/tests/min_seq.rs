#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `?minSeq=N`: a read waits until the graph reaches sequence N, answers 503 with the
//! replica's sequence past the bound, and refuses a value that is not a sequence.

mod common;

use std::time::Duration;

use astrolabe_api::{Limits, router};
use astrolabe_graph::GraphEvent;
use astrolabe_model::{ChangeOp, Kind, Resource};
use axum::http::StatusCode;
use common::{assert_error, get, graph_of, seq_header, shop, state};

fn app(
    wait: Duration,
) -> (
    axum::Router,
    astrolabe_graph::SharedGraph,
    astrolabe_api::AppState,
) {
    let graph = graph_of(shop());
    let state = state(graph.clone()).with_limits(Limits {
        min_seq_wait: wait,
        ..Limits::default()
    });
    (router(state.clone()), graph, state)
}

#[tokio::test]
async fn a_read_waits_for_the_sequence_it_names() {
    let (app, graph, state) = app(Duration::from_secs(30));
    let now = graph.read().seq();
    let want = now + 1;
    let waiting = tokio::spawn({
        let app = app.clone();
        async move { get(&app, &format!("/api/v1/graph?minSeq={want}")).await }
    });
    // On this single-threaded runtime the request runs until it waits.
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "the read waits for the sequence");
    // The change it waits for: applied, and published as the apply loop does.
    let mut events: Vec<GraphEvent> = Vec::new();
    graph.write().apply(
        ChangeOp::Upsert(Resource::new("cm-new", Kind::ConfigMap, "shop", "new").into()),
        0,
        &mut events,
    );
    state.feed.publish(events);
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(seq_header(&reply) >= want);
    assert!(
        reply.text.contains("cm-new"),
        "the answer reflects the change"
    );

    // A sequence already reached is answered at once.
    let reply = get(&app, &format!("/api/v1/graph?minSeq={now}")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn past_the_bound_the_answer_is_503_with_the_replicas_sequence() {
    let (app, graph, _) = app(Duration::from_millis(50));
    let now = graph.read().seq();
    let reply = get(&app, &format!("/api/v1/resources?minSeq={}", now + 1_000)).await;
    assert_error(&reply, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seq_header(&reply), now);
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains(&now.to_string())
    );
}

#[tokio::test]
async fn a_value_that_is_not_a_sequence_is_a_400() {
    let (app, _, _) = app(Duration::from_secs(1));
    for bad in ["-1", "soon", "1.5"] {
        let reply = get(&app, &format!("/api/v1/graph?minSeq={bad}")).await;
        assert_error(&reply, StatusCode::BAD_REQUEST);
    }
}
