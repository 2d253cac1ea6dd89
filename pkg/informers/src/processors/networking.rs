//! Networking: Service, EndpointSlice, Ingress, IngressClass and NetworkPolicy.

use astrolabe_model::well_known::SERVICE_NAME;
use astrolabe_model::{EdgeKind, Facts, Health, Kind, LabelSelector, Reference, Resource, Str};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass, NetworkPolicy};

use super::common::{exists, finish, from_meta, labels, non_empty, selector, status};

/// The legacy annotation naming an Ingress's class, read when `ingressClassName` is unset.
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Turns a Service into a [`Resource`]: a non-empty selector `selects` Pods.
pub fn service(obj: &Service) -> Resource {
    let mut r = from_meta(Kind::Service, &obj.metadata);
    let spec = obj.spec.as_ref();
    let sel = labels(spec.and_then(|s| s.selector.as_ref()));
    if !sel.is_empty() {
        let sel = LabelSelector {
            match_labels: sel,
            match_expressions: Vec::new(),
        };
        r.references.push(Reference::to_selector(
            EdgeKind::Selects,
            Kind::Pod,
            sel,
            false,
        ));
    }
    let service_type = spec
        .and_then(|s| non_empty(s.type_.as_ref()))
        .unwrap_or_else(|| Str::from("ClusterIP"));
    let lb_ready = obj
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty());
    r.status = if service_type == "LoadBalancer" && !lb_ready {
        status(Health::Pending, "Waiting for load balancer")
    } else {
        status(Health::Ready, "Service is active")
    };
    r.set_facts(&Facts {
        cluster_ip: spec.and_then(|s| non_empty(s.cluster_ip.as_ref())),
        service_type: Some(service_type),
        ..Facts::default()
    });
    finish(r)
}

/// Turns an EndpointSlice into a [`Resource`]: its Service makes `endpoints` to it (reverse
/// reference from the `kubernetes.io/service-name` label) and it `targets` its Pods. An
/// endpoint without a `ready` condition counts as ready, as Kubernetes specifies.
pub fn endpoint_slice(obj: &EndpointSlice) -> Resource {
    let mut r = from_meta(Kind::EndpointSlice, &obj.metadata);
    let ns = r.namespace.clone();
    if let Some(svc) = r.labels.get(SERVICE_NAME).filter(|s| !s.is_empty()) {
        let reference =
            Reference::to_key(EdgeKind::Endpoints, Kind::Service, ns.clone(), svc).reversed();
        r.references.push(reference);
    }
    let mut ready = 0usize;
    for ep in obj.endpoints.iter().flatten() {
        if ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
            ready += 1;
        }
        let Some(target) = &ep.target_ref else {
            continue;
        };
        if target.kind.as_deref() != Some("Pod") {
            continue;
        }
        let Some(name) = non_empty(target.name.as_ref()) else {
            continue;
        };
        let target_ns = non_empty(target.namespace.as_ref()).unwrap_or_else(|| ns.clone());
        r.references.push(Reference::to_key(
            EdgeKind::Targets,
            Kind::Pod,
            target_ns,
            name,
        ));
    }
    r.status = if ready > 0 {
        status(Health::Ready, format!("{ready} ready endpoint(s)"))
    } else {
        status(Health::Pending, "No ready endpoints")
    };
    finish(r)
}

