//! `SyncStatus`: per-kind sync state the watchers write and readiness reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use astrolabe_model::{Kind, Str};
use dashmap::DashMap;
use serde::Serialize;

use crate::select::{Access, Mode};
use crate::watch::STILL_FAILING_EVERY;

/// Per-kind state. Several watcher tasks (one per namespace scope) write it.
#[derive(Clone, Debug, Default)]
struct KindState {
    /// Scopes (namespaces, or one cluster-wide) this kind is watched in.
    scopes: usize,
    /// How it is read, and whether watched or polled (none: not set, a typed watch).
    how: Option<(Mode, Access)>,
    /// Scopes that completed a list at least once.
    listed_scopes: usize,
    /// Scopes between a list start and its completion.
    relisting_scopes: usize,
    /// Scopes whose last request was refused with 403.
    forbidden_scopes: usize,
    /// Scopes whose watcher failed and has not succeeded since (retrying with backoff).
    retrying_scopes: usize,
    /// The kind's retry episode (from its first failing scope until none fails), for its log.
    episode: Episode,
    last_error: Option<String>,
    /// Seconds since the epoch of the last completed list.
    last_sync: Option<i64>,
    upserts: u64,
    deletes: u64,
    relists: u64,
    errors: u64,
}

/// What a kind's watchers have logged while they retry: an episode lasts from the first scope
/// that fails until every scope succeeds again.
#[derive(Clone, Debug, Default)]
struct Episode {
    /// Errors in the episode, over every scope.
    errors: u64,
    /// The reasons already logged at WARN in the episode.
    warned: Vec<&'static str>,
    /// When the last WARN was.
    warned_at: Option<Instant>,
}

/// What a watcher logs for an error, as [`SyncStatus::retry_failed`] decides for its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryLog {
    /// The kind's retry state changed (it started failing, or fails for a reason not yet
    /// logged in the episode): WARN.
    Changed,
    /// Nothing was logged at WARN for [`STILL_FAILING_EVERY`]: WARN again, with the
    /// episode's error count.
    StillFailing(u64),
    /// Nothing new: DEBUG.
    Unchanged,
}

/// One kind's sync state, for readiness detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindReport {
    /// The kind: its name for a built-in kind, else `Kind.group` (`Certificate.cert-manager.io`).
    pub kind: String,
    /// How its objects are read: `typed` (a built-in kind), `metadata` (metadata only) or `full`
    /// (whole objects, for relationship rules).
    pub mode: &'static str,
    /// `watch` (a list, then a watch) or `poll` (listed every `--list-interval`: past the
    /// watch cap).
    pub access: &'static str,
    /// In one word: `forbidden` (refused, 403), `failing` (retrying after errors), else
    /// `watched` or `polled`.
    pub state: &'static str,
    /// Whether every scope of the kind has been listed at least once.
    pub listed: bool,
    /// Whether a (re)list is in progress.
    pub relisting: bool,
    /// Whether the API server refuses access (403); retried with backoff.
    pub forbidden: bool,
    /// Whether the watcher is retrying after errors in any scope (nothing has succeeded since).
    pub retrying: bool,
    /// The last error seen while retrying: `None` once every scope succeeds again.
    pub last_error: Option<String>,
    /// When the last list completed, in seconds since the epoch.
    pub last_sync: Option<i64>,
    /// Upserts sent (listed, added or modified objects).
    pub upserts: u64,
    /// Deletes sent.
    pub deletes: u64,
    /// Lists started.
    pub relists: u64,
    /// Errors seen.
    pub errors: u64,
}

/// Sync state of every watched kind. Cheap to clone; clones share the state.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    kinds: Arc<DashMap<Kind, KindState>>,
    /// The watches failing now, by kind and scope: since when, and why.
    open_gaps: Arc<DashMap<Scope, (i64, String)>>,
    /// The first discovery has not finished yet: more kinds may come.
    discovering: Arc<AtomicBool>,
}

/// A kind, and the namespace it is watched in (`None`: every namespace).
type Scope = (Kind, Option<Str>);

