//! Storage: PersistentVolumeClaim, PersistentVolume and StorageClass.

use astrolabe_model::{ClaimRef, EdgeKind, Facts, Health, Kind, Reference, Resource, Status, Str};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::common::{exists, finish, from_meta, non_empty, status};

/// The annotation that named a claim's or a volume's class before `storageClassName` existed;
/// Kubernetes still honours it when the field is unset.
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The storage class of a claim or a volume: `storageClassName` when set, else the beta
/// annotation (as Kubernetes reads it).
fn class_name(meta: &ObjectMeta, field: Option<&String>) -> Option<Str> {
    non_empty(field).or_else(|| {
        non_empty(
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(BETA_STORAGE_CLASS)),
        )
    })
}

/// Turns a PersistentVolumeClaim into a [`Resource`]: `binds` its volume, `uses-storage-class`.
pub fn persistent_volume_claim(obj: &PersistentVolumeClaim) -> Resource {
    let mut r = from_meta(Kind::PersistentVolumeClaim, &obj.metadata);
    let spec = obj.spec.as_ref();
    let volume = spec.and_then(|s| non_empty(s.volume_name.as_ref()));
    let class = class_name(
        &obj.metadata,
        spec.and_then(|s| s.storage_class_name.as_ref()),
    );
    if let Some(v) = &volume {
        r.references.push(Reference::to_key(
            EdgeKind::Binds,
            Kind::PersistentVolume,
            "",
            v.clone(),
        ));
    }
    push_storage_class(&mut r, class.as_ref());
    let phase = obj
        .status
        .as_ref()
        .and_then(|s| non_empty(s.phase.as_ref()));
    r.status = match phase.as_deref() {
        Some("Bound") => status(Health::Ready, "Bound"),
        Some("Pending") => status(Health::Pending, "Pending"),
        Some("Lost") => status(Health::Error, "Lost"),
        other => unknown_phase(other),
    };
    r.set_facts(&Facts {
        volume_name: volume,
        storage_class: class,
        phase,
        ..Facts::default()
    });
    finish(r)
}

/// Turns a PersistentVolume into a [`Resource`]: `uses-storage-class`; the claimRef is a fact.
pub fn persistent_volume(obj: &PersistentVolume) -> Resource {
    let mut r = from_meta(Kind::PersistentVolume, &obj.metadata);
    let spec = obj.spec.as_ref();
    let class = class_name(
        &obj.metadata,
        spec.and_then(|s| s.storage_class_name.as_ref()),
    );
    push_storage_class(&mut r, class.as_ref());
    let claim = spec.and_then(|s| s.claim_ref.as_ref()).map(|c| ClaimRef {
        namespace: c.namespace.as_deref().map(Str::from).unwrap_or_default(),
        name: c.name.as_deref().map(Str::from).unwrap_or_default(),
        uid: c.uid.as_deref().map(Str::from).unwrap_or_default(),
    });
    let phase = obj
        .status
        .as_ref()
        .and_then(|s| non_empty(s.phase.as_ref()));
    r.status = match phase.as_deref() {
        Some("Bound") => status(Health::Ready, "Bound"),
        Some("Available") => status(Health::Ready, "Available"),
        Some("Released") => status(Health::Pending, "Released"),
        Some("Failed") => status(Health::Error, "Failed"),
        other => unknown_phase(other),
    };
    r.set_facts(&Facts {
        storage_class: class,
        claim_ref: claim,
        phase,
        ..Facts::default()
    });
    finish(r)
}

