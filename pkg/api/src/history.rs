//! The graph in the past: the [`HistorySource`] the server provides (a checkpoint of its log plus
//! the changes after it, see `astrolabe-server`'s `history` module), the `at=` parameter every
//! graph-reading endpoint accepts, and the history endpoints (`/api/v1/diff`,
//! `/api/v1/history/...`, `/api/v1/timeline`).

use std::ops::Deref;
use std::sync::Arc;

use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_history::{
    Bucket, Diff, DiffFilter, EdgeDiff, FieldChange, ObjectDiff, Point, TimelineFilter, Touch,
    Touched, Version, VersionOp, cluster_timeline, diff_between, format_time, object_timeline,
};
use astrolabe_model::{Change, ChangeOp, ObjectKey, Str, Uid};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse as _, Response};
use futures::future::BoxFuture;
use parking_lot::RwLockReadGuard;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Json, with_seq};
use crate::params::{Params, resolve_kind};
use crate::state::AppState;
use crate::view::ResourceJson;

/// A point of the log: its sequence and the time of its change, with the watch gaps around it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AsOf {
    /// The last change the answer reflects.
    pub seq: u64,
    /// When that change was applied (RFC 3339).
    #[serde(rename = "time", serialize_with = "astrolabe_history::serialize_time")]
    #[schema(value_type = String)]
    pub time_ms: i64,
    /// Gaps that overlap the point: for those kinds (and namespaces) the answer is unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<GapInfo>,
}

impl AsOf {
    /// The point after change `seq`, applied at `time_ms` (Unix milliseconds).
    pub fn new(seq: u64, time_ms: i64) -> Self {
        AsOf {
            seq,
            time_ms,
            gaps: Vec::new(),
        }
    }
}

/// An interval in which the server did not watch some kinds (it was down, a watch failed, the
/// API server refused a kind): what the graph says of them then is unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GapInfo {
    /// The kind (`Kind.group`); `null` for every kind.
    pub kind: Option<String>,
    /// The namespace; `null` for every namespace.
    pub namespace: Option<String>,
    /// Its start (RFC 3339).
    #[serde(serialize_with = "astrolabe_history::serialize_time")]
    #[schema(value_type = String)]
    pub from: i64,
    /// Its end (RFC 3339); the time of the answer for a gap still open.
    #[serde(serialize_with = "astrolabe_history::serialize_time")]
    #[schema(value_type = String)]
    pub to: i64,
    /// Why.
    pub reason: String,
    /// Still open: the watch is failing now (absent when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ongoing: bool,
}

/// The graph at a past point, as the history source materialised it.
#[derive(Clone)]
pub struct PastGraph {
    /// The graph after the change `as_of` names.
    pub graph: Arc<Graph>,
    /// Where it stands.
    pub as_of: AsOf,
}

/// Where a point lies.
pub enum Located {
    /// At or after the newest change: the live graph answers.
    Live,
    /// Before it, within retention.
    Past(PastGraph),
}

/// Why the history source cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The point is older than what retention keeps (410).
    #[error("{point} is older than the history kept: the oldest point is seq {} at {}", oldest.seq, format_time(oldest.time_ms))]
    Gone {
        /// The point asked for, as given.
        point: String,
        /// The oldest point that can be answered.
        oldest: AsOf,
    },
    /// The point is in the future (400).
    #[error("{point} is in the future: the newest point is seq {} at {}", newest.seq, format_time(newest.time_ms))]
    Future {
        /// The point asked for, as given.
        point: String,
        /// The newest point.
        newest: AsOf,
    },
    /// The log cannot be read now (503).
    #[error("the history cannot be read now: {0}")]
    Unavailable(String),
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Gone { ref oldest, .. } => ApiError::Gone {
                detail: e.to_string(),
                oldest: oldest.clone(),
            },
            HistoryError::Future { .. } => {
                ApiError::bad_request("invalid query parameter", e.to_string())
            }
            HistoryError::Unavailable(detail) => ApiError::Unavailable(detail),
        }
    }
}

/// Which changes a reader of history keeps (the others are dropped as they are read).
pub type Keep<'k> = dyn Fn(&Change) -> bool + Send + Sync + 'k;

