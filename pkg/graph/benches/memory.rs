//! Bytes per resource in the graph, measured with a counting global allocator (not estimated):
//! heap in use after building a graph from a generated cluster, minus heap in use before, divided
//! by the number of resources. Prints one line per cluster size.
#![allow(missing_docs, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_model::{Dependency, EdgeKind, Kind, KindInfo, OwnerRef, Reference, Resource, Uid};

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
        drop(shared);
        custom_objects(size, per);
    }
}

/// Bytes per custom object, next to the built-in figure above: objects of a CRD kind as the
/// metadata-only watch keeps them (identity, labels, an owner for half of them), and
/// Certificates with the two references the built-in rule pack makes.
fn custom_objects(size: usize, builtin_per: f64) {
    let widget = Kind::discovered(&KindInfo {
        kind: "Widget".into(),
        group: "example.com".into(),
        version: "v1alpha1".into(),
        plural: "widgets".into(),
        namespaced: true,
    });
    let certificate = Kind::discovered(&KindInfo {
        kind: "Certificate".into(),
        group: "cert-manager.io".into(),
        version: "v1".into(),
        plural: "certificates".into(),
        namespaced: true,
    });
    let writes = EdgeKind::declare("writes", Dependency::SourceNeedsTarget, "").unwrap();
    let issued = EdgeKind::declare("issued-by", Dependency::SourceNeedsTarget, "").unwrap();
    for (what, name, rules) in [
        ("metadata-only Widgets", "metadata", false),
        ("Certificates with rule references", "rules", true),
    ] {
        let before = IN_USE.load(Ordering::Relaxed);
        let mut g = Graph::new();
        for i in 0..size {
            let ns = format!("team-{:02}", i % 50);
            let name = format!("object-{i:06}");
            let kind = if rules {
                certificate.clone()
            } else {
                widget.clone()
            };
            let mut r = Resource::new(
                Uid::from(format!("{:08x}-7d3c-4b1e-9a2f-{i:012x}", i * 7919)),
                kind,
                ns.as_str(),
                name.as_str(),
            );
            r.labels = [
                ("app.kubernetes.io/name", format!("app-{}", i % 200)),
                ("app.kubernetes.io/managed-by", "operator".to_owned()),
            ]
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
            r.resource_version = format!("{}", 100_000 + i).into();
            r.created_at = 1_780_000_000 + i as i64;
            if rules {
                r.references.push(Reference::to_key(
                    writes,
                    Kind::Secret,
                    ns.as_str(),
                    format!("{name}-tls"),
                ));
                r.references.push(Reference::to_key(
                    issued,
                    Kind::other("cert-manager.io", "ClusterIssuer"),
                    "",
                    "letsencrypt",
                ));
            } else if i % 2 == 1 {
                let parent = i - 1;
                r.owners.push(OwnerRef {
                    kind: widget.clone(),
                    name: format!("object-{parent:06}").into(),
                    uid: Uid::from(format!(
                        "{:08x}-7d3c-4b1e-9a2f-{parent:012x}",
                        parent * 7919
                    )),
                    controller: true,
                });
                r.references.push(Reference::owned_by(
                    Uid::from(format!(
                        "{:08x}-7d3c-4b1e-9a2f-{parent:012x}",
                        parent * 7919
                    )),
                    widget.clone(),
                    format!("object-{parent:06}"),
                ));
            }
            r.normalize();
            g.upsert(r);
        }
        let after = IN_USE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / size as f64;
        println!("graph memory: {size} custom objects ({what}): {per:.0} bytes/object in total");
        // The figure line scripts/bench-table.py reads: against the built-in mix of this run.
        let ratio = per / builtin_per;
        println!(
            "graph/bytes_per_custom_object_{name} {per:.0} B {ratio:.2}x built-in mix: {builtin_per:.0} B (target <= 1.00x) {}",
            if ratio <= 1.0 { "MET" } else { "MISSED" }
        );
        assert!(g.node_count() == size);
    }
}
