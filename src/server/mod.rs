//! Server-side sessions: the cookie carries only a signed session id, and the data lives in
//! a [`SessionStore`](crate::store::SessionStore).
//!
//! The session layer is the same as for cookie sessions (the map, change tracking, the
//! touch policy); only where the data lives differs. The core never awaits: an adapter
//!
//! 1. loads the session with [`Sessions::load_server_side`], which verifies the cookie
//!    (a forged or garbage id is rejected here, before any store I/O);
//! 2. asks [`Session::store_key`] where the record is, and if there is one (and only when
//!    a handler wants the session), reads it and [`Session::attach`]es it;
//! 3. after the handler, calls [`commit`], which writes what the request changed (one
//!    store operation in the usual case) and returns the response's [`Decision`].
//!
//! | request | store operations | `Set-Cookie` |
//! |---|---|---|
//! | never touches the session | none | none |
//! | reads, renewal not due | `load` | none |
//! | reads, renewal due (touch policy) | `load` + `touch` | none |
//! | changes data | `load` + `save` (compare-and-set) | none |
//! | new session written | `create` | set |
//! | `regenerate()` | `rename` (+ `save` if the data changed) | set |
//! | `delete()` | `delete` | removal |
//! | cookie under an older key | `rename` to the current key's store key | re-issued |
//!
//! The cookie's idle deadline is its absolute one: idleness is the record's expiry, which
//! `touch` and `save` move, so renewals need no new cookie.

use time::OffsetDateTime;

pub(crate) mod backing;
pub mod events;
pub(crate) mod handle;
#[cfg(feature = "store-testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "store-testing")))]
pub mod history;
pub(crate) mod sweeper;
pub(crate) mod turns;

use crate::events::{DeleteReason, SessionEvent, notify};
use crate::server::backing::{Stored, backing, backing_mut, keyed, record};
use crate::session::error::SessionError;
use crate::session::{CookieAction, Decision, LoadOutcome, Session, Sessions};
use crate::stores::{DynStore, Record, StoreError, StoreKey, Version};
use crate::wire::error::EncodeError;
use crate::wire::map::LazyMap;
use crate::wire::stamp::Stamp;

/// How often [`commit`] reloads and re-applies after a concurrent save (and how often it
/// tries a new id after a duplicate). Eight: with 16 writers of one session through two
/// instances, three retries left 12 % of PostgreSQL's requests with a 503 and eight 0.4 %
/// (`benches/replay.rs`); each retry is a reload and a save on a store that answers.
const MAX_RETRIES: usize = 8;

impl Sessions {
    /// Prepares the server-side session of a request from its `Cookie` header values (as
    /// bytes). The cookie is verified on first use; its data, if any, is ignored: the data
    /// is the store's (see the [module](crate::server) documentation).
    pub fn load_server_side<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h [u8]>,
        now: OffsetDateTime,
    ) -> Session {
        let mut session = self.load_bytes(cookie_headers, now);
        session.server_side = true;
        session.server = Some(Box::new(backing::Backing::default()));
        session
    }
}

impl Session {
    /// Where this request's record is: `None` when no authentic, unexpired, unrevoked cookie
    /// came (then nothing needs to be read). Verifies the cookie on first call.
    pub fn store_key(&self) -> Option<StoreKey> {
        let view = self.view();
        let stamp = view.stamp?;
        if self.keys_by_id() {
            return self.raw_key().map(StoreKey::from_bytes);
        }
        let key = self.sessions.codec().key_ring().find(view.key_id?)?.0;
        Some(keyed(self, key, stamp.id()))
    }

    /// Gives the session the record read under [`store_key`](Self::store_key) (`None`: the
    /// store has no live record, e.g. after a logout elsewhere: the session starts empty and
    /// its cookie is removed).
    ///
    /// # Errors
    /// [`SessionError::Stored`] if the record is not a JSON object nested within the limit
    /// (the session is then new and empty, and the record is left as it is).
    pub fn attach(&mut self, record: Option<Record>) -> Result<(), SessionError> {
        let key = self.store_key();
        // A record that is not this session's data (damaged, written by something else, or
        // a sealed record moved from another session) is treated as absent: a new session.
        let data = record
            .as_ref()
            .and_then(|r| open_record(self, &r.data).ok());
        match (key, record, data) {
            (Some(key), Some(record), Some((data, unsealed))) => {
                self.adopt(data);
                backing_mut(self).record = Some(Stored {
                    key,
                    version: record.version,
                    expires: record.expires,
                    unsealed,
                });
            }
            (Some(_), _, _) => {
                // Starts empty: a cookie that decoded as a cookie session (same key and
                // name, e.g. before the app moved to server-side) brings no data, or it
                // would be stored under a new id and log its bearer back in.
                self.start_missing();
            }
            (None, _, _) => {}
        }
        Ok(())
    }
}

