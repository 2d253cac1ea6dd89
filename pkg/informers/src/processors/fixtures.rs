//! Test fixtures: hand-built Kubernetes objects and reference helpers.

use astrolabe_model::{EdgeKind, Kind, Reference};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// Metadata with uid `uid-<name>`, resourceVersion 42, created at 1 700 000 000.
pub fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
        uid: Some(format!("uid-{name}")),
        resource_version: Some("42".to_owned()),
        creation_timestamp: Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("valid time"),
        )),
        ..ObjectMeta::default()
    }
}

/// A string map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A container with a name and image.
pub fn container(name: &str, image: &str) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        ..Container::default()
    }
}

/// A pod spec with one container.
pub fn pod_spec(image: &str) -> PodSpec {
    PodSpec {
        containers: vec![container("main", image)],
        ..PodSpec::default()
    }
}

/// A pod template with one container.
pub fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: None,
        spec: Some(pod_spec(image)),
    }
}

/// A forward key reference.
pub fn key(edge: EdgeKind, kind: Kind, ns: &str, name: &str) -> Reference {
    Reference::to_key(edge, kind, ns, name)
}
