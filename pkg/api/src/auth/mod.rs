//! Authentication and authorization of API requests: the bearer token of each request is decided
//! by an [`Authorizer`] (the Kubernetes API's TokenReview and SubjectAccessReview, or a static
//! token file) before the handler runs; the probes stay open.
//!
//! The middleware ([`require`]) sits inside the router's timeout, metrics and CORS layers: a
//! slow review is bounded by the request timeout, every answer (401/403/503 included) is
//! counted by route, and browsers' CORS preflights are answered before it. What it asks of the
//! [`Authorizer`] is an [`Access`]: the verb of the HTTP method and a [`Target`], the API's data
//! or `/metrics`. `/healthz`, `/readyz` and `/health` are never checked; `/metrics` is open
//! when [`Auth::with_open_metrics`] says so.
//!
//! Answers: no or malformed `Authorization: Bearer` header, or a token the authorizer does not
//! accept: 401 with `WWW-Authenticate: Bearer`; an authenticated user without the permission:
//! 403; an authorizer that cannot decide (the Kubernetes API unreachable): 503. The token is
//! never logged.

pub mod token_file;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use prometheus::{IntCounterVec, Opts, Registry};

use crate::error::ApiError;

pub use token_file::{StaticTokens, TokenFileError};

/// Paths answered without a token: the probes (`/health` is the Go server's probe).
pub const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/health"];

/// At most one WARN per this period when reviews cannot be made; the requests in between are
/// counted in the next line (and in `astrolabe_http_auth_total{outcome="unavailable"}`).
pub const UNAVAILABLE_WARN_EVERY: Duration = Duration::from_secs(30);

/// The path of the metrics endpoint, checked as its own [`Target`].
pub const METRICS_PATH: &str = "/metrics";

/// What a request asks to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The API's data (graph queries, the change stream, the OpenAPI document).
    Api,
    /// `/metrics`.
    Metrics,
}

/// What a request asks to do: a verb (from its HTTP method) on a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// `get` for GET and HEAD; `create`, `update`, `patch`, `delete` for POST, PUT, PATCH,
    /// DELETE; otherwise the method in lower case.
    pub verb: Cow<'static, str>,
    /// What is read.
    pub target: Target,
}

impl Access {
    /// The access a request with `method` on `target` asks for (Kubernetes' verbs for HTTP
    /// methods, as kube-rbac-proxy maps them).
    pub fn new(method: &Method, target: Target) -> Self {
        let verb = match *method {
            Method::GET | Method::HEAD => Cow::Borrowed("get"),
            Method::POST => Cow::Borrowed("create"),
            Method::PUT => Cow::Borrowed("update"),
            Method::PATCH => Cow::Borrowed("patch"),
            Method::DELETE => Cow::Borrowed("delete"),
            ref other => Cow::Owned(other.as_str().to_ascii_lowercase()),
        };
        Access { verb, target }
    }
}

/// An authorizer's answer for one token and access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The token is valid and its user has the access.
    Allowed {
        /// The user's name.
        user: String,
    },
    /// The token is not valid (unknown, expired, revoked).
    Unauthenticated,
    /// The token is valid but its user lacks the access.
    Forbidden {
        /// The user's name.
        user: String,
        /// The permission that is missing (`get on graph.astrolabe.io`).
        needs: String,
    },
}

/// An authorizer could not decide (the Kubernetes API unreachable or refusing the review).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct Undecided(pub String);

/// Decides whether a bearer token may have an [`Access`].
pub trait Authorizer: Send + Sync + 'static {
    /// The decision for `token` and `access`.
    ///
    /// # Errors
    /// [`Undecided`] when no decision can be made now; the request is answered with 503.
    fn decide<'a>(
        &'a self,
        token: &'a str,
        access: &'a Access,
    ) -> BoxFuture<'a, Result<Decision, Undecided>>;
}

/// The API's authentication policy: off, or an [`Authorizer`] for every request but the probes
/// (and `/metrics` when opened). Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth {
    authorizer: Option<Arc<dyn Authorizer>>,
    metrics_open: bool,
    outcomes: Option<IntCounterVec>,
    unavailable: Arc<WarnEvery>,
}

/// Rate limit of one log line: when the last line was written and how many were held back.
#[derive(Debug, Default)]
struct WarnEvery(Mutex<(Option<Instant>, u64)>);

impl WarnEvery {
    /// `Some(held back since the last line)` when a line is due at `now`, else `None` (and this
    /// one is held back).
    fn due(&self, now: Instant, every: Duration) -> Option<u64> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held) = &mut *state;
        if last.is_some_and(|at| now.duration_since(at) < every) {
            *held += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("on", &self.authorizer.is_some())
            .field("metrics_open", &self.metrics_open)
            .finish()
    }
}

