//! The built-in pack on realistic objects of each project: the references each rule makes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use astrolabe_model::Dependency;
use astrolabe_rules::{NamespaceScope, RefTarget, RuleSet};
use common::{edges, evaluate, gk, named, sel, selected};
use serde_json::{Value, json};

fn e(edge: &str, target: RefTarget) -> (String, RefTarget) {
    (edge.to_owned(), target)
}

fn certificate() -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web-tls", "namespace": "shop"},
        "spec": {
            "secretName": "web-tls-secret",
            "dnsNames": ["shop.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256}
        }
    })
}

#[test]
fn cert_manager_certificate() {
    let rules = RuleSet::builtin();
    assert_eq!(
        edges(&evaluate(&rules, &certificate())),
        [
            e(
                "writes",
                named("", "Secret", Some("shop"), "web-tls-secret")
            ),
            e(
                "issued-by",
                named("cert-manager.io", "ClusterIssuer", None, "letsencrypt")
            ),
        ]
    );
    // issuerRef with only a name: an Issuer of the Certificate's namespace.
    let mut defaulted = certificate();
    defaulted["spec"]["issuerRef"] = json!({"name": "local-ca"});
    assert_eq!(
        edges(&evaluate(&rules, &defaulted))[1],
        e(
            "issued-by",
            named("cert-manager.io", "Issuer", Some("shop"), "local-ca")
        )
    );
    // An external issuer's group is outside the rule.
    defaulted["spec"]["issuerRef"] =
        json!({"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"});
    assert_eq!(edges(&evaluate(&rules, &defaulted)).len(), 1);
}

#[test]
fn cert_manager_ingress_annotations() {
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {
            "cert-manager.io/issuer": "shop-ca",
            "cert-manager.io/cluster-issuer": "letsencrypt",
            "kubernetes.io/ingress.class": "nginx"
        }},
        "spec": {"tls": [{"hosts": ["shop.example.com"], "secretName": "web-tls"}]}
    });
    assert_eq!(
        edges(&evaluate(&RuleSet::builtin(), &ingress)),
        [
            e(
                "issued-by",
                named("cert-manager.io", "Issuer", Some("shop"), "shop-ca")
            ),
            e(
                "issued-by",
                named("cert-manager.io", "ClusterIssuer", None, "letsencrypt")
            ),
        ]
    );
}

fn gateway() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "infra"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Terminate",
                    "certificateRefs": [
                        {"name": "edge-tls"},
                        {"kind": "Secret", "group": "", "name": "shop-tls", "namespace": "shop"}
                    ]}}
            ]
        }
    })
}

#[test]
fn gateway_api_gateway() {
    assert_eq!(
        edges(&evaluate(&RuleSet::builtin(), &gateway())),
        [
            e(
                "uses-gateway-class",
                named("gateway.networking.k8s.io", "GatewayClass", None, "istio")
            ),
            e(
                "uses-tls-secret",
                named("", "Secret", Some("infra"), "edge-tls")
            ),
            e(
                "uses-tls-secret",
                named("", "Secret", Some("shop"), "shop-tls")
            ),
        ]
    );
}

fn http_route(kind: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {
            "parentRefs": [
                {"name": "edge", "namespace": "infra", "sectionName": "https"},
                {"group": "", "kind": "Service", "name": "mesh-parent"}
            ],
            "hostnames": ["shop.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "backendRefs": [{"name": "api", "port": 8080, "weight": 90},
                                 {"name": "api-canary", "port": 8080, "weight": 10}]},
                {"backendRefs": [{"name": "web", "port": 80},
                                 {"name": "api", "port": 8080},
                                 {"kind": "ServiceImport", "group": "multicluster.x-k8s.io", "name": "remote"}]}
            ]
        }
    })
}

#[test]
fn gateway_api_routes() {
    for kind in ["HTTPRoute", "GRPCRoute"] {
        assert_eq!(
            edges(&evaluate(&RuleSet::builtin(), &http_route(kind))),
            [
                e(
                    "attaches-to",
                    named(
                        "gateway.networking.k8s.io",
                        "Gateway",
                        Some("infra"),
                        "edge"
                    )
                ),
                e("routes-to", named("", "Service", Some("shop"), "api")),
                e(
                    "routes-to",
                    named("", "Service", Some("shop"), "api-canary")
                ),
                e("routes-to", named("", "Service", Some("shop"), "web")),
            ],
            "{kind}"
        );
    }
}

fn service_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "api", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"},
                         "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]},
            "namespaceSelector": {"matchNames": ["shop", "shop-staging"]},
            "endpoints": [{"port": "metrics", "interval": "30s"}]
        }
    })
}

