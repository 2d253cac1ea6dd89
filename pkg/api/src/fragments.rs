//! A bounded cache of each resource's rendered JSON, so list and traversal answers copy bytes
//! instead of serialising every node again.
//!
//! Entries are keyed by the address of the graph's `Arc<Resource>` and hold a `Weak` to it. The
//! graph never mutates a stored resource: an update swaps in a new `Arc`, so a live entry for an
//! address always describes the current value at that address. The `Weak` keeps the allocation,
//! so an address cannot be reused while its entry exists; an entry whose resource is gone is
//! dead and only waits for the sweep. Past the byte budget the cache drops dead entries, then
//! everything (the next answers render again).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use axum::body::Bytes;
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use astrolabe_model::Resource;

/// Default byte budget (64 MiB: every node of a ~90k-resource cluster in one view).
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// The JSON views a resource is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// The native resource (`ResourceJson`).
    Native,
    /// The Go-compatible graph node (`CompatNode`).
    CompatNode,
}

struct Entry {
    resource: Weak<Resource>,
    json: Bytes,
}

/// Bytes an entry holds on top of its JSON: the map slot and the resource allocation its `Weak`
/// keeps alive after the graph drops it.
const ENTRY_OVERHEAD: usize = 64 + size_of::<Resource>();

/// Rendered resources, bounded by bytes. Cheap to clone (shared).
#[derive(Clone)]
pub struct FragmentCache {
    inner: Arc<Inner>,
}

struct Inner {
    map: DashMap<(usize, View), Entry, FxBuildHasher>,
    bytes: AtomicUsize,
    budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for FragmentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragmentCache")
            .field("entries", &self.inner.map.len())
            .field("bytes", &self.bytes())
            .field("budget", &self.inner.budget)
            .finish()
    }
}

impl Default for FragmentCache {
    fn default() -> Self {
        FragmentCache::new(DEFAULT_CACHE_BYTES)
    }
}

impl FragmentCache {
    /// A cache holding at most about `budget` bytes; 0 disables it (every call renders).
    pub fn new(budget: usize) -> Self {
        FragmentCache {
            inner: Arc::new(Inner {
                map: DashMap::with_hasher(FxBuildHasher),
                bytes: AtomicUsize::new(0),
                budget,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// `resource` rendered in `view` by `render` (which returns the JSON bytes), from the cache
    /// when this very value was rendered before. Rendering errors are returned, not cached.
    ///
    /// # Errors
    /// When `render` fails.
    pub fn get_or_render(
        &self,
        resource: &Arc<Resource>,
        view: View,
        render: impl FnOnce(&Resource) -> sonic_rs::Result<Vec<u8>>,
    ) -> sonic_rs::Result<Bytes> {
        let inner = &*self.inner;
        let key = (Arc::as_ptr(resource) as usize, view);
        if let Some(e) = inner.map.get(&key)
            && e.resource.strong_count() > 0
        {
            inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.json.clone());
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        let json = Bytes::from(render(resource)?);
        if inner.budget == 0 {
            return Ok(json);
        }
        let size = json.len() + ENTRY_OVERHEAD;
        let entry = Entry {
            resource: Arc::downgrade(resource),
            json: json.clone(),
        };
        // Accounted before it is visible, so a concurrent sweep never subtracts first.
        let total = inner.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if let Some(old) = inner.map.insert(key, entry) {
            inner
                .bytes
                .fetch_sub(old.json.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
        }
        if total > inner.budget {
            self.shrink();
        }
        Ok(json)
    }

    /// Each of `resources` rendered in `view` by `render`, through [`Self::get_or_render`].
    ///
    /// # Errors
    /// When `render` fails.
    pub fn render_all(
        &self,
        resources: &[Arc<Resource>],
        view: View,
        render: impl Fn(&Resource) -> sonic_rs::Result<Vec<u8>>,
    ) -> sonic_rs::Result<Vec<Bytes>> {
        resources
            .iter()
            .map(|r| self.get_or_render(r, view, &render))
            .collect()
    }

    /// Drops dead entries; when that is not enough to get under half the budget, drops all.
    fn shrink(&self) {
        let inner = &*self.inner;
        inner.map.retain(|_, e| {
            let live = e.resource.strong_count() > 0;
            if !live {
                inner
                    .bytes
                    .fetch_sub(e.json.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
            }
            live
        });
        if inner.bytes.load(Ordering::Relaxed) > inner.budget / 2 {
            inner.map.retain(|_, e| {
                inner
                    .bytes
                    .fetch_sub(e.json.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
                false
            });
        }
    }

    /// Bytes accounted to the cache's entries.
    pub fn bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Entries held (live and dead).
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// `(hits, misses)` since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.inner.hits.load(Ordering::Relaxed),
            self.inner.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrolabe_model::Kind;

    fn pod(name: &str) -> Arc<Resource> {
        Arc::new(Resource::new(
            format!("uid-{name}"),
            Kind::Pod,
            "default",
            name,
        ))
    }

    fn name_json(r: &Resource) -> sonic_rs::Result<Vec<u8>> {
        sonic_rs::to_vec(r.name.as_str())
    }

    #[test]
    fn the_same_value_is_rendered_once_and_a_new_value_again() {
        let cache = FragmentCache::new(1 << 20);
        let a = pod("a");
        let first = cache.get_or_render(&a, View::Native, name_json).unwrap();
        let second = cache
            .get_or_render(&a, View::Native, |_| sonic_rs::to_vec("never rendered"))
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(&first[..], br#""a""#);
        assert_eq!(cache.stats(), (1, 1));
        // Another view of the same value is its own entry.
        let compat = cache
            .get_or_render(&a, View::CompatNode, |_| sonic_rs::to_vec(&7u32))
            .unwrap();
        assert_eq!(&compat[..], b"7");
        // An updated resource is a new Arc: rendered afresh.
        let b = pod("b");
        assert_eq!(
            &cache.get_or_render(&b, View::Native, name_json).unwrap()[..],
            br#""b""#
        );
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn the_budget_bounds_the_cache_dead_entries_first() {
        let per_entry = ENTRY_OVERHEAD + r#""k0""#.len();
        let cache = FragmentCache::new(per_entry * 4);
        let keep: Vec<Arc<Resource>> = (0..2).map(|i| pod(&format!("k{i}"))).collect();
        for r in &keep {
            cache.get_or_render(r, View::Native, name_json).unwrap();
        }
        // Dropped resources leave dead entries that the first sweep removes.
        for i in 0..3 {
            let gone = pod(&format!("g{i}"));
            cache.get_or_render(&gone, View::Native, name_json).unwrap();
        }
        assert!(cache.bytes() <= per_entry * 4, "{cache:?}");
        assert!(cache.len() <= 4);
        // Live entries beyond the budget: everything goes, and the accounting returns to zero.
        let live: Vec<Arc<Resource>> = (0..6).map(|i| pod(&format!("l{i}"))).collect();
        for r in &live {
            cache.get_or_render(r, View::Native, name_json).unwrap();
        }
        assert!(cache.bytes() <= per_entry * 4, "{cache:?}");
        let accounted: usize = cache.len() * per_entry;
        assert_eq!(cache.bytes(), accounted);
    }

    #[test]
    fn a_zero_budget_caches_nothing() {
        let cache = FragmentCache::new(0);
        let a = pod("a");
        cache.get_or_render(&a, View::Native, name_json).unwrap();
        cache.get_or_render(&a, View::Native, name_json).unwrap();
        assert!(cache.is_empty());
        assert_eq!(cache.stats(), (0, 2));
    }
}
