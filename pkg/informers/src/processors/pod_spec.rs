//! References a pod spec makes (Pods and every workload's pod template): ConfigMaps, Secrets,
//! the ServiceAccount, image pull Secrets and PersistentVolumeClaims.

use astrolabe_model::{EdgeKind, Kind, Reference, Str};
use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, PodSpec, PodTemplateSpec};

/// Whether an empty `serviceAccountName` means `default` (a Pod, where admission fills it in) or
/// nothing (a template, which usually leaves it empty).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServiceAccountDefault {
    /// Pods: an empty name is `default`.
    Default,
    /// Templates: only a name that is set.
    OnlyWhenSet,
}

/// Appends the references `spec` makes from namespace `ns` to `out`.
pub fn references(spec: &PodSpec, ns: &str, sa: ServiceAccountDefault, out: &mut Vec<Reference>) {
    let to = |edge, kind, name: &str| Reference::to_key(edge, kind, ns, name);
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map
            && !cm.name.is_empty()
        {
            out.push(
                to(EdgeKind::UsesConfigmap, Kind::ConfigMap, &cm.name)
                    .optional(cm.optional.unwrap_or(false)),
            );
        }
        if let Some(s) = &v.secret
            && let Some(name) = s.secret_name.as_deref().filter(|n| !n.is_empty())
        {
            out.push(
                to(EdgeKind::UsesSecret, Kind::Secret, name).optional(s.optional.unwrap_or(false)),
            );
        }
        if let Some(p) = &v.projected {
            for src in p.sources.iter().flatten() {
                if let Some(cm) = src.config_map.as_ref().filter(|c| !c.name.is_empty()) {
                    out.push(
                        to(EdgeKind::UsesConfigmap, Kind::ConfigMap, &cm.name)
                            .optional(cm.optional.unwrap_or(false)),
                    );
                }
                if let Some(s) = src.secret.as_ref().filter(|s| !s.name.is_empty()) {
                    out.push(
                        to(EdgeKind::UsesSecret, Kind::Secret, &s.name)
                            .optional(s.optional.unwrap_or(false)),
                    );
                }
            }
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && !pvc.claim_name.is_empty()
        {
            out.push(to(
                EdgeKind::Mounts,
                Kind::PersistentVolumeClaim,
                &pvc.claim_name,
            ));
        }
    }
    for c in &spec.containers {
        env_references(c.env.as_deref(), c.env_from.as_deref(), ns, out);
    }
    for c in spec.init_containers.iter().flatten() {
        env_references(c.env.as_deref(), c.env_from.as_deref(), ns, out);
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        env_references(c.env.as_deref(), c.env_from.as_deref(), ns, out);
    }
    #[allow(deprecated)]
    let named = spec
        .service_account_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or(spec.service_account.as_deref().filter(|n| !n.is_empty()));
    let account = match (named, sa) {
        (Some(name), _) => Some(name),
        (None, ServiceAccountDefault::Default) => Some("default"),
        (None, ServiceAccountDefault::OnlyWhenSet) => None,
    };
    if let Some(name) = account {
        out.push(to(EdgeKind::UsesSa, Kind::ServiceAccount, name));
    }
    for s in spec.image_pull_secrets.iter().flatten() {
        if !s.name.is_empty() {
            out.push(to(EdgeKind::PullsWith, Kind::Secret, &s.name));
        }
    }
}

/// The references of a workload's pod template (none when it has no spec).
pub fn template_references(tpl: &PodTemplateSpec, ns: &str, out: &mut Vec<Reference>) {
    if let Some(spec) = &tpl.spec {
        references(spec, ns, ServiceAccountDefault::OnlyWhenSet, out);
    }
}

/// The image of a template's first container.
pub fn template_image(tpl: &PodTemplateSpec) -> Option<Str> {
    tpl.spec.as_ref().and_then(first_image)
}

/// The image of a pod spec's first container.
pub fn first_image(spec: &PodSpec) -> Option<Str> {
    spec.containers
        .first()
        .and_then(|c| c.image.as_deref())
        .filter(|i| !i.is_empty())
        .map(Str::from)
}

