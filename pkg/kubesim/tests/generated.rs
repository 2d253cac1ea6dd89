#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A generated cluster renders to valid typed Kubernetes objects that keep every reference.

mod common;

use astrolabe_generator::generate;
use astrolabe_kubesim::{Sim, render::render};
use astrolabe_model::{EdgeKind, Target};
use common::Served;
use k8s_openapi::api::{
    apps::v1 as apps, core::v1 as core, discovery::v1 as discovery, networking::v1 as net,
};
use kube::Api;

#[test]
fn rendered_json_carries_the_references() {
    let resources = generate(5, 800);
    for res in &resources {
        let obj = render(res);
        let text = obj.to_string();
        assert_eq!(obj["metadata"]["uid"], res.uid.as_str());
        for r in &res.references {
            match &r.target {
                Target::Uid { uid, .. } => {
                    let owners = obj["metadata"]["ownerReferences"]
                        .as_array()
                        .expect("owner refs");
                    assert!(
                        owners.iter().any(|o| o["uid"] == uid.as_str()),
                        "{} owner {uid}",
                        res.name
                    );
                }
                Target::Key(k) if r.edge == EdgeKind::ClaimsFromTemplate => {
                    let tpl = obj["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
                        .as_str()
                        .expect("template");
                    assert!(
                        k.name.starts_with(&format!("{tpl}-{}-", res.name)),
                        "{}",
                        k.name
                    );
                }
                Target::Key(k) => assert!(
                    text.contains(&format!("\"{}\"", k.name)),
                    "{} {:?} -> {}",
                    res.name,
                    r.edge,
                    k.name
                ),
                Target::Selector { selector, .. } | Target::SelectorIn { selector, .. } => {
                    for (key, value) in selector.match_labels.iter() {
                        assert!(
                            text.contains(key) && text.contains(value),
                            "{} selector {key}={value}",
                            res.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn with_generated_loads_everything() {
    let resources = generate(9, 500);
    let sim = Sim::with_generated(9, 500).unwrap();
    let served = resources
        .iter()
        .filter(|r| astrolabe_kubesim::kinds::lookup(r.kind.as_str()).is_some())
        .count();
    assert_eq!(sim.object_count(), served);
    let pod = resources.iter().find(|r| r.kind.as_str() == "Pod").unwrap();
    let stored = sim.get("Pod", &pod.namespace, &pod.name).unwrap();
    assert_eq!(
        stored["metadata"]["uid"],
        pod.uid.as_str(),
        "generated UIDs are kept"
    );
}

async fn list_all<K>(client: &kube::Client) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", std::any::type_name::<K>()))
        .items
        .len()
}

#[tokio::test]
async fn typed_clients_decode_every_generated_kind() {
    let served = Served::start(common::fast_config()).await;
    served.sim.load_resources(&generate(2, 1500)).unwrap();
    let c = served.client();
    assert!(list_all::<core::Pod>(&c).await > 0);
    assert!(list_all::<core::Service>(&c).await > 0);
    assert!(list_all::<core::ConfigMap>(&c).await > 0);
    assert!(list_all::<core::Secret>(&c).await > 0);
    assert!(list_all::<core::ServiceAccount>(&c).await > 0);
    assert!(list_all::<core::PersistentVolumeClaim>(&c).await > 0);
    assert!(list_all::<discovery::EndpointSlice>(&c).await > 0);
    assert!(list_all::<apps::Deployment>(&c).await > 0);
    assert!(list_all::<apps::ReplicaSet>(&c).await > 0);
    assert!(list_all::<apps::StatefulSet>(&c).await > 0);
    assert!(list_all::<net::Ingress>(&c).await > 0);
    list_all::<apps::DaemonSet>(&c).await;
    list_all::<net::NetworkPolicy>(&c).await;
    list_all::<k8s_openapi::api::batch::v1::CronJob>(&c).await;
    list_all::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(&c).await;
    list_all::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(&c).await;
    list_all::<k8s_openapi::api::rbac::v1::RoleBinding>(&c).await;
    let nodes: Api<core::Node> = Api::all(c.clone());
    assert!(
        !nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let pvs: Api<core::PersistentVolume> = Api::all(c.clone());
    for pv in pvs.list(&Default::default()).await.unwrap().items {
        assert!(pv.spec.unwrap().claim_ref.unwrap().uid.is_some());
    }
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(c.clone());
    crbs.list(&Default::default()).await.unwrap();
    let sc: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(c.clone());
    sc.list(&Default::default()).await.unwrap();
    let ic: Api<net::IngressClass> = Api::all(c);
    ic.list(&Default::default()).await.unwrap();
}

/// Generated and churned objects decode strictly into their k8s-openapi types, so kubectl's
/// strict patches of them are judged on the patch alone.
#[test]
fn generated_objects_pass_strict_validation() {
    let sim = Sim::with_generated(4, 600).unwrap();
    let mut churner = astrolabe_kubesim::Churner::new(sim.clone(), 4);
    for _ in 0..300 {
        churner.step().unwrap();
    }
    let mut failures = Vec::new();
    for info in astrolabe_kubesim::KINDS {
        for obj in sim.list(info.plural).unwrap() {
            if let Err(e) = astrolabe_kubesim::validate::strict(info, &obj) {
                failures.push(format!("{} {}: {e}", info.kind, obj["metadata"]["name"]));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
