//! Native endpoints: one resource with its edges, filtered listing with pagination, neighbours,
//! paths, impact, dangling references and the kind lists. Handlers parse, call the graph crate's
//! queries under a short read lock, and shape outside it.

use crate::json::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use astrolabe_model::{Dependency, EdgeKind, Kind, ObjectKey, Str, Uid};

use crate::error::{ApiError, ApiResult};
use crate::json::{json_response, with_seq};
use crate::params::{Params, encode_continue};
use crate::state::AppState;
use crate::view::{DanglingJson, DanglingListJson, Detail, DetailJson, page_body, subgraph_body};
use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, ListFilter, NeighborQuery};

fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request("invalid path", e.body_text())
}

fn unknown(what: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound(format!("no resource {what}"))
}

/// Answers a single-resource request: `find` locates the UID under the read lock.
fn detail(
    state: &AppState,
    what: String,
    find: impl FnOnce(&Graph) -> Option<Uid>,
) -> ApiResult<Response> {
    let (seq, detail) = {
        let g = state.graph.read();
        let detail = find(&g)
            .and_then(|uid| query::resource(&g, &uid))
            .map(|view| Detail::resolve(&g, view));
        (g.seq(), detail)
    };
    let detail = detail.ok_or_else(|| unknown(what))?;
    Ok(with_seq(seq, Json(DetailJson::new(seq, &detail))))
}

/// `GET /api/v1/resources/{uid}`.
pub async fn by_uid(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let uid = Uid::from(uid);
    detail(&state, format!("with uid {uid}"), |_| Some(uid.clone()))
}

/// `GET /api/v1/namespaces/{namespace}/{kind}/{name}`.
pub async fn by_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((namespace, kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(Kind::parse(&kind), namespace, name);
    detail(&state, key.to_string(), |g| {
        g.get_by_key(&key).map(|r| r.uid.clone())
    })
}

/// `GET /api/v1/cluster/{kind}/{name}` (cluster-scoped resources).
pub async fn by_cluster_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(Kind::parse(&kind), "", name);
    detail(&state, key.to_string(), |g| {
        g.get_by_key(&key).map(|r| r.uid.clone())
    })
}

/// `GET /api/v1/objects?kind=&namespace=&labelSelector=&name=&release=&limit=&continue=`.
pub async fn objects(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let limits = state.limits;
    let filter = ListFilter {
        kind: p.kind("kind"),
        namespace: p.get("namespace").map(Str::from),
        selector: p.selector("labelSelector")?,
        name: p.get("name").map(Str::from),
        release: p.get("release").map(Str::from),
        after: p.continue_token("continue")?,
        limit: p.limit("limit", limits.default_limit, limits.max_limit)?,
    };
    let (seq, page) = {
        let g = state.graph.read();
        (g.seq(), query::list(&g, &filter))
    };
    let next = page.next.as_ref().map(encode_continue);
    let body = page_body(&state.fragments, seq, &page.items, next.as_deref());
    Ok(with_seq(seq, json_response(body)))
}

/// `GET /api/v1/neighbors/{uid}?depth=&direction=&edgeKinds=&limit=`.
pub async fn neighbors(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let limits = state.limits;
    let q = NeighborQuery {
        depth: p.depth("depth", 1, limits.max_depth)?,
        direction: p.direction("direction")?,
        edge_kinds: p.edge_kinds("edgeKinds")?,
        limit: p.limit("limit", limits.max_results, limits.max_results)?,
    };
    let uid = Uid::from(uid);
    let (seq, sub) = {
        let g = state.graph.read();
        (g.seq(), query::neighbors(&g, &uid, &q))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {uid}")))?;
    let body = subgraph_body(&state.fragments, seq, &sub, None);
    Ok(with_seq(seq, json_response(body)))
}

/// `GET /api/v1/path?from=&to=&maxDepth=&direction=`: a shortest path, in order (`found: false`
/// when none), following edges `out` (source to target), `in` or `both` ways (the default).
pub async fn path(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let from = p
        .get("from")
        .map(Uid::from)
        .ok_or_else(|| ApiError::param("from", "required (a resource uid)"))?;
    let to = p
        .get("to")
        .map(Uid::from)
        .ok_or_else(|| ApiError::param("to", "required (a resource uid)"))?;
    let max_depth = p.depth("maxDepth", state.limits.max_depth, state.limits.max_depth)?;
    let direction = p.direction("direction")?;
    let (seq, sub) = {
        let g = state.graph.read();
        (g.seq(), query::path(&g, &from, &to, max_depth, direction))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {from} or {to}")))?;
    let found = !sub.nodes.is_empty();
    let body = subgraph_body(&state.fragments, seq, &sub, Some(found));
    Ok(with_seq(seq, json_response(body)))
}

/// `GET /api/v1/impact/{uid}?limit=`: everything that depends on the resource, transitively.
pub async fn impact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let limit = p.limit("limit", state.limits.max_results, state.limits.max_results)?;
    let uid = Uid::from(uid);
    let (seq, sub) = {
        let g = state.graph.read();
        (g.seq(), query::impact(&g, &uid, limit))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {uid}")))?;
    let body = subgraph_body(&state.fragments, seq, &sub, None);
    Ok(with_seq(seq, json_response(body)))
}

/// `GET /api/v1/dangling?namespace=&edgeKind=`: references whose target does not exist.
pub async fn dangling(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let namespace = p.get("namespace");
    let edge = p.edge_kind("edgeKind")?;
    let (seq, items) = {
        let g = state.graph.read();
        (g.seq(), query::dangling(&g, namespace, edge))
    };
    let body = DanglingListJson {
        seq,
        items: items.iter().map(DanglingJson::from).collect(),
    };
    Ok(with_seq(seq, Json(body)))
}

/// One entry of `/api/v1/kinds`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KindJson {
    kind: &'static str,
    api_version: &'static str,
    namespaced: bool,
}

/// `GET /api/v1/kinds`: the kinds Astrolabe watches.
pub async fn kinds() -> Response {
    let body: Vec<KindJson> = Kind::WATCHED
        .iter()
        .map(|k| KindJson {
            kind: static_kind_name(k),
            api_version: k.api_version(),
            namespaced: k.is_namespaced(),
        })
        .collect();
    Json(body).into_response()
}

fn static_kind_name(k: &'static Kind) -> &'static str {
    k.as_str()
}

fn dependency_name(d: Dependency) -> &'static str {
    match d {
        Dependency::SourceNeedsTarget => "source-needs-target",
        Dependency::TargetNeedsSource => "target-needs-source",
        Dependency::None => "none",
    }
}

/// One entry of `/api/v1/edge-kinds`.
#[derive(Debug, Serialize)]
struct EdgeKindJson {
    name: &'static str,
    dependency: &'static str,
}

/// `GET /api/v1/edge-kinds`: every edge kind and which end depends on the other.
pub async fn edge_kinds() -> Response {
    let body: Vec<EdgeKindJson> = EdgeKind::ALL
        .iter()
        .map(|e| EdgeKindJson {
            name: e.as_str(),
            dependency: dependency_name(e.dependency()),
        })
        .collect();
    Json(body).into_response()
}
