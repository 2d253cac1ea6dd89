//! The emulator handle: configuration, the library CRUD API and the fault-injection knobs.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::error::{Result, SimError};
use crate::faults::Faults;
use crate::kinds::{self, KindInfo};
use crate::reviews::SimAuth;
use crate::store::State;

/// Tunables of the emulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Events retained per kind; a watch from an RV older than that gets ERROR 410.
    pub history_size: usize,
    /// Period of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Lifetime of a continue token.
    pub continue_ttl: Duration,
    /// How many continue snapshots are kept at once (oldest evicted first).
    pub continue_capacity: usize,
    /// Watch duration when the client sends no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Live events buffered per kind; a watcher lagging further behind gets ERROR 410.
    pub watch_buffer: usize,
    /// Create `default`, `kube-system`, `kube-public` and `kube-node-lease` at start.
    pub default_namespaces: bool,
    /// Tokens and permissions TokenReview and SubjectAccessReview answer from.
    pub auth: SimAuth,
    /// Run the controllers ([`crate::controllers`]) while the emulator is served. Off by default:
    /// library users and tests get the bare API, and a generated cluster (which holds what the
    /// controllers would have made, and is changed by the churn task) must never run them.
    pub controllers: bool,
    /// How long a scheduled Pod stays `Pending` before it runs (and a Job's Pod runs before it
    /// succeeds).
    pub pod_start_delay: Duration,
    /// Ready Nodes `node-1` … `node-N` created at start, for the scheduler to place Pods on.
    pub nodes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            history_size: 1000,
            bookmark_interval: Duration::from_secs(5),
            continue_ttl: Duration::from_secs(300),
            continue_capacity: 256,
            default_watch_timeout: Duration::from_secs(1800),
            watch_buffer: 4096,
            default_namespaces: false,
            auth: SimAuth::default(),
            controllers: false,
            pod_start_delay: Duration::ZERO,
            nodes: 0,
        }
    }
}

/// Shared state behind a [`Sim`] handle.
pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Faults,
    pub(crate) controllers: crate::controllers::Status,
}

/// A cheap-to-clone handle on one emulated cluster.
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("rv", &self.current_rv())
            .field("objects", &self.object_count())
            .finish()
    }
}

/// Resolves a built-in kind's name, plural, singular or short name.
///
/// # Errors
/// [`SimError::UnknownKind`] when the name matches no built-in kind.
pub fn resolve(kind: &str) -> Result<&'static KindInfo> {
    kinds::lookup(kind).ok_or_else(|| SimError::UnknownKind(kind.to_owned()))
}

