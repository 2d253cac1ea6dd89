//! Fault injection: per-kind failure statuses and a response delay, checked by every API request.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::SimError;
use crate::kinds::KindInfo;

/// Injected faults, shared by all requests.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Failing kinds by group and plural (two groups may serve one plural).
    failing: Mutex<HashMap<(&'static str, &'static str), u16>>,
    delay: Mutex<Duration>,
}

impl Faults {
    /// Makes every request for `info` fail with `code` until cleared.
    pub(crate) fn fail(&self, info: &'static KindInfo, code: u16) {
        self.failing.lock().insert((info.group, info.plural), code);
    }

    /// Clears the failure of `info` (or of every kind when None).
    pub(crate) fn clear(&self, info: Option<&'static KindInfo>) {
        let mut failing = self.failing.lock();
        match info {
            Some(i) => {
                failing.remove(&(i.group, i.plural));
            }
            None => failing.clear(),
        }
    }

    /// The injected error for `info`, if any.
    pub(crate) fn check(&self, info: &KindInfo) -> Result<(), SimError> {
        match self.failing.lock().get(&(info.group, info.plural)) {
            Some(code) => Err(SimError::Injected(*code, info.plural.to_owned())),
            None => Ok(()),
        }
    }

    /// Sets the delay added before answering each API request.
    pub(crate) fn set_delay(&self, delay: Duration) {
        *self.delay.lock() = delay;
    }

    /// The current response delay.
    pub(crate) fn delay(&self) -> Duration {
        *self.delay.lock()
    }
}
