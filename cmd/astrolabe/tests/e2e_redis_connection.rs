//! Redis connection settings end to end: the real binary against a real redis-server serving
//! TLS with a CA made by the test (mutual TLS), a bad CA file refused at start-up, and a wrong
//! password and a refused server certificate named in readiness while queries go on being
//! served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, PersistMetrics, RedisConfig, RedisLog, RedisTarget, RedisTls, read_state,
};
use astrolabe_testkit::{RedisServer, TestPki};
use common::{Emulator, Server, Sets, eventually};
use serde_json::json;

const CLUSTER: &str = "e2e-conn";

/// The persisted state (snapshot + stream) as a graph, read over `target`.
async fn persisted(target: &RedisTarget) -> Option<Sets> {
    let log = RedisLog::new(&RedisConfig::new(target.connection_info().ok()?, CLUSTER)).ok()?;
    let metrics = PersistMetrics::unregistered().unwrap();
    let state = read_state(
        &log,
        &astrolabe_server::decoder::DECODER,
        DEFAULT_REPLAY_PAGE,
        &metrics,
    )
    .await
    .ok()?;
    Some(Sets::of(&astrolabe_server::recovery::rebuild(state)))
}

/// The binary with persistence to the Redis at `url` under [`CLUSTER`], and `extra` flags.
fn start(emu: &Emulator, logs: &std::path::Path, url: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--enable-persistence",
        "--cluster-name",
        CLUSTER,
        "--redis-url",
        url,
    ];
    args.extend_from_slice(extra);
    Server::start(&emu.kubeconfig(), logs, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_over_mutual_tls_with_a_private_ca() {
    let pki = TestPki::generate().unwrap();
    let redis = RedisServer::start_tls(&pki, true).unwrap();
    let url = redis.tls_url().unwrap();
    let emu = Emulator::start(5, 60).await;
    let logs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (
        pki.path(TestPki::CA),
        pki.path(TestPki::CLIENT_CERT),
        pki.path(TestPki::CLIENT_KEY),
    );
    let server = start(
        &emu,
        logs.path(),
        &url,
        &[
            "--redis-ca-file",
            ca.to_str().unwrap(),
            "--redis-client-cert",
            cert.to_str().unwrap(),
            "--redis-client-key",
            key.to_str().unwrap(),
        ],
    );
    let ready = server.wait_ready().await;
    assert_eq!(ready["persistence"]["connected"], true, "{ready}");
    assert_eq!(ready["persistence"]["detail"], serde_json::Value::Null);

    // A change made now lands in the stream: what Redis holds equals what is served.
    let made = emu
        .sim
        .create("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-tls", "namespace": "default"}}))
        .unwrap();
    let uid = made["metadata"]["uid"].as_str().unwrap().to_owned();
    let target = RedisTarget {
        url: Some(url),
        tls: RedisTls {
            ca_file: Some(ca),
            client_cert: Some(cert),
            client_key: Some(key),
            insecure: false,
        },
        ..RedisTarget::default()
    };
    eventually(
        "the new ConfigMap is persisted and Redis holds what is served",
        || server.log_tail(),
        || async {
            let stored = persisted(&target).await?;
            (stored.nodes.contains(&uid) && stored == server.sets().await).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_file_stops_the_start_naming_the_file() {
    let pki = TestPki::generate().unwrap();
    let emu = Emulator::start(5, 10).await;
    let logs = tempfile::tempdir().unwrap();
    let not_pem = pki.dir().join("not-a-ca.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let missing = pki.dir().join("missing-ca.pem");
    for file in [&not_pem, &missing] {
        let mut server = start(
            &emu,
            logs.path(),
            "rediss://127.0.0.1:1/",
            &["--redis-ca-file", file.to_str().unwrap()],
        );
        let status = server.exit_status().await;
        let log = server.log_text();
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains(file.to_str().unwrap()), "{log}");
        assert!(log.contains("redis CA file"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_named_in_readiness_and_queries_go_on() {
    let redis = RedisServer::start().unwrap();
    redis.require_password("the-right-one").unwrap();
    let emu = Emulator::start(5, 60).await;
    let logs = tempfile::tempdir().unwrap();
    let server = start(
        &emu,
        logs.path(),
        &redis.url(),
        &["--redis-password", "a-wrong-one"],
    );
    let body = server
        .wait_readyz("readiness names the authentication failure", |_, b| {
            b["persistence"]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("redis authentication failed (WRONGPASS)"))
        })
        .await;
    assert_eq!(body["persistence"]["connected"], false, "{body}");
    assert!(
        body["persistence"]["detail"]
            .as_str()
            .unwrap()
            .contains("REDIS_PASSWORD"),
        "{body}"
    );
    // Queries are served from memory all along.
    server.wait_ready().await;
    server
        .wait_graph("the graph equals the emulator", || Sets::of(&emu.truth()))
        .await;
    let log = server.log_text();
    assert!(
        log.contains("redis authentication failed (WRONGPASS)"),
        "{log}"
    );
    assert!(!log.contains("redis unreachable"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_server_certificate_is_named_in_readiness_and_the_logs() {
    let pki = TestPki::generate().unwrap();
    let redis = RedisServer::start_tls(&pki, false).unwrap();
    let url = redis.tls_url().unwrap();
    let emu = Emulator::start(5, 60).await;
    let logs = tempfile::tempdir().unwrap();
    // No --redis-ca-file: the private CA's certificate is not trusted.
    let server = start(&emu, logs.path(), &url, &[]);
    let body = server
        .wait_readyz("readiness names the refused certificate", |_, b| {
            b["persistence"]["detail"].as_str().is_some_and(|d| {
                d.starts_with("redis unreachable (") && d.contains("UnknownIssuer")
            })
        })
        .await;
    assert_eq!(body["persistence"]["connected"], false, "{body}");
    server.wait_ready().await;
    server
        .wait_graph("the graph equals the emulator", || Sets::of(&emu.truth()))
        .await;
    let log = server.log_text();
    assert!(log.contains("UnknownIssuer"), "{log}");
}
