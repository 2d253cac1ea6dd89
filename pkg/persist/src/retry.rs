//! Retry delays for every retry loop of the persistence path (and the server's recovery):
//! exponential with jitter, from [`backon`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Endless retry delays between `min` and `max`: the base delay starts at `min` and doubles up to
/// half of `max`; each delay adds a random jitter of up to its base again, so that writers that
/// failed together do not retry in lockstep. No delay is shorter than `min` or longer than `max`.
///
/// It is an iterator of delays, usable as a [`backon::Backoff`] with `backon::Retryable::retry`,
/// or directly by a loop that sleeps between attempts.
pub fn backoff(min: Duration, max: Duration) -> impl backon::Backoff {
    let max = max.max(min);
    ExponentialBuilder::new()
        .with_min_delay(min)
        .with_max_delay((max / 2).max(min))
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |delay| delay.clamp(min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_from_min_stay_within_bounds_and_are_jittered() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(5));
        let delays: Vec<Duration> = backoff(min, max).take(200).collect();
        assert_eq!(delays.len(), 200, "never runs out");
        assert!(delays.iter().all(|d| (min..=max).contains(d)), "{delays:?}");
        assert!(
            delays[0] < 2 * min,
            "the first delay is about min: {delays:?}"
        );
        let late = &delays[100..];
        assert!(
            late.iter().all(|d| *d >= max / 2),
            "delays reach the cap: {late:?}"
        );
        let distinct: std::collections::BTreeSet<_> = late.iter().collect();
        assert!(distinct.len() > 10, "jittered, not constant: {late:?}");
    }
}