#[test]
fn prometheus_operator() {
    let rules = RuleSet::builtin();
    let api = sel(&[("app", "api")], &[("tier", "NotIn", &["batch"])]);
    assert_eq!(
        edges(&evaluate(&rules, &service_monitor())),
        [e(
            "monitors",
            selected(
                "",
                "Service",
                api,
                NamespaceScope::Names(vec!["shop".into(), "shop-staging".into()])
            )
        )]
    );
    let pod_monitor = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "jobs", "namespace": "batch"},
        "spec": {"selector": {"matchLabels": {"team": "batch"}},
                 "podMetricsEndpoints": [{"port": "metrics"}]}
    });
    assert_eq!(
        edges(&evaluate(&rules, &pod_monitor)),
        [e(
            "monitors",
            selected(
                "",
                "Pod",
                sel(&[("team", "batch")], &[]),
                NamespaceScope::Namespace("batch".into())
            )
        )]
    );
    let prometheus = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": "k8s", "namespace": "monitoring"},
        "spec": {"serviceAccountName": "prometheus-k8s", "replicas": 2,
                 "serviceMonitorSelector": {}}
    });
    assert_eq!(
        edges(&evaluate(&rules, &prometheus)),
        [e(
            "uses-sa",
            named("", "ServiceAccount", Some("monitoring"), "prometheus-k8s")
        )]
    );
}

fn application(server: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {
            "project": "retail",
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "deploy", "targetRevision": "main"},
            "destination": {"server": server, "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true}}
        },
        "status": {"resources": [
            {"version": "v1", "kind": "Service", "namespace": "shop", "name": "api", "status": "Synced"},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "api"},
            {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole", "name": "shop-reader"}
        ]}
    })
}

#[test]
fn argo_cd_application() {
    let rules = RuleSet::builtin();
    let refs = evaluate(&rules, &application("https://kubernetes.default.svc"));
    assert_eq!(
        edges(&refs),
        [
            e(
                "in-project",
                named("argoproj.io", "AppProject", Some("argocd"), "retail")
            ),
            e("deploys-to", named("", "Namespace", None, "shop")),
            e("manages", named("", "Service", Some("shop"), "api")),
            e("manages", named("apps", "Deployment", Some("shop"), "api")),
            e(
                "manages",
                named(
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    None,
                    "shop-reader"
                )
            ),
        ]
    );
    assert_eq!(refs[2].dependency, Dependency::TargetNeedsSource);
    // An Application deploying to another cluster points at nothing of this one but its project.
    assert_eq!(
        edges(&evaluate(
            &rules,
            &application("https://prod.example.com:6443")
        )),
        [e(
            "in-project",
            named("argoproj.io", "AppProject", Some("argocd"), "retail")
        )]
    );
    let mut by_name = application("");
    by_name["spec"]["destination"] = json!({"name": "in-cluster", "namespace": "shop"});
    assert_eq!(evaluate(&rules, &by_name).len(), 5);
}

#[test]
fn keda_scaled_object_and_job() {
    let rules = RuleSet::builtin();
    let scaled = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "worker", "namespace": "jobs"},
        "spec": {
            "scaleTargetRef": {"name": "worker"},
            "minReplicaCount": 0,
            "triggers": [
                {"type": "rabbitmq", "metadata": {"queueName": "q"}, "authenticationRef": {"name": "rabbit-auth"}},
                {"type": "aws-sqs-queue", "authenticationRef": {"name": "aws", "kind": "ClusterTriggerAuthentication"}},
                {"type": "cpu", "metadata": {"value": "60"}}
            ]
        }
    });
    assert_eq!(
        edges(&evaluate(&rules, &scaled)),
        [
            e(
                "scales",
                named("apps", "Deployment", Some("jobs"), "worker")
            ),
            // Sorted within a rule.
            e(
                "uses-trigger-auth",
                named("keda.sh", "ClusterTriggerAuthentication", None, "aws")
            ),
            e(
                "uses-trigger-auth",
                named(
                    "keda.sh",
                    "TriggerAuthentication",
                    Some("jobs"),
                    "rabbit-auth"
                )
            ),
        ]
    );
    let mut rollout = scaled.clone();
    rollout["spec"]["scaleTargetRef"] =
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "worker"});
    assert_eq!(
        edges(&evaluate(&rules, &rollout))[0],
        e(
            "scales",
            named("argoproj.io", "Rollout", Some("jobs"), "worker")
        )
    );
    let job = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": "batch", "namespace": "jobs"},
        "spec": {"jobTargetRef": {"template": {}},
                 "triggers": [{"type": "redis", "authenticationRef": {"name": "redis-auth"}}]}
    });
    assert_eq!(
        edges(&evaluate(&rules, &job)),
        [e(
            "uses-trigger-auth",
            named(
                "keda.sh",
                "TriggerAuthentication",
                Some("jobs"),
                "redis-auth"
            )
        )]
    );
}

