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
use crate::status::RetryLog;
use crate::{InformerConfig, InformerMetrics, IngestEvent, SyncStatus};

/// Most ingest events one watcher takes from its stream before sending them: what a listed page
/// already holds is translated in one go, then sent, instead of one task wake-up per object.
pub const SEND_BATCH: usize = 512;

/// How often a kind whose watchers keep failing logs it again (at WARN, with the count). The
/// first error of a kind, each new reason and the recovery are logged when they happen, once per
/// kind whatever the number of scopes; the errors in between only at DEBUG, so an unreachable
/// API server costs one line per kind and state change instead of one per retry.
pub const STILL_FAILING_EVERY: Duration = Duration::from_secs(600);

/// How long a failing watcher's request must have succeeded, with no error since, before the
/// watcher counts as recovered. A watch that starts again emits no event until an object
/// changes, so a successful answer is the sign; the wait keeps a watch that is accepted and
/// then fails at once (an error event, an undecodable list) one retry episode, not a recovery
/// and a new WARN per retry.
pub const RECOVERED_AFTER: Duration = Duration::from_secs(1);

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
    let (answered_tx, mut answered) = tokio::sync::watch::channel(());
    let client = crate::client::telling_answers(ctx.client.clone(), answered_tx);
    let api = K::api(client, ctx.scope.as_deref());
    let mut stream = pin!(watcher(api, ctx.config.clone()).default_backoff());
    let mut state = Translator::new(kind.clone(), ctx.scope.as_deref().map(Str::from));
    tracing::debug!(%kind, scope = ?ctx.scope, "watcher started");
    let mut out: Vec<IngestEvent> = Vec::with_capacity(SEND_BATCH);
    let mut ended = false;
    // While failing: when the API server answered a request of this watcher again, plus
    // RECOVERED_AFTER (the watcher recovers then unless an error came first).
    let mut recovers_at: Option<tokio::time::Instant> = None;
    while !ended {
        let errors = state.errors;
        let item = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break,
            () = ctx.tx.closed() => break,
            item = stream.next() => item,
            Ok(()) = answered.changed(), if state.failing && recovers_at.is_none() => {
                recovers_at = Some(tokio::time::Instant::now() + RECOVERED_AFTER);
                continue;
            }
            () = tokio::time::sleep_until(recovers_at.unwrap_or_else(tokio::time::Instant::now)),
                if state.failing && recovers_at.is_some() => {
                recovers_at = None;
                state.succeeded(&ctx);
                continue;
            }
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
        if state.errors != errors {
            // Answers before the error do not count; the watcher backs off before asking again.
            answered.borrow_and_update();
            recovers_at = None;
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
    /// An error came since the last success: the watcher is retrying.
    failing: bool,
    /// Errors seen.
    errors: u64,
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
            failing: false,
            errors: 0,
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
        if self.failing {
            self.failing = false;
            if let Some(errors) = ctx.status.retry_recovered(&self.kind) {
                ctx.metrics.retrying(&self.kind, false);
                tracing::info!(kind = %self.kind, scope = ?self.scope, errors, "watch recovered");
            }
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
        self.errors += 1;
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
        let entered = !self.failing;
        self.failing = true;
        ctx.metrics.retrying(&self.kind, true);
        match ctx
            .status
            .retry_failed(&self.kind, entered, reason, Instant::now())
        {
            RetryLog::Changed => {
                tracing::warn!(kind = %self.kind, scope = ?self.scope, reason, error = %err, "watch failing; retrying with backoff");
            }
            RetryLog::StillFailing(errors) => {
                tracing::warn!(kind = %self.kind, scope = ?self.scope, reason, errors, error = %err, "watch still failing; retrying with backoff");
            }
            RetryLog::Unchanged => {
                tracing::debug!(kind = %self.kind, scope = ?self.scope, reason, error = %err, "watch error; retrying with backoff");
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
        for code in [500, 500, 429] {
            t.on_error(&watcher::Error::WatchStartFailed(api_error(code)), &ctx);
        }
        assert!(t.failing);
        assert!(ctx.status.report()[0].retrying);
        // A 410 is routine: no streak starts.
        let mut quiet = Translator::new(Kind::ConfigMap, None);
        quiet.on_error(
            &watcher::Error::WatchError(Box::new(
                kube::core::Status::failure("too old", "Expired").with_code(410),
            )),
            &ctx,
        );
        assert!(!quiet.failing);
        // An event ends the streak: no longer retrying, the error forgotten.
        assert!(ctx.status.report()[0].last_error.is_some());
        let mut out = Vec::new();
        t.on_item(Ok(watcher::Event::Apply(cm("a"))), &ctx, &mut out);
        assert!(!t.failing);
        let report = &ctx.status.report()[0];
        assert!(
            !report.retrying && report.last_error.is_none(),
            "{report:?}"
        );
        assert_eq!(report.errors, 4);
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
