//! `ChangeFeed`: recent graph changes for `/api/v1/watch`. A ring of the last N events (for
//! clients resuming with `Last-Event-ID`) plus a broadcast channel for live delivery. Every event
//! gets a feed id, unique and increasing by one, so a client can resume exactly after the last
//! event it saw.
//!
//! Each live subscriber has a [`Cursor`]: the id of the last event its stream took. A stream
//! that stops taking events (its client does not read, so the response cannot be written) falls
//! behind; when it has more than `max_pending` events not taken as further events are published,
//! [`ChangeFeed::publish`] cancels the cursor's token (which closes the subscriber's connection),
//! forgets it and counts it in [`ChangeFeed::dropped`]. The count is taken before the new events
//! are added, so one large batch never drops a subscriber that had taken everything before it.
//! Publishing never waits for a subscriber: the check is an atomic load per subscriber.

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

/// A graph event with its feed id.
pub struct FeedEvent {
    /// The feed id: 1 for the first event published, then +1 per event.
    pub id: u64,
    /// The event.
    pub event: GraphEvent,
}

impl std::fmt::Debug for FeedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedEvent")
            .field("id", &self.id)
            .field("seq", &self.event.seq)
            .finish_non_exhaustive()
    }
}

/// Events after a given id, or the news that they are gone.
#[derive(Debug)]
pub enum Since {
    /// Every retained event after the id, oldest first (possibly none).
    Events(Vec<Arc<FeedEvent>>),
    /// Some events after the id were already evicted: the client must re-read the state and
    /// continue from [`ChangeFeed::last_id`].
    TooFarBehind,
    /// The id is past the newest event this feed published (the server restarted from an older
    /// state, or the id came from another server): the client must re-read the state and
    /// continue from [`ChangeFeed::last_id`].
    Ahead,
}

/// A live subscription: the backlog after the requested id and a receiver for what follows.
#[derive(Debug)]
pub struct Subscription {
    /// Events after the requested id, retained in the ring.
    pub backlog: Since,
    /// The id of the last event published when subscribing.
    pub last_id: u64,
    /// The graph sequence of that event (0 before the first): later events are of later changes.
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
    /// Records that the stream has taken every event up to `id`.
    pub fn advance(&self, id: u64) {
        self.taken.fetch_max(id, Ordering::Relaxed);
    }

    /// Cancelled when the feed drops this subscriber.
    pub fn close(&self) -> &CancellationToken {
        &self.close
    }
}

struct Ring {
    last_id: u64,
    /// The graph sequence of the last event published.
    last_seq: u64,
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
            .field("last_id", &self.last_id())
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
                    last_id: 0,
                    last_seq: 0,
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

    /// Appends events (in the order applied), assigns their ids and wakes live subscribers.
    pub fn publish(&self, events: Vec<GraphEvent>) {
        if events.is_empty() {
            return;
        }
        let mut ring = self.inner.ring.lock();
        self.drop_stalled(ring.last_id);
        for event in events {
            ring.last_id += 1;
            ring.last_seq = event.seq;
            let event = Arc::new(FeedEvent {
                id: ring.last_id,
                event,
            });
            if ring.events.len() == self.inner.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(Arc::clone(&event));
            // No receiver is not an error: nobody is watching.
            let _ = self.inner.tx.send(event);
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

    /// The id of the last event published (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.inner.ring.lock().last_id
    }

    /// Retained events after `after`.
    pub fn since(&self, after: u64) -> Since {
        since(&self.inner.ring.lock(), after)
    }

    /// The live events from now on, without a backlog or a place among the subscribers a slow
    /// reader is dropped from (for waiting on the next change).
    pub fn subscribe_live(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.inner.tx.subscribe()
    }

    /// Subscribes to live events, with the backlog after `after` (none when `after` is `None`).
    /// Taken under one lock: the backlog and the live events neither overlap nor leave a gap.
    /// `close` is cancelled if the subscriber falls too far behind (see the module doc).
    pub fn subscribe(&self, after: Option<u64>, close: CancellationToken) -> Subscription {
        let ring = self.inner.ring.lock();
        let live = self.inner.tx.subscribe();
        let backlog = match after {
            Some(after) => since(&ring, after),
            None => Since::Events(Vec::new()),
        };
        let cursor = Arc::new(Cursor {
            taken: AtomicU64::new(ring.last_id),
            close,
        });
        self.inner.cursors.lock().push(Arc::downgrade(&cursor));
        Subscription {
            backlog,
            last_id: ring.last_id,
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

fn since(ring: &Ring, after: u64) -> Since {
    let first = ring.events.front().map_or(ring.last_id + 1, |e| e.id);
    if after > ring.last_id {
        return Since::Ahead;
    }
    if after + 1 < first {
        return Since::TooFarBehind;
    }
    let skip = usize::try_from(after + 1 - first).unwrap_or(usize::MAX);
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

    fn ids(s: Since) -> Option<Vec<u64>> {
        match s {
            Since::Events(evs) => Some(evs.iter().map(|e| e.id).collect()),
            Since::TooFarBehind | Since::Ahead => None,
        }
    }

    #[test]
    fn ring_keeps_the_last_events_and_reports_gaps() {
        let feed = ChangeFeed::new(3, 8);
        assert_eq!(ids(feed.since(0)), Some(vec![]));
        feed.publish((1..=5).map(removed).collect());
        assert_eq!(feed.last_id(), 5);
        assert_eq!(ids(feed.since(2)), Some(vec![3, 4, 5]));
        assert_eq!(ids(feed.since(4)), Some(vec![5]));
        assert_eq!(ids(feed.since(5)), Some(vec![]));
        assert!(matches!(feed.since(1), Since::TooFarBehind));
        assert!(matches!(feed.since(6), Since::Ahead));
    }

    #[tokio::test]
    async fn subscription_continues_the_backlog_without_overlap() {
        let feed = ChangeFeed::new(10, 8);
        feed.publish((1..=3).map(removed).collect());
        let mut sub = feed.subscribe(Some(1), CancellationToken::new());
        assert_eq!(ids(sub.backlog), Some(vec![2, 3]));
        assert_eq!(sub.last_id, 3);
        feed.publish(vec![removed(4)]);
        assert_eq!(sub.live.recv().await.map(|e| e.id).ok(), Some(4));
    }

    #[test]
    fn a_subscriber_too_far_behind_is_dropped_and_counted() {
        let feed = ChangeFeed::with_max_pending(100, 4, 3);
        let stalled = feed.subscribe(None, CancellationToken::new());
        let reading = feed.subscribe(None, CancellationToken::new());
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
        let stalled = feed.subscribe(None, CancellationToken::new());
        let reading = feed.subscribe(None, CancellationToken::new());
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