impl Session {
    /// Links this session to `user` (the application's stable user id, 1 to 256 bytes)
    /// when the response is committed, so that [`log_out_user`] can end it, and the
    /// store's [`sessions_of`](crate::store::SessionStore::sessions_of) can list it. Call it
    /// at login, after [`regenerate`](Self::regenerate). The session must hold data (an
    /// empty session is not stored); the store must keep a user index.
    ///
    /// # Errors
    /// [`SessionError::NotServerSide`] for a cookie session;
    /// [`SessionError::Stored`] with [`StoreError::InvalidUser`] for an empty or overlong
    /// key. A store without a user index fails the commit with
    /// [`StoreError::Unsupported`].
    pub fn attach_user(&mut self, user: &str) -> Result<(), SessionError> {
        if !self.server_side {
            return Err(SessionError::NotServerSide);
        }
        crate::stores::check_user(user).map_err(SessionError::Stored)?;
        backing_mut(self).user = Some(user.to_owned());
        Ok(())
    }
}

/// "Log out everywhere": deletes every stored session of `user` except the one under `keep`
/// (the current request's [`Session::store_key`], to stay logged in here), reports each to
/// the configuration's
/// observer ([`DeleteReason::LogoutEverywhere`]), and returns how many live sessions ended.
/// Their cookies find nothing on their next request.
///
/// # Errors
/// [`SessionError::Stored`]: the store failed, or keeps no user index
/// ([`StoreError::Unsupported`]).
pub async fn log_out_user<S: DynStore + ?Sized>(
    sessions: &Sessions,
    store: &S,
    user: &str,
    keep: Option<&StoreKey>,
    now: OffsetDateTime,
) -> Result<usize, SessionError> {
    crate::stores::check_user(user).map_err(SessionError::Stored)?;
    let ended = store
        .delete_sessions_of_boxed(user, keep, now)
        .await
        .map_err(SessionError::Stored)?;
    let observer = crate::events::observer(sessions.config());
    for key in &ended {
        notify(observer, || SessionEvent::Deleted {
            key: *key,
            reason: DeleteReason::LogoutEverywhere,
        });
    }
    Ok(ended.len())
}

/// A record's data as the session's map, and whether it was a plain record in a sealed
/// store (a migration; see
/// [`SessionConfig::with_sealed_store`](crate::SessionConfig::with_sealed_store)).
fn open_record(session: &Session, data: &[u8]) -> Result<(LazyMap, bool), StoreError> {
    let config = session.sessions.config();
    let max_depth = session.sessions.codec().max_depth();
    if data.first() == Some(&b'{') {
        // A sealed store refuses plain records: anyone who can write the store without the
        // key could plant one. Only a migration, switched on by the operator, reads them.
        if config.seal_store && !config.seal_migration {
            return Err(StoreError::Corrupt);
        }
        let map = LazyMap::parse(data, max_depth).map_err(|_| StoreError::Corrupt)?;
        return Ok((map, config.seal_store));
    }
    let id = session
        .view()
        .stamp
        .map(|s| s.id())
        .ok_or(StoreError::Corrupt)?;
    let text = std::str::from_utf8(data).map_err(|_| StoreError::Corrupt)?;
    let opened = sealer(session)
        .decode_json(SEAL_NAME, text, session.now, LazyMap::parse)
        .map_err(|_| StoreError::Corrupt)?;
    // Bound to its session: a sealed record copied under another session's key is refused.
    if opened.stamp.id() != id {
        return Err(StoreError::Corrupt);
    }
    Ok((opened.value, false))
}

/// The name sealed records are bound to (as a cookie is to its name).
const SEAL_NAME: &str = "cookie-session-store-record";