/// The server's log, read as history.
pub trait HistorySource: Send + Sync + 'static {
    /// The graph at `point` (`text` is the point as the client gave it, for errors).
    fn locate<'a>(
        &'a self,
        point: Point,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Located, HistoryError>>;

    /// The changes after `from` up to and including `to` for which `keep` holds (every change
    /// without it), oldest first (`text` names `from` as the client gave it, for errors).
    fn changes<'a>(
        &'a self,
        from: Point,
        to: Point,
        text: &'a str,
        keep: Option<&'a Keep<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Change>, HistoryError>>;

    /// Each object changed after sequence `after` up to and including `upto`, with its last
    /// change there, waiting a bounded time for the log to hold `upto`.
    fn touched(&self, after: u64, upto: u64) -> BoxFuture<'_, Result<Vec<Touch>, HistoryError>>;

    /// The recorded gaps that overlap `[from_ms, to_ms]`.
    fn gaps(&self, from_ms: i64, to_ms: i64) -> BoxFuture<'_, Result<Vec<GapInfo>, HistoryError>>;

    /// The oldest point the history can answer.
    fn oldest(&self) -> BoxFuture<'_, Result<AsOf, HistoryError>>;
}

/// The graph an answer reads: the live one (under its read lock) or a past one.
pub enum GraphAt<'a> {
    /// The live graph.
    Live(RwLockReadGuard<'a, Graph>),
    /// A materialised past graph.
    Past(&'a Graph),
}

impl Deref for GraphAt<'_> {
    type Target = Graph;

    fn deref(&self) -> &Graph {
        match self {
            GraphAt::Live(g) => g,
            GraphAt::Past(g) => g,
        }
    }
}

/// The graph a request asked for with `at=` (or the live graph without it).
#[derive(Clone)]
pub enum Snapshot {
    /// The live graph.
    Live(SharedGraph),
    /// A past graph.
    Past(PastGraph),
}

impl Snapshot {
    /// Reads it: the live graph takes its (short) read lock; call within a block and drop the
    /// guard before awaiting.
    pub fn read(&self) -> GraphAt<'_> {
        match self {
            Snapshot::Live(g) => GraphAt::Live(g.read()),
            Snapshot::Past(p) => GraphAt::Past(&p.graph),
        }
    }

    /// The point of a past graph, `None` for the live one.
    pub fn as_of(&self) -> Option<&AsOf> {
        match self {
            Snapshot::Live(_) => None,
            Snapshot::Past(p) => Some(&p.as_of),
        }
    }
}

/// `at=` of `p`, parsed; `None` when absent.
///
/// # Errors
/// 400 when malformed.
pub fn point_param(p: &Params, name: &str) -> Result<Option<(Point, String)>, ApiError> {
    let Some(text) = p.get(name) else {
        return Ok(None);
    };
    let point =
        Point::parse(text, astrolabe_model::now_ms()).map_err(|e| ApiError::param(name, e))?;
    Ok(Some((point, text.to_owned())))
}

/// The graph `at=` asks for: live without it, or when it names the newest point or later.
///
/// # Errors
/// 400 for a malformed or future point, 410 for one older than retention, 503 when the log
/// cannot be read (or the server keeps no history).
pub async fn graph_at(
    graph: &SharedGraph,
    history: Option<&Arc<dyn HistorySource>>,
    p: &Params,
) -> Result<Snapshot, ApiError> {
    let Some((point, text)) = point_param(p, "at")? else {
        return Ok(Snapshot::Live(graph.clone()));
    };
    let Some(history) = history else {
        return Err(no_history());
    };
    match history.locate(point, &text).await? {
        Located::Live => Ok(Snapshot::Live(graph.clone())),
        Located::Past(past) => Ok(Snapshot::Past(past)),
    }
}

/// Header naming the time of the change an answer reflects (RFC 3339), on answers `at=` a past
/// point; `X-Astrolabe-Seq` names its sequence.
pub const AS_OF_HEADER: &str = "x-astrolabe-as-of";

