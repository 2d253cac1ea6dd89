#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Wire-level behaviour over HTTP: watch framing, bookmarks, 410s, timeouts, status codes.

mod common;

use common::{Served, configmap, fast_config, get_json, within};
use futures::StreamExt;
use serde_json::{Value, json};

/// Reads newline-delimited JSON events from a watch response until `stop` matches or the body ends.
async fn read_events(resp: reqwest::Response, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    within(10, "watch lines", async {
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.unwrap());
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let v: Value = serde_json::from_slice(&line).unwrap();
                let done = stop(&v);
                out.push(v);
                if done {
                    return out;
                }
            }
        }
        assert!(buf.is_empty(), "unterminated line");
        out
    })
    .await
}

#[tokio::test]
async fn bookmarks_carry_the_global_rv() {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create("cm", configmap("ns", "a", json!({})))
        .unwrap();
    let rv = served.sim.current_rv();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/configmaps?&watch=true&timeoutSeconds=30&allowWatchBookmarks=true&resourceVersion={rv}",
        served.url()
    );
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    // Another kind moves the global RV; the ConfigMap watch's bookmarks follow it.
    served
        .sim
        .create(
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "ns"}}),
        )
        .unwrap();
    let target = served.sim.current_rv().to_string();
    let evs = read_events(resp, |e| {
        e["type"] == "BOOKMARK" && e["object"]["metadata"]["resourceVersion"] == target
    })
    .await;
    let bm = evs.last().unwrap();
    assert_eq!(bm["object"]["kind"], "ConfigMap");
    assert_eq!(bm["object"]["apiVersion"], "v1");
}

