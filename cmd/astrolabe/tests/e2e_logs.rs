//! The binary's logs while the API server is down, with its default log filter: one WARN per
//! kind when its watcher starts failing and one INFO when it recovers, however many retries; no
//! ERROR line from kube's client; the state in `/readyz` and `/metrics` meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_model::Kind;
use common::{Emulator, Server, eventually};
use serde_json::Value;

/// Whether a formatted line has the word `word` (a level, or a `field=value`).
fn has(line: &str, word: &str) -> bool {
    line.split_whitespace().any(|w| w == word)
}

/// `astrolabe_informer_errors_total` of `kind`, over every reason.
fn errors_of(metrics: &str, kind: &Kind) -> f64 {
    let label = format!("kind=\"{kind}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("astrolabe_informer_errors_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether every kind in `/readyz` has `retrying` equal to `retrying`, with an error exactly
/// while it retries.
fn every_kind(readyz: &Value, retrying: bool) -> bool {
    readyz["kinds"].as_array().is_some_and(|kinds| {
        kinds.len() == Kind::WATCHED.len()
            && kinds
                .iter()
                .all(|k| k["retrying"] == retrying && k["error"].is_null() != retrying)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_costs_one_warn_per_kind() {
    let mut emu = Emulator::start(7, 40).await;
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    server.wait_ready().await;
    let lines_before = server.log_text().lines().count();

    // Down: every kind's watcher fails and retries, three times at least.
    emu.stop_server().await;
    let readyz = server
        .wait_readyz("every kind retrying", |_, body| every_kind(body, true))
        .await;
    let error = readyz["kinds"][0]["error"].as_str().unwrap();
    assert!(!error.is_empty());
    eventually(
        "every kind retried three times",
        || server.log_tail(),
        || async {
            let metrics = server.get_text("/metrics").await;
            Kind::WATCHED
                .iter()
                .all(|k| errors_of(&metrics, k) >= 3.0)
                .then_some(())
        },
    )
    .await;
    let metrics = server.get_text("/metrics").await;
    for kind in Kind::WATCHED {
        let gauge = format!("astrolabe_informer_retrying{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&gauge), "{gauge} missing");
    }
    // The outage so far: one line per kind, not one per retry.
    let outage = server.log_text().lines().count() - lines_before;
    assert!(
        outage <= Kind::WATCHED.len() + 5,
        "{outage} lines while down:\n{}",
        server.log_text()
    );

    // Up again: every kind recovers, once.
    emu.start_server().await;
    server
        .wait_readyz("every kind recovered", |_, body| every_kind(body, false))
        .await;
    let metrics = server.get_text("/metrics").await;
    for kind in Kind::WATCHED {
        let gauge = format!("astrolabe_informer_retrying{{kind=\"{kind}\"}} 0");
        assert!(metrics.contains(&gauge), "{gauge} missing");
    }

    let text = server.log_text();
    let lines: Vec<&str> = text.lines().collect();
    let error_lines: Vec<&&str> = lines.iter().filter(|l| has(l, "ERROR")).collect();
    assert!(error_lines.is_empty(), "ERROR lines: {error_lines:#?}");
    for kind in Kind::WATCHED {
        let field = format!("kind={kind}");
        let about: Vec<&&str> = lines.iter().filter(|l| has(l, &field)).collect();
        let warns = about.iter().filter(|l| has(l, "WARN")).count();
        let recovered = about
            .iter()
            .filter(|l| l.contains("watch recovered"))
            .count();
        assert_eq!(
            (warns, recovered),
            (1, 1),
            "{kind}: WARN and recovery lines\n{text}"
        );
    }
}