/// Adds the `asOf` of `snapshot` to `response` when it is a past graph: the header
/// [`AS_OF_HEADER`], and an `asOf` member in a JSON object body.
pub async fn stamp(snapshot: &Snapshot, response: Response) -> Response {
    let Some(as_of) = snapshot.as_of() else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    if let Ok(v) = HeaderValue::from_str(&format_time(as_of.time_ms)) {
        parts.headers.insert(AS_OF_HEADER, v);
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::Internal(format!("reading an answer: {e}")).into_response(),
    };
    let body = match bytes.first() {
        Some(b'{') if parts.status.is_success() => {
            let member = serde_json::to_vec(as_of).unwrap_or_default();
            let rest = &bytes[1..];
            let mut out = Vec::with_capacity(bytes.len() + member.len() + 12);
            out.extend_from_slice(b"{\"asOf\":");
            out.extend_from_slice(&member);
            if rest.first() != Some(&b'}') {
                out.push(b',');
            }
            out.extend_from_slice(rest);
            out
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The 503 of a history request to a server that keeps none.
pub(crate) fn no_history() -> ApiError {
    ApiError::Unavailable("this server keeps no history (--history-max-changes=0)".to_owned())
}

/// 400 when `point` lies after the newest change (by sequence) or in the future (by the
/// server's clock, with two seconds of slack for clients' clocks).
fn not_future(state: &AppState, name: &str, point: Point) -> Result<(), ApiError> {
    let live = state.graph.read().seq();
    match point {
        Point::Seq(n) if n > live => Err(ApiError::param(
            name,
            format!("seq:{n} is in the future: the newest change is seq:{live}"),
        )),
        Point::Time(t) if t > astrolabe_model::now_ms() + 2_000 => Err(ApiError::param(
            name,
            format!("{} is in the future", format_time(t)),
        )),
        _ => Ok(()),
    }
}

/// 400 when both points are of one form and `to` lies before `from`.
fn ordered(from: Point, to: Point) -> Result<(), ApiError> {
    let backwards = match (from, to) {
        (Point::Seq(a), Point::Seq(b)) => b < a,
        (Point::Time(a), Point::Time(b)) => b < a,
        (Point::Now, Point::Seq(_) | Point::Time(_)) => true,
        _ => false,
    };
    if backwards {
        return Err(ApiError::param("to", "lies before from"));
    }
    Ok(())
}

/// The graph at `located` as a past graph: the live one is copied.
pub(crate) fn past_or_live(graph: &SharedGraph, located: Located) -> PastGraph {
    match located {
        Located::Past(p) => p,
        Located::Live => {
            let g = graph.read();
            // The time of the newest change; unknown (0) only before any change since start.
            let time = match g.ts_ms() {
                0 => astrolabe_model::now_ms(),
                t => t,
            };
            PastGraph {
                graph: Arc::new(g.clone()),
                as_of: AsOf::new(g.seq(), time),
            }
        }
    }
}

/// An object added or removed, in the answer of `/api/v1/diff`.
#[derive(Serialize)]
struct ObjectJson<'a> {
    /// The object and the last change that touched it.
    #[serde(flatten)]
    object: &'a Touched,
    /// The object at the end where it exists.
    resource: ResourceJson<'a>,
}

impl<'a> From<&'a ObjectDiff> for ObjectJson<'a> {
    fn from(o: &'a ObjectDiff) -> Self {
        ObjectJson {
            object: &o.object,
            resource: ResourceJson::from(&*o.resource),
        }
    }
}

/// An object modified, in the answer of `/api/v1/diff`.
#[derive(Serialize)]
struct ModifiedJson<'a> {
    /// The object and the last change that touched it.
    #[serde(flatten)]
    object: &'a Touched,
    /// Field by field, from the version at `from` to the one at `to`.
    changes: &'a [FieldChange],
}

/// The answer of `/api/v1/diff`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson<'a> {
    from: AsOf,
    to: AsOf,
    /// Gaps within the window: what they name may have changed unseen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gaps: Vec<GapInfo>,
    added: Vec<ObjectJson<'a>>,
    removed: Vec<ObjectJson<'a>>,
    modified: Vec<ModifiedJson<'a>>,
    edges_added: &'a [EdgeDiff],
    edges_removed: &'a [EdgeDiff],
}

impl<'a> DiffJson<'a> {
    fn new(from: AsOf, to: AsOf, gaps: Vec<GapInfo>, d: &'a Diff) -> Self {
        DiffJson {
            from,
            to,
            gaps,
            added: d.added.iter().map(ObjectJson::from).collect(),
            removed: d.removed.iter().map(ObjectJson::from).collect(),
            modified: d
                .modified
                .iter()
                .map(|m| ModifiedJson {
                    object: &m.object,
                    changes: &m.changes,
                })
                .collect(),
            edges_added: &d.edges_added,
            edges_removed: &d.edges_removed,
        }
    }
}

