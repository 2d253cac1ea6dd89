//! The object store: objects per kind, the global resourceVersion, bounded per-kind event history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::crd::{self, CrdSpec};
use crate::defaults;
use crate::error::{Result, SimError};
use crate::kinds::{self, KINDS, KindInfo};
use crate::list::ContinueStore;
use crate::patch::apply::record_update;
use crate::registry::{Prepared, Registry};

/// The type of a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, `MODIFIED`, `DELETED`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change of one object, as kept in the history and broadcast to watchers.
#[derive(Debug)]
pub struct Event {
    /// The global resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The new state (for DELETED: the last state carrying the deletion's RV).
    pub object: Arc<Value>,
    /// The previous state, for MODIFIED (used for selector transitions).
    pub prev: Option<Arc<Value>>,
}

/// The state of one kind.
pub(crate) struct KindState {
    /// Objects by `(namespace, name)` (namespace empty when cluster-scoped), in etcd key order.
    pub objects: BTreeMap<(String, String), Arc<Value>>,
    /// Retained events, oldest first.
    pub history: VecDeque<Arc<Event>>,
    /// The RV of the newest event dropped from the history.
    pub compacted_rv: u64,
    /// Live events for open watches.
    pub tx: broadcast::Sender<Arc<Event>>,
}

impl KindState {
    /// An empty kind whose broadcast buffers `watch_buffer` live events.
    pub(crate) fn new(watch_buffer: usize) -> Self {
        Self {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_rv: 0,
            tx: broadcast::channel(watch_buffer.max(1)).0,
        }
    }
}

/// Everything behind the emulator's single lock.
pub(crate) struct State {
    /// The global resourceVersion (the last one issued).
    pub rv: u64,
    /// Per-kind state of the built-in kinds, indexed like [`KINDS`].
    pub kinds: Vec<KindState>,
    /// The kinds served from CustomResourceDefinitions, with their state.
    pub custom: Registry,
    /// Snapshots behind continue tokens.
    pub continues: ContinueStore,
    /// Cancelled (and replaced) to close every open watch.
    pub watch_cancel: CancellationToken,
    /// The resourceVersion of the last stored change, for tasks that react to any change (the
    /// controllers) without subscribing to every kind.
    pub changes: watch::Sender<u64>,
    /// Cluster IPs handed to Services created without one.
    service_ips: u32,
    history_size: usize,
    watch_buffer: usize,
}

/// How a write from the API is carried out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Write {
    /// The field manager of a non-apply write, recorded as an `Update` entry in
    /// `metadata.managedFields` ([`crate::patch::apply::record_update`]).
    pub manager: Option<String>,
    /// `dryRun=All`: answer as if done; store, version and broadcast nothing.
    pub dry_run: bool,
    /// A namespaced create needs its namespace to exist (API requests; the library API and the
    /// loaders of generated clusters do not check).
    pub require_namespace: bool,
    /// Which part of the object a write may change.
    pub part: Part,
}

/// Which part of an object a write changes: for a custom kind with a `status` subresource, writes
/// to the object leave the status alone and writes to `status` change only the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Part {
    /// The whole object (built-in kinds, custom kinds without a status subresource).
    #[default]
    Whole,
    /// Everything but `status` (the object of a custom kind with a status subresource).
    Main,
    /// Only `status` (the `status` subresource of a custom kind).
    Status,
}

impl Part {
    /// The part a request for `subresource` of `info` may change.
    pub(crate) fn of(info: &KindInfo, subresource: Option<&str>) -> Self {
        match (info.custom && info.status_subresource, subresource) {
            (false, _) => Part::Whole,
            (true, Some("status")) => Part::Status,
            (true, _) => Part::Main,
        }
    }