/// A watch failing now ([`SyncStatus::open_gaps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenGap {
    /// The kind.
    pub kind: Kind,
    /// The namespace watched; `None` for every namespace.
    pub namespace: Option<Str>,
    /// Since when (Unix milliseconds).
    pub from_ms: i64,
    /// Why.
    pub reason: String,
}

impl SyncStatus {
    /// An empty status; [`crate::spawn`] registers the configured kinds.
    pub fn new() -> Self {
        SyncStatus::default()
    }

    /// A watch of `kind` in `scope` (`None`: every namespace) started failing at `from_ms`:
    /// what the graph says of it is unknown until it recovers ([`SyncStatus::open_gaps`]).
    pub fn gap_opened(&self, kind: &Kind, scope: Option<&Str>, from_ms: i64, reason: &str) {
        self.open_gaps
            .insert((kind.clone(), scope.cloned()), (from_ms, reason.to_owned()));
    }

    /// The watch of `kind` in `scope` recovered (its gap goes to the log).
    pub fn gap_closed(&self, kind: &Kind, scope: Option<&Str>) {
        self.open_gaps.remove(&(kind.clone(), scope.cloned()));
    }

    /// The gaps still open: the watches failing now, each with since when and why, oldest
    /// first.
    pub fn open_gaps(&self) -> Vec<OpenGap> {
        let mut gaps: Vec<OpenGap> = self
            .open_gaps
            .iter()
            .map(|e| OpenGap {
                kind: e.key().0.clone(),
                namespace: e.key().1.clone(),
                from_ms: e.value().0,
                reason: e.value().1.clone(),
            })
            .collect();
        gaps.sort_by_key(|g| g.from_ms);
        gaps
    }

    /// Registers `kind`, watched in `scopes` scopes (adds to any already registered).
    pub fn register(&self, kind: &Kind, scopes: usize) {
        self.kinds.entry(kind.clone()).or_default().scopes += scopes;
    }

    /// Whether kinds are registered and every one of them has been listed at least once in
    /// every scope. A forbidden kind never lists, so it keeps this false: the graph is not
    /// complete without it. [`SyncStatus::report`] says which kinds are missing and why.
    pub fn all_listed(&self) -> bool {
        !self.is_discovering()
            && !self.kinds.is_empty()
            && self
                .kinds
                .iter()
                .all(|e| e.scopes > 0 && e.listed_scopes >= e.scopes)
    }

    /// Whether the first discovery is still running (the kinds it finds are not registered
    /// yet, so the graph cannot be complete).
    pub fn is_discovering(&self) -> bool {
        self.discovering.load(Ordering::Acquire)
    }

    pub(crate) fn set_discovering(&self, discovering: bool) {
        self.discovering.store(discovering, Ordering::Release);
    }

    /// Records how `kind` is read.
    pub(crate) fn set_how(&self, kind: &Kind, mode: Mode, access: Access) {
        self.update(kind, |s| s.how = Some((mode, access)));
    }

    /// Forgets `kind` (no longer watched: its CRD was deleted, or it left the selection).
    pub(crate) fn unregister(&self, kind: &Kind) {
        self.kinds.remove(kind);
    }

    /// Whether `kind` has been listed in every scope.
    pub fn is_listed(&self, kind: &Kind) -> bool {
        self.kinds
            .get(kind)
            .is_some_and(|e| e.scopes > 0 && e.listed_scopes >= e.scopes)
    }

    /// Whether `kind` is currently refused with 403 in any scope.
    pub fn is_forbidden(&self, kind: &Kind) -> bool {
        self.kinds.get(kind).is_some_and(|e| e.forbidden_scopes > 0)
    }

    /// Whether `kind`'s watcher is retrying after errors in any scope.
    pub fn is_retrying(&self, kind: &Kind) -> bool {
        self.kinds.get(kind).is_some_and(|e| e.retrying_scopes > 0)
    }

