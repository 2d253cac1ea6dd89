//! Who may call the API: [`api_auth`] turns [`AuthConfig`] into the API's [`Auth`], and
//! [`KubeAuthorizer`] decides bearer tokens through the Kubernetes API as kube-rbac-proxy does.
//!
//! `KubeAuthorizer`, for a token and an [`Access`]:
//! 1. `authentication.k8s.io/v1` TokenReview: is the token valid, and for which user (name, uid,
//!    groups, extra)? Not valid: [`Decision::Unauthenticated`].
//! 2. `authorization.k8s.io/v1` SubjectAccessReview for that user: for the API's data, the
//!    verb on the virtual resource (`get` on `graph.astrolabe.io` by default, which exists in
//!    no API group: it is only a name RBAC rules grant); for `/metrics`, the verb on the
//!    non-resource URL `/metrics`, which RBAC grants with `nonResourceURLs`. Not allowed:
//!    [`Decision::Forbidden`].
//!
//! Decisions are cached by an HMAC of the token (a key drawn at start; the token itself is not
//! kept) and the access: allowed ones for `allowed_ttl`, refused ones for `denied_ttl`, at most
//! `cache_entries` of them. Concurrent requests with the same token and access share one
//! review. A review that fails (the API server unreachable, the ServiceAccount not allowed to
//! create reviews) is [`Undecided`], never cached, and answered with 503.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_api::Auth;
use astrolabe_api::auth::{
    Access, Authorizer, Decision, StaticTokens, Target, TokenFileError, Undecided,
};
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use moka::Expiry;
use moka::future::Cache;
use prometheus::Registry;
use ring::hmac;

use crate::config::{AuthConfig, AuthMode};

/// Why the API's authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `--auth=token-file` without `--auth-token-file`.
    #[error("--auth=token-file needs --auth-token-file")]
    NoTokenFile,
    /// The token file cannot be used.
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    /// The HMAC key for the decision cache could not be drawn.
    #[error("drawing a random key for the decision cache failed")]
    Random,
    /// The authentication metrics could not be registered.
    #[error("registering the authentication metrics failed")]
    Metrics(#[source] prometheus::Error),
}

/// The API's [`Auth`] for `config`; `client` reaches the Kubernetes API for
/// [`AuthMode::Kubernetes`].
///
/// # Errors
/// A token file that is missing or malformed, or metrics already registered.
pub fn api_auth(
    config: &AuthConfig,
    client: &kube::Client,
    registry: &Registry,
) -> Result<Auth, AuthError> {
    let authorizer: Arc<dyn Authorizer> = match config.mode {
        AuthMode::None => {
            tracing::info!("authentication: none, every request is served");
            return Ok(Auth::off());
        }
        AuthMode::TokenFile => {
            let path: &PathBuf = config.token_file.as_ref().ok_or(AuthError::NoTokenFile)?;
            let tokens = StaticTokens::read(path)?;
            tracing::info!(file = %path.display(), tokens = tokens.len(), "authentication: token file");
            Arc::new(tokens)
        }
        AuthMode::Kubernetes => {
            let authorizer = KubeAuthorizer::new(client.clone(), config)?;
            tracing::info!(needs = %authorizer.needs_for_api("get"), "authentication: kubernetes (TokenReview, SubjectAccessReview)");
            Arc::new(authorizer)
        }
    };
    let auth = Auth::new(authorizer, registry).map_err(AuthError::Metrics)?;
    Ok(auth.with_open_metrics(config.metrics_open))
}

/// A cached decision's key: an HMAC of the token and the access asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    token: [u8; 32],
    access: Access,
}

/// Allowed decisions live `allowed`, refused ones `denied`.
struct ByOutcome {
    allowed: Duration,
    denied: Duration,
}

impl Expiry<CacheKey, Decision> for ByOutcome {
    fn expire_after_create(
        &self,
        _: &CacheKey,
        decision: &Decision,
        _: Instant,
    ) -> Option<Duration> {
        Some(match decision {
            Decision::Allowed { .. } => self.allowed,
            Decision::Unauthenticated | Decision::Forbidden { .. } => self.denied,
        })
    }
}

/// Decides bearer tokens with TokenReview and SubjectAccessReview (see the module doc).
pub struct KubeAuthorizer {
    client: kube::Client,
    group: String,
    resource: String,
    key: hmac::Key,
    cache: Cache<CacheKey, Decision>,
}

