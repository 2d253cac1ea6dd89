//! One struct per route's query string: what the handler reads (parsed and validated through
//! [`Params`]) and, through `IntoParams`, the parameters the OpenAPI document lists.

use utoipa::{IntoParams, ToSchema};

use astrolabe_model::{EdgeKind, Kind, LabelSelector, ObjectKey, Str, Uid};

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::Limits;
use astrolabe_graph::query::{Direction, ListFilter, NeighborQuery};

/// A traversal direction as the query string names it (the schema of `direction`).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DirectionName {
    /// Follow edges into the resource.
    In,
    /// Follow edges out of the resource.
    Out,
    /// Follow both.
    Both,
}

/// The query of `/api/v1/resources` and `/api/v1/graph`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// Only this Helm release (its objects and what they own, select and bind).
    pub release: Option<String>,
    /// Only this namespace (plus the cluster-scoped objects its resources use).
    pub namespace: Option<String>,
}

impl ScopeQuery {
    /// Reads the query.
    pub fn parse(p: &Params) -> Self {
        ScopeQuery {
            release: p.get("release").map(str::to_owned),
            namespace: p.get("namespace").map(str::to_owned),
        }
    }
}

/// The query of `/api/v1/releases` and `/api/v1/charts`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespaceQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
}

impl NamespaceQuery {
    /// Reads the query.
    pub fn parse(p: &Params) -> Self {
        NamespaceQuery {
            namespace: p.get("namespace").map(str::to_owned),
        }
    }
}

/// The query of `/api/v1/objects`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ObjectsQuery {
    /// Only this kind (case-insensitive).
    #[param(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// Only this namespace.
    #[param(value_type = Option<String>)]
    pub namespace: Option<Str>,
    /// Kubernetes label selector syntax.
    #[param(value_type = Option<String>)]
    pub label_selector: Option<LabelSelector>,
    /// Exact name.
    #[param(value_type = Option<String>)]
    pub name: Option<Str>,
    /// Only this Helm release.
    #[param(value_type = Option<String>)]
    pub release: Option<Str>,
    /// Page size (at least 1, at most the server's maximum; default the server's default).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: usize,
    /// The token from the previous page.
    #[param(value_type = Option<String>)]
    pub r#continue: Option<ObjectKey>,
}

impl ObjectsQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for a malformed selector, limit or continue token.
    pub fn parse(p: &Params, limits: &Limits) -> ApiResult<Self> {
        Ok(ObjectsQuery {
            kind: p.kind("kind")?,
            namespace: p.get("namespace").map(Str::from),
            label_selector: p.selector("labelSelector")?,
            name: p.get("name").map(Str::from),
            release: p.get("release").map(Str::from),
            limit: p.limit("limit", limits.default_limit, limits.max_limit)?,
            r#continue: p.continue_token("continue")?,
        })
    }

    /// The graph query.
    pub fn filter(self) -> ListFilter {
        ListFilter {
            kind: self.kind,
            namespace: self.namespace,
            selector: self.label_selector,
            name: self.name,
            release: self.release,
            after: self.r#continue,
            limit: self.limit,
        }
    }
}

/// Results `/api/v1/search` returns when `limit` is absent.
pub const SEARCH_DEFAULT_LIMIT: usize = 20;

/// The query of `/api/v1/search`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Whitespace-separated terms, all of which must match: `kind:X`, `ns:X`, `release:X`,
    /// `key=value` (a label), or text found in the name, namespace, Helm release or a label,
    /// or starting the kind.
    pub q: Option<String>,
    /// Most results (default 20, at most the listing's maximum page size).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: usize,
}

impl SearchQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for a malformed limit.
    pub fn parse(p: &Params, limits: &Limits) -> ApiResult<Self> {
        Ok(SearchQuery {
            q: p.get("q").map(str::to_owned),
            limit: p.limit("limit", SEARCH_DEFAULT_LIMIT, limits.max_limit)?,
        })
    }
}

