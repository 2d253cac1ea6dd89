//! The garbage collector: objects whose owners (`metadata.ownerReferences`) are all gone are
//! deleted (background propagation); an owner deleted in the foreground keeps a
//! `deletionTimestamp` and the `foregroundDeletion` finalizer until its dependents are gone;
//! orphan propagation removes the owner's references from its dependents before it goes.
//! [`delete`] is how the API deletes while the controllers run: it also honours finalizers
//! (an object with any stays, marked for deletion, until they are removed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::namespace::namespaced_kinds;
use super::{Cx, is_deleting, owner_refs, str_at, uid_of};
use crate::error::Result;
use crate::kinds::{KINDS, KindInfo};
use crate::store::{State, Write, now_rfc3339};

/// The finalizer of an owner waiting for its dependents.
pub const FOREGROUND: &str = "foregroundDeletion";

/// How a deletion treats the owner's dependents (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// The owner goes now; the collector deletes the dependents afterwards.
    #[default]
    Background,
    /// The owner stays (with `deletionTimestamp`) until its dependents are gone.
    Foreground,
    /// The dependents stay, without their reference to the owner.
    Orphan,
}

impl Propagation {
    /// Parses a `propagationPolicy` (`Background`, `Foreground`, `Orphan`); `None` otherwise.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            "Orphan" => Some(Self::Orphan),
            _ => None,
        }
    }
}

/// One stored object, as the collector sees it.
struct Entry {
    info: &'static KindInfo,
    ns: String,
    name: String,
    uid: String,
    owners: Vec<String>,
    deleting: bool,
    finalizers: Vec<String>,
}

/// Every kind served now (namespaced or not).
fn all_kinds(state: &State) -> Vec<&'static KindInfo> {
    let mut kinds: Vec<&'static KindInfo> = KINDS.iter().filter(|k| !k.namespaced).collect();
    kinds.extend(
        state
            .custom
            .stores()
            .map(|s| s.storage)
            .filter(|k| !k.namespaced),
    );
    kinds.extend(namespaced_kinds(state));
    kinds
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn entries(state: &State) -> Vec<Entry> {
    let mut out = Vec::new();
    for info in all_kinds(state) {
        let Ok(ks) = state.kind(info) else { continue };
        for ((ns, name), obj) in &ks.objects {
            out.push(Entry {
                info,
                ns: ns.clone(),
                name: name.clone(),
                uid: uid_of(obj).to_owned(),
                owners: owner_refs(obj)
                    .iter()
                    .map(|r| str_at(r, "/uid").to_owned())
                    .collect(),
                deleting: is_deleting(obj),
                finalizers: finalizers(obj),
            });
        }
    }
    out
}

/// Deletes orphaned dependents, finishes foreground deletions and objects whose finalizers are
/// gone.
pub(crate) fn reconcile(cx: &mut Cx) {
    let mut state = cx.sim.inner.state.lock();
    let all = entries(&state);
    let uids: HashSet<&str> = all.iter().map(|e| e.uid.as_str()).collect();
    let mut dependents: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in &all {
        for o in &e.owners {
            dependents.entry(o.as_str()).or_default().push(e);
        }
    }
    let mut writes = 0;
    for e in &all {
        let orphaned = !e.owners.is_empty() && e.owners.iter().all(|o| !uids.contains(o.as_str()));
        if orphaned && !e.deleting {
            if delete_entry(&mut state, e, Propagation::Background).is_ok() {
                writes += 1;
            }
            continue;
        }
        if !e.deleting || e.info.kind == "Namespace" && e.info.group.is_empty() {
            continue;
        }
        let waiting = dependents
            .get(e.uid.as_str())
            .map_or(&[][..], Vec::as_slice);
        if e.finalizers.iter().any(|f| f == FOREGROUND) {
            if waiting.is_empty() {
                let done = state.update_with(e.info, &e.ns, &e.name, |o| {
                    if let Some(f) = o
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        f.retain(|x| x != FOREGROUND);
                    }
                });
                writes += usize::from(done.is_ok());
            } else {
                for d in waiting.iter().filter(|d| !d.deleting) {
                    if delete_entry(&mut state, d, Propagation::Foreground).is_ok() {
                        writes += 1;
                    }
                }
            }
        } else if e.finalizers.is_empty() && state.delete(e.info, &e.ns, &e.name).is_ok() {
            writes += 1;
        }
    }
    drop(state);
    cx.writes += writes;
}