    /// Keeps in `new` what this part may not change from `old`.
    fn restore(self, old: &Value, new: &mut Value) {
        let Some(map) = new.as_object_mut() else {
            return;
        };
        match self {
            Part::Whole => {}
            Part::Main => match old.get("status") {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            },
            Part::Status => {
                let status = map.remove("status");
                let meta = map.remove("metadata");
                *map = old.as_object().cloned().unwrap_or_default();
                if let Some(s) = status {
                    map.insert("status".into(), s);
                }
                // Labels and annotations may change through status, as on a real server.
                if let (Some(meta), Some(m)) =
                    (meta, map.get_mut("metadata").and_then(Value::as_object_mut))
                {
                    for f in ["labels", "annotations"] {
                        if let Some(v) = meta.get(f) {
                            m.insert(f.into(), v.clone());
                        }
                    }
                }
            }
        }
    }
}

/// The Namespace kind (for existence checks).
pub(crate) const NAMESPACE: KindInfo = KindInfo {
    kind: "Namespace",
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    custom: false,
    status_subresource: true,
};

/// The answer for a custom kind whose CRD is gone (deleted after the request resolved it).
fn gone(info: &KindInfo) -> SimError {
    SimError::UnknownKind(info.plural.to_owned())
}

/// A random UUID (version 4 layout).
fn new_uid() -> String {
    let mut rng = rand::rng();
    let b: [u8; 16] = rng.random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        8 | (b[8] & 3),
        &h(8..10)[1..],
        h(10..16)
    )
}

