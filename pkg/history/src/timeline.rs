//! Timelines: the versions of one object ([`object_timeline`]), and change counts of the whole
//! cluster per time bucket and kind ([`cluster_timeline`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use astrolabe_model::{Change, ChangeOp, Kind, Resource, Str};
use serde::Serialize;

use crate::fields::{FieldChange, field_changes};
use crate::point::serialize_time;

/// The most buckets one cluster timeline answers with.
pub const MAX_BUCKETS: i64 = 10_000;

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VersionOp {
    /// It appeared (or appeared again after a deletion).
    Created,
    /// It changed.
    Updated,
    /// It disappeared.
    Deleted,
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// The change's sequence number.
    pub seq: u64,
    /// When it was applied (RFC 3339 in the answer).
    #[serde(rename = "time", serialize_with = "serialize_time")]
    pub ts_ms: i64,
    /// What it did.
    pub op: VersionOp,
    /// What differs from the previous version (empty for a creation and a deletion).
    pub changes: Vec<FieldChange>,
    /// The object after the change (absent after a deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Arc<Resource>>,
}

/// The versions of one object from its changes, oldest first. `previous` is the object as it
/// was before the first of them (from a checkpoint), `None` when it did not exist. An upsert
/// identical to the version before it, or a deletion of an absent object, is no version.
pub fn object_timeline(previous: Option<Arc<Resource>>, changes: &[Change]) -> Vec<Version> {
    let mut current = previous;
    let mut versions = Vec::new();
    for change in changes {
        let (op, field_changes, next) = match (&change.op, &current) {
            (ChangeOp::Upsert(new), None) => (VersionOp::Created, Vec::new(), Some(new.clone())),
            (ChangeOp::Upsert(new), Some(old)) if old == new => continue,
            (ChangeOp::Upsert(new), Some(old)) => (
                VersionOp::Updated,
                field_changes(old, new),
                Some(new.clone()),
            ),
            (ChangeOp::Delete { .. }, None) => continue,
            (ChangeOp::Delete { .. }, Some(_)) => (VersionOp::Deleted, Vec::new(), None),
        };
        versions.push(Version {
            seq: change.seq,
            ts_ms: change.ts_ms,
            op,
            changes: field_changes,
            resource: next.clone(),
        });
        current = next;
    }
    versions
}

/// Which changes a cluster timeline counts. Every filter given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    /// Only objects in this namespace (`""` for cluster-scoped objects).
    pub namespace: Option<Str>,
    /// Only objects of this kind.
    pub kind: Option<Kind>,
}

/// Changes counted in one time bucket, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The bucket's first millisecond (RFC 3339 in the answer).
    #[serde(serialize_with = "serialize_time")]
    pub start: i64,
    /// The millisecond after its last (RFC 3339 in the answer).
    #[serde(serialize_with = "serialize_time")]
    pub end: i64,
    /// Changes per kind name; empty for a quiet bucket.
    pub counts: BTreeMap<String, u64>,
}

/// Why a cluster timeline could not be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimelineError {
    /// The bucket is not a positive duration.
    #[error("bucket must be a positive duration, got {0} ms")]
    Bucket(i64),
    /// `to` lies before `from`.
    #[error("to ({to} ms) lies before from ({from} ms)")]
    Range {
        /// The start given.
        from: i64,
        /// The end given.
        to: i64,
    },
    /// The range needs more than [`MAX_BUCKETS`] buckets.
    #[error(
        "{0} buckets requested, at most {MAX_BUCKETS}: choose a larger bucket or a shorter range"
    )]
    TooManyBuckets(i64),
}