/// `GET /api/v1/diff?from=&to=&namespace=&kind=&root=&depth=`: what was added, removed and
/// modified (field by field), and which edges appeared and disappeared, between two points.
#[utoipa::path(get, path = "/api/v1/diff",
    summary = "Objects and edges added, removed and modified between two points of history.",
    params(
        ("from" = String, Query, description = "The earlier point: seq:N, an RFC 3339 time, a relative time (-15m)."),
        ("to" = Option<String>, Query, description = "The later point (default: now)."),
        ("namespace" = Option<String>, Query, description = "Only objects in this namespace (and edges with an end there)."),
        ("kind" = Option<String>, Query, description = "Only objects of this kind."),
        ("root" = Option<String>, Query, description = "Only the neighbourhood of this UID..."),
        ("depth" = Option<u32>, Query, description = "...to this many hops (default 1).")),
    responses((status = 200, description = "The difference."),
        (status = 400, description = "A malformed or future point, or `to` before `from`.", body = ErrorBody),
        (status = 410, description = "`from` is older than the history kept.", body = ErrorBody)))]
pub async fn diff(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let history = state.history.clone().ok_or_else(no_history)?;
    let (from, from_text) = point_param(&p, "from")?.ok_or_else(|| {
        ApiError::param(
            "from",
            "required: the earlier point (seq:N, an RFC 3339 time or -15m)",
        )
    })?;
    let (to, to_text) = point_param(&p, "to")?.unwrap_or((Point::Now, "now".to_owned()));
    not_future(&state, "from", from)?;
    not_future(&state, "to", to)?;
    ordered(from, to)?;
    let root_and_depth = match p.get("root") {
        Some(root) => Some((
            Uid::from(root),
            p.depth("depth", 1, state.limits.max_depth)?,
        )),
        None => None,
    };
    let filter = DiffFilter {
        namespace: p.get("namespace").map(Str::from),
        kind: p.kind("kind")?,
        root_and_depth,
    };
    let base = exactly(&state, &*history, from, &from_text).await?;
    let target = exactly(&state, &*history, to, &to_text).await?;
    let from_as_of = AsOf::new(base.as_of.seq, base.as_of.time_ms);
    let to_as_of = AsOf::new(target.as_of.seq, target.as_of.time_ms);
    let touched = if to_as_of.seq > from_as_of.seq {
        history.touched(from_as_of.seq, to_as_of.seq).await?
    } else {
        Vec::new()
    };
    let to_ms = match to {
        Point::Time(t) => t,
        Point::Now => astrolabe_model::now_ms(),
        Point::Seq(_) => to_as_of.time_ms,
    };
    let gaps = history.gaps(from_as_of.time_ms, to_ms).await?;
    let diff = tokio::task::spawn_blocking(move || {
        diff_between(&base.graph, &target.graph, &touched, &filter)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("diff failed: {e}")))?;
    Ok(with_seq(
        to_as_of.seq,
        Json(DiffJson::new(from_as_of, to_as_of, gaps, &diff)),
    ))
}

/// The graph at `point`, past or a copy of the live one, standing exactly at it: a point that
/// located the live graph is located again if the live graph moved past it meanwhile.
async fn exactly(
    state: &AppState,
    history: &dyn HistorySource,
    point: Point,
    text: &str,
) -> ApiResult<PastGraph> {
    let graph = past_or_live(&state.graph, history.locate(point, text).await?);
    let moved_past = match point {
        Point::Now => false,
        Point::Seq(n) => graph.as_of.seq > n,
        Point::Time(t) => graph.as_of.time_ms > t,
    };
    if moved_past {
        return Ok(past_or_live(
            &state.graph,
            history.locate(point, text).await?,
        ));
    }
    Ok(graph)
}

/// What an object history names.
enum Which {
    Uid(Uid),
    Key(ObjectKey),
}

/// One version of an object, in the answer of the object history endpoints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionJson<'a> {
    seq: u64,
    #[serde(serialize_with = "astrolabe_history::serialize_time")]
    time: i64,
    op: VersionOp,
    /// Field by field, from the previous version.
    changes: &'a [FieldChange],
    /// The object after the change (absent after a deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceJson<'a>>,
}

/// One object's versions within retention.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectHistoryJson<'a> {
    uid: &'a str,
    /// The object at the oldest point kept, when it existed then.
    #[serde(skip_serializing_if = "Option::is_none")]
    initial: Option<ResourceJson<'a>>,
    versions: Vec<VersionJson<'a>>,
}

/// One object's versions within retention, as found.
struct ObjectHistory {
    uid: Uid,
    initial: Option<Arc<astrolabe_model::Resource>>,
    versions: Vec<Version>,
}