impl KubeAuthorizer {
    /// An authorizer asking the API server `client` reaches, with the virtual resource and
    /// cache bounds of `config`.
    ///
    /// # Errors
    /// [`AuthError::Random`] when no random key can be drawn.
    pub fn new(client: kube::Client, config: &AuthConfig) -> Result<Self, AuthError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| AuthError::Random)?;
        let cache = Cache::builder()
            .max_capacity(config.cache_entries)
            .expire_after(ByOutcome {
                allowed: config.allowed_ttl,
                denied: config.denied_ttl,
            })
            .build();
        Ok(KubeAuthorizer {
            client,
            group: config.resource_group.clone(),
            resource: config.resource.clone(),
            key,
            cache,
        })
    }

    /// `verb on resource.group`, the permission the API's data needs.
    fn needs_for_api(&self, verb: &str) -> String {
        if self.group.is_empty() {
            format!("{verb} on {}", self.resource)
        } else {
            format!("{verb} on {}.{}", self.resource, self.group)
        }
    }

    /// Both reviews, uncached.
    async fn review(&self, token: &str, access: &Access) -> Result<Decision, Undecided> {
        let post = PostParams::default();
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let review = Api::<TokenReview>::all(self.client.clone())
            .create(&post, &review)
            .await
            .map_err(|e| Undecided(format!("the TokenReview failed: {e}")))?;
        let status = review.status.unwrap_or_default();
        let user = match status.user {
            Some(user) if status.authenticated == Some(true) => user,
            _ => return Ok(Decision::Unauthenticated),
        };
        let name = user.username.unwrap_or_default();
        let verb = access.verb.to_string();
        let (resource_attributes, non_resource_attributes, needs) = match access.target {
            Target::Api => (
                Some(ResourceAttributes {
                    group: Some(self.group.clone()),
                    resource: Some(self.resource.clone()),
                    verb: Some(verb.clone()),
                    ..ResourceAttributes::default()
                }),
                None,
                self.needs_for_api(&verb),
            ),
            Target::Metrics => (
                None,
                Some(NonResourceAttributes {
                    path: Some(astrolabe_api::auth::METRICS_PATH.to_owned()),
                    verb: Some(verb.clone()),
                }),
                format!("{verb} on {}", astrolabe_api::auth::METRICS_PATH),
            ),
        };
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(name.clone()),
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                resource_attributes,
                non_resource_attributes,
            },
            ..SubjectAccessReview::default()
        };
        let review = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&post, &review)
            .await
            .map_err(|e| Undecided(format!("the SubjectAccessReview failed: {e}")))?;
        Ok(match review.status {
            Some(status) if status.allowed => Decision::Allowed { user: name },
            _ => Decision::Forbidden { user: name, needs },
        })
    }
}

impl Authorizer for KubeAuthorizer {
    fn decide<'a>(
        &'a self,
        token: &'a str,
        access: &'a Access,
    ) -> BoxFuture<'a, Result<Decision, Undecided>> {
        Box::pin(async move {
            let mut digest = [0_u8; 32];
            digest.copy_from_slice(hmac::sign(&self.key, token.as_bytes()).as_ref());
            let key = CacheKey {
                token: digest,
                access: access.clone(),
            };
            self.cache
                .try_get_with(key, self.review(token, access))
                .await
                .map_err(|e| Undecided::clone(&e))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use astrolabe_kubesim::{SimAuth, SimConfig};
    use astrolabe_testkit::Emulator;

    use super::*;

    /// A GET of `target`.
    fn get(target: Target) -> Access {
        Access {
            verb: "get".into(),
            target,
        }
    }

    async fn emulator() -> Emulator {
        let auth = SimAuth::default()
            .token("reader-token", "reader", &["readers"])
            .token("stranger-token", "stranger", &[])
            .grant("group:readers", "get", "graph.astrolabe.io")
            .grant("reader", "get", "/metrics");
        Emulator::start(SimConfig {
            auth,
            ..SimConfig::default()
        })
        .await
    }

    fn authorizer(emu: &Emulator, config: AuthConfig) -> KubeAuthorizer {
        KubeAuthorizer::new(emu.client(), &config).unwrap()
    }

    #[tokio::test]
    async fn reviews_decide_through_the_kube_client() {
        let emu = emulator().await;
        let auth = authorizer(&emu, AuthConfig::default());
        let reader = Decision::Allowed {
            user: "reader".into(),
        };
        assert_eq!(
            auth.decide("reader-token", &get(Target::Api))
                .await
                .unwrap(),
            reader
        );
        assert_eq!(
            auth.decide("reader-token", &get(Target::Metrics))
                .await
                .unwrap(),
            reader
        );
        assert_eq!(
            auth.decide("stranger-token", &get(Target::Api))
                .await
                .unwrap(),
            Decision::Forbidden {
                user: "stranger".into(),
                needs: "get on graph.astrolabe.io".into()
            }
        );
        assert_eq!(
            auth.decide("forged", &get(Target::Api)).await.unwrap(),
            Decision::Unauthenticated
        );
        // Another virtual resource: the reader's grant does not cover it.
        let other = authorizer(
            &emu,
            AuthConfig {
                resource: "secrets".into(),
                ..AuthConfig::default()
            },
        );
        assert!(matches!(
            other
                .decide("reader-token", &get(Target::Api))
                .await
                .unwrap(),
            Decision::Forbidden { .. }
        ));
    }

    #[tokio::test]
    async fn decisions_are_reused_and_an_unreachable_api_server_decides_nothing() {
        let mut emu = emulator().await;
        let cached = authorizer(&emu, AuthConfig::default());
        let uncached = authorizer(
            &emu,
            AuthConfig {
                allowed_ttl: Duration::ZERO,
                denied_ttl: Duration::ZERO,
                ..AuthConfig::default()
            },
        );
        let reader_and_forged = async |auth: &KubeAuthorizer| {
            let reader = auth.decide("reader-token", &get(Target::Api)).await;
            assert!(matches!(reader, Ok(Decision::Allowed { .. })), "{reader:?}");
            let forged = auth.decide("forged", &get(Target::Api)).await;
            assert_eq!(forged.unwrap(), Decision::Unauthenticated);
        };
        reader_and_forged(&cached).await;
        reader_and_forged(&uncached).await;
        emu.stop_server().await;
        // Cached: both decisions stand while the API server is down.
        reader_and_forged(&cached).await;
        // Not cached (a new token, or no cache): undecided, not allowed.
        for (auth, token) in [(&cached, "stranger-token"), (&uncached, "reader-token")] {
            let e = auth.decide(token, &get(Target::Api)).await.unwrap_err();
            assert!(e.0.contains("TokenReview"), "{e}");
            assert!(!e.0.contains(token), "{e}");
        }
    }
}
