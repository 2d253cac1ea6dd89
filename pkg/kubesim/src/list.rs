//! List requests: selectors, `limit`/`continue` pagination over snapshots, resourceVersion rules.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use astrolabe_model::LabelSelector;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::error::{Result, SimError};
use crate::kinds::KindInfo;
use crate::partial::{META_API_VERSION, Shape};
use crate::selector::{FieldSelector, labels_match};
use crate::store::State;

/// The message of an expired continue token, as etcd3 storage words it.
pub const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// The parsed options of a list request.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// The namespace from the path, if any.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 means no limit).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

impl ListQuery {
    /// Whether an object is in scope (namespace, labels, fields).
    #[must_use]
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        labels_match(&self.labels, obj) && self.fields.matches(obj)
    }

    fn validate(&self) -> Result<()> {
        if self.resource_version_match.is_some() && self.resource_version.is_none() {
            return Err(SimError::Invalid(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
            ));
        }
        if self.resource_version_match.is_some() && self.continue_token.is_some() {
            return Err(SimError::Invalid(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided".into(),
            ));
        }
        match self.resource_version_match.as_deref() {
            None | Some("NotOlderThan") => {}
            Some("Exact") if self.resource_version.as_deref() == Some("0") => {
                return Err(SimError::Invalid(
                    "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".into(),
                ));
            }
            Some("Exact") => {}
            Some(other) => {
                return Err(SimError::Invalid(format!(
                    "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"{other}\""
                )));
            }
        }
        Ok(())
    }
}

/// A snapshot kept for the pages after the first.
struct Snapshot {
    rv: u64,
    items: Arc<Vec<Arc<Value>>>,
    created: Instant,
}

/// The snapshots behind live continue tokens (bounded; oldest evicted first).
pub(crate) struct ContinueStore {
    next_id: u64,
    entries: HashMap<u64, Snapshot>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl ContinueStore {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            next_id: 1,
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn insert(&mut self, rv: u64, items: Arc<Vec<Arc<Value>>>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Snapshot {
                rv,
                items,
                created: Instant::now(),
            },
        );
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
        id
    }

    /// Forgets every snapshot: all outstanding tokens answer 410.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The snapshot's resourceVersion.
    pub rv: u64,
    /// The items of this page, sorted by (namespace, name).
    pub items: Vec<Arc<Value>>,
    /// The token for the next page, if more remain.
    pub continue_token: Option<String>,
    /// How many items remain after this page (only without selectors).
    pub remaining: Option<usize>,
}

fn parse_token(token: &str) -> Result<(u64, u64, usize)> {
    let bad = || SimError::BadRequest(format!("continue key is not valid: {token}"));
    let mut parts = token.split(':');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u64>().ok())
            .ok_or_else(bad)
    };
    let (rv, id, offset) = (next()?, next()?, next()?);
    Ok((rv, id, usize::try_from(offset).map_err(|_| bad())?))
}

/// Serves one page of a list of `info` from `state`.
///
/// # Errors
/// 422 for invalid options, 400 for a malformed token, 410 for an expired token or an old exact RV,
/// 504 for a resourceVersion newer than the server's.
pub(crate) fn list_page(
    state: &mut State,
    info: &KindInfo,
    q: &ListQuery,
    ttl: Duration,
) -> Result<Page> {
    q.validate()?;
    let selectors = !q.labels.is_empty() || !q.fields.is_empty();
    let (rv, items, offset) = if let Some(token) = &q.continue_token {
        let (rv, id, offset) = parse_token(token)?;
        let snap = state.continues.entries.get(&id).filter(|s| s.rv == rv);
        let compacted = state.kind(info)?.compacted_rv;
        match snap {
            Some(s) if s.created.elapsed() <= ttl && s.rv >= compacted => {
                (s.rv, s.items.clone(), offset)
            }
            _ => return Err(SimError::Expired(CONTINUE_EXPIRED.into())),
        }
    } else {
        let current = state.rv;
        if let Some(requested) = q.resource_version.as_deref().filter(|r| *r != "0") {
            let requested: u64 = requested.parse().map_err(|_| {
                SimError::BadRequest(format!("invalid resource version: {requested}"))
            })?;
            if requested > current {
                return Err(SimError::TooLargeResourceVersion(requested, current));
            }
            if q.resource_version_match.as_deref() == Some("Exact") && requested != current {
                return Err(SimError::Expired(format!(
                    "too old resource version: {requested} ({current})"
                )));
            }
        }
        let items: Vec<Arc<Value>> = state
            .kind(info)?
            .objects
            .values()
            .filter(|o| q.matches(o))
            .cloned()
            .collect();
        (current, Arc::new(items), 0)
    };
    let total = items.len();
    let start = offset.min(total);
    let end = if q.limit == 0 {
        total
    } else {
        start.saturating_add(q.limit).min(total)
    };
    let page: Vec<Arc<Value>> = items[start..end].to_vec();
    let (continue_token, remaining) = if end < total {
        let id = match &q.continue_token {
            Some(token) => parse_token(token)?.1,
            None => state.continues.insert(rv, items.clone()),
        };
        (
            Some(format!("{rv}:{id}:{end}")),
            (!selectors).then_some(total - end),
        )
    } else {
        (None, None)
    };
    Ok(Page {
        rv,
        items: page,
        continue_token,
        remaining,
    })
}

