//! The kinds served from CustomResourceDefinitions: their descriptions and their storage, growing
//! and shrinking with the CRDs under the store's lock.
//!
//! A custom kind is described by the same [`KindInfo`] as a built-in one, with `&'static` names, so
//! that every handler, watch and list serves both alike and the built-in kinds keep their static
//! table ([`crate::kinds::KINDS`], indexed without a lookup). The names of a CRD are interned: each
//! distinct string, list of names and description is leaked once and reused by every later CRD that
//! spells it the same way (deleting and re-creating a CRD leaks nothing). The interned bytes are
//! bounded by [`MAX_INTERNED_BYTES`]; a CRD that would pass the bound is refused (422), never served
//! by growing memory without end.
//!
//! Storage is one [`KindState`] per CRD (its group and plural), shared by its versions: an object
//! read through another version than the one it was written in carries that version's
//! `apiVersion` and is otherwise the same ([`KindInfo::as_served`], `conversion.strategy: None`).
//! Lookups are linear over the CRDs, and happen only for paths the built-in table does not serve.

use std::collections::HashSet;

use crate::crd::CrdSpec;
use crate::error::{Result, SimError};
use crate::kinds::KindInfo;
use crate::store::KindState;

/// The bound on the bytes leaked to intern the names of custom kinds (1 MiB: thousands of CRDs).
pub const MAX_INTERNED_BYTES: usize = 1 << 20;

/// Interned names and kind descriptions, leaked once each, with a byte bound.
#[derive(Default)]
struct Interner {
    strs: HashSet<&'static str>,
    lists: HashSet<&'static [&'static str]>,
    infos: HashSet<&'static KindInfo>,
    bytes: usize,
}

impl Interner {
    fn charge(&mut self, bytes: usize) -> Result<()> {
        if self.bytes + bytes > MAX_INTERNED_BYTES {
            return Err(SimError::Invalid(format!(
                "the names of custom resources exceed the emulator's bound of {MAX_INTERNED_BYTES} bytes"
            )));
        }
        self.bytes += bytes;
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<&'static str> {
        if let Some(found) = self.strs.get(s) {
            return Ok(found);
        }
        self.charge(s.len())?;
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        self.strs.insert(leaked);
        Ok(leaked)
    }

    fn list(&mut self, items: &[String]) -> Result<&'static [&'static str]> {
        let interned = items
            .iter()
            .map(|s| self.str(s))
            .collect::<Result<Vec<_>>>()?;
        if let Some(found) = self.lists.get(interned.as_slice()) {
            return Ok(found);
        }
        self.charge(std::mem::size_of_val(interned.as_slice()))?;
        let leaked: &'static [&'static str] = Box::leak(interned.into_boxed_slice());
        self.lists.insert(leaked);
        Ok(leaked)
    }

    fn info(&mut self, info: KindInfo) -> Result<&'static KindInfo> {
        if let Some(found) = self.infos.get(&info) {
            return Ok(found);
        }
        self.charge(std::mem::size_of::<KindInfo>())?;
        let leaked: &'static KindInfo = Box::leak(Box::new(info));
        self.infos.insert(leaked);
        Ok(leaked)
    }
}

/// The kinds of one CRD, interned and ready to install ([`Registry::prepare`]).
pub(crate) struct Prepared {
    /// One per version, in the CRD's order.
    versions: Vec<(&'static KindInfo, bool)>,
    /// The storage version's kind.
    storage: &'static KindInfo,
}

/// The objects of one CRD's kinds.
pub(crate) struct CustomStore {
    /// The storage version's kind (group, plural and scope identify the store).
    pub storage: &'static KindInfo,
    /// Objects, history and the broadcast of live events.
    pub state: KindState,
}

/// The custom kinds served, and their storage.
#[derive(Default)]
pub(crate) struct Registry {
    /// Served kinds, one per served version, in the order their CRDs were created.
    served: Vec<&'static KindInfo>,
    stores: Vec<CustomStore>,
    interner: Interner,
}

impl Registry {
    /// The served custom kinds.
    pub(crate) fn served(&self) -> &[&'static KindInfo] {
        &self.served
    }

    /// The custom kind served at `group`/`version`/`plural`.
    pub(crate) fn by_path(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<&'static KindInfo> {
        self.served
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .copied()
    }

    /// The first served custom kind `name` names ([`KindInfo::is_named`]).
    pub(crate) fn lookup(&self, name: &str) -> Option<&'static KindInfo> {
        self.served.iter().find(|k| k.is_named(name)).copied()
    }

    fn position(&self, group: &str, plural: &str) -> Option<usize> {
        self.stores
            .iter()
            .position(|s| s.storage.group == group && s.storage.plural == plural)
    }

    /// The store of `info`'s CRD.
    pub(crate) fn store(&self, info: &KindInfo) -> Option<&CustomStore> {
        self.position(info.group, info.plural)
            .map(|i| &self.stores[i])
    }

