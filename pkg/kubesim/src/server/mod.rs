//! The HTTP front: the axum router, path parsing, and handlers that only parse and shape.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

mod write;

use write::{
    handle_scale, object_body, parse_body, patch_object, server_side_apply, write_options,
};

use crate::controllers::gc::{self, Propagation};
use crate::discovery::{self, Aggregated};
use crate::error::SimError;
use crate::kinds::{self, KindInfo};
use crate::list::{ListBody, ListQuery, list_page};
use crate::openapi;
use crate::partial::Shape;
use crate::patch::PatchType;
use crate::protobuf;
use crate::reviews;
use crate::selector::{FieldSelector, parse_labels};
use crate::sim::Sim;
use crate::store::Write;
use crate::table;
use crate::watch::{self, WatchQuery};

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

fn json_response(code: StatusCode, body: &impl serde::Serialize) -> Response {
    typed_json_response(code, "application/json", body)
}

/// A JSON body with the media type `content_type` (aggregated discovery names its own).
fn typed_json_response(
    code: StatusCode,
    content_type: &'static str,
    body: &impl serde::Serialize,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            code,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The router serving the Kubernetes API of `sim` (usable with `tower::ServiceExt::oneshot`).
pub fn router(sim: Sim) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { axum::Json(discovery::version()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*gv}", get(openapi_gv))
        .route("/openapi/v2", get(openapi_v2))
        .route(reviews::TOKEN_REVIEWS, post(reviews::token_review))
        .route(reviews::ACCESS_REVIEWS, post(reviews::access_review))
        .fallback(resource)
        .with_state(sim)
}

/// Serves the API on `listener` until `shutdown` is cancelled; open watches are closed at shutdown.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    sim: Sim,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let watches = sim.clone();
    if sim.config().controllers {
        sim.start_controllers(shutdown.clone());
    }
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            watches.drop_watches();
        })
        .await
}

/// The custom kinds served at this moment (for discovery documents).
fn custom_kinds(sim: &Sim) -> Vec<&'static KindInfo> {
    sim.inner.state.lock().custom.served().to_vec()
}

/// The aggregated discovery form the request asks for, if any.
fn aggregated(headers: &HeaderMap) -> Option<Aggregated> {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .and_then(Aggregated::from_accept)
}

/// An aggregated discovery document with its media type.
fn aggregated_response(form: Aggregated, core: bool, sim: &Sim) -> Response {
    let doc = form.document(core, &custom_kinds(sim));
    typed_json_response(StatusCode::OK, form.content_type(), &doc)
}

async fn api_groups(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    match aggregated(&headers) {
        Some(form) => aggregated_response(form, false, &sim),
        None => json_response(StatusCode::OK, &discovery::groups(&custom_kinds(&sim))),
    }
}

async fn openapi_index(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &openapi::index(&custom_kinds(&sim)))
}

async fn openapi_gv(
    State(sim): State<Sim>,
    axum::extract::Path(gv): axum::extract::Path<String>,
) -> Response {
    match openapi::group_version(gv.trim_matches('/'), &custom_kinds(&sim)) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => not_found().into_response(),
    }
}

async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default();
    if accept.contains("protobuf") {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            )],
            openapi::v2_protobuf(),
        )
            .into_response()
    } else {
        json_response(StatusCode::OK, &openapi::v2_json())
    }
}

