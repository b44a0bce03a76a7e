//! The sweeper of expired sessions: see [`Sweeper`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt as _;
use time::OffsetDateTime;

use crate::stores::{SessionStore, StoreError};

/// What the sweeper calls on every failed round (besides the `tracing` event).
type OnError = Arc<dyn Fn(&StoreError) + Send + Sync>;

/// Housekeeping that never dies: removes expired records in bounded batches,
/// and keeps going whatever the store does.
///
/// Beaker and TurboGears never delete expired sessions (their users are told to write cron
/// jobs), and tower-sessions' deletion loop ends at its first error. This one reports an
/// error (a `tracing` event and an optional callback), backs off, and tries again; it
/// drains in batches until one comes back short, so a backlog is cleared without holding
/// the store for long; and it exposes when it last succeeded, how many records it removed
/// and how many rounds in a row failed, for a health check.
///
/// It needs no runtime: [`Sweeper::run`] takes the clock and a `sleep` function (with
/// tokio, `tokio::time::sleep`), and [`Sweeper::step`] is one round, for tests and for
/// callers with their own scheduling. [`Sweeper::sweep_once`] drains once, for cron.
///
/// ```
/// use std::time::Duration;
/// use cookie_session::store::{MemoryStore, Sweeper};
///
/// let sweeper = Sweeper::new()
///     .with_interval(Duration::from_secs(300))
///     .with_batch_size(500)
///     .on_error(|error| eprintln!("session sweep failed: {error}"));
/// let stats = sweeper.stats(); // keep for a health check
/// // With tokio:
/// // tokio::spawn(sweeper.run(store, time::OffsetDateTime::now_utc, tokio::time::sleep));
/// assert_eq!(stats.consecutive_failures(), 0);
/// # let _ = (sweeper, MemoryStore::new());
/// ```
#[derive(Clone)]
pub struct Sweeper {
    interval: Duration,
    batch: usize,
    jitter_percent: u8,
    max_backoff: Duration,
    on_error: Option<OnError>,
    observer: Option<crate::events::Observer>,
    stats: SweeperStats,
}

impl Default for Sweeper {
    fn default() -> Self {
        Self::new()
    }
}

impl Sweeper {
    /// Every 5 minutes (±10%), 1000 records a batch, backing off up to an hour on errors.
    #[must_use]
    pub fn new() -> Self {
        Self {
            interval: Duration::from_secs(300),
            batch: 1000,
            jitter_percent: 10,
            max_backoff: Duration::from_secs(3600),
            on_error: None,
            observer: None,
            stats: SweeperStats::default(),
        }
    }

    /// The pause between rounds. Default 5 minutes.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The most records one `sweep` call removes. Default 1000; at least 1.
    #[must_use]
    pub fn with_batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// A random share of the interval, up to this percentage either way, so that many
    /// instances started together do not sweep together. Default 10; at most 100.
    #[must_use]
    pub fn with_jitter_percent(mut self, percent: u8) -> Self {
        self.jitter_percent = percent.min(100);
        self
    }

    /// The longest pause after failures (the pause doubles from the interval with each
    /// consecutive failure, up to this). Default one hour.
    #[must_use]
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Called with the error of every failed round, after the `tracing` event.
    #[must_use]
    pub fn on_error(mut self, report: impl Fn(&StoreError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(report));
        self
    }

    /// Reports each batch that removed records as [`SessionEvent::Expired`](crate::events::SessionEvent::Expired).
    #[must_use]
    pub fn with_observer(mut self, observer: impl crate::events::SessionObserver) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The counters of this sweeper (shared with its clones, and live while it runs).
    #[must_use]
    pub fn stats(&self) -> SweeperStats {
        self.stats.clone()
    }

