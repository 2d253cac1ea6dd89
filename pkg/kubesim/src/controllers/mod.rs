//! Controllers that make the emulator behave like a small cluster, in the way KWOK and the
//! Kubernetes controller manager do: workloads get ReplicaSets and Pods, Pods get a Node and run,
//! Services get EndpointSlices, claims get volumes, owners take their dependents with them.
//!
//! How they run: one task ([`run`], started by [`crate::Sim::start_controllers`], or by
//! [`crate::serve`] when [`crate::SimConfig::controllers`] is set) waits for any stored change
//! (the store's `changes` signal), a due timer (a Pod's start delay) or a resync tick, then makes
//! one *pass*: every controller in a fixed order reads the current objects and writes what
//! differs from what it wants, through the same store API as every client, so each change is a
//! normal versioned and watched event. Controllers are level-triggered and write only when
//! something differs (`State::update_changed`), so a pass that finds nothing to do writes nothing
//! and the cluster reaches a fixed point. Passes repeat while they write.
//!
//! Determinism: names come from hashes (a Pod of ReplicaSet `web-7d9f` is `web-7d9f-<5 chars>`
//! hashed from the owner's name and a counter; `pod-template-hash` hashes the template), node
//! choice is "fewest Pods, then name", and every list is in (namespace, name) order; only UIDs
//! and timestamps differ between runs.
//!
//! Quiescence: after a pass that wrote nothing and has no timer pending, the task records the
//! resourceVersion it started from ([`Status`]); [`crate::Sim::settle`] waits until that equals
//! the store's current resourceVersion for a short idle period.
//!
//! Off by default ([`crate::SimConfig::controllers`]): a generated cluster already holds what the
//! controllers would make and is changed by the churn task, which they would fight.
//!
//! Modules, one controller each: [`namespace`] (default ServiceAccount, `kube-root-ca.crt`,
//! deletion of a Terminating namespace's objects), [`gc`] (ownerReferences: background,
//! foreground and orphan deletion), [`deployment`] (ReplicaSets, rolling updates, revisions,
//! status), [`replicaset`] (Pods), [`statefulset`], [`daemonset`] (a Pod per admitting Node),
//! [`job`], [`cronjob`] (Jobs on a cron schedule), [`hpa`] (HorizontalPodAutoscaler bounds and
//! status, without metrics), [`scheduler`] (nodeSelector, taints), [`kubelet`] (Pod phases and
//! conditions), [`endpointslice`], [`volume`] (PVC binding and provisioning), [`node`] (the
//! Nodes created at start), [`events`] (core/v1 Events).
//!
//! Time: timers ([`Cx::elapsed`]) run on the real clock; schedules (CronJobs) run on the
//! controllers' wall clock, the real time plus the offset [`crate::Sim::advance_clock`] moves
//! forward, so tests and demos reach a run without waiting for it. A schedule's next run wakes
//! the task ([`Cx::wake_at`]) but is not pending work: it does not keep `settle` waiting.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpointslice;
pub mod events;
pub mod gc;
pub mod hpa;
pub mod job;
pub mod kubelet;
pub mod namespace;
pub mod node;
pub mod replicaset;
pub mod scheduler;
pub mod statefulset;
pub mod volume;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, SimError};
use crate::sim::Sim;

/// The longest wait between passes when nothing changes (a resync).
const RESYNC: Duration = Duration::from_secs(5);

/// How long the controllers must stay idle (no pending work, no change) for
/// [`crate::Sim::settle`] to return.
pub const SETTLE_IDLE: Duration = Duration::from_millis(50);

/// How often [`crate::Sim::settle`] looks at the controllers' state.
const SETTLE_POLL: Duration = Duration::from_millis(5);

/// What the controller task tells [`crate::Sim::settle`]: whether it runs, and the
/// resourceVersion at which its last pass found nothing to do (0 while it has work); and the
/// controllers' clock offset ([`crate::Sim::advance_clock`]).
#[derive(Debug, Default)]
pub(crate) struct Status {
    running: AtomicBool,
    idle_rv: AtomicU64,
    /// How far the controllers' wall clock is ahead of the real one, in milliseconds.
    clock_offset_ms: AtomicU64,
    /// Bumped by every clock change; the epoch the last idle pass started in is `idle_epoch`,
    /// so a pass that began before the clock moved does not count as settled after it.
    epoch: AtomicU64,
    idle_epoch: AtomicU64,
}

