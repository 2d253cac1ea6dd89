//! `ChangeFeed`: recent graph changes for `/api/v1/watch`. A ring of the last N events (for
//! clients resuming with `Last-Event-ID`) plus a broadcast channel for live delivery.
//!
//! A client resumes by **change sequence**: the id it sends is the sequence of the last change
//! it has every event of, and the feed answers with the events of the later changes. The
//! sequence of a change is the same on every replica (it is the log's), so a client resumes on
//! any replica, across a failover. The events of one change are published together
//! ([`ChangeFeed::publish`] takes whole changes) and the last of them is marked
//! ([`FeedEvent::closes_change`]), so a stream can say when a change is complete. Within the
//! process each event also has a position (+1 per event), which live streams use to take up
//! where they were after lagging and which bounds how far behind a subscriber may fall.
//!
//! The feed knows the sequence below which events may be missing (its floor): the sequence
//! before the first change it published, raised as the ring evicts events and when the graph
//! is replaced ([`ChangeFeed::jump`]). A client whose sequence is below it must re-read the
//! state.
//!
//! Each live subscriber has a [`Cursor`]: the position of the last event its stream took. A
//! stream that stops taking events (its client does not read, so the response cannot be
//! written) falls behind; when it has more than `max_pending` events not taken as further
//! events are published, [`ChangeFeed::publish`] cancels the cursor's token (which closes the
//! subscriber's connection), forgets it and counts it in [`ChangeFeed::dropped`]. The count is
//! taken before the new events are added, so one large batch never drops a subscriber that had
//! taken everything before it. Publishing never waits for a subscriber: the check is an atomic
//! load per subscriber.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use astrolabe_graph::GraphEvent;

/// Events kept for resuming clients, by default.
pub const DEFAULT_RING_CAPACITY: usize = 10_000;
/// Events buffered per live subscriber before it counts as lagging, by default.
pub const DEFAULT_LIVE_BUFFER: usize = 1_024;
/// Events a live subscriber may fall behind the newest before it is dropped, by default.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// A graph event with its place in the feed.
pub struct FeedEvent {
    /// Its position in this process's feed: 1 for the first event published, then +1 per event.
    pub pos: u64,
    /// True for the last event of its change (`event.seq`): a client that has it has the whole
    /// change, and may resume after that sequence.
    pub closes_change: bool,
    /// The event.
    pub event: GraphEvent,
}

impl FeedEvent {
    /// The id clients resume after: the change's sequence.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.event.seq
    }
}

impl std::fmt::Debug for FeedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedEvent")
            .field("pos", &self.pos)
            .field("seq", &self.event.seq)
            .field("closes_change", &self.closes_change)
            .finish_non_exhaustive()
    }
}

/// Events after a given sequence (or position), or the news that they are gone.
#[derive(Debug)]
pub enum Since {
    /// Every event after it, oldest first (possibly none).
    Events(Vec<Arc<FeedEvent>>),
    /// Some events after it are no longer retained: the client must re-read the state and
    /// continue from [`ChangeFeed::last_seq`].
    TooFarBehind,
    /// It is past the graph's sequence (the server restarted from an older state, or the
    /// sequence came from another cluster's server): the client must re-read the state and
    /// continue from [`ChangeFeed::last_seq`].
    Ahead,
}

/// A live subscription: the backlog after the requested id and a receiver for what follows.
#[derive(Debug)]
pub struct Subscription {
    /// Events after the requested id, retained in the ring.
    pub backlog: Since,
    /// The position of the last event published when subscribing: live events come after it.
    pub last_pos: u64,
    /// The sequence of that event's change (0 before the first): later events are of later
    /// changes.
    pub last_seq: u64,
    /// Events published after subscribing.
    pub live: broadcast::Receiver<Arc<FeedEvent>>,
    /// Where the subscriber is; the feed drops it when this falls too far behind.
    pub cursor: Arc<Cursor>,
}

/// A live subscriber's position, shared between its stream (which advances it) and the feed
/// (which drops the subscriber when it falls more than `max_pending` events behind).
#[derive(Debug)]
pub struct Cursor {
    taken: AtomicU64,
    close: CancellationToken,
}

impl Cursor {
    /// Records that the stream has taken every event up to position `pos`.
    pub fn advance(&self, pos: u64) {
        self.taken.fetch_max(pos, Ordering::Relaxed);
    }

    /// Cancelled when the feed drops this subscriber.
    pub fn close(&self) -> &CancellationToken {
        &self.close
    }
}

struct Ring {
    /// The position of the last event published.
    last_pos: u64,
    /// The sequence of the last change published.
    last_seq: u64,
    /// Events of changes at or below this sequence may be missing from the ring; `None` until
    /// the first publish or jump.
    floor: Option<u64>,
    events: VecDeque<Arc<FeedEvent>>,
}

