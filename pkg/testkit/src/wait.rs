//! Bounded waits: poll a condition until it holds, or run a future with a time limit.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// First pause between two polls; doubled after each poll up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(10);
/// Longest pause between two polls.
const MAX_POLL: Duration = Duration::from_millis(200);

/// Polls `check` until it returns `Ok`, and returns that value.
///
/// `check` returns `Err(state)` while the condition does not hold, `state` being what it observed
/// (shown if the wait fails). Polls start 10 ms apart and slow down to 200 ms.
///
/// # Panics
/// When `bound` passes first (a single `check` that does not finish counts too), with a message
/// naming `what` and the last observed state.
pub async fn eventually<T, S, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    S: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let deadline = Instant::now() + bound;
    let mut pause = FIRST_POLL;
    let mut last: Option<S> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(state)) => last = Some(state),
            Err(_) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            match last {
                Some(state) => {
                    panic!("timed out after {bound:?} waiting for {what}; last observed: {state}")
                }
                None => panic!("timed out after {bound:?} waiting for {what}; no check finished"),
            }
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Polls the cheap in-memory condition `cond` until it holds ([`eventually`] for a plain `bool`).
///
/// # Panics
/// When `bound` passes first, naming `what`.
pub async fn until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    eventually(what, bound, || {
        std::future::ready(if cond() {
            Ok(())
        } else {
            Err("the condition is still false")
        })
    })
    .await;
}

/// Runs `fut`, failing with an [`io::ErrorKind::TimedOut`] error naming `what` after `limit`.
///
/// # Errors
/// When `fut` does not finish within `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> io::Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {limit:?} waiting for {what}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn eventually_returns_the_first_ok() {
        let polls = AtomicU32::new(0);
        let got = eventually("three polls", Duration::from_secs(5), || async {
            let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= 3 { Ok(n) } else { Err(n) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the answer; last observed: still 41")]
    async fn eventually_names_what_and_the_last_state() {
        eventually::<(), _, _, _>("the answer", Duration::from_millis(50), || async {
            Err("still 41")
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a hung check; no check finished")]
    async fn eventually_bounds_a_check_that_never_finishes() {
        eventually::<(), &str, _, _>("a hung check", Duration::from_millis(50), || {
            std::future::pending()
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never; last observed: the condition is still false")]
    async fn until_fails_on_a_false_condition() {
        until("never", Duration::from_millis(50), || false).await;
    }

    #[tokio::test]
    async fn within_times_out_with_what() {
        let err = within(
            Duration::from_millis(10),
            "nothing",
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("waiting for nothing"), "{err}");
    }
}
