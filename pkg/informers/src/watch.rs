//! The watchers: one `kube::runtime::watcher` per kind and scope, each in its own task, turning
//! watcher events into [`IngestEvent`]s on one channel.

use std::collections::HashSet;
use std::pin::pin;
use std::time::{Duration, Instant};

use astrolabe_model::{Kind, ObjectKey, Str, Uid};
use futures::{FutureExt, StreamExt};
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc::Sender;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::processors::{Processor, kind_type_match, with_kind_type};
use crate::{InformerConfig, InformerMetrics, IngestEvent, SyncStatus};

/// Most ingest events one watcher takes from its stream before sending them: what a listed page
/// already holds is translated in one go, then sent, instead of one task wake-up per object.
pub const SEND_BATCH: usize = 512;

/// How often a watcher that keeps failing for the same reason logs it again (at WARN, with the
/// count). Its first error, a change of reason and its recovery are logged when they happen;
/// the errors in between only at DEBUG, so an unreachable API server costs one line per kind
/// and state change instead of one per retry.
pub const STILL_FAILING_EVERY: Duration = Duration::from_secs(600);

/// Starts one watcher per configured kind (and per namespace when namespaces are given), all
/// sending into `tx`. The returned task ends when `shutdown` is cancelled, when the receiver is
/// dropped, or if a watcher task panics (then every watcher is stopped, so the caller notices).
/// Errors from the cluster never end it: each watcher retries with kube's default backoff and
/// reports errors in `status` and `metrics`.
///
/// Must be called within a Tokio runtime. The kinds are registered in `status` before this
/// returns, so readiness is "not listed" from the start.
pub fn spawn(
    client: kube::Client,
    config: InformerConfig,
    tx: Sender<IngestEvent>,
    status: SyncStatus,
    metrics: InformerMetrics,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    for kind in &config.kinds {
        status.register(kind, config.scopes(kind).len());
    }
    tokio::spawn(async move {
        let stop = shutdown.child_token();
        let mut tasks = JoinSet::new();
        let watcher_config = watcher_config(&config);
        for kind in &config.kinds {
            for scope in config.scopes(kind) {
                let ctx = Ctx {
                    client: client.clone(),
                    scope,
                    config: watcher_config.clone(),
                    tx: tx.clone(),
                    status: status.clone(),
                    metrics: metrics.clone(),
                    shutdown: stop.clone(),
                };
                with_kind_type!(kind, K => {
                    tasks.spawn(run::<K>(ctx));
                }, _ => tracing::warn!(%kind, "not a watched kind; skipped"));
            }
        }
        drop(tx);
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                tracing::error!(%err, "informer task failed; stopping every watcher");
            }
            // A watcher only ends on shutdown, a dropped receiver or a panic: stop the rest.
            stop.cancel();
        }
        tracing::info!("informers stopped");
    })
}

/// The kube watcher configuration for an [`InformerConfig`].
fn watcher_config(config: &InformerConfig) -> watcher::Config {
    let mut wc = watcher::Config::default().page_size(config.page_size);
    if let Some(sel) = &config.label_selector {
        wc = wc.labels(sel);
    }
    if config.streaming_lists {
        wc = wc.streaming_lists();
    }
    wc
}

/// What one watcher task needs.
struct Ctx {
    client: kube::Client,
    scope: Option<String>,
    config: watcher::Config,
    tx: Sender<IngestEvent>,
    status: SyncStatus,
    metrics: InformerMetrics,
    shutdown: CancellationToken,
}

