//! Secret hygiene end to end: values planted through every path that could carry a Secret's
//! content — annotations that hold whole objects (kapp's `kapp.k14s.io/original` on a Secret and
//! on a ConfigMap carrying a Secret's `stringData`, kubectl's `last-applied-configuration`, the
//! annotations of kubecfg, k8s-objectmatcher, wrangler, kopf, Flagger and Cluster API), a
//! manifest in JSON, YAML or compressed base64 under any key, any annotation of a Secret, and a
//! Secret's data and stringData — on objects listed at start and changed while watched, never
//! show in any output of the real binary: the HTTP API, the SSE change stream, every Redis key
//! (the snapshot decompressed), the AOF and RDB files, an export, or the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use astrolabe_testkit::RedisServer;
use common::{Emulator, Server, eventually};
use serde_json::{Value, json};

const CLUSTER: &str = "hygiene";
/// The prefix of every planted value; no object name or kept value contains it.
const PLANTED: &str = "pl4nted";
/// A harmless annotation value that is kept: where it shows, annotation values do reach the
/// output, so the planted values' absence there means something.
const KEPT: &str = "team-kept-owner";

/// The manifest a deployer applied, holding the planted `value` under `field` (`stringData`,
/// `data`), as it stores it in an annotation.
fn manifest(kind: &str, name: &str, field: &str, value: String) -> String {
    json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": "hygiene"},
        field: {"key": value},
    })
    .to_string()
}

/// A Secret as kapp and kubectl leave it: the applied manifest (with stringData) in annotations,
/// a manifest under an allowlisted key, and a note under another key.
fn secret(name: &str, tag: &str) -> Value {
    let applied = manifest(
        "Secret",
        name,
        "stringData",
        format!("{PLANTED}-{tag}-manifest"),
    );
    json!({
        "metadata": {
            "name": name, "namespace": "hygiene",
            "annotations": {
                "kapp.k14s.io/original": applied,
                "kubectl.kubernetes.io/last-applied-configuration": applied,
                "helm.sh/hook-delete-policy": applied,
                "example.com/password-hint": format!("{PLANTED}-{tag}-hint"),
                "meta.helm.sh/release-name": "vault-release",
                "kubernetes.io/service-account.name": "builder",
            },
        },
        "type": "Opaque",
        "stringData": {"password": format!("{PLANTED}-{tag}-stringdata")},
        "data": {"token": "cGw0bnRlZC1kYXRh"},
    })
}

/// A ConfigMap carrying a Secret's manifest in kapp's annotation, and its own manifest (or a part
/// of it) in the other deployers' annotations and under unknown keys, as JSON, YAML and
/// compressed base64.
fn config_map(name: &str, tag: &str) -> Value {
    let value = |what: &str| format!("{PLANTED}-{tag}-{what}");
    let applied = manifest("ConfigMap", name, "data", value("configmap"));
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {}\n",
        value("yaml")
    );
    json!({
        "metadata": {
            "name": name, "namespace": "hygiene",
            "annotations": {
                "kapp.k14s.io/original": manifest("Secret", "db-creds", "stringData", value("kapp")),
                "example.com/manifest": applied,
                "example.com/manifest-yaml": yaml,
                "example.com/partial": json!({"stringData": {"password": value("partial")}}).to_string(),
                "example.com/packed": format!("H4sIAAAAAAAA/{}", value("gzip")),
                "objectset.rio.cattle.io/applied": format!("H4sI{}", value("wrangler")),
                "crdb.io/last-applied": format!("UEsDB{}", value("objectmatcher")),
                "kopf.zalando.org/last-handled-configuration":
                    json!({"spec": {"password": value("kopf")}}).to_string(),
                "owner": KEPT,
            },
        },
        "data": {"key": value("data")},
    })
}

/// A ServiceAccount with the annotations of kubecfg, KubeVela, Flagger and Cluster API.
fn service_account(name: &str, tag: &str) -> Value {
    let value = |what: &str| format!("{PLANTED}-{tag}-{what}");
    json!({
        "metadata": {
            "name": name, "namespace": "hygiene",
            "annotations": {
                "kubecfg.ksonnet.io/last-applied-configuration": value("kubecfg"),
                "app.oam.dev/last-applied-configuration": value("kubevela"),
                "flagger.kubernetes.io/original-configuration": value("flagger"),
                "cluster.x-k8s.io/conversion-data": value("capi"),
                "owner": KEPT,
            },
        },
    })
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let found = bytes
        .windows(PLANTED.len())
        .position(|w| w == PLANTED.as_bytes());
    if let Some(at) = found {
        let around = &bytes[at.saturating_sub(200)..(at + 200).min(bytes.len())];
        panic!(
            "a planted value leaked into {what}: …{}…",
            String::from_utf8_lossy(around)
        );
    }
}

fn redis_cli(redis: &RedisServer, args: &[&str]) -> Vec<u8> {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "--raw"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    out.stdout
}

