//! Changes that replay: the read-modify-write updates of a request
//! ([`Session::update`](crate::Session::update),
//! [`update_or_default`](crate::Session::update_or_default)), kept so that a server-side
//! commit that meets a newer record (another request saved first) can run them again on
//! that record, instead of writing back the value this request computed from the older one.
//!
//! A key keeps its replayable changes only while nothing else wrote it: a plain `insert`,
//! `remove`, `get_mut` or `clear` fixes its value, and then that value is what the commit
//! writes over the newer record (last writer wins for that key, as documented).

use std::sync::Arc;

use crate::session::error::SessionError;
use crate::wire::map::LazyMap;

/// One change: re-runs the typed update on a map.
pub(crate) type Change = Arc<dyn Fn(&mut LazyMap) -> Result<(), SessionError> + Send + Sync>;

/// The replayable changes of one request, in the order they were made.
#[derive(Clone, Default)]
pub(crate) struct Replays {
    changes: Vec<(Box<str>, Change)>,
    /// Keys also written by a plain operation since the session was loaded.
    plain: Vec<Box<str>>,
    /// `clear()` (or `delete()`) was called: no key replays.
    cleared: bool,
}

impl Replays {
    /// Records `change` of `key`, made just now.
    pub(crate) fn record(&mut self, key: &str, change: Change) {
        self.changes.push((key.into(), change));
    }

    /// `key` was written by a plain operation: its value is fixed.
    pub(crate) fn overwritten(&mut self, key: &str) {
        if !self.plain.iter().any(|k| &**k == key) {
            self.plain.push(key.into());
        }
    }

    /// Every key was removed.
    pub(crate) fn clear(&mut self) {
        self.cleared = true;
    }

    /// Whether every write of `key` since loading was a replayable change.
    pub(crate) fn replays(&self, key: &str) -> bool {
        !self.cleared
            && !self.plain.iter().any(|k| &**k == key)
            && self.changes.iter().any(|(k, _)| &**k == key)
    }

    /// Runs the replayable changes again, in their order, on `data` (a newer record).
    pub(crate) fn replay_onto(&self, data: &mut LazyMap) -> Result<(), SessionError> {
        for (key, change) in &self.changes {
            if self.replays(key) {
                change(data)?;
            }
        }
        Ok(())
    }
}