#[test]
fn external_secrets() {
    let rules = RuleSet::builtin();
    let es = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "db-credentials", "namespace": "shop"},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
            "target": {"name": "db", "creationPolicy": "Owner"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "shop/db", "property": "password"}}]
        }
    });
    assert_eq!(
        edges(&evaluate(&rules, &es)),
        [
            e(
                "uses-secret-store",
                named("external-secrets.io", "ClusterSecretStore", None, "vault")
            ),
            e("writes", named("", "Secret", Some("shop"), "db")),
        ]
    );
    let mut defaulted = es.clone();
    defaulted["spec"]["secretStoreRef"] = json!({"name": "shop-vault"});
    defaulted["spec"]["target"] = json!({"creationPolicy": "Owner"});
    assert_eq!(
        edges(&evaluate(&rules, &defaulted)),
        [
            e(
                "uses-secret-store",
                named(
                    "external-secrets.io",
                    "SecretStore",
                    Some("shop"),
                    "shop-vault"
                )
            ),
            e(
                "writes",
                named("", "Secret", Some("shop"), "db-credentials")
            ),
        ]
    );
}

#[test]
fn istio_virtual_service() {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {
            "hosts": ["reviews.example.com"],
            "gateways": ["mesh", "istio-system/public", "internal"],
            "http": [
                {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"route": [{"destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "v1"}, "weight": 75},
                           {"destination": {"host": "ratings.other"}, "weight": 25}]}
            ],
            "tcp": [{"route": [{"destination": {"host": "mongo.db.svc.cluster.local", "port": {"number": 27017}}}]}],
            "tls": [{"match": [{"sniHosts": ["x.example.com"]}], "route": [{"destination": {"host": "x-backend"}}]}]
        }
    });
    assert_eq!(
        edges(&evaluate(&RuleSet::builtin(), &vs)),
        [
            e(
                "routes-to",
                named("", "Service", Some("bookinfo"), "reviews")
            ),
            e("routes-to", named("", "Service", Some("other"), "ratings")),
            e("routes-to", named("", "Service", Some("db"), "mongo")),
            e(
                "routes-to",
                named("", "Service", Some("bookinfo"), "x-backend")
            ),
            e(
                "attaches-to",
                named(
                    "networking.istio.io",
                    "Gateway",
                    Some("bookinfo"),
                    "internal"
                )
            ),
            e(
                "attaches-to",
                named(
                    "networking.istio.io",
                    "Gateway",
                    Some("istio-system"),
                    "public"
                )
            ),
        ]
    );
}

#[test]
fn every_builtin_rule_is_exercised_by_these_objects() {
    let rules = RuleSet::builtin();
    let mut objects = vec![
        certificate(),
        gateway(),
        http_route("HTTPRoute"),
        service_monitor(),
        application("https://kubernetes.default.svc"),
    ];
    objects.extend(common::one_object_per_builtin_kind());
    let used: BTreeSet<String> = objects
        .iter()
        .flat_map(|o| evaluate(&rules, o))
        .map(|r| r.rule.to_string())
        .collect();
    let all: BTreeSet<String> = rules.rules().iter().map(|r| r.name.to_string()).collect();
    assert_eq!(used, all);
    for rule in rules.rules() {
        assert!(
            !rule.description.is_empty(),
            "{} has no description",
            rule.name
        );
    }
}

#[test]
fn builtin_kinds_and_paths() {
    let rules = RuleSet::builtin();
    let kinds = rules.kinds();
    for k in [
        gk("cert-manager.io", "Certificate"),
        gk("networking.k8s.io", "Ingress"),
        gk("gateway.networking.k8s.io", "Gateway"),
        gk("gateway.networking.k8s.io", "HTTPRoute"),
        gk("gateway.networking.k8s.io", "GRPCRoute"),
        gk("monitoring.coreos.com", "ServiceMonitor"),
        gk("monitoring.coreos.com", "PodMonitor"),
        gk("monitoring.coreos.com", "Prometheus"),
        gk("argoproj.io", "Application"),
        gk("keda.sh", "ScaledObject"),
        gk("keda.sh", "ScaledJob"),
        gk("external-secrets.io", "ExternalSecret"),
        gk("networking.istio.io", "VirtualService"),
    ] {
        assert!(kinds.contains(&k), "{k}");
    }
    assert_eq!(kinds.len(), 13);
    let paths: Vec<String> = rules
        .paths("external-secrets.io", "ExternalSecret")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        paths,
        ["spec.secretStoreRef", "spec.target.name", "metadata.name"]
    );
    let paths: Vec<String> = rules
        .paths("argoproj.io", "Application")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        paths,
        [
            "spec.project",
            "spec.destination.namespace",
            "spec.destination.server",
            "spec.destination.name",
            "status.resources[*]",
        ]
    );
    let paths: Vec<String> = rules
        .paths("monitoring.coreos.com", "ServiceMonitor")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(paths, ["spec.selector", "spec.namespaceSelector"]);
    assert!(rules.paths("", "Pod").is_empty());
}
