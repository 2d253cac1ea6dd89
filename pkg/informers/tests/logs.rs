#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Logs while the API server is down or refuses a kind: one WARN per kind and state change, no
//! ERROR, however many retries and watchers (one per namespace); the state shows in the sync
//! status and the metrics.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use astrolabe_informers::{KUBE_LOG_DIRECTIVES, SyncStatus};
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::Kind;
use common::{Harness, eventually};

/// Every formatted log line, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Whether a formatted line has the word `word` (a level, or a `field=value`).
fn has(line: &str, word: &str) -> bool {
    line.split_whitespace().any(|w| w == word)
}

/// Errors seen so far for `kind`.
fn errors(status: &SyncStatus, kind: &Kind) -> u64 {
    let name = kind.to_string();
    status
        .report()
        .into_iter()
        .find(|r| r.kind == name)
        .map_or(0, |r| r.errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_warn_per_kind_and_state_change_and_no_error() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "info,{KUBE_LOG_DIRECTIVES}"
        )))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = Sim::new(SimConfig::default());
    sim.fail_kind("Secret", 403).unwrap();
    let kinds: Vec<Kind> = Kind::WATCHED.to_vec();
    // Namespaced kinds are watched in two namespaces: two watchers, still one line per kind.
    let mut h = Harness::start_down(sim, &kinds, &["default", "kube-system"]).await;

    // The API server is down: every kind retries, several times.
    let status = h.status.clone();
    eventually(60, "every kind retried three times", move || {
        let report = status.report();
        report.len() == Kind::WATCHED.len() && report.iter().all(|r| r.errors >= 3)
    })
    .await;
    for r in h.status.report() {
        assert!(r.retrying && r.last_error.is_some(), "{r:?}");
    }
    let metrics = h.metrics_text();
    assert!(
        metrics.contains(r#"astrolabe_informer_retrying{kind="Pod"} 1"#),
        "{metrics}"
    );

    // It answers, but refuses Secrets: every other kind lists; Secrets retry, refused.
    h.emulator.start_server().await;
    let others: Vec<Kind> = kinds
        .iter()
        .filter(|k| **k != Kind::Secret)
        .cloned()
        .collect();
    h.until_listed(&others).await;
    let status = h.status.clone();
    eventually(
        60,
        "every other kind listed in every namespace",
        move || {
            others
                .iter()
                .all(|k| status.is_listed(k) && !status.is_retrying(k))
        },
    )
    .await;
    let refused_from = errors(&h.status, &Kind::Secret) + 2;
    let status = h.status.clone();
    eventually(90, "Secrets refused twice more", move || {
        status.is_forbidden(&Kind::Secret) && errors(&status, &Kind::Secret) >= refused_from
    })
    .await;
    let pod = h
        .status
        .report()
        .into_iter()
        .find(|r| r.kind == "Pod")
        .unwrap();
    assert!(!pod.retrying && pod.last_error.is_none(), "{pod:?}");
    assert!(
        h.metrics_text()
            .contains(r#"astrolabe_informer_retrying{kind="Pod"} 0"#)
    );

    // Access granted: Secrets list too.
    h.sim.clear_failure("Secret").unwrap();
    h.until_listed(&[Kind::Secret]).await;
    let status = h.status.clone();
    eventually(60, "Secrets listed in every namespace", move || {
        status.is_listed(&Kind::Secret) && !status.is_retrying(&Kind::Secret)
    })
    .await;

    let lines = captured.lines();
    let all = lines.join("\n");
    let error_lines: Vec<&String> = lines.iter().filter(|l| has(l, "ERROR")).collect();
    assert!(error_lines.is_empty(), "ERROR lines: {error_lines:#?}");
    for kind in &kinds {
        let field = format!("kind={kind}");
        let about: Vec<&String> = lines.iter().filter(|l| has(l, &field)).collect();
        let warns = about.iter().filter(|l| has(l, "WARN")).count();
        // Unreachable; then, for Secrets, refused.
        let changes = if *kind == Kind::Secret { 2 } else { 1 };
        assert_eq!(
            warns, changes,
            "{kind}: WARN lines over several retries\n{all}"
        );
        assert!(
            about.iter().any(|l| l.contains("watch recovered")),
            "{kind}: no recovery line\n{all}"
        );
    }
}
