//! The sweeper drains in bounded batches, reports failures, backs off, and never stops.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use cookie_session::store::conformance::block_on;
use cookie_session::store::{SessionStore, StoreError, StoreKey, Sweeper};
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

/// A memory store whose sweeps can be made to fail, and which counts them.
type Flaky = common::Hooked<Sweeps>;

#[derive(Default)]
struct Sweeps {
    down: AtomicBool,
    count: AtomicUsize,
}

impl common::Hook for Sweeps {
    fn before(&self, op: &'static str) -> Result<(), StoreError> {
        if op != "sweep" {
            return Ok(());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        Ok(())
    }
}

fn fill(store: &Flaky, expired: u32, live: u32) {
    let now = t0();
    for n in 0..expired + live {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        let ttl = if n < expired { 60 } else { 86_400 };
        block_on(store.create(
            &StoreKey::from_bytes(key),
            b"x",
            now + time::Duration::seconds(ttl),
            now,
        ))
        .unwrap();
    }
}

#[test]
fn sweep_once_drains_in_batches_until_one_comes_back_short() {
    let store = Flaky::default();
    fill(&store, 2500, 10);
    let sweeper = Sweeper::new().with_batch_size(1000);
    let later = t0() + time::Duration::minutes(5);
    assert_eq!(block_on(sweeper.sweep_once(&store, later)).unwrap(), 2500);
    assert_eq!(
        store.hook.count.load(Ordering::Relaxed),
        3,
        "1000 + 1000 + 500 (short: done)"
    );
    assert_eq!(store.inner.len(), 10, "live records stay");
}

#[test]
fn failures_are_reported_backed_off_and_recovered_from() {
    let store = Flaky::default();
    fill(&store, 5, 0);
    store.hook.down.store(true, Ordering::Relaxed);
    let reported = Arc::new(Mutex::new(Vec::new()));
    let seen = reported.clone();
    let sweeper = Sweeper::new()
        .with_interval(Duration::from_secs(60))
        .with_jitter_percent(0)
        .with_max_backoff(Duration::from_secs(600))
        .on_error(move |e| seen.lock().unwrap().push(e.to_string()));
    let stats = sweeper.stats();
    let later = t0() + time::Duration::minutes(5);
    let pauses: Vec<u64> = (0..5)
        .map(|_| block_on(sweeper.step(&store, later)).as_secs())
        .collect();
    assert_eq!(pauses, [120, 240, 480, 600, 600], "doubling, capped");
    assert_eq!(stats.consecutive_failures(), 5);
    assert_eq!(stats.last_success(), None);
    assert_eq!(reported.lock().unwrap().len(), 5);
    assert!(reported.lock().unwrap()[0].contains("unavailable"));

    store.hook.down.store(false, Ordering::Relaxed);
    assert_eq!(
        block_on(sweeper.step(&store, later)).as_secs(),
        60,
        "back to the interval"
    );
    assert_eq!(stats.consecutive_failures(), 0);
    assert_eq!(stats.last_success(), Some(later));
    assert_eq!(stats.removed(), 5);
}

#[test]
fn jitter_spreads_the_interval_within_its_bounds() {
    let store = Flaky::default();
    let sweeper = Sweeper::new()
        .with_interval(Duration::from_secs(100))
        .with_jitter_percent(20);
    let pauses: Vec<Duration> = (0..200)
        .map(|_| block_on(sweeper.step(&store, t0())))
        .collect();
    assert!(
        pauses
            .iter()
            .all(|p| (80.0..=120.0).contains(&p.as_secs_f64())),
        "{pauses:?}"
    );
    let distinct: std::collections::BTreeSet<_> = pauses.iter().map(Duration::as_millis).collect();
    assert!(
        distinct.len() > 50,
        "not spread: {} distinct pauses",
        distinct.len()
    );
}

/// `run` keeps going through failures: driven here with a fake sleep that counts rounds
/// and parks forever after the tenth.
#[test]
fn run_never_stops_on_errors() {
    let store = Arc::new(Flaky::default());
    fill(&store, 3, 0);
    store.hook.down.store(true, Ordering::Relaxed);
    let sleeps = Arc::new(AtomicUsize::new(0));
    let counter = sleeps.clone();
    let flip = store.clone();
    let sweeper = Sweeper::new().with_jitter_percent(0);
    let stats = sweeper.stats();
    let sleep = move |_pause: Duration| {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 6 {
            flip.hook.down.store(false, Ordering::Relaxed); // the store comes back
        }
        async move {
            if n >= 10 {
                std::future::pending::<()>().await;
            }
        }
    };
    let clock = || t0() + time::Duration::hours(1);
    let mut run = std::pin::pin!(sweeper.run(store.clone(), clock, sleep));
    let poll = run.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(poll.is_pending(), "run never returns");
    assert_eq!(
        sleeps.load(Ordering::Relaxed),
        10,
        "ten rounds, through six failures"
    );
    assert_eq!(stats.consecutive_failures(), 0);
    assert_eq!(stats.removed(), 3);
    assert!(stats.last_success().is_some());
}
