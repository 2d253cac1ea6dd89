//! Events about the objects the controllers act on: core/v1 Events as `kubectl get events` and
//! `kubectl describe` show them (`involvedObject`, `reason`, `message`, `source`), and the same
//! event in `events.k8s.io/v1` (`regarding`, `note`, `reportingController`, `action`), which
//! `kubectl events` and newer clients read, as the API server keeps both views of one event.

use serde_json::{Value, json};

use super::{fnv64, name_of, ns_of, str_at, uid_of};
use crate::kinds::{EVENTS, EVENTS_V1};
use crate::sim::Sim;
use crate::store::now_rfc3339;

/// Records a `Normal` Event about `object` from `component`; whether it was stored. Its name is
/// `<object>.<16 hex digits>` hashed from the object, the reason, the message and the
/// resourceVersion, as deterministic as the changes it reports.
pub(crate) fn record(
    sim: &Sim,
    object: &Value,
    component: &str,
    reason: &str,
    message: &str,
) -> bool {
    let ns = match ns_of(object) {
        "" => "default",
        ns => ns,
    };
    let mut state = sim.inner.state.lock();
    let seed = format!("{}/{reason}/{message}/{}", uid_of(object), state.rv);
    let name = format!("{}.{:016x}", name_of(object), fnv64(&seed));
    let now = now_rfc3339();
    let event = json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "apiVersion": str_at(object, "/apiVersion"),
            "kind": str_at(object, "/kind"),
            "name": name_of(object),
            "namespace": ns_of(object),
            "uid": uid_of(object),
            "resourceVersion": str_at(object, "/metadata/resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let newer = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "regarding": event["involvedObject"].clone(),
        "reason": reason,
        "note": message,
        "type": "Normal",
        "action": reason,
        "reportingController": component,
        "reportingInstance": component,
        "eventTime": now_micros(),
    });
    let stored = state.create(&EVENTS, event, None).is_ok();
    stored && state.create(&EVENTS_V1, newer, None).is_ok()
}

/// Now as a `MicroTime` (`eventTime` of an `events.k8s.io/v1` Event): RFC 3339 in UTC with
/// exactly six fractional digits, as clients parse it.
fn now_micros() -> String {
    let now = jiff::Timestamp::now();
    let micros = now.subsec_nanosecond() / 1_000;
    match jiff::Timestamp::from_second(now.as_second()) {
        Ok(seconds) => format!("{}.{micros:06}Z", seconds.strftime("%Y-%m-%dT%H:%M:%S")),
        Err(_) => now.to_string(),
    }
}
