#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Leader election with the real kube-rs client against the emulator's Leases over HTTP: one
//! leader at a time, takeover when the leader stops renewing (and not while it renews), a
//! deposed leader that learns it, a leader that cannot renew stepping down, release on
//! shutdown, and concurrent takeovers electing exactly one.

use std::time::{Duration, Instant};

use astrolabe_informers::lease::{ElectionConfig, Elector, Role};
use astrolabe_kubesim::SimConfig;
use astrolabe_testkit::Emulator;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const NS: &str = "astrolabe";
const NAME: &str = "astrolabe-leader";

async fn emulator() -> Emulator {
    let emulator = Emulator::start(SimConfig::default()).await;
    emulator
        .sim
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .unwrap();
    emulator
}

fn config(identity: &str) -> ElectionConfig {
    ElectionConfig {
        namespace: NS.to_owned(),
        name: NAME.to_owned(),
        identity: identity.to_owned(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1_000),
        retry_period: Duration::from_millis(100),
    }
}

async fn lease(emulator: &Emulator) -> Lease {
    Api::<Lease>::namespaced(emulator.client(), NS)
        .get(NAME)
        .await
        .unwrap()
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref()?.holder_identity.clone()
}

fn transitions(lease: &Lease) -> i32 {
    lease.spec.as_ref().unwrap().lease_transitions.unwrap()
}

/// Waits (at most 20 s, a failure bound) for the published role to satisfy `want`.
async fn role_until(rx: &mut watch::Receiver<Role>, what: &str, want: impl Fn(&Role) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        rx.wait_for(|r| want(r)).await.is_ok()
    })
    .await;
    match waited {
        Ok(true) => {}
        Ok(false) => panic!("the elector's task ended before {what}"),
        Err(_) => panic!("no {what} within 20 s: {:?}", *rx.borrow()),
    }
}

/// An elector for `identity` running alone, once it leads.
async fn leading(
    emulator: &Emulator,
    identity: &str,
) -> (CancellationToken, watch::Receiver<Role>, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let (mut rx, task) = Elector::new(emulator.client(), config(identity)).run(shutdown.clone());
    role_until(&mut rx, "leading", Role::is_leader).await;
    (shutdown, rx, task)
}

#[tokio::test]
async fn a_follower_takes_over_when_the_leader_stops_renewing() {
    let emulator = emulator().await;
    let mut a = Elector::new(emulator.client(), config("a"));
    let mut b = Elector::new(emulator.client(), config("b"));
    assert_eq!(
        a.try_acquire_or_renew().await.unwrap(),
        Role::Leader { term: 0 }
    );
    assert_eq!(
        b.try_acquire_or_renew().await.unwrap(),
        Role::Follower {
            leader: Some("a".into())
        }
    );

    // `a` stops renewing (a paused or dead process); `b` runs.
    let shutdown = CancellationToken::new();
    let (mut rx, task) = b.run(shutdown.clone());
    role_until(&mut rx, "takeover by b", Role::is_leader).await;
    assert_eq!(*rx.borrow(), Role::Leader { term: 1 });
    let l = lease(&emulator).await;
    assert_eq!((holder(&l).as_deref(), transitions(&l)), (Some("b"), 1));

    // `a` wakes up: its next round tells it that `b` leads.
    assert_eq!(
        a.try_acquire_or_renew().await.unwrap(),
        Role::Follower {
            leader: Some("b".into())
        }
    );
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_renewing_leader_keeps_the_lease() {
    let emulator = emulator().await;
    let (shutdown, rx, task) = leading(&emulator, "a").await;

    // For one and a half lease durations, `b` finds the lease held by `a`, renewed.
    let mut b = Elector::new(emulator.client(), config("b"));
    let until = Instant::now() + Duration::from_millis(3_000);
    let mut renewals = std::collections::BTreeSet::new();
    while Instant::now() < until {
        assert_eq!(
            b.try_acquire_or_renew().await.unwrap(),
            Role::Follower {
                leader: Some("a".into())
            }
        );
        let l = lease(&emulator).await;
        renewals.insert(format!("{:?}", l.spec.unwrap().renew_time));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewals.len() > 2, "a renewed: {renewals:?}");
    assert_eq!(*rx.borrow(), Role::Leader { term: 0 });
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_and_leads_again_when_it_can() {
    let emulator = emulator().await;
    let (shutdown, mut rx, task) = leading(&emulator, "a").await;

    // The API server refuses every Lease request: past the renew deadline, `a` steps down.
    emulator.sim.fail_kind("leases", 500).unwrap();
    role_until(&mut rx, "a stepping down", |r| !r.is_leader()).await;
    emulator.sim.clear_failure("leases").unwrap();
    // Nobody took the lease meanwhile: `a` renews it as its own, in the same term.
    role_until(&mut rx, "a leading again", Role::is_leader).await;
    assert_eq!(*rx.borrow(), Role::Leader { term: 0 });
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_leader_releases_the_lease_on_shutdown() {
    let emulator = emulator().await;
    let (shutdown, rx, task) = leading(&emulator, "a").await;
    shutdown.cancel();
    task.await.unwrap();
    assert!(!rx.borrow().is_leader());
    assert_eq!(holder(&lease(&emulator).await), None);

    // The next round of another replica takes it, without waiting for the lease to run out.
    let mut b = Elector::new(emulator.client(), config("b"));
    assert_eq!(
        b.try_acquire_or_renew().await.unwrap(),
        Role::Leader { term: 1 }
    );
}

#[tokio::test]
async fn concurrent_takeovers_elect_exactly_one() {
    let emulator = emulator().await;
    let mut electors: Vec<Elector> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|id| Elector::new(emulator.client(), config(id)))
        .collect();
    for round in 0..8 {
        let roles = futures::future::join_all(
            electors
                .iter_mut()
                .map(|e| async { e.try_acquire_or_renew().await.unwrap() }),
        )
        .await;
        let leaders: Vec<usize> = (0..roles.len()).filter(|&i| roles[i].is_leader()).collect();
        assert_eq!(leaders.len(), 1, "round {round}: {roles:?}");
        let l = lease(&emulator).await;
        assert_eq!(
            holder(&l).as_deref(),
            Some(electors[leaders[0]].config().identity.as_str())
        );
        // The leader gives it up for the next round's race.
        electors[leaders[0]].release().await.unwrap();
    }
}