/// Every key's value, read by type (the stream's entries, the snapshot chunks and metadata).
fn redis_values(redis: &RedisServer) -> Vec<u8> {
    let keys = String::from_utf8(redis_cli(redis, &["KEYS", "*"])).unwrap();
    let mut keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    // Snapshot chunks in order, so a frame cut between two chunks reads whole.
    keys.sort_unstable();
    let mut out = Vec::new();
    for key in keys {
        let kind = String::from_utf8(redis_cli(redis, &["TYPE", key])).unwrap();
        let read: &[&str] = match kind.trim() {
            "string" => &["GET"],
            "stream" => &["XRANGE"],
            "hash" => &["HGETALL"],
            "list" => &["LRANGE"],
            "set" => &["SMEMBERS"],
            "zset" => &["ZRANGE"],
            other => panic!("key {key} of type {other}"),
        };
        let mut args = vec![read[0], key];
        match read[0] {
            "XRANGE" => args.extend(["-", "+"]),
            "LRANGE" | "ZRANGE" => args.extend(["0", "-1"]),
            _ => {}
        }
        out.extend(redis_cli(redis, &args));
    }
    out
}

/// Every file under `dir`, concatenated (a file Redis removes meanwhile, a rewrite's temporary
/// one, is skipped).
fn files_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

/// What every zstd frame found in `bytes` decompresses to (the snapshot's chunks in Redis, in
/// its files and in an export are zstd): a grep of `bytes` alone would not see into them.
fn zstd_frames(bytes: &[u8]) -> Vec<u8> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut out = Vec::new();
    for at in 0..bytes.len().saturating_sub(MAGIC.len()) {
        if bytes[at..].starts_with(&MAGIC) {
            let decoder = zstd::stream::read::Decoder::with_buffer(&bytes[at..]);
            if let Ok(decoder) = decoder {
                // A damaged or cut frame still gives what it decoded before the damage.
                let _ = std::io::Read::read_to_end(&mut decoder.single_frame(), &mut out);
            }
        }
    }
    out
}

