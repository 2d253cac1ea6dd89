//! Custom resources added to a generated cluster: cert-manager Issuers, ClusterIssuers and
//! Certificates (with the TLS Secrets they write), a Gateway API GatewayClass, Gateways and
//! HTTPRoutes, and Prometheus Operator ServiceMonitors, each with the `spec` the rules read.
//!
//! A custom resource's references are what the built-in rule pack
//! ([`RuleSet::builtin`]) derives from its JSON ([`object_json`]): the rules are the only
//! description of which field names what.

use std::collections::{BTreeMap, HashMap};

use astrolabe_model::well_known::{HELM_CHART, MANAGED_BY};
use astrolabe_model::{Kind, KindInfo, Reference, Resource, Str, Uid};
use astrolabe_rules::RuleSet;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::{Gen, labels, ready};

/// One custom kind as its CustomResourceDefinition serves it.
struct CustomKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

impl CustomKind {
    fn kind(&self) -> Kind {
        Kind::discovered(&KindInfo {
            kind: self.kind.into(),
            group: self.group.into(),
            version: self.version.into(),
            plural: self.plural.into(),
            namespaced: self.namespaced,
        })
    }
}

const fn crd(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> CustomKind {
    CustomKind {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

const CERT_MANAGER: &str = "cert-manager.io";
const GATEWAY_API: &str = "gateway.networking.k8s.io";
const MONITORING: &str = "monitoring.coreos.com";

const CLUSTER_ISSUER: CustomKind =
    crd(CERT_MANAGER, "v1", "ClusterIssuer", "clusterissuers", false);
const ISSUER: CustomKind = crd(CERT_MANAGER, "v1", "Issuer", "issuers", true);
const CERTIFICATE: CustomKind = crd(CERT_MANAGER, "v1", "Certificate", "certificates", true);
const GATEWAY_CLASS: CustomKind = crd(GATEWAY_API, "v1", "GatewayClass", "gatewayclasses", false);
const GATEWAY: CustomKind = crd(GATEWAY_API, "v1", "Gateway", "gateways", true);
const HTTP_ROUTE: CustomKind = crd(GATEWAY_API, "v1", "HTTPRoute", "httproutes", true);
const SERVICE_MONITOR: CustomKind =
    crd(MONITORING, "v1", "ServiceMonitor", "servicemonitors", true);

/// Every custom kind the generator makes objects of.
const KINDS: [&CustomKind; 7] = [
    &CLUSTER_ISSUER,
    &ISSUER,
    &CERTIFICATE,
    &GATEWAY_CLASS,
    &GATEWAY,
    &HTTP_ROUTE,
    &SERVICE_MONITOR,
];

/// The custom kinds [`crate::generate_with`] makes objects of, with the group, version, plural
/// and scope of their upstream CustomResourceDefinitions.
pub fn custom_kinds() -> Vec<Kind> {
    KINDS.iter().map(|k| k.kind()).collect()
}

/// The ClusterIssuer the Gateways' Certificates are issued by.
const ACME_ISSUER: &str = "letsencrypt-prod";
/// The GatewayClass every Gateway uses.
const GATEWAY_CLASS_NAME: &str = "envoy";
/// The namespace of the cluster-wide ServiceMonitors.
const MONITORING_NAMESPACE: &str = "monitoring";
/// The Gateway of every application namespace.
const GATEWAY_NAME: &str = "web";
/// Share of applications routed through their namespace's Gateway.
const ROUTED: f64 = 0.3;
/// Share of applications with a Certificate of their own (from the namespace's Issuer).
const CERTIFIED: f64 = 0.2;
/// Share of applications with a ServiceMonitor of their own.
const MONITORED: f64 = 0.2;

/// The JSON a custom resource is served as, as far as the rules read it: type fields,
/// name, namespace and labels, and `spec`.
pub fn object_json(res: &Resource, spec: &Value) -> Value {
    let mut metadata = json!({"name": res.name.as_str()});
    if res.kind.is_namespaced() {
        metadata["namespace"] = json!(res.namespace.as_str());
    }
    if !res.labels.is_empty() {
        let labels: Map<String, Value> = res
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        metadata["labels"] = Value::Object(labels);
    }
    json!({
        "apiVersion": res.kind.api_version(),
        "kind": res.kind.as_str(),
        "metadata": metadata,
        "spec": spec,
    })
}

/// The references `rules` derive from `object`, the JSON of `res` (its kind and namespace
/// say which rules apply and where the source lives), as the model's references.
pub fn rule_references(rules: &RuleSet, res: &Resource, object: &Value) -> Vec<Reference> {
    let ns = res.kind.is_namespaced().then_some(res.namespace.as_str());
    rules
        .evaluate(res.kind.group(), res.kind.as_str(), ns, object)
        .iter()
        .filter_map(|rr| rr.to_reference(ns.unwrap_or_default()))
        .collect()
}

/// A Service of the generated cluster that custom resources point at.
struct App {
    name: Str,
    chart: Option<Str>,
}

/// Adds the custom resources to `g`'s cluster; returns each one's `spec` by UID.
pub(crate) fn add(g: &mut Gen) -> HashMap<Uid, Value> {
    let rules = RuleSet::builtin();
    // The pack's edge names are valid and direction-consistent (checked by its own tests); a
    // name a caller declared otherwise would only leave its references out, which the
    // generator's tests would show.
    let _ = rules.declare_edges();
    let mut apps: BTreeMap<Str, Vec<App>> = BTreeMap::new();
    for r in &g.out {
        if r.kind == Kind::Service && r.labels.get(MANAGED_BY) == Some("Helm") {
            apps.entry(r.namespace.clone()).or_default().push(App {
                name: r.name.clone(),
                chart: r.labels.get(HELM_CHART).map(Str::from),
            });
        }
    }
    let mut c = Custom {
        g,
        rules,
        specs: HashMap::new(),
    };
    c.cluster_wide(apps.keys().take(2).cloned().collect());
    for (ns, apps) in &apps {
        c.namespace(ns, apps);
    }
    c.specs
}

struct Custom<'a> {
    g: &'a mut Gen,
    rules: RuleSet,
    specs: HashMap<Uid, Value>,
}

impl Custom<'_> {
    /// Adds one custom object with `spec`; its references are the rules' evaluation of it.
    fn push(&mut self, spec: Value, mut r: Resource) {
        r.references = rule_references(&self.rules, &r, &object_json(&r, &spec));
        let (uid, _) = self.g.push(r);
        self.specs.insert(uid, spec);
    }

    fn object(&mut self, kind: &CustomKind, ns: &str, name: &str, message: &str) -> Resource {
        let ns = if kind.namespaced { ns } else { "" };
        let mut r = self.g.object(kind.kind(), ns, name);
        r.status = ready(message);
        r
    }

    fn add(&mut self, kind: &CustomKind, ns: &str, name: &str, message: &str, spec: Value) {
        let r = self.object(kind, ns, name, message);
        self.push(spec, r);
    }

    /// Adds an application's custom object, labelled and annotated as part of its Helm release.
    fn add_for(&mut self, app: &App, kind: &CustomKind, ns: &str, name: &str, spec: Value) {
        let mut r = self.object(kind, ns, name, &format!("{} is ready", kind.kind));
        if let Some(chart) = &app.chart {
            Gen::helm(&mut r, &app.name, ns, chart);
        }
        r.labels.insert("app.kubernetes.io/name", app.name.as_str());
        self.push(spec, r);
    }

    /// The TLS Secret a Certificate writes.
    fn tls_secret(&mut self, ns: &str, name: &str, certificate: &str) {
        let mut s = self.g.object(Kind::Secret, ns, name);
        s.status = ready("Secret exists");
        s.annotations
            .insert("cert-manager.io/certificate-name", certificate);
        s.labels = labels(&[("controller.cert-manager.io/fao", "true")]);
        self.g.push(s);
    }

    /// ClusterIssuers, the GatewayClass and the `monitoring` namespace with ServiceMonitors that
    /// select Services in every namespace and in `teams`.
    fn cluster_wide(&mut self, teams: Vec<Str>) {
        self.add(
            &CLUSTER_ISSUER,
            "",
            ACME_ISSUER,
            "The ACME account was registered with the ACME server",
            json!({"acme": {
                "server": "https://acme-v02.api.letsencrypt.org/directory",
                "email": "platform@example.com",
                "privateKeySecretRef": {"name": "letsencrypt-prod-account-key"},
                "solvers": [{"http01": {"gatewayHTTPRoute": {}}}],
            }}),
        );
        self.add(
            &CLUSTER_ISSUER,
            "",
            "selfsigned",
            "Issuer is ready",
            json!({"selfSigned": {}}),
        );
        self.add(
            &GATEWAY_CLASS,
            "",
            GATEWAY_CLASS_NAME,
            "Handled by Envoy Gateway controller",
            json!({"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}),
        );
        self.g.namespace(MONITORING_NAMESPACE);
        let helm_services = json!({"matchLabels": {MANAGED_BY: "Helm"}});
        let endpoints = json!([{"port": "http", "interval": "30s", "path": "/metrics"}]);
        self.add(
            &SERVICE_MONITOR,
            MONITORING_NAMESPACE,
            "helm-releases",
            "ServiceMonitor exists",
            json!({
                "selector": helm_services,
                "namespaceSelector": {"any": true},
                "endpoints": endpoints,
            }),
        );
        let names: Vec<&str> = teams.iter().map(Str::as_str).collect();
        self.add(
            &SERVICE_MONITOR,
            MONITORING_NAMESPACE,
            "first-teams",
            "ServiceMonitor exists",
            json!({
                "selector": {"matchExpressions": [
                    {"key": "app.kubernetes.io/instance", "operator": "Exists"},
                ]},
                "namespaceSelector": {"matchNames": names},
                "endpoints": endpoints,
            }),
        );
    }

    /// An Issuer, a Gateway with its Certificate and Secret, a ServiceMonitor of the namespace's
    /// Helm Services, and per application (by chance) an HTTPRoute, a Certificate with its
    /// Secret, and a ServiceMonitor.
    fn namespace(&mut self, ns: &str, apps: &[App]) {
        self.add(
            &ISSUER,
            ns,
            "team-ca",
            "Issuer is ready",
            json!({"selfSigned": {}}),
        );
        let gateway_tls = "gateway-tls";
        let wildcard = format!("*.{ns}.example.com");
        self.add(
            &CERTIFICATE,
            ns,
            gateway_tls,
            "Certificate is up to date and has not expired",
            json!({
                "secretName": gateway_tls,
                "dnsNames": [wildcard],
                "issuerRef": {"name": ACME_ISSUER, "kind": "ClusterIssuer", "group": CERT_MANAGER},
            }),
        );
        self.tls_secret(ns, gateway_tls, gateway_tls);
        self.add(
            &GATEWAY,
            ns,
            GATEWAY_NAME,
            "Gateway is programmed",
            json!({
                "gatewayClassName": GATEWAY_CLASS_NAME,
                "listeners": [
                    {"name": "http", "port": 80, "protocol": "HTTP"},
                    {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": wildcard,
                     "tls": {"mode": "Terminate",
                             "certificateRefs": [{"kind": "Secret", "name": gateway_tls}]}},
                ],
            }),
        );
        self.add(
            &SERVICE_MONITOR,
            ns,
            "helm-services",
            "ServiceMonitor exists",
            json!({
                "selector": {"matchLabels": {MANAGED_BY: "Helm"}},
                "endpoints": [{"port": "http", "interval": "60s"}],
            }),
        );
        for app in apps {
            let name = app.name.as_str();
            if self.g.rng.random_bool(ROUTED) {
                self.add_for(
                    app,
                    &HTTP_ROUTE,
                    ns,
                    name,
                    json!({
                        "parentRefs": [{"name": GATEWAY_NAME, "sectionName": "https"}],
                        "hostnames": [format!("{name}.{ns}.example.com")],
                        "rules": [{
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [{"name": name, "port": 80}],
                        }],
                    }),
                );
            }
            if self.g.rng.random_bool(CERTIFIED) {
                let cert = format!("{name}-internal");
                let secret = format!("{cert}-tls");
                self.add_for(
                    app,
                    &CERTIFICATE,
                    ns,
                    &cert,
                    json!({
                        "secretName": secret,
                        "dnsNames": [format!("{name}.{ns}.svc.cluster.local")],
                        "issuerRef": {"name": "team-ca"},
                    }),
                );
                self.tls_secret(ns, &secret, &cert);
            }
            if self.g.rng.random_bool(MONITORED) {
                self.add_for(
                    app,
                    &SERVICE_MONITOR,
                    ns,
                    name,
                    json!({
                        "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                        "endpoints": [{"port": "http", "interval": "15s"}],
                    }),
                );
            }
        }
    }
}
