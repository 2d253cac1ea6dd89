#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `astrolabe check` as a user runs it: the real binary on files, a directory and stdin, its
//! output formats and its exit codes (0 clean, 1 findings at or above `--fail-on`, 2 bad input
//! named with its file and line).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../pkg/server/tests/fixtures/check")
        .join(name)
        .join(file)
}

fn check(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_astrolabe"))
        .arg("check")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn clean_manifests_exit_0_and_findings_exit_1() {
    let good = fixture("missing-references", "good.yaml");
    let out = check(&[good.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no findings"));
    assert!(out.stderr.is_empty(), "no log lines: {}", text(&out.stderr));

    let bad = fixture("missing-references", "bad.yaml");
    let out = check(&[bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}:35: error: Deployment/shop/shop",
            bad.display()
        )),
        "{stdout}"
    );
}

#[test]
fn fail_on_sets_the_severity_that_fails() {
    // Only warnings (a PodDisruptionBudget that selects nothing).
    let bad = fixture("pdb-selects-nothing", "bad.yaml");
    let path = bad.to_str().unwrap();
    assert_eq!(check(&[path], None).status.code(), Some(1));
    assert_eq!(
        check(&["--fail-on", "error", path], None).status.code(),
        Some(0)
    );
    // Only infos (unused ConfigMaps and Secrets) fail only with --fail-on info.
    let unused = fixture("unused-configmap-and-secret", "bad.yaml");
    let path = unused.to_str().unwrap();
    assert_eq!(check(&[path], None).status.code(), Some(0));
    assert_eq!(
        check(&["--fail-on", "info", path], None).status.code(),
        Some(1)
    );
}

#[test]
fn stdin_is_read_with_a_dash_and_json_and_sarif_parse() {
    let bytes = std::fs::read(fixture("missing-role", "bad.yaml")).unwrap();
    let out = check(&["-o", "json", "-"], Some(&bytes));
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3, "{json:#}");
    assert!(findings.iter().all(|f| f["file"] == "<stdin>"));
    let out = check(&["-o", "sarif", "-"], Some(&bytes));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 3);
}

#[test]
fn a_malformed_document_exits_2_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: [\n",
    )
    .unwrap();
    let out = check(&[dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:", file.display())),
        "names the file: {stderr}"
    );
    let line: usize = stderr
        .split(&format!("{}:", file.display()))
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("names the line: {stderr}"));
    assert!((5..=8).contains(&line), "{stderr}");
    assert!(out.stdout.is_empty());
    let missing = check(&["/no/such/file.yaml"], None);
    assert_eq!(missing.status.code(), Some(2));
}