    /// Every registered kind's state, in [`Kind`] order.
    pub fn report(&self) -> Vec<KindReport> {
        let mut out: Vec<KindReport> = self
            .kinds
            .iter()
            .map(|e| {
                let s = e.value();
                let (mode, access) = s.how.unwrap_or((Mode::Typed, Access::Watch));
                let state = if s.forbidden_scopes > 0 {
                    "forbidden"
                } else if s.retrying_scopes > 0 {
                    "failing"
                } else if access == Access::Poll {
                    "polled"
                } else {
                    "watched"
                };
                KindReport {
                    kind: kind_name(e.key()).into_owned(),
                    mode: mode.as_str(),
                    access: access.as_str(),
                    state,
                    listed: s.scopes > 0 && s.listed_scopes >= s.scopes,
                    relisting: s.relisting_scopes > 0,
                    forbidden: s.forbidden_scopes > 0,
                    retrying: s.retrying_scopes > 0,
                    last_error: s.last_error.clone(),
                    last_sync: s.last_sync,
                    upserts: s.upserts,
                    deletes: s.deletes,
                    relists: s.relists,
                    errors: s.errors,
                }
            })
            .collect();
        out.sort_by_key(|r| Kind::parse(&r.kind));
        out
    }

    fn update<R>(&self, kind: &Kind, f: impl FnOnce(&mut KindState) -> R) -> R {
        f(&mut self.kinds.entry(kind.clone()).or_default())
    }

    pub(crate) fn list_started(&self, kind: &Kind) {
        self.update(kind, |s| {
            s.relisting_scopes += 1;
            s.relists += 1;
        });
    }

    pub(crate) fn list_completed(&self, kind: &Kind, first: bool, now: i64) {
        self.update(kind, |s| {
            s.relisting_scopes = s.relisting_scopes.saturating_sub(1);
            if first {
                s.listed_scopes += 1;
            }
            s.last_sync = Some(now);
            s.last_error = None;
        });
    }

    pub(crate) fn event(&self, kind: &Kind, delete: bool) {
        self.update(kind, |s| {
            if delete {
                s.deletes += 1;
            } else {
                s.upserts += 1;
            }
        });
    }

    pub(crate) fn error(&self, kind: &Kind, text: String) {
        self.update(kind, |s| {
            s.errors += 1;
            s.last_error = Some(text);
        });
    }

    /// A scope of `kind` failed with `reason` (`entered`: it was not failing before) at `now`.
    /// Says what to log, once per kind however many scopes fail: a WARN for each reason the
    /// first time it shows in the episode (so reasons that alternate cost one line each), one
    /// more every [`STILL_FAILING_EVERY`], DEBUG for the rest.
    pub(crate) fn retry_failed(
        &self,
        kind: &Kind,
        entered: bool,
        reason: &'static str,
        now: Instant,
    ) -> RetryLog {
        self.update(kind, |s| {
            if entered {
                s.retrying_scopes += 1;
            }
            let e = &mut s.episode;
            e.errors += 1;
            let log = if !e.warned.contains(&reason) {
                e.warned.push(reason);
                RetryLog::Changed
            } else if e
                .warned_at
                .is_none_or(|at| now.saturating_duration_since(at) >= STILL_FAILING_EVERY)
            {
                RetryLog::StillFailing(e.errors)
            } else {
                return RetryLog::Unchanged;
            };
            e.warned_at = Some(now);
            log
        })
    }

    /// A failing scope of `kind` succeeded. When it was the last one, the episode ends, the last
    /// error is forgotten, and its error count is returned (the kind recovered).
    pub(crate) fn retry_recovered(&self, kind: &Kind) -> Option<u64> {
        self.update(kind, |s| {
            count_scope(&mut s.retrying_scopes, false);
            if s.retrying_scopes > 0 {
                return None;
            }
            s.last_error = None;
            Some(std::mem::take(&mut s.episode).errors)
        })
    }

    /// Moves one scope in or out of the forbidden state.
    pub(crate) fn set_forbidden(&self, kind: &Kind, forbidden: bool) {
        self.update(kind, |s| count_scope(&mut s.forbidden_scopes, forbidden));
    }
}