/// Turns a StorageClass into a [`Resource`].
pub fn storage_class(obj: &StorageClass) -> Resource {
    let mut r = from_meta(Kind::StorageClass, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

fn push_storage_class(r: &mut Resource, class: Option<&Str>) {
    if let Some(c) = class {
        r.references.push(Reference::to_key(
            EdgeKind::UsesStorageClass,
            Kind::StorageClass,
            "",
            c.clone(),
        ));
    }
}

fn unknown_phase(phase: Option<&str>) -> Status {
    status(
        Health::Unknown,
        format!("Phase: {}", phase.unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, meta};
    use k8s_openapi::api::core::v1::{
        ObjectReference, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
        PersistentVolumeSpec, PersistentVolumeStatus,
    };

    fn pvc(phase: &str, volume: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: meta("ns", "data"),
            spec: Some(PersistentVolumeClaimSpec {
                volume_name: volume.map(Into::into),
                storage_class_name: Some("standard".into()),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pvc_binds_and_uses_storage_class() {
        let r = persistent_volume_claim(&pvc("Bound", Some("pv-1")));
        let mut want = vec![
            key(EdgeKind::Binds, Kind::PersistentVolume, "", "pv-1"),
            key(
                EdgeKind::UsesStorageClass,
                Kind::StorageClass,
                "",
                "standard",
            ),
        ];
        want.sort();
        assert_eq!(r.references, want);
        assert_eq!(r.status, status(Health::Ready, "Bound"));
        let f = r.facts();
        assert_eq!(f.volume_name.as_deref(), Some("pv-1"));
        assert_eq!(f.storage_class.as_deref(), Some("standard"));
        assert_eq!(f.phase.as_deref(), Some("Bound"));
    }

    #[test]
    fn storage_class_by_beta_annotation() {
        let class_edges = |r: &Resource| -> Vec<Reference> {
            r.references
                .iter()
                .filter(|x| x.edge == EdgeKind::UsesStorageClass)
                .cloned()
                .collect()
        };
        let uses = |name: &str| {
            vec![key(
                EdgeKind::UsesStorageClass,
                Kind::StorageClass,
                "",
                name,
            )]
        };
        let mut old = pvc("Pending", None);
        old.metadata.annotations = Some(
            [(BETA_STORAGE_CLASS.to_owned(), "legacy".to_owned())]
                .into_iter()
                .collect(),
        );
        // The field wins over the annotation.
        assert_eq!(
            class_edges(&persistent_volume_claim(&old)),
            uses("standard")
        );
        if let Some(spec) = old.spec.as_mut() {
            spec.storage_class_name = None;
        }
        let r = persistent_volume_claim(&old);
        assert_eq!(class_edges(&r), uses("legacy"));
        assert_eq!(r.facts().storage_class.as_deref(), Some("legacy"));
        let pv = PersistentVolume {
            metadata: old.metadata.clone(),
            ..Default::default()
        };
        assert_eq!(class_edges(&persistent_volume(&pv)), uses("legacy"));
    }

    #[test]
    fn pvc_phases() {
        let pending = persistent_volume_claim(&pvc("Pending", None));
        assert_eq!(pending.status.health, Health::Pending);
        assert!(pending.references.iter().all(|r| r.edge != EdgeKind::Binds));
        assert_eq!(
            persistent_volume_claim(&pvc("Lost", None)).status.health,
            Health::Error
        );
        assert_eq!(
            persistent_volume_claim(&pvc("Odd", None)).status,
            status(Health::Unknown, "Phase: Odd")
        );
    }

    #[test]
    fn pv_claim_ref_is_a_fact_only() {
        let pv = |phase: &str| PersistentVolume {
            metadata: meta("", "pv-1"),
            spec: Some(PersistentVolumeSpec {
                storage_class_name: Some("fast".into()),
                claim_ref: Some(ObjectReference {
                    kind: Some("PersistentVolumeClaim".into()),
                    namespace: Some("ns".into()),
                    name: Some("data".into()),
                    uid: Some("uid-data".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        };
        let r = persistent_volume(&pv("Bound"));
        assert_eq!(
            r.references,
            vec![key(
                EdgeKind::UsesStorageClass,
                Kind::StorageClass,
                "",
                "fast"
            )]
        );
        assert_eq!(
            r.facts().claim_ref,
            Some(ClaimRef {
                namespace: "ns".into(),
                name: "data".into(),
                uid: "uid-data".into()
            })
        );
        assert_eq!(r.status, status(Health::Ready, "Bound"));
        assert_eq!(
            persistent_volume(&pv("Available")).status.health,
            Health::Ready
        );
        assert_eq!(
            persistent_volume(&pv("Released")).status.health,
            Health::Pending
        );
        assert_eq!(
            persistent_volume(&pv("Failed")).status.health,
            Health::Error
        );
        assert_eq!(
            persistent_volume(&pv("Pending")).status.health,
            Health::Unknown
        );
    }

    #[test]
    fn storage_class_exists() {
        let sc = StorageClass {
            metadata: meta("", "standard"),
            provisioner: "csi".into(),
            ..Default::default()
        };
        let r = storage_class(&sc);
        assert_eq!(r.status, status(Health::Ready, "StorageClass exists"));
        assert!(r.facts.is_empty());
    }
}