/// Asserts `bytes` and what its zstd frames decompress to are clean; returns the latter.
fn assert_clean_with_frames(what: &str, bytes: &[u8]) -> Vec<u8> {
    assert_clean(what, bytes);
    let inflated = zstd_frames(bytes);
    assert_clean(&format!("{what}, decompressed"), &inflated);
    inflated
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_annotation_values_never_leave_the_process() {
    let redis = RedisServer::start().unwrap();
    let emu = Emulator::start(31, 60).await;
    emu.sim
        .create("Namespace", json!({"metadata": {"name": "hygiene"}}))
        .unwrap();
    // Listed at start.
    for (kind, object) in [
        ("Secret", secret("listed-creds", "a")),
        ("ConfigMap", config_map("listed-config", "b")),
        ("ServiceAccount", service_account("listed-account", "e")),
    ] {
        emu.sim.create(kind, object).unwrap();
    }

    let logs = tempfile::tempdir().unwrap();
    let redis_url = redis.url();
    let flags = [
        "--enable-persistence",
        "--redis-url",
        redis_url.as_str(),
        "--cluster-name",
        CLUSTER,
        "--snapshot-interval",
        "2",
        "--shutdown-grace",
        "15",
    ];
    let mut server = Server::start(&emu.kubeconfig(), logs.path(), &flags);
    server.wait_ready().await;

    // Changed while watched: a new Secret and ServiceAccount, an updated ConfigMap, and last a
    // marker object.
    for (kind, object) in [
        ("Secret", secret("watched-creds", "c")),
        ("ServiceAccount", service_account("watched-account", "f")),
    ] {
        emu.sim.create(kind, object).unwrap();
    }
    emu.sim
        .update("ConfigMap", "hygiene", "listed-config", |o| {
            let changed = config_map("listed-config", "d");
            o["metadata"]["annotations"] = changed["metadata"]["annotations"].clone();
            o["data"] = changed["data"].clone();
        })
        .unwrap();
    emu.sim
        .create(
            "ConfigMap",
            json!({"metadata": {"name": "last-marker", "namespace": "hygiene"}}),
        )
        .unwrap();
    // Each kind has its own watcher: the marker orders the ConfigMap changes only, so the
    // Secret and the ServiceAccount are waited for by name.
    let objects = eventually(
        "the marker, the new Secret and the new ServiceAccount are served",
        || server.log_tail(),
        || async {
            let (_, body) = server.get("/api/v1/objects?limit=5000").await?;
            let text = body.to_string();
            ["last-marker", "watched-creds", "watched-account"]
                .iter()
                .all(|name| text.contains(name))
                .then_some(body)
        },
    )
    .await;

    // Kept: the objects, the Secret's allowlisted annotations, the other kinds' harmless one.
    let items = objects["items"].as_array().unwrap();
    let by_name = |name: &str| {
        items
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} not served"))
            .clone()
    };
    let creds = by_name("watched-creds");
    assert_eq!(
        creds["annotations"],
        json!({"meta.helm.sh/release-name": "vault-release", "kubernetes.io/service-account.name": "builder"})
    );
    for name in ["listed-config", "listed-account", "watched-account"] {
        assert_eq!(
            by_name(name)["annotations"],
            json!({"owner": KEPT}),
            "{name}"
        );
    }

    // The HTTP API: every listing, the Go-compatible ones, single resources, traversals.
    let uid = creds["uid"].as_str().unwrap().to_owned();
    let config_uid = by_name("listed-config")["uid"].as_str().unwrap().to_owned();
    let mut api = objects.to_string().into_bytes();
    for path in [
        "/api/v1/resources".to_owned(),
        "/api/v1/resources?namespace=hygiene".to_owned(),
        "/api/v1/releases".to_owned(),
        "/api/v1/charts".to_owned(),
        "/api/v1/namespaces".to_owned(),
        "/api/v1/graph".to_owned(),
        "/api/v1/objects?kind=Secret".to_owned(),
        "/api/v1/objects?kind=ConfigMap&namespace=hygiene".to_owned(),
        format!("/api/v1/resources/{uid}"),
        "/api/v1/namespaces/hygiene/Secret/watched-creds".to_owned(),
        "/api/v1/namespaces/hygiene/ConfigMap/listed-config".to_owned(),
        "/api/v1/namespaces/hygiene/ServiceAccount/watched-account".to_owned(),
        format!("/api/v1/neighbors/{uid}?depth=3"),
        format!("/api/v1/impact/{uid}"),
        format!("/api/v1/path?from={uid}&to={config_uid}"),
        "/api/v1/dangling".to_owned(),
        "/api/v1/kinds".to_owned(),
        "/api/v1/edge-kinds".to_owned(),
        "/health".to_owned(),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/metrics".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let text = server.get_text(&path).await;
        assert_clean(&path, text.as_bytes());
        api.extend(text.into_bytes());
    }
    assert!(contains(&api, KEPT) && contains(&api, "vault-release"));

    // The change stream, from the first retained event to the marker.
    let sse = server
        .sse_until("/api/v1/watch?lastEventId=0", |b| {
            contains(b, "last-marker")
        })
        .await;
    assert_clean("the SSE stream", &sse);
    assert!(contains(&sse, KEPT), "{}", String::from_utf8_lossy(&sse));

    // Redis: the stream and snapshot keys, once the marker is persisted; then the AOF files,
    // once Redis has written the marker there (fsync every second).
    let values = eventually(
        "the marker is in Redis",
        || server.log_tail(),
        || async {
            let values = redis_values(&redis);
            contains(&values, "last-marker").then_some(values)
        },
    )
    .await;
    assert_clean_with_frames("the Redis keys", &values);
    assert!(contains(&values, KEPT));

    // Shutdown: a final snapshot; then an export of it, decoded.
    server.sigterm();
    assert!(
        server.exit_status().await.success(),
        "{}",
        server.log_tail()
    );
    let aof = eventually("the marker is in the AOF", String::new, || async {
        let bytes = files_under(redis.dir());
        contains(&bytes, "last-marker").then_some(bytes)
    })
    .await;
    assert_clean_with_frames("the AOF", &aof);
    assert!(contains(&aof, KEPT));
    // The final snapshot, decompressed from the keys: the check above saw into it.
    let snapshot = assert_clean_with_frames("the Redis keys after shutdown", &redis_values(&redis));
    assert!(contains(&snapshot, KEPT) && contains(&snapshot, "watched-creds"));
    // An RDB file too, its strings left uncompressed so the snapshot's frames show.
    for line in ["CONFIG SET rdbcompression no", "SAVE"] {
        let reply = redis.command_line(line).unwrap();
        assert!(reply.starts_with("+OK"), "{line}: {reply}");
    }
    let files = files_under(redis.dir());
    assert!(contains(&files, "REDIS"), "no RDB file");
    let inflated = assert_clean_with_frames("the AOF and RDB files", &files);
    assert!(contains(&inflated, KEPT));

    let file = logs.path().join("export.snap");
    let out = Command::new(env!("CARGO_BIN_EXE_astrolabe"))
        .args(["snapshot", "export", file.to_str().unwrap()])
        .args(["--redis-url", &redis_url, "--cluster-name", CLUSTER])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_clean("the export's output", &[out.stdout, out.stderr].concat());
    assert_clean_with_frames("the export file", &std::fs::read(&file).unwrap());
    let exported = astrolabe_server::snapshot::read_file(&file).unwrap();
    let decoded = serde_json::to_vec(&exported.resources).unwrap();
    assert_clean("the decoded export", &decoded);
    assert!(contains(&decoded, KEPT) && contains(&decoded, "watched-creds"));

    assert_clean("the server's log", server.log_text().as_bytes());
}
