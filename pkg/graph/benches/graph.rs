//! Criterion benchmarks of the graph: apply throughput and query latency on a generated
//! 100k-resource cluster. Figures go to docs/benchmarks.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, Direction, NeighborQuery};
use astrolabe_model::{ChangeOp, Kind, Resource, Uid};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const SIZE: usize = 100_000;

fn cluster() -> Vec<Arc<Resource>> {
    astrolabe_generator::generate(42, SIZE)
        .into_iter()
        .map(Arc::new)
        .collect()
}

fn build(resources: &[Arc<Resource>]) -> Graph {
    let mut g = Graph::new();
    for r in resources {
        g.apply(ChangeOp::Upsert(r.clone()), 0, &mut ());
    }
    g
}

fn apply(c: &mut Criterion) {
    let resources = cluster();
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    group.throughput(Throughput::Elements(resources.len() as u64));
    group.bench_function("initial_load_100k", |b| {
        b.iter_batched(
            || resources.clone(),
            |rs| black_box(build(&rs)),
            BatchSize::LargeInput,
        )
    });
    // Steady state: status updates of existing Pods (the bulk of real churn), alternating
    // between two versions so every apply is a real change.
    let pods: Vec<Arc<Resource>> = resources
        .iter()
        .filter(|r| r.kind == Kind::Pod)
        .cloned()
        .collect();
    let updated: Vec<Arc<Resource>> = pods
        .iter()
        .map(|p| {
            let mut u = (**p).clone();
            u.resource_version = "updated".into();
            u.status.message = "Container not ready: app".into();
            Arc::new(u)
        })
        .collect();
    let mut g = build(&resources);
    group.throughput(Throughput::Elements(pods.len() as u64 * 2));
    group.bench_function("pod_updates", |b| {
        b.iter(|| {
            for r in updated.iter().chain(pods.iter()) {
                g.apply(ChangeOp::Upsert(r.clone()), 0, &mut ());
            }
        })
    });
    // Delete and re-create every Pod (rolling updates): edges go pending and come back.
    group.bench_function("pod_delete_recreate", |b| {
        b.iter(|| {
            for p in &pods {
                g.apply(
                    ChangeOp::Delete {
                        uid: p.uid.clone(),
                        key: p.key(),
                    },
                    0,
                    &mut (),
                );
            }
            for p in &pods {
                g.apply(ChangeOp::Upsert(p.clone()), 0, &mut ());
            }
        })
    });
    group.finish();
}

fn queries(c: &mut Criterion) {
    let resources = cluster();
    let g = build(&resources);
    let pods: Vec<Uid> = resources
        .iter()
        .filter(|r| r.kind == Kind::Pod)
        .map(|r| r.uid.clone())
        .collect();
    let deployments: Vec<Uid> = resources
        .iter()
        .filter(|r| r.kind == Kind::Deployment)
        .map(|r| r.uid.clone())
        .collect();
    let namespaces = query::namespaces(&g);
    let mut group = c.benchmark_group("query_100k");
    let q = NeighborQuery {
        depth: 2,
        direction: Direction::Both,
        edge_kinds: None,
        limit: 1000,
    };
    let mut i = 0;
    group.bench_function("neighbors_depth2_pod", |b| {
        b.iter(|| {
            i = (i + 7919) % pods.len();
            black_box(query::neighbors(&g, &pods[i], &q))
        })
    });
    group.bench_function("neighbors_depth2_deployment", |b| {
        b.iter(|| {
            i = (i + 7919) % deployments.len();
            black_box(query::neighbors(&g, &deployments[i], &q))
        })
    });
    let team: Vec<&str> = namespaces
        .iter()
        .map(|s| s.as_str())
        .filter(|n| n.starts_with("team-"))
        .collect();
    let sizes: Vec<usize> = team
        .iter()
        .map(|ns| query::compat_graph(&g, None, Some(ns)).nodes.len())
        .collect();
    eprintln!(
        "namespace subgraph sizes: min {} max {}",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap()
    );
    group.bench_function("namespace_subgraph", |b| {
        b.iter(|| {
            i = (i + 13) % team.len();
            black_box(query::compat_graph(&g, None, Some(team[i])))
        })
    });
    group.bench_function("impact_deployment", |b| {
        b.iter(|| {
            i = (i + 7919) % deployments.len();
            black_box(query::impact(&g, &deployments[i], 10_000))
        })
    });
    group.bench_function("snapshot_arcs", |b| b.iter(|| black_box(g.snapshot())));
    group.finish();
}

criterion_group!(benches, apply, queries);
criterion_main!(benches);