/// A list item: the object without `kind`/`apiVersion`, as real list responses do, or only its
/// metadata as a PartialObjectMetadata.
struct Item<'a>(&'a Value, Shape);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.1 == Shape::Metadata {
            return self.1.object(self.0).serialize(s);
        }
        match self.0.as_object() {
            Some(map) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in map {
                    if k != "kind" && k != "apiVersion" {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.end()
            }
            None => self.0.serialize(s),
        }
    }
}

/// The JSON body of a list response.
#[derive(Serialize)]
pub(crate) struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: ListMeta,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<String>,
    #[serde(rename = "remainingItemCount", skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
}

impl<'a> ListBody<'a> {
    /// The list of `info` for `page`; a `PartialObjectMetadataList` when `shape` is metadata.
    pub(crate) fn new(info: &KindInfo, page: &'a Page, shape: Shape) -> Self {
        let (kind, api_version) = match shape {
            Shape::Full => (info.list_kind(), info.api_version()),
            Shape::Metadata => (
                "PartialObjectMetadataList".to_owned(),
                META_API_VERSION.to_owned(),
            ),
        };
        Self {
            kind,
            api_version,
            metadata: ListMeta {
                resource_version: page.rv.to_string(),
                continue_token: page.continue_token.clone(),
                remaining: page.remaining,
            },
            items: page.items.iter().map(|i| Item(i, shape)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::lookup;
    use serde_json::json;

    fn state_with(n: usize) -> State {
        let info = lookup("cm").expect("cm");
        let mut s = State::new(100, 16, 8);
        for i in 0..n {
            let o = json!({"metadata": {"name": format!("c{i:02}"), "namespace": "ns", "labels": {"i": i.to_string()}}});
            s.create(info, o, None).expect("create");
        }
        s
    }

    #[test]
    fn pages_share_a_snapshot() {
        let info = lookup("cm").expect("cm");
        let mut s = state_with(5);
        let ttl = Duration::from_secs(60);
        let mut q = ListQuery {
            limit: 2,
            ..Default::default()
        };
        let p1 = list_page(&mut s, info, &q, ttl).expect("p1");
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.remaining, Some(3));
        s.create(
            info,
            json!({"metadata": {"name": "zz", "namespace": "ns"}}),
            None,
        )
        .expect("create");
        q.continue_token = p1.continue_token.clone();
        let p2 = list_page(&mut s, info, &q, ttl).expect("p2");
        assert_eq!(p2.rv, p1.rv);
        q.continue_token = p2.continue_token.clone();
        let p3 = list_page(&mut s, info, &q, ttl).expect("p3");
        assert_eq!(p3.items.len(), 1, "the write after page 1 is not visible");
        assert!(p3.continue_token.is_none());
        let names: Vec<_> = [p1, p2, p3]
            .iter()
            .flat_map(|p| p.items.iter().map(|i| i["metadata"]["name"].clone()))
            .collect();
        assert_eq!(names, vec!["c00", "c01", "c02", "c03", "c04"]);
    }

    #[test]
    fn expired_and_bad_tokens() {
        let info = lookup("cm").expect("cm");
        let mut s = state_with(3);
        let mut q = ListQuery {
            limit: 1,
            ..Default::default()
        };
        let p1 = list_page(&mut s, info, &q, Duration::from_secs(60)).expect("p1");
        q.continue_token = p1.continue_token;
        assert!(matches!(
            list_page(&mut s, info, &q, Duration::ZERO),
            Err(SimError::Expired(_))
        ));
        s.expire_history();
        assert!(matches!(
            list_page(&mut s, info, &q, Duration::from_secs(60)),
            Err(SimError::Expired(_))
        ));
        q.continue_token = Some("garbage".into());
        assert!(matches!(
            list_page(&mut s, info, &q, Duration::from_secs(60)),
            Err(SimError::BadRequest(_))
        ));
    }

    #[test]
    fn selectors_and_rv_rules() {
        let info = lookup("cm").expect("cm");
        let mut s = state_with(4);
        let ttl = Duration::from_secs(60);
        let q = ListQuery {
            labels: LabelSelector::parse("i in (1,3)").expect("sel"),
            limit: 1,
            ..Default::default()
        };
        let p = list_page(&mut s, info, &q, ttl).expect("page");
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.remaining, None, "no remainingItemCount with selectors");
        let q = ListQuery {
            resource_version: Some("999".into()),
            ..Default::default()
        };
        assert!(matches!(
            list_page(&mut s, info, &q, ttl),
            Err(SimError::TooLargeResourceVersion(..))
        ));
        let q = ListQuery {
            resource_version_match: Some("Exact".into()),
            ..Default::default()
        };
        assert!(matches!(
            list_page(&mut s, info, &q, ttl),
            Err(SimError::Invalid(_))
        ));
        let q = ListQuery {
            resource_version: Some("1".into()),
            resource_version_match: Some("Exact".into()),
            ..Default::default()
        };
        assert!(matches!(
            list_page(&mut s, info, &q, ttl),
            Err(SimError::Expired(_))
        ));
        let all = list_page(&mut s, info, &ListQuery::default(), ttl).expect("all");
        let body = ListBody::new(info, &all, Shape::Full);
        let v = serde_json::to_value(&body).expect("json");
        assert_eq!(v["kind"], "ConfigMapList");
        assert_eq!(v["metadata"]["resourceVersion"], "4");
        assert!(v["items"][0].get("kind").is_none());
    }
}
