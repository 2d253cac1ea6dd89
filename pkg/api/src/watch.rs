//! `GET /api/v1/watch`: graph changes as Server-Sent Events, resumable with `Last-Event-ID`.
//!
//! Each event's `id` is its feed id. A client resuming after id N gets exactly the events after
//! N that match its filter, from the feed's ring, then live ones. When those events are gone
//! (too far behind, or a live subscriber lagged past the ring) or N is ahead of the server's
//! newest event, it gets `event: resync` saying which: re-read the state, then keep applying the
//! events that follow.
//!
//! At most `limits.max_watchers` streams are open at once (more get a 503). A stream whose
//! client stops reading falls behind the feed; past the feed's bound the feed drops it and its
//! connection is closed ([`crate::feed`], [`crate::serve::ConnectionClose`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use astrolabe_model::{Kind, Str};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::feed::{FeedEvent, Since, Subscription};
use crate::json::{EdgeJson, with_seq};
use crate::params::Params;
use crate::queries::WatchQuery;
use crate::serve::ConnectionClose;
use crate::state::AppState;
use crate::view::ResourceJson;
use astrolabe_graph::{GraphChange, SharedGraph};

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Which changes a watcher wants.
#[derive(Clone, Debug, Default)]
struct Filter {
    namespace: Option<Str>,
    kind: Option<Kind>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.namespace.is_none() && self.kind.is_none()
    }

    fn matches_object(&self, kind: &Kind, namespace: &str) -> bool {
        self.kind.as_ref().is_none_or(|k| k == kind)
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }

    /// Node events match on the resource; edge events when either end (looked up in the graph
    /// now) matches.
    fn matches(&self, change: &GraphChange, graph: &SharedGraph) -> bool {
        if self.is_empty() {
            return true;
        }
        match change {
            GraphChange::NodeAdded(r) | GraphChange::NodeUpdated(r) => {
                self.matches_object(&r.kind, &r.namespace)
            }
            GraphChange::NodeRemoved { key, .. } => self.matches_object(&key.kind, &key.namespace),
            GraphChange::EdgeAdded(e) | GraphChange::EdgeRemoved(e) => {
                let g = graph.read();
                [&e.from, &e.to]
                    .into_iter()
                    .filter_map(|uid| g.get(uid))
                    .any(|r| self.matches_object(&r.kind, &r.namespace))
            }
        }
    }
}

/// A removed resource's identity.
#[derive(Serialize)]
struct RemovedJson<'a> {
    uid: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

/// The `data` of a change event.
#[derive(Serialize)]
struct ChangeJson<'a> {
    seq: u64,
    ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<RemovedJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<EdgeJson<'a>>,
}

/// Why a watcher must re-read the state instead of resuming.
#[derive(Clone, Copy, Debug)]
enum Resync {
    /// The events after its id were evicted from the ring.
    TooFarBehind,
    /// A live subscriber fell behind by more than the ring holds.
    Lagged,
    /// Its id is past the newest event the server published.
    Ahead,
}

impl Resync {
    fn reason(self) -> &'static str {
        match self {
            Resync::TooFarBehind => "too far behind",
            Resync::Lagged => "lagged behind the live stream",
            Resync::Ahead => "ahead of the server",
        }
    }

    /// What happened and what the client should do, for a client resuming after `requested`
    /// (when it gave an id) on a feed whose newest event is `last_event_id`.
    fn detail(self, requested: Option<u64>, last_event_id: u64) -> String {
        let after = requested.map_or_else(String::new, |id| format!(" after id {id}"));
        match self {
            Resync::TooFarBehind => format!(
                "the events{after} are no longer retained; re-read the state, then apply the \
                 events after id {last_event_id}"
            ),
            Resync::Lagged => format!(
                "this stream fell behind by more than the server retains; re-read the state, \
                 then apply the events after id {last_event_id}"
            ),
            Resync::Ahead => format!(
                "Last-Event-ID{after} is ahead of the server's newest event ({last_event_id}): \
                 the server restarted from an older state or the id belongs to another server; \
                 re-read the state (relist), then apply the events after id {last_event_id} \
                 (or reconnect without Last-Event-ID)"
            ),
        }
    }
}

/// The `data` of a resync event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResyncJson {
    reason: &'static str,
    detail: String,
    last_event_id: u64,
}