impl Auth {
    /// No authentication: every request is served.
    pub fn off() -> Self {
        Auth::default()
    }

    /// Every request but the probes needs a token `authorizer` allows; registers
    /// `astrolabe_http_auth_total` (decisions by outcome) in `registry`.
    ///
    /// # Errors
    /// When that counter is already registered in `registry`.
    pub fn new(
        authorizer: Arc<dyn Authorizer>,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "astrolabe_http_auth_total",
                "Authentication decisions on API requests, by outcome (allowed, unauthenticated, forbidden, unavailable).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        Ok(Auth {
            authorizer: Some(authorizer),
            metrics_open: false,
            outcomes: Some(outcomes),
            unavailable: Arc::default(),
        })
    }

    /// Serves `/metrics` without a token when `open`.
    pub fn with_open_metrics(mut self, open: bool) -> Self {
        self.metrics_open = open;
        self
    }

    /// Whether requests are checked at all.
    pub fn is_on(&self) -> bool {
        self.authorizer.is_some()
    }

    /// The target `path` reads, or `None` when it is served without a token.
    fn target(&self, path: &str) -> Option<Target> {
        if OPEN_PATHS.contains(&path) {
            None
        } else if path == METRICS_PATH {
            (!self.metrics_open).then_some(Target::Metrics)
        } else {
            Some(Target::Api)
        }
    }

    fn count(&self, outcome: &str) {
        if let Some(outcomes) = &self.outcomes {
            outcomes.with_label_values(&[outcome]).inc();
        }
    }
}

/// The bearer token of `headers`, or why there is none.
fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("a bearer token is required (Authorization: Bearer <token>)")?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("the Authorization header is not `Bearer <token>`")?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("the Authorization header is not `Bearer <token>`");
    }
    Ok(token)
}

