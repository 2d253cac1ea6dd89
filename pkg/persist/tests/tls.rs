#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `rediss://` against a real redis-server serving TLS with certificates of a CA made by the
//! test: the CA file makes the connection work, its absence fails it with a certificate error
//! (in bounded time), mutual TLS needs the client certificate, and the insecure switch skips
//! verification.

use std::time::Duration;

use astrolabe_persist::{EventLog, PersistError, RedisConfig, RedisLog, RedisTarget, RedisTls};
use astrolabe_testkit::{RedisServer, TestPki};
use bytes::Bytes;

/// Bound on any one attempt: a TLS failure must be an error, never a hang.
const ATTEMPT: Duration = Duration::from_secs(10);

fn log_for(server: &RedisServer, tls: RedisTls) -> RedisLog {
    let target = RedisTarget {
        url: server.tls_url(),
        tls,
        ..RedisTarget::default()
    };
    let mut config = RedisConfig::new(target.connection_info().unwrap(), "tls");
    config.connect_timeout = Duration::from_secs(2);
    RedisLog::new(&config).unwrap()
}

fn trusting(pki: &TestPki) -> RedisTls {
    RedisTls {
        ca_file: Some(pki.path(TestPki::CA)),
        ..RedisTls::default()
    }
}

fn with_client_cert(pki: &TestPki) -> RedisTls {
    RedisTls {
        client_cert: Some(pki.path(TestPki::CLIENT_CERT)),
        client_key: Some(pki.path(TestPki::CLIENT_KEY)),
        ..trusting(pki)
    }
}

async fn ping(log: &RedisLog) -> Result<(), PersistError> {
    tokio::time::timeout(ATTEMPT, log.ping())
        .await
        .expect("a TLS attempt ends in bounded time")
}

/// `e` and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Appends one change and reads it back.
async fn round_trip(log: &RedisLog) {
    let payload = Bytes::from_static(b"\x01over tls");
    log.append(&[(1, payload.clone())]).await.unwrap();
    let read = log.read_after(0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].seq, &read[0].payload), (1, &payload));
}

#[tokio::test]
async fn the_ca_file_makes_a_private_ca_trusted() {
    let pki = TestPki::generate().unwrap();
    let server = RedisServer::start_tls(&pki, false).unwrap();

    round_trip(&log_for(&server, trusting(&pki))).await;

    // Only the public roots: the private CA's certificate is refused.
    let refused = ping(&log_for(&server, RedisTls::default()))
        .await
        .unwrap_err();
    let chain = chain(&refused);
    assert!(
        chain.contains("certificate") && chain.contains("UnknownIssuer"),
        "{chain}"
    );
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = TestPki::generate().unwrap();
    let server = RedisServer::start_tls(&pki, true).unwrap();

    round_trip(&log_for(&server, with_client_cert(&pki))).await;
    let refused = ping(&log_for(&server, trusting(&pki))).await.unwrap_err();
    assert!(
        chain(&refused).contains("CertificateRequired"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_insecure_switch_connects_without_the_ca() {
    let pki = TestPki::generate().unwrap();
    let server = RedisServer::start_tls(&pki, false).unwrap();
    let insecure = RedisTls {
        insecure: true,
        ..RedisTls::default()
    };
    round_trip(&log_for(&server, insecure)).await;
}