#[tokio::test]
async fn too_old_rv_is_an_in_stream_410() {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create("cm", configmap("ns", "a", json!({})))
        .unwrap();
    served.sim.expire_history();
    let resp = reqwest::get(format!(
        "{}/api/v1/configmaps?watch=true&resourceVersion=1",
        served.url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let evs = read_events(resp, |_| false).await;
    assert_eq!(evs.len(), 1, "one ERROR then the stream closes");
    assert_eq!(evs[0]["type"], "ERROR");
    assert_eq!(evs[0]["object"]["code"], 410);
    assert_eq!(evs[0]["object"]["reason"], "Expired");
    assert_eq!(evs[0]["object"]["status"], "Failure");
}

#[tokio::test]
async fn bounded_history_expires_old_rvs() {
    let served = Served::start(astrolabe_kubesim::SimConfig {
        history_size: 3,
        ..fast_config()
    })
    .await;
    for i in 0..6 {
        served
            .sim
            .create("cm", configmap("ns", &format!("c{i}"), json!({})))
            .unwrap();
    }
    let get = |rv: u64| {
        reqwest::get(format!(
            "{}/api/v1/configmaps?watch=true&timeoutSeconds=1&resourceVersion={rv}",
            served.url()
        ))
    };
    let evs = read_events(get(1).await.unwrap(), |_| false).await;
    assert_eq!(evs[0]["type"], "ERROR");
    let evs = read_events(get(3).await.unwrap(), |e| {
        e["object"]["metadata"]["name"] == "c5"
    })
    .await;
    let names: Vec<&Value> = evs
        .iter()
        .map(|e| &e["object"]["metadata"]["name"])
        .collect();
    assert_eq!(names, ["c3", "c4", "c5"]);
}

#[tokio::test]
async fn timeout_seconds_closes_the_stream() {
    let served = Served::start(fast_config()).await;
    let resp = reqwest::get(format!(
        "{}/api/v1/pods?watch=true&timeoutSeconds=1",
        served.url()
    ))
    .await
    .unwrap();
    let evs = read_events(resp, |_| false).await;
    assert!(evs.is_empty());
}

#[tokio::test]
async fn streaming_list_ends_with_annotated_bookmark() {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create("cm", configmap("ns", "a", json!({})))
        .unwrap();
    served
        .sim
        .create("cm", configmap("ns", "b", json!({})))
        .unwrap();
    let url = format!(
        "{}/api/v1/configmaps?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
        served.url()
    );
    let resp = reqwest::get(url).await.unwrap();
    let evs = read_events(resp, |e| e["type"] == "BOOKMARK").await;
    let types: Vec<&Value> = evs.iter().map(|e| &e["type"]).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"]);
    assert_eq!(
        evs[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(evs[2]["object"]["metadata"]["resourceVersion"], "2");
    // sendInitialEvents without resourceVersionMatch is rejected with 422.
    let bad = reqwest::get(format!(
        "{}/api/v1/configmaps?watch=true&allowWatchBookmarks=true&sendInitialEvents=true",
        served.url()
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn continue_token_expiry_is_http_410() {
    let served = Served::start(fast_config()).await;
    for i in 0..5 {
        served
            .sim
            .create("cm", configmap("ns", &format!("c{i}"), json!({})))
            .unwrap();
    }
    let page1: Value = reqwest::get(format!("{}/api/v1/configmaps?&limit=2", served.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page1["kind"], "ConfigMapList");
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    assert!(
        page1["items"][0].get("kind").is_none(),
        "list items omit kind"
    );
    let token = page1["metadata"]["continue"].as_str().unwrap().to_owned();
    let page2: Value = reqwest::get(format!(
        "{}/api/v1/configmaps?&limit=2&continue={token}",
        served.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        page2["metadata"]["resourceVersion"],
        page1["metadata"]["resourceVersion"]
    );
    served.sim.expire_continue_tokens();
    let resp = reqwest::get(format!(
        "{}/api/v1/configmaps?&limit=2&continue={token}",
        served.url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 410);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["code"], 410);
}

#[tokio::test]
async fn crud_status_codes() {
    let served = Served::start(fast_config()).await;
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/ns/configmaps", served.url());
    let missing = http
        .post(&base)
        .json(&configmap("ns", "a", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let status: Value = missing.json().await.unwrap();
    assert_eq!(status["message"], "namespaces \"ns\" not found");
    served
        .sim
        .create("Namespace", json!({"metadata": {"name": "ns"}}))
        .unwrap();
    let created = http
        .post(&base)
        .json(&configmap("ns", "a", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let dup = http
        .post(&base)
        .json(&configmap("ns", "a", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    assert_eq!(
        dup.json::<Value>().await.unwrap()["reason"],
        "AlreadyExists"
    );
    let nameless = http
        .post(&base)
        .json(&json!({"metadata": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(nameless.status(), 422);
    let missing = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["reason"], "NotFound");
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("0");
    let conflict = http
        .put(format!("{base}/a"))
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(
        conflict.json::<Value>().await.unwrap()["reason"],
        "Conflict"
    );
    let mut fresh = created.clone();
    fresh["data"] = json!({"k": "new"});
    let replaced: Value = http
        .put(format!("{base}/a"))
        .json(&fresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);
    let patched: Value = http
        .patch(format!("{base}/a"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"metadata":{"labels":{"x":"y"}}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["metadata"]["labels"]["x"], "y");
    let deleted = http.delete(format!("{base}/a")).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.unwrap()["metadata"]["name"],
        "a"
    );
    let unknown = http
        .get(format!("{}/apis/example.com/v1/widgets", served.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad_sel = http
        .get(format!(
            "{}/api/v1/pods?fieldSelector=spec.foo%3Dx",
            served.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_sel.status(), 400);
    let bad_labels = http
        .get(format!(
            "{}/api/v1/pods?labelSelector=a%20in%20x",
            served.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_labels.status(), 400);
    assert_eq!(
        bad_labels.json::<Value>().await.unwrap()["reason"],
        "BadRequest"
    );
    served.sim.fail_kind("pods", 403).unwrap();
    let forbidden = http
        .get(format!("{}/api/v1/pods", served.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        forbidden.json::<Value>().await.unwrap()["reason"],
        "Forbidden"
    );
}

const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const META_OBJECT: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// GETs `url` with `accept` (when given) and reads the JSON body.
/// Whether `obj` is a PartialObjectMetadata: kind, apiVersion and metadata, nothing else.
fn is_partial(obj: &Value) -> bool {
    obj["kind"] == "PartialObjectMetadata"
        && obj["apiVersion"] == "meta.k8s.io/v1"
        && obj.as_object().is_some_and(|o| o.len() == 3)
        && obj["metadata"]["name"].is_string()
}

#[tokio::test]
async fn metadata_accept_header_answers_partial_objects() {
    let served = Served::start(fast_config()).await;
    common::fixture(&served.sim);
    served
        .sim
        .create(
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "shop"}, "data": {"k": "c2VjcmV0"}}),
        )
        .unwrap();
    let http = reqwest::Client::new();
    for info in astrolabe_kubesim::KINDS {
        let url = format!("{}{}", served.url(), info.collection_path());
        let list = get_json(&http, &url, Some(META_LIST)).await;
        assert_eq!(list["kind"], "PartialObjectMetadataList", "{}", info.kind);
        assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
        assert!(list["metadata"]["resourceVersion"].is_string());
        let items = list["items"].as_array().unwrap();
        assert!(items.iter().all(is_partial), "{list}");
    }

    let secrets = format!("{}/api/v1/namespaces/shop/secrets", served.url());
    let one = get_json(&http, &format!("{secrets}/s"), Some(META_OBJECT)).await;
    assert!(is_partial(&one), "{one}");
    let resp = http
        .get(format!(
            "{secrets}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=30"
        ))
        .header("accept", META_OBJECT)
        .send()
        .await
        .unwrap();
    let evs = read_events(resp, |e| e["type"] == "BOOKMARK").await;
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0]["type"], "ADDED");
    assert!(is_partial(&evs[0]["object"]), "{evs:?}");
    assert_eq!(evs[1]["object"]["kind"], "PartialObjectMetadata");
    // Without the header, the whole object.
    let whole = get_json(&http, &format!("{secrets}/s"), None).await;
    assert_eq!(whole["data"]["k"], "c2VjcmV0");
}
