//! What the server part sees of a request's session, and the few changes it makes to it:
//! a narrow view instead of the session's internal state. The server part decides what to
//! store and where; the session layer keeps its data, identity and replays to itself.

use time::OffsetDateTime;

use crate::session::config::ConflictPolicy;
use crate::session::error::SessionError;
use crate::session::{LoadOutcome, Session};
use crate::wire::key::KeyId;
use crate::wire::map::LazyMap;
use crate::wire::stamp::{Persistence, Stamp};

/// The session as it stands: what loading found, its identity, its data.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) outcome: LoadOutcome,
    /// The id and deadlines; `None` for a session without one (new, or deleted).
    pub(crate) stamp: Option<Stamp>,
    /// The key that authenticated the cookie.
    pub(crate) key_id: Option<KeyId>,
    pub(crate) data: &'a LazyMap,
    /// `regenerate()` was called, or a new id was given.
    pub(crate) regenerated: bool,
    /// The session's own persistence choice.
    pub(crate) persistence: Option<Persistence>,
    /// The session came from the token parameter: it never moves into a cookie.
    pub(crate) from_token: bool,
    /// A cookie failed to load before the token did: the response removes it.
    pub(crate) cookie_rejected: bool,
}

/// A newer version of the data met at commit shares a key with this request's plain
/// writes, and the configuration says to fail rather than overwrite it.
#[derive(Debug)]
pub(crate) struct Overlap;

impl Session {
    /// The session, decoding its cookie on first use.
    pub(crate) fn view(&self) -> View<'_> {
        let state = self.state();
        View {
            outcome: state.outcome,
            stamp: state.stamp,
            key_id: state.key_id,
            data: &state.data,
            regenerated: state.regenerated,
            persistence: state.persistence,
            from_token: state.from_token,
            cookie_rejected: state.cookie_rejected,
        }
    }

    /// The session if anything used it; `None` for an untouched request.
    pub(crate) fn view_if_used(&self) -> Option<View<'_>> {
        self.state.get().is_some().then(|| self.view())
    }

    /// The stored data replaces what the cookie brought.
    pub(crate) fn adopt(&mut self, data: LazyMap) {
        self.state_mut().data = data;
    }

    /// Nothing is stored for this cookie: the session is new and empty (its cookie is
    /// removed).
    pub(crate) fn start_missing(&mut self) {
        let state = self.state_mut();
        state.data = LazyMap::default();
        state.outcome = LoadOutcome::Missing;
        state.stamp = None;
        state.persistence = None;
    }

    /// Re-applies this request's changes onto `newer`, the data another request saved
    /// meanwhile: values it set are written over it, its replayable changes run again on it.
    ///
    /// # Errors
    /// `Ok(Err(Overlap))` when the configuration fails on a shared key; a replayed change
    /// that fails.
    pub(crate) fn rebase(
        &mut self,
        mut newer: LazyMap,
    ) -> Result<Result<(), Overlap>, SessionError> {
        let fail_on_overlap = self.sessions.config().conflicts == ConflictPolicy::FailOnSameKey;
        let state = self.state_mut();
        let replays = &state.replays;
        if fail_on_overlap && state.data.overlaps(&newer, |key| replays.replays(key)) {
            return Ok(Err(Overlap));
        }
        state
            .data
            .replay_changes_onto(&mut newer, |key| replays.replays(key));
        replays.replay_onto(&mut newer)?;
        state.data = newer;
        Ok(Ok(()))
    }

    /// Gives a session without an id a new one, valid for the session's lifetime (the
    /// store's expiry keeps the idle timeout). Returns the session's stamp.
    pub(crate) fn ensure_id(&mut self, now: OffsetDateTime) -> Result<Stamp, SessionError> {
        if let Some(stamp) = self.state().stamp {
            return Ok(stamp);
        }
        let config = self.sessions.config();
        let stamp = Stamp::new(now, config.lifetime, config.lifetime)?;
        let state = self.state_mut();
        state.stamp = Some(stamp);
        state.regenerated = true;
        Ok(stamp)
    }

    /// Draws another id (the one drawn collided with a live record).
    pub(crate) fn redraw_id(&mut self) {
        let state = self.state_mut();
        state.stamp = state.stamp.map(|s| s.regenerated());
    }

    /// Where the store keeps this session when it keeps records under the raw session id (a
    /// foreign application's id cookie, see
    /// [`LegacyFormat::keys_by_id`](crate::legacy::LegacyFormat::keys_by_id)); `None`
    /// otherwise, or without an id.
    pub(crate) fn raw_key(&self) -> Option<[u8; 32]> {
        let format = self.id_format()?;
        let stamp = self.state().stamp?;
        Some(format.raw_key(stamp.id(), self.loaded_state()))
    }

    /// Whether the store keeps records under the raw session id.
    pub(crate) fn keys_by_id(&self) -> bool {
        self.id_format().is_some()
    }

    /// What the foreign format read with this session's cookie, unless the session has an
    /// id of its own since (new or regenerated).
    fn loaded_state(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        let state = self.state();
        state.legacy.as_deref().filter(|_| !state.regenerated)
    }

    /// The foreign id cookie format, if the configuration names one.
    fn id_format(&self) -> Option<&dyn crate::legacy::LegacyFormat> {
        let format = self.sessions.config().legacy.as_deref()?;
        format.keys_by_id().then_some(format)
    }

    /// The cookie (or token) value of a server-side session: its signed id with the
    /// session's lifetime; idleness is the record's expiry.
    pub(crate) fn id_value(&self, stamp: Stamp) -> Result<String, SessionError> {
        if let Some(format) = self.id_format() {
            let config = self.sessions.config();
            let empty = LazyMap::default();
            return Ok(format.encode(
                &empty,
                stamp.id(),
                self.loaded_state(),
                self.now,
                &config.place(),
                false,
            )?);
        }
        let stamp = Stamp {
            idle_deadline: stamp.absolute_deadline,
            ..stamp.with_persistence(self.state().persistence)
        };
        let name = &self.sessions.config().name;
        Ok(self.sessions.codec().encode_json(name, &stamp, |buf| {
            buf.extend_from_slice(b"{}");
            Ok(())
        })?)
    }

    /// [`Session::token`] of a server-side session: its signed id, allocated now for a new
    /// session (the record is created under it at commit).
    pub(crate) fn id_token(&mut self) -> Result<Option<String>, SessionError> {
        if self.state().data.is_empty() {
            return Ok(None);
        }
        let stamp = self.ensure_id(self.now)?;
        self.id_value(stamp).map(Some)
    }
}
