//! Commits of one server-side session take turns within a process.
//!
//! Concurrent requests of one visitor (a page firing several XHRs that each write) all load
//! the same record version. Without turns, their saves race: one wins, the others reload,
//! re-apply their keys and race again, and with enough of them some lose all three retries
//! (16 writers on one SQLite session lost 3 requests in 4; BENCHMARKS.md). Taking turns per
//! store key, a commit meets at most the versions saved before its turn began, so one
//! reload settles it. Turns belong to a store handle: the requests that share one (as a
//! layer's do) take turns; other processes, or other handles on the same store, still race
//! through its compare-and-set, as before.
//!
//! A turn also hands on the record its holder wrote: the next commit, whose load is older,
//! rebases onto it at once instead of failing a save and reloading (two round trips fewer
//! per contended write). The store's compare-and-set still decides: if another process
//! wrote meanwhile, the save conflicts and the commit reloads as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::stores::{Record, StoreKey};

/// A record of a store handle: the handle's address, and the record's key.
type Place = (usize, StoreKey);

/// What a turn's holder leaves to the next: the record as it wrote it, if it saved one.
type Slot = Arc<async_lock::Mutex<Option<Record>>>;

/// The records with a commit running or waiting, each with its lock. An entry lives only
/// while someone holds or waits for it.
fn table() -> &'static Mutex<HashMap<Place, Slot>> {
    static TABLE: OnceLock<Mutex<HashMap<Place, Slot>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// A commit's turn on a store key; the next one's begins when it is dropped. It exists
/// from before the wait, so that a wait given up (the future dropped) cleans up too.
pub(crate) struct Turn {
    place: Place,
    lock: Slot,
    guard: Option<async_lock::MutexGuardArc<Option<Record>>>,
}

impl Turn {
    /// The record the previous holder wrote under this key, if it saved one.
    pub(crate) fn last(&self) -> Option<&Record> {
        self.guard.as_ref()?.as_ref()
    }

    /// What this holder leaves to the next: the record it wrote, or `None` (it deleted or
    /// moved the record, or wrote nothing the next one could build on).
    pub(crate) fn leave(&mut self, record: Option<Record>) {
        if let Some(guard) = self.guard.as_mut() {
            **guard = record;
        }
    }
}

/// Waits for the turn on the record `key` of `store` (its
/// [`identity`](crate::store::SessionStore::identity)). Dropping the future while it waits
/// gives up its place.
pub(crate) async fn take(store: usize, key: StoreKey) -> Turn {
    let place = (store, key);
    let lock = Arc::clone(
        table()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(place)
            .or_default(),
    );
    let mut turn = Turn {
        place,
        lock,
        guard: None,
    };
    let guard = turn.lock.lock_arc().await;
    turn.guard = Some(guard);
    turn
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = table().lock().unwrap_or_else(PoisonError::into_inner);
        // Only the table's reference and this turn's left: nobody else holds or waits for
        // this key (a newcomer clones it under the same lock, so this cannot miss one).
        if Arc::strong_count(&self.lock) == 2 {
            table.remove(&self.place);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::stores::block_on;

    #[test]
    fn turns_on_one_key_are_exclusive_and_leave_nothing_behind() {
        let (store, other_store) = (1usize, 2usize);
        let key = StoreKey::from_bytes([7; 32]);
        let running = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let turn = block_on(take(store, key));
                        let before = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(before, 0, "two commits of one key at once");
                        std::thread::yield_now();
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        drop(turn);
                    }
                });
            }
        });
        let other = StoreKey::from_bytes([8; 32]);
        let first = block_on(take(store, key));
        // Neither another key's turn nor another store handle's waits for this one.
        drop(block_on(take(store, other)));
        drop(block_on(take(other_store, key)));
        drop(first);
        assert!(
            table()
                .lock()
                .unwrap()
                .keys()
                .all(|(_, k)| *k != key && *k != other)
        );
    }
}