async fn api_versions(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    if let Some(form) = aggregated(&headers) {
        return aggregated_response(form, true, &sim);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_response(StatusCode::OK, &discovery::core_versions(host))
}

/// A parsed resource path.
struct Target {
    info: &'static KindInfo,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Discovery(Value),
    Resource(Target),
}

fn not_found() -> SimError {
    SimError::UnknownKind(String::new())
}

/// Parses a resource or discovery path; built-in kinds resolve from the static table without
/// taking the lock, custom kinds and discovery documents from the store's registry.
fn parse_path(path: &str, sim: &Sim) -> Result<Route, SimError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            return discovery::group(g, &custom_kinds(sim))
                .map(Route::Discovery)
                .ok_or_else(not_found);
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    let find = |plural: &str| {
        kinds::by_path(group, version, plural)
            .or_else(|| {
                sim.inner
                    .state
                    .lock()
                    .custom
                    .by_path(group, version, plural)
            })
            .ok_or_else(not_found)
    };
    let (info, namespace, name, sub) = match rest {
        [] => {
            return discovery::resources(group, version, &custom_kinds(sim))
                .map(Route::Discovery)
                .ok_or_else(not_found);
        }
        [plural] => (find(plural)?, None, None, None),
        [plural, name] => (find(plural)?, None, Some(*name), None),
        [plural, name, sub] if *plural != "namespaces" => {
            (find(plural)?, None, Some(*name), Some(*sub))
        }
        ["namespaces", name, "status"] => (find("namespaces")?, None, Some(*name), Some("status")),
        ["namespaces", ns, plural] => (find(plural)?, Some(*ns), None, None),
        ["namespaces", ns, plural, name] => (find(plural)?, Some(*ns), Some(*name), None),
        ["namespaces", ns, plural, name, sub] => {
            (find(plural)?, Some(*ns), Some(*name), Some(*sub))
        }
        _ => return Err(not_found()),
    };
    match sub {
        None => {}
        Some("status") if info.status_subresource => {}
        Some("scale") if info.scalable() => {}
        Some(_) => return Err(not_found()),
    }
    // Namespaced kinds have no un-namespaced item path; cluster-scoped kinds have no namespaced path.
    if (info.namespaced && namespace.is_none() && name.is_some())
        || (!info.namespaced && namespace.is_some())
    {
        return Err(not_found());
    }
    Ok(Route::Resource(Target {
        info,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    }))
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn scope_query(q: &HashMap<String, String>, t: &Target) -> Result<ListQuery, SimError> {
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| SimError::BadRequest(format!("invalid limit: {l}")))?
            .max(0),
        None => 0,
    };
    Ok(ListQuery {
        namespace: t.namespace.clone(),
        labels: parse_labels(q.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            q.get("fieldSelector").map_or("", String::as_str),
            t.info.kind,
        )?,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
        resource_version: q.get("resourceVersion").filter(|s| !s.is_empty()).cloned(),
        resource_version_match: q
            .get("resourceVersionMatch")
            .filter(|s| !s.is_empty())
            .cloned(),
    })
}

async fn resource(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&sim, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %uri, error = %e, "kubesim request failed");
            e.into_response()
        }
    }
}

