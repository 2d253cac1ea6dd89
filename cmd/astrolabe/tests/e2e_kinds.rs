//! The kind flags of the real binary against the emulator, which serves core `Endpoints` and
//! `Event` outside the table: excluded by default; with `--exclude-kinds=` they are discovered
//! and read metadata-only (polled past `--max-watches`), an Endpoints object in the graph with
//! its owner; `--discover=builtin` reads the table only; a misspelt plain name stops the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_model::Kind;
use common::{Emulator, Server};
use serde_json::{Value, json};

/// The readiness detail of `kind`, if it is read.
fn kind_of<'a>(readyz: &'a Value, kind: &str) -> Option<&'a Value> {
    readyz["kinds"]
        .as_array()?
        .iter()
        .find(|k| k["kind"] == kind)
}

/// A Service and an Endpoints object it owns, in `shop`.
fn plant(emu: &Emulator) {
    let _ = emu
        .sim
        .create("Namespace", json!({"metadata": {"name": "shop"}}));
    let svc = emu
        .sim
        .create(
            "Service",
            json!({"metadata": {"name": "planted", "namespace": "shop"},
                   "spec": {"ports": [{"port": 80}]}}),
        )
        .unwrap();
    emu.sim
        .create(
            "Endpoints",
            json!({"metadata": {"name": "planted", "namespace": "shop",
                                "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                    "name": "planted", "uid": svc["metadata"]["uid"], "controller": true}]}}),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_outside_the_table_follow_the_flags() {
    let emu = Emulator::start(7, 40).await;
    plant(&emu);
    let logs = tempfile::tempdir().unwrap();

    // Default: Endpoints and Events are excluded; the 26 built-in kinds are watched, typed.
    let plain = Server::start(&emu.kubeconfig(), logs.path(), &[]);
    let readyz = plain.wait_ready().await;
    assert_eq!(
        readyz["kinds"].as_array().unwrap().len(),
        Kind::WATCHED.len()
    );
    assert!(kind_of(&readyz, "Endpoints").is_none());
    assert_eq!(kind_of(&readyz, "Pod").unwrap()["mode"], "typed");
    let (status, _) = plain
        .get("/api/v1/namespaces/shop/Endpoints/planted")
        .await
        .unwrap();
    assert_eq!(status, 404);

    // No exclusions, and no room in the cap past the built-in kinds: polled, metadata-only.
    let all = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &["--exclude-kinds=", "--max-watches=26", "--list-interval=1"],
    );
    let readyz = all
        .wait_readyz("ready with the Endpoints listed", |s, body| {
            s == 200 && kind_of(body, "Endpoints").is_some_and(|k| k["listed"] == true)
        })
        .await;
    let ep = kind_of(&readyz, "Endpoints").unwrap();
    assert_eq!(
        (&ep["mode"], &ep["access"], &ep["state"]),
        (&json!("metadata"), &json!("poll"), &json!("polled")),
        "{readyz}"
    );
    assert!(
        kind_of(&readyz, "Event.events.k8s.io").is_some(),
        "{readyz}"
    );
    let (status, body) = all
        .get("/api/v1/namespaces/shop/Endpoints/planted")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("planted"), "{body}");
    assert!(body.to_string().to_lowercase().contains("owns"), "{body}");
    let metrics = all.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "astrolabe_informer_kind_watched{access=\"poll\",kind=\"Endpoints\",mode=\"metadata\"} 1"
        ),
        "{metrics}"
    );

    // The table only: nothing discovered, whatever the exclusions.
    let builtin = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &["--exclude-kinds=", "--discover=builtin"],
    );
    let readyz = builtin.wait_ready().await;
    assert_eq!(
        readyz["kinds"].as_array().unwrap().len(),
        Kind::WATCHED.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_plain_name_stops_the_server_with_the_valid_names() {
    let emu = Emulator::start(7, 10).await;
    let logs = tempfile::tempdir().unwrap();
    for discover in ["--discover=builtin", "--discover=all"] {
        let mut server = Server::start(
            &emu.kubeconfig(),
            logs.path(),
            &["--kinds=Deploymnet", discover],
        );
        let status = server.exit_status().await;
        assert!(!status.success(), "{discover}");
        let log = server.log_text();
        assert!(
            log.contains("Deploymnet") && log.contains("Deployment"),
            "{discover}: {log}"
        );
    }
}
