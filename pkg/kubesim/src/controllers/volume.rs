//! The volume binder: a Pending PersistentVolumeClaim is bound to the smallest Available
//! PersistentVolume of its StorageClass with enough capacity and its access modes, or to a
//! volume `pvc-<claim uid>` provisioned for it when its StorageClass exists (the default class,
//! annotated `storageclass.kubernetes.io/is-default-class`, when it names none); both go
//! `Bound`. A bound volume whose claim is gone is deleted (`Delete` reclaim policy) or
//! `Released`.

use serde_json::{Value, json};

use super::{Cx, is_deleting, name_of, ns_of, set_at, str_at, uid_of};

/// A quantity (`10Gi`, `500M`, `1000`) in bytes; `None` when it does not parse.
pub(crate) fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "m" => 1e-3,
        _ => return None,
    };
    Some(n * factor)
}

fn modes(v: &Value, pointer: &str) -> Vec<String> {
    crate::crd::strings(v.pointer(pointer))
}

/// The StorageClass a claim asks for: its own, else the default class ("" for none).
fn class_of(cx: &Cx, pvc: &Value) -> String {
    if let Some(c) = pvc
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
    {
        return c.to_owned();
    }
    cx.list("StorageClass")
        .iter()
        .find(|sc| {
            str_at(
                sc,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == "true"
        })
        .map(|sc| name_of(sc).to_owned())
        .unwrap_or_default()
}

fn claim_ref(pvc: &Value) -> Value {
    json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns_of(pvc), "name": name_of(pvc), "uid": uid_of(pvc)})
}

/// Binds Pending claims and reclaims volumes whose claim is gone.
pub(crate) fn reconcile(cx: &mut Cx) {
    let claims = cx.list("PersistentVolumeClaim");
    for pvc in &claims {
        if is_deleting(pvc) || !str_at(pvc, "/spec/volumeName").is_empty() {
            continue;
        }
        bind(cx, pvc);
    }
    for pv in cx.list("PersistentVolume") {
        let Some(r) = pv.pointer("/spec/claimRef") else {
            continue;
        };
        let claimed = claims.iter().any(|c| {
            uid_of(c) == str_at(r, "/uid")
                || (str_at(r, "/uid").is_empty()
                    && ns_of(c) == str_at(r, "/namespace")
                    && name_of(c) == str_at(r, "/name"))
        });
        if claimed || str_at(&pv, "/status/phase") != "Bound" {
            continue;
        }
        if str_at(&pv, "/spec/persistentVolumeReclaimPolicy") == "Delete" {
            cx.delete("PersistentVolume", "", name_of(&pv));
        } else {
            cx.modify("PersistentVolume", "", name_of(&pv), |o| {
                set_at(o, &["status", "phase"], json!("Released"))
            });
        }
    }
}

fn bind(cx: &mut Cx, pvc: &Value) {
    let class = class_of(cx, pvc);
    let want = quantity(str_at(pvc, "/spec/resources/requests/storage")).unwrap_or(0.0);
    let want_modes = modes(pvc, "/spec/accessModes");
    let mut fits: Vec<(f64, std::sync::Arc<Value>)> = cx
        .list("PersistentVolume")
        .into_iter()
        .filter(|pv| pv.pointer("/spec/claimRef").is_none_or(Value::is_null))
        .filter(|pv| matches!(str_at(pv, "/status/phase"), "" | "Available" | "Pending"))
        .filter(|pv| str_at(pv, "/spec/storageClassName") == class)
        .filter(|pv| {
            let have = modes(pv, "/spec/accessModes");
            want_modes.iter().all(|m| have.contains(m))
        })
        .filter_map(|pv| {
            let cap = quantity(str_at(&pv, "/spec/capacity/storage"))?;
            (cap >= want).then_some((cap, pv))
        })
        .collect();
    fits.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| name_of(&a.1).cmp(name_of(&b.1)))
    });
    let pv = match fits.into_iter().next() {
        Some((_, pv)) => Value::clone(&pv),
        None => {
            let Some(sc) = (!class.is_empty())
                .then(|| cx.get("StorageClass", "", &class))
                .flatten()
            else {
                return;
            };
            let name = format!("pvc-{}", uid_of(pvc));
            let provisioner = str_at(&sc, "/provisioner").to_owned();
            let reclaim = sc.get("reclaimPolicy").cloned().unwrap_or(json!("Delete"));
            let pv = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner}},
                "spec": {
                    "capacity": {"storage": str_at(pvc, "/spec/resources/requests/storage")},
                    "accessModes": want_modes,
                    "storageClassName": class,
                    "persistentVolumeReclaimPolicy": reclaim,
                    "volumeMode": pvc.pointer("/spec/volumeMode").cloned().unwrap_or(json!("Filesystem")),
                    "csi": {"driver": provisioner, "volumeHandle": name},
                },
            });
            match cx.create("PersistentVolume", pv) {
                Some(pv) => pv,
                None => return,
            }
        }
    };
    let pv_name = name_of(&pv).to_owned();
    let cref = claim_ref(pvc);
    cx.modify("PersistentVolume", "", &pv_name, |o| {
        set_at(o, &["spec", "claimRef"], cref);
        set_at(o, &["status", "phase"], json!("Bound"));
    });
    let capacity = pv
        .pointer("/spec/capacity")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let pv_modes = pv
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or_else(|| json!([]));
    cx.modify("PersistentVolumeClaim", ns_of(pvc), name_of(pvc), |o| {
        set_at(o, &["spec", "volumeName"], json!(pv_name));
        if o.pointer("/spec/storageClassName").is_none() && !class.is_empty() {
            set_at(o, &["spec", "storageClassName"], json!(class));
        }
        set_at(o, &["status", "phase"], json!("Bound"));
        set_at(o, &["status", "capacity"], capacity);
        set_at(o, &["status", "accessModes"], pv_modes);
    });
}