/// The current time, RFC 3339 with second precision.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The namespace part of a storage key (empty for cluster-scoped kinds).
fn ns_key(info: &KindInfo, ns: &str) -> String {
    if info.namespaced {
        ns.to_owned()
    } else {
        String::new()
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// The object with `metadata` and `status` removed, to detect spec changes.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

impl State {
    pub(crate) fn new(history_size: usize, watch_buffer: usize, continue_capacity: usize) -> Self {
        let kinds = KINDS.iter().map(|_| KindState::new(watch_buffer)).collect();
        Self {
            rv: 0,
            kinds,
            continues: ContinueStore::new(continue_capacity),
            watch_cancel: CancellationToken::new(),
            changes: watch::channel(0).0,
            service_ips: 0,
            history_size: history_size.max(1),
            watch_buffer: watch_buffer.max(1),
            custom: Registry::default(),
        }
    }

    /// The state of `info`'s kind: an index into the built-in table, or the CRD's store.
    ///
    /// # Errors
    /// [`SimError::UnknownKind`] for a custom kind whose CRD is gone.
    pub(crate) fn kind(&self, info: &KindInfo) -> Result<&KindState> {
        if info.custom {
            return self
                .custom
                .store(info)
                .map(|s| &s.state)
                .ok_or_else(|| gone(info));
        }
        kinds::index_of(info)
            .map(|i| &self.kinds[i])
            .ok_or_else(|| gone(info))
    }

    fn kind_mut(&mut self, info: &KindInfo) -> Result<&mut KindState> {
        if info.custom {
            return self
                .custom
                .store_mut(info)
                .map(|s| &mut s.state)
                .ok_or_else(|| gone(info));
        }
        kinds::index_of(info)
            .map(|i| &mut self.kinds[i])
            .ok_or_else(|| gone(info))
    }

    /// Checks a CRD about to be stored and interns its kinds; sets its defaults and status.
    fn admit_crd(&mut self, obj: &mut Value, old: Option<&Value>) -> Result<(CrdSpec, Prepared)> {
        let spec = crd::parse(obj)?;
        if KINDS.iter().any(|k| k.group == spec.group) {
            return Err(SimError::Invalid(format!(
                "CustomResourceDefinition.apiextensions.k8s.io \"{}.{}\" is invalid: spec.group: Invalid value: the group is served by a built-in API",
                spec.plural, spec.group
            )));
        }
        let prepared = self.custom.prepare(&spec)?;
        crd::accept(
            obj,
            &spec,
            old.and_then(|o| o.get("status")),
            &now_rfc3339(),
        );
        Ok((spec, prepared))
    }

    /// Serves the kinds of a stored CRD.
    fn install_crd(&mut self, prepared: Prepared) {
        let buffer = self.watch_buffer;
        self.custom.install(prepared, || KindState::new(buffer));
    }

    /// Deletes every object of the CRD for `group`/`plural` (a DELETED event each), then stops
    /// serving its kinds: its broadcast ends with the store, which ends the open watches once they
    /// have sent those events.
    fn remove_crd_kinds(&mut self, group: &str, plural: &str) {
        let Some(storage) = self
            .custom
            .stores()
            .find(|s| s.storage.group == group && s.storage.plural == plural)
            .map(|s| s.storage)
        else {
            return;
        };
        let keys: Vec<(String, String)> = self
            .kind(storage)
            .map(|k| k.objects.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            // Each key was just read under this lock.
            let _ = self.delete(storage, &ns, &name);
        }
        self.custom.remove(group, plural);
    }

    fn commit(&mut self, info: &KindInfo, event: Event) {
        let limit = self.history_size;
        let Ok(ks) = self.kind_mut(info) else {
            return;
        };
        let event = Arc::new(event);
        ks.history.push_back(event.clone());
        while ks.history.len() > limit {
            if let Some(old) = ks.history.pop_front() {
                ks.compacted_rv = old.rv;
            }
        }
        let rv = event.rv;
        // No receivers is fine: nobody is watching this kind.
        let _ = ks.tx.send(event);
        self.changes.send_replace(rv);
    }

    /// Normalises an incoming object for `info`: type fields, namespace, name.
    fn normalise(
        info: &KindInfo,
        mut obj: Value,
        path_ns: Option<&str>,
    ) -> Result<(Value, String, String)> {
        let map = obj
            .as_object_mut()
            .ok_or_else(|| SimError::BadRequest("the body must be a JSON object".into()))?;
        if let Some(k) = map.get("kind").and_then(Value::as_str)
            && k != info.kind
        {
            return Err(SimError::BadRequest(format!(
                "the kind {k:?} does not match the path ({})",
                info.kind
            )));
        }
        if let Some(av) = map.get("apiVersion").and_then(Value::as_str)
            && av != info.api_version()
        {
            return Err(SimError::BadRequest(format!(
                "the apiVersion {av:?} does not match the path ({})",
                info.api_version()
            )));
        }
        map.insert("kind".into(), json!(info.kind));
        map.insert("apiVersion".into(), json!(info.api_version()));
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let meta = meta
            .as_object_mut()
            .ok_or_else(|| SimError::BadRequest("metadata must be an object".into()))?;
        let ns = if info.namespaced {
            let body_ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let ns = match (path_ns, body_ns) {
                (Some(p), Some(b)) if p != b => {
                    return Err(SimError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                (Some(p), _) => p.to_owned(),
                (None, Some(b)) => b.to_owned(),
                (None, None) => "default".to_owned(),
            };
            meta.insert("namespace".into(), json!(ns));
            ns
        } else {
            meta.remove("namespace");
            String::new()
        };
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
        {
            let mut rng = rand::rng();
            let suffix: String = (0..5)
                .map(|_| {
                    let c = rng.random_range(0..36u8);
                    char::from(if c < 10 { b'0' + c } else { b'a' + c - 10 })
                })
                .collect();
            name = format!("{prefix}{suffix}");
            meta.insert("name".into(), json!(name));
        }
        if name.is_empty() {
            return Err(SimError::Invalid(format!(
                "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                info.kind
            )));
        }
        Ok((obj, ns, name))
    }

    /// Creates an object; returns the stored state.
    pub(crate) fn create(
        &mut self,
        info: &KindInfo,
        obj: Value,
        path_ns: Option<&str>,
    ) -> Result<Arc<Value>> {
        self.create_with(info, obj, path_ns, false, Write::default())
    }

    /// Whether the namespace `ns` exists (answers `NotFound` for the namespace when not).
    pub(crate) fn require_namespace(&self, ns: &str) -> Result<()> {
        let key = (String::new(), ns.to_owned());
        if self.kind(&NAMESPACE)?.objects.contains_key(&key) {
            Ok(())
        } else {
            Err(SimError::NotFound("namespaces".into(), ns.to_owned()))
        }
    }

    /// Gives a Service without a clusterIP (and not `ExternalName`) the next one of 10.100.0.0/16,
    /// as the API server's allocator does (the generator's Services use 10.96.0.0/16).
    fn allocate_cluster_ip(&mut self, svc: &mut Value, dry_run: bool) {
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let has_ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_some_and(|ip| !ip.is_empty());
        if has_ip || spec.get("type") == Some(&json!("ExternalName")) {
            return;
        }
        let n = self.service_ips % (250 * 256);
        let ip = format!("10.100.{}.{}", n / 250, n % 250 + 1);
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        if !dry_run {
            self.service_ips += 1;
        }
    }

    /// Creates an object; with `keep_identity`, a given `uid` and `creationTimestamp` are kept
    /// (used to load generated clusters whose references point at UIDs).
    pub(crate) fn create_with(
        &mut self,
        info: &KindInfo,
        obj: Value,
        path_ns: Option<&str>,
        keep_identity: bool,
        write: Write,
    ) -> Result<Arc<Value>> {
        let (mut obj, ns, name) = Self::normalise(info, obj, path_ns)?;
        self.kind(info)?;
        if write.require_namespace && info.namespaced {
            self.require_namespace(&ns)?;
        }
        defaults::apply(info, &mut obj);
        if write.part == Part::Main
            && let Some(map) = obj.as_object_mut()
        {
            // The status subresource owns the status: a create starts without one.
            map.remove("status");
        }
        let crd = if info.is_crd() {
            Some(self.admit_crd(&mut obj, None)?.1)
        } else {
            None
        };
        if info.group.is_empty() && info.kind == "Service" {
            self.allocate_cluster_ip(&mut obj, write.dry_run);
        }
        if let Some(manager) = &write.manager {
            let now = now_rfc3339();
            record_update(
                info.merge_kind(),
                &info.api_version(),
                None,
                &mut obj,
                manager,
                &now,
            );
        }
        let key = (ns, name);
        if self.kind(info)?.objects.contains_key(&key) {
            return Err(SimError::AlreadyExists(info.plural.into(), key.1));
        }
        let rv = self.rv + 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let has = |m: &Map<String, Value>, f: &str| {
                m.get(f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            if !(keep_identity && has(meta, "uid")) {
                meta.insert("uid".into(), json!(new_uid()));
            }
            if !(keep_identity && has(meta, "creationTimestamp")) {
                meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
            }
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("generation".into(), json!(1));
            meta.remove("deletionTimestamp");
        }
        if write.dry_run {
            // Nothing is stored, so no resourceVersion is issued.
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            return Ok(Arc::new(obj));
        }
        let obj = Arc::new(obj);
        self.rv = rv;
        self.kind_mut(info)?.objects.insert(key, obj.clone());
        self.commit(
            info,
            Event {
                rv,
                kind: EventType::Added,
                object: obj.clone(),
                prev: None,
            },
        );
        if let Some(prepared) = crd {
            self.install_crd(prepared);
        }
        Ok(obj)
    }

    /// Replaces an object (PUT); a stale body resourceVersion is a conflict.
    pub(crate) fn replace(
        &mut self,
        info: &KindInfo,
        obj: Value,
        path_ns: Option<&str>,
        path_name: Option<&str>,
        write: Write,
    ) -> Result<Arc<Value>> {
        let (obj, ns, name) = Self::normalise(info, obj, path_ns)?;
        if let Some(p) = path_name
            && p != name
        {
            return Err(SimError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({p})"
            )));
        }
        let key = (ns, name);
        let old = self
            .kind(info)?
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| SimError::NotFound(info.plural.into(), key.1.clone()))?;
        if let Some(body_rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty())
            && Some(body_rv) != meta_str(&old, "resourceVersion")
        {
            return Err(SimError::Conflict(info.plural.into(), key.1));
        }
        self.store_update(info, key, &old, obj, write)
    }

    /// Applies `f` to the current state of an object and stores the result (no conflict check).
    pub(crate) fn update_with(
        &mut self,
        info: &KindInfo,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Arc<Value>> {
        self.try_update_with(info, ns, name, Write::default(), |o| {
            f(o);
            Ok(())
        })
    }

    /// Applies the fallible `f` to the current state of an object and stores the result (nothing
    /// is stored when `f` fails or the write is a dry run).
    pub(crate) fn try_update_with(
        &mut self,
        info: &KindInfo,
        ns: &str,
        name: &str,
        write: Write,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Arc<Value>> {
        let key = (
            if info.namespaced {
                ns.to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        let old = self
            .kind(info)?
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| SimError::NotFound(info.plural.into(), name.to_owned()))?;
        let mut new = (*old).clone();
        f(&mut new)?;
        self.store_update(info, key, &old, new, write)
    }

    /// Applies `f` to a copy of the current state of an object and stores it only when `f`
    /// changed something; `None` when nothing was written (the controllers' writes, which must
    /// not bump the resourceVersion when there is nothing to do).
    pub(crate) fn update_changed(
        &mut self,
        info: &KindInfo,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Option<Arc<Value>>> {
        let old = self.get(info, ns, name)?;
        let mut new = (*old).clone();
        f(&mut new);
        if new == *old {
            return Ok(None);
        }
        let key = (ns_key(info, ns), name.to_owned());
        self.store_update(info, key, &old, new, Write::default())
            .map(Some)
    }

    fn store_update(
        &mut self,
        info: &KindInfo,
        key: (String, String),
        old: &Arc<Value>,
        mut new: Value,
        write: Write,
    ) -> Result<Arc<Value>> {
        write.part.restore(old, &mut new);
        defaults::apply(info, &mut new);
        let crd = if info.is_crd() {
            Some(self.admit_crd(&mut new, Some(old))?.1)
        } else {
            None
        };
        // A body without managed fields keeps the recorded ones, as on a real API server.
        if let Some(fields) = old.pointer("/metadata/managedFields")
            && let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.entry("managedFields")
                .or_insert_with(|| fields.clone());
        }
        let rv = self.rv + 1;
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bump = spec_part(old) != spec_part(&new);
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in ["uid", "creationTimestamp"] {
                if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
                    meta.insert(field.into(), v.clone());
                }
            }
            meta.insert("name".into(), json!(key.1));
            if info.namespaced {
                meta.insert("namespace".into(), json!(key.0));
            }
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert(
                "generation".into(),
                json!(if bump { generation + 1 } else { generation }),
            );
        }
        if write.dry_run {
            // Nothing is stored: the answer keeps the stored resourceVersion.
            if let (Some(meta), Some(rv)) = (
                new.get_mut("metadata").and_then(Value::as_object_mut),
                old.pointer("/metadata/resourceVersion"),
            ) {
                meta.insert("resourceVersion".into(), rv.clone());
            }
            return Ok(Arc::new(new));
        }
        let new = Arc::new(new);
        self.rv = rv;
        self.kind_mut(info)?.objects.insert(key, new.clone());
        self.commit(
            info,
            Event {
                rv,
                kind: EventType::Modified,
                object: new.clone(),
                prev: Some(old.clone()),
            },
        );
        if let Some(prepared) = crd {
            self.install_crd(prepared);
        }
        Ok(new)
    }

    /// Deletes an object; returns its last state carrying the deletion's RV.
    pub(crate) fn delete(&mut self, info: &KindInfo, ns: &str, name: &str) -> Result<Arc<Value>> {
        self.delete_with(info, ns, name, Write::default())
    }

    /// [`State::delete`]; a dry run answers the object as it is and removes nothing.
    pub(crate) fn delete_with(
        &mut self,
        info: &KindInfo,
        ns: &str,
        name: &str,
        write: Write,
    ) -> Result<Arc<Value>> {
        if write.dry_run {
            return self.get(info, ns, name);
        }
        let key = (
            if info.namespaced {
                ns.to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        if info.is_crd()
            && let Some(crd) = self.kind(info)?.objects.get(&key).cloned()
            && let Ok(spec) = crd::parse(&crd)
        {
            // As the API server's finalizer does: the objects go first, then the definition.
            self.remove_crd_kinds(&spec.group, &spec.plural);
        }
        let old = self
            .kind_mut(info)?
            .objects
            .remove(&key)
            .ok_or_else(|| SimError::NotFound(info.plural.into(), name.to_owned()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let last = Arc::new(last);
        self.commit(
            info,
            Event {
                rv,
                kind: EventType::Deleted,
                object: last.clone(),
                prev: Some(old),
            },
        );
        Ok(last)
    }

    /// Reads one object.
    pub(crate) fn get(&self, info: &KindInfo, ns: &str, name: &str) -> Result<Arc<Value>> {
        let key = (
            if info.namespaced {
                ns.to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        self.kind(info)?
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| SimError::NotFound(info.plural.into(), name.to_owned()))
    }

    /// Forgets all history and bumps the RV, so every watch from an earlier RV gets 410.
    pub(crate) fn expire_history(&mut self) {
        self.rv += 1;
        let rv = self.rv;
        let custom = self.custom.stores_mut().map(|s| &mut s.state);
        for ks in self.kinds.iter_mut().chain(custom) {
            ks.history.clear();
            ks.compacted_rv = rv;
        }
        self.continues.clear();
    }

    /// Closes every open watch.
    pub(crate) fn drop_watches(&mut self) {
        self.watch_cancel.cancel();
        self.watch_cancel = CancellationToken::new();
    }

    /// The number of stored objects over all kinds.
    pub(crate) fn object_count(&self) -> usize {
        let custom = self.custom.stores().map(|s| &s.state);
        self.kinds
            .iter()
            .chain(custom)
            .map(|k| k.objects.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::lookup;

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "data": {"a": "1"}})
    }

    #[test]
    fn uid_looks_like_uuid() {
        let u = new_uid();
        assert_eq!(u.len(), 36, "{u}");
        assert_eq!(u.matches('-').count(), 4);
    }

    #[test]
    fn crud_and_history() {
        let info = lookup("cm").expect("cm");
        let mut s = State::new(2, 16, 8);
        let a = s.create(info, cm("a"), None).expect("create");
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(a["kind"], "ConfigMap");
        assert!(matches!(
            s.create(info, cm("a"), None),
            Err(SimError::AlreadyExists(..))
        ));
        let mut stale = cm("a");
        stale["metadata"]["resourceVersion"] = json!("0");
        assert!(matches!(
            s.replace(info, stale, None, None, Write::default()),
            Err(SimError::Conflict(..))
        ));
        let mut upd = (*a).clone();
        upd["data"]["a"] = json!("2");
        let b = s
            .replace(info, upd, None, Some("a"), Write::default())
            .expect("replace");
        assert_eq!(b["metadata"]["generation"], 2);
        assert_eq!(b["metadata"]["uid"], a["metadata"]["uid"]);
        let d = s.delete(info, "ns", "a").expect("delete");
        assert_eq!(d["metadata"]["resourceVersion"], "3");
        assert_eq!(s.kind(info).expect("kind").history.len(), 2);
        assert_eq!(s.kind(info).expect("kind").compacted_rv, 1);
        assert!(s.get(info, "ns", "a").is_err());
    }
}