struct Inner {
    ring: Mutex<Ring>,
    capacity: usize,
    max_pending: u64,
    cursors: Mutex<Vec<Weak<Cursor>>>,
    dropped: AtomicU64,
    tx: broadcast::Sender<Arc<FeedEvent>>,
    closed: CancellationToken,
}

/// The change feed. Cheap to clone; clones share it. The apply loop calls
/// [`ChangeFeed::publish`]; watchers [`ChangeFeed::subscribe`].
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("last_seq", &self.last_seq())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed::new(DEFAULT_RING_CAPACITY, DEFAULT_LIVE_BUFFER)
    }
}

impl ChangeFeed {
    /// A feed retaining the last `capacity` events, with `live_buffer` events of slack per live
    /// subscriber (both at least 1), dropping subscribers [`DEFAULT_MAX_PENDING`] events behind.
    pub fn new(capacity: usize, live_buffer: usize) -> Self {
        ChangeFeed::with_max_pending(capacity, live_buffer, DEFAULT_MAX_PENDING)
    }

    /// [`ChangeFeed::new`], dropping a live subscriber that has more than `max_pending` events
    /// (at least 1) not taken when further events are published.
    pub fn with_max_pending(capacity: usize, live_buffer: usize, max_pending: usize) -> Self {
        let (tx, _) = broadcast::channel(live_buffer.max(1));
        ChangeFeed {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    last_pos: 0,
                    last_seq: 0,
                    floor: None,
                    events: VecDeque::with_capacity(capacity.clamp(1, 65_536)),
                }),
                capacity: capacity.max(1),
                max_pending: u64::try_from(max_pending.max(1)).unwrap_or(u64::MAX),
                cursors: Mutex::new(Vec::new()),
                dropped: AtomicU64::new(0),
                tx,
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Appends events (in the order applied, whole changes: every event of a change in one
    /// call), gives them their positions and wakes live subscribers.
    pub fn publish(&self, events: Vec<GraphEvent>) {
        let Some(first) = events.first() else {
            return;
        };
        let mut ring = self.inner.ring.lock();
        if ring.floor.is_none() {
            ring.floor = Some(first.seq.saturating_sub(1));
        }
        self.drop_stalled(ring.last_pos);
        let mut events = events.into_iter().peekable();
        while let Some(event) = events.next() {
            ring.last_pos += 1;
            ring.last_seq = event.seq;
            let closes_change = events.peek().is_none_or(|next| next.seq != event.seq);
            let event = Arc::new(FeedEvent {
                pos: ring.last_pos,
                closes_change,
                event,
            });
            if ring.events.len() == self.inner.capacity
                && let Some(evicted) = ring.events.pop_front()
            {
                // Its change is no longer whole in the ring.
                ring.floor = ring.floor.max(Some(evicted.seq()));
            }
            ring.events.push_back(Arc::clone(&event));
            // No receiver is not an error: nobody is watching.
            let _ = self.inner.tx.send(event);
        }
    }

    /// The graph this feed publishes the changes of stands at `seq` (loaded from the log, or
    /// empty at 0): clients at `seq` resume, older ones re-read. No effect once the feed has a
    /// floor (after a publish or a jump).
    pub fn start_at(&self, seq: u64) {
        let mut ring = self.inner.ring.lock();
        if ring.floor.is_none() {
            ring.floor = Some(seq);
            ring.last_seq = ring.last_seq.max(seq);
        }
    }

    /// The graph was replaced by one at `seq` (a follower loaded the log again): the changes
    /// in between never reach the feed. Forgets the ring, and closes the live streams (their
    /// clients reconnect and are told to re-read the state unless they had it all).
    pub fn jump(&self, seq: u64) {
        let mut ring = self.inner.ring.lock();
        ring.events.clear();
        ring.floor = Some(seq);
        ring.last_seq = seq;
        for cursor in self.inner.cursors.lock().drain(..) {
            if let Some(cursor) = cursor.upgrade() {
                cursor.close.cancel();
            }
        }
    }

    /// Forgets ended subscribers and drops those more than `max_pending` events behind `newest`.
    fn drop_stalled(&self, newest: u64) {
        let mut dropped = 0;
        self.inner.cursors.lock().retain(|cursor| {
            let Some(cursor) = cursor.upgrade() else {
                return false;
            };
            let behind = newest.saturating_sub(cursor.taken.load(Ordering::Relaxed));
            if behind <= self.inner.max_pending {
                return true;
            }
            cursor.close.cancel();
            dropped += 1;
            false
        });
        if dropped > 0 {
            self.inner.dropped.fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(
                dropped,
                max_pending = self.inner.max_pending,
                "watch: closed streams whose clients stopped reading"
            );
        }
    }

    /// Live subscribers dropped so far for falling too far behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// The sequence of the last change published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.inner.ring.lock().last_seq
    }