/// A kind as the readiness detail and the metrics name it: a built-in kind by its name, any
/// other group-qualified (`Certificate.cert-manager.io`; `Endpoints` in the core group), so two
/// kinds of one name in different groups stay apart.
pub fn kind_name(kind: &Kind) -> std::borrow::Cow<'_, str> {
    if kind.is_watched() {
        std::borrow::Cow::Borrowed(kind.as_str())
    } else {
        kind.qualified()
    }
}

/// One more scope in a state when `entered`, one fewer (never below zero) otherwise.
fn count_scope(scopes: &mut usize, entered: bool) {
    if entered {
        *scopes += 1;
    } else {
        *scopes = scopes.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_after_every_scope_lists() {
        let s = SyncStatus::new();
        assert!(!s.all_listed());
        s.register(&Kind::Pod, 2);
        s.register(&Kind::Node, 1);
        s.list_started(&Kind::Pod);
        s.list_completed(&Kind::Pod, true, 10);
        assert!(!s.is_listed(&Kind::Pod));
        s.list_completed(&Kind::Pod, true, 11);
        assert!(s.is_listed(&Kind::Pod));
        assert!(!s.all_listed());
        s.list_completed(&Kind::Node, true, 12);
        assert!(s.all_listed());
        let report = s.report();
        assert_eq!(report[0].kind, "Pod");
        assert_eq!(report[0].last_sync, Some(11));
        assert_eq!(report[0].relists, 1);
        assert!(!report[0].relisting);
    }

    #[test]
    fn forbidden_and_errors_show_in_report() {
        let s = SyncStatus::new();
        s.register(&Kind::Secret, 1);
        s.error(&Kind::Secret, "forbidden".into());
        s.set_forbidden(&Kind::Secret, true);
        assert!(s.is_forbidden(&Kind::Secret));
        assert!(!s.all_listed());
        let r = &s.report()[0];
        assert!(r.forbidden);
        assert_eq!(r.last_error.as_deref(), Some("forbidden"));
        s.set_forbidden(&Kind::Secret, false);
        assert!(!s.is_forbidden(&Kind::Secret));
        s.retry_failed(&Kind::Secret, true, "forbidden", Instant::now());
        assert!(s.report()[0].retrying);
        assert_eq!(s.retry_recovered(&Kind::Secret), Some(1));
        assert!(!s.is_retrying(&Kind::Secret));
        assert_eq!(s.report()[0].last_error, None);
        let json = serde_json::to_string(&s.report()).expect("serializes");
        assert!(json.contains("\"kind\":\"Secret\""));
    }

    #[test]
    fn one_warn_per_kind_and_reason_in_an_episode() {
        use RetryLog::{Changed, StillFailing, Unchanged};
        let s = SyncStatus::new();
        let kind = Kind::Pod;
        s.register(&kind, 2);
        let t0 = Instant::now();
        // Two scopes fail; reasons alternate: one WARN per reason, then quiet.
        let logs: Vec<RetryLog> = [
            (true, "transport"),
            (true, "transport"),
            (false, "server"),
            (false, "transport"),
            (false, "server"),
        ]
        .into_iter()
        .map(|(entered, reason)| s.retry_failed(&kind, entered, reason, t0))
        .collect();
        assert_eq!(logs, [Changed, Unchanged, Changed, Unchanged, Unchanged]);
        // Once the interval has passed, one more WARN with the count, then quiet again.
        let later = t0 + STILL_FAILING_EVERY;
        assert_eq!(
            s.retry_failed(&kind, false, "server", later),
            StillFailing(6)
        );
        assert_eq!(s.retry_failed(&kind, false, "transport", later), Unchanged);
        // The kind recovers when its last failing scope does; a new episode warns again.
        assert_eq!(s.retry_recovered(&kind), None);
        assert!(s.is_retrying(&kind));
        assert_eq!(s.retry_recovered(&kind), Some(7));
        assert!(!s.is_retrying(&kind));
        assert_eq!(s.retry_failed(&kind, true, "transport", later), Changed);
    }
}