impl Sim {
    /// Creates an empty emulated cluster.
    #[must_use]
    pub fn new(config: SimConfig) -> Self {
        let state = State::new(
            config.history_size,
            config.watch_buffer,
            config.continue_capacity,
        );
        let default_namespaces = config.default_namespaces;
        let sim = Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                faults: Faults::default(),
                controllers: crate::controllers::Status::default(),
            }),
        };
        if default_namespaces {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                // Cannot fail on an empty store.
                let _ = sim.create(
                    "Namespace",
                    json!({"metadata": {"name": ns}, "status": {"phase": "Active"}}),
                );
            }
        }
        for i in 1..=sim.inner.config.nodes {
            // Cannot fail: distinct names in an empty kind.
            let _ = sim.create(
                "Node",
                crate::controllers::node::ready_node(&format!("node-{i}")),
            );
        }
        sim
    }

    /// Resolves a kind's name, plural, singular or short name, optionally qualified by its group
    /// (`Gateway.gateway.networking.k8s.io`): the built-in kinds, then those served from CRDs.
    ///
    /// # Errors
    /// [`SimError::UnknownKind`] when the name matches no served kind.
    pub fn kind_info(&self, kind: &str) -> Result<&'static KindInfo> {
        kinds::lookup(kind)
            .or_else(|| self.inner.state.lock().custom.lookup(kind))
            .ok_or_else(|| SimError::UnknownKind(kind.to_owned()))
    }

    /// The configuration this emulator runs with.
    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Creates an object (namespace from `metadata.namespace`, `default` if absent); returns the stored object.
    ///
    /// # Errors
    /// Unknown kind, already exists, missing name, or type fields that do not match the kind.
    pub fn create(&self, kind: &str, object: Value) -> Result<Value> {
        let info = self.kind_info(kind)?;
        Ok((*self.inner.state.lock().create(info, object, None)?).clone())
    }

    /// Replaces an object; a non-empty `metadata.resourceVersion` must be the current one.
    ///
    /// # Errors
    /// Unknown kind, not found, or a conflict (stale resourceVersion).
    pub fn replace(&self, kind: &str, object: Value) -> Result<Value> {
        let info = self.kind_info(kind)?;
        Ok((*self.inner.state.lock().replace(
            info,
            object,
            None,
            None,
            crate::store::Write::default(),
        )?)
        .clone())
    }

    /// Changes an object in place with `f` (read-modify-write under the lock, no conflict possible).
    ///
    /// # Errors
    /// Unknown kind or not found.
    pub fn update(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value> {
        let info = self.kind_info(kind)?;
        Ok((*self
            .inner
            .state
            .lock()
            .update_with(info, namespace, name, f)?)
        .clone())
    }

    /// Creates the object, or replaces it unconditionally when it exists.
    ///
    /// # Errors
    /// Unknown kind or an invalid object.
    pub fn upsert(&self, kind: &str, mut object: Value) -> Result<Value> {
        let info = self.kind_info(kind)?;
        let mut state = self.inner.state.lock();
        match state.create(info, object.clone(), None) {
            Err(SimError::AlreadyExists(..)) => {
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                Ok(
                    (*state.replace(info, object, None, None, crate::store::Write::default())?)
                        .clone(),
                )
            }
            other => Ok((*other?).clone()),
        }
    }

    /// Deletes an object (`namespace` is ignored for cluster-scoped kinds); returns its last state.
    ///
    /// # Errors
    /// Unknown kind or not found.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<Value> {
        let info = self.kind_info(kind)?;
        Ok((*self.inner.state.lock().delete(info, namespace, name)?).clone())
    }

    /// Reads one object.
    ///
    /// # Errors
    /// Unknown kind or not found.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Value> {
        let info = self.kind_info(kind)?;
        Ok((*self.inner.state.lock().get(info, namespace, name)?).clone())
    }

    /// [`Sim::list`] without copying: the stored objects, shared (for the controllers, which
    /// read every object of a kind on each pass).
    pub(crate) fn list_shared(&self, kind: &str) -> Result<Vec<Arc<Value>>> {
        let info = self.kind_info(kind)?;
        Ok(self
            .inner
            .state
            .lock()
            .kind(info)?
            .objects
            .values()
            .cloned()
            .collect())
    }

    /// All objects of a kind, sorted by (namespace, name).
    ///
    /// # Errors
    /// Unknown kind.
    pub fn list(&self, kind: &str) -> Result<Vec<Value>> {
        Ok(self
            .list_shared(kind)?
            .iter()
            .map(|o| (**o).clone())
            .collect())
    }

    /// [`Sim::list_in`] without copying (for the controllers).
    pub(crate) fn list_in_shared(&self, kind: &str, namespace: &str) -> Result<Vec<Arc<Value>>> {
        let info = self.kind_info(kind)?;
        let state = self.inner.state.lock();
        Ok(state
            .kind(info)?
            .objects
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((n, _), _)| n == namespace)
            .map(|(_, v)| v.clone())
            .collect())
    }

    /// The objects of a kind in one namespace, sorted by name.
    ///
    /// # Errors
    /// Unknown kind.
    pub fn list_in(&self, kind: &str, namespace: &str) -> Result<Vec<Value>> {
        Ok(self
            .list_in_shared(kind, namespace)?
            .iter()
            .map(|o| (**o).clone())
            .collect())
    }

    /// The `(namespace, name)` keys of a kind's objects (namespace empty when cluster-scoped).
    ///
    /// # Errors
    /// Unknown kind.
    pub fn keys(&self, kind: &str) -> Result<Vec<(String, String)>> {
        let info = self.kind_info(kind)?;
        Ok(self
            .inner
            .state
            .lock()
            .kind(info)?
            .objects
            .keys()
            .cloned()
            .collect())
    }

    /// The last resourceVersion issued.
    #[must_use]
    pub fn current_rv(&self) -> u64 {
        self.inner.state.lock().rv
    }

    /// The number of stored objects over all kinds.
    #[must_use]
    pub fn object_count(&self) -> usize {
        self.inner.state.lock().object_count()
    }

    /// Closes every open watch stream (clients re-watch from their last RV without an error).
    pub fn drop_watches(&self) {
        self.inner.state.lock().drop_watches();
    }

    /// Forgets all event history (and continue tokens) and advances the RV, so that any watch resuming
    /// from an RV issued before this call gets ERROR 410 and relists. Open watches are not closed: call
    /// [`Sim::drop_watches`] as well to force the reconnect.
    pub fn expire_history(&self) {
        self.inner.state.lock().expire_history();
    }

    /// [`Sim::expire_history`] and [`Sim::drop_watches`] atomically: every watcher reconnects with an RV
    /// that is now too old, gets ERROR 410, and relists.
    pub fn expire_and_drop_watches(&self) {
        let mut state = self.inner.state.lock();
        state.expire_history();
        state.drop_watches();
    }

    /// Invalidates every outstanding continue token (their next page answers HTTP 410).
    pub fn expire_continue_tokens(&self) {
        self.inner.state.lock().continues.clear();
    }

    /// Makes every API request for `kind` fail with HTTP `code` (a Kubernetes Status body) until cleared.
    /// Open watches are not affected; use [`Sim::drop_watches`] to make them reconnect.
    ///
    /// # Errors
    /// Unknown kind.
    pub fn fail_kind(&self, kind: &str, code: u16) -> Result<()> {
        self.inner.faults.fail(self.kind_info(kind)?, code);
        Ok(())
    }

    /// Clears the injected failure of `kind`.
    ///
    /// # Errors
    /// Unknown kind.
    pub fn clear_failure(&self, kind: &str) -> Result<()> {
        self.inner.faults.clear(Some(self.kind_info(kind)?));
        Ok(())
    }

    /// Clears every injected failure and the response delay.
    pub fn clear_faults(&self) {
        self.inner.faults.clear(None);
        self.inner.faults.set_delay(Duration::ZERO);
    }

    /// Starts the controllers ([`crate::controllers`]) until `shutdown` is cancelled; [`crate::serve`]
    /// does it when [`SimConfig::controllers`] is set. Starting them while they run does nothing.
    /// Must be called inside a Tokio runtime.
    pub fn start_controllers(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let claimed = crate::controllers::claim(self);
        let sim = self.clone();
        tokio::spawn(async move {
            if claimed {
                crate::controllers::run_claimed(sim, shutdown).await;
            }
        })
    }

    /// Whether the controllers run now.
    #[must_use]
    pub fn controllers_running(&self) -> bool {
        self.inner.controllers.running()
    }

    /// Waits until the controllers have nothing left to do: their last pass wrote nothing, no
    /// timer (a Pod's start delay) is pending, and the resourceVersion has not moved for
    /// [`crate::controllers::SETTLE_IDLE`]. Polls their state; never sleeps blindly. A Pod that
    /// cannot be scheduled or a claim that cannot be bound does not keep it busy: settled means
    /// "nothing will change unless something else writes", not "everything is Ready".
    ///
    /// # Errors
    /// [`SimError::Unsettled`] when the controllers are not running, or still busy after
    /// `timeout`.
    pub async fn settle(&self, timeout: Duration) -> Result<()> {
        crate::controllers::settle(self, timeout).await
    }

    /// Moves the controllers' wall clock forward by `by`, a test and demo aid: a CronJob's
    /// schedule is due by this clock (real time plus every advance so far), so a test advances
    /// past a run instead of waiting minutes for it. Only schedules and the times derived from
    /// them (`lastScheduleTime`, the Job names) follow it; timestamps the store writes
    /// (`creationTimestamp`, a Pod's start) and timers such as
    /// [`SimConfig::pod_start_delay`] stay on the real clock. Wakes the controllers; a
    /// [`Sim::settle`] after it waits for the pass that sees the new time.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.controllers.advance_clock(by);
        self.inner.state.lock().changes.send_modify(|_| {});
    }

    /// How far [`Sim::advance_clock`] has moved the controllers' clock ahead of the real one.
    #[must_use]
    pub fn clock_offset(&self) -> Duration {
        self.inner.controllers.clock_offset()
    }

    /// Delays every API response by `delay` (zero to disable).
    pub fn set_response_delay(&self, delay: Duration) {
        self.inner.faults.set_delay(delay);
    }
}
