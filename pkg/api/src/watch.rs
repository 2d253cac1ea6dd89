//! `GET /api/v1/watch`: graph changes as Server-Sent Events, resumable with `Last-Event-ID`.
//!
//! Event ids are change sequences, the same on every replica. The stream sends the id `S` once
//! the client has every event of change `S` it asked for: on the change's last event when that
//! one passes the filter, else in a message with only an id (no event is dispatched for it).
//! The other events of a change carry no id, so a client cut off in the middle of a change
//! resumes before it and gets the whole change again. A client resuming after sequence N gets
//! the events of the later changes that match its filter, from the feed's ring, then live ones;
//! a replica that has not reached N yet waits for it as `minSeq` does. When those events are
//! gone (too far behind, or a live subscriber lagged past the ring) or N is ahead of the
//! replica, it gets `event: resync` saying which: re-read the state, then keep applying the
//! events that follow.
//!
//! With `since=` (a point of history) the stream first replays the changes since that point, as
//! the graph made them then (events without ids), then sends `caught-up` with the sequence it
//! reached as its id, then live events; live events of changes the replay already sent are
//! skipped.
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
use crate::history::{no_history, past_or_live};
use crate::json::{EdgeJson, with_seq};
use crate::params::Params;
use crate::queries::WatchQuery;
use crate::serve::ConnectionClose;
use crate::state::AppState;
use crate::view::ResourceJson;
use astrolabe_graph::{Graph, GraphChange, GraphEvent, SharedGraph};

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
        self.is_empty() || self.matches_in(change, &graph.read())
    }

    /// [`Filter::matches`], edge ends looked up in `g`.
    fn matches_in(&self, change: &GraphChange, g: &Graph) -> bool {
        match change {
            GraphChange::NodeAdded(r) | GraphChange::NodeUpdated(r) => {
                self.matches_object(&r.kind, &r.namespace)
            }
            GraphChange::NodeRemoved { key, .. } => self.matches_object(&key.kind, &key.namespace),
            GraphChange::EdgeAdded(e) | GraphChange::EdgeRemoved(e) => [&e.from, &e.to]
                .into_iter()
                .filter_map(|uid| g.get(uid))
                .any(|r| self.matches_object(&r.kind, &r.namespace)),
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
    /// Its id is past the sequence this replica reached within the wait.
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
    /// (when it gave an id) on a replica whose newest change is `last_event_id`.
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
                "Last-Event-ID{after} is ahead of the server's newest change ({last_event_id}): \
                 the server restarted from an older state or the id belongs to another cluster's \
                 server; re-read the state (relist), then apply the events after id \
                 {last_event_id} (or reconnect without Last-Event-ID)"
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

/// A message with only an id: the client has every event of change `seq` it asked for.
fn id_only(seq: u64) -> Event {
    Event::default().id(seq.to_string())
}

/// A graph event as an SSE event without an id (a past one, replayed for `since=`).
fn graph_event(e: &GraphEvent) -> Event {
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
    named_event(name, &data)
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
    named_event(name, data).id(id.to_string())
}

fn named_event(name: &str, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding a watch event");
        "{}".to_owned()
    });
    Event::default().event(name).data(data)
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
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this event id (a change sequence, the same on every replica).")),
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
    // `since=` (unless resuming by id): the graph at the point, checked before the stream starts.
    let from = match (q.since.as_deref(), after) {
        (Some(text), None) => Some(past_point(&state, text).await?),
        _ => None,
    };
    let mut seq = state.graph.read().seq();
    if let Some(after) = after
        && after > seq
    {
        // A client coming from a replica further on: wait for this one to get there.
        seq = match crate::min_seq::reach(
            &state.graph,
            &state.feed,
            after,
            state.limits.min_seq_wait,
        )
        .await
        {
            Ok(()) => state.graph.read().seq(),
            Err(seq) => seq,
        };
    }
    let sub = state.feed.subscribe(after, seq, close);
    let replay = match from {
        Some((base, point, text)) => {
            // Every change up to the feed's position comes from the log; later ones live.
            let upto = sub.last_seq.max(seq);
            let changes = changes_upto(&state, point, &text, base.as_of.seq, upto).await?;
            Some(Replay {
                graph: base.graph,
                changes,
                upto,
            })
        }
        None => None,
    };
    let stream = events(state, filter, (after, seq), sub, replay, permit);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(with_seq(seq, sse.into_response()))
}

/// Most changes a `since=` stream replays; further back, read `/api/v1/diff` instead.
pub const MAX_REPLAY: usize = 100_000;

/// How long a `since=` stream waits for the log to hold the changes the graph already applied
/// (the writer appends them a few milliseconds later).
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The past a `since=` stream replays: the graph at the point, and the changes after it up to
/// `upto` (the feed's position when subscribing).
struct Replay {
    graph: Arc<Graph>,
    changes: Vec<astrolabe_model::Change>,
    upto: u64,
}

/// The `data` of the `caught-up` event that ends a replay.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaughtUpJson {
    seq: u64,
    last_event_id: u64,
}

/// The graph at `since` (a copy of the live one when it names the newest point), the point and
/// its text.
async fn past_point(
    state: &AppState,
    text: &str,
) -> ApiResult<(crate::history::PastGraph, astrolabe_history::Point, String)> {
    let history = state.history.clone().ok_or_else(no_history)?;
    let point = astrolabe_history::Point::parse(text, astrolabe_model::now_ms())
        .map_err(|e| ApiError::param("since", e))?;
    let base = past_or_live(&state.graph, history.locate(point, text).await?);
    Ok((base, point, text.to_owned()))
}

