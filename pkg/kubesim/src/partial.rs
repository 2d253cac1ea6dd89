//! `meta.k8s.io/v1` PartialObjectMetadata responses: only `metadata`, for clients that ask for it
//! (`Accept: ...;as=PartialObjectMetadataList` on lists, `...;as=PartialObjectMetadata` on watches
//! and gets), as kube's `Api<PartialObjectMeta<K>>` does.

use std::borrow::Cow;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

/// The `apiVersion` of PartialObjectMetadata objects and lists.
pub const META_API_VERSION: &str = "meta.k8s.io/v1";

/// How a response renders objects: whole, or their metadata only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The whole object.
    #[default]
    Full,
    /// A `PartialObjectMetadata` carrying only the object's `metadata`.
    Metadata,
}

impl Shape {
    /// The shape the request's `Accept` header asks for (`as=PartialObjectMetadata` or
    /// `as=PartialObjectMetadataList` means metadata only).
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Shape {
        let metadata = headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
        if metadata {
            Shape::Metadata
        } else {
            Shape::Full
        }
    }

    /// `obj` in this shape: borrowed when whole, a new PartialObjectMetadata otherwise.
    #[must_use]
    pub fn object(self, obj: &Value) -> Cow<'_, Value> {
        match self {
            Shape::Full => Cow::Borrowed(obj),
            Shape::Metadata => Cow::Owned(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": META_API_VERSION,
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn accept_header_selects_the_shape() {
        let mut headers = HeaderMap::new();
        assert_eq!(Shape::from_headers(&headers), Shape::Full);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            ),
        );
        assert_eq!(Shape::from_headers(&headers), Shape::Metadata);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            ),
        );
        assert_eq!(Shape::from_headers(&headers), Shape::Full);
        let secret = json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "s", "namespace": "ns"}, "data": {"k": "c2VjcmV0"}});
        let partial = Shape::Metadata.object(&secret);
        assert_eq!(
            *partial,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "s", "namespace": "ns"}})
        );
        assert_eq!(*Shape::Full.object(&secret), secret);
    }
}
