//! Native endpoints: one resource with its edges, filtered listing with pagination, neighbours,
//! paths, impact, dangling references and the kind lists. Handlers parse, call the graph crate's
//! queries under a short read lock, and shape outside it.

use crate::json::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use astrolabe_model::{EdgeKind, Kind, ObjectKey, Uid};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::history::stamp;
use crate::json::{json_response, with_seq};
use crate::params::{Params, encode_continue, resolve_kind};
use crate::queries::{
    DanglingQuery, ImpactQuery, NeighborsQuery, ObjectsQuery, PathQuery, SearchQuery,
};
use crate::state::AppState;
use crate::view::{
    DanglingJson, DanglingListJson, Detail, DetailJson, PageSchema, SubgraphSchema, page_body,
    subgraph_body,
};
use astrolabe_graph::Graph;
use astrolabe_graph::query;

fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request("invalid path", e.body_text())
}

fn unknown(what: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound(format!("no resource {what}"))
}

/// Answers a single-resource request: `find` locates the UID under the read lock.
async fn detail(
    state: &AppState,
    p: &Params,
    what: String,
    find: impl FnOnce(&Graph) -> Option<Uid>,
) -> ApiResult<Response> {
    let snap = state.at(p).await?;
    let (seq, detail) = {
        let g = snap.read();
        let detail = find(&g)
            .and_then(|uid| query::resource(&g, &uid))
            .map(|view| Detail::resolve(&g, view));
        (g.seq(), detail)
    };
    let detail = detail.ok_or_else(|| unknown(what))?;
    Ok(stamp(&snap, with_seq(seq, Json(DetailJson::new(seq, &detail)))).await)
}

/// `GET /api/v1/resources/{uid}`.
#[utoipa::path(get, path = "/api/v1/resources/{uid}", summary = "One resource with its edges.",
    params(("uid" = String, Path, description = "Resource UID.")),
    responses((status = 200, description = "The resource.", body = DetailJson),
        (status = 404, description = "Unknown UID.", body = ErrorBody)))]
pub async fn by_uid(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let uid = Uid::from(uid);
    detail(&state, &p, format!("with uid {uid}"), |_| Some(uid.clone())).await
}

/// `GET /api/v1/namespaces/{namespace}/{kind}/{name}`.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/{kind}/{name}",
    summary = "One namespaced resource by key.",
    params(("namespace" = String, Path, description = "Namespace."),
        ("kind" = String, Path, description = "Kind, case-insensitive."),
        ("name" = String, Path, description = "Name.")),
    responses((status = 200, description = "The resource.", body = DetailJson),
        (status = 404, description = "Unknown resource.", body = ErrorBody)))]
pub async fn by_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path((namespace, kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(resolve_kind("kind", &kind)?, namespace, name);
    detail(&state, &p, key.to_string(), |g| {
        g.get_by_key(&key).map(|r| r.uid.clone())
    })
    .await
}

/// `GET /api/v1/cluster/{kind}/{name}` (cluster-scoped resources).
#[utoipa::path(get, path = "/api/v1/cluster/{kind}/{name}",
    summary = "One cluster-scoped resource by key.",
    params(("kind" = String, Path, description = "Kind, case-insensitive."),
        ("name" = String, Path, description = "Name.")),
    responses((status = 200, description = "The resource.", body = DetailJson),
        (status = 404, description = "Unknown resource.", body = ErrorBody)))]
pub async fn by_cluster_key(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path((kind, name)) = path.map_err(path_error)?;
    let key = ObjectKey::new(resolve_kind("kind", &kind)?, "", name);
    detail(&state, &p, key.to_string(), |g| {
        g.get_by_key(&key).map(|r| r.uid.clone())
    })
    .await
}

/// `GET /api/v1/objects?kind=&namespace=&labelSelector=&name=&release=&limit=&continue=`.
#[utoipa::path(get, path = "/api/v1/objects",
    summary = "Filtered listing, ordered by (kind, namespace, name), paginated.",
    params(ObjectsQuery),
    responses((status = 200, description = "One page.", body = PageSchema)))]
pub async fn objects(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let filter = ObjectsQuery::parse(&p, &state.limits)?.filter();
    let snap = state.at(&p).await?;
    let (seq, page) = {
        let g = snap.read();
        (g.seq(), query::list(&g, &filter))
    };
    let next = page.next.as_ref().map(encode_continue);
    let body = page_body(&state.fragments, seq, &page.items, next.as_deref());
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}

/// `GET /api/v1/search?q=&limit=`.
#[utoipa::path(get, path = "/api/v1/search",
    summary = "Resources matching every search term, best name matches first.",
    params(SearchQuery),
    responses((status = 200, description = "The matches (`continue` is always null).",
        body = PageSchema)))]
pub async fn search(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = SearchQuery::parse(&p, &state.limits)?;
    let snap = state.at(&p).await?;
    let (seq, items) = {
        let g = snap.read();
        let items =
            q.q.as_deref()
                .map(|text| astrolabe_graph::search::search(&g, text, q.limit))
                .unwrap_or_default();
        (g.seq(), items)
    };
    let body = page_body(&state.fragments, seq, &items, None);
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}

/// `GET /api/v1/neighbors/{uid}?depth=&direction=&edgeKinds=&limit=`.
#[utoipa::path(get, path = "/api/v1/neighbors/{uid}", summary = "Resources within `depth` edges.",
    params(("uid" = String, Path, description = "Start UID."), NeighborsQuery),
    responses((status = 200, description = "The subgraph.", body = SubgraphSchema),
        (status = 404, description = "Unknown UID.", body = ErrorBody)))]
