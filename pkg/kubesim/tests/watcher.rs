#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real kube-rs 5 watcher against the emulator over HTTP.

mod common;

use common::{Served, configmap, fast_config, within};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

type Item<K> = Result<Event<K>, watcher::Error>;

fn label<K: kube::Resource>(ev: &Item<K>) -> String {
    let name = |k: &K| k.meta().name.clone().unwrap_or_default();
    match ev {
        Ok(Event::Init) => "Init".into(),
        Ok(Event::InitApply(k)) => format!("InitApply({})", name(k)),
        Ok(Event::InitDone) => "InitDone".into(),
        Ok(Event::Apply(k)) => format!("Apply({})", name(k)),
        Ok(Event::Delete(k)) => format!("Delete({})", name(k)),
        Err(e) => format!("Err({e})"),
    }
}

/// Collects event labels until one satisfies `stop` (inclusive).
async fn collect_until<K: kube::Resource>(
    s: &mut (impl Stream<Item = Item<K>> + Unpin),
    stop: impl Fn(&str) -> bool,
) -> Vec<String> {
    within(20, "watcher events", async {
        let mut out = Vec::new();
        while let Some(ev) = s.next().await {
            let l = label(&ev);
            let done = stop(&l);
            out.push(l);
            if done {
                return out;
            }
        }
        panic!("watcher ended: {out:?}");
    })
    .await
}

fn seed(served: &Served, n: usize) {
    for i in 0..n {
        served
            .sim
            .create(
                "cm",
                configmap("ns", &format!("cm{i}"), json!({"i": i.to_string()})),
            )
            .unwrap();
    }
}

#[tokio::test]
async fn paginated_initial_list_then_live_events() {
    let served = Served::start(fast_config()).await;
    seed(&served, 7);
    let api: Api<ConfigMap> = Api::all(served.client());
    let mut w = watcher::watcher(api, watcher::Config::default().page_size(3)).boxed();
    let evs = collect_until(&mut w, |l| l == "InitDone").await;
    let mut expected = vec!["Init".to_owned()];
    expected.extend((0..7).map(|i| format!("InitApply(cm{i})")));
    expected.push("InitDone".into());
    assert_eq!(evs, expected);

    served
        .sim
        .update("cm", "ns", "cm3", |o| o["data"]["k"] = json!("changed"))
        .unwrap();
    served.sim.delete("cm", "ns", "cm0").unwrap();
    served
        .sim
        .create("cm", configmap("other", "fresh", json!({})))
        .unwrap();
    let evs = collect_until(&mut w, |l| l == "Apply(fresh)").await;
    assert_eq!(evs, vec!["Apply(cm3)", "Delete(cm0)", "Apply(fresh)"]);
}

#[tokio::test]
async fn namespaced_and_selected_watch() {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create("cm", configmap("a", "x", json!({"app": "web"})))
        .unwrap();
    served
        .sim
        .create("cm", configmap("a", "y", json!({"app": "db"})))
        .unwrap();
    served
        .sim
        .create("cm", configmap("b", "z", json!({"app": "web"})))
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(served.client(), "a");
    let mut w = watcher::watcher(api, watcher::Config::default().labels("app in (web)")).boxed();
    let evs = collect_until(&mut w, |l| l == "InitDone").await;
    assert_eq!(evs, vec!["Init", "InitApply(x)", "InitDone"]);
    // x stops matching: DELETED; y starts matching: ADDED.
    served
        .sim
        .update("cm", "a", "x", |o| {
            o["metadata"]["labels"]["app"] = json!("db")
        })
        .unwrap();
    served
        .sim
        .update("cm", "a", "y", |o| {
            o["metadata"]["labels"]["app"] = json!("web")
        })
        .unwrap();
    served
        .sim
        .update("cm", "b", "z", |o| o["data"]["k"] = json!("other ns"))
        .unwrap();
    let evs = collect_until(&mut w, |l| l == "Apply(y)").await;
    assert_eq!(evs, vec!["Delete(x)", "Apply(y)"]);
}

