//! The watchers: one `kube::runtime::watcher` (or periodic list) per kind and scope, each in its
//! own task, turning watcher events into [`IngestEvent`]s on one channel.

use std::collections::HashSet;
use std::fmt::Debug;
use std::pin::pin;
use std::time::{Duration, Instant};

use astrolabe_model::{Kind, ObjectKey, Resource, Str, Uid};
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::Sender;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::{Discover, RulesFeed};
use crate::processors::{Processor, kind_type_match, with_kind_type};
use crate::select::{Access, Mode, cap_order};
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

/// Starts the informers: one typed watcher per selected built-in kind (and per namespace when
/// namespaces are given), and with [`Discover::All`] the [`crate::dynamic`] supervisor, which
/// discovers the other kinds and watches CRDs; all send into `tx`. The returned task ends when
/// `shutdown` is cancelled, when the receiver is dropped, if a watcher task panics (then every
/// watcher is stopped, so the caller notices), or with an error when a plain name in the
/// selection names no kind the API server serves. Errors from the cluster never end it: each
/// watcher retries with kube's default backoff and reports errors in `status` and `metrics`.
///
/// Must be called within a Tokio runtime. The built-in kinds are registered in `status` before
/// this returns, and with discovery `status` says it is discovering, so readiness is "not
/// listed" from the start.
pub fn spawn(
    client: kube::Client,
    config: InformerConfig,
    tx: Sender<IngestEvent>,
    status: SyncStatus,
    metrics: InformerMetrics,
    shutdown: CancellationToken,
) -> JoinHandle<crate::Result<()>> {
    let with_rules = config.rules.current().kinds.clone();
    let typed = cap_order(
        config.kinds.iter().cloned(),
        &with_rules,
        config.max_watches,
    );
    for (kind, access) in &typed {
        status.register(kind, config.scopes(kind).len());
        status.set_how(kind, Mode::Typed, *access);
        metrics.watched(kind, Some((Mode::Typed, *access)));
    }
    let discover = config.discover == Discover::All;
    status.set_discovering(discover);
    tokio::spawn(async move {
        let stop = shutdown.child_token();
        let mut tasks = JoinSet::new();
        let base = Ctx::new(&client, &config, &tx, &status, &metrics, &stop);
        for (kind, access) in &typed {
            for scope in config.scopes(kind) {
                let ctx = base.scoped(scope);
                with_kind_type!(kind, K => {
                    tasks.spawn(run_typed::<K>(ctx, *access));
                }, _ => tracing::warn!(%kind, "not a built-in kind; skipped"));
            }
        }
        if discover {
            let supervisor = crate::dynamic::Supervisor::new(base, config, typed.len());
            tasks.spawn(supervisor.run());
        }
        drop(tx);
        let mut outcome = Ok(());
        while let Some(done) = tasks.join_next().await {
            match done {
                Err(err) => {
                    tracing::error!(%err, "informer task failed; stopping every watcher");
                }
                Ok(Err(err)) => {
                    tracing::error!(error = %format!("{err:#}"), "informers cannot go on; stopping every watcher");
                    outcome = Err(err);
                }
                Ok(Ok(())) => {}
            }
            // A watcher only ends on shutdown, a dropped receiver or a panic: stop the rest.
            stop.cancel();
        }
        tracing::info!("informers stopped");
        outcome
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
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) client: kube::Client,
    pub(crate) scope: Option<String>,
    pub(crate) config: watcher::Config,
    /// Lists of a polled kind: the page size and the label selector.
    pub(crate) list: ListParams,
    pub(crate) list_interval: Duration,
    pub(crate) rules: RulesFeed,
    pub(crate) tx: Sender<IngestEvent>,
    pub(crate) status: SyncStatus,
    pub(crate) metrics: InformerMetrics,
    pub(crate) shutdown: CancellationToken,
}

impl Ctx {
    pub(crate) fn new(
        client: &kube::Client,
        config: &InformerConfig,
        tx: &Sender<IngestEvent>,
        status: &SyncStatus,
        metrics: &InformerMetrics,
        shutdown: &CancellationToken,
    ) -> Ctx {
        let mut list = ListParams::default().limit(config.page_size);
        if let Some(sel) = &config.label_selector {
            list = list.labels(sel);
        }
        Ctx {
            client: client.clone(),
            scope: None,
            config: watcher_config(config),
            list,
            list_interval: config.list_interval,
            rules: config.rules.clone(),
            tx: tx.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        }
    }

    /// This context for one scope.
    pub(crate) fn scoped(&self, scope: Option<String>) -> Ctx {
        Ctx {
            scope,
            ..self.clone()
        }
    }
}

/// The events of a watcher (`Access::Watch`) or of periodic lists (`Access::Poll`) over `api`,
/// with kube's default backoff after errors.
pub(crate) fn events<K>(api: Api<K>, ctx: &Ctx, access: Access) -> BoxStream<'static, WatchItem<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    match access {
        Access::Watch => watcher(api, ctx.config.clone()).default_backoff().boxed(),
        Access::Poll => polled(api, ctx.list.clone(), ctx.list_interval)
            .default_backoff()
            .boxed(),
    }
}