impl Status {
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The controllers' clock offset.
    pub(crate) fn clock_offset(&self) -> Duration {
        Duration::from_millis(self.clock_offset_ms.load(Ordering::Acquire))
    }

    /// Moves the controllers' clock forward by `by`.
    pub(crate) fn advance_clock(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // The closure always returns Some, so this cannot fail.
        let _ = self
            .clock_offset_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(ms))
            });
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// Marks the controllers as stopped when the task ends, however it ends.
struct RunningGuard<'a>(&'a Status);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        self.0.idle_rv.store(0, Ordering::Release);
    }
}

/// Runs the controllers against `sim` until `shutdown` is cancelled.
pub async fn run(sim: Sim, shutdown: CancellationToken) {
    if claim(&sim) {
        run_claimed(sim, shutdown).await;
    }
}

/// Marks the controllers of `sim` as running; false (and a warning) when they already were.
/// Done before their task is spawned, so that [`crate::Sim::settle`] right after
/// [`crate::Sim::start_controllers`] waits for them instead of finding them not running.
pub(crate) fn claim(sim: &Sim) -> bool {
    if sim.inner.controllers.running.swap(true, Ordering::AcqRel) {
        tracing::warn!("the emulator's controllers already run; not starting them twice");
        return false;
    }
    true
}

