//! `ApiError`: every error the API returns, rendered as `{"error": "...", "detail": "..."}`.

use crate::json::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750).
const BEARER_CHALLENGE: &str = "Bearer realm=\"astrolabe\"";

/// An API error. Client errors carry a message for the client; internal errors are logged once
/// and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed or out-of-range request value (400).
    #[error("{error}: {detail}")]
    BadRequest {
        /// A short description (`invalid query parameter`).
        error: String,
        /// What exactly was wrong.
        detail: String,
    },
    /// No bearer token, or one that is not accepted (401).
    #[error("unauthorized: {0}")]
    Unauthenticated(String),
    /// An authenticated user without the permission the request needs (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An unknown resource or route (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// A known route with a method it does not serve (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request's URI is longer than the server reads (414).
    #[error("uri too long: {0}")]
    UriTooLong(String),
    /// The request's headers are larger than the server reads (431).
    #[error("headers too large: {0}")]
    HeadersTooLarge(String),
    /// A point of history older than what is kept (410).
    #[error("gone: {detail}")]
    Gone {
        /// What was asked and what is kept.
        detail: String,
        /// The oldest point that can be answered.
        oldest: crate::history::AsOf,
    },
    /// The server cannot answer right now (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Something went wrong inside the server (500); the detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A short description.
    pub error: String,
    /// Details for the client.
    pub detail: String,
    /// With a 410 for a point older than the history kept: the oldest point it can answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<crate::history::AsOf>,
}

impl ApiError {
    /// A 400 for query parameter `name` with an explanation.
    pub fn param(name: &str, detail: impl std::fmt::Display) -> Self {
        ApiError::BadRequest {
            error: "invalid query parameter".to_owned(),
            detail: format!("{name}: {detail}"),
        }
    }

    /// A 400 with an explicit short description and detail.
    pub fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            error: error.into(),
            detail: detail.into(),
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(self) -> ErrorBody {
        let oldest = match &self {
            ApiError::Gone { oldest, .. } => Some(oldest.clone()),
            _ => None,
        };
        let (error, detail) = match self {
            ApiError::BadRequest { error, detail } => (error, detail),
            ApiError::Unauthenticated(detail) => ("unauthorized".to_owned(), detail),
            ApiError::Forbidden(detail) => ("forbidden".to_owned(), detail),
            ApiError::NotFound(detail) => ("not found".to_owned(), detail),
            ApiError::MethodNotAllowed => (
                "method not allowed".to_owned(),
                "this endpoint only serves GET".to_owned(),
            ),
            ApiError::UriTooLong(detail) => ("uri too long".to_owned(), detail),
            ApiError::HeadersTooLarge(detail) => ("headers too large".to_owned(), detail),
            ApiError::Gone { detail, .. } => ("gone".to_owned(), detail),
            ApiError::Unavailable(detail) => ("service unavailable".to_owned(), detail),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error answering a request");
                (
                    "internal error".to_owned(),
                    "the server failed to answer; see its logs".to_owned(),
                )
            }
        };
        ErrorBody {
            error,
            detail,
            oldest,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::UNAUTHORIZED {
            return (
                status,
                [(header::WWW_AUTHENTICATE, BEARER_CHALLENGE)],
                Json(self.body()),
            )
                .into_response();
        }
        (status, Json(self.body())).into_response()
    }
}

/// The fallback for unknown routes: a JSON 404.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// The fallback for known routes called with the wrong method: a JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A `Result` whose error is an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            ApiError::param("depth", "x").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::NotFound("x".into()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::Internal("boom".into()).body().detail,
            "the server failed to answer; see its logs"
        );
    }
}