/// The codec that seals records: encrypted mode under the session's key ring, without the
/// cookie size limit.
fn sealer(session: &Session) -> crate::wire::codec::Codec {
    crate::wire::codec::Codec::new(
        crate::wire::format::Mode::Encrypted,
        session.sessions.codec().key_ring().clone(),
    )
    .with_max_size(usize::MAX)
}

/// What a request asks of the store, in order.
#[derive(Debug)]
enum Op {
    Create {
        data: Vec<u8>,
        expires: OffsetDateTime,
    },
    Save {
        data: Vec<u8>,
        expires: OffsetDateTime,
    },
    Touch {
        expires: OffsetDateTime,
    },
    Rename {
        to: StoreKey,
    },
    Delete {
        reason: DeleteReason,
    },
    AttachUser {
        user: String,
    },
}

/// Writes what the request changed to `store` (any [`SessionStore`](crate::store::SessionStore),
/// or an `Arc<dyn DynStore>`) and decides the response's headers.
/// Conflicting concurrent saves are resolved by reloading and re-applying only the keys
/// this request changed (at most 3 times: the last writer wins per key). A session deleted
/// or regenerated meanwhile (a logout, or a login, in another request) is never recreated
/// and never written to under its new id: this request's changes are dropped, and it sends
/// no `Set-Cookie` (a removal could overtake the other request's new cookie); the stale
/// cookie is removed when it next comes back.
///
/// # Errors
/// [`SessionError::Stored`] when the store fails or the data does not fit it: nothing of
/// the session was sent, and the browser keeps its cookie (answer `503`);
/// [`SessionError::Encode`] as for cookie sessions.
pub async fn commit<S: DynStore + ?Sized>(
    session: Session,
    store: &S,
    now: OffsetDateTime,
) -> Result<Decision, SessionError> {
    match begin(session, now)? {
        Begun::Done(decision) => Ok(decision),
        Begun::Store(pending) => pending.finish(store, now).await,
    }
}

/// A commit as far as it goes without the store.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once and matched at once: a move, where a box would allocate"
)]
pub(crate) enum Begun {
    /// Nothing to write (a request that only read, or never looked): the headers.
    Done(Decision),
    /// The store has work to do: [`Pending::finish`].
    Store(Pending),
}

/// A commit that writes to the store.
pub(crate) struct Pending {
    session: Session,
    /// The operations, when planned already (a commit that waits for its turn plans
    /// after it).
    planned: Option<(Vec<Op>, CookieAction)>,
    token_headers: (bool, bool),
}

/// Begins a commit without awaiting anything: most requests only read, and their answer
/// is known here, so that an adapter need not allocate the store's future for them.
pub(crate) fn begin(mut session: Session, now: OffsetDateTime) -> Result<Begun, SessionError> {
    let token_headers = session.token_headers();
    let done = |decision: Decision| {
        Ok(Begun::Done(
            decision.with_token_headers(token_headers.0, token_headers.1),
        ))
    };
    if session.view_if_used().is_none() {
        return done(Decision::untouched());
    }
    let planned = if saves(&session).is_some() {
        None
    } else {
        let (ops, action) = plan(&mut session, now)?;
        if ops.is_empty() {
            return done(Decision::accessed(action, Vec::new()));
        }
        Some((ops, action))
    };
    Ok(Begun::Store(Pending {
        session,
        planned,
        token_headers,
    }))
}

/// The record a commit saves onto, if it saves data into a loaded record (then it takes
/// its turn first).
fn saves(session: &Session) -> Option<Stored> {
    let view = session.view_if_used()?;
    let saving = view.stamp.is_some() && !view.data.is_empty() && view.data.changed();
    record(session).filter(|_| saving)
}

