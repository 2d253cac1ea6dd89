//! JSON pieces shared by the Go-compatible and native views: timestamps, ages, the metadata
//! object (Go's `ResourceMetadata`, §2.2 of the reference) and edges.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use astrolabe_model::{Fact, FactSet, Kind, Replicas};

use astrolabe_graph::query::EdgeView;

/// RFC 3339 in UTC with seconds precision (`2025-10-01T08:00:00Z`).
pub fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// Go's age string for an object created at `created` seen at `now` (both in seconds):
/// `<s>s` under a minute, `<m>m` under an hour, `<h>h` under a day, else `<d>d`. A creation time
/// in the future (clock skew) gives `0s`.
pub fn age(created: i64, now: i64) -> String {
    let secs = now.saturating_sub(created).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// A resource's health as the API names it (the schema of every `status` field of a resource).
#[derive(Debug, ToSchema)]
pub enum StatusName {
    /// Working as intended.
    Ready,
    /// Progressing, waiting or partially ready.
    Pending,
    /// Failed or failing.
    Error,
    /// Nothing to say, or an unrecognised state.
    Unknown,
}

/// Workload replica counts (the schema of the model's `Replicas`, which serialises as is).
#[derive(Debug, ToSchema)]
#[schema(as = Replicas)]
pub struct ReplicasSchema {
    /// Wanted replicas.
    pub desired: i32,
    /// Existing replicas.
    pub current: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Available replicas.
    pub available: i32,
}

/// `{kind, name}` (Go's owner and scale-target references).
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq, PartialOrd, Ord)]
pub struct KindName<'a> {
    /// The kind.
    pub kind: &'a str,
    /// The name.
    pub name: &'a str,
}

/// A PersistentVolume's claim reference, as Go shapes it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClaimRef)]
pub struct ClaimRefJson<'a> {
    /// Always `PersistentVolumeClaim`.
    pub kind: &'static str,
    /// The claim's namespace (omitted when empty).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub namespace: &'a str,
    /// The claim's name.
    pub name: &'a str,
    /// The claim's UID (omitted when empty).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub uid: &'a str,
}

/// Kind-specific facts under Go's `ResourceMetadata` names (every field omitted when empty),
/// plus, in native views only, `storageClass`, `phase` and `suspended`.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    /// Pod: its Node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<&'a str>,
    /// First container image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// Pod: restarts (omitted when 0, as in Go).
    #[serde(skip_serializing_if = "is_zero")]
    pub restart_count: u32,
    /// Workload replica counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReplicasSchema>)]
    pub replicas: Option<Replicas>,
    /// PVC: bound volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<&'a str>,
    /// PV: claim reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_ref: Option<ClaimRefJson<'a>>,
    /// Service: cluster IP.
    #[serde(rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<&'a str>,
    /// Service: type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<&'a str>,
    /// Ingress: class name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<&'a str>,
    /// HPA: scale target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_target_ref: Option<KindName<'a>>,
    /// HPA: `spec.minReplicas` (emitted when set, even if 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// HPA: `spec.maxReplicas`.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub max_replicas: i32,
    /// HPA: current replicas.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub current_replicas: i32,
    /// HPA: desired replicas.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub desired_replicas: i32,
    /// Native only: PVC/PV storage class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<&'a str>,
    /// Native only: phase (Pod, PVC, PV, Namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'a str>,
    /// Native only: CronJob suspension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
}

impl<'a> Metadata<'a> {
    /// The Go-compatible metadata of a resource's facts (no native-only fields). Borrows from the
    /// stored facts, so nothing is copied.
    pub fn compat(facts: &'a FactSet) -> Self {
        let mut m = Metadata::default();
        for fact in facts.iter() {
            match fact {
                Fact::NodeName(s) => m.node_name = Some(s),
                Fact::Image(s) => m.image = Some(s),
                Fact::RestartCount(n) => m.restart_count = *n,
                Fact::Replicas(r) => m.replicas = Some(*r),
                Fact::VolumeName(s) => m.volume_name = Some(s),
                Fact::ClaimRef(c) => {
                    m.claim_ref = Some(ClaimRefJson {
                        kind: Kind::PersistentVolumeClaim.as_str(),
                        namespace: &c.namespace,
                        name: &c.name,
                        uid: &c.uid,
                    })
                }
                Fact::ClusterIp(s) => m.cluster_ip = Some(s),
                Fact::ServiceType(s) => m.service_type = Some(s),
                Fact::IngressClass(s) => m.ingress_class = Some(s),
                Fact::ScaleTarget(t) => {
                    m.scale_target_ref = Some(KindName {
                        kind: t.0.as_str(),
                        name: &t.1,
                    })
                }
                Fact::Scaling(sc) => {
                    m.min_replicas = sc.min;
                    m.max_replicas = sc.max;
                    m.current_replicas = sc.current;
                    m.desired_replicas = sc.desired;
                }
                Fact::StorageClass(_) | Fact::Phase(_) | Fact::Suspended(_) => {}
            }
        }
        m
    }