/// One watcher: kind `K` in one scope.
async fn run<K: Processor>(ctx: Ctx) {
    let kind = <K as Processor>::kind();
    let api = K::api(ctx.client.clone(), ctx.scope.as_deref());
    let mut stream = pin!(watcher(api, ctx.config.clone()).default_backoff());
    let mut state = Translator::new(kind.clone(), ctx.scope.as_deref().map(Str::from));
    tracing::debug!(%kind, scope = ?ctx.scope, "watcher started");
    let mut out: Vec<IngestEvent> = Vec::with_capacity(SEND_BATCH);
    let mut ended = false;
    while !ended {
        let item = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break,
            () = ctx.tx.closed() => break,
            item = stream.next() => item,
        };
        match item {
            Some(item) => state.on_item(item, &ctx, &mut out),
            None => ended = true,
        }
        // The rest of a listed page is already decoded: take it without waiting, so a page
        // costs one wake-up and the watcher asks for the next page sooner.
        while !ended && out.len() < SEND_BATCH {
            match stream.next().now_or_never() {
                Some(Some(item)) => state.on_item(item, &ctx, &mut out),
                Some(None) => ended = true,
                None => break,
            }
        }
        for event in out.drain(..) {
            let sent = tokio::select! {
                biased;
                () = ctx.shutdown.cancelled() => false,
                r = ctx.tx.send(event) => r.is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
    if ended {
        tracing::warn!(%kind, "watch stream ended");
    }
    tracing::debug!(%kind, scope = ?ctx.scope, "watcher stopped");
}

/// Turns one watcher's events into ingest events and keeps its relist bookkeeping.
struct Translator {
    kind: Kind,
    scope: Option<Str>,
    /// UIDs seen since the current list started.
    seen: HashSet<Uid>,
    /// Between a list start and its completion.
    listing: bool,
    /// Completed a list at least once.
    listed_once: bool,
    /// The last error was a 403 (and nothing has succeeded since).
    forbidden: bool,
    /// Errors since the last success, if any: the watcher is retrying.
    failing: Option<Failing>,
}

/// A streak of errors with nothing succeeding in between.
struct Failing {
    /// The reason of the last error ([`classify`]).
    reason: &'static str,
    /// Errors in the streak.
    errors: u64,
    /// When the streak was last logged at WARN.
    warned_at: Instant,
}

impl Translator {
    fn new(kind: Kind, scope: Option<Str>) -> Self {
        Translator {
            kind,
            scope,
            seen: HashSet::new(),
            listing: false,
            listed_once: false,
            forbidden: false,
            failing: None,
        }
    }

    /// Translates one item of the watcher stream into `out`.
    fn on_item<K: Processor>(
        &mut self,
        item: watcher::Result<watcher::Event<K>>,
        ctx: &Ctx,
        out: &mut Vec<IngestEvent>,
    ) {
        match item {
            Ok(event) => out.extend(self.on_event(event, ctx)),
            Err(err) => self.on_error(&err, ctx),
        }
    }

    fn on_event<K: Processor>(
        &mut self,
        event: watcher::Event<K>,
        ctx: &Ctx,
    ) -> Option<IngestEvent> {
        match event {
            watcher::Event::Init => {
                // A repeated Init (a list that failed half way) discards the partial list; the
                // graph was already told a list started.
                self.seen.clear();
                if self.listing {
                    return None;
                }
                self.listing = true;
                ctx.status.list_started(&self.kind);
                ctx.metrics.relist(&self.kind);
                Some(IngestEvent::ListStarted {
                    kind: self.kind.clone(),
                    namespace: self.scope.clone(),
                })
            }
            watcher::Event::InitApply(obj) => {
                self.succeeded(ctx);
                let resource = obj.process();
                if resource.uid.as_str().is_empty() {
                    tracing::warn!(kind = %self.kind, name = %resource.name, "object without uid skipped");
                    return None;
                }
                self.seen.insert(resource.uid.clone());
                ctx.metrics.event(&self.kind, "init_apply");
                ctx.status.event(&self.kind, false);
                Some(IngestEvent::Upsert(resource))
            }
            watcher::Event::InitDone => {
                self.succeeded(ctx);
                self.listing = false;
                let now = jiff::Timestamp::now().as_second();
                ctx.status
                    .list_completed(&self.kind, !self.listed_once, now);
                ctx.metrics.synced(&self.kind, now);
                self.listed_once = true;
                tracing::debug!(kind = %self.kind, scope = ?self.scope, objects = self.seen.len(), "list completed");
                Some(IngestEvent::ListCompleted {
                    kind: self.kind.clone(),
                    namespace: self.scope.clone(),
                    seen: std::mem::take(&mut self.seen),
                })
            }
            watcher::Event::Apply(obj) => {
                self.succeeded(ctx);
                let resource = obj.process();
                if resource.uid.as_str().is_empty() {
                    tracing::warn!(kind = %self.kind, name = %resource.name, "object without uid skipped");
                    return None;
                }
                ctx.metrics.event(&self.kind, "apply");
                ctx.status.event(&self.kind, false);
                Some(IngestEvent::Upsert(resource))
            }
            watcher::Event::Delete(obj) => {
                self.succeeded(ctx);
                let uid = obj.uid().unwrap_or_default();
                let namespace = if self.kind.is_namespaced() {
                    obj.namespace().unwrap_or_default()
                } else {
                    String::new()
                };
                ctx.metrics.event(&self.kind, "delete");
                ctx.status.event(&self.kind, true);
                Some(IngestEvent::Delete {
                    uid: Uid::from(uid),
                    key: ObjectKey::new(self.kind.clone(), namespace, obj.name_any()),
                })
            }
        }
    }

    /// Something came back from the server: a retry streak is over, access is granted again.
    fn succeeded(&mut self, ctx: &Ctx) {
        if let Some(failing) = self.failing.take() {
            ctx.status.set_retrying(&self.kind, false);
            ctx.metrics
                .retrying(&self.kind, ctx.status.is_retrying(&self.kind));
            tracing::info!(kind = %self.kind, scope = ?self.scope, errors = failing.errors, "watch recovered");
        }
        if self.forbidden {
            self.forbidden = false;
            ctx.status.set_forbidden(&self.kind, false);
            ctx.metrics
                .forbidden(&self.kind, ctx.status.is_forbidden(&self.kind));
            tracing::info!(kind = %self.kind, scope = ?self.scope, "access granted again");
        }
    }

    fn on_error(&mut self, err: &watcher::Error, ctx: &Ctx) {
        let (reason, code) = classify(err);
        ctx.metrics.error(&self.kind, reason);
        ctx.status.error(&self.kind, err.to_string());
        if !matches!(err, watcher::Error::InitialListFailed(_)) {
            ctx.metrics.watch_restart(&self.kind);
        }
        if code == Some(403) && !self.forbidden {
            self.forbidden = true;
            ctx.status.set_forbidden(&self.kind, true);
            ctx.metrics.forbidden(&self.kind, true);
        }
        if code == Some(410) {
            tracing::info!(kind = %self.kind, scope = ?self.scope, "watch expired (410); relisting");
            return;
        }
        let now = Instant::now();
        match &mut self.failing {
            Some(f) if f.reason == reason => {
                f.errors += 1;
                if now.duration_since(f.warned_at) >= STILL_FAILING_EVERY {
                    f.warned_at = now;
                    tracing::warn!(kind = %self.kind, scope = ?self.scope, reason, errors = f.errors, error = %err, "watch still failing; retrying with backoff");
                } else {
                    tracing::debug!(kind = %self.kind, scope = ?self.scope, reason, errors = f.errors, error = %err, "watch error; retrying with backoff");
                }
            }
            failing => {
                let errors = failing.as_ref().map_or(0, |f| f.errors) + 1;
                if failing.is_none() {
                    ctx.status.set_retrying(&self.kind, true);
                    ctx.metrics.retrying(&self.kind, true);
                }
                *failing = Some(Failing {
                    reason,
                    errors,
                    warned_at: now,
                });
                tracing::warn!(kind = %self.kind, scope = ?self.scope, reason, error = %err, "watch failing; retrying with backoff");
            }
        }
    }
}

/// A low-cardinality reason for a watcher error, and the HTTP status code when there is one.
fn classify(err: &watcher::Error) -> (&'static str, Option<u16>) {
    let code = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => Some(status.code),
            kube::Error::SerdeError(_) => return ("decode", None),
            _ => return ("transport", None),
        },
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::NoResourceVersion => return ("no_resource_version", None),
    };
    let reason = match code {
        Some(401) => "unauthorized",
        Some(403) => "forbidden",
        Some(404) => "not_found",
        Some(410) => "gone",
        Some(429) => "throttled",
        Some(c) if c >= 500 => "server",
        _ => "client",
    };
    (reason, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::meta;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn ctx() -> (Ctx, tokio::sync::mpsc::Receiver<IngestEvent>) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let client = match crate::client_for_url("http://127.0.0.1:9") {
            Ok(c) => c,
            Err(err) => panic!("client: {err}"),
        };
        let status = SyncStatus::new();
        status.register(&Kind::ConfigMap, 1);
        (
            Ctx {
                client,
                scope: None,
                config: watcher::Config::default(),
                tx,
                status,
                metrics: InformerMetrics::unregistered(),
                shutdown: CancellationToken::new(),
            },
            rx,
        )
    }

    fn cm(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: meta("ns", name),
            ..Default::default()
        }
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("nope", "Forbidden").with_code(code),
        ))
    }

    #[tokio::test]
    async fn list_cycle_and_forbidden() {
        let (ctx, _rx) = ctx();
        let mut t = Translator::new(Kind::ConfigMap, None);
        let started = t.on_event::<ConfigMap>(watcher::Event::Init, &ctx);
        assert!(matches!(
            started,
            Some(IngestEvent::ListStarted {
                namespace: None,
                ..
            })
        ));
        t.on_error(&watcher::Error::InitialListFailed(api_error(403)), &ctx);
        assert!(ctx.status.is_forbidden(&Kind::ConfigMap));
        // The watcher starts over: a second Init sends nothing new.
        assert!(
            t.on_event::<ConfigMap>(watcher::Event::Init, &ctx)
                .is_none()
        );
        assert!(!ctx.status.all_listed());
        // Through `on_item`, as the watcher task calls it.
        let mut up = Vec::new();
        t.on_item(Ok(watcher::Event::InitApply(cm("a"))), &ctx, &mut up);
        assert!(matches!(&up[..], [IngestEvent::Upsert(r)] if r.name == "a"));
        assert!(!ctx.status.is_forbidden(&Kind::ConfigMap));
        let done = t.on_event::<ConfigMap>(watcher::Event::InitDone, &ctx);
        match &done {
            Some(IngestEvent::ListCompleted { seen, .. }) => {
                assert_eq!(seen.len(), 1);
                assert!(seen.contains(&Uid::from("uid-a")));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(ctx.status.all_listed());
        let del = t.on_event(watcher::Event::Delete(cm("a")), &ctx);
        assert_eq!(
            del,
            Some(IngestEvent::Delete {
                uid: Uid::from("uid-a"),
                key: ObjectKey::new(Kind::ConfigMap, "ns", "a"),
            })
        );
        // A relist starts a fresh seen set.
        assert!(
            t.on_event::<ConfigMap>(watcher::Event::Init, &ctx)
                .is_some()
        );
        match &t.on_event::<ConfigMap>(watcher::Event::InitDone, &ctx) {
            Some(IngestEvent::ListCompleted { seen, .. }) => assert!(seen.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
        let report = ctx.status.report();
        assert_eq!(report[0].relists, 2);
        assert_eq!(report[0].deletes, 1);
    }

    #[tokio::test]
    async fn a_retry_streak_is_one_state_until_something_succeeds() {
        let (ctx, _rx) = ctx();
        let mut t = Translator::new(Kind::ConfigMap, None);
        for _ in 0..3 {
            t.on_error(&watcher::Error::WatchStartFailed(api_error(500)), &ctx);
        }
        let streak = t.failing.as_ref().map(|f| (f.reason, f.errors));
        assert_eq!(streak, Some(("server", 3)));
        assert!(ctx.status.is_retrying(&Kind::ConfigMap));
        // Another reason is a new state of the same streak: still one retrying scope.
        t.on_error(&watcher::Error::WatchStartFailed(api_error(429)), &ctx);
        assert_eq!(t.failing.as_ref().map(|f| f.reason), Some("throttled"));
        assert!(ctx.status.report()[0].retrying);
        // A 410 is routine: no streak starts.
        let mut quiet = Translator::new(Kind::ConfigMap, None);
        quiet.on_error(
            &watcher::Error::WatchError(Box::new(
                kube::core::Status::failure("too old", "Expired").with_code(410),
            )),
            &ctx,
        );
        assert!(quiet.failing.is_none());
        // An event ends the streak: no longer retrying, the error forgotten.
        assert!(ctx.status.report()[0].last_error.is_some());
        let mut out = Vec::new();
        t.on_item(Ok(watcher::Event::Apply(cm("a"))), &ctx, &mut out);
        assert!(t.failing.is_none());
        let report = &ctx.status.report()[0];
        assert!(
            !report.retrying && report.last_error.is_none(),
            "{report:?}"
        );
        assert_eq!(report.errors, 5);
    }

    #[test]
    fn error_reasons() {
        let gone = watcher::Error::WatchError(Box::new(
            kube::core::Status::failure("too old", "Expired").with_code(410),
        ));
        assert_eq!(classify(&gone), ("gone", Some(410)));
        assert_eq!(
            classify(&watcher::Error::WatchStartFailed(api_error(500))),
            ("server", Some(500))
        );
        assert_eq!(
            classify(&watcher::Error::NoResourceVersion),
            ("no_resource_version", None)
        );
    }
}
