//! Bytes per resource in the graph, measured with a counting global allocator (not estimated):
//! heap in use after building a graph from a generated cluster, minus heap in use before, divided
//! by the number of resources. Prints one line per cluster size.
#![allow(missing_docs, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_graph::{Graph, SharedGraph};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator and only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(new_size, Ordering::Relaxed);
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    // `cargo test --benches` runs this in test mode; keep that quick.
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[10_000, 100_000]
    } else {
        &[2_000]
    };
    for &size in sizes {
        let before = IN_USE.load(Ordering::Relaxed);
        let mut g = Graph::new();
        let resources = astrolabe_generator::generate(42, size);
        let n = resources.len();
        for r in resources {
            g.upsert(r);
        }
        let after = IN_USE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / n as f64;
        let resource_only: usize = g.resources().map(|r| r.approx_bytes() + 16).sum();
        println!(
            "graph memory: {n} resources, {} edges: {:.0} bytes/resource in total ({:.0} of it the resource records, {:.0} indexes and edges)",
            g.edge_count(),
            per,
            resource_only as f64 / n as f64,
            per - resource_only as f64 / n as f64,
        );
        assert!(g.node_count() == n);
        // The server shares the graph as `SharedGraph`: a second copy of the structure and
        // indexes for readers, sharing the resource records through their `Arc`s.
        let shared = SharedGraph::from_graph(g);
        let with_copy = IN_USE.load(Ordering::Relaxed);
        println!(
            "graph memory: {n} resources as a SharedGraph (two copies for readers that never wait): {:.0} bytes/resource in total, {:.0} of it the second copy",
            (with_copy - before) as f64 / n as f64,
            (with_copy - after) as f64 / n as f64,
        );
        assert!(shared.read().node_count() == n);
    }
}