impl ObjectHistory {
    fn json(&self) -> ObjectHistoryJson<'_> {
        ObjectHistoryJson {
            uid: self.uid.as_str(),
            initial: self.initial.as_deref().map(ResourceJson::from),
            versions: self
                .versions
                .iter()
                .map(|v| VersionJson {
                    seq: v.seq,
                    time: v.ts_ms,
                    op: v.op,
                    changes: &v.changes,
                    resource: v.resource.as_deref().map(ResourceJson::from),
                })
                .collect(),
        }
    }
}

/// The answer of the object history endpoints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson<'a> {
    /// The oldest point kept: versions start after it.
    from: AsOf,
    /// Every object that had the UID or key within retention (one, unless the name was reused).
    objects: Vec<ObjectHistoryJson<'a>>,
}

async fn object_history(state: &AppState, which: Which) -> ApiResult<Response> {
    let history = state.history.clone().ok_or_else(no_history)?;
    let oldest = history.oldest().await?;
    let start = Point::Seq(oldest.seq);
    let text = format!("seq:{}", oldest.seq);
    let base = past_or_live(&state.graph, history.locate(start, &text).await?);
    // Only the object's changes are kept while the log is read (a UID keeps its key).
    let initial = match &which {
        Which::Uid(uid) => Some(uid.clone()),
        Which::Key(key) => base.graph.get_by_key(key).map(|r| r.uid.clone()),
    };
    let keep = |c: &Change| {
        initial.as_ref() == Some(c.op.uid())
            || match (&which, &c.op) {
                (Which::Uid(_), _) => false,
                (Which::Key(key), ChangeOp::Upsert(r)) => r.key() == *key,
                (Which::Key(key), ChangeOp::Delete { key: k, .. }) => k == key,
            }
    };
    let changes = history
        .changes(start, Point::Now, &text, Some(&keep))
        .await?;
    let mut uids: Vec<Uid> = Vec::new();
    let mut note = |uid: &Uid| {
        if !uids.contains(uid) {
            uids.push(uid.clone());
        }
    };
    match &which {
        Which::Uid(uid) => note(uid),
        Which::Key(key) => {
            if let Some(r) = base.graph.get_by_key(key) {
                note(&r.uid);
            }
            for c in &changes {
                let matches = match &c.op {
                    ChangeOp::Upsert(r) => r.key() == *key,
                    ChangeOp::Delete { key: k, .. } => k == key,
                };
                if matches {
                    note(c.op.uid());
                }
            }
        }
    }
    let objects: Vec<ObjectHistory> = uids
        .into_iter()
        .filter_map(|uid| {
            let initial = base.graph.get(&uid).cloned();
            let own: Vec<Change> = changes
                .iter()
                .filter(|c| *c.op.uid() == uid)
                .cloned()
                .collect();
            let versions = object_timeline(initial.clone(), &own);
            (initial.is_some() || !versions.is_empty()).then_some(ObjectHistory {
                uid,
                initial,
                versions,
            })
        })
        .collect();
    if objects.is_empty() {
        let what = match which {
            Which::Uid(uid) => format!("with uid {uid}"),
            Which::Key(key) => key.to_string(),
        };
        return Err(ApiError::NotFound(format!(
            "no resource {what} within the history kept"
        )));
    }
    let seq = changes.last().map_or(base.as_of.seq, |c| c.seq);
    Ok(with_seq(
        seq,
        Json(HistoryJson {
            from: oldest,
            objects: objects.iter().map(ObjectHistory::json).collect(),
        }),
    ))
}

fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request("invalid path", e.body_text())
}

/// `GET /api/v1/history/{uid}`: every version of an object within retention.
#[utoipa::path(get, path = "/api/v1/history/{uid}",
    summary = "Every version of an object within the history kept.",
    params(("uid" = String, Path, description = "Resource UID.")),
    responses((status = 200, description = "Its versions, each with what changed."),
        (status = 404, description = "No such object within the history kept.", body = ErrorBody)))]
pub async fn by_uid(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    object_history(&state, Which::Uid(Uid::from(uid))).await
}

/// `GET /api/v1/history/namespaces/{namespace}/{kind}/{name}`: every version of the objects
/// that had this key within retention (deleted ones too).
#[utoipa::path(get, path = "/api/v1/history/namespaces/{namespace}/{kind}/{name}",
    summary = "Every version of the objects with a namespaced key within the history kept.",
    params(("namespace" = String, Path, description = "Namespace."),
        ("kind" = String, Path, description = "Kind."),
        ("name" = String, Path, description = "Name.")),
    responses((status = 200, description = "Their versions, each with what changed."),
        (status = 404, description = "No such object within the history kept.", body = ErrorBody)))]
