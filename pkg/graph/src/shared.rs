//! `SharedGraph`: the graph shared by one writer (the apply loop) and many readers (API
//! handlers, the snapshotter), built so that **a reader never waits for the writer**.
//!
//! It keeps two copies of the graph, each behind its own lock. Readers take the copy that
//! `current` names; the writer only ever write-locks the *other* copy:
//!
//! 1. [`SharedGraph::write`] takes the other copy's write lock (waiting, if it must, for readers
//!    that loaded it before the last flip to leave), replays into it the operations the current
//!    copy has and it has not (the previous write's; after [`SharedGraph::replace`], it clones
//!    the current copy instead), and hands it to the caller.
//! 2. The caller's operations go to that copy and are remembered for the next catch-up.
//! 3. Dropping the [`GraphWriter`] releases the lock and makes that copy `current`.
//!
//! A reader that loaded the old index just before a flip and finds that copy write-locked (the
//! writer came back for it) loads the index again: the new current copy is not write-locked, so
//! its `try_read` succeeds. Readers therefore wait for nothing but a few atomic operations,
//! however long the writer is descheduled while it holds its lock; only the writer waits for
//! readers, and only for those still reading the copy it left.
//!
//! This is the "left-right" scheme. The `left-right` crate implements it with a read handle per
//! thread, which does not suit request handlers spread over a runtime's workers; two parking_lot
//! locks and an index give the same guarantee behind the guards the handlers already use.
//!
//! Costs: every operation is applied twice (the catch-up applies without recording events), and
//! the graph's structure and indexes exist twice. Resources are shared between the copies through
//! their `Arc`s, so the resource records themselves are not duplicated.
//!
//! Both copies go through the same operations in the same order from the same start (a clone),
//! and [`Graph`] has no source of nondeterminism (fixed hashers, a stable-graph free list), so
//! they agree slot for slot: node and edge indexes mean the same thing in either, which
//! [`crate::snapshot_sliced`] relies on when consecutive slices come from different copies.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_model::{Change, ChangeOp, Resource, Uid, now_ms};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{EventSink, Graph};

/// Attempts at the current copy before a reader falls back to waiting on its lock. A reader
/// only fails when the writer flipped away from the copy it loaded *and* locked that copy again
/// in between its two steps, so one retry nearly always succeeds.
const READ_ATTEMPTS: usize = 64;

/// An operation applied to one copy that the other copy still has to apply.
enum Op {
    Apply(ChangeOp),
    AdvanceSeq(u64),
}

/// What the current copy has that the other has not.
#[derive(Default)]
struct Behind {
    /// The other copy is stale as a whole (after [`SharedGraph::replace`]): it must be made a
    /// clone of the current one before anything else.
    whole: bool,
    /// Operations to apply after that.
    ops: Vec<Op>,
}

struct Inner {
    copies: [RwLock<Graph>; 2],
    /// The index of the copy readers use.
    current: AtomicUsize,
    /// What the other copy lacks. Also serialises writers.
    behind: Mutex<Behind>,
}

/// The graph, shared. Cheap to clone (shared).
#[derive(Clone)]
pub struct SharedGraph {
    inner: Arc<Inner>,
}

impl Default for SharedGraph {
    fn default() -> Self {
        Self::from_graph(Graph::new())
    }
}