/// Counts the changes applied in `[from_ms, to_ms)` that pass `filter`, per `bucket_ms` bucket
/// (the first starting at `from_ms`, the last ending at `to_ms`, shorter if the range is not a
/// whole number of buckets) and per kind. Every bucket is listed, quiet ones with no counts, so
/// the answer can be drawn as it is. `changes` need not be sorted.
///
/// # Errors
/// A non-positive bucket, `to_ms` before `from_ms`, or more than [`MAX_BUCKETS`] buckets.
pub fn cluster_timeline(
    changes: &[Change],
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
    filter: &TimelineFilter,
) -> Result<Vec<Bucket>, TimelineError> {
    if bucket_ms <= 0 {
        return Err(TimelineError::Bucket(bucket_ms));
    }
    if to_ms < from_ms {
        return Err(TimelineError::Range {
            from: from_ms,
            to: to_ms,
        });
    }
    let span = i128::from(to_ms) - i128::from(from_ms);
    let n = (span + i128::from(bucket_ms) - 1) / i128::from(bucket_ms);
    if n > i128::from(MAX_BUCKETS) {
        return Err(TimelineError::TooManyBuckets(
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    // `n` is at most MAX_BUCKETS and every bucket lies within [from_ms, to_ms].
    let n = n as i64;
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start: from_ms.saturating_add(i.saturating_mul(bucket_ms)),
            end: from_ms
                .saturating_add((i + 1).saturating_mul(bucket_ms))
                .min(to_ms),
            counts: BTreeMap::new(),
        })
        .collect();
    for change in changes {
        if change.ts_ms < from_ms || change.ts_ms >= to_ms {
            continue;
        }
        let (kind, namespace) = match &change.op {
            ChangeOp::Upsert(r) => (&r.kind, &r.namespace),
            ChangeOp::Delete { key, .. } => (&key.kind, &key.namespace),
        };
        if filter.namespace.as_ref().is_some_and(|ns| ns != namespace)
            || filter.kind.as_ref().is_some_and(|k| k != kind)
        {
            continue;
        }
        let i = ((change.ts_ms - from_ms) / bucket_ms) as usize;
        if let Some(bucket) = buckets.get_mut(i) {
            *bucket.counts.entry(kind.as_str().to_owned()).or_default() += 1;
        }
    }
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A bucket's bounds and counts.
    type Shape<'a> = (i64, i64, Vec<(&'a str, u64)>);

    fn pod(ns: &str, name: &str, rv: &str) -> Arc<Resource> {
        let mut r = Resource::new(format!("{ns}-{name}"), Kind::Pod, ns, name);
        r.resource_version = rv.into();
        Arc::new(r)
    }

    fn upsert(seq: u64, ts_ms: i64, r: &Arc<Resource>) -> Change {
        Change {
            seq,
            ts_ms,
            op: ChangeOp::Upsert(r.clone()),
        }
    }

    fn delete(seq: u64, ts_ms: i64, r: &Resource) -> Change {
        Change {
            seq,
            ts_ms,
            op: ChangeOp::Delete {
                uid: r.uid.clone(),
                key: r.key(),
            },
        }
    }

    #[test]
    fn versions_of_an_object() {
        let v1 = pod("shop", "web", "1");
        let v2 = pod("shop", "web", "2");
        let changes = [
            upsert(3, 100, &v1),
            upsert(5, 200, &v2),
            upsert(6, 250, &v2),
            delete(8, 300, &v2),
            delete(9, 310, &v2),
            upsert(12, 400, &v1),
        ];
        let versions = object_timeline(None, &changes);
        let ops: Vec<(u64, VersionOp)> = versions.iter().map(|v| (v.seq, v.op)).collect();
        assert_eq!(
            ops,
            [
                (3, VersionOp::Created),
                (5, VersionOp::Updated),
                (8, VersionOp::Deleted),
                (12, VersionOp::Created),
            ]
        );
        assert!(versions[0].changes.is_empty());
        assert_eq!(versions[1].changes.len(), 1);
        assert_eq!(versions[1].changes[0].field, "resourceVersion");
        assert_eq!(versions[1].ts_ms, 200);
        assert_eq!(versions[2].resource, None);
        assert_eq!(versions[3].resource.as_ref(), Some(&v1));
    }

    #[test]
    fn the_first_change_is_compared_with_the_previous_version() {
        let v1 = pod("shop", "web", "1");
        let v2 = pod("shop", "web", "2");
        let versions = object_timeline(Some(v1), &[upsert(5, 200, &v2)]);
        assert_eq!(versions[0].op, VersionOp::Updated);
        assert_eq!(versions[0].changes[0].field, "resourceVersion");
    }

    #[test]
    fn counts_per_bucket_and_kind_with_quiet_buckets() {
        let a = pod("shop", "a", "1");
        let b = pod("data", "b", "1");
        let mut svc = Resource::new("svc", Kind::Service, "shop", "web");
        svc.resource_version = "1".into();
        let svc = Arc::new(svc);
        let changes = [
            upsert(1, 999, &a),  // before the range
            upsert(2, 1000, &a), // first bucket
            upsert(3, 1500, &svc),
            upsert(4, 1999, &b),
            delete(5, 3200, &a), // last bucket, shorter than the others
            upsert(6, 3500, &b), // the range's end: excluded
        ];
        let buckets =
            cluster_timeline(&changes, 1000, 3500, 1000, &TimelineFilter::default()).unwrap();
        let shape: Vec<Shape<'_>> = buckets
            .iter()
            .map(|b| {
                let counts = b.counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
                (b.start, b.end, counts)
            })
            .collect();
        assert_eq!(
            shape,
            [
                (1000, 2000, vec![("Pod", 2), ("Service", 1)]),
                (2000, 3000, vec![]),
                (3000, 3500, vec![("Pod", 1)]),
            ]
        );
        let shop = TimelineFilter {
            namespace: Some("shop".into()),
            kind: Some(Kind::Pod),
        };
        let buckets = cluster_timeline(&changes, 1000, 3500, 1000, &shop).unwrap();
        let totals: Vec<u64> = buckets.iter().map(|b| b.counts.values().sum()).collect();
        assert_eq!(totals, [1, 0, 1]);
        let json = serde_json::to_value(&buckets[0]).unwrap();
        assert_eq!(json["start"], "1970-01-01T00:00:01Z");
        assert_eq!(json["counts"]["Pod"], 1);
    }

    #[test]
    fn bad_ranges_are_refused() {
        let f = TimelineFilter::default();
        assert_eq!(
            cluster_timeline(&[], 0, 10, 0, &f),
            Err(TimelineError::Bucket(0))
        );
        assert!(matches!(
            cluster_timeline(&[], 10, 0, 1, &f),
            Err(TimelineError::Range { .. })
        ));
        assert!(matches!(
            cluster_timeline(&[], 0, MAX_BUCKETS + 1, 1, &f),
            Err(TimelineError::TooManyBuckets(_))
        ));
        assert_eq!(cluster_timeline(&[], 0, 0, 1, &f), Ok(Vec::new()));
    }
}
