//! Query-string parsing: the `Params` extractor and typed, validated accessors (each route's
//! query struct in [`crate::queries`] reads through them). Unknown parameters are ignored; an
//! empty value means "not given"; the first of repeated values wins.

use axum::extract::FromRequestParts;
use axum::extract::Query;
use axum::http::request::Parts;

use astrolabe_model::{EdgeKind, Kind, LabelSelector, ObjectKey};

use crate::error::ApiError;
use astrolabe_graph::query::Direction;

/// The decoded query string of a request.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| ApiError::bad_request("invalid query string", e.body_text()))
    }
}

impl Params {
    /// Params from pairs (for tests and internal callers).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// 400 when the value is not a non-negative integer.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    ApiError::param(name, format!("expected a non-negative integer, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A traversal depth: `default` when absent, 400 when malformed or over `max`.
    ///
    /// # Errors
    /// 400 when malformed or over `max`.
    pub fn depth(&self, name: &str, default: u32, max: u32) -> Result<u32, ApiError> {
        let depth = self.u64(name)?.unwrap_or(u64::from(default));
        if depth > u64::from(max) {
            return Err(ApiError::param(
                name,
                format!("{depth} is over the maximum of {max}"),
            ));
        }
        u32::try_from(depth).map_err(|_| ApiError::param(name, "out of range"))
    }

    /// A result limit: `default` when absent, 400 when malformed, zero or over `max`.
    ///
    /// # Errors
    /// 400 when malformed, zero or over `max`.
    pub fn limit(&self, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(limit) = self.u64(name)? else {
            return Ok(default.min(max));
        };
        if limit == 0 {
            return Err(ApiError::param(name, "must be at least 1"));
        }
        match usize::try_from(limit) {
            Ok(limit) if limit <= max => Ok(limit),
            _ => Err(ApiError::param(
                name,
                format!("{limit} is over the maximum of {max}"),
            )),
        }
    }

    /// A traversal direction (`in`, `out` or `both`; `both` when absent).
    ///
    /// # Errors
    /// 400 for any other value.
    pub fn direction(&self, name: &str) -> Result<Direction, ApiError> {
        match self.get(name) {
            None | Some("both") => Ok(Direction::Both),
            Some("in") => Ok(Direction::In),
            Some("out") => Ok(Direction::Out),
            Some(other) => Err(ApiError::param(
                name,
                format!("expected in, out or both, got {other:?}"),
            )),
        }
    }

    /// One edge kind by its stable name.
    ///
    /// # Errors
    /// 400 for an unknown name.
    pub fn edge_kind(&self, name: &str) -> Result<Option<EdgeKind>, ApiError> {
        self.get(name).map(|v| parse_edge_kind(name, v)).transpose()
    }

    /// A comma-separated list of edge kinds.
    ///
    /// # Errors
    /// 400 when any name is unknown.
    pub fn edge_kinds(&self, name: &str) -> Result<Option<Vec<EdgeKind>>, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let mut kinds = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_edge_kind(name, s))
            .collect::<Result<Vec<_>, _>>()?;
        kinds.sort();
        kinds.dedup();
        Ok((!kinds.is_empty()).then_some(kinds))
    }

    /// A kind as kubectl names it (`Kind`, `Kind.group`, plural or short name; see
    /// [`Kind::resolve`]).
    ///
    /// # Errors
    /// 400 naming close matches for an unknown kind, or the choices for an ambiguous one.
    pub fn kind(&self, name: &str) -> Result<Option<Kind>, ApiError> {
        self.get(name).map(|v| resolve_kind(name, v)).transpose()
    }

    /// A Kubernetes label selector.
    ///
    /// # Errors
    /// 400 when the selector does not parse.
    pub fn selector(&self, name: &str) -> Result<Option<LabelSelector>, ApiError> {
        self.get(name)
            .map(|v| LabelSelector::parse(v).map_err(|e| ApiError::param(name, e)))
            .transpose()
    }

    /// A continue token made by [`encode_continue`].
    ///
    /// # Errors
    /// 400 when the token is not one of ours.
    pub fn continue_token(&self, name: &str) -> Result<Option<ObjectKey>, ApiError> {
        self.get(name)
            .map(|v| {
                decode_continue(v).ok_or_else(|| ApiError::param(name, "invalid continue token"))
            })
            .transpose()
    }
}