    /// The store of `info`'s CRD, for a write.
    pub(crate) fn store_mut(&mut self, info: &KindInfo) -> Option<&mut CustomStore> {
        self.position(info.group, info.plural)
            .map(|i| &mut self.stores[i])
    }

    /// Every store.
    pub(crate) fn stores_mut(&mut self) -> impl Iterator<Item = &mut CustomStore> {
        self.stores.iter_mut()
    }

    /// Every store.
    pub(crate) fn stores(&self) -> impl Iterator<Item = &CustomStore> {
        self.stores.iter()
    }

    /// Interns the kinds of `spec`; checks that an existing CRD keeps its scope.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when the names would pass [`MAX_INTERNED_BYTES`] or the scope changes.
    pub(crate) fn prepare(&mut self, spec: &CrdSpec) -> Result<Prepared> {
        if let Some(i) = self.position(&spec.group, &spec.plural)
            && self.stores[i].storage.namespaced != spec.namespaced
        {
            return Err(SimError::Invalid(format!(
                "CustomResourceDefinition.apiextensions.k8s.io \"{}.{}\" is invalid: spec.scope: Invalid value: field is immutable",
                spec.plural, spec.group
            )));
        }
        let i = &mut self.interner;
        let (group, kind, plural, singular) = (
            i.str(&spec.group)?,
            i.str(&spec.kind)?,
            i.str(&spec.plural)?,
            i.str(&spec.singular)?,
        );
        let (short_names, categories) = (i.list(&spec.short_names)?, i.list(&spec.categories)?);
        let mut versions = Vec::with_capacity(spec.versions.len());
        let mut storage = None;
        for v in &spec.versions {
            let version = i.str(&v.name)?;
            let info = i.info(KindInfo {
                kind,
                group,
                version,
                plural,
                singular,
                namespaced: spec.namespaced,
                short_names,
                categories,
                custom: true,
                status_subresource: v.status,
            })?;
            if v.storage {
                storage = Some(info);
            }
            versions.push((info, v.served));
        }
        let storage = storage.ok_or_else(|| {
            SimError::Invalid("a CustomResourceDefinition needs a storage version".into())
        })?;
        Ok(Prepared { versions, storage })
    }

    /// Serves the kinds of a prepared CRD, replacing what the same CRD served before; its store is
    /// kept, or made with `new_state` for a new CRD.
    pub(crate) fn install(&mut self, p: Prepared, new_state: impl FnOnce() -> KindState) {
        let (group, plural) = (p.storage.group, p.storage.plural);
        self.served
            .retain(|k| !(k.group == group && k.plural == plural));
        self.served.extend(
            p.versions
                .iter()
                .filter(|(_, served)| *served)
                .map(|(k, _)| *k),
        );
        match self.position(group, plural) {
            Some(i) => self.stores[i].storage = p.storage,
            None => self.stores.push(CustomStore {
                storage: p.storage,
                state: new_state(),
            }),
        }
    }

    /// Stops serving the kinds of the CRD for `group`/`plural` and hands back its store.
    pub(crate) fn remove(&mut self, group: &str, plural: &str) -> Option<CustomStore> {
        self.served
            .retain(|k| !(k.group == group && k.plural == plural));
        self.position(group, plural).map(|i| self.stores.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(plural: &str, kind: &str) -> CrdSpec {
        crate::crd::parse(
            &json!({"metadata": {"name": format!("{plural}.example.com")},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "shortNames": ["x"]},
                "versions": [{"name": "v1", "served": true, "storage": true},
                             {"name": "v2", "served": false, "storage": false}]}}),
        )
        .expect("valid")
    }

    #[test]
    fn names_are_interned_once_and_bounded() {
        let mut r = Registry::default();
        let p = r.prepare(&spec("widgets", "Widget")).expect("prepare");
        let first = r.interner.bytes;
        r.install(p, || KindState::new(1));
        let again = r.prepare(&spec("widgets", "Widget")).expect("again");
        assert_eq!(r.interner.bytes, first, "the same names leak nothing more");
        assert!(std::ptr::eq(
            again.storage,
            r.by_path("example.com", "v1", "widgets").expect("served")
        ));
        assert!(
            r.by_path("example.com", "v2", "widgets").is_none(),
            "v2 is not served"
        );
        assert_eq!(r.lookup("x.example.com").map(|k| k.kind), Some("Widget"));
        let huge = "w".repeat(MAX_INTERNED_BYTES);
        assert!(matches!(
            r.prepare(&CrdSpec {
                kind: huge,
                ..spec("widgets", "Widget")
            }),
            Err(SimError::Invalid(_))
        ));
        assert!(r.remove("example.com", "widgets").is_some());
        assert!(r.served().is_empty());
    }
}
