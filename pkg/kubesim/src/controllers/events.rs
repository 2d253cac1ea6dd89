//! core/v1 Events about the objects the controllers act on, as `kubectl get events` and
//! `kubectl describe` show them (`involvedObject`, `reason`, `message`, `source`).

use serde_json::{Value, json};

use super::{fnv64, name_of, ns_of, str_at, uid_of};
use crate::kinds::EVENTS;
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
    state.create(&EVENTS, event, None).is_ok()
}