impl Pending {
    /// Writes to `store`, as [`commit`] describes.
    pub(crate) async fn finish<S: DynStore + ?Sized>(
        self,
        store: &S,
        now: OffsetDateTime,
    ) -> Result<Decision, SessionError> {
        let Self {
            mut session,
            mut planned,
            token_headers,
        } = self;
        // A save of a loaded record waits for the other commits of this record through
        // this store handle (see `turns`): it then meets at most one newer version.
        // Deletes and touches cannot conflict and do not wait.
        let saves = saves(&session);
        let mut turn = match saves {
            Some(stored) => {
                Some(crate::server::turns::take(store.identity_dyn(), stored.key).await)
            }
            None => None,
        };
        // The commit before this one's turn wrote a newer version than this request
        // loaded: rebase onto it now (its save would only conflict and reload it).
        if let (Some(stored), Some(last)) = (saves, turn.as_ref().and_then(|t| t.last()))
            && last.version > stored.version
        {
            let last = last.clone();
            rebase(&mut session, stored.key, last)?;
        }
        let mut attempts = 0;
        loop {
            let (ops, action) = match planned.take() {
                Some(planned) => planned,
                None => plan(&mut session, now)?,
            };
            match run(&mut session, store, ops, now).await {
                Ok(saved) => {
                    if let Some(turn) = turn.as_mut() {
                        turn.leave(handed_on(&session, saves.map(|s| s.key), saved));
                    }
                    return Ok(Decision::accessed(action, Vec::new())
                        .with_token_headers(token_headers.0, token_headers.1));
                }
                Err(StoreError::Conflict) if attempts < MAX_RETRIES => {
                    attempts += 1;
                    let Some(stored) = record(&session) else {
                        return Err(SessionError::Stored(StoreError::Conflict));
                    };
                    match store
                        .load_boxed(&stored.key, now)
                        .await
                        .map_err(SessionError::Stored)?
                    {
                        Some(fresh) => rebase(&mut session, stored.key, fresh)?,
                        None => return Ok(superseded(token_headers)),
                    }
                }
                Err(StoreError::Duplicate) if attempts < MAX_RETRIES => {
                    // A new id collided with a live record: draw another.
                    attempts += 1;
                    session.redraw_id();
                }
                // Deleted meanwhile: never resurrected.
                Err(StoreError::Gone) => return Ok(superseded(token_headers)),
                Err(error) => return Err(SessionError::Stored(error)),
            }
        }
    }
}

/// The record the next commit of `key` may build on: the one this commit saved, if it is
/// still under `key` (not deleted, not moved to a new id).
fn handed_on(session: &Session, key: Option<StoreKey>, saved: Option<Vec<u8>>) -> Option<Record> {
    let stored = record(session)?;
    (Some(stored.key) == key)
        .then(|| saved.map(|data| Record::new(data, stored.expires, stored.version)))
        .flatten()
}

/// The end of a request served read-only while the store was down: nothing is written and
/// the cookie is left alone; a request that changed the session fails.
pub(crate) fn commit_degraded(session: &Session) -> Result<Decision, SessionError> {
    let changed = session.view_if_used().is_some_and(|view| {
        view.data.changed() || view.regenerated || view.stamp.is_none() && view.key_id.is_some()
    });
    if changed {
        return Err(SessionError::Stored(StoreError::Unavailable(
            "the session store was down: this request's session changes were not saved".into(),
        )));
    }
    let (brought_token, token_issued) = session.token_headers();
    Ok(Decision::accessed(CookieAction::Keep, Vec::new())
        .with_token_headers(brought_token, token_issued))
}

/// The response of a request whose session ended or moved while it ran (a logout, or a
/// `regenerate()` at login, in another request): its changes are dropped, and it sends no
/// `Set-Cookie` at all. A removal here could arrive after, and delete, the new cookie of
/// the request that regenerated the session (logging the visitor out right after login);
/// the stale cookie is harmless (its record is gone) and is removed by its next request.
fn superseded(token_headers: (bool, bool)) -> Decision {
    Decision::accessed(CookieAction::Keep, Vec::new())
        .with_token_headers(token_headers.0, token_headers.1)
}

/// Re-applies this request's changes over the record another request saved meanwhile.
fn rebase(session: &mut Session, key: StoreKey, fresh: Record) -> Result<(), SessionError> {
    let (data, unsealed) = open_record(session, &fresh.data).map_err(SessionError::Stored)?;
    if session.rebase(data)?.is_err() {
        return Err(SessionError::Stored(StoreError::Conflict));
    }
    backing_mut(session).record = Some(Stored {
        key,
        version: fresh.version,
        expires: fresh.expires,
        unsealed,
    });
    Ok(())
}

