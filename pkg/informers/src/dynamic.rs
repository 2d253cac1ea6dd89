//! The supervisor of the kinds outside the table: it discovers them at start and every
//! `rediscover_interval`, follows CRDs ([`crate::crd`]) and the rules in force, and keeps one
//! dynamic watcher (or poller) per selected kind and scope running in the right
//! [`Mode`] and [`Access`]. A kind that leaves (its CRD deleted, no longer served) is stopped and
//! its objects leave the graph: a `ListStarted` and a `ListCompleted` with nothing seen.

use std::collections::{BTreeMap, HashMap, HashSet};

use astrolabe_model::{Kind, Resource};
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Discover, Rules};
use crate::crd::CrdEvent;
use crate::discovery::{Served, discover};
use crate::processors::common::{exists, finish, from_meta};
use crate::select::{Access, Mode, cap_order};
use crate::watch::{Ctx, events, run};
use crate::{Error, InformerConfig, IngestEvent, Result};

/// How one kind is read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    served: Served,
    mode: Mode,
    access: Access,
}

/// A kind being read: its plan, and its tasks (one per scope) with their stop token.
struct Running {
    plan: Plan,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Keeps the dynamic watchers in line with discovery, CRDs, the selection and the rules.
pub(crate) struct Supervisor {
    ctx: Ctx,
    config: InformerConfig,
    /// Places of the watch cap the typed watchers took.
    typed: usize,
    /// What discovery and the CRD watch say is served, by kind.
    served: BTreeMap<Kind, Served>,
    /// The kind each CRD serves, by CRD name.
    crds: HashMap<String, Served>,
    running: HashMap<Kind, Running>,
}

impl Supervisor {
    pub(crate) fn new(ctx: Ctx, config: InformerConfig, typed: usize) -> Supervisor {
        debug_assert_eq!(config.discover, Discover::All);
        Supervisor {
            ctx,
            config,
            typed,
            served: BTreeMap::new(),
            crds: HashMap::new(),
            running: HashMap::new(),
        }
    }