    /// The position of the last event published (0 before the first).
    pub fn last_pos(&self) -> u64 {
        self.inner.ring.lock().last_pos
    }

    /// The events of the changes after `after`, for a graph at `graph_seq`.
    pub fn since(&self, after: u64, graph_seq: u64) -> Since {
        since_seq(&self.inner.ring.lock(), after, graph_seq)
    }

    /// The retained events after position `pos` (a live stream that lagged).
    pub fn since_pos(&self, pos: u64) -> Since {
        let ring = self.inner.ring.lock();
        let first = ring.events.front().map_or(ring.last_pos + 1, |e| e.pos);
        if pos + 1 < first {
            return Since::TooFarBehind;
        }
        let skip = usize::try_from(pos + 1 - first).unwrap_or(usize::MAX);
        Since::Events(ring.events.iter().skip(skip).cloned().collect())
    }

    /// The live events from now on, without a backlog or a place among the subscribers a slow
    /// reader is dropped from (for waiting on the next change).
    pub fn subscribe_live(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.inner.tx.subscribe()
    }

    /// Subscribes to live events, with the backlog of the changes after sequence `after` (none
    /// when `after` is `None`) for a graph at `graph_seq`. Taken under one lock: the backlog
    /// and the live events neither overlap nor leave a gap. `close` is cancelled if the
    /// subscriber falls too far behind (see the module doc).
    pub fn subscribe(
        &self,
        after: Option<u64>,
        graph_seq: u64,
        close: CancellationToken,
    ) -> Subscription {
        let ring = self.inner.ring.lock();
        let live = self.inner.tx.subscribe();
        let backlog = match after {
            Some(after) => since_seq(&ring, after, graph_seq),
            None => Since::Events(Vec::new()),
        };
        let cursor = Arc::new(Cursor {
            taken: AtomicU64::new(ring.last_pos),
            close,
        });
        self.inner.cursors.lock().push(Arc::downgrade(&cursor));
        Subscription {
            backlog,
            last_pos: ring.last_pos,
            last_seq: ring.last_seq,
            live,
            cursor,
        }
    }

    /// Ends every watch stream (on shutdown).
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// A token cancelled when the feed is closed.
    pub fn closed(&self) -> CancellationToken {
        self.inner.closed.clone()
    }
}

