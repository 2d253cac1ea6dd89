//! `Cors`: the origins browsers may call the API from, as tower-http's `CorsLayer`.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::json::SEQ_HEADER;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The CORS policy: no CORS headers (the default), any origin (`*`), or a list of origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers: browsers allow same-origin calls only.
    #[default]
    Off,
    /// Any origin (`Access-Control-Allow-Origin: *`).
    AnyOrigin,
    /// These origins (`https://ui.example.com`), each echoed back when it calls.
    Origins(Vec<HeaderValue>),
}

/// An origin that is not a valid header value.
#[derive(Debug, thiserror::Error)]
#[error("invalid CORS origin {origin:?}: expected `*` or an origin like https://host:port")]
pub struct InvalidOrigin {
    /// The origin as given.
    pub origin: String,
}

impl Cors {
    /// The policy for `origins` as given on the command line: empty is [`Cors::Off`], any `*`
    /// is [`Cors::AnyOrigin`], else the list.
    ///
    /// # Errors
    /// An origin that is empty, has a path, or is not a valid header value.
    pub fn from_origins<S: AsRef<str>>(origins: &[S]) -> Result<Self, InvalidOrigin> {
        let origins: Vec<&str> = origins
            .iter()
            .map(|o| o.as_ref().trim())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() {
            return Ok(Cors::Off);
        }
        if origins.contains(&"*") {
            return Ok(Cors::AnyOrigin);
        }
        origins
            .into_iter()
            .map(|origin| {
                let invalid = || InvalidOrigin {
                    origin: origin.to_owned(),
                };
                let rest = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"))
                    .ok_or_else(invalid)?;
                if rest.is_empty() || rest.contains('/') {
                    return Err(invalid());
                }
                HeaderValue::from_str(origin).map_err(|_| invalid())
            })
            .collect::<Result<_, _>>()
            .map(Cors::Origins)
    }

    /// The layer answering preflights and adding CORS headers, or `None` when off.
    pub fn layer(&self) -> Option<CorsLayer> {
        let origin = match self {
            Cors::Off => return None,
            Cors::AnyOrigin => AllowOrigin::any(),
            Cors::Origins(list) => AllowOrigin::list(list.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::HEAD])
                .allow_headers(Any)
                .expose_headers([HeaderName::from_static(SEQ_HEADER)])
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse() {
        assert_eq!(Cors::from_origins::<&str>(&[]).ok(), Some(Cors::Off));
        assert_eq!(
            Cors::from_origins(&["https://a.example", "*"]).ok(),
            Some(Cors::AnyOrigin)
        );
        assert_eq!(
            Cors::from_origins(&["http://127.0.0.1:3000"]).ok(),
            Some(Cors::Origins(vec![HeaderValue::from_static(
                "http://127.0.0.1:3000"
            )]))
        );
        for bad in ["a.example", "https://a.example/path", "https://"] {
            assert!(Cors::from_origins(&[bad]).is_err(), "{bad}");
        }
    }
}