/// Turns an Ingress into a [`Resource`]: `routes-to` its backend Services, `uses-tls-secret`,
/// `uses-ingress-class`.
pub fn ingress(obj: &Ingress) -> Resource {
    let mut r = from_meta(Kind::Ingress, &obj.metadata);
    let ns = r.namespace.clone();
    let spec = obj.spec.as_ref();
    let mut backends: Vec<&IngressBackend> = Vec::new();
    if let Some(spec) = spec {
        backends.extend(spec.default_backend.as_ref());
        for rule in spec.rules.iter().flatten() {
            for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
                backends.push(&path.backend);
            }
        }
        for tls in spec.tls.iter().flatten() {
            if let Some(secret) = non_empty(tls.secret_name.as_ref()) {
                r.references.push(Reference::to_key(
                    EdgeKind::UsesTlsSecret,
                    Kind::Secret,
                    ns.clone(),
                    secret,
                ));
            }
        }
    }
    for b in backends {
        if let Some(svc) = b.service.as_ref().filter(|s| !s.name.is_empty()) {
            r.references.push(Reference::to_key(
                EdgeKind::RoutesTo,
                Kind::Service,
                ns.clone(),
                svc.name.as_str(),
            ));
        }
    }
    let class = spec
        .and_then(|s| non_empty(s.ingress_class_name.as_ref()))
        .or_else(|| {
            r.annotations
                .get(INGRESS_CLASS_ANNOTATION)
                .filter(|c| !c.is_empty())
                .map(Str::from)
        });
    if let Some(c) = &class {
        r.references.push(Reference::to_key(
            EdgeKind::UsesIngressClass,
            Kind::IngressClass,
            "",
            c.clone(),
        ));
    }
    let has_lb = obj
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty());
    r.status = if has_lb {
        status(Health::Ready, "Ingress has load balancer")
    } else {
        status(Health::Pending, "Waiting for load balancer")
    };
    r.set_facts(&Facts {
        ingress_class: class,
        ..Facts::default()
    });
    finish(r)
}

