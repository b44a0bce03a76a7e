//! A concurrent history checker for server-side sessions (feature `store-testing`): the
//! concurrency promise, checked end to end on a store.
//!
//! `tasks` requests of one visitor run at once through two application instances (two
//! store handles on one backend, as two processes would have). Request `i` appends `i` to
//! the list `"appended"` and adds one to the counter `"count"`, each with a replaying
//! change ([`SessionHandle::update_or_default`]); it is *acknowledged* if its commit
//! succeeds and *rejected* if the commit gives up (a conflict on every retry: the tower
//! layer's `503` with `Retry-After`). Afterwards the record must hold every acknowledged
//! `i` exactly once and no rejected one, and the counter must equal the number of
//! acknowledged requests: no lost update, no duplicate, no trace of a rejected request.
//!
//! The requests interleave by construction (each yields between loading and committing),
//! so conflicts happen on any store, even one that answers at once. Run it in the runtime
//! the stores need; it spawns nothing.
//!
//! ```
//! # #[cfg(feature = "store-testing")] {
//! use std::sync::Arc;
//! use cookie_session::server::history::{Checker, Change};
//! use cookie_session::store::{MemoryStore, block_on};
//!
//! let store = Arc::new(MemoryStore::new());
//! let seen = block_on(Checker::new(24).run(store.clone(), store))?;
//! assert_eq!(seen.acknowledged + seen.rejected, 24);
//! # }
//! # Ok::<(), cookie_session::server::history::Violation>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use time::OffsetDateTime;

use crate::server::handle::SessionHandle;
use crate::session::error::SessionError;
use crate::session::{CookieAction, Sessions};
use crate::stores::{DynStore, StoreError};
use crate::wire::key::{Key, KeyRing};
use crate::{Mode, SessionConfig};

/// How each request makes its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// [`SessionHandle::update_or_default`]: the change replays on a conflict. What the
    /// promise covers.
    Replaying,
    /// A read, then [`SessionHandle::insert`] of the value computed from it: what a
    /// commit that replays values instead of changes would store. Lost updates are
    /// expected; this is for showing that the checker finds them.
    ReadThenInsert,
}

/// Runs the history; see the [module](self).
#[derive(Debug, Clone)]
pub struct Checker {
    tasks: u64,
    change: Change,
}

/// What a history that kept the promise looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct History {
    /// Requests whose commit succeeded.
    pub acknowledged: usize,
    /// Requests whose commit gave up on conflicts (and must have left no trace).
    pub rejected: usize,
}

/// How a history broke the promise.
#[derive(Debug)]
#[non_exhaustive]
pub enum Violation {
    /// Acknowledged appends missing from the final record.
    Lost(Vec<u64>),
    /// Appends present more than once.
    Duplicated(Vec<u64>),
    /// Appends of rejected requests present in the final record.
    RejectedLeftTrace(Vec<u64>),
    /// The counter differs from the number of acknowledged increments.
    Counter {
        /// The final counter.
        counted: u64,
        /// Acknowledged requests.
        acknowledged: usize,
    },
    /// The session could not be created or read back.
    NoSession(String),
    /// A request failed otherwise than by a conflict (the store failed).
    Failed(SessionError),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost(i) => write!(f, "acknowledged appends were lost: {i:?}"),
            Self::Duplicated(i) => write!(f, "appends are present more than once: {i:?}"),
            Self::RejectedLeftTrace(i) => write!(f, "rejected requests left appends: {i:?}"),
            Self::Counter {
                counted,
                acknowledged,
            } => write!(
                f,
                "the counter is {counted} after {acknowledged} acknowledged increments"
            ),
            Self::NoSession(why) => write!(f, "the session could not be set up: {why}"),
            Self::Failed(e) => write!(f, "a request failed: {e}"),
        }
    }
}

impl std::error::Error for Violation {}

impl Checker {
    /// `tasks` concurrent requests (at least 2) with replaying changes.
    #[must_use]
    pub fn new(tasks: u64) -> Self {
        Self {
            tasks: tasks.max(2),
            change: Change::Replaying,
        }
    }

    /// How each request makes its change (default [`Change::Replaying`]).
    #[must_use]
    pub const fn with_change(mut self, change: Change) -> Self {
        self.change = change;
        self
    }

