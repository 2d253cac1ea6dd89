//! The pure parts of the graph's history: no I/O, no Redis, no HTTP. The server materialises a
//! past graph (a checkpoint plus the changes after it) and calls these to answer `at=`, `diff`,
//! timeline and watch-from-a-point requests.
//!
//! Layout:
//! - [`point`]: [`Point`], what `at=`, `from=`, `to=` and `since=` name (`seq:N`, an RFC 3339
//!   time, a relative time such as `-15m`, or `now`), and the RFC 3339 form of times in answers.
//! - [`fields`]: [`field_changes`], what differs between two versions of an object, field by
//!   field, as dotted paths over its JSON form.
//! - [`diff`]: [`diff_between`], the net difference between the graphs at two points (objects
//!   added, removed and modified, edges added and removed) over the objects changed between
//!   them, with a namespace, kind or neighbourhood filter; [`diff_by_replay`] replays the
//!   changes to get the second graph.
//! - [`timeline`]: [`object_timeline`], the versions of one object, and [`cluster_timeline`],
//!   change counts per time bucket and kind.
//! - [`cache`]: [`GraphCache`], materialised past graphs by sequence number, bounded by size,
//!   least recently used first out.
//!
//! Answers derive `serde::Serialize` in the API's camelCase, times as RFC 3339.

pub mod cache;
pub mod diff;
pub mod fields;
pub mod point;
pub mod timeline;

pub use cache::{CacheStats, GraphCache};
pub use diff::{
    Diff, DiffFilter, EdgeDiff, ModifiedObject, ObjectDiff, Touch, Touched, diff_between,
    diff_by_replay,
};
pub use fields::{FieldChange, field_changes};
pub use point::{Point, PointError, format_time, parse_duration_ms, serialize_time};
pub use timeline::{
    Bucket, TimelineError, TimelineFilter, Version, VersionOp, cluster_timeline, object_timeline,
};
