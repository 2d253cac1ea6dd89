//! `astrolabe check` on a 1,000-object manifest set (target ≤ 1 s): 50 applications of 20
//! objects each (Namespace, ServiceAccount, ConfigMaps, Secrets, a Deployment and a StatefulSet
//! with claim templates, Services, an Ingress, an HPA, a PDB, NetworkPolicies, a Role and its
//! binding), checked end to end as the command does it: parsed, applied to the emulator, settled
//! by its controllers into ReplicaSets, Pods, EndpointSlices and claims, made a graph, and
//! searched for findings. The baseline in the same run is parsing the manifests alone.
//!
//! `cargo bench -p astrolabe-server --bench check`. Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use astrolabe_server::check::{CheckOptions, Profile, check, load};
use astrolabe_server::rules::RulesConfig;
use astrolabe_testkit::bench::{Versus, figure};

const APPS: usize = 50;
const ROUNDS: usize = 5;
const TARGET_MS: f64 = 1_000.0;

/// One application's 20 objects, in namespace `app-<i>`.
fn app(i: usize, out: &mut String) {
    let ns = format!("app-{i}");
    let _ = write!(
        out,
        r"---
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: web, namespace: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: {ns}}}
data: {{LEVEL: info}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: db-config, namespace: {ns}}}
data: {{max_connections: '100'}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-password, namespace: {ns}}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-tls, namespace: {ns}}}
type: kubernetes.io/tls
data: {{tls.crt: '', tls.key: ''}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, tier: front}}}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: web:1
        ports: [{{containerPort: 8080, name: http}}]
        envFrom: [{{configMapRef: {{name: web-config}}}}]
        env: [{{name: DB_PASSWORD, valueFrom: {{secretKeyRef: {{name: db-password, key: password}}}}}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
      - name: db
        image: postgres:16
        volumeMounts: [{{name: data, mountPath: /var/lib/postgresql}}, {{name: conf, mountPath: /etc/db}}]
      volumes: [{{name: conf, configMap: {{name: db-config}}}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {ns}}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{port: 5432}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: {ns}}}
spec:
  tls: [{{hosts: [{ns}.example.com], secretName: web-tls}}]
  rules:
  - host: {ns}.example.com
    http:
      paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 2
  maxReplicas: 6
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {ns}}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: web}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: db-from-web, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: db}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web-from-anywhere, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress: [{{}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: config-reader, namespace: {ns}}}
rules: [{{apiGroups: [''], resources: [configmaps], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: web-reads-config, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}}
subjects: [{{kind: ServiceAccount, name: web, namespace: {ns}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: dashboards, namespace: {ns}}}
data: {{a: b}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: web-views, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}
subjects: [{{kind: ServiceAccount, name: web, namespace: {ns}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: ops, namespace: {ns}}}
"
    );
}

fn main() -> Result<()> {
    let mut text = String::new();
    for i in 0..APPS {
        app(i, &mut text);
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("apps.yaml");
    std::fs::write(&file, &text)?;
    let inputs = vec![file.display().to_string()];
    let objects = load::load(&inputs)?.len();
    if objects != APPS * 20 {
        bail!("{objects} objects generated, expected {}", APPS * 20);
    }
    let rules = astrolabe_server::check::rules(&RulesConfig {
        file: None,
        builtin: true,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = CheckOptions {
        inputs: inputs.clone(),
        profile: Profile::Standard,
        assume: Vec::new(),
    };
    let mut check_ms = Vec::new();
    let mut parse_ms = Vec::new();
    let mut findings = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let _ = load::load(&inputs)?;
        parse_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let checked = runtime.block_on(check(&options, &rules))?;
        check_ms.push(started.elapsed().as_secs_f64() * 1e3);
        findings = checked.findings.len();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (check, parse) = (median(&mut check_ms), median(&mut parse_ms));
    println!(
        "check: {objects} objects in {APPS} applications, {findings} findings (the unused \
         ConfigMap of each); median of {ROUNDS}"
    );
    figure("check/parse_1000_objects_ms", parse, "ms", None);
    figure(
        "check/check_1000_objects_ms",
        check,
        "ms",
        Some(Versus {
            ratio: check / parse,
            baseline: "parsing the manifests alone",
            target: "<= 1000 ms",
            met: check <= TARGET_MS,
        }),
    );
    if findings != APPS {
        bail!("{findings} findings, expected {APPS} (one unused ConfigMap per application)");
    }
    if check > TARGET_MS {
        std::process::exit(1);
    }
    Ok(())
}