async fn handle(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, SimError> {
    let target = match parse_path(uri.path(), sim)? {
        Route::Discovery(doc) => return Ok(json_response(StatusCode::OK, &doc)),
        Route::Resource(t) => t,
    };
    let q: HashMap<String, String> = Query::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let delay = sim.inner.faults.delay();
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
    sim.inner.faults.check(target.info)?;
    let info = target.info;
    let ns = target.namespace.as_deref();
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or_default();
    if !body.is_empty() && ct.contains("protobuf") && !protobuf::supports(info) {
        return Err(SimError::UnsupportedMediaType(ct.to_owned()));
    }
    if target.subresource.as_deref() == Some("scale") {
        return handle_scale(sim, &target, method, ct, body);
    }
    let state = &sim.inner.state;
    let write = write_options(&q, headers, &target);
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) if flag(&q, "watch") => {
            let wq = WatchQuery {
                scope: scope_query(&q, &target)?,
                resource_version: q.get("resourceVersion").cloned(),
                resource_version_match: q
                    .get("resourceVersionMatch")
                    .filter(|s| !s.is_empty())
                    .cloned(),
                send_initial_events: flag(&q, "sendInitialEvents"),
                bookmarks: flag(&q, "allowWatchBookmarks"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Duration::from_secs),
                shape: Shape::from_headers(headers),
            };
            let rx = watch::start(&sim.inner, info, wq)?;
            let stream = ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
            Ok((
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("no-cache, private"),
                    ),
                ],
                Body::from_stream(stream),
            )
                .into_response())
        }
        (Method::GET, None) => {
            let lq = scope_query(&q, &target)?;
            if q.contains_key("sendInitialEvents") {
                return Err(SimError::Invalid(
                    "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list".into(),
                ));
            }
            let page = list_page(&mut state.lock(), info, &lq, sim.inner.config.continue_ttl)?;
            if table::wants_table(headers) {
                return Ok(json_response(
                    StatusCode::OK,
                    &table::list_table(info, &page),
                ));
            }
            let shape = Shape::from_headers(headers);
            Ok(json_response(
                StatusCode::OK,
                &ListBody::new(info, &page, shape),
            ))
        }
        (Method::GET, Some(name)) => {
            let obj = state.lock().get(info, ns.unwrap_or_default(), name)?;
            if table::wants_table(headers) {
                return Ok(json_response(
                    StatusCode::OK,
                    &table::object_table(info, &obj),
                ));
            }
            let shape = Shape::from_headers(headers);
            Ok(json_response(
                StatusCode::OK,
                &*shape.object(&info.as_served(&obj)),
            ))
        }
        (Method::POST, None) => {
            let obj = object_body(info, ct, body, &q)?;
            let obj = state.lock().create_with(info, obj, ns, false, write)?;
            Ok(json_response(StatusCode::CREATED, &*info.as_served(&obj)))
        }
        (Method::PUT, Some(name)) => {
            let obj = object_body(info, ct, body, &q)?;
            let obj = state.lock().replace(info, obj, ns, Some(name), write)?;
            Ok(json_response(StatusCode::OK, &*info.as_served(&obj)))
        }
        (Method::PATCH, Some(name)) => {
            let ty = PatchType::from_content_type(ct)
                .ok_or_else(|| SimError::UnsupportedMediaType(ct.to_owned()))?;
            if ty == PatchType::Apply {
                return server_side_apply(sim, &target, name, body, &q, headers);
            }
            if ty == PatchType::Strategic && info.custom {
                // Custom kinds have no patch strategy: the API server refuses the type.
                return Err(SimError::UnsupportedMediaType(ct.to_owned()));
            }
            let patch = parse_body(body)?;
            let strict = q.get("fieldValidation").is_some_and(|v| v == "Strict");
            let obj =
                state
                    .lock()
                    .try_update_with(info, ns.unwrap_or_default(), name, write, |o| {
                        patch_object(info, name, ty, &patch, strict, o)
                    })?;
            Ok(json_response(StatusCode::OK, &*info.as_served(&obj)))
        }
        (Method::DELETE, Some(name)) => {
            // client-go sends DeleteOptions (with its dryRun) in the body.
            let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let write = Write {
                dry_run: write.dry_run
                    || options
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|d| d.iter().any(|x| x == "All")),
                ..write
            };
            let obj = if sim.controllers_running() {
                let policy = q
                    .get("propagationPolicy")
                    .map(String::as_str)
                    .or_else(|| options.get("propagationPolicy").and_then(Value::as_str))
                    .and_then(Propagation::parse)
                    .or_else(|| {
                        // The older `orphanDependents` option.
                        (options.get("orphanDependents") == Some(&Value::Bool(true))
                            || q.get("orphanDependents").is_some_and(|o| o == "true"))
                        .then_some(Propagation::Orphan)
                    })
                    .unwrap_or_default();
                gc::delete(
                    &mut state.lock(),
                    info,
                    ns.unwrap_or_default(),
                    name,
                    policy,
                    write,
                )?
            } else {
                state
                    .lock()
                    .delete_with(info, ns.unwrap_or_default(), name, write)?
            };
            Ok(json_response(StatusCode::OK, &*info.as_served(&obj)))
        }
        _ => Err(SimError::MethodNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let sim = Sim::new(crate::SimConfig::default());
        let r = |p: &str| match parse_path(p, &sim) {
            Ok(Route::Resource(t)) => Some((t.info.kind, t.namespace, t.name)),
            _ => None,
        };
        assert_eq!(r("/api/v1/pods"), Some(("Pod", None, None)));
        assert_eq!(
            r("/api/v1/namespaces/a/pods/x"),
            Some(("Pod", Some("a".into()), Some("x".into())))
        );
        assert_eq!(
            r("/api/v1/namespaces/a"),
            Some(("Namespace", None, Some("a".into())))
        );
        assert_eq!(
            r("/apis/apps/v1/namespaces/a/deployments"),
            Some(("Deployment", Some("a".into()), None))
        );
        assert_eq!(r("/api/v1/pods/x"), None);
        assert_eq!(r("/api/v1/namespaces/a/nodes"), None);
        assert_eq!(r("/apis/apps/v1/foos"), None);
        assert!(matches!(
            parse_path("/apis/apps/v1", &sim),
            Ok(Route::Discovery(_))
        ));
        assert!(matches!(
            parse_path("/apis/apps", &sim),
            Ok(Route::Discovery(_))
        ));
    }
}