/// The query of `/api/v1/neighbors/{uid}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct NeighborsQuery {
    /// Edges to follow (default 1, at most the server's maximum depth).
    #[param(value_type = Option<u32>)]
    pub depth: u32,
    /// Which edges to follow (default `both`).
    #[param(value_type = Option<DirectionName>)]
    pub direction: Direction,
    /// Comma-separated edge kinds to follow (default all).
    #[param(value_type = Option<String>)]
    pub edge_kinds: Option<Vec<EdgeKind>>,
    /// Most resources returned (default and maximum: the server's maximum results).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: usize,
}

impl NeighborsQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for a malformed depth, direction, edge kind or limit.
    pub fn parse(p: &Params, limits: &Limits) -> ApiResult<Self> {
        Ok(NeighborsQuery {
            depth: p.depth("depth", 1, limits.max_depth)?,
            direction: p.direction("direction")?,
            edge_kinds: p.edge_kinds("edgeKinds")?,
            limit: p.limit("limit", limits.max_results, limits.max_results)?,
        })
    }

    /// The graph query.
    pub fn query(self) -> NeighborQuery {
        NeighborQuery {
            depth: self.depth,
            direction: self.direction,
            edge_kinds: self.edge_kinds,
            limit: self.limit,
        }
    }
}

/// The query of `/api/v1/path`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PathQuery {
    /// Start UID.
    #[param(value_type = String)]
    pub from: Uid,
    /// End UID.
    #[param(value_type = String)]
    pub to: Uid,
    /// Longest path searched (default and maximum: the server's maximum depth).
    #[param(value_type = Option<u32>)]
    pub max_depth: u32,
    /// Which way edges are followed: `out` (source to target), `in`, or `both` (the default).
    #[param(value_type = Option<DirectionName>)]
    pub direction: Direction,
}

impl PathQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 when `from` or `to` is missing or `maxDepth` or `direction` is malformed.
    pub fn parse(p: &Params, limits: &Limits) -> ApiResult<Self> {
        let uid = |name: &str| {
            p.get(name)
                .map(Uid::from)
                .ok_or_else(|| ApiError::param(name, "required (a resource uid)"))
        };
        Ok(PathQuery {
            from: uid("from")?,
            to: uid("to")?,
            max_depth: p.depth("maxDepth", limits.max_depth, limits.max_depth)?,
            direction: p.direction("direction")?,
        })
    }
}

/// The query of `/api/v1/impact/{uid}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpactQuery {
    /// Most resources returned (default and maximum: the server's maximum results).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: usize,
}

impl ImpactQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for a malformed limit.
    pub fn parse(p: &Params, limits: &Limits) -> ApiResult<Self> {
        Ok(ImpactQuery {
            limit: p.limit("limit", limits.max_results, limits.max_results)?,
        })
    }
}

/// The query of `/api/v1/dangling`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct DanglingQuery {
    /// Only references from this namespace.
    pub namespace: Option<String>,
    /// Only this edge kind.
    #[param(value_type = Option<String>)]
    pub edge_kind: Option<EdgeKind>,
}

impl DanglingQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for an unknown edge kind.
    pub fn parse(p: &Params) -> ApiResult<Self> {
        Ok(DanglingQuery {
            namespace: p.get("namespace").map(str::to_owned),
            edge_kind: p.edge_kind("edgeKind")?,
        })
    }
}

/// The query of `/api/v1/watch` (the `Last-Event-ID` header wins over `lastEventId`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct WatchQuery {
    /// Only events of this namespace's resources.
    #[param(value_type = Option<String>)]
    pub namespace: Option<Str>,
    /// Only events of this kind's resources.
    #[param(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// Resume after this event id.
    pub last_event_id: Option<u64>,
    /// Start from this past point (`seq:N`, an RFC 3339 or relative time): the changes since
    /// then are sent first (without ids), then `caught-up`, then live events.
    #[param(value_type = Option<String>)]
    pub since: Option<String>,
}

impl WatchQuery {
    /// Reads and validates the query.
    ///
    /// # Errors
    /// 400 for a malformed `lastEventId`.
    pub fn parse(p: &Params) -> ApiResult<Self> {
        Ok(WatchQuery {
            namespace: p.get("namespace").map(Str::from),
            kind: p.kind("kind")?,
            last_event_id: p.u64("lastEventId")?,
            since: p.get("since").map(str::to_owned),
        })
    }
}