/// [`run`], once [`claim`]ed.
pub(crate) async fn run_claimed(sim: Sim, shutdown: CancellationToken) {
    let inner = sim.inner.clone();
    let status = &inner.controllers;
    let _guard = RunningGuard(status);
    let mut changes = sim.inner.state.lock().changes.subscribe();
    let mut cx = Cx::new(sim);
    loop {
        changes.borrow_and_update();
        let epoch = status.epoch.load(Ordering::Acquire);
        let before = cx.sim.current_rv();
        cx.pass();
        let idle = cx.writes == 0 && cx.due.is_none();
        status.idle_epoch.store(epoch, Ordering::Release);
        status
            .idle_rv
            .store(if idle { before } else { 0 }, Ordering::Release);
        if cx.writes > 0 {
            tokio::task::yield_now().await;
            if shutdown.is_cancelled() {
                break;
            }
            continue;
        }
        let resync = Instant::now() + RESYNC;
        let wake = [cx.due, cx.wake]
            .into_iter()
            .flatten()
            .fold(resync, Instant::min);
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Waits until the controllers of `sim` are quiescent (see [`crate::Sim::settle`]).
pub(crate) async fn settle(sim: &Sim, timeout: Duration) -> Result<()> {
    let status = &sim.inner.controllers;
    let deadline = Instant::now() + timeout;
    let mut idle_since: Option<(u64, Instant)> = None;
    loop {
        if !status.running() {
            return Err(SimError::Unsettled(
                "the controllers are not running".into(),
            ));
        }
        let rv = sim.current_rv();
        let now = Instant::now();
        if status.idle_rv.load(Ordering::Acquire) == rv
            && status.idle_epoch.load(Ordering::Acquire) == status.epoch.load(Ordering::Acquire)
        {
            match idle_since {
                Some((at, since)) if at == rv => {
                    if now.duration_since(since) >= SETTLE_IDLE {
                        return Ok(());
                    }
                }
                _ => idle_since = Some((rv, now)),
            }
        } else {
            idle_since = None;
        }
        if now >= deadline {
            return Err(SimError::Unsettled(format!(
                "still busy after {timeout:?} (resourceVersion {rv})"
            )));
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// The context of one controller pass: the emulator, what the pass wrote, timers.
pub(crate) struct Cx {
    pub(crate) sim: Sim,
    /// Objects written in this pass.
    pub(crate) writes: usize,
    /// The earliest timer still running after this pass.
    pub(crate) due: Option<Instant>,
    /// The earliest scheduled wake-up (a CronJob's next run): unlike [`Cx::due`], it does not
    /// keep [`crate::Sim::settle`] waiting, since a schedule is always pending.
    pub(crate) wake: Option<Instant>,
    /// When each timer started (by key), kept while the key is asked for.
    timers: HashMap<String, Instant>,
    /// The wall time each key was first asked for ([`Cx::first_seen`]), kept likewise.
    seen: HashMap<String, Timestamp>,
    touched: HashSet<String>,
    now: Instant,
    /// The controllers' wall clock at the start of this pass: the real time plus
    /// [`crate::Sim::advance_clock`]'s offset.
    wall: Timestamp,
}

impl Cx {
    fn new(sim: Sim) -> Self {
        Self {
            sim,
            writes: 0,
            due: None,
            wake: None,
            timers: HashMap::new(),
            seen: HashMap::new(),
            touched: HashSet::new(),
            now: Instant::now(),
            wall: Timestamp::now(),
        }
    }

    /// One pass of every controller, in an order where each one sees what the previous wrote.
    pub(crate) fn pass(&mut self) {
        self.writes = 0;
        self.due = None;
        self.wake = None;
        self.now = Instant::now();
        let offset = self.sim.inner.controllers.clock_offset();
        let offset = jiff::SignedDuration::try_from(offset).unwrap_or(jiff::SignedDuration::ZERO);
        self.wall = Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| Timestamp::now());
        self.touched.clear();
        namespace::reconcile(self);
        gc::reconcile(self);
        // Before the workload controllers, so that a rescaled target rolls out in this pass.
        hpa::reconcile(self);
        deployment::reconcile(self);
        replicaset::reconcile(self);
        statefulset::reconcile(self);
        daemonset::reconcile(self);
        // Before the Job controller, so that a Job it starts gets its Pods in this pass.
        cronjob::reconcile(self);
        job::reconcile(self);
        volume::reconcile(self);
        scheduler::reconcile(self);
        kubelet::reconcile(self);
        endpointslice::reconcile(self);
        let touched = std::mem::take(&mut self.touched);
        self.timers.retain(|k, _| touched.contains(k));
        self.seen.retain(|k, _| touched.contains(k));
        self.touched = touched;
    }

    /// The controllers' wall clock at the start of this pass (real time plus
    /// [`crate::Sim::advance_clock`]'s offset).
    pub(crate) fn wall(&self) -> Timestamp {
        self.wall
    }

    /// The wall time at which `key` was first asked for, while it is asked for in every pass.
    pub(crate) fn first_seen(&mut self, key: &str) -> Timestamp {
        self.touched.insert(key.to_owned());
        *self.seen.entry(key.to_owned()).or_insert(self.wall)
    }

    /// Asks for a pass by the wall time `at` (not before the resync when it is further away);
    /// it does not keep [`crate::Sim::settle`] waiting.
    pub(crate) fn wake_at(&mut self, at: Timestamp) {
        let wait = self.wall.duration_until(at);
        let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
        let at = self.now.checked_add(wait).unwrap_or(self.now + RESYNC);
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Whether `delay` has passed since the timer `key` was first asked for; while it runs, the
    /// pass records when it is due.
    pub(crate) fn elapsed(&mut self, key: &str, delay: Duration) -> bool {
        self.touched.insert(key.to_owned());
        let start = *self.timers.entry(key.to_owned()).or_insert(self.now);
        let at = start + delay;
        if at <= self.now {
            return true;
        }
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
        false
    }

    /// The objects of a kind (empty when the kind is unknown).
    pub(crate) fn list(&self, kind: &str) -> Vec<Arc<Value>> {
        self.sim.list_shared(kind).unwrap_or_default()
    }

    /// The objects of a kind in one namespace.
    pub(crate) fn list_in(&self, kind: &str, ns: &str) -> Vec<Arc<Value>> {
        self.sim.list_in_shared(kind, ns).unwrap_or_default()
    }

    /// Reads one object.
    pub(crate) fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        self.sim.get(kind, ns, name).ok()
    }

    /// Creates an object (unless its namespace is terminating); `None` when nothing was created.
    pub(crate) fn create(&mut self, kind: &str, obj: Value) -> Option<Value> {
        let ns = ns_of(&obj).to_owned();
        if !ns.is_empty()
            && self
                .get("Namespace", "", &ns)
                .is_none_or(|n| is_deleting(&n))
        {
            return None;
        }
        match self.sim.create(kind, obj) {
            Ok(created) => {
                self.writes += 1;
                Some(created)
            }
            Err(e) => {
                tracing::debug!(kind, error = %e, "controller create failed");
                None
            }
        }
    }

    /// Changes an object with `f`, writing only when `f` changed it; whether it wrote.
    pub(crate) fn modify(
        &mut self,
        kind: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let Ok(info) = self.sim.kind_info(kind) else {
            return false;
        };
        let written = self
            .sim
            .inner
            .state
            .lock()
            .update_changed(info, ns, name, f);
        match written {
            Ok(Some(_)) => {
                self.writes += 1;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(kind, ns, name, error = %e, "controller update failed");
                false
            }
        }
    }

    /// Deletes an object; whether it was there.
    pub(crate) fn delete(&mut self, kind: &str, ns: &str, name: &str) -> bool {
        let deleted = self.sim.delete(kind, ns, name).is_ok();
        if deleted {
            self.writes += 1;
        }
        deleted
    }

    /// Records a `Normal` core/v1 Event about `object` from `component`.
    pub(crate) fn event(&mut self, object: &Value, component: &str, reason: &str, message: &str) {
        if events::record(&self.sim, object, component, reason, message) {
            self.writes += 1;
        }
    }

    /// A name `<base>-<5 chars>` free among `taken`, hashed from `base` and a counter.
    pub(crate) fn free_name(base: &str, taken: &HashSet<String>) -> String {
        (0u32..)
            .map(|n| format!("{base}-{}", short_hash(&format!("{base}/{n}"), 5)))
            .find(|name| !taken.contains(name))
            .unwrap_or_else(|| base.to_owned())
    }
}

/// Sets the field at `path` (object keys), creating objects on the way and replacing any
/// non-object met there, so user JSON of any shape cannot make it panic.
pub(crate) fn set_at(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *obj = value;
        return;
    };
    let mut cur = obj;
    for key in parents {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        cur = map.entry((*key).to_owned()).or_insert_with(|| json!({}));
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert((*last).to_owned(), value);
    }
}

/// Replaces `status` with `status`, keeping the existing conditions.
pub(crate) fn set_status(obj: &mut Value, mut status: Value) {
    if let (Some(c), Some(s)) = (
        obj.pointer("/status/conditions").cloned(),
        status.as_object_mut(),
    ) {
        s.insert("conditions".into(), c);
    }
    set_at(obj, &["status"], status);
}

/// The string at a JSON pointer, empty when absent.
pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.name`.
pub(crate) fn name_of(v: &Value) -> &str {
    str_at(v, "/metadata/name")
}

/// `metadata.namespace` (empty for cluster-scoped objects).
pub(crate) fn ns_of(v: &Value) -> &str {
    str_at(v, "/metadata/namespace")
}

/// `metadata.uid`.
pub(crate) fn uid_of(v: &Value) -> &str {
    str_at(v, "/metadata/uid")
}

/// Whether the object is being deleted (`metadata.deletionTimestamp` set).
pub(crate) fn is_deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Whether the object's controlling owner has `uid`.
pub(crate) fn controlled_by(v: &Value, uid: &str) -> bool {
    owner_refs(v).iter().any(|r| {
        r.get("controller").and_then(Value::as_bool) == Some(true)
            && r.get("uid").and_then(Value::as_str) == Some(uid)
    })
}

/// `metadata.ownerReferences` (empty when absent).
pub(crate) fn owner_refs(v: &Value) -> &[Value] {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A controlling ownerReference to `owner` (a stored object, with `kind` and `apiVersion`).
pub(crate) fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": str_at(owner, "/apiVersion"),
        "kind": str_at(owner, "/kind"),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `spec.replicas`, 1 when absent.
pub(crate) fn replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Whether a Pod's `Ready` condition is `True`.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.get("status") == Some(&json!("True")))
}

/// Whether a Pod has finished (`Succeeded` or `Failed`).
pub(crate) fn pod_finished(pod: &Value) -> bool {
    matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// The status condition of `type`.
pub(crate) fn condition<'a>(v: &'a Value, ty: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
}

/// Sets the status condition `ty` to `status`/`reason`/`message`, keeping its transition time
/// when the status did not change (so an unchanged condition writes nothing).
pub(crate) fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    let now = crate::store::now_rfc3339();
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let st = o.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else {
        return;
    };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(conds) = conds.as_array_mut() else {
        return;
    };
    let old = conds
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(ty));
    let since = old
        .and_then(|i| conds.get(i))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let mut cond = json!({"type": ty, "status": status, "lastTransitionTime": since});
    if !reason.is_empty() {
        cond["reason"] = json!(reason);
    }
    if !message.is_empty() {
        cond["message"] = json!(message);
    }
    match old {
        Some(i) => conds[i] = cond,
        None => conds.push(cond),
    }
}

/// Whether `labels` (an object's `metadata.labels`) satisfy a LabelSelector JSON
/// (`matchLabels` and `matchExpressions`); an absent or empty selector selects nothing, as the
/// workload controllers treat it.
pub(crate) fn selects(selector: &Value, object: &Value) -> bool {
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let exprs = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(serde_json::Map::is_empty) && exprs.is_none_or(Vec::is_empty) {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let exprs_ok = exprs.into_iter().flatten().all(|e| {
        let key = str_at(e, "/key");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match (str_at(e, "/operator"), label(key)) {
            ("In", Some(v)) => values.contains(&v),
            ("NotIn", v) => v.is_none_or(|v| !values.contains(&v)),
            ("Exists", v) => v.is_some(),
            ("DoesNotExist", v) => v.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// The characters Kubernetes uses in generated name suffixes (no vowels, no look-alikes).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The 64-bit FNV-1a hash of `input`.
pub(crate) fn fnv64(input: &str) -> u64 {
    input.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` characters of [`SAFE`] hashed from `input`.
pub(crate) fn short_hash(input: &str, len: usize) -> String {
    let mut h = fnv64(input);
    (0..len)
        .map(|_| {
            let c = SAFE[(h % SAFE.len() as u64) as usize];
            h /= SAFE.len() as u64;
            if h == 0 {
                h = 0x9e37_79b9_7f4a_7c15;
            }
            char::from(c)
        })
        .collect()
}

/// Whether a field holds nothing (null, an empty object or array): such fields are left out
/// of [`canonical`], as Go's semantic equality treats them like absent ones.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_blank),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A canonical text of a JSON value (object keys sorted, blank fields left out), for hashing:
/// the same template written by different clients (`kubectl rollout undo` sends
/// `creationTimestamp: null` and `resources: {}`) hashes the same.
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !is_blank(&m[*k])).collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", json!(k), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// A Pod for `owner` from its `template`, named `name`, with extra `labels`.
pub(crate) fn pod_from_template(
    owner: &Value,
    template: &Value,
    name: &str,
    labels: &[(&str, &str)],
) -> Value {
    let mut meta = template
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    set_at(&mut meta, &["name"], json!(name));
    set_at(&mut meta, &["namespace"], json!(ns_of(owner)));
    set_at(&mut meta, &["ownerReferences"], json!([owner_ref(owner)]));
    for (k, v) in labels {
        set_at(&mut meta, &["labels", k], json!(v));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_safe() {
        let a = short_hash("web/0", 5);
        assert_eq!(a, short_hash("web/0", 5));
        assert_ne!(a, short_hash("web/1", 5));
        assert!(a.bytes().all(|b| SAFE.contains(&b)), "{a}");
        assert_eq!(short_hash("x", 10).len(), 10);
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": [true, {"d": null, "c": "x", "e": {"f": []}}]})),
            r#"{"a":[true,{"c":"x"}],"b":1}"#
        );
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        assert!(selects(&json!({"matchLabels": {"app": "web"}}), &pod));
        assert!(!selects(&json!({"matchLabels": {"app": "db"}}), &pod));
        assert!(!selects(&json!({}), &pod));
        let expr = |op: &str, vals: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": vals}]});
        assert!(selects(&expr("In", json!(["front", "back"])), &pod));
        assert!(!selects(&expr("NotIn", json!(["front"])), &pod));
        assert!(selects(&expr("Exists", json!([])), &pod));
        assert!(!selects(&expr("DoesNotExist", json!([])), &pod));
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut obj = json!({});
        set_condition(&mut obj, "Ready", "True", "", "");
        let first = obj.clone();
        set_condition(&mut obj, "Ready", "True", "", "");
        assert_eq!(obj, first);
        set_condition(&mut obj, "Ready", "False", "Why", "msg");
        assert_eq!(
            condition(&obj, "Ready").map(|c| c["reason"].clone()),
            Some(json!("Why"))
        );
    }
}