/// Resolves a kind parameter (or path segment) `name` = `value`.
///
/// # Errors
/// 400 naming close matches for an unknown kind, or the choices for an ambiguous one.
pub fn resolve_kind(name: &str, value: &str) -> Result<Kind, ApiError> {
    Kind::resolve(value).map_err(|e| ApiError::param(name, e))
}

fn parse_edge_kind(name: &str, value: &str) -> Result<EdgeKind, ApiError> {
    EdgeKind::parse(value).ok_or_else(|| {
        ApiError::param(
            name,
            format!("unknown edge kind {value:?} (see /api/v1/edge-kinds)"),
        )
    })
}

const TOKEN_VERSION: &str = "k1";

/// Encodes the last key of a page as an opaque continue token (hex of `kind\nnamespace\nname`).
pub fn encode_continue(key: &ObjectKey) -> String {
    let raw = format!("{}\n{}\n{}", key.kind, key.namespace, key.name);
    let mut out = String::with_capacity(TOKEN_VERSION.len() + raw.len() * 2);
    out.push_str(TOKEN_VERSION);
    for b in raw.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Decodes a token made by [`encode_continue`]; `None` when it is not one.
pub fn decode_continue(token: &str) -> Option<ObjectKey> {
    let hex = token.strip_prefix(TOKEN_VERSION)?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let raw = String::from_utf8(bytes).ok()?;
    let mut parts = raw.splitn(3, '\n');
    let (kind, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
    if kind.is_empty() || name.is_empty() || name.contains('\n') {
        return None;
    }
    Some(ObjectKey::new(Kind::parse(kind), namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn continue_token_round_trips_and_rejects_garbage() {
        let key = ObjectKey::new(Kind::Pod, "shop", "web-1");
        assert_eq!(decode_continue(&encode_continue(&key)), Some(key));
        let cluster = ObjectKey::new(Kind::PersistentVolume, "", "pv-1");
        assert_eq!(decode_continue(&encode_continue(&cluster)), Some(cluster));
        for bad in ["", "k1", "k1zz", "xyz", "k1abc", "k1ééé", "k10a0a"] {
            assert_eq!(decode_continue(bad), None, "{bad}");
        }
    }

    #[test]
    fn first_non_empty_value_wins_and_bad_values_are_rejected() {
        let p = params(&[("depth", "2"), ("depth", "3"), ("ns", "")]);
        assert_eq!(p.depth("depth", 1, 5).ok(), Some(2));
        assert_eq!(p.get("ns"), None);
        assert!(params(&[("depth", "-1")]).depth("depth", 1, 5).is_err());
        assert!(params(&[("depth", "6")]).depth("depth", 1, 5).is_err());
        assert!(params(&[("limit", "0")]).limit("limit", 10, 100).is_err());
        assert!(params(&[("limit", "101")]).limit("limit", 10, 100).is_err());
        assert_eq!(params(&[]).limit("limit", 10, 100).ok(), Some(10));
        assert!(
            params(&[("direction", "up")])
                .direction("direction")
                .is_err()
        );
        assert!(params(&[("e", "owns,nope")]).edge_kinds("e").is_err());
        assert_eq!(
            params(&[("e", "owns, binds,owns")]).edge_kinds("e").ok(),
            Some(Some(vec![EdgeKind::Owns, EdgeKind::Binds]))
        );
        assert!(params(&[("s", "a in (")]).selector("s").is_err());
    }
}