/// Middleware: serves the request when [`Auth`] allows it, else answers 401, 403 or 503.
pub async fn require(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let Some(authorizer) = &auth.authorizer else {
        return next.run(req).await;
    };
    let Some(target) = auth.target(req.uri().path()) else {
        return next.run(req).await;
    };
    let access = Access::new(req.method(), target);
    let token = match bearer(req.headers()) {
        Ok(token) => token.to_owned(),
        Err(why) => {
            auth.count("unauthenticated");
            return ApiError::Unauthenticated(why.to_owned()).into_response();
        }
    };
    match authorizer.decide(&token, &access).await {
        Ok(Decision::Allowed { user }) => {
            auth.count("allowed");
            tracing::trace!(%user, verb = %access.verb, "http: request allowed");
            next.run(req).await
        }
        Ok(Decision::Unauthenticated) => {
            auth.count("unauthenticated");
            ApiError::Unauthenticated("the bearer token was not accepted".to_owned())
                .into_response()
        }
        Ok(Decision::Forbidden { user, needs }) => {
            auth.count("forbidden");
            tracing::debug!(%user, %needs, "http: request forbidden");
            ApiError::Forbidden(format!("user {user:?} may not {needs}")).into_response()
        }
        Err(Undecided(why)) => {
            auth.count("unavailable");
            if let Some(held) = auth.unavailable.due(Instant::now(), UNAVAILABLE_WARN_EVERY) {
                tracing::warn!(
                    error = %why,
                    "http: cannot authenticate requests, answering 503 ({held} more since the last \
                     such line)"
                );
            }
            ApiError::Unavailable(format!("authentication is unavailable: {why}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn unavailable_reviews_are_logged_once_per_period_with_the_count_held_back() {
        let every = Duration::from_secs(30);
        let w = WarnEvery::default();
        let t0 = Instant::now();
        assert_eq!(w.due(t0, every), Some(0));
        assert_eq!(w.due(t0 + Duration::from_secs(1), every), None);
        assert_eq!(w.due(t0 + Duration::from_secs(29), every), None);
        assert_eq!(w.due(t0 + Duration::from_secs(30), every), Some(2));
        assert_eq!(w.due(t0 + Duration::from_secs(31), every), None);
    }

    #[test]
    fn bearer_tokens_parse() {
        assert_eq!(bearer(&headers("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Ok("abc"));
        assert!(bearer(&HeaderMap::new()).is_err());
        assert!(bearer(&headers("Basic abc")).is_err());
        assert!(bearer(&headers("Bearer ")).is_err());
        assert!(bearer(&headers("Bearer")).is_err());
    }

    #[test]
    fn verbs_follow_kubernetes() {
        let verb = |m: Method| Access::new(&m, Target::Api).verb.into_owned();
        assert_eq!(verb(Method::GET), "get");
        assert_eq!(verb(Method::HEAD), "get");
        assert_eq!(verb(Method::POST), "create");
        assert_eq!(verb(Method::DELETE), "delete");
        assert_eq!(verb(Method::OPTIONS), "options");
    }

    #[test]
    fn probes_are_open_and_metrics_opens_on_request() {
        struct Never;
        impl Authorizer for Never {
            fn decide<'a>(
                &'a self,
                _: &'a str,
                _: &'a Access,
            ) -> BoxFuture<'a, Result<Decision, Undecided>> {
                Box::pin(async { Ok(Decision::Unauthenticated) })
            }
        }
        let auth = Auth::new(Arc::new(Never), &Registry::new()).unwrap();
        for open in OPEN_PATHS {
            assert_eq!(auth.target(open), None, "{open}");
        }
        assert_eq!(auth.target("/metrics"), Some(Target::Metrics));
        assert_eq!(auth.target("/api/v1/graph"), Some(Target::Api));
        assert_eq!(auth.target("/openapi.json"), Some(Target::Api));
        let auth = auth.with_open_metrics(true);
        assert_eq!(auth.target("/metrics"), None);
    }

    /// Decides by the token's text: `ok` allowed, `deny` forbidden, `down` undecided.
    struct ByToken;

    impl Authorizer for ByToken {
        fn decide<'a>(
            &'a self,
            token: &'a str,
            access: &'a Access,
        ) -> BoxFuture<'a, Result<Decision, Undecided>> {
            let decision = match token {
                "ok" => Ok(Decision::Allowed { user: "u".into() }),
                "deny" => Ok(Decision::Forbidden {
                    user: "u".into(),
                    needs: format!("{} on {:?}", access.verb, access.target),
                }),
                "down" => Err(Undecided("no answer".into())),
                _ => Ok(Decision::Unauthenticated),
            };
            Box::pin(std::future::ready(decision))
        }
    }

    async fn call(
        app: &axum::Router,
        path: &str,
        token: Option<&str>,
    ) -> (u16, serde_json::Value, HeaderMap) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::get(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, json, headers)
    }

    fn app(metrics_open: bool) -> axum::Router {
        let registry = Registry::new();
        let auth = Auth::new(Arc::new(ByToken), &registry)
            .unwrap()
            .with_open_metrics(metrics_open);
        let state = crate::AppState::new(
            astrolabe_graph::SharedGraph::new(),
            Arc::new(crate::StaticReadiness::new(
                crate::ReadinessReport::default(),
            )),
            registry,
        )
        .unwrap()
        .with_auth(auth);
        crate::router(state)
    }

    #[tokio::test]
    async fn the_router_answers_each_decision_with_its_status_and_a_json_body() {
        let app = app(false);
        let (status, body, headers) = call(&app, "/api/v1/kinds", None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized"))
        );
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"astrolabe\""
        );
        let (status, body, _) = call(&app, "/api/v1/kinds", Some("nope")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized"))
        );
        let (status, body, _) = call(&app, "/api/v1/kinds", Some("deny")).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
        assert!(
            body["detail"].as_str().unwrap().contains("get on Api"),
            "{body}"
        );
        let (status, body, _) = call(&app, "/api/v1/kinds", Some("down")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("service unavailable"))
        );
        assert_eq!(call(&app, "/api/v1/kinds", Some("ok")).await.0, 200);
        // Unknown routes are not revealed to anonymous callers.
        assert_eq!(call(&app, "/no/such/route", None).await.0, 401);
        assert_eq!(call(&app, "/no/such/route", Some("ok")).await.0, 404);
    }

    #[tokio::test]
    async fn probes_need_no_token_and_metrics_does_unless_opened() {
        let closed = app(false);
        assert_eq!(call(&closed, "/healthz", None).await.0, 200);
        assert_eq!(call(&closed, "/health", None).await.0, 200);
        assert_eq!(
            call(&closed, "/readyz", None).await.0,
            503,
            "not ready, but answered"
        );
        assert_eq!(call(&closed, "/metrics", None).await.0, 401);
        assert_eq!(call(&closed, "/metrics", Some("ok")).await.0, 200);
        assert_eq!(call(&app(true), "/metrics", None).await.0, 200);
        assert_eq!(call(&app(true), "/api/v1/kinds", None).await.0, 401);
    }
}