impl SharedGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps an existing graph (a recovered one, say).
    pub fn from_graph(graph: Graph) -> Self {
        SharedGraph {
            inner: Arc::new(Inner {
                copies: [RwLock::new(graph.clone()), RwLock::new(graph)],
                current: AtomicUsize::new(0),
                behind: Mutex::new(Behind::default()),
            }),
        }
    }

    /// A read guard on the current copy; never waits for the writer. Keep it short anyway
    /// (build responses after dropping it): the writer waits for readers of the copy it needs
    /// next.
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        let inner = &*self.inner;
        for _ in 0..READ_ATTEMPTS {
            let i = inner.current.load(Ordering::Acquire);
            if let Some(g) = inner.copies[i].try_read() {
                return g;
            }
            std::hint::spin_loop();
        }
        inner.copies[inner.current.load(Ordering::Acquire)].read()
    }

    /// The writer's guard: the copy readers are not using, caught up with the current one. Its
    /// changes become visible to readers, all at once, when it is dropped. Writers are
    /// serialised; do not hold a guard across an `await`.
    pub fn write(&self) -> GraphWriter<'_> {
        let inner = &*self.inner;
        let mut behind = inner.behind.lock();
        let other = 1 - inner.current.load(Ordering::Acquire);
        let mut target = inner.copies[other].write();
        if std::mem::take(&mut behind.whole) {
            // Readers only ever read-lock the current copy, so cloning it waits for no one.
            *target = inner.copies[1 - other].read().clone();
        }
        for op in behind.ops.drain(..) {
            match op {
                Op::Apply(op) => {
                    target.apply(op, 0, &mut ());
                }
                Op::AdvanceSeq(seq) => target.advance_seq(seq),
            }
        }
        GraphWriter {
            target,
            publish: Publish {
                current: &inner.current,
                to: other,
                changed: false,
            },
            behind,
        }
    }

    /// Replaces the whole graph (after recovery): readers see `graph` when this returns. The
    /// other copy is only marked stale here; the next [`SharedGraph::write`] (or
    /// [`SharedGraph::catch_up`]) makes it a clone of `graph`, so that serving does not wait
    /// for a second copy it does not need.
    pub fn replace(&self, graph: Graph) {
        let inner = &*self.inner;
        let mut behind = inner.behind.lock();
        behind.ops.clear();
        behind.whole = true;
        let current = inner.current.load(Ordering::Acquire);
        *inner.copies[1 - current].write() = graph;
        inner.current.store(1 - current, Ordering::Release);
        // The old graph is not needed any more (readers still on it are waited for).
        let old = std::mem::take(&mut *inner.copies[current].write());
        drop(behind);
        drop(old);
    }

    /// Brings the copy readers are not using up to date now, rather than in the next
    /// [`SharedGraph::write`]: after [`SharedGraph::replace`], say, so that the first write
    /// does not pay for a whole clone. Readers are not affected.
    pub fn catch_up(&self) {
        drop(self.write());
    }

    /// Whether both copies, once caught up, hold the same graph slot for slot. For tests.
    #[doc(hidden)]
    pub fn copies_agree(&self) -> bool {
        self.catch_up();
        let a = self.inner.copies[0].read();
        let b = self.inner.copies[1].read();
        a.layout() == b.layout()
    }
}

/// Flips `current` when dropped, after the write lock (declared before it) is released.
struct Publish<'a> {
    current: &'a AtomicUsize,
    to: usize,
    changed: bool,
}

impl Drop for Publish<'_> {
    fn drop(&mut self) {
        if self.changed {
            self.current.store(self.to, Ordering::Release);
        }
    }
}

/// The writer's access to the graph: reads through `Deref`, changes through its own methods so
/// that the other copy can apply them too. Fields drop in order: the copy's write lock, then the
/// flip that publishes it, then the writers' mutex.
pub struct GraphWriter<'a> {
    target: RwLockWriteGuard<'a, Graph>,
    publish: Publish<'a>,
    behind: MutexGuard<'a, Behind>,
}

impl Deref for GraphWriter<'_> {
    type Target = Graph;

    fn deref(&self) -> &Graph {
        &self.target
    }
}