/// Turns an IngressClass into a [`Resource`].
pub fn ingress_class(obj: &IngressClass) -> Resource {
    let mut r = from_meta(Kind::IngressClass, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a NetworkPolicy into a [`Resource`]: it `applies-to` the Pods its podSelector selects
/// (an empty podSelector selects every Pod in the namespace).
pub fn network_policy(obj: &NetworkPolicy) -> Resource {
    let mut r = from_meta(Kind::NetworkPolicy, &obj.metadata);
    let sel = obj
        .spec
        .as_ref()
        .and_then(|s| s.pod_selector.as_ref())
        .map(selector)
        .unwrap_or_default();
    r.references.push(Reference::to_selector(
        EdgeKind::AppliesTo,
        Kind::Pod,
        sel,
        true,
    ));
    r.status = exists(&r.kind);
    finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, map, meta};
    use astrolabe_model::Target;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ObjectReference, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::api::networking::v1::{
        HTTPIngressPath, HTTPIngressRuleValue, IngressLoadBalancerIngress,
        IngressLoadBalancerStatus, IngressRule, IngressServiceBackend, IngressSpec, IngressStatus,
        IngressTLS, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

    #[test]
    fn service_selects_pods_only_with_a_selector() {
        let svc = |sel: Option<&[(&str, &str)]>, ty: &str| Service {
            metadata: meta("ns", "web"),
            spec: Some(ServiceSpec {
                selector: sel.map(map),
                cluster_ip: Some("10.0.0.7".into()),
                type_: Some(ty.into()),
                ..Default::default()
            }),
            status: None,
        };
        let r = service(&svc(Some(&[("app", "web")]), "ClusterIP"));
        let mut want_sel = LabelSelector::default();
        want_sel.match_labels.insert("app", "web");
        assert_eq!(
            r.references,
            vec![Reference::to_selector(
                EdgeKind::Selects,
                Kind::Pod,
                want_sel,
                false
            )]
        );
        assert_eq!(r.status, status(Health::Ready, "Service is active"));
        assert_eq!(r.facts().cluster_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(r.facts().service_type.as_deref(), Some("ClusterIP"));
        assert!(service(&svc(Some(&[]), "ClusterIP")).references.is_empty());
        assert!(service(&svc(None, "ClusterIP")).references.is_empty());

        let mut lb = svc(None, "LoadBalancer");
        assert_eq!(service(&lb).status.health, Health::Pending);
        lb.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some("1.2.3.4".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        });
        assert_eq!(service(&lb).status.health, Health::Ready);
    }

    fn endpoint(pod: Option<&str>, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec!["10.1.0.1".into()],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            target_ref: pod.map(|p| ObjectReference {
                kind: Some("Pod".into()),
                name: Some(p.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoint_slice_references_and_readiness() {
        let mut m = meta("ns", "web-abcde");
        m.labels = Some(map(&[(SERVICE_NAME, "web")]));
        let slice = EndpointSlice {
            metadata: m,
            address_type: "IPv4".into(),
            endpoints: Some(vec![
                endpoint(Some("web-1"), None),
                endpoint(Some("web-2"), Some(false)),
                endpoint(None, Some(true)),
            ]),
            ports: None,
        };
        let r = endpoint_slice(&slice);
        let mut want = vec![
            key(EdgeKind::Endpoints, Kind::Service, "ns", "web").reversed(),
            key(EdgeKind::Targets, Kind::Pod, "ns", "web-1"),
            key(EdgeKind::Targets, Kind::Pod, "ns", "web-2"),
        ];
        want.sort();
        assert_eq!(r.references, want);
        // nil ready counts as ready: web-1 and the address without a target.
        assert_eq!(r.status, status(Health::Ready, "2 ready endpoint(s)"));

        let none = EndpointSlice {
            metadata: meta("ns", "empty"),
            address_type: "IPv4".into(),
            endpoints: Some(vec![endpoint(Some("p"), Some(false))]),
            ports: None,
        };
        assert_eq!(
            endpoint_slice(&none).status,
            status(Health::Pending, "No ready endpoints")
        );
    }

    fn backend(svc: &str) -> IngressBackend {
        IngressBackend {
            service: Some(IngressServiceBackend {
                name: svc.into(),
                port: None,
            }),
            resource: None,
        }
    }

    #[test]
    fn ingress_routes_tls_and_class() {
        let ing = Ingress {
            metadata: meta("ns", "web"),
            spec: Some(IngressSpec {
                default_backend: Some(backend("fallback")),
                ingress_class_name: Some("nginx".into()),
                rules: Some(vec![IngressRule {
                    host: Some("web.example.com".into()),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            backend: backend("web"),
                            path: Some("/".into()),
                            path_type: "Prefix".into(),
                        }],
                    }),
                }]),
                tls: Some(vec![IngressTLS {
                    hosts: None,
                    secret_name: Some("web-tls".into()),
                }]),
            }),
            status: Some(IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(vec![IngressLoadBalancerIngress {
                        hostname: Some("lb".into()),
                        ..Default::default()
                    }]),
                }),
            }),
        };
        let r = ingress(&ing);
        let mut want = vec![
            key(EdgeKind::RoutesTo, Kind::Service, "ns", "fallback"),
            key(EdgeKind::RoutesTo, Kind::Service, "ns", "web"),
            key(EdgeKind::UsesTlsSecret, Kind::Secret, "ns", "web-tls"),
            key(EdgeKind::UsesIngressClass, Kind::IngressClass, "", "nginx"),
        ];
        want.sort();
        assert_eq!(r.references, want);
        assert_eq!(r.status, status(Health::Ready, "Ingress has load balancer"));
        assert_eq!(r.facts().ingress_class.as_deref(), Some("nginx"));

        let bare = Ingress {
            metadata: meta("ns", "bare"),
            ..Default::default()
        };
        assert_eq!(
            ingress(&bare).status,
            status(Health::Pending, "Waiting for load balancer")
        );
    }

    #[test]
    fn network_policy_applies_to_pods() {
        let np = |sel: metav1::LabelSelector| NetworkPolicy {
            metadata: meta("ns", "deny"),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(sel),
                ..Default::default()
            }),
        };
        let r = network_policy(&np(metav1::LabelSelector::default()));
        assert_eq!(r.references.len(), 1);
        match &r.references[0].target {
            Target::Selector {
                kind,
                selector,
                empty_selects_all,
            } => {
                assert_eq!(kind, &Kind::Pod);
                assert!(selector.is_empty());
                assert!(empty_selects_all);
            }
            other => panic!("unexpected target {other:?}"),
        }
        let r = network_policy(&np(metav1::LabelSelector {
            match_labels: Some(map(&[("app", "web")])),
            match_expressions: None,
        }));
        assert_eq!(r.references[0].edge, EdgeKind::AppliesTo);
    }

    #[test]
    fn ingress_class_exists() {
        let ic = IngressClass {
            metadata: meta("", "nginx"),
            spec: None,
        };
        assert_eq!(ingress_class(&ic).status.message, "IngressClass exists");
    }
}