/// One item of a watcher stream.
pub(crate) type WatchItem<K> = watcher::Result<watcher::Event<K>>;

/// A kind listed every `interval` instead of watched, as watcher events: `Init`, an
/// `InitApply` per object (page by page), `InitDone`, then a wait. A failed page is an
/// `InitialListFailed` error and the list starts over (after the caller's backoff), so the
/// translator sees exactly what a relisting watcher would show, and objects deleted between
/// two lists leave the graph when the next list completes.
pub(crate) fn polled<K>(
    api: Api<K>,
    params: ListParams,
    interval: Duration,
) -> impl Stream<Item = WatchItem<K>> + Send + 'static
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    enum Step {
        Start,
        Page(Option<String>),
        Done,
        Wait,
    }
    futures::stream::unfold(Step::Start, move |step| {
        let api = api.clone();
        let mut params = params.clone();
        async move {
            let (items, next) = match step {
                Step::Start => (vec![Ok(watcher::Event::Init)], Step::Page(None)),
                Step::Page(token) => {
                    params.continue_token = token;
                    match api.list(&params).await {
                        Ok(list) => {
                            let next = match list.metadata.continue_ {
                                Some(c) if !c.is_empty() => Step::Page(Some(c)),
                                _ => Step::Done,
                            };
                            let items = list
                                .items
                                .into_iter()
                                .map(|o| Ok(watcher::Event::InitApply(o)))
                                .collect();
                            (items, next)
                        }
                        Err(err) => (
                            vec![Err(watcher::Error::InitialListFailed(err))],
                            Step::Start,
                        ),
                    }
                }
                Step::Done => (vec![Ok(watcher::Event::InitDone)], Step::Wait),
                Step::Wait => {
                    tokio::time::sleep(interval).await;
                    (Vec::new(), Step::Start)
                }
            };
            Some((futures::stream::iter(items), next))
        }
    })
    .flatten()
}

/// One watcher of a built-in kind `K` in one scope. When the kind has rules, the hook gets the
/// object as JSON (serialized from its type).
async fn run_typed<K: Processor + serde::Serialize>(ctx: Ctx, access: Access) -> crate::Result<()> {
    let kind = <K as Processor>::kind();
    let rules = ctx.rules.clone();
    let scope = ctx.scope.clone();
    let process = {
        let kind = kind.clone();
        move |obj: K| {
            let mut r = obj.process();
            rules
                .current()
                .apply(&kind, &mut r, || serde_json::to_value(&obj).ok());
            r
        }
    };
    run(
        ctx,
        kind,
        move |client, ctx| events(K::api(client, scope.as_deref()), ctx, access),
        process,
    )
    .await;
    Ok(())
}

