//! The time limit of the networked stores (PostgreSQL, Redis, memcached), with one timer
//! for many operations.
//!
//! `tokio::time::timeout` registers a timer per call, and registering a timer that is due
//! before the runtime's next wake-up wakes the runtime's driver through a system call (an
//! `eventfd` write, then its read): measured on the Redis store, one such pair per
//! operation, the largest single cost a request paid in this crate. Operations that start
//! within a tenth of the timeout of each other share one timer here instead, so a busy
//! store registers about ten timers per timeout, whatever its request rate.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Shared;
use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

use super::StoreError;

/// A timer shared by every operation whose limit falls within its window.
type Timer = Shared<Pin<Box<Sleep>>>;

/// The operations' time limit: each ends within `timeout`, and no sooner than nine tenths
/// of it.
pub(crate) struct Deadlines {
    timeout: Duration,
    /// The newest shared timer: when it fires, and the runtime whose driver runs it (a
    /// timer is tied to its runtime; another runtime gets its own).
    current: Mutex<Option<(Instant, Id, Timer)>>,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Deadlines {
    pub(crate) const fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            current: Mutex::new(None),
        }
    }

    /// The limit each operation has.
    #[cfg_attr(
        not(any(feature = "redis", feature = "memcached")),
        allow(dead_code, reason = "their messages name it")
    )]
    pub(crate) const fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `op`'s output, or `None` if the time limit, counted from this call, passed first.
    pub(crate) fn bound<F: Future>(&self, op: F) -> impl Future<Output = Option<F::Output>> {
        let mut timer = self.timer();
        async move {
            let mut op = pin!(op);
            poll_fn(|cx| {
                if let Poll::Ready(output) = op.as_mut().poll(cx) {
                    return Poll::Ready(Some(output));
                }
                timer.poll_unpin(cx).map(|()| None)
            })
            .await
        }
    }

    /// `op`'s result, or [`StoreError::Unavailable`] saying that `server` did not answer,
    /// once the time limit passed.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(dead_code, reason = "PostgreSQL's stores")
    )]
    pub(crate) async fn within<T>(
        &self,
        server: &str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bound(op).await.unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                format!("{server} did not answer within {:?}", self.timeout).into(),
            ))
        })
    }

    /// A timer that fires between nine tenths of the timeout and the timeout from now.
    fn timer(&self) -> Timer {
        let now = Instant::now();
        // A timeout past what an `Instant` holds (`Duration::MAX` for "never") is a timer
        // thirty years out, as tokio's own `timeout` does.
        let latest = now
            .checked_add(self.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400));
        let runtime = Handle::current().id();
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, id, timer)) = &*current
            && *id == runtime
            && *at <= latest
            && at
                .checked_add(self.timeout / 10)
                .is_none_or(|end| end > latest)
        {
            return timer.clone();
        }
        let timer = Box::pin(tokio::time::sleep_until(latest)).shared();
        *current = Some((latest, runtime, timer.clone()));
        timer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_operation_that_finishes_in_time_is_answered() {
        let deadlines = Deadlines::new(Duration::from_secs(5));
        let answer = deadlines
            .bound(async {
                tokio::time::sleep(Duration::from_millis(4_400)).await;
                7
            })
            .await;
        assert_eq!(answer, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn each_operation_ends_within_its_limit_and_not_much_sooner() {
        let deadlines = Deadlines::new(Duration::from_secs(5));
        let start = Instant::now();
        // Operations started 0, 0.3 and 0.6 s apart: the first two share a timer, the
        // third is past its window and gets its own.
        let never = || std::future::pending::<()>();
        let first = deadlines.bound(never());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = deadlines.bound(never());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let third = deadlines.bound(never());
        let ended = |f| async move {
            assert_eq!(f.await, None);
            Instant::now() - start
        };
        let (a, b, c) = tokio::join!(ended(first), ended(second), ended(third));
        assert_eq!(a, Duration::from_secs(5));
        assert_eq!(
            b,
            Duration::from_secs(5),
            "shared with the first: 4.7 s after it began"
        );
        assert_eq!(c, Duration::from_millis(5_600), "its own timer");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_beyond_any_instant_never_fires_and_never_panics() {
        let deadlines = Deadlines::new(Duration::MAX);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(10 * 365 * 86_400)).await;
            3
        };
        assert_eq!(deadlines.bound(slow).await, Some(3));
        assert_eq!(
            deadlines.bound(async { 4 }).await,
            Some(4),
            "the shared timer"
        );
    }

    #[test]
    fn each_runtime_gets_its_own_timer() {
        let deadlines = Deadlines::new(Duration::from_secs(5));
        for _ in 0..2 {
            // The first runtime's timer dies with it; the second must not poll it.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            let answer = runtime.block_on(async { deadlines.bound(async { 1 }).await });
            assert_eq!(answer, Some(1));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a runtime");
            let answer =
                runtime.block_on(async { deadlines.bound(std::future::pending::<()>()).await });
            assert_eq!(answer, None);
        }
    }
}
