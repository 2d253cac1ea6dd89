//! TokenReview (`authentication.k8s.io/v1`) and SubjectAccessReview (`authorization.k8s.io/v1`),
//! answered from the emulator's [`SimAuth`]: which tokens are valid, for which user, and what
//! each user may do.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::SimError;
use crate::sim::Sim;

/// The path of TokenReview creation.
pub const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// The path of SubjectAccessReview creation.
pub const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// Who the emulator's reviews know: tokens and the users they authenticate as, and the
/// permissions of users. Empty (the default): every token is rejected, every access denied.
#[derive(Debug, Clone, Default)]
pub struct SimAuth {
    /// Bearer tokens and the user each one authenticates as; other tokens are rejected.
    pub tokens: BTreeMap<String, SimUser>,
    /// What users may do; anything not granted is denied.
    pub grants: Vec<SimGrant>,
}

/// A user a token authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// The user name (`system:serviceaccount:ns:name` for a ServiceAccount).
    pub name: String,
    /// The groups the user is in.
    pub groups: Vec<String>,
}

/// One permission: `user` may `verb` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimGrant {
    /// The user name, or `group:<name>` for every member of a group.
    pub user: String,
    /// The verb (`get`), or `*` for any.
    pub verb: String,
    /// `resource.group` as kubectl writes it (`graph.astrolabe.io`, `pods` for the core
    /// group), or a non-resource path starting with `/` (`/metrics`).
    pub resource: String,
}

impl SimGrant {
    /// `user` may `verb` on `resource`.
    pub fn new(user: &str, verb: &str, resource: &str) -> Self {
        SimGrant {
            user: user.to_owned(),
            verb: verb.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

impl SimAuth {
    /// Adds `token`, authenticating as `user` in `groups`.
    #[must_use]
    pub fn token(mut self, token: &str, user: &str, groups: &[&str]) -> Self {
        let user = SimUser {
            name: user.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        self.tokens.insert(token.to_owned(), user);
        self
    }

    /// Adds a [`SimGrant`].
    #[must_use]
    pub fn grant(mut self, user: &str, verb: &str, resource: &str) -> Self {
        self.grants.push(SimGrant::new(user, verb, resource));
        self
    }

    /// Whether `user` in `groups` may `verb` on `resource`.
    fn allows(&self, user: &str, groups: &[&str], verb: &str, resource: &str) -> bool {
        self.grants.iter().any(|g| {
            let subject = match g.user.strip_prefix("group:") {
                Some(group) => groups.contains(&group),
                None => g.user == user,
            };
            subject && (g.verb == "*" || g.verb == verb) && g.resource == resource
        })
    }
}

fn parse(body: &Bytes) -> Result<Value, SimError> {
    serde_json::from_slice(body)
        .map_err(|e| SimError::BadRequest(format!("the review is not JSON: {e}")))
}

fn created(mut review: Value, status: Value) -> Response {
    review["status"] = status;
    if review.get("metadata").is_none_or(Value::is_null) {
        review["metadata"] = json!({});
    }
    (StatusCode::CREATED, axum::Json(review)).into_response()
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: `status.authenticated` and the user for
/// a known `spec.token`, else `authenticated: false` with an error.
pub async fn token_review(State(sim): State<Sim>, body: Bytes) -> Response {
    let review = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let status = match sim.inner.config.auth.tokens.get(token) {
        Some(user) => json!({
            "authenticated": true,
            "user": {"username": user.name, "uid": format!("uid-{}", user.name), "groups": user.groups},
        }),
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    created(review, status)
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`: `status.allowed` when a grant
/// matches the user (or one of its groups), the verb and the resource or path.
pub async fn access_review(State(sim): State<Sim>, body: Bytes) -> Response {
    let review = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or_default();
    let groups: Vec<&str> = spec["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let (verb, resource) = if let Some(attrs) = spec["resourceAttributes"].as_object() {
        let field = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default();
        let resource = match field("group") {
            "" => field("resource").to_owned(),
            group => format!("{}.{group}", field("resource")),
        };
        (field("verb"), resource)
    } else {
        let attrs = &spec["nonResourceAttributes"];
        (
            attrs["verb"].as_str().unwrap_or_default(),
            attrs["path"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let allowed = sim.inner.config.auth.allows(user, &groups, verb, &resource);
    let reason = if allowed {
        format!("granted {verb} on {resource}")
    } else {
        format!("no grant of {verb} on {resource} to {user:?}")
    };
    created(review, json!({"allowed": allowed, "reason": reason}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_user_or_group_verb_and_resource() {
        let auth = SimAuth::default()
            .grant("alice", "get", "graph.astrolabe.io")
            .grant("group:ops", "*", "/metrics");
        assert!(auth.allows("alice", &[], "get", "graph.astrolabe.io"));
        assert!(!auth.allows("alice", &[], "delete", "graph.astrolabe.io"));
        assert!(!auth.allows("bob", &[], "get", "graph.astrolabe.io"));
        assert!(!auth.allows("alice", &[], "get", "/metrics"));
        assert!(auth.allows("bob", &["ops"], "get", "/metrics"));
    }
}