pub async fn by_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((namespace, kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(resolve_kind("kind", &kind)?, namespace, name);
    object_history(&state, Which::Key(key)).await
}

/// `GET /api/v1/history/cluster/{kind}/{name}`: as the namespaced form, for cluster-scoped
/// objects.
#[utoipa::path(get, path = "/api/v1/history/cluster/{kind}/{name}",
    summary = "Every version of the objects with a cluster-scoped key within the history kept.",
    params(("kind" = String, Path, description = "Kind."),
        ("name" = String, Path, description = "Name.")),
    responses((status = 200, description = "Their versions, each with what changed."),
        (status = 404, description = "No such object within the history kept.", body = ErrorBody)))]
pub async fn by_cluster_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(resolve_kind("kind", &kind)?, "", name);
    object_history(&state, Which::Key(key)).await
}

/// Default bucket count of a timeline when `bucket=` is not given.
const DEFAULT_BUCKETS: i64 = 60;

/// The answer of `/api/v1/timeline`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineAnswer {
    /// The start of the first bucket (RFC 3339): `from`, or the oldest point kept if later.
    #[serde(serialize_with = "astrolabe_history::serialize_time")]
    from: i64,
    /// The end of the last bucket (RFC 3339).
    #[serde(serialize_with = "astrolabe_history::serialize_time")]
    to: i64,
    /// The bucket length in milliseconds.
    bucket_ms: i64,
    buckets: Vec<Bucket>,
}

/// `GET /api/v1/timeline?from=&to=&bucket=&namespace=&kind=`: change counts per time bucket
/// and kind.
#[utoipa::path(get, path = "/api/v1/timeline",
    summary = "Change counts per time bucket and kind.",
    params(
        ("from" = Option<String>, Query, description = "Start: an RFC 3339 or relative time (default -1h); before the oldest point kept, the oldest point."),
        ("to" = Option<String>, Query, description = "End (default now)."),
        ("bucket" = Option<String>, Query, description = "Bucket length (30s, 5m, 1h; default: the range in 60 buckets)."),
        ("namespace" = Option<String>, Query, description = "Only objects in this namespace."),
        ("kind" = Option<String>, Query, description = "Only objects of this kind.")),
    responses((status = 200, description = "The buckets, quiet ones included."),
        (status = 400, description = "A malformed time or bucket.", body = ErrorBody)))]
pub async fn timeline(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let history = state.history.clone().ok_or_else(no_history)?;
    let now = astrolabe_model::now_ms();
    let time = |name: &str, default: i64| -> ApiResult<i64> {
        match point_param(&p, name)? {
            None | Some((Point::Now, _)) => Ok(default),
            Some((Point::Time(t), _)) => Ok(t),
            Some((Point::Seq(_), _)) => Err(ApiError::param(
                name,
                "a timeline spans times: give an RFC 3339 or relative time",
            )),
        }
    };
    let to = time("to", now)?.min(now);
    let asked_from = time("from", now - 3_600_000)?;
    let oldest = history.oldest().await?;
    let from = asked_from.max(oldest.time_ms).min(to);
    let bucket = match p.get("bucket") {
        Some(text) => {
            astrolabe_history::parse_duration_ms(text).map_err(|e| ApiError::param("bucket", e))?
        }
        None => ((to - from) / DEFAULT_BUCKETS).max(1_000),
    };
    let filter = TimelineFilter {
        namespace: p.get("namespace").map(Str::from),
        kind: p.kind("kind")?,
    };
    // Changes at `from` count: start just before it, or at the oldest point.
    let start = if from > oldest.time_ms {
        Point::Time(from - 1)
    } else {
        Point::Seq(oldest.seq)
    };
    let keep = |c: &Change| {
        let (kind, namespace) = match &c.op {
            ChangeOp::Upsert(r) => (&r.kind, &r.namespace),
            ChangeOp::Delete { key, .. } => (&key.kind, &key.namespace),
        };
        filter.kind.as_ref().is_none_or(|k| k == kind)
            && filter.namespace.as_ref().is_none_or(|n| n == namespace)
    };
    let changes = history
        .changes(start, Point::Time(to), "from", Some(&keep))
        .await?;
    let buckets = cluster_timeline(&changes, from, to, bucket, &filter)
        .map_err(|e| ApiError::param("bucket", e))?;
    let seq = changes.last().map_or(oldest.seq, |c| c.seq);
    Ok(with_seq(
        seq,
        Json(TimelineAnswer {
            from,
            to,
            bucket_ms: bucket,
            buckets,
        }),
    ))
}
