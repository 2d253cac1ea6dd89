//! [`ActiveRules`]: the rule set in force, shared by whoever evaluates rules (the watchers) and
//! whoever reports them (the API), replaced whole when the rule file is reloaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::set::RuleSet;

/// The rule set in force and its generation (1 for the first, one more per reload). Cloning
/// shares it.
#[derive(Clone, Debug)]
pub struct ActiveRules {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    set: RwLock<Arc<RuleSet>>,
    generation: AtomicU64,
    /// Tells subscribers the generation of each rule set put in force.
    changes: tokio::sync::watch::Sender<u64>,
    refused: AtomicU64,
    last_refusal: RwLock<Option<String>>,
}

impl ActiveRules {
    /// `set` in force, generation 1.
    pub fn new(set: RuleSet) -> ActiveRules {
        ActiveRules {
            inner: Arc::new(Inner {
                set: RwLock::new(Arc::new(set)),
                generation: AtomicU64::new(1),
                changes: tokio::sync::watch::Sender::new(1),
                refused: AtomicU64::new(0),
                last_refusal: RwLock::new(None),
            }),
        }
    }

    /// No rules at all.
    pub fn empty() -> ActiveRules {
        ActiveRules::new(RuleSet::default())
    }

    /// The rule set in force.
    pub fn get(&self) -> Arc<RuleSet> {
        self.inner
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The generation of the rule set in force.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Puts `set` in force (after [`RuleSet::declare_edges`]); returns the new generation.
    pub fn replace(&self, set: RuleSet) -> u64 {
        *self
            .inner
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
        *self
            .inner
            .last_refusal
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.changes.send_replace(generation);
        generation
    }

    /// A receiver told the generation of every rule set put in force from now on.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Records a refused reload (the rules in force stay).
    pub fn refused(&self, reason: String) {
        self.inner.refused.fetch_add(1, Ordering::AcqRel);
        *self
            .inner
            .last_refusal
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    /// Reloads refused so far, and the reason of the last one when no reload succeeded since.
    pub fn refusals(&self) -> (u64, Option<String>) {
        (
            self.inner.refused.load(Ordering::Acquire),
            self.inner
                .last_refusal
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}