/// The changes after `point` (whose graph stands at `from`) up to `upto`, waiting up to
/// [`LOG_WAIT`] for the log to hold the last of them.
async fn changes_upto(
    state: &AppState,
    point: astrolabe_history::Point,
    text: &str,
    from: u64,
    upto: u64,
) -> ApiResult<Vec<astrolabe_model::Change>> {
    let Some(history) = state.history.clone() else {
        return Ok(Vec::new());
    };
    if upto.saturating_sub(from) > MAX_REPLAY as u64 {
        return Err(ApiError::param(
            "since",
            format!(
                "{text} is {} changes back, more than a stream replays ({MAX_REPLAY}); read /api/v1/diff from there instead",
                upto - from
            ),
        ));
    }
    let started = tokio::time::Instant::now();
    loop {
        let changes = history
            .changes(point, astrolabe_history::Point::Seq(upto), text, None)
            .await?;
        if changes.last().map_or(from, |c| c.seq) >= upto {
            return Ok(changes);
        }
        if started.elapsed() > LOG_WAIT {
            return Err(ApiError::Unavailable(format!(
                "the log does not hold the changes up to seq {upto} yet; retry"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where a stream stands in the changes of the feed: which change's events it is sending, and
/// whether it sent one of them without its id.
struct Progress {
    /// The sequence of the last change whose id the client has.
    last_seq: u64,
    /// A change some of whose events were sent without an id.
    open: Option<u64>,
}

impl Progress {
    /// The SSE message for `ev` (if any): the event when it passes the filter, with the
    /// change's id when it closes the change; an id alone when it closes a change some of whose
    /// events were sent.
    fn take(&mut self, ev: &FeedEvent, passes: bool) -> Option<Event> {
        let seq = ev.seq();
        if !ev.closes_change {
            if passes {
                self.open = Some(seq);
                return Some(graph_event(&ev.event));
            }
            return None;
        }
        let sent_part = self.open.take() == Some(seq);
        self.last_seq = self.last_seq.max(seq);
        if passes {
            Some(graph_event(&ev.event).id(seq.to_string()))
        } else if sent_part {
            Some(id_only(seq))
        } else {
            None
        }
    }
}

fn events(
    state: AppState,
    filter: Filter,
    (after, graph_seq): (Option<u64>, u64),
    sub: Subscription,
    replay: Option<Replay>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let Subscription {
        backlog,
        last_pos,
        last_seq,
        mut live,
        cursor,
    } = sub;
    let replayed = replay.as_ref().map_or(0, |r| r.upto);
    // The newest change when subscribing: where a client that re-reads the state continues.
    let newest = last_seq.max(graph_seq);
    let feed = state.feed.clone();
    let closed = feed.closed();
    async_stream::stream! {
        // Held while the stream is open.
        let _permit = permit;
        // The position of the last event taken (delivered or filtered out): never go back.
        let mut pos = last_pos;
        // Changes at or below this the client has (resumed after it, or replayed): their live
        // events are skipped.
        let mut had = after.unwrap_or(0).max(replayed);
        let mut progress = Progress {
            last_seq: after.unwrap_or(newest),
            open: None,
        };
        if let Some(Replay { graph, changes, upto }) = replay {
            let mut graph = Arc::unwrap_or_clone(graph);
            let mut events: Vec<GraphEvent> = Vec::new();
            for change in changes {
                if change.seq <= graph.seq() {
                    continue;
                }
                graph.apply(change.op, change.ts_ms, &mut events);
                for event in events.drain(..) {
                    if filter.is_empty() || filter.matches_in(&event.change, &graph) {
                        yield Ok(graph_event(&event));
                    }
                }
            }
            progress.last_seq = upto;
            yield Ok(sse_event(upto, "caught-up", &CaughtUpJson { seq: upto, last_event_id: upto }));
        }
        match backlog {
            Since::Events(evs) => {
                for ev in evs {
                    if let Some(message) = progress.take(&ev, filter.matches(&ev.event.change, &state.graph)) {
                        yield Ok(message);
                    }
                }
            }
            Since::TooFarBehind => {
                yield Ok(resync_event(Resync::TooFarBehind, after, newest));
            }
            Since::Ahead => {
                // The client re-reads: it has none of the later changes.
                had = replayed;
                progress.last_seq = newest;
                yield Ok(resync_event(Resync::Ahead, after, progress.last_seq));
            }
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
                Err(RecvError::Lagged(_)) => match feed.since_pos(pos) {
                    Since::Events(evs) => evs,
                    Since::TooFarBehind | Since::Ahead => {
                        pos = feed.last_pos();
                        progress = Progress { last_seq: feed.last_seq(), open: None };
                        yield Ok(resync_event(Resync::Lagged, None, progress.last_seq));
                        Vec::new()
                    }
                },
            };
            for ev in batch {
                if ev.pos <= pos {
                    continue;
                }
                pos = ev.pos;
                if ev.seq() <= had {
                    cursor.advance(pos);
                    continue;
                }
                if let Some(message) = progress.take(&ev, filter.matches(&ev.event.change, &state.graph)) {
                    yield Ok(message);
                }
                cursor.advance(pos);
            }
            cursor.advance(pos);
        }
    }
}