#[tokio::test]
async fn expired_history_relists() {
    let served = Served::start(fast_config()).await;
    seed(&served, 3);
    let api: Api<ConfigMap> = Api::all(served.client());
    let mut w = watcher::watcher(api, watcher::Config::default()).boxed();
    collect_until(&mut w, |l| l == "InitDone").await;
    served
        .sim
        .create("cm", configmap("ns", "late", json!({})))
        .unwrap();
    collect_until(&mut w, |l| l == "Apply(late)").await;

    // Delete while the watch is cut, then forget history: the reconnect gets ERROR 410 and relists.
    served.sim.expire_and_drop_watches();
    served.sim.delete("cm", "ns", "cm1").unwrap();
    let evs = collect_until(&mut w, |l| l == "InitDone").await;
    assert!(
        evs[0].starts_with("Err(") && evs[0].contains("Expired"),
        "{evs:?}"
    );
    assert_eq!(
        &evs[1..],
        [
            "Init",
            "InitApply(cm0)",
            "InitApply(cm2)",
            "InitApply(late)",
            "InitDone"
        ]
    );
}

#[tokio::test]
async fn dropped_watches_resume_silently() {
    let served = Served::start(fast_config()).await;
    seed(&served, 2);
    let api: Api<ConfigMap> = Api::all(served.client());
    let mut w = watcher::watcher(api, watcher::Config::default()).boxed();
    collect_until(&mut w, |l| l == "InitDone").await;
    served.sim.drop_watches();
    served
        .sim
        .create("cm", configmap("ns", "after", json!({})))
        .unwrap();
    let evs = collect_until(&mut w, |l| l == "Apply(after)").await;
    assert_eq!(
        evs,
        vec!["Apply(after)"],
        "no relist, no error, nothing lost"
    );
}

#[tokio::test]
async fn streaming_lists_reach_init_done() {
    let served = Served::start(fast_config()).await;
    seed(&served, 4);
    let api: Api<ConfigMap> = Api::all(served.client());
    let mut w = watcher::watcher(api, watcher::Config::default().streaming_lists()).boxed();
    let evs = collect_until(&mut w, |l| l == "InitDone").await;
    assert_eq!(
        evs,
        vec![
            "Init",
            "InitApply(cm0)",
            "InitApply(cm1)",
            "InitApply(cm2)",
            "InitApply(cm3)",
            "InitDone"
        ]
    );
    served.sim.delete("cm", "ns", "cm2").unwrap();
    let evs = collect_until(&mut w, |l| l.starts_with("Delete")).await;
    assert_eq!(evs, vec!["Delete(cm2)"]);
    // A reconnect resumes without re-sending the initial events.
    served.sim.drop_watches();
    served
        .sim
        .create("cm", configmap("ns", "n", json!({})))
        .unwrap();
    let evs = collect_until(&mut w, |l| l == "Apply(n)").await;
    assert_eq!(evs, vec!["Apply(n)"]);
}

#[tokio::test]
async fn injected_500_surfaces_and_recovers() {
    let served = Served::start(fast_config()).await;
    seed(&served, 2);
    served.sim.fail_kind("ConfigMap", 500).unwrap();
    let api: Api<ConfigMap> = Api::all(served.client());
    let mut w = watcher::watcher(api, watcher::Config::default()).boxed();
    let evs = collect_until(&mut w, |l| l.starts_with("Err")).await;
    assert_eq!(evs[0], "Init");
    assert!(evs[1].contains("500"), "{evs:?}");
    served.sim.clear_failure("ConfigMap").unwrap();
    let evs = collect_until(&mut w, |l| l == "InitDone").await;
    assert_eq!(
        evs,
        vec!["Init", "InitApply(cm0)", "InitApply(cm1)", "InitDone"]
    );

    // 403 on the watch restart surfaces as an error too, then recovers.
    served.sim.fail_kind("cm", 403).unwrap();
    served.sim.drop_watches();
    let evs = collect_until(&mut w, |l| l.starts_with("Err")).await;
    assert!(evs[0].contains("403"), "{evs:?}");
    served.sim.clear_failure("cm").unwrap();
    served
        .sim
        .create("cm", configmap("ns", "back", json!({})))
        .unwrap();
    let evs = collect_until(&mut w, |l| l == "Apply(back)").await;
    assert!(
        evs.iter()
            .all(|l| l.starts_with("Err") || l == "Apply(back)"),
        "{evs:?}"
    );
}

#[tokio::test]
async fn pods_from_fixture_deserialize() {
    let served = Served::start(fast_config()).await;
    common::fixture(&served.sim);
    let api: Api<Pod> = Api::namespaced(served.client(), "shop");
    let pods = api.list(&Default::default()).await.unwrap();
    assert_eq!(pods.items.len(), 2);
    assert_eq!(
        pods.items[0].spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-1")
    );
    let version = served.client().apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}