    /// Whether every field would be omitted (serialises as `{}`).
    pub fn is_empty(&self) -> bool {
        self.node_name.is_none()
            && self.image.is_none()
            && self.restart_count == 0
            && self.replicas.is_none()
            && self.volume_name.is_none()
            && self.claim_ref.is_none()
            && self.cluster_ip.is_none()
            && self.service_type.is_none()
            && self.ingress_class.is_none()
            && self.scale_target_ref.is_none()
            && self.min_replicas.is_none()
            && self.max_replicas == 0
            && self.current_replicas == 0
            && self.desired_replicas == 0
            && self.storage_class.is_none()
            && self.phase.is_none()
            && self.suspended.is_none()
    }

    /// The native metadata: the Go fields plus storage class, phase and suspension.
    pub fn native(facts: &'a FactSet) -> Self {
        let mut m = Metadata::compat(facts);
        for fact in facts.iter() {
            match fact {
                Fact::StorageClass(s) => m.storage_class = Some(s),
                Fact::Phase(s) => m.phase = Some(s),
                Fact::Suspended(b) => m.suspended = Some(*b),
                _ => {}
            }
        }
        m
    }
}

/// An edge: `{"type", "from", "to"}` (the Go edge object).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Edge)]
pub struct EdgeJson<'a> {
    /// The edge kind's stable name (see `/api/v1/edge-kinds`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Source UID.
    pub from: &'a str,
    /// Target UID.
    pub to: &'a str,
}

impl<'a> From<&'a EdgeView> for EdgeJson<'a> {
    fn from(e: &'a EdgeView) -> Self {
        EdgeJson {
            kind: e.kind.as_str(),
            from: e.from.as_str(),
            to: e.to.as_str(),
        }
    }
}

/// A JSON response body, serialised with sonic-rs (SIMD string escaping) into one buffer sized up
/// front. String escaping and buffer growth were over a third of the server's CPU per neighbours
/// answer with `axum::Json` (serde_json into a growing `BytesMut`); the output is the same JSON.
#[derive(Debug, Clone, Copy)]
pub struct Json<T>(pub T);

/// Initial buffer of a [`Json`] body: enough for every small answer without growing.
const JSON_INITIAL_CAPACITY: usize = 4 * 1024;

/// Typical serialised size of one resource in a node list (generated cluster: 500-700 B).
const NODE_JSON_BYTES: usize = 768;
/// Typical serialised size of one edge (`{"type","from","to"}` with two UIDs).
const EDGE_JSON_BYTES: usize = 112;

/// A buffer size for a body of `nodes` resources and `edges` edges.
pub fn size_hint(nodes: usize, edges: usize) -> usize {
    nodes * NODE_JSON_BYTES + edges * EDGE_JSON_BYTES
}

impl<T: Serialize> Json<T> {
    /// Serialises into a buffer of at least `capacity` bytes (the caller's size estimate, e.g.
    /// nodes × typical node size), so a large answer is written without reallocating.
    pub fn into_response_sized(self, capacity: usize) -> Response {
        let mut buf = Vec::with_capacity(capacity.max(JSON_INITIAL_CAPACITY));
        json_response(sonic_rs::to_writer(&mut buf, &self.0).map(|()| buf))
    }
}

/// A 200 `application/json` response of `body`, or [`crate::error::ApiError::Internal`] when it
/// could not be serialised (only a failing `Serialize` impl gets there; none of ours fails).
pub fn json_response(body: sonic_rs::Result<Vec<u8>>) -> Response {
    match body {
        Ok(buf) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from(buf),
        )
            .into_response(),
        Err(e) => crate::error::ApiError::Internal(format!("response serialisation failed: {e}"))
            .into_response(),
    }
}

/// Writes a JSON object field by field into one buffer, with arrays of pre-rendered fragments
/// (see [`crate::fragments`]) copied in as they are. Field names must need no escaping.
#[derive(Debug)]
pub struct ObjectWriter {
    buf: Vec<u8>,
    first: bool,
}

impl ObjectWriter {
    /// An object of about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(JSON_INITIAL_CAPACITY));
        buf.push(b'{');
        ObjectWriter { buf, first: true }
    }

    fn key(&mut self, name: &'static str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// Adds `"name": value`.
    ///
    /// # Errors
    /// When `value` cannot be serialised.
    pub fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> sonic_rs::Result<()> {
        self.key(name);
        sonic_rs::to_writer(&mut self.buf, value)
    }

    /// Adds `"name": [item, ...]` of already rendered JSON values.
    pub fn raw_array(&mut self, name: &'static str, items: &[axum::body::Bytes]) {
        self.key(name);
        self.buf.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(item);
        }
        self.buf.push(b']');
    }

    /// The finished object.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        self.into_response_sized(JSON_INITIAL_CAPACITY)
    }
}

/// The header carrying the graph sequence a response reflects.
pub const SEQ_HEADER: &str = "x-astrolabe-seq";

/// `body` with the `X-Astrolabe-Seq` header set to `seq`.
pub fn with_seq(seq: u64, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(SEQ_HEADER, HeaderValue::from(seq));
    response
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_follow_go_units() {
        assert_eq!(age(100, 159), "59s");
        assert_eq!(age(100, 160), "1m");
        assert_eq!(age(0, 3_599), "59m");
        assert_eq!(age(0, 3_600), "1h");
        assert_eq!(age(0, 86_399), "23h");
        assert_eq!(age(0, 3 * 86_400 + 5), "3d");
        assert_eq!(age(200, 100), "0s");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        assert_eq!(timestamp(1_759_305_600), "2025-10-01T08:00:00Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