/// One watcher (or poller): the stream `make` builds over a client, translated with `process`
/// into ingest events sent in batches. Every kind of watch (typed, metadata-only, whole
/// dynamic objects; watched or polled) runs through here: one translation, one status, metrics,
/// backoff and logging path.
pub(crate) async fn run<K, S>(
    ctx: Ctx,
    kind: Kind,
    make: impl Fn(kube::Client, &Ctx) -> S,
    mut process: impl FnMut(K) -> Resource,
) where
    K: kube::Resource,
    S: Stream<Item = WatchItem<K>>,
{
    let (answered_tx, mut answered) = tokio::sync::watch::channel(());
    let client = crate::client::telling_answers(ctx.client.clone(), answered_tx);
    let mut stream = pin!(make(client.clone(), &ctx));
    let mut state = Translator::new(kind.clone(), ctx.scope.as_deref().map(Str::from));
    // A reload that changes this kind's rules lists it again (a new stream), so every object is
    // judged by the rules in force.
    let mut rules = ctx.rules.clone();
    let mut rules_live = true;
    let mut fingerprint = rules.current().fingerprint(&kind);
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
            live = rules.changed(), if rules_live => {
                rules_live = live;
                let now = rules.current().fingerprint(&kind);
                if now != fingerprint {
                    fingerprint = now;
                    tracing::info!(kind = %kind.qualified(), scope = ?ctx.scope, "rules changed; listing again");
                    stream.set(make(client.clone(), &ctx));
                }
                continue;
            }
            Ok(()) = answered.changed(), if state.failing && recovers_at.is_none() => {
                recovers_at = Some(tokio::time::Instant::now() + RECOVERED_AFTER);
                continue;
            }
            () = tokio::time::sleep_until(recovers_at.unwrap_or_else(tokio::time::Instant::now)),
                if state.failing && recovers_at.is_some() => {
                recovers_at = None;
                state.succeeded(&ctx);
                if let Some(gap) = state.take_gap()
                    && ctx.tx.send(gap).await.is_err()
                {
                    break;
                }
                continue;
            }
        };
        match item {
            Some(item) => state.on_item(item, &ctx, &mut process, &mut out),
            None => ended = true,
        }
        // The rest of a listed page is already decoded: take it without waiting, so a page
        // costs one wake-up and the watcher asks for the next page sooner.
        while !ended && out.len() < SEND_BATCH {
            match stream.next().now_or_never() {
                Some(Some(item)) => state.on_item(item, &ctx, &mut process, &mut out),
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
    /// Since the first error of the current failure (Unix milliseconds) and why; closed into a
    /// [`IngestEvent::Gap`] when the watcher recovers.
    gap_since: Option<(i64, String)>,
    /// A closed gap, sent with the next events.
    gap: Option<IngestEvent>,
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
            gap_since: None,
            gap: None,
        }
    }

    /// Closes the open gap, if any, at now.
    fn close_gap(&mut self, status: &SyncStatus) {
        if let Some((from_ms, reason)) = self.gap_since.take() {
            status.gap_closed(&self.kind, self.scope.as_ref());
            let to_ms = astrolabe_model::now_ms();
            tracing::info!(kind = %self.kind.qualified(), scope = ?self.scope, seconds = (to_ms - from_ms) as f64 / 1000.0, "a gap in this kind's watch is closed and recorded");
            self.gap = Some(IngestEvent::Gap {
                kind: self.kind.clone(),
                namespace: self.scope.clone(),
                from_ms,
                to_ms,
                reason,
            });
        }
    }

    /// The gap closed since the last call.
    fn take_gap(&mut self) -> Option<IngestEvent> {
        self.gap.take()
    }

    /// Translates one item of the watcher stream into `out`, objects through `process`.
    fn on_item<K: kube::Resource>(
        &mut self,
        item: WatchItem<K>,
        ctx: &Ctx,
        process: &mut impl FnMut(K) -> Resource,
        out: &mut Vec<IngestEvent>,
    ) {
        match item {
            Ok(event) => out.extend(self.on_event(event, ctx, process)),
            Err(err) => self.on_error(&err, ctx),
        }
        out.extend(self.take_gap());
    }

    fn on_event<K: kube::Resource>(
        &mut self,
        event: watcher::Event<K>,
        ctx: &Ctx,
        process: &mut impl FnMut(K) -> Resource,
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
                let resource = process(obj);
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
                // Listed again after a failure: the state is known again.
                self.close_gap(&ctx.status);
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
                let resource = process(obj);
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

    /// Something came back from the server: a retry streak is over, access is granted again;
    /// outside a list, an open gap closes (inside one, it closes when the list completes).
    fn succeeded(&mut self, ctx: &Ctx) {
        if !self.listing {
            self.close_gap(&ctx.status);
        }
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
        if self.gap_since.is_none() {
            let (from_ms, reason) = (astrolabe_model::now_ms(), format!("{reason}: {err}"));
            ctx.status
                .gap_opened(&self.kind, self.scope.as_ref(), from_ms, &reason);
            self.gap_since = Some((from_ms, reason));
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
                list: ListParams::default(),
                list_interval: Duration::from_secs(1),
                rules: RulesFeed::default(),
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

    /// The ConfigMap processor, as the typed watcher calls it.
    fn processor() -> impl FnMut(ConfigMap) -> Resource {
        |obj: ConfigMap| obj.process()
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("nope", "Forbidden").with_code(code),
        ))
    }

    /// A failure is a gap from its first error until the watcher is answered again; one
    /// during a list closes when the list completes, not at its first object.
    #[tokio::test]
    async fn a_failure_is_a_gap_until_the_watch_recovers() {
        let (ctx, _rx) = ctx();
        let mut process = processor();
        let mut t = Translator::new(Kind::ConfigMap, None);
        let mut out = Vec::new();
        let gaps = |out: &mut Vec<IngestEvent>| {
            let gaps: Vec<IngestEvent> = out
                .drain(..)
                .filter(|e| matches!(e, IngestEvent::Gap { .. }))
                .collect();
            gaps
        };
        // Watching: two errors, then an object: one gap, from the first error.
        let before = astrolabe_model::now_ms();
        for _ in 0..2 {
            t.on_item(
                Err(watcher::Error::WatchFailed(api_error(500))),
                &ctx,
                &mut process,
                &mut out,
            );
        }
        assert!(gaps(&mut out).is_empty(), "open while failing");
        t.on_item(
            Ok(watcher::Event::Apply(cm("a"))),
            &ctx,
            &mut process,
            &mut out,
        );
        match &gaps(&mut out)[..] {
            [
                IngestEvent::Gap {
                    kind,
                    from_ms,
                    to_ms,
                    reason,
                    ..
                },
            ] => {
                assert_eq!(kind, &Kind::ConfigMap);
                assert!(before <= *from_ms && from_ms <= to_ms);
                assert!(reason.starts_with("server: "), "{reason}");
            }
            other => panic!("one gap expected, got {other:?}"),
        }
        // Refused while listing: the gap stays open through the list's objects and closes
        // when it completes.
        t.on_item(Ok(watcher::Event::Init), &ctx, &mut process, &mut out);
        t.on_item(
            Err(watcher::Error::InitialListFailed(api_error(403))),
            &ctx,
            &mut process,
            &mut out,
        );
        t.on_item(
            Ok(watcher::Event::InitApply(cm("b"))),
            &ctx,
            &mut process,
            &mut out,
        );
        assert!(gaps(&mut out).is_empty(), "still listing");
        t.on_item(Ok(watcher::Event::InitDone), &ctx, &mut process, &mut out);
        assert!(
            matches!(&gaps(&mut out)[..], [IngestEvent::Gap { reason, .. }] if reason.starts_with("forbidden")),
        );
        // A 410 is a relist, not a failure.
        t.on_item(
            Err(watcher::Error::WatchError(Box::new(
                kube::core::Status::failure("expired", "Expired").with_code(410),
            ))),
            &ctx,
            &mut process,
            &mut out,
        );
        t.on_item(
            Ok(watcher::Event::Apply(cm("c"))),
            &ctx,
            &mut process,
            &mut out,
        );
        assert!(gaps(&mut out).is_empty());
    }

    #[tokio::test]
    async fn list_cycle_and_forbidden() {
        let (ctx, _rx) = ctx();
        let mut process = processor();
        let mut t = Translator::new(Kind::ConfigMap, None);
        let started = t.on_event(watcher::Event::Init, &ctx, &mut process);
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
            t.on_event(watcher::Event::Init, &ctx, &mut process)
                .is_none()
        );
        assert!(!ctx.status.all_listed());
        // Through `on_item`, as the watcher task calls it.
        let mut up = Vec::new();
        t.on_item(
            Ok(watcher::Event::InitApply(cm("a"))),
            &ctx,
            &mut process,
            &mut up,
        );
        assert!(matches!(&up[..], [IngestEvent::Upsert(r)] if r.name == "a"));
        assert!(!ctx.status.is_forbidden(&Kind::ConfigMap));
        let done = t.on_event(watcher::Event::InitDone, &ctx, &mut process);
        match &done {
            Some(IngestEvent::ListCompleted { seen, .. }) => {
                assert_eq!(seen.len(), 1);
                assert!(seen.contains(&Uid::from("uid-a")));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(ctx.status.all_listed());
        let del = t.on_event(watcher::Event::Delete(cm("a")), &ctx, &mut process);
        assert_eq!(
            del,
            Some(IngestEvent::Delete {
                uid: Uid::from("uid-a"),
                key: ObjectKey::new(Kind::ConfigMap, "ns", "a"),
            })
        );
        // A relist starts a fresh seen set.
        assert!(
            t.on_event(watcher::Event::Init, &ctx, &mut process)
                .is_some()
        );
        match &t.on_event(watcher::Event::InitDone, &ctx, &mut process) {
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
        let mut process = processor();
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
        t.on_item(
            Ok(watcher::Event::Apply(cm("a"))),
            &ctx,
            &mut process,
            &mut out,
        );
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
