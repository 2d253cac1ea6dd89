//! The Deployment controller: one ReplicaSet per pod template, named `<deployment>-<hash>` with
//! the `pod-template-hash` label in its selector, template and Pods; the
//! `deployment.kubernetes.io/revision` annotation on each ReplicaSet (a template used again, as by
//! `kubectl rollout undo`, takes the next revision); rolling updates bounded by `maxSurge` and
//! `maxUnavailable` (or `Recreate`); old ReplicaSets beyond `revisionHistoryLimit` deleted; the
//! status and the `Available`/`Progressing` conditions `kubectl rollout status` reads.

use serde_json::{Value, json};

use super::{
    Cx, canonical, controlled_by, is_deleting, name_of, ns_of, owner_ref, replicas, set_at,
    set_condition, set_status, short_hash, str_at, uid_of,
};

/// The label (and selector term) naming a ReplicaSet's template.
pub const HASH: &str = "pod-template-hash";
/// The annotation holding a ReplicaSet's (and its Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The component named in the Events this controller records.
const COMPONENT: &str = "deployment-controller";

/// The hash of a pod template (its `pod-template-hash` label left out), 10 safe characters.
#[must_use]
pub fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH);
    }
    short_hash(&canonical(&t), 10)
}

fn revision(rs: &Value) -> i64 {
    str_at(
        rs,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    rs.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn status_count(obj: &Value, field: &str) -> i64 {
    obj.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `maxSurge` or `maxUnavailable` for `desired` replicas: an integer, or a percentage rounded up
/// (surge) or down (unavailable).
fn resolve(value: Option<&Value>, desired: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = desired * pct;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
        _ => {
            if round_up {
                (desired * 25 + 99) / 100
            } else {
                desired * 25 / 100
            }
        }
    }
}

/// Syncs every Deployment.
pub(crate) fn reconcile(cx: &mut Cx) {
    for d in cx.list("Deployment") {
        if !is_deleting(&d) {
            sync(cx, &d);
        }
    }
}

/// The ReplicaSets `d` controls, oldest revision first.
fn owned(cx: &Cx, d: &Value) -> Vec<Value> {
    let uid = uid_of(d);
    let mut rss: Vec<Value> = cx
        .list_in("ReplicaSet", ns_of(d))
        .into_iter()
        .filter(|rs| controlled_by(rs, uid))
        .map(|rs| Value::clone(&rs))
        .collect();
    rss.sort_by_key(|rs| (revision(rs), name_of(rs).to_owned()));
    rss
}

fn scale(cx: &mut Cx, d: &Value, rs: &Value, to: i64) {
    let from = spec_replicas(rs);
    if from == to {
        return;
    }
    let wrote = cx.modify("ReplicaSet", ns_of(rs), name_of(rs), |o| {
        set_at(o, &["spec", "replicas"], json!(to));
    });
    if wrote {
        let dir = if to > from { "up" } else { "down" };
        let msg = format!(
            "Scaled {dir} replica set {} from {from} to {to}",
            name_of(rs)
        );
        cx.event(d, COMPONENT, "ScalingReplicaSet", &msg);
    }
}

/// A new ReplicaSet for `d`'s template.
fn new_replicaset(d: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let mut template = d
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    set_at(&mut template, &["metadata", "labels", HASH], json!(hash));
    let mut selector = d
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    set_at(&mut selector, &["matchLabels", HASH], json!(hash));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", name_of(d)),
            "namespace": ns_of(d),
            "labels": template.pointer("/metadata/labels").cloned(),
            "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [owner_ref(d)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    })
}

fn sync(cx: &mut Cx, d: &Value) {
    let Some(template) = d.pointer("/spec/template") else {
        return;
    };
    let hash = template_hash(template);
    let desired = replicas(d).max(0);
    let rolling = d.pointer("/spec/strategy/rollingUpdate");
    let surge = resolve(rolling.and_then(|r| r.get("maxSurge")), desired, true);
    let mut unavailable = resolve(
        rolling.and_then(|r| r.get("maxUnavailable")),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let recreate = str_at(d, "/spec/strategy/type") == "Recreate";
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let rss = owned(cx, d);
    let max_revision = rss.iter().map(revision).max().unwrap_or(0);
    let is_new = |rs: &&Value| str_at(rs, &format!("/metadata/labels/{HASH}")) == hash;
    match rss.iter().find(is_new) {
        None if !paused => {
            let active_old = rss.iter().any(|rs| spec_replicas(rs) > 0);
            let total: i64 = rss.iter().map(spec_replicas).sum();
            let start = if recreate && active_old {
                0
            } else if active_old {
                desired.min((desired + surge - total).max(0))
            } else {
                desired
            };
            let rs = new_replicaset(d, &hash, start, max_revision + 1);
            if let Some(created) = cx.create("ReplicaSet", rs)
                && start > 0
            {
                let msg = format!(
                    "Scaled up replica set {} from 0 to {start}",
                    name_of(&created)
                );
                cx.event(d, COMPONENT, "ScalingReplicaSet", &msg);
            }
        }
        Some(rs) if revision(rs) < max_revision => {
            let next = (max_revision + 1).to_string();
            cx.modify("ReplicaSet", ns_of(rs), name_of(rs), |o| {
                set_at(o, &["metadata", "annotations", REVISION], json!(next));
            });
        }
        _ => {}
    }
    let rss = owned(cx, d);
    let (new, old): (Vec<Value>, Vec<Value>) = rss.into_iter().partition(|rs| is_new(&rs));
    let Some(new) = new.into_iter().next() else {
        return;
    };
    if !paused {
        roll(cx, d, &new, &old, desired, surge, unavailable, recreate);
    }
    history_limit(cx, d, &old);
    report(cx, d, desired, unavailable);
}

/// One step of the rollout: scale the new ReplicaSet up, then the old ones down, within the
/// bounds of the strategy.
#[allow(clippy::too_many_arguments)]
fn roll(
    cx: &mut Cx,
    d: &Value,
    new: &Value,
    old: &[Value],
    desired: i64,
    surge: i64,
    unavailable: i64,
    recreate: bool,
) {
    let active_old: Vec<&Value> = old.iter().filter(|rs| spec_replicas(rs) > 0).collect();
    if recreate {
        for rs in &active_old {
            scale(cx, d, rs, 0);
        }
        if old.iter().all(|rs| status_count(rs, "replicas") == 0) && active_old.is_empty() {
            scale(cx, d, new, desired);
        }
        return;
    }
    if active_old.is_empty() {
        scale(cx, d, new, desired);
        return;
    }
    let total: i64 = spec_replicas(new) + old.iter().map(spec_replicas).sum::<i64>();
    let max_total = desired + surge;
    let new_replicas = spec_replicas(new);
    if new_replicas < desired && total < max_total {
        scale(cx, d, new, desired.min(new_replicas + max_total - total));
        return;
    }
    // Scale down old ReplicaSets, oldest first: their unavailable Pods, then available ones
    // while the available total stays at or above `desired - maxUnavailable`.
    let min_available = desired - unavailable;
    let new_unavailable = new_replicas - status_count(new, "availableReplicas");
    let mut budget = total - min_available - new_unavailable;
    let mut available: i64 = status_count(new, "availableReplicas")
        + old
            .iter()
            .map(|rs| status_count(rs, "availableReplicas"))
            .sum::<i64>();
    for rs in active_old {
        if budget <= 0 {
            break;
        }
        let have = spec_replicas(rs);
        let rs_available = status_count(rs, "availableReplicas").min(have);
        let unhealthy = (have - rs_available).min(budget);
        let spare = (available - min_available).max(0).min(rs_available);
        let down = (unhealthy + spare).min(budget).min(have);
        if down > 0 {
            scale(cx, d, rs, have - down);
            budget -= down;
            available -= spare.min(down);
        }
    }
}

/// Deletes fully scaled-down old ReplicaSets beyond `revisionHistoryLimit` (default 10).
fn history_limit(cx: &mut Cx, d: &Value, old: &[Value]) {
    let limit = d
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0);
    let idle: Vec<&Value> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && status_count(rs, "replicas") == 0)
        .collect();
    let extra = usize::try_from(i64::try_from(idle.len()).unwrap_or(0) - limit).unwrap_or(0);
    for rs in idle.into_iter().take(extra) {
        cx.delete("ReplicaSet", ns_of(rs), name_of(rs));
    }
}

/// Writes the Deployment's status and revision from its ReplicaSets.
fn report(cx: &mut Cx, d: &Value, desired: i64, unavailable: i64) {
    let rss = owned(cx, d);
    let hash = template_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
    let new = rss
        .iter()
        .find(|rs| str_at(rs, &format!("/metadata/labels/{HASH}")) == hash);
    let sum = |f: &str| rss.iter().map(|rs| status_count(rs, f)).sum::<i64>();
    let (replicas, ready, available) = (
        sum("replicas"),
        sum("readyReplicas"),
        sum("availableReplicas"),
    );
    let updated = new.map_or(0, |rs| status_count(rs, "replicas"));
    let new_name = new.map(name_of).unwrap_or_default().to_owned();
    let new_revision = new.map(revision).unwrap_or_default();
    let complete = updated == desired && replicas == desired && available >= desired;
    let generation = d
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    cx.modify("Deployment", ns_of(d), name_of(d), |o| {
        if new_revision > 0 {
            set_at(
                o,
                &["metadata", "annotations", REVISION],
                json!(new_revision.to_string()),
            );
        }
        set_status(
            o,
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": (replicas - available).max(0),
            }),
        );
        if available >= desired - unavailable {
            set_condition(
                o,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
        } else {
            set_condition(
                o,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        if complete {
            let msg = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
            set_condition(o, "Progressing", "True", "NewReplicaSetAvailable", &msg);
        } else {
            let msg = format!("ReplicaSet \"{new_name}\" is progressing.");
            set_condition(o, "Progressing", "True", "ReplicaSetUpdated", &msg);
        }
    });
}
