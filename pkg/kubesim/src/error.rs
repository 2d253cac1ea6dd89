//! The emulator's error type and its rendering as a Kubernetes `Status` object.

use serde_json::{Value, json};

/// A failed emulator operation; each variant maps to one Kubernetes `Status` reason and HTTP code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// The kind (resource type) is not served.
    #[error("the server could not find the requested resource")]
    UnknownKind(String),
    /// No object with this name exists (plural, name).
    #[error("{0} \"{1}\" not found")]
    NotFound(String, String),
    /// An object with this name already exists (plural, name).
    #[error("{0} \"{1}\" already exists")]
    AlreadyExists(String, String),
    /// The update was based on a stale resourceVersion (plural, name).
    #[error(
        "Operation cannot be fulfilled on {0} \"{1}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict(String, String),
    /// The object or the request options are invalid (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    /// The request is malformed (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// A continue token or resourceVersion is too old (HTTP 410); carries the message.
    #[error("{0}")]
    Expired(String),
    /// The requested resourceVersion is newer than the server's (HTTP 504).
    #[error("Too large resource version: {0}, current: {1}")]
    TooLargeResourceVersion(u64, u64),
    /// The request body's media type is not accepted here (HTTP 415); carries the type.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf (for the kinds kubectl's generators create), application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml; got {0}"
    )]
    UnsupportedMediaType(String),
    /// The HTTP method is not supported on this path (HTTP 405).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// A server-side apply changes fields other managers own: `(manager as named in the message,
    /// field path)` per field.
    #[error("Apply failed with {} conflict{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, conflict_list(.0))]
    ApplyConflicts(Vec<(String, String)>),
    /// [`crate::Sim::settle`] gave up: the controllers still had work (or were not running).
    #[error("the controllers did not settle: {0}")]
    Unsettled(String),
    /// A failure injected with [`crate::Sim::fail_kind`] (HTTP code, plural).
    #[error("injected failure {0} for {1}")]
    Injected(u16, String),
}

fn conflict_list(conflicts: &[(String, String)]) -> String {
    conflicts
        .iter()
        .map(|(m, f)| format!("conflict with {m}: {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `Result` with [`SimError`].
pub type Result<T, E = SimError> = std::result::Result<T, E>;

impl SimError {
    /// The HTTP status code Kubernetes answers with.
    #[must_use]
    pub fn code(&self) -> u16 {
        match self {
            Self::UnknownKind(_) | Self::NotFound(..) => 404,
            Self::AlreadyExists(..) | Self::Conflict(..) | Self::ApplyConflicts(_) => 409,
            Self::Invalid(_) => 422,
            Self::BadRequest(_) => 400,
            Self::Expired(_) => 410,
            Self::TooLargeResourceVersion(..) | Self::Unsettled(_) => 504,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::Injected(code, _) => *code,
        }
    }

    /// The `Status.reason` Kubernetes uses for this error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownKind(_) | Self::NotFound(..) => "NotFound",
            Self::AlreadyExists(..) => "AlreadyExists",
            Self::Conflict(..) | Self::ApplyConflicts(_) => "Conflict",
            Self::Invalid(_) => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Expired(_) => "Expired",
            Self::TooLargeResourceVersion(..) | Self::Unsettled(_) => "Timeout",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Injected(code, _) => match code {
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                410 => "Expired",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                _ => "InternalError",
            },
        }
    }

    /// Renders the error as a Kubernetes `Status` object.
    #[must_use]
    pub fn to_status(&self) -> Value {
        let mut details = json!({});
        match self {
            Self::NotFound(plural, name)
            | Self::AlreadyExists(plural, name)
            | Self::Conflict(plural, name) => {
                details = json!({"name": name, "kind": plural});
            }
            Self::Injected(_, plural) => details = json!({"kind": plural}),
            Self::ApplyConflicts(conflicts) => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": f}))
                    .collect();
                details = json!({"causes": causes});
            }
            _ => {}
        }
        let message = match self {
            Self::Injected(403, plural) => format!("{plural} is forbidden: injected fault"),
            Self::Injected(code, plural) => format!("injected failure {code} for {plural}"),
            other => other.to_string(),
        };
        let mut status = status_object(self.code(), self.reason(), &message);
        status["details"] = details;
        if let Self::Expired(_) = self {
            status["metadata"] = json!({"continue": "inconsistent"});
        }
        status
    }
}

/// A bare `Status` object with `status: Failure`.
#[must_use]
pub fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}