    /// Runs until shutdown. Ends with an error only when a plain name of the selection names
    /// no kind the API server serves.
    pub(crate) async fn run(mut self) -> Result<()> {
        let shutdown = self.ctx.shutdown.clone();
        let (crd_tx, mut crd_rx) = mpsc::channel(64);
        let crds = tokio::spawn(crate::crd::watch(
            self.ctx.client.clone(),
            crd_tx,
            shutdown.clone(),
        ));
        let first = self.rediscover(true).await;
        self.ctx.status.set_discovering(false);
        first?;
        let mut rules = self.config.rules.clone();
        let mut rules_live = true;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.rediscover_interval,
            self.config.rediscover_interval,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => { self.rediscover(false).await?; }
                Some(event) = crd_rx.recv() => {
                    self.on_crd(event);
                    self.reconcile().await;
                }
                live = rules.changed(), if rules_live => {
                    rules_live = live;
                    self.reconcile().await;
                }
            }
        }
        for (_, running) in self.running.drain() {
            running.stop.cancel();
        }
        crds.abort();
        Ok(())
    }

    /// Discovers again and reconciles. `first`: plain names of the selection must name a kind
    /// that is served.
    async fn rediscover(&mut self, first: bool) -> Result<()> {
        match discover(&self.ctx.client).await {
            Ok(found) => {
                let mut served: BTreeMap<Kind, Served> = self
                    .served
                    .iter()
                    .filter(|(k, _)| found.failed_groups.iter().any(|g| g == k.group()))
                    .map(|(k, s)| (k.clone(), s.clone()))
                    .collect();
                served.extend(found.served.into_iter().map(|s| (s.kind.clone(), s)));
                // An established CRD is served, whatever a lagging discovery says.
                served.extend(self.crds.values().map(|s| (s.kind.clone(), s.clone())));
                self.served = served;
                if first {
                    let mut known = Kind::WATCHED.to_vec();
                    known.extend(self.served.keys().cloned());
                    if let Some(name) = self.config.selection.unknown_name(&known) {
                        let mut valid: Vec<String> =
                            known.iter().map(|k| k.qualified().into_owned()).collect();
                        valid.sort();
                        return Err(Error::UnknownKind {
                            name: name.to_owned(),
                            valid: valid.join(", "),
                        });
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "discovery failed; kept what was known, retried later");
            }
        }
        self.reconcile().await;
        Ok(())
    }

    /// Takes a CRD event into `served`.
    fn on_crd(&mut self, event: CrdEvent) {
        let changes = match event {
            CrdEvent::Listed(all) => {
                let names: HashSet<&String> = all.iter().map(|(n, _)| n).collect();
                let mut changes: Vec<(String, Option<Served>)> = self
                    .crds
                    .keys()
                    .filter(|n| !names.contains(n))
                    .map(|n| (n.clone(), None))
                    .collect();
                changes.extend(all);
                changes
            }
            CrdEvent::Changed(name, served) => vec![(name, served)],
            CrdEvent::Deleted(name) => vec![(name, None)],
        };
        for (name, served) in changes {
            if let Some(old) = self.crds.remove(&name) {
                self.served.remove(&old.kind);
            }
            if let Some(served) = served {
                tracing::debug!(crd = %name, kind = %served.kind.qualified(), version = %served.resource.version, "CRD served");
                self.served.insert(served.kind.clone(), served.clone());
                self.crds.insert(name, served);
            }
        }
    }

    /// What should run: the selected served kinds, in their mode, with the cap's access.
    fn plans(&self, rules: &Rules) -> HashMap<Kind, Plan> {
        let selected = self
            .served
            .keys()
            .filter(|k| self.config.selection.selects(k))
            .cloned();
        let room = self.config.max_watches.saturating_sub(self.typed);
        cap_order(selected, &rules.kinds, room)
            .into_iter()
            .filter_map(|(kind, access)| {
                let served = self.served.get(&kind)?.clone();
                let mode = if rules.kinds.contains(&kind) {
                    Mode::Full
                } else {
                    Mode::Metadata
                };
                Some((
                    kind,
                    Plan {
                        served,
                        mode,
                        access,
                    },
                ))
            })
            .collect()
    }

    /// Stops what should no longer run (its objects leave the graph), restarts what runs in
    /// another way, starts what is new.
    async fn reconcile(&mut self) {
        let rules = self.config.rules.current();
        let mut plans = self.plans(&rules);
        let kinds: Vec<Kind> = self.running.keys().cloned().collect();
        for kind in kinds {
            let keep = plans.get(&kind).is_some_and(|p| {
                self.running.get(&kind).is_some_and(|r| {
                    !r.plan.served.differs(&p.served)
                        && r.plan.mode == p.mode
                        && r.plan.access == p.access
                })
            });
            if keep {
                plans.remove(&kind);
                continue;
            }
            let gone = !plans.contains_key(&kind);
            self.stop(&kind, gone).await;
        }
        let mut plans: Vec<(Kind, Plan)> = plans.into_iter().collect();
        plans.sort_by(|a, b| a.0.cmp(&b.0));
        for (kind, plan) in plans {
            self.start(kind, plan);
        }
    }

    /// Stops `kind`'s tasks; `purge`: its objects leave the graph.
    async fn stop(&mut self, kind: &Kind, purge: bool) {
        let Some(running) = self.running.remove(kind) else {
            return;
        };
        running.stop.cancel();
        for task in running.tasks {
            if let Err(err) = task.await {
                tracing::error!(%kind, %err, "watcher task failed");
            }
        }
        self.ctx.status.unregister(kind);
        self.ctx.metrics.watched(kind, None);
        if !purge {
            return;
        }
        tracing::info!(kind = %kind.qualified(), "no longer served or selected; its objects leave the graph");
        for scope in self.config.scopes(kind) {
            let namespace = scope.map(Into::into);
            let events = [
                IngestEvent::ListStarted {
                    kind: kind.clone(),
                    namespace: namespace.clone(),
                },
                IngestEvent::ListCompleted {
                    kind: kind.clone(),
                    namespace,
                    seen: HashSet::new(),
                },
            ];
            for event in events {
                if self.ctx.tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Starts `kind`'s tasks, one per scope.
    fn start(&mut self, kind: Kind, plan: Plan) {
        let scopes = self.config.scopes(&kind);
        tracing::info!(kind = %kind.qualified(), version = %plan.served.resource.version, mode = plan.mode.as_str(), access = plan.access.as_str(), "watching");
        self.ctx.status.register(&kind, scopes.len());
        self.ctx.status.set_how(&kind, plan.mode, plan.access);
        self.ctx
            .metrics
            .watched(&kind, Some((plan.mode, plan.access)));
        let stop = self.ctx.shutdown.child_token();
        let tasks = scopes
            .into_iter()
            .map(|scope| {
                let mut ctx = self.ctx.scoped(scope);
                ctx.shutdown = stop.clone();
                tokio::spawn(watch_dynamic(ctx, kind.clone(), plan.clone()))
            })
            .collect();
        self.running.insert(kind, Running { plan, stop, tasks });
    }
}

/// The `Api` of a dynamic kind in a scope.
fn dynamic_api<K>(
    client: kube::Client,
    ar: &ApiResource,
    namespaced: bool,
    scope: Option<&str>,
) -> Api<K>
where
    K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
{
    match scope {
        Some(ns) if namespaced => Api::namespaced_with(client, ns, ar),
        _ => Api::all_with(client, ar),
    }
}

/// One dynamic watcher (or poller) of `kind` in `ctx`'s scope.
async fn watch_dynamic(ctx: Ctx, kind: Kind, plan: Plan) {
    let ar = plan.served.resource.clone();
    let namespaced = kind.is_namespaced();
    let scope = ctx.scope.clone();
    let access = plan.access;
    match plan.mode {
        Mode::Metadata | Mode::Typed => {
            let k = kind.clone();
            run(
                ctx,
                kind,
                move |client, ctx| {
                    let api = dynamic_api::<PartialObjectMeta<DynamicObject>>(
                        client,
                        &ar,
                        namespaced,
                        scope.as_deref(),
                    );
                    events(api, ctx, access)
                },
                move |obj: PartialObjectMeta<DynamicObject>| metadata_only(&k, &obj),
            )
            .await;
        }
        Mode::Full => {
            let k = kind.clone();
            let rules = ctx.rules.clone();
            run(
                ctx,
                kind,
                move |client, ctx| {
                    let api =
                        dynamic_api::<DynamicObject>(client, &ar, namespaced, scope.as_deref());
                    events(api, ctx, access)
                },
                move |obj: DynamicObject| {
                    let mut r = from_meta(k.clone(), &obj.metadata);
                    r.status = exists(&k);
                    let mut r = finish(r);
                    rules.current().apply(&k, &mut r, || Some(rule_view(obj)));
                    r
                },
            )
            .await;
        }
    }
}

/// The object as rules read it, built by moving its contents rather than copying them: its
/// fields (`spec`, `status`, ...), `apiVersion`, `kind`, and the parts of `metadata` rules may
/// read (name, namespace, labels, annotations; not `managedFields`).
fn rule_view(obj: DynamicObject) -> serde_json::Value {
    let mut map = match obj.data {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(types) = obj.types {
        map.insert("apiVersion".into(), types.api_version.into());
        map.insert("kind".into(), types.kind.into());
    }
    let m = obj.metadata;
    let mut meta = serde_json::Map::new();
    let strings = |v: std::collections::BTreeMap<String, String>| {
        serde_json::Value::Object(v.into_iter().map(|(k, v)| (k, v.into())).collect())
    };
    if let Some(name) = m.name {
        meta.insert("name".into(), name.into());
    }
    if let Some(namespace) = m.namespace {
        meta.insert("namespace".into(), namespace.into());
    }
    if let Some(labels) = m.labels {
        meta.insert("labels".into(), strings(labels));
    }
    if let Some(annotations) = m.annotations {
        meta.insert("annotations".into(), strings(annotations));
    }
    map.insert("metadata".into(), serde_json::Value::Object(meta));
    serde_json::Value::Object(map)
}

/// A kind outside the table read metadata-only: identity, labels, kept annotations, owners.
pub fn metadata_only(kind: &Kind, obj: &PartialObjectMeta<DynamicObject>) -> Resource {
    let mut r = from_meta(kind.clone(), &obj.metadata);
    r.status = exists(kind);
    finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RulesFeed;
    use crate::{InformerMetrics, SyncStatus};
    use tokio::sync::mpsc::Receiver;

    fn served(version: &str) -> Served {
        let resource = ApiResource {
            group: "cert-manager.io".into(),
            version: version.into(),
            api_version: format!("cert-manager.io/{version}"),
            kind: "Certificate".into(),
            plural: "certificates".into(),
        };
        Served::new(resource, true).expect("not built-in")
    }

    fn supervisor(rules: RulesFeed) -> (Supervisor, Receiver<IngestEvent>) {
        let (tx, rx) = mpsc::channel(16);
        // Nothing listens there: the watchers retry in the background, which is all this needs.
        let client = crate::client_for_url("http://127.0.0.1:9").expect("client");
        let config = InformerConfig {
            rules,
            ..InformerConfig::default()
        };
        let ctx = Ctx::new(
            &client,
            &config,
            &tx,
            &SyncStatus::new(),
            &InformerMetrics::unregistered(),
            &CancellationToken::new(),
        );
        (Supervisor::new(ctx, config, Kind::WATCHED.len()), rx)
    }

    fn plan(s: &Supervisor, kind: &Kind) -> Option<Plan> {
        s.running.get(kind).map(|r| r.plan.clone())
    }

    #[tokio::test]
    async fn crds_start_change_and_stop_their_watch() {
        let (mut s, mut rx) = supervisor(RulesFeed::default());
        let v1 = served("v1beta1");
        let kind = v1.kind.clone();
        s.on_crd(CrdEvent::Changed(
            "certificates.cert-manager.io".into(),
            Some(v1),
        ));
        s.reconcile().await;
        let p = plan(&s, &kind).expect("watched");
        assert_eq!((p.mode, p.access), (Mode::Metadata, Access::Watch));
        assert_eq!(p.served.resource.version, "v1beta1");
        assert_eq!(s.ctx.status.report()[0].mode, "metadata");

        // A new storage version: watched again at it, nothing purged.
        s.on_crd(CrdEvent::Changed(
            "certificates.cert-manager.io".into(),
            Some(served("v1")),
        ));
        s.reconcile().await;
        assert_eq!(
            plan(&s, &kind).expect("watched").served.resource.version,
            "v1"
        );
        assert!(rx.try_recv().is_err(), "a re-watch purges nothing");

        // Deleted: the watch stops and every object of the kind leaves the graph.
        s.on_crd(CrdEvent::Deleted("certificates.cert-manager.io".into()));
        s.reconcile().await;
        assert!(plan(&s, &kind).is_none());
        assert!(s.ctx.status.report().is_empty());
        assert!(
            matches!(rx.try_recv(), Ok(IngestEvent::ListStarted { kind: k, namespace: None }) if k == kind)
        );
        match rx.try_recv() {
            Ok(IngestEvent::ListCompleted { kind: k, seen, .. }) => {
                assert_eq!(k, kind);
                assert!(seen.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        // A relist of the CRDs without it says the same.
        s.on_crd(CrdEvent::Listed(vec![(
            "certificates.cert-manager.io".into(),
            Some(served("v1")),
        )]));
        s.reconcile().await;
        assert!(plan(&s, &kind).is_some());
        s.on_crd(CrdEvent::Listed(Vec::new()));
        s.reconcile().await;
        assert!(plan(&s, &kind).is_none());
    }

    #[tokio::test]
    async fn a_kind_with_rules_is_watched_again_whole() {
        let (rules, feed) = RulesFeed::channel(Rules::default());
        let (mut s, _rx) = supervisor(feed);
        let v1 = served("v1");
        let kind = v1.kind.clone();
        s.on_crd(CrdEvent::Changed("c".into(), Some(v1)));
        s.reconcile().await;
        assert_eq!(plan(&s, &kind).expect("watched").mode, Mode::Metadata);
        rules.set(Rules {
            kinds: [kind.clone()].into_iter().collect(),
            hook: None,
            ..Rules::default()
        });
        s.reconcile().await;
        assert_eq!(plan(&s, &kind).expect("watched").mode, Mode::Full);
        assert_eq!(s.ctx.status.report()[0].mode, "full");
        // No room left past the built-in kinds: polled.
        s.config.max_watches = Kind::WATCHED.len();
        s.reconcile().await;
        assert_eq!(plan(&s, &kind).expect("polled").access, Access::Poll);
        // Out of the selection: stopped.
        s.config.selection =
            crate::Selection::new(&[], Some(&["*.cert-manager.io".to_owned()])).expect("valid");
        s.reconcile().await;
        assert!(plan(&s, &kind).is_none());
    }
}