fn delete_entry(state: &mut State, e: &Entry, policy: Propagation) -> Result<Arc<Value>> {
    delete(state, e.info, &e.ns, &e.name, policy, Write::default())
}

/// Whether any stored object names `uid` among its owners.
fn has_dependents(state: &State, uid: &str) -> bool {
    all_kinds(state).into_iter().any(|info| {
        state.kind(info).is_ok_and(|ks| {
            ks.objects
                .values()
                .any(|o| owner_refs(o).iter().any(|r| str_at(r, "/uid") == uid))
        })
    })
}

/// Marks an object for deletion: `deletionTimestamp`, and `finalizer` added when given.
fn mark(
    state: &mut State,
    info: &KindInfo,
    ns: &str,
    name: &str,
    finalizer: Option<&str>,
) -> Result<Arc<Value>> {
    let now = now_rfc3339();
    state.update_with(info, ns, name, |o| {
        let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        meta.insert("deletionTimestamp".into(), json!(now));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if let Some(f) = finalizer {
            let list = meta.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut()
                && !list.iter().any(|x| x == f)
            {
                list.push(json!(f));
            }
        }
        if info.kind == "Namespace"
            && let Some(status) = o.get_mut("status").and_then(Value::as_object_mut)
        {
            status.insert("phase".into(), json!("Terminating"));
        }
    })
}

/// Removes the references to `uid` from every object that has one.
fn orphan_dependents(state: &mut State, uid: &str) {
    let mut found = Vec::new();
    for info in all_kinds(state) {
        if let Ok(ks) = state.kind(info) {
            found.extend(
                ks.objects
                    .iter()
                    .filter(|(_, o)| owner_refs(o).iter().any(|r| str_at(r, "/uid") == uid))
                    .map(|((ns, name), _)| (info, ns.clone(), name.clone())),
            );
        }
    }
    for (info, ns, name) in found {
        // Each key was just read under this lock.
        let _ = state.update_with(info, &ns, &name, |o| {
            if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                if let Some(refs) = meta
                    .get_mut("ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| str_at(r, "/uid") != uid);
                }
                if meta
                    .get("ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                {
                    meta.remove("ownerReferences");
                }
            }
        });
    }
}

/// Deletes an object as the API server does with the garbage collector running: a Namespace
/// becomes Terminating (the namespace controller empties and removes it); `Foreground` on an
/// object with dependents marks it with the `foregroundDeletion` finalizer; `Orphan` first
/// removes the references its dependents hold; an object with finalizers is only marked.
/// Deleting an object already marked answers it as it is. A dry run changes nothing.
///
/// # Errors
/// Not found, or an unknown kind.
pub(crate) fn delete(
    state: &mut State,
    info: &KindInfo,
    ns: &str,
    name: &str,
    policy: Propagation,
    write: Write,
) -> Result<Arc<Value>> {
    let obj = state.get(info, ns, name)?;
    if write.dry_run || is_deleting(&obj) {
        return Ok(obj);
    }
    if info.kind == "Namespace" && info.group.is_empty() {
        return mark(state, info, ns, name, None);
    }
    let uid = uid_of(&obj).to_owned();
    match policy {
        Propagation::Orphan => orphan_dependents(state, &uid),
        Propagation::Foreground if has_dependents(state, &uid) => {
            return mark(state, info, ns, name, Some(FOREGROUND));
        }
        _ => {}
    }
    if !finalizers(&obj).is_empty() {
        return mark(state, info, ns, name, None);
    }
    state.delete(info, ns, name)
}