impl GraphWriter<'_> {
    /// [`Graph::apply`], remembered for the other copy when it changed anything.
    pub fn apply(&mut self, op: ChangeOp, ts_ms: i64, sink: &mut impl EventSink) -> Option<Change> {
        let change = self.target.apply(op, ts_ms, sink)?;
        self.behind.ops.push(Op::Apply(change.op.clone()));
        self.publish.changed = true;
        Some(change)
    }

    /// Upserts a resource now, without event recording (see [`Graph::upsert`]).
    pub fn upsert(&mut self, resource: impl Into<Arc<Resource>>) -> Option<Change> {
        self.apply(ChangeOp::Upsert(resource.into()), now_ms(), &mut ())
    }

    /// Deletes a resource now, without event recording (see [`Graph::delete`]).
    pub fn delete(&mut self, uid: &Uid) -> Option<Change> {
        let op = self.target.delete_op(uid)?;
        self.apply(op, now_ms(), &mut ())
    }

    /// [`Graph::advance_seq`].
    pub fn advance_seq(&mut self, seq: u64) {
        if seq > self.target.seq() {
            self.target.advance_seq(seq);
            self.behind.ops.push(Op::AdvanceSeq(seq));
            self.publish.changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::time::Duration;

    use astrolabe_model::Kind;

    use super::*;

    fn config_map(i: usize, data: &str) -> Resource {
        let mut r = Resource::new(
            format!("u{i}").as_str(),
            Kind::ConfigMap,
            "ns",
            format!("c{i}"),
        );
        r.status.message = data.into();
        r
    }

    #[test]
    fn readers_see_a_write_when_its_guard_drops_and_not_before() {
        let shared = SharedGraph::new();
        let mut w = shared.write();
        w.upsert(config_map(1, "a"));
        assert_eq!(w.node_count(), 1, "the writer reads its own changes");
        assert_eq!(
            shared.read().node_count(),
            0,
            "readers still see the old copy"
        );
        drop(w);
        assert_eq!(shared.read().node_count(), 1);
        let seq = shared.read().seq();
        shared.write().delete(&"u1".into());
        let g = shared.read();
        assert_eq!((g.node_count(), g.seq()), (0, seq + 1));
    }

    #[test]
    fn a_write_that_changes_nothing_neither_flips_nor_counts() {
        let shared = SharedGraph::new();
        shared.write().upsert(config_map(1, "a"));
        let seq = shared.read().seq();
        let mut w = shared.write();
        assert!(w.upsert(config_map(1, "a")).is_none());
        assert!(w.delete(&"nope".into()).is_none());
        w.advance_seq(0);
        drop(w);
        assert_eq!(shared.read().seq(), seq);
        assert!(shared.copies_agree());
    }

    /// A generated cluster (owners, selectors, by-name and by-UID references, so edges and
    /// pending references too), written in uneven batches of inserts, label changes that move
    /// selector edges, deletes that free slots for reuse and re-inserts that take them, and seq
    /// jumps.
    #[test]
    fn the_copies_agree_slot_for_slot_after_any_mix_of_writes() {
        let cluster: Vec<Arc<Resource>> = astrolabe_generator::generate(11, 400)
            .into_iter()
            .map(Arc::new)
            .collect();
        let shared = SharedGraph::new();
        let mut at = 0usize;
        for round in 0..60usize {
            let mut w = shared.write();
            for i in 0..(round * 7) % 29 {
                let r = &cluster[(at + i * 13) % cluster.len()];
                match (round + i) % 5 {
                    0 => {
                        w.delete(&r.uid);
                    }
                    1 => {
                        let mut relabelled = (**r).clone();
                        relabelled.labels.insert("round", format!("{round}"));
                        if round % 2 == 0 {
                            relabelled.labels = Default::default();
                        }
                        w.upsert(relabelled);
                    }
                    _ => {
                        w.upsert(r.clone());
                    }
                }
            }
            at += 17;
            if round % 9 == 0 {
                let seq = w.seq();
                w.advance_seq(seq + 100);
            }
            drop(w);
            assert!(shared.copies_agree(), "round {round}");
        }
        let g = shared.read();
        assert!(g.node_count() > 100 && g.edge_count() > 50 && g.pending_count() > 0);
    }

    #[test]
    fn replace_swaps_both_copies() {
        let shared = SharedGraph::new();
        shared.write().upsert(config_map(1, "a"));
        let mut g = Graph::new();
        g.upsert(config_map(2, "b"));
        g.upsert(config_map(3, "b"));
        shared.replace(g);
        assert_eq!(shared.read().node_count(), 2);
        assert!(shared.copies_agree());
        shared.write().upsert(config_map(4, "c"));
        assert_eq!(shared.read().node_count(), 3);
        assert!(shared.copies_agree());
    }

    /// The copy left stale by `replace` is cloned by the first write, before that write's own
    /// operations, whether or not `catch_up` ran in between.
    #[test]
    fn the_first_write_after_replace_clones_the_replaced_graph() {
        for catch_up in [false, true] {
            let shared = SharedGraph::new();
            shared.write().upsert(config_map(1, "a"));
            shared.write().upsert(config_map(5, "e"));
            let mut g = Graph::new();
            g.upsert(config_map(2, "b"));
            shared.replace(g);
            if catch_up {
                shared.catch_up();
            }
            shared.write().upsert(config_map(3, "c"));
            shared.write().upsert(config_map(4, "d"));
            let g = shared.read();
            let uids: Vec<&str> = g.resources().map(|r| r.uid.as_str()).collect();
            assert_eq!(uids.len(), 3, "{uids:?}");
            assert!(!uids.contains(&"u1") && !uids.contains(&"u5"));
            drop(g);
            assert!(shared.copies_agree());
        }
    }

    /// Readers racing a writer across many flips: every read sees a whole batch or none of it
    /// (each batch inserts exactly `BATCH` new resources, so `node_count == seq` in every
    /// published state), and what one reader sees never goes back in time.
    #[test]
    fn racing_readers_see_whole_batches_in_order() {
        const BATCH: usize = 5;
        const BATCHES: usize = 2000;
        let shared = SharedGraph::new();
        let written = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (shared, written) = (&shared, &written);
                s.spawn(move || {
                    let mut last = 0u64;
                    while !written.load(Ordering::Acquire) {
                        let g = shared.read();
                        let (seq, nodes) = (g.seq(), g.node_count() as u64);
                        drop(g);
                        assert_eq!(nodes, seq, "a half-applied or half-caught-up copy");
                        assert_eq!(seq % BATCH as u64, 0, "a batch seen in part");
                        assert!(seq >= last, "went back from {last} to {seq}");
                        last = seq;
                    }
                });
            }
            for b in 0..BATCHES {
                let mut w = shared.write();
                for i in 0..BATCH {
                    w.upsert(config_map(b * BATCH + i, "x"));
                }
            }
            written.store(true, Ordering::Release);
        });
        assert_eq!(shared.read().seq(), (BATCH * BATCHES) as u64);
        assert!(shared.copies_agree());
    }

    /// The property the scheme exists for: while the writer holds its guard (as long as it
    /// likes: descheduled, say), readers still get the current copy at once. With a plain
    /// reader-writer lock the reads below would block until the writer gives up after 10 s and
    /// publishes, and then see 2 nodes.
    #[test]
    fn a_reader_never_waits_for_a_writer_holding_its_guard() {
        let shared = SharedGraph::new();
        shared.write().upsert(config_map(1, "a"));
        let holding = Barrier::new(2);
        let (done, finished) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let (shared, holding) = (&shared, &holding);
            s.spawn(move || {
                let mut w = shared.write();
                w.upsert(config_map(2, "b"));
                holding.wait();
                // Hold the guard until the reader is done (or gives up).
                let _ = finished.recv_timeout(Duration::from_secs(10));
            });
            holding.wait();
            for _ in 0..1000 {
                assert_eq!(shared.read().node_count(), 1);
            }
            done.send(()).ok();
        });
        assert_eq!(shared.read().node_count(), 2);
    }
}