    /// Runs the history through instances on `first` and `second` (two handles on one
    /// backend; the same handle twice also works).
    ///
    /// # Errors
    /// The first [`Violation`] found.
    pub async fn run(
        &self,
        first: Arc<dyn DynStore>,
        second: Arc<dyn DynStore>,
    ) -> Result<History, Violation> {
        let key = Key::from_bytes(&HISTORY_KEY).map_err(|e| Violation::NoSession(e.to_string()))?;
        let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(key))
            .with_name("history")
            .build()
            .map_err(|e| Violation::NoSession(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        let cookie = start(&sessions, &first, now).await?;

        let stores = [first, second];
        let requests: Vec<_> = (0..self.tasks)
            .map(|i| {
                let store = Arc::clone(&stores[usize::from(i % 2 == 1)]);
                request(&sessions, store, &cookie, i, self.change, now)
            })
            .collect();
        let outcomes = join_all(requests).await;

        let mut acknowledged = Vec::new();
        let mut rejected = Vec::new();
        for (i, outcome) in (0..self.tasks).zip(outcomes) {
            match outcome {
                Ok(()) => acknowledged.push(i),
                Err(SessionError::Stored(StoreError::Conflict)) => rejected.push(i),
                Err(other) => return Err(Violation::Failed(other)),
            }
        }
        let (appended, counted) = read_back(&sessions, &stores[0], &cookie, now).await?;
        check(&acknowledged, &rejected, &appended, counted)?;
        Ok(History {
            acknowledged: acknowledged.len(),
            rejected: rejected.len(),
        })
    }
}

/// The checker's own key (its sessions are its own; the bytes only need to pass the key
/// checks).
const HISTORY_KEY: [u8; 32] = *b"cookie-session history checker!?";

/// Creates the visitor's session; its cookie.
async fn start(
    sessions: &Sessions,
    store: &Arc<dyn DynStore>,
    now: OffsetDateTime,
) -> Result<String, Violation> {
    let handle = SessionHandle::server_side(
        sessions.load_server_side(std::iter::empty(), now),
        Arc::clone(store),
    );
    handle.load().await.map_err(Violation::Failed)?;
    handle.insert("count", &0_u64).map_err(Violation::Failed)?;
    handle
        .insert("appended", &Vec::<u64>::new())
        .map_err(Violation::Failed)?;
    match handle.commit(now).await.map_err(Violation::Failed)?.cookie {
        CookieAction::Set(header) => Ok(header.split(';').next().unwrap_or_default().to_owned()),
        other => Err(Violation::NoSession(format!(
            "no cookie was set: {other:?}"
        ))),
    }
}

/// Request `i`: load, let the others load too, change, commit.
async fn request(
    sessions: &Sessions,
    store: Arc<dyn DynStore>,
    cookie: &str,
    i: u64,
    change: Change,
    now: OffsetDateTime,
) -> Result<(), SessionError> {
    // Arrivals spread over a few rounds, so that loads and commits interleave.
    yield_now(usize::try_from(i % 4).unwrap_or(0)).await;
    let handle =
        SessionHandle::server_side(sessions.load_server_side([cookie.as_bytes()], now), store);
    handle.load().await?;
    yield_now(1).await;
    match change {
        Change::Replaying => {
            handle.update_or_default("appended", move |list: &mut Vec<u64>| list.push(i))?;
            handle.update_or_default("count", |n: &mut u64| *n += 1)?;
        }
        Change::ReadThenInsert => {
            let mut list = handle.get::<Vec<u64>>("appended")?.unwrap_or_default();
            list.push(i);
            handle.insert("appended", &list)?;
            let count = handle.get::<u64>("count")?.unwrap_or_default();
            handle.insert("count", &(count + 1))?;
        }
    }
    handle.commit(now).await.map(drop)
}

async fn read_back(
    sessions: &Sessions,
    store: &Arc<dyn DynStore>,
    cookie: &str,
    now: OffsetDateTime,
) -> Result<(Vec<u64>, u64), Violation> {
    let handle = SessionHandle::server_side(
        sessions.load_server_side([cookie.as_bytes()], now),
        Arc::clone(store),
    );
    handle.load().await.map_err(Violation::Failed)?;
    let appended = handle
        .get::<Vec<u64>>("appended")
        .map_err(Violation::Failed)?
        .ok_or_else(|| Violation::NoSession("the session is gone".into()))?;
    let counted = handle
        .get::<u64>("count")
        .map_err(Violation::Failed)?
        .unwrap_or_default();
    Ok((appended, counted))
}

/// The promise, on what was read back.
fn check(
    acknowledged: &[u64],
    rejected: &[u64],
    appended: &[u64],
    counted: u64,
) -> Result<(), Violation> {
    let times = |i: &u64| appended.iter().filter(|a| *a == i).count();
    let lost: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|i| times(i) == 0)
        .collect();
    if !lost.is_empty() {
        return Err(Violation::Lost(lost));
    }
    let mut duplicated: Vec<u64> = appended.iter().copied().filter(|i| times(i) > 1).collect();
    duplicated.dedup();
    if !duplicated.is_empty() {
        return Err(Violation::Duplicated(duplicated));
    }
    let traces: Vec<u64> = rejected.iter().copied().filter(|i| times(i) > 0).collect();
    if !traces.is_empty() {
        return Err(Violation::RejectedLeftTrace(traces));
    }
    if usize::try_from(counted).ok() != Some(acknowledged.len()) {
        return Err(Violation::Counter {
            counted,
            acknowledged: acknowledged.len(),
        });
    }
    Ok(())
}

/// Returns `Pending` `rounds` times (waking itself), so that the other requests run.
fn yield_now(rounds: usize) -> impl Future<Output = ()> {
    let mut left = rounds;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Polls every future until all are done (no runtime of its own: the stores' own wake-ups
/// drive it), and gives their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut waiting = false;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