fn env_references(
    env: Option<&[EnvVar]>,
    env_from: Option<&[EnvFromSource]>,
    ns: &str,
    out: &mut Vec<Reference>,
) {
    for from in env_from.into_iter().flatten() {
        if let Some(cm) = from.config_map_ref.as_ref().filter(|c| !c.name.is_empty()) {
            out.push(
                Reference::to_key(EdgeKind::UsesConfigmap, Kind::ConfigMap, ns, &cm.name)
                    .optional(cm.optional.unwrap_or(false)),
            );
        }
        if let Some(s) = from.secret_ref.as_ref().filter(|s| !s.name.is_empty()) {
            out.push(
                Reference::to_key(EdgeKind::UsesSecret, Kind::Secret, ns, &s.name)
                    .optional(s.optional.unwrap_or(false)),
            );
        }
    }
    for var in env.into_iter().flatten() {
        let Some(source) = &var.value_from else {
            continue;
        };
        if let Some(k) = source
            .config_map_key_ref
            .as_ref()
            .filter(|k| !k.name.is_empty())
        {
            out.push(
                Reference::to_key(EdgeKind::UsesConfigmap, Kind::ConfigMap, ns, &k.name)
                    .with_key(k.key.as_str())
                    .optional(k.optional.unwrap_or(false)),
            );
        }
        if let Some(k) = source
            .secret_key_ref
            .as_ref()
            .filter(|k| !k.name.is_empty())
        {
            out.push(
                Reference::to_key(EdgeKind::UsesSecret, Kind::Secret, ns, &k.name)
                    .with_key(k.key.as_str())
                    .optional(k.optional.unwrap_or(false)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{container, key, pod_spec};
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, ConfigMapProjection, ConfigMapVolumeSource,
        EnvVarSource, EphemeralContainer, LocalObjectReference, PersistentVolumeClaimVolumeSource,
        ProjectedVolumeSource, SecretEnvSource, SecretKeySelector, SecretProjection,
        SecretVolumeSource, Volume, VolumeProjection,
    };

    fn volume(name: &str) -> Volume {
        Volume {
            name: name.to_owned(),
            ..Volume::default()
        }
    }

    fn full_spec() -> PodSpec {
        let mut spec = pod_spec("img:1");
        spec.volumes = Some(vec![
            Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "cm-vol".into(),
                    ..Default::default()
                }),
                ..volume("a")
            },
            Volume {
                secret: Some(SecretVolumeSource {
                    secret_name: Some("sec-vol".into()),
                    optional: Some(true),
                    ..Default::default()
                }),
                ..volume("b")
            },
            Volume {
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![
                        VolumeProjection {
                            config_map: Some(ConfigMapProjection {
                                name: "cm-proj".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        VolumeProjection {
                            secret: Some(SecretProjection {
                                name: "sec-proj".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
                ..volume("c")
            },
            Volume {
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "data".into(),
                    read_only: None,
                }),
                ..volume("d")
            },
        ]);
        spec.containers[0].env_from = Some(vec![
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cm-envfrom".into(),
                    optional: None,
                }),
                ..Default::default()
            },
            EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "sec-envfrom".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            },
        ]);
        let mut init = container("init", "busybox");
        init.env = Some(vec![EnvVar {
            name: "LOG_LEVEL".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    key: "level".into(),
                    name: "cm-key".into(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        spec.init_containers = Some(vec![init]);
        spec.ephemeral_containers = Some(vec![EphemeralContainer {
            name: "debug".into(),
            env: Some(vec![EnvVar {
                name: "TOKEN".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        key: "token".into(),
                        name: "sec-key".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }]);
        spec.image_pull_secrets = Some(vec![LocalObjectReference {
            name: "regcred".into(),
        }]);
        spec
    }

    #[test]
    fn every_pod_spec_reference() {
        let mut out = Vec::new();
        references(&full_spec(), "ns", ServiceAccountDefault::Default, &mut out);
        out.sort();
        let mut want = vec![
            key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "ns", "cm-vol"),
            key(EdgeKind::UsesSecret, Kind::Secret, "ns", "sec-vol").optional(true),
            key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "ns", "cm-proj"),
            key(EdgeKind::UsesSecret, Kind::Secret, "ns", "sec-proj"),
            key(EdgeKind::Mounts, Kind::PersistentVolumeClaim, "ns", "data"),
            key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "ns", "cm-envfrom"),
            key(EdgeKind::UsesSecret, Kind::Secret, "ns", "sec-envfrom"),
            key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "ns", "cm-key")
                .with_key("level")
                .optional(true),
            key(EdgeKind::UsesSecret, Kind::Secret, "ns", "sec-key").with_key("token"),
            key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "default"),
            key(EdgeKind::PullsWith, Kind::Secret, "ns", "regcred"),
        ];
        want.sort();
        assert_eq!(out, want);
    }

    #[test]
    fn service_account_defaults() {
        let spec = pod_spec("img");
        let mut out = Vec::new();
        references(&spec, "ns", ServiceAccountDefault::OnlyWhenSet, &mut out);
        assert!(out.is_empty());
        let mut named = spec.clone();
        named.service_account_name = Some("builder".into());
        references(&named, "ns", ServiceAccountDefault::OnlyWhenSet, &mut out);
        assert_eq!(
            out,
            vec![key(EdgeKind::UsesSa, Kind::ServiceAccount, "ns", "builder")]
        );
    }

    #[test]
    fn first_image_of_template() {
        assert_eq!(
            first_image(&pod_spec("nginx:1")).as_deref(),
            Some("nginx:1")
        );
        assert_eq!(template_image(&PodTemplateSpec::default()), None);
    }
}