/// The events of the changes after `after` for a graph at `graph_seq`: every event with a
/// later sequence when the ring holds them all.
fn since_seq(ring: &Ring, after: u64, graph_seq: u64) -> Since {
    if after > graph_seq.max(ring.last_seq) {
        return Since::Ahead;
    }
    match ring.floor {
        // Nothing published since the graph was loaded: only a client at its sequence has all.
        None if after < graph_seq => return Since::TooFarBehind,
        Some(floor) if after < floor => return Since::TooFarBehind,
        _ => {}
    }
    let skip = ring.events.partition_point(|e| e.seq() <= after);
    Since::Events(ring.events.iter().skip(skip).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrolabe_graph::{GraphChange, GraphEvent};
    use astrolabe_model::{Kind, ObjectKey, Uid};

    fn removed(seq: u64) -> GraphEvent {
        GraphEvent {
            seq,
            ts_ms: 0,
            change: GraphChange::NodeRemoved {
                uid: Uid::from(format!("u{seq}")),
                key: ObjectKey::new(Kind::Pod, "ns", format!("p{seq}")),
            },
        }
    }

    fn seqs(s: Since) -> Option<Vec<u64>> {
        match s {
            Since::Events(evs) => Some(evs.iter().map(|e| e.seq()).collect()),
            Since::TooFarBehind | Since::Ahead => None,
        }
    }

    #[test]
    fn ring_keeps_the_last_changes_and_reports_gaps() {
        let feed = ChangeFeed::new(3, 8);
        feed.publish((1..=5).map(removed).collect());
        assert_eq!((feed.last_seq(), feed.last_pos()), (5, 5));
        assert_eq!(seqs(feed.since(2, 5)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(feed.since(4, 5)), Some(vec![5]));
        assert_eq!(seqs(feed.since(5, 5)), Some(vec![]));
        assert!(matches!(feed.since(1, 5), Since::TooFarBehind));
        assert!(matches!(feed.since(6, 5), Since::Ahead));
        // The graph went on with changes that made no event.
        assert_eq!(seqs(feed.since(6, 7)), Some(vec![]));
    }

    #[test]
    fn the_events_of_a_change_share_its_sequence_and_the_last_closes_it() {
        let feed = ChangeFeed::new(3, 8);
        feed.publish(vec![removed(7), removed(7), removed(8)]);
        let Since::Events(evs) = feed.since(6, 8) else {
            panic!("all retained");
        };
        let closes: Vec<bool> = evs.iter().map(|e| e.closes_change).collect();
        assert_eq!(closes, [false, true, true]);
        // Evicting the first event of change 7 leaves it incomplete: a client that has 6 must
        // re-read; one that has 7 goes on.
        feed.publish(vec![removed(9)]);
        assert!(matches!(feed.since(6, 9), Since::TooFarBehind));
        assert_eq!(seqs(feed.since(7, 9)), Some(vec![8, 9]));
    }

    #[test]
    fn before_the_first_publish_only_the_graphs_sequence_resumes() {
        let feed = ChangeFeed::new(3, 8);
        assert_eq!(seqs(feed.since(40, 40)), Some(vec![]));
        assert!(matches!(feed.since(39, 40), Since::TooFarBehind));
        assert!(matches!(feed.since(41, 40), Since::Ahead));
        // The first change published after loading at 40 is 41: 40 is the floor.
        feed.publish(vec![removed(41)]);
        assert_eq!(seqs(feed.since(40, 41)), Some(vec![41]));
        assert!(matches!(feed.since(39, 41), Since::TooFarBehind));
    }

    #[test]
    fn a_jump_closes_the_live_streams_and_raises_the_floor() {
        let feed = ChangeFeed::new(10, 8);
        feed.publish((1..=3).map(removed).collect());
        let sub = feed.subscribe(None, 3, CancellationToken::new());
        feed.jump(50);
        assert!(sub.cursor.close().is_cancelled());
        assert!(matches!(feed.since(3, 50), Since::TooFarBehind));
        assert_eq!(seqs(feed.since(50, 50)), Some(vec![]));
        feed.publish(vec![removed(51)]);
        assert_eq!(seqs(feed.since(50, 51)), Some(vec![51]));
    }

    #[tokio::test]
    async fn subscription_continues_the_backlog_without_overlap() {
        let feed = ChangeFeed::new(10, 8);
        feed.publish((1..=3).map(removed).collect());
        let mut sub = feed.subscribe(Some(1), 3, CancellationToken::new());
        assert_eq!(seqs(sub.backlog), Some(vec![2, 3]));
        assert_eq!((sub.last_pos, sub.last_seq), (3, 3));
        feed.publish(vec![removed(4)]);
        assert_eq!(sub.live.recv().await.map(|e| e.pos).ok(), Some(4));
    }

    #[test]
    fn a_lagging_stream_takes_up_from_its_position() {
        let feed = ChangeFeed::new(3, 8);
        feed.publish(vec![removed(1), removed(1), removed(2), removed(3)]);
        let pos: Vec<u64> = match feed.since_pos(2) {
            Since::Events(evs) => evs.iter().map(|e| e.pos).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(pos, [3, 4]);
        assert!(matches!(feed.since_pos(0), Since::TooFarBehind));
    }

    #[test]
    fn a_subscriber_too_far_behind_is_dropped_and_counted() {
        let feed = ChangeFeed::with_max_pending(100, 4, 3);
        let stalled = feed.subscribe(None, 0, CancellationToken::new());
        let reading = feed.subscribe(None, 0, CancellationToken::new());
        for seq in 1..=5 {
            feed.publish(vec![removed(seq)]);
            reading.cursor.advance(seq);
        }
        assert!(stalled.cursor.close().is_cancelled());
        assert!(!reading.cursor.close().is_cancelled());
        assert_eq!(feed.dropped(), 1);
        assert_eq!(feed.inner.cursors.lock().len(), 1);
    }

    #[test]
    fn a_batch_larger_than_the_bound_drops_only_a_subscriber_that_did_not_take_it() {
        let feed = ChangeFeed::with_max_pending(100, 4, 3);
        let stalled = feed.subscribe(None, 0, CancellationToken::new());
        let reading = feed.subscribe(None, 0, CancellationToken::new());
        feed.publish((1..=10).map(removed).collect());
        assert!(!reading.cursor.close().is_cancelled());
        assert!(!stalled.cursor.close().is_cancelled());
        reading.cursor.advance(10);
        feed.publish(vec![removed(11)]);
        assert!(!reading.cursor.close().is_cancelled());
        assert!(stalled.cursor.close().is_cancelled());
        assert_eq!(feed.dropped(), 1);
    }
}
