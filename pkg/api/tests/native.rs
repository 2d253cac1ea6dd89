#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Native endpoints and their error paths.

mod common;

use astrolabe_api::router;
use astrolabe_model::{Kind, OwnerRef, Resource};
use axum::http::StatusCode;
use common::{assert_error, get, graph_of, seq_header, shop_app, state};
use serde_json::json;

#[tokio::test]
async fn one_resource_by_uid_and_by_key() {
    let app = shop_app();
    let r = get(&app, "/api/v1/resources/pod-web").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["seq"].as_u64(), Some(seq_header(&r)));
    let res = &r.json["resource"];
    assert_eq!(res["uid"], "pod-web");
    assert_eq!(res["apiVersion"], "v1");
    assert_eq!(res["labels"], json!({"app": "web"}));
    assert_eq!(res["metadata"]["phase"], "Running");
    assert_eq!(res["ownerReferences"][0]["uid"], "rs-web");
    let incoming = r.json["incoming"].as_array().unwrap();
    assert!(
        incoming.iter().any(|e| e["type"] == "owns"
            && e["from"] == "rs-web"
            && e["peer"]["name"] == "web-5d4f")
    );
    assert!(
        incoming
            .iter()
            .any(|e| e["type"] == "selects" && e["from"] == "svc-web")
    );
    let outgoing = r.json["outgoing"].as_array().unwrap();
    assert!(
        outgoing
            .iter()
            .any(|e| e["type"] == "mounts" && e["to"] == "pvc-data")
    );

    let by_key = get(&app, "/api/v1/namespaces/shop/pod/web-5d4f-x7k2p").await;
    assert_eq!(by_key.status, StatusCode::OK);
    assert_eq!(by_key.json["resource"]["uid"], "pod-web");
    let cluster = get(&app, "/api/v1/cluster/PersistentVolume/pv-1").await;
    assert_eq!(cluster.json["resource"]["uid"], "pv-1");

    assert_error(
        &get(&app, "/api/v1/resources/nope").await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &get(&app, "/api/v1/namespaces/shop/Pod/nope").await,
        StatusCode::NOT_FOUND,
    );
    // A kind nobody knows is a bad request, not a missing object.
    assert_error(
        &get(&app, "/api/v1/cluster/Widget/x").await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn objects_filter_and_paginate_stably() {
    let (app, graph) = common::generated_app(11, 800);
    let total = graph.read().node_count();
    let mut seen = Vec::new();
    let mut uri = "/api/v1/objects?limit=97".to_owned();
    loop {
        let r = get(&app, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let items = r.json["items"].as_array().unwrap();
        assert!(items.len() <= 97);
        seen.extend(items.iter().map(|i| i["uid"].as_str().unwrap().to_owned()));
        match r.json["continue"].as_str() {
            Some(token) => uri = format!("/api/v1/objects?limit=97&continue={token}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), total, "every object exactly once");
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), total);

    let pods = get(&app, "/api/v1/objects?kind=pod&limit=5000").await;
    let pods = pods.json["items"].as_array().unwrap();
    assert!(!pods.is_empty());
    assert!(pods.iter().all(|p| p["kind"] == "Pod"));

    let shop = shop_app();
    let sel = get(&shop, "/api/v1/objects?labelSelector=app%3Dweb").await;
    assert_eq!(sel.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(sel.json["items"][0]["uid"], "pod-web");
    let named = get(&shop, "/api/v1/objects?name=web&namespace=shop").await;
    assert!(named.json["items"].as_array().unwrap().len() >= 3);
    let rel = get(&shop, "/api/v1/objects?release=shop&kind=Service").await;
    assert_eq!(rel.json["items"][0]["uid"], "svc-web");
    assert!(rel.json["continue"].is_null());

    for bad in [
        "/api/v1/objects?labelSelector=a%20in%20(",
        "/api/v1/objects?limit=-1",
        "/api/v1/objects?limit=abc",
        "/api/v1/objects?limit=0",
        "/api/v1/objects?limit=5001",
        "/api/v1/objects?continue=garbage",
    ] {
        assert_error(&get(&shop, bad).await, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn neighbors_path_and_impact() {
    let app = shop_app();
    let n = get(&app, "/api/v1/neighbors/pod-web?depth=1&direction=out").await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.text);
    let uids: Vec<&str> = n.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["uid"].as_str().unwrap())
        .collect();
    assert!(
        uids.contains(&"pvc-data") && uids.contains(&"cm-web"),
        "{uids:?}"
    );
    assert!(!uids.contains(&"rs-web"), "direction=out");
    assert_eq!(n.json["truncated"], false);

    let owns = get(
        &app,
        "/api/v1/neighbors/pod-web?direction=in&edgeKinds=owns",
    )
    .await;
    let uids: Vec<&str> = owns.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["uid"].as_str().unwrap())
        .collect();
    assert!(
        uids.contains(&"rs-web") && !uids.contains(&"svc-web"),
        "{uids:?}"
    );

    let p = get(&app, "/api/v1/path?from=deploy-web&to=pv-1").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.json["found"], true);
    let path: Vec<&str> = p.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["uid"].as_str().unwrap())
        .collect();
    assert_eq!(path.first(), Some(&"deploy-web"));
    assert_eq!(path.last(), Some(&"pv-1"));
    let none = get(&app, "/api/v1/path?from=ns-shop&to=pv-1").await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json["found"], false);
    // The Service selects the Pod: from the Pod to the Service runs against the edge.
    for (direction, found) in [
        ("", true),
        ("&direction=both", true),
        ("&direction=in", true),
        ("&direction=out", false),
    ] {
        let p = get(
            &app,
            &format!("/api/v1/path?from=pod-web&to=svc-web{direction}"),
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert_eq!(p.json["found"], found, "{direction}");
    }

    let i = get(&app, "/api/v1/impact/cm-web").await;
    assert_eq!(i.status, StatusCode::OK, "{}", i.text);
    let uids: Vec<&str> = i.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["uid"].as_str().unwrap())
        .collect();
    assert!(uids.contains(&"pod-web"), "{uids:?}");

    for (bad, status) in [
        (
            "/api/v1/neighbors/pod-web?depth=-1",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/neighbors/pod-web?depth=x", StatusCode::BAD_REQUEST),
        (
            "/api/v1/neighbors/pod-web?depth=11",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/neighbors/pod-web?direction=up",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/neighbors/pod-web?edgeKinds=owns,nope",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/neighbors/pod-web?limit=10001",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/neighbors/nope", StatusCode::NOT_FOUND),
        ("/api/v1/path?from=pod-web", StatusCode::BAD_REQUEST),
        ("/api/v1/path?to=pod-web", StatusCode::BAD_REQUEST),
        (
            "/api/v1/path?from=pod-web&to=pv-1&maxDepth=99",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/path?from=pod-web&to=pv-1&direction=up",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/path?from=nope&to=pv-1", StatusCode::NOT_FOUND),
        ("/api/v1/impact/nope", StatusCode::NOT_FOUND),
        ("/api/v1/impact/cm-web?limit=x", StatusCode::BAD_REQUEST),
    ] {
        assert_error(&get(&app, bad).await, status);
    }
}

#[tokio::test]
async fn dangling_and_kind_lists() {
    let app = shop_app();
    let d = get(&app, "/api/v1/dangling").await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    let items = d.json["items"].as_array().unwrap();
    let missing = items
        .iter()
        .find(|i| i["source"]["uid"] == "pod-web" && i["edgeKind"] == "uses-secret")
        .unwrap_or_else(|| panic!("{items:?}"));
    assert_eq!(missing["targetKind"], "Secret");
    assert_eq!(missing["optional"], true);
    assert!(missing["target"].as_str().unwrap().contains("missing"));
    let filtered = get(&app, "/api/v1/dangling?namespace=shop&edgeKind=binds").await;
    assert_eq!(filtered.json["items"], json!([]));
    assert_error(
        &get(&app, "/api/v1/dangling?edgeKind=nope").await,
        StatusCode::BAD_REQUEST,
    );

    let kinds = get(&app, "/api/v1/kinds").await;
    assert!(kinds.json.as_array().unwrap().iter().any(|k| k
        == &json!({"kind": "Deployment", "group": "apps", "apiVersion": "apps/v1",
                    "namespaced": true, "builtin": true})));
    let edges = get(&app, "/api/v1/edge-kinds").await;
    assert!(edges.json.as_array().unwrap().iter().any(|k| {
        k["name"] == "owns"
            && k["dependency"] == "target-needs-source"
            && k["declared"] == false
            && k["description"]
                .as_str()
                .unwrap()
                .contains("ownerReferences")
    }));
}

/// `kind=` and the kind path segment accept what kubectl accepts (names, plurals, short names,
/// group-qualified names); an unknown kind is a 400 that names close matches.
#[tokio::test]
async fn kind_parameters_resolve_like_kubectl() {
    let app = shop_app();
    let all = get(&app, "/api/v1/objects?kind=Deployment").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert!(!all.json["items"].as_array().unwrap().is_empty());
    for spelling in [
        "deploy",
        "deployments",
        "Deployment.apps",
        "deployments.v1.apps",
    ] {
        let other = get(&app, &format!("/api/v1/objects?kind={spelling}")).await;
        assert_eq!(other.json["items"], all.json["items"], "{spelling}");
    }
    let typo = get(&app, "/api/v1/objects?kind=Deploymnet").await;
    assert_error(&typo, StatusCode::BAD_REQUEST);
    assert!(
        typo.text.contains("did you mean Deployment.apps"),
        "{}",
        typo.text
    );
    assert_error(
        &get(&app, "/api/v1/namespaces/shop/Deploymnet/web").await,
        StatusCode::BAD_REQUEST,
    );
    let by_short = get(&app, "/api/v1/namespaces/shop/deploy/web").await;
    assert_eq!(by_short.status, StatusCode::OK, "{}", by_short.text);
}

/// Node lists reuse each resource's rendered JSON; an update must show at once in every view.
#[tokio::test]
async fn cached_node_json_follows_updates() {
    let graph = common::graph_of(common::shop());
    let app = astrolabe_api::router(common::state(graph.clone()));
    let message = |r: &common::Reply, list: &str| -> Vec<String> {
        r.json[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["uid"] == "pod-web")
            .map(|n| n["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let views = [
        ("/api/v1/neighbors/rs-web?depth=1", "nodes"),
        ("/api/v1/objects?namespace=shop", "items"),
        ("/api/v1/graph?namespace=shop", "nodes"),
    ];
    for (uri, list) in views {
        // Twice: the second answer comes from the cache and must equal the first.
        let first = get(&app, uri).await;
        let second = get(&app, uri).await;
        assert_eq!(first.json["nodes"], second.json["nodes"], "{uri}");
        assert_eq!(first.json["items"], second.json["items"], "{uri}");
        assert_eq!(message(&second, list).len(), 1, "{uri}: {}", second.text);
        assert_ne!(
            message(&second, list),
            vec!["restarted by the test"],
            "{uri}"
        );
    }
    {
        let mut g = graph.write();
        let mut pod = (**g.get(&"pod-web".into()).unwrap()).clone();
        pod.status.message = "restarted by the test".into();
        g.upsert(pod);
    }
    for (uri, list) in views {
        let after = get(&app, uri).await;
        assert_eq!(
            message(&after, list),
            vec!["restarted by the test"],
            "{uri}: {}",
            after.text
        );
    }
}

#[tokio::test]
async fn a_dangling_owner_shows_its_kind_and_name() {
    let mut orphan = Resource::new("pod-x", Kind::Pod, "shop", "web-1-x");
    orphan.owners.push(OwnerRef {
        kind: Kind::ReplicaSet,
        name: "web-1".into(),
        uid: "rs-gone".into(),
        controller: true,
    });
    let app = router(state(graph_of(vec![orphan])));
    let d = get(&app, "/api/v1/dangling?edgeKind=owns").await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(
        d.json["items"][0]["target"],
        "uid:rs-gone (ReplicaSet/web-1)"
    );
    assert_eq!(d.json["items"][0]["targetKind"], "ReplicaSet");
}

#[tokio::test]
async fn search_matches_every_term_best_name_first() {
    let app = shop_app();
    let r = get(&app, "/api/v1/search?q=web").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["seq"].as_u64(), Some(seq_header(&r)));
    let names: Vec<String> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["kind"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    let exact = names.iter().take_while(|n| n.ends_with("/web")).count();
    assert_eq!(exact, 3, "the three objects named web first: {names:?}");
    assert!(names.contains(&"Deployment/web".to_owned()), "{names:?}");
    assert!(
        names.contains(&"Pod/web-5d4f-x7k2p".to_owned()),
        "{names:?}"
    );
    assert!(r.json["continue"].is_null());

    let narrowed = get(&app, "/api/v1/search?q=web%20kind:Pod&limit=5").await;
    let items = narrowed.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", narrowed.text);
    assert_eq!(items[0]["uid"], "pod-web");
    let by_release = get(&app, "/api/v1/search?q=release:shop%20kind:service").await;
    assert_eq!(by_release.json["items"][0]["uid"], "svc-web");
    let by_label = get(&app, "/api/v1/search?q=app%3Dweb%20kind:Pod").await;
    assert_eq!(by_label.json["items"][0]["uid"], "pod-web");
    let one = get(&app, "/api/v1/search?q=web&limit=1").await;
    assert_eq!(one.json["items"].as_array().unwrap().len(), 1);

    let empty = get(&app, "/api/v1/search").await;
    assert_eq!(empty.json["items"], json!([]));
    assert_error(
        &get(&app, "/api/v1/search?q=web&limit=0").await,
        StatusCode::BAD_REQUEST,
    );
}