    /// Removes every record expired at `now`, a batch at a time, until a batch comes back
    /// short; returns how many it removed. For a cron job, or a CLI.
    ///
    /// # Errors
    /// The store's error, as soon as a batch fails (what earlier batches removed stays
    /// removed).
    pub async fn sweep_once<S: SessionStore>(
        &self,
        store: &S,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        loop {
            let n = store.sweep(now, self.batch).await?;
            if n > 0 {
                crate::events::notify(self.observer.as_ref(), || {
                    crate::events::SessionEvent::Expired { count: n }
                });
            }
            removed += n as u64;
            if n < self.batch {
                return Ok(removed);
            }
        }
    }

    /// One round: drains what has expired at `now`, records the outcome, and returns how
    /// long to wait before the next round (the interval with jitter, or the backoff after
    /// a failure).
    pub async fn step<S: SessionStore>(&self, store: &S, now: OffsetDateTime) -> Duration {
        match self.sweep_once(store, now).await {
            Ok(removed) => {
                self.stats.succeeded(now, removed);
                self.jittered(self.interval)
            }
            Err(error) => {
                let failures = self.stats.failed();
                crate::diagnostics::sweep_failed(&error, failures);
                if let Some(report) = &self.on_error {
                    report(&error);
                }
                let doubled = 2u32.saturating_pow(failures.min(31));
                self.interval
                    .checked_mul(doubled)
                    .unwrap_or(self.max_backoff)
                    .min(self.max_backoff)
                    .max(self.interval.min(self.max_backoff))
            }
        }
    }

    /// Sweeps forever: a round, then `sleep` for what it says. Spawn it on your runtime
    /// and abort the task to stop it; a failing store never ends it.
    pub async fn run<S, F>(
        self,
        store: S,
        clock: impl Fn() -> OffsetDateTime,
        sleep: impl Fn(Duration) -> F,
    ) where
        S: SessionStore,
        F: Future<Output = ()>,
    {
        loop {
            let pause = self.step(&store, clock()).await;
            sleep(pause).await;
        }
    }

    fn jittered(&self, interval: Duration) -> Duration {
        if self.jitter_percent == 0 {
            return interval;
        }
        let spread = f64::from(self.jitter_percent) / 100.0;
        let factor = rand::rng().random_range(1.0 - spread..=1.0 + spread);
        interval.mul_f64(factor)
    }
}

impl fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sweeper")
            .field("interval", &self.interval)
            .field("batch", &self.batch)
            .field("jitter_percent", &self.jitter_percent)
            .field("max_backoff", &self.max_backoff)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a [`Sweeper`] has done, readable while it runs (cheap to clone; clones share).
#[derive(Clone, Default)]
pub struct SweeperStats(Arc<Counters>);

#[derive(Default)]
struct Counters {
    /// UNIX seconds of the last successful round; `i64::MIN`: none yet.
    last_success: AtomicI64,
    removed: AtomicU64,
    consecutive_failures: AtomicU32,
    initialised: std::sync::atomic::AtomicBool,
}

impl SweeperStats {
    fn succeeded(&self, now: OffsetDateTime, removed: u64) {
        self.0
            .last_success
            .store(now.unix_timestamp(), Ordering::Relaxed);
        self.0.initialised.store(true, Ordering::Release);
        self.0.removed.fetch_add(removed, Ordering::Relaxed);
        self.0.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// Counts a failure; returns how many in a row.
    fn failed(&self) -> u32 {
        self.0
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// When the last round succeeded, if one has.
    #[must_use]
    pub fn last_success(&self) -> Option<OffsetDateTime> {
        if !self.0.initialised.load(Ordering::Acquire) {
            return None;
        }
        OffsetDateTime::from_unix_timestamp(self.0.last_success.load(Ordering::Relaxed)).ok()
    }

    /// How many records all rounds removed.
    #[must_use]
    pub fn removed(&self) -> u64 {
        self.0.removed.load(Ordering::Relaxed)
    }

    /// How many rounds in a row failed (0 after a success).
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        self.0.consecutive_failures.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for SweeperStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SweeperStats")
            .field("last_success", &self.last_success())
            .field("removed", &self.removed())
            .field("consecutive_failures", &self.consecutive_failures())
            .finish()
    }
}
