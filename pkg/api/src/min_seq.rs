//! `?minSeq=N` on every route: read-your-writes across replicas behind one Service. A request
//! that names a sequence waits (up to [`crate::Limits::min_seq_wait`]) until the graph this
//! replica serves has reached it, then runs; past the bound it is answered with 503, the
//! replica's sequence in the body and in `X-Astrolabe-Seq`, so that the client can retry
//! elsewhere or later. A value that is not a sequence is a 400.

use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use astrolabe_graph::SharedGraph;

use crate::error::ApiError;
use crate::feed::ChangeFeed;
use crate::json::with_seq;
use crate::params::Params;
use crate::state::AppState;

/// The query parameter.
pub const MIN_SEQ: &str = "minSeq";

/// How often the graph's sequence is looked at again while no change event arrives (a change
/// that alters nothing advances the sequence without an event).
const RECHECK: Duration = Duration::from_millis(20);

/// What the layer needs of the application's state (cloned per request: kept small).
#[derive(Clone)]
pub struct MinSeq {
    graph: SharedGraph,
    feed: ChangeFeed,
    wait: Duration,
}

impl MinSeq {
    /// The layer's state for `state`.
    #[must_use]
    pub fn of(state: &AppState) -> Self {
        MinSeq {
            graph: state.graph.clone(),
            feed: state.feed.clone(),
            wait: state.limits.min_seq_wait,
        }
    }
}

/// The layer's function; see the [module](self) documentation.
pub async fn wait_for_min_seq(State(state): State<MinSeq>, req: Request, next: Next) -> Response {
    let want = match requested(req.uri()) {
        Ok(None) => return next.run(req).await,
        Ok(Some(want)) => want,
        Err(e) => return e.into_response(),
    };
    match reach(&state.graph, &state.feed, want, state.wait).await {
        Ok(()) => next.run(req).await,
        Err(seq) => with_seq(
            seq,
            ApiError::Unavailable(format!(
                "this replica is at sequence {seq}, not yet at {want} (minSeq); retry, here or on another replica"
            )),
        ),
    }
}

/// Waits up to `wait` until the graph has reached sequence `want`; the graph's sequence when
/// it has not.
pub(crate) async fn reach(
    graph: &SharedGraph,
    feed: &ChangeFeed,
    want: u64,
    wait: Duration,
) -> Result<(), u64> {
    let deadline = Instant::now() + wait;
    let mut live = feed.subscribe_live();
    loop {
        let seq = graph.read().seq();
        if seq >= want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(seq);
        }
        let until = deadline.min(Instant::now() + RECHECK);
        // Woken by the next change event, or at the next recheck.
        let _ = tokio::time::timeout_at(until, live.recv()).await;
    }
}

/// The `minSeq` of a request's query string.
fn requested(uri: &axum::http::Uri) -> Result<Option<u64>, ApiError> {
    if !uri.query().is_some_and(|q| q.contains(MIN_SEQ)) {
        return Ok(None);
    }
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::param(MIN_SEQ, e.body_text()))?;
    Params::from_pairs(pairs).u64(MIN_SEQ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_is_a_sequence_number() {
        let parse = |uri: &str| requested(&uri.parse().unwrap());
        assert_eq!(parse("/api/v1/graph").unwrap(), None);
        assert_eq!(parse("/api/v1/graph?depth=2").unwrap(), None);
        assert_eq!(parse("/api/v1/graph?depth=2&minSeq=42").unwrap(), Some(42));
        assert!(parse("/api/v1/graph?minSeq=-1").is_err());
        assert!(parse("/api/v1/graph?minSeq=soon").is_err());
    }
}