fn change_event(ev: &FeedEvent) -> Event {
    let e = &ev.event;
    let mut data = ChangeJson {
        seq: e.seq,
        ts: e.ts_ms,
        resource: None,
        removed: None,
        edge: None,
    };
    let name = match &e.change {
        GraphChange::NodeAdded(r) => {
            data.resource = Some(ResourceJson::from(&**r));
            "node-added"
        }
        GraphChange::NodeUpdated(r) => {
            data.resource = Some(ResourceJson::from(&**r));
            "node-updated"
        }
        GraphChange::NodeRemoved { uid, key } => {
            data.removed = Some(RemovedJson {
                uid: uid.as_str(),
                kind: key.kind.as_str(),
                namespace: &key.namespace,
                name: &key.name,
            });
            "node-removed"
        }
        GraphChange::EdgeAdded(edge) => {
            data.edge = Some(EdgeJson::from(edge));
            "edge-added"
        }
        GraphChange::EdgeRemoved(edge) => {
            data.edge = Some(EdgeJson::from(edge));
            "edge-removed"
        }
    };
    sse_event(ev.id, name, &data)
}

fn resync_event(why: Resync, requested: Option<u64>, last_event_id: u64) -> Event {
    sse_event(
        last_event_id,
        "resync",
        &ResyncJson {
            reason: why.reason(),
            detail: why.detail(requested, last_event_id),
            last_event_id,
        },
    )
}

fn sse_event(id: u64, name: &str, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding a watch event");
        "{}".to_owned()
    });
    Event::default().id(id.to_string()).event(name).data(data)
}

/// The id to resume after: the `Last-Event-ID` header, else `query` (the `lastEventId`
/// parameter).
fn resume_after(headers: &HeaderMap, query: Option<u64>) -> ApiResult<Option<u64>> {
    match headers.get("last-event-id") {
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(
                    "invalid header",
                    format!("Last-Event-ID: expected a non-negative integer, got {text:?}"),
                )
            })
        }
        None => Ok(query),
    }
}

/// `GET /api/v1/watch?namespace=&kind=`.
#[utoipa::path(get, path = "/api/v1/watch",
    summary = "Graph changes as Server-Sent Events (node-added, node-updated, node-removed, \
        edge-added, edge-removed, resync). Resume with the Last-Event-ID header.",
    params(WatchQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id.")),
    responses((status = 200, description = "An event stream.", body = String,
        content_type = "text/event-stream"),
        (status = 503, description = "Too many open watch streams.", body = ErrorBody)))]
pub async fn watch(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionClose>>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    let q = WatchQuery::parse(&p)?;
    let after = resume_after(&headers, q.last_event_id)?;
    let filter = Filter {
        namespace: q.namespace,
        kind: q.kind,
    };
    let permit = Arc::clone(&state.watchers)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Unavailable(format!(
                "{} watch streams are open, the most this server serves; retry later",
                state.limits.max_watchers
            ))
        })?;
    let close = connection.map_or_else(CancellationToken::new, |c| c.0.0.clone());
    let seq = state.graph.read().seq();
    let sub = state.feed.subscribe(after, close);
    let stream = events(state, filter, after, sub, permit);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(with_seq(seq, sse.into_response()))
}

fn events(
    state: AppState,
    filter: Filter,
    after: Option<u64>,
    sub: Subscription,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let Subscription {
        backlog,
        last_id,
        mut live,
        cursor,
    } = sub;
    let feed = state.feed.clone();
    let closed = feed.closed();
    async_stream::stream! {
        // Held while the stream is open.
        let _permit = permit;
        // The id of the last event delivered (or skipped by the filter): never go back.
        let mut last = last_id;
        match backlog {
            Since::Events(evs) => {
                for ev in evs {
                    last = ev.id;
                    if filter.matches(&ev.event.change, &state.graph) {
                        yield Ok(change_event(&ev));
                    }
                }
            }
            Since::TooFarBehind => yield Ok(resync_event(Resync::TooFarBehind, after, last)),
            Since::Ahead => yield Ok(resync_event(Resync::Ahead, after, last)),
        }
        loop {
            let received = tokio::select! {
                () = closed.cancelled() => break,
                () = cursor.close().cancelled() => break,
                r = live.recv() => r,
            };
            let batch: Vec<Arc<FeedEvent>> = match received {
                Ok(ev) => vec![ev],
                Err(RecvError::Closed) => break,
                Err(RecvError::Lagged(_)) => match feed.since(last) {
                    Since::Events(evs) => evs,
                    Since::TooFarBehind | Since::Ahead => {
                        last = feed.last_id();
                        yield Ok(resync_event(Resync::Lagged, None, last));
                        Vec::new()
                    }
                },
            };
            for ev in batch {
                if ev.id <= last {
                    continue;
                }
                last = ev.id;
                if filter.matches(&ev.event.change, &state.graph) {
                    yield Ok(change_event(&ev));
                }
                cursor.advance(last);
            }
            cursor.advance(last);
        }
    }
}