/// Runs the operations, updating the session after each, so that a retry never repeats
/// one that succeeded. Returns the data the last save wrote (for the next turn; moved out
/// of its operation, not copied).
async fn run<S: DynStore + ?Sized>(
    session: &mut Session,
    store: &S,
    ops: Vec<Op>,
    now: OffsetDateTime,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut written = None;
    let observer = crate::events::observer(session.sessions.config()).cloned();
    let observer = observer.as_ref();
    for op in ops {
        let target = target_key(session);
        match op {
            Op::Create { data, expires } => {
                let key = target.ok_or(StoreError::Gone)?;
                let version = store.create_boxed(&key, &data, expires, now).await?;
                bind(session, key, version, expires);
                notify(observer, || SessionEvent::Created { key });
            }
            Op::Save { data, expires } => {
                let stored = record(session).ok_or(StoreError::Gone)?;
                let version = store
                    .save_boxed(&stored.key, stored.version, &data, expires, now)
                    .await?;
                bind(session, stored.key, version, expires);
                written = Some(data);
            }
            Op::Touch { expires } => {
                let stored = record(session).ok_or(StoreError::Gone)?;
                store.touch_boxed(&stored.key, expires, now).await?;
                bind(
                    session,
                    stored.key,
                    stored.version,
                    expires.max(stored.expires),
                );
            }
            Op::Rename { to } => {
                let stored = record(session).ok_or(StoreError::Gone)?;
                store.rename_boxed(&stored.key, &to, now).await?;
                bind(session, to, stored.version, stored.expires);
                notify(observer, || SessionEvent::Regenerated {
                    old: stored.key,
                    new: to,
                });
            }
            Op::Delete { reason } => {
                if let Some(stored) = record(session)
                    && store.delete_boxed(&stored.key, now).await?
                {
                    notify(observer, || SessionEvent::Deleted {
                        key: stored.key,
                        reason,
                    });
                }
                backing_mut(session).record = None;
            }
            Op::AttachUser { user } => {
                let stored = record(session).ok_or(StoreError::Gone)?;
                store.set_user_boxed(&stored.key, &user, now).await?;
                backing_mut(session).user = None;
                notify(observer, || SessionEvent::UserAttached {
                    key: stored.key,
                    user,
                });
            }
        }
    }
    Ok(written)
}

fn bind(session: &mut Session, key: StoreKey, version: Version, expires: OffsetDateTime) {
    backing_mut(session).record = Some(Stored {
        key,
        version,
        expires,
        unsealed: false,
    });
}

/// The store key the session's current stamp belongs at: under the ring's current key.
fn target_key(session: &Session) -> Option<StoreKey> {
    let stamp = session.view().stamp?;
    if session.keys_by_id() {
        return session.raw_key().map(StoreKey::from_bytes);
    }
    let key = session.sessions.codec().key_ring().current();
    Some(keyed(session, key, stamp.id()))
}

