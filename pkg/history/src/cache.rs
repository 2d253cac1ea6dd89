//! `GraphCache`: materialised past graphs by sequence number, least recently used first out,
//! bounded by their approximate size.
//!
//! The entries are few (each is a whole graph, tens to hundreds of MiB), so a mutex around a
//! small map is enough: a lookup holds it for a hash probe and an `Arc` clone, an insertion for
//! a scan of the entries when it has to evict. Hits and misses are counted for metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use astrolabe_graph::Graph;
use parking_lot::Mutex;

/// Bytes in a MiB.
const MIB: usize = 1 << 20;

/// A bounded cache of materialised graphs, keyed by the sequence number they stand at. Share it
/// by reference (or in an `Arc`): every method takes `&self`.
pub struct GraphCache {
    capacity_bytes: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Entries {
    by_seq: HashMap<u64, Entry>,
    bytes: usize,
    /// Incremented on every use; an entry's `used` is the tick of its last use.
    tick: u64,
}

struct Entry {
    graph: Arc<Graph>,
    bytes: usize,
    used: u64,
}

/// The cache's counters and occupancy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their graph.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Graphs held.
    pub entries: usize,
    /// Their approximate size, in bytes.
    pub bytes: usize,
    /// The bound on that size, in bytes.
    pub capacity_bytes: usize,
}

impl GraphCache {
    /// A cache holding at most `capacity_mib` MiB of graphs (by the sizes given to
    /// [`GraphCache::insert`]); 0 caches nothing.
    pub fn new(capacity_mib: usize) -> Self {
        GraphCache {
            capacity_bytes: capacity_mib.saturating_mul(MIB),
            entries: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The graph at `seq`, when cached; counts a hit or a miss and marks the entry as used.
    pub fn get(&self, seq: u64) -> Option<Arc<Graph>> {
        let found = {
            let mut entries = self.entries.lock();
            entries.tick += 1;
            let tick = entries.tick;
            entries.by_seq.get_mut(&seq).map(|e| {
                e.used = tick;
                e.graph.clone()
            })
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `graph` as the graph at `seq`, of about `approx_bytes`, evicting the least
    /// recently used graphs until it fits. Returns whether it was cached: a graph larger than
    /// the whole capacity is not (and evicts nothing). Replaces any graph cached at `seq`.
    pub fn insert(&self, seq: u64, graph: Arc<Graph>, approx_bytes: usize) -> bool {
        if approx_bytes > self.capacity_bytes {
            return false;
        }
        let mut entries = self.entries.lock();
        if let Some(old) = entries.by_seq.remove(&seq) {
            entries.bytes -= old.bytes;
        }
        while entries.bytes + approx_bytes > self.capacity_bytes {
            let Some(oldest) = entries
                .by_seq
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(&s, _)| s)
            else {
                break;
            };
            if let Some(evicted) = entries.by_seq.remove(&oldest) {
                entries.bytes -= evicted.bytes;
            }
        }
        entries.tick += 1;
        let used = entries.tick;
        entries.by_seq.insert(
            seq,
            Entry {
                graph,
                bytes: approx_bytes,
                used,
            },
        );
        entries.bytes += approx_bytes;
        true
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> CacheStats {
        let entries = self.entries.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: entries.by_seq.len(),
            bytes: entries.bytes,
            capacity_bytes: self.capacity_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::thread;

    use astrolabe_model::{Kind, Resource};

    use super::*;

    fn graph(seq: u64) -> Arc<Graph> {
        let r = Resource::new(format!("u{seq}"), Kind::Pod, "ns", format!("p{seq}"));
        Arc::new(Graph::from_resources(seq, 1, [Arc::new(r)]))
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let cache = GraphCache::new(10);
        assert!(cache.get(5).is_none());
        assert!(cache.insert(5, graph(5), MIB));
        assert_eq!(cache.get(5).unwrap().seq(), 5);
        assert_eq!(cache.get(5).unwrap().seq(), 5);
        assert!(cache.get(6).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (2, 2));
        assert_eq!((stats.entries, stats.bytes), (1, MIB));
    }

    #[test]
    fn the_least_recently_used_graph_goes_first() {
        let cache = GraphCache::new(3);
        for seq in 1..=3 {
            assert!(cache.insert(seq, graph(seq), MIB));
        }
        cache.get(1);
        assert!(cache.insert(4, graph(4), MIB));
        assert!(cache.get(2).is_none(), "2 was the least recently used");
        for seq in [1, 3, 4] {
            assert!(cache.get(seq).is_some(), "{seq} kept");
        }
        // A large graph evicts as many as it needs.
        assert!(cache.insert(5, graph(5), 2 * MIB));
        assert_eq!(cache.stats().entries, 2);
        assert!(cache.stats().bytes <= 3 * MIB);
    }

    #[test]
    fn the_bound_holds_and_oversized_graphs_are_not_cached() {
        let cache = GraphCache::new(2);
        assert!(!cache.insert(1, graph(1), 3 * MIB));
        assert_eq!(cache.stats().entries, 0);
        assert!(cache.insert(1, graph(1), MIB));
        assert!(cache.insert(1, graph(1), 2 * MIB), "replaced, not added");
        assert_eq!(cache.stats().bytes, 2 * MIB);
        assert!(!GraphCache::new(0).insert(1, graph(1), 1));
    }

    #[test]
    fn concurrent_readers_and_writers_share_it() {
        let cache = GraphCache::new(4);
        thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..200u64 {
                        let seq = (t * 7 + i) % 6;
                        if cache.get(seq).is_none() {
                            cache.insert(seq, graph(seq), MIB);
                        }
                        assert!(cache.stats().bytes <= 4 * MIB);
                    }
                });
            }
        });
        let stats = cache.stats();
        assert_eq!(stats.hits + stats.misses, 800);
        assert!(stats.hits > 0 && stats.entries <= 4);
    }
}
