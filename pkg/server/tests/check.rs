#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `astrolabe check` on fixtures with planted faults: one per reference check kube-linter
//! documents (dangling Service, Ingress, HorizontalPodAutoscaler, NetworkPolicy and its peer
//! podSelector, ServiceMonitor; non-existent ServiceAccount) and per check of our own (missing
//! ConfigMap, Secret, claim, StorageClass, IngressClass, TLS Secret, Role; PodDisruptionBudget
//! selecting nothing; backend without Pods; unused ConfigMap and Secret). Each `bad.yaml` gives
//! exactly the findings its `expected` lists; each `good.yaml` (the same manifests, fixed)
//! gives none. The manifests go through the emulator's controllers: a Service selects the Pods
//! a Deployment's ReplicaSet makes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use astrolabe_server::check::report::{Format, render};
use astrolabe_server::check::{CheckOptions, Checked, Profile, Severity, check};
use astrolabe_server::rules::RulesConfig;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

async fn run(inputs: &[PathBuf]) -> Checked {
    let rules = astrolabe_server::check::rules(&RulesConfig {
        file: None,
        builtin: true,
    })
    .unwrap();
    let options = CheckOptions {
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        profile: Profile::Standard,
        assume: Vec::new(),
    };
    check(&options, &rules).await.unwrap()
}

fn found(checked: &Checked) -> BTreeSet<String> {
    checked
        .findings
        .iter()
        .map(|f| format!("{} {}", f.check, f.object))
        .collect()
}

#[tokio::test]
async fn each_planted_fault_is_found_and_nothing_else() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "{dirs:?}");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: BTreeSet<String> = std::fs::read_to_string(dir.join("expected"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let bad = run(&[dir.join("bad.yaml")]).await;
        if found(&bad) != expected {
            failures.push(format!(
                "{name}/bad.yaml: expected {expected:?}, found:\n{}",
                render(&bad.findings, bad.objects, Format::Text)
            ));
        }
        let good = run(&[dir.join("good.yaml")]).await;
        if !good.findings.is_empty() {
            failures.push(format!(
                "{name}/good.yaml: expected no finding, found:\n{}",
                render(&good.findings, good.objects, Format::Text)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_finding_names_its_file_line_field_edge_and_target() {
    let dir = fixtures().join("missing-references");
    let checked = run(&[dir.join("bad.yaml")]).await;
    let f = checked
        .findings
        .iter()
        .find(|f| f.message.contains("setings"))
        .expect("the misspelt ConfigMap");
    assert_eq!(f.check, "missing-reference");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.object, "Deployment/shop/shop");
    assert!(
        f.file.ends_with("missing-references/bad.yaml"),
        "{}",
        f.file
    );
    let text = std::fs::read_to_string(dir.join("bad.yaml")).unwrap();
    let line = text.lines().nth(f.line - 1).unwrap();
    assert_eq!(
        line, "apiVersion: apps/v1",
        "the line its document starts at"
    );
    assert_eq!(
        f.field,
        "spec.template.spec.containers[0].envFrom[0].configMapRef.name"
    );
    assert_eq!(f.edge.as_deref(), Some("uses-configmap"));
    assert_eq!(f.target.as_deref(), Some("ConfigMap/shop/setings"));
    // The optional reference to a missing ConfigMap is not a finding.
    assert!(
        !checked
            .findings
            .iter()
            .any(|f| f.message.contains("feature-flags")),
        "{:?}",
        checked.findings
    );
}

#[tokio::test]
async fn json_and_sarif_carry_every_finding() {
    let dir = fixtures().join("missing-role");
    let checked = run(&[dir.join("bad.yaml")]).await;
    let n = checked.findings.len();
    assert!(n >= 3);
    let json: Value =
        serde_json::from_str(&render(&checked.findings, checked.objects, Format::Json)).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), n);
    assert_eq!(json["summary"]["errors"], n);
    assert_eq!(json["summary"]["objects"], checked.objects);
    let sarif: Value =
        serde_json::from_str(&render(&checked.findings, checked.objects, Format::Sarif)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    for (result, finding) in results.iter().zip(&checked.findings) {
        assert_eq!(result["ruleId"], finding.check);
        let index = usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index], finding.check);
        assert_eq!(result["level"], "error");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], finding.file.as_str());
        assert_eq!(location["region"]["startLine"], finding.line);
    }
}

#[tokio::test]
async fn a_directory_is_read_whole_and_assumed_objects_count_as_present() {
    let dir = fixtures().join("non-existent-service-account");
    let rules = astrolabe_server::check::rules(&RulesConfig {
        file: None,
        builtin: true,
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("nested")).unwrap();
    std::fs::copy(dir.join("bad.yaml"), tmp.path().join("nested/job.yml")).unwrap();
    std::fs::write(tmp.path().join("README.md"), "not a manifest").unwrap();
    let options = |assume: Vec<String>| CheckOptions {
        inputs: vec![tmp.path().display().to_string()],
        profile: Profile::Standard,
        assume,
    };
    let checked = check(&options(Vec::new()), &rules).await.unwrap();
    assert_eq!(
        found(&checked),
        BTreeSet::from(["missing-service-account Job/default/migrate".to_owned()])
    );
    let assumed = check(
        &options(vec!["serviceaccount/default/job-runner".to_owned()]),
        &rules,
    )
    .await
    .unwrap();
    assert!(assumed.findings.is_empty(), "{:?}", assumed.findings);
    let bad = check(&options(vec!["nosuchkind/x".to_owned()]), &rules).await;
    assert!(bad.is_err_and(|e| e.reason.contains("nosuchkind")));
}

#[tokio::test]
async fn the_empty_profile_has_no_cluster_roles_or_storage_class() {
    let rules = astrolabe_server::check::rules(&RulesConfig {
        file: None,
        builtin: true,
    })
    .unwrap();
    let dir = fixtures().join("missing-role");
    let options = |profile| CheckOptions {
        inputs: vec![dir.join("good.yaml").display().to_string()],
        profile,
        assume: Vec::new(),
    };
    let standard = check(&options(Profile::Standard), &rules).await.unwrap();
    assert!(standard.findings.is_empty(), "{:?}", standard.findings);
    let empty = check(&options(Profile::Empty), &rules).await.unwrap();
    assert_eq!(
        found(&empty),
        BTreeSet::from(["missing-role ClusterRoleBinding/reader-view".to_owned()])
    );
}

#[tokio::test]
async fn an_object_in_a_namespace_nobody_creates_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("app.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: tools}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ci, namespace: tools}\n",
    )
    .unwrap();
    let checked = run(&[file]).await;
    assert_eq!(
        found(&checked),
        BTreeSet::from(["refused ConfigMap/shop/settings".to_owned()]),
        "{:?}",
        checked.findings
    );
    let refused = &checked.findings[0];
    assert!(
        refused.message.contains("namespaces \"shop\" not found"),
        "{}",
        refused.message
    );
    assert_eq!(refused.line, 1);
}