/// What to write, and what the cookie does, from the session as it is now.
fn plan(
    session: &mut Session,
    now: OffsetDateTime,
) -> Result<(Vec<Op>, CookieAction), SessionError> {
    let sessions = session.sessions.clone();
    let config = sessions.config();
    let had_cookie = session.has_candidates();
    // Flags, not a copy of the map: the JSON is written from the session's own map below.
    let (empty, changed) = {
        let data = &session.view().data;
        (data.is_empty(), data.changed())
    };
    let stored = record(session);
    let mut ops = Vec::new();

    // Logged out (no identity left) or emptied: the record goes, and so does the cookie.
    let deleted = session.view().stamp.is_none();
    // A record that came empty (a store that shares another application's records: a
    // TurboGears visit that holds no session data) and is still empty and unchanged: there
    // is nothing to write, and the cookie stays, for it names the visit too.
    if stored.is_some() && !deleted && empty && !changed {
        return Ok((ops, CookieAction::Keep));
    }
    if stored.is_some() && (deleted || empty) {
        let reason = if deleted {
            DeleteReason::Logout
        } else {
            DeleteReason::Emptied
        };
        ops.push(Op::Delete { reason });
    }
    let live = stored.filter(|_| !deleted && !empty);
    if empty {
        let action = if had_cookie {
            CookieAction::Remove(crate::session::cookie_header::removal(config))
        } else {
            CookieAction::Keep
        };
        return Ok((ops, action));
    }
    // Data but no identity yet: a new id, and a cookie.
    let stamp = session.ensure_id(now)?;
    let state = session.view();
    if stamp.check(crate::wire::stamp::unix(now)?).is_err() {
        // The request outlived the session's lifetime: nothing valid is left to store.
        if live.is_some() {
            ops.push(Op::Delete {
                reason: DeleteReason::LifetimeEnded,
            });
        }
        return Ok((
            ops,
            CookieAction::Remove(crate::session::cookie_header::removal(config)),
        ));
    }
    let expires = (now + config.idle).min(stamp.absolute_deadline());
    // A new id, or a cookie that moves to the current key: the record moves with it.
    let moving = state.regenerated
        || (state.outcome == LoadOutcome::LoadedOlderKey && config.reissue_older_keys);
    match live {
        None => ops.push(Op::Create {
            data: json(session, state.data)?,
            expires,
        }),
        Some(stored) => {
            if moving {
                let to =
                    target_key(session).ok_or(SessionError::Encode(EncodeError::InvalidTime))?;
                if to != stored.key {
                    ops.push(Op::Rename { to });
                }
            }
            // A sealed record is bound to its session id: a new id re-seals it. A plain record
            // read during a sealing migration is sealed now.
            let reseal = (moving && config.seal_store) || stored.unsealed;
            if changed || state.persistence != stamp.persistence() || reseal {
                ops.push(Op::Save {
                    data: json(session, state.data)?,
                    expires,
                });
            } else if touch_due(config, stored.expires, now) {
                ops.push(Op::Touch { expires });
            }
        }
    }
    if let Some(user) = backing(session).and_then(|b| b.user.as_ref()) {
        ops.push(Op::AttachUser { user: user.clone() });
    }
    // A session that came in a token parameter keeps travelling there (`token()`): it is
    // never moved into a cookie.
    let cookie_moves = moving || live.is_none() || state.persistence != stamp.persistence();
    let action = if cookie_moves && !state.from_token {
        let value = session.id_value(stamp)?;
        CookieAction::Set(crate::session::cookie_header::set(
            config,
            &value,
            state.persistence.unwrap_or(config.persistence),
            stamp.absolute_deadline(),
            now,
        ))
    } else if state.cookie_rejected {
        // The session came from the token after the cookie failed to load: that cookie
        // is removed, as it would be without the token.
        CookieAction::Remove(crate::session::cookie_header::removal(config))
    } else {
        CookieAction::Keep
    };
    Ok((ops, action))
}

/// Whether a read-only request renews the record under the touch policy: as for cookie
/// sessions, measured from the record's last renewal (its expiry less the idle timeout).
fn touch_due(
    config: &crate::session::config::SessionConfig,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> bool {
    use crate::session::config::TouchPolicy;
    let idle = config.idle;
    match config.touch {
        TouchPolicy::Always => true,
        TouchPolicy::OnChange => false,
        TouchPolicy::Renew { after_percent } => {
            let renewed = expires - idle;
            let elapsed = (now - renewed).whole_seconds();
            let threshold = u128::from(idle.as_secs()) * u128::from(after_percent);
            u128::try_from(elapsed).is_ok_and(|e| e * 100 > threshold)
        }
    }
}

/// The record's data for `map`: its JSON, sealed if the configuration says so (under a
/// stamp whose only deadline is the session's lifetime: the record's own expiry is the
/// store's business).
fn json(session: &Session, map: &LazyMap) -> Result<Vec<u8>, SessionError> {
    if session.sessions.config().seal_store {
        let stamp = session
            .view()
            .stamp
            .ok_or(SessionError::Encode(EncodeError::InvalidTime))?;
        let stamp = Stamp {
            idle_deadline: stamp.absolute_deadline,
            ..stamp
        };
        let sealed = sealer(session).encode_json(SEAL_NAME, &stamp, |buf| map.write_json(buf))?;
        return Ok(sealed.into_bytes());
    }
    let mut out = Vec::new();
    map.write_json(&mut out)
        .map_err(|e| SessionError::Encode(EncodeError::Serialize(e.into())))?;
    Ok(out)
}