pub async fn neighbors(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let q = NeighborsQuery::parse(&p, &state.limits)?.query();
    let uid = Uid::from(uid);
    let snap = state.at(&p).await?;
    let (seq, sub) = {
        let g = snap.read();
        (g.seq(), query::neighbors(&g, &uid, &q))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {uid}")))?;
    let body = subgraph_body(&state.fragments, seq, &sub, None);
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}

/// `GET /api/v1/path?from=&to=&maxDepth=&direction=`: a shortest path, in order (`found: false`
/// when none), following edges `out` (source to target), `in` or `both` ways (the default).
#[utoipa::path(get, path = "/api/v1/path", summary = "A shortest path between two resources.",
    params(PathQuery),
    responses((status = 200, description = "The path, in order; `found` says whether one exists.",
            body = SubgraphSchema),
        (status = 404, description = "Unknown UID.", body = ErrorBody)))]
pub async fn path(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let PathQuery {
        from,
        to,
        max_depth,
        direction,
    } = PathQuery::parse(&p, &state.limits)?;
    let snap = state.at(&p).await?;
    let (seq, sub) = {
        let g = snap.read();
        (g.seq(), query::path(&g, &from, &to, max_depth, direction))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {from} or {to}")))?;
    let found = !sub.nodes.is_empty();
    let body = subgraph_body(&state.fragments, seq, &sub, Some(found));
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}

/// `GET /api/v1/impact/{uid}?limit=`: everything that depends on the resource, transitively.
#[utoipa::path(get, path = "/api/v1/impact/{uid}",
    summary = "Everything that depends on a resource, transitively.",
    params(("uid" = String, Path, description = "Resource UID."), ImpactQuery),
    responses((status = 200, description = "The dependents.", body = SubgraphSchema),
        (status = 404, description = "Unknown UID.", body = ErrorBody)))]
pub async fn impact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> ApiResult<Response> {
    let Path(uid) = path.map_err(path_error)?;
    let ImpactQuery { limit } = ImpactQuery::parse(&p, &state.limits)?;
    let uid = Uid::from(uid);
    let snap = state.at(&p).await?;
    let (seq, sub) = {
        let g = snap.read();
        (g.seq(), query::impact(&g, &uid, limit))
    };
    let sub = sub.ok_or_else(|| unknown(format!("with uid {uid}")))?;
    let body = subgraph_body(&state.fragments, seq, &sub, None);
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}

/// `GET /api/v1/dangling?namespace=&edgeKind=`: references whose target does not exist.
#[utoipa::path(get, path = "/api/v1/dangling", summary = "References whose target does not exist.",
    params(DanglingQuery),
    responses((status = 200, description = "The dangling references.", body = DanglingListJson)))]
pub async fn dangling(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = DanglingQuery::parse(&p)?;
    let snap = state.at(&p).await?;
    let (seq, items) = {
        let g = snap.read();
        (
            g.seq(),
            query::dangling(&g, q.namespace.as_deref(), q.edge_kind),
        )
    };
    let body = DanglingListJson {
        seq,
        items: items.iter().map(DanglingJson::from).collect(),
    };
    Ok(stamp(&snap, with_seq(seq, Json(body))).await)
}

/// One entry of `/api/v1/kinds`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = KindInfo)]
pub struct KindJson {
    /// The kind, as Kubernetes spells it.
    kind: String,
    /// Its API group (empty for the core group).
    group: String,
    /// The apiVersion it is read at (empty when not known: a kind only referenced).
    api_version: String,
    /// Whether its objects live in a namespace.
    namespaced: bool,
    /// Whether it is one of the built-in kinds (with its own processor), else a discovered or
    /// referenced kind.
    builtin: bool,
}

/// `GET /api/v1/kinds`: the built-in kinds, then every other kind the server has met
/// (discovered, watched, referenced or read back).
#[utoipa::path(get, path = "/api/v1/kinds", summary = "Known kinds.",
    responses((status = 200, description = "Every known kind.", body = Vec<KindJson>)))]
pub async fn kinds() -> Response {
    let body: Vec<KindJson> = Kind::known()
        .iter()
        .map(|k| KindJson {
            kind: k.as_str().to_owned(),
            group: k.group().to_owned(),
            api_version: k.api_version().to_owned(),
            namespaced: k.is_namespaced(),
            builtin: k.is_watched(),
        })
        .collect();
    Json(body).into_response()
}

/// Which end of an edge depends on the other.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum DependencyName {
    /// The source needs the target.
    SourceNeedsTarget,
    /// The target needs the source.
    TargetNeedsSource,
    /// Neither.
    None,
}

/// One entry of `/api/v1/edge-kinds`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EdgeKindInfo)]
pub struct EdgeKindJson {
    /// The edge kind's stable name.
    name: &'static str,
    /// Which end depends on the other.
    #[schema(value_type = DependencyName)]
    dependency: &'static str,
    /// What the edge means.
    description: &'static str,
    /// Whether a relationship rule declares it (else it is built in).
    declared: bool,
}

/// `GET /api/v1/edge-kinds`: every edge kind and which end depends on the other.
#[utoipa::path(get, path = "/api/v1/edge-kinds", summary = "Edge kinds.",
    responses((status = 200, description = "Every edge kind.", body = Vec<EdgeKindJson>)))]
pub async fn edge_kinds() -> Response {
    let body: Vec<EdgeKindJson> = EdgeKind::all()
        .into_iter()
        .map(|e| EdgeKindJson {
            name: e.as_str(),
            dependency: e.dependency().as_str(),
            description: e.description(),
            declared: !e.is_builtin(),
        })
        .collect();
    Json(body).into_response()
}
