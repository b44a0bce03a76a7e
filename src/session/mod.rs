//! The request-level session: load it from the `Cookie` header, read and change it as a
//! map, and [`finish`](Session::finish) with one decision about what to send back.
//!
//! Loading is lazy: [`Sessions::load`] only finds the candidate cookie values. The first
//! method that looks at the session decodes them, and marks the session *accessed*. A
//! request that never touches the session does no decoding and sends nothing.

pub(crate) mod config;
pub(crate) mod cookie_header;
pub(crate) mod error;
pub(crate) mod flash;
pub(crate) mod replay;
pub(crate) mod view;

use std::cell::OnceCell;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::diagnostics;
use crate::legacy::Stray;
use crate::session::config::{SaveMode, SessionConfig, TouchPolicy};
use crate::session::error::{ConfigError, SessionError};
use crate::wire::codec::{Codec, Pieces};
use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::key::KeyAge;
use crate::wire::map::LazyMap;
use crate::wire::stamp::{Deadline, Persistence, SessionId, Stamp};

/// A session's data: a JSON object.
pub type SessionMap = Map<String, Value>;

/// A validated [`SessionConfig`], ready to load sessions. Cheap to clone and shareable
/// across threads: build it once at start-up.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    config: SessionConfig,
    codec: Codec,
}

impl Sessions {
    pub(crate) fn new(config: SessionConfig) -> Self {
        let codec = config.codec();
        Self {
            inner: Arc::new(Inner { config, codec }),
        }
    }

    /// Prepares the session of a request from its `Cookie` header value(s), at time `now`.
    ///
    /// Pass every `Cookie` header of the request. When several cookies carry the session's
    /// name (a browser sends one per matching path and domain), they are tried in order and
    /// **the first that verifies wins**; at most 8 are tried. Nothing is decoded until the
    /// session is first accessed.
    pub fn load<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
        now: OffsetDateTime,
    ) -> Session {
        self.load_bytes(cookie_headers.into_iter().map(str::as_bytes), now)
    }

    /// Like [`load`](Self::load), from header values as bytes (`http::HeaderValue::as_bytes`):
    /// a `Cookie` header that is not UTF-8 (another cookie of the site holding Latin-1 or
    /// raw bytes) still yields the session's cookie.
    pub fn load_bytes<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h [u8]>,
        now: OffsetDateTime,
    ) -> Session {
        let config = &self.inner.config;
        let (candidates, companions) =
            cookie_header::find_pieces(cookie_headers, &config.name, config.max_cookies);
        Session {
            sessions: self.clone(),
            now,
            candidates,
            companions,
            token_at: None,
            token_issued: std::cell::Cell::new(false),
            state: OnceCell::new(),
            server_side: false,
            server: None,
        }
    }

    /// Like [`load`](Self::load), and if the configuration names a token parameter
    /// ([`SessionConfig::with_token_parameter`]), `token` (the parameter's value, taken by
    /// an adapter from the query or a form) is tried too, after or before the cookies as
    /// [`SessionConfig::with_token_order`] says. Without a token parameter (the default),
    /// `token` is ignored.
    pub fn load_with_token<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
        token: Option<&str>,
        now: OffsetDateTime,
    ) -> Session {
        let mut session = self.load(cookie_headers, now);
        session.add_token(token);
        session
    }

    /// The cookie name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The codec that encodes and decodes this session's cookie values.
    #[must_use]
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// The configuration this was built from.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }
}

// The configuration's own module knows nothing of sessions; building one lives here.
impl SessionConfig {
    /// Validates the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] for a name that is not a token; a `__Secure-`/`__Host-` name (in
    /// any case, as browsers match them) without `Secure`; a `__Host-` name with a `Domain` or a path other than `/`;
    /// `SameSite=None` or `Partitioned` without `Secure`; a `Path`/`Domain` over 1024 bytes
    /// or with characters an attribute cannot carry; a renewal threshold outside 1-100%;
    /// a zero idle timeout or lifetime.
    pub fn build(self) -> Result<Sessions, ConfigError> {
        self.validate()?;
        Ok(Sessions::new(self))
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// What loading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadOutcome {
    /// No cookie of this name: a new, empty session.
    New,
    /// An authentic, current session.
    Loaded,
    /// An authentic session under an older key of the ring; it is re-issued under the
    /// current key unless that is turned off.
    LoadedOlderKey,
    /// An authentic Beaker / TurboGears session (the `beaker` feature).
    LoadedBeaker,
    /// An authentic session past a deadline: a new session; the cookie is removed.
    Expired(Deadline),
    /// An authentic session that the revocation check rejected: a new session; the cookie
    /// is removed.
    Revoked,
    /// Server-side: an authentic cookie whose record is not in the store (logged out
    /// elsewhere, expired, swept): a new session; the cookie is removed.
    Missing,
    /// The cookie was rejected (tampered, foreign, wrong key, malformed): a new session;
    /// the cookie is removed. [`Session::rejection`] says why.
    Invalid,
}

/// The session of one request.
///
/// The first call of any method decodes the cookie and records that the session was
/// accessed (which makes the response carry `Vary: Cookie`); reads take `&self`.
pub struct Session {
    pub(crate) sessions: Sessions,
    pub(crate) now: OffsetDateTime,
    candidates: crate::session::cookie_header::Candidates,
    /// The further pieces of a session split across cookies (`name.2`, ...), with their
    /// positions; empty unless the configuration splits sessions.
    companions: Vec<(usize, String)>,
    /// Where among the candidates the request's token parameter is, if it brought one.
    token_at: Option<usize>,
    /// [`Session::token`] was called: the page carries the session in its links.
    token_issued: std::cell::Cell<bool>,
    /// Decoded on first use, through `&self` as well: reads need no `&mut`.
    state: OnceCell<State>,
    /// Server-side: the cookie carries only the id, the data comes from a store (see the
    /// `server` module).
    pub(crate) server_side: bool,
    /// Server-side: what the server part keeps with this session (the record it was read
    /// from, the user to link, its store key), opaque to this layer.
    pub(crate) server: Option<Box<dyn std::any::Any + Send>>,
}

/// The session once decoded.
struct State {
    outcome: LoadOutcome,
    rejection: Option<DecodeError>,
    /// The authentic session's id and deadlines; `None` for a new session until it is
    /// first written (or regenerated).
    stamp: Option<Stamp>,
    /// The id of the key that authenticated the cookie.
    key_id: Option<crate::wire::key::KeyId>,
    /// The data; it remembers what was loaded, to tell a real change from a write of an
    /// equal value.
    data: LazyMap,
    /// Explicit save mode: the state committed by the last `save()`.
    committed: Option<LazyMap>,
    /// `regenerate()` was called: re-issue whatever else happens.
    regenerated: bool,
    /// This session's own persistence choice (from its cookie, or `set_persistence`).
    persistence: Option<Persistence>,
    /// The session came from the token parameter, not a cookie: it is never moved into a
    /// cookie, and travels on in [`Session::token`].
    from_token: bool,
    /// Server-side: this request's read-modify-write changes, for a commit that meets a
    /// newer record to run again on it.
    replays: crate::session::replay::Replays,
    /// The session came from the token after the request's cookie failed to load
    /// (tampered, foreign key, expired): the cookie is removed as it would be without the
    /// token.
    cookie_rejected: bool,
    /// Beaker's internal keys, for a session read from a Beaker cookie.
    legacy: Legacy,
    /// Where an authentic Beaker cookie of this request is stored, when that is not where
    /// the configuration writes: every response that sets or removes the session also
    /// removes it there. Kept through `delete()`.
    stray: Stray,
}

/// What another format keeps of a session read from its cookie (see [`crate::legacy`]).
type Legacy = Option<Arc<dyn std::any::Any + Send + Sync>>;

impl Session {
    /// Tries `token` with the cookies, in the configured order, if the configuration
    /// names a token parameter.
    pub(crate) fn add_token(&mut self, token: Option<&str>) {
        let config = &self.sessions.inner.config;
        let Some(token) = token.filter(|_| config.token.is_some() && self.token_at.is_none())
        else {
            return;
        };
        let at = match config.token_order {
            crate::session::config::TokenOrder::ParameterFirst => 0,
            _ => self.candidates.len(),
        };
        self.candidates.insert(at, token.to_owned());
        self.token_at = Some(at);
    }

    /// Whether the request brought a session cookie (not counting a token parameter).
    fn had_cookie(&self) -> bool {
        self.candidates.len() > usize::from(self.token_at.is_some()) || !self.companions.is_empty()
    }

    /// Whether the request brought a token parameter.
    pub(crate) fn brought_token(&self) -> bool {
        self.token_at.is_some()
    }

    /// What the response's token headers depend on: the request brought a token, and the
    /// page was given one ([`Decision::with_token_headers`]).
    pub(crate) fn token_headers(&self) -> (bool, bool) {
        (self.brought_token(), self.token_issued.get())
    }

    /// The decoded session, decoding it on first use.
    /// Whether anything looked at the session (so the response varies on the cookie).
    #[cfg(any(feature = "tower", feature = "actix"))]
    pub(crate) fn accessed(&self) -> bool {
        self.state.get().is_some()
    }

    /// Whether the request brought a cookie of the session's name (not a token).
    pub(crate) fn has_candidates(&self) -> bool {
        self.had_cookie()
    }

    fn state(&self) -> &State {
        self.state.get_or_init(|| {
            decode(
                &self.sessions,
                &self.candidates,
                &self.companions,
                self.token_at,
                self.now,
            )
        })
    }

    fn state_mut(&mut self) -> &mut State {
        self.state();
        self.state
            .get_mut()
            .unwrap_or_else(|| unreachable!("`state()` has just initialised it"))
    }

    /// What loading found.
    pub fn outcome(&self) -> LoadOutcome {
        self.state().outcome
    }

    /// Why the cookie was rejected: `Some` exactly when [`outcome`](Self::outcome) is
    /// [`Invalid`](LoadOutcome::Invalid) or [`Expired`](LoadOutcome::Expired), and then the
    /// error behind that outcome (of several same-named cookies, the one that decided it).
    /// `None` whenever a cookie loaded, even if an earlier same-named one was rejected.
    /// This is for logs, never for the client.
    pub fn rejection(&self) -> Option<&DecodeError> {
        self.state().rejection.as_ref()
    }

    /// The session id: `None` for a new session until [`finish`](Self::finish) issues it
    /// (or [`regenerate`](Self::regenerate) assigns one).
    pub fn id(&self) -> Option<SessionId> {
        self.state().stamp.map(|s| s.id())
    }

    /// The session's stamp (id and deadlines), if it has one; see [`id`](Self::id).
    pub fn stamp(&self) -> Option<Stamp> {
        self.state().stamp
    }

    /// The value under `key` as `T`, or `None` if there is none. Only this key's value is
    /// parsed, straight from the cookie's JSON text, into `T`.
    ///
    /// # Errors
    /// [`SessionError::Value`] if the stored JSON does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.state()
            .data
            .get(key)
            .transpose()
            .map_err(|source| value_error(key, source))
    }

    /// Stores `value` under `key`. Writing a value equal to the stored one is not a change.
    ///
    /// # Errors
    /// [`SessionError::Value`] if `value` cannot be represented as JSON (e.g. a map with
    /// non-string keys); the session is unchanged then.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|source| value_error(key, source))?;
        self.overwrite(key).data.insert(key, value);
        Ok(())
    }

    /// The state, with `key` noted as written by a plain operation (server-side: its value
    /// is then what a conflicting commit writes, not a replay).
    fn overwrite(&mut self, key: &str) -> &mut State {
        let server_side = self.server_side;
        let state = self.state_mut();
        if server_side {
            state.replays.overwritten(key);
        }
        state
    }

    /// Removes `key`, returning its value. (The key is removed but `None` returned when
    /// its stored JSON cannot be a [`Value`]; see [`get_mut`](Self::get_mut).)
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.overwrite(key).data.remove(key)
    }

    /// Removes every key. The session stays (its id is kept); an empty session is not
    /// stored, so the response removes the cookie. See also [`delete`](Self::delete).
    pub fn clear(&mut self) {
        let state = self.state_mut();
        state.data.clear();
        state.replays.clear();
    }

    /// Whether `key` is present (counts as an access).
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().data.contains_key(key)
    }

    /// The number of keys (counts as an access).
    pub fn len(&self) -> usize {
        self.state().data.len()
    }

    /// Whether the session has no keys (counts as an access).
    pub fn is_empty(&self) -> bool {
        self.state().data.is_empty()
    }

    /// The keys, in order (counts as an access).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.state().data.keys()
    }

    /// The JSON value under `key`, to change in place. Whether it really changed is decided
    /// at `finish` by comparison, so taking it without changing it is not a change.
    ///
    /// `None` if there is no such key, and also if the stored JSON is valid but cannot be a
    /// [`Value`] (a number beyond `f64`, an unpaired `\u` surrogate; only a holder of the
    /// key can write such a cookie): that value is then kept exactly as it came.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.overwrite(key).data.get_mut(key)
    }

    /// Changes the value under `key` in place as a `T`: a read-modify-write that is never
    /// lost. A missing key is left missing: [`Updated::Missing`], which must be looked at
    /// (a cart whose first item went nowhere is the bug it prevents); to start a missing key
    /// from a value, use [`update_or_default`](Self::update_or_default).
    ///
    /// Server-side, if another request saved the session meanwhile, the commit runs
    /// `change` again on that request's record (as if this request had come after it), so
    /// concurrent appends to one list and increments of one counter all survive; a value
    /// set with [`insert`](Self::insert) is written as it is (the last writer wins for its
    /// key). So `change` must be re-runnable: it changes the value and nothing else (no
    /// counters outside it, no I/O), and it may run more than once.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig, Updated};
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// # let mut session = sessions.load([], cookie_session::time::OffsetDateTime::now_utc());
    /// let visits = session.update("visits", |n: &mut u64| *n += 1)?;
    /// assert_eq!(visits, Updated::Missing);
    /// session.insert("visits", &1)?;
    /// assert_eq!(session.update("visits", |n: &mut u64| *n += 1)?, Updated::Changed);
    /// assert_eq!(session.get::<u64>("visits")?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SessionError::Value`] if the stored value does not deserialize as `T` or the
    /// changed one does not serialize; the session is unchanged then.
    pub fn update<T, F>(&mut self, key: &str, change: F) -> Result<Updated, SessionError>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        self.replayable(key, move |data, key| {
            apply(data, key, |value: Option<T>| value, &change)
        })
    }

    /// Changes the value under `key` in place as a `T`, starting from `T::default()` when
    /// the key is missing (an entry-style update: a cart's first item, a counter's first
    /// visit). Replayed on a conflicting commit like [`update`](Self::update), so `change`
    /// must be re-runnable in the same way.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// # let mut session = sessions.load([], cookie_session::time::OffsetDateTime::now_utc());
    /// session.update_or_default("cart", |cart: &mut Vec<String>| cart.push("apple".into()))?;
    /// session.update_or_default("cart", |cart: &mut Vec<String>| cart.push("pear".into()))?;
    /// assert_eq!(session.get::<Vec<String>>("cart")?.unwrap(), ["apple", "pear"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub fn update_or_default<T, F>(&mut self, key: &str, change: F) -> Result<(), SessionError>
    where
        T: Serialize + DeserializeOwned + Default + 'static,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        self.replayable(key, move |data, key| {
            apply(
                data,
                key,
                |value: Option<T>| Some(value.unwrap_or_default()),
                &change,
            )
        })
        .map(drop)
    }

    /// Runs `op` on the data now, and server-side keeps it to run again on a newer record.
    fn replayable(
        &mut self,
        key: &str,
        op: impl Fn(&mut LazyMap, &str) -> Result<Updated, SessionError> + Send + Sync + 'static,
    ) -> Result<Updated, SessionError> {
        let server_side = self.server_side;
        let state = self.state_mut();
        let updated = op(&mut state.data, key)?;
        if server_side {
            let owned: Box<str> = key.into();
            state.replays.record(
                key,
                std::sync::Arc::new(move |data: &mut LazyMap| op(data, &owned).map(drop)),
            );
        }
        Ok(updated)
    }

    /// Explicit save mode: commits the current data; only committed data is sent. In
    /// automatic mode it has no effect (everything is sent anyway).
    pub fn save(&mut self) {
        let state = self.state_mut();
        state.committed = Some(state.data.clone());
    }

    /// Ends the session: the data is emptied, the identity dropped, and the response
    /// removes the cookie (if the request had one). Data written afterwards starts a new
    /// session with a new id.
    pub fn delete(&mut self) {
        let state = self.state_mut();
        // Nothing of the loaded session remains, not even for explicit save mode.
        state.data = LazyMap::default();
        state.replays.clear();
        state.committed = None;
        state.stamp = None;
        state.regenerated = false;
        state.persistence = None;
        // The record stays known: a server-side session's response deletes it.
        state.legacy = Legacy::default();
        // `stray` stays: the removal must reach the Beaker cookie where it is stored.
    }

    /// Chooses, for this session only, whether its cookie outlives the browser: a login
    /// form's "remember me" box. The choice travels in the cookie's authenticated header, so
    /// every later re-issue keeps it, and it overrides
    /// [`SessionConfig::with_persistence`](crate::SessionConfig::with_persistence). A
    /// different choice re-issues the cookie on this response; `delete()` forgets it.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, Persistence, SessionConfig};
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// # let now = cookie_session::time::OffsetDateTime::now_utc();
    /// let mut session = sessions.load([], now);
    /// session.insert("user_id", &42)?;
    /// session.set_persistence(Persistence::Persistent); // "remember me" was ticked
    /// let set_cookie = session.finish(now)?.set_cookie().unwrap().to_owned();
    /// assert!(set_cookie.contains("Max-Age="));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_persistence(&mut self, persistence: Persistence) {
        self.state_mut().persistence = Some(persistence);
    }

    /// Gives the session a new identity, keeping its data: a fresh random id, and the
    /// issue time and absolute deadline restart now. Call it at login and on privilege
    /// changes so that an id an attacker planted or saw beforehand is worthless (session
    /// fixation). The response re-issues the cookie.
    ///
    /// # Errors
    /// [`SessionError::Encode`] with [`EncodeError::InvalidTime`](crate::EncodeError::InvalidTime)
    /// if `now` cannot be represented.
    pub fn regenerate(&mut self) -> Result<(), SessionError> {
        let config = &self.sessions.inner.config;
        let stamp = Stamp::new(self.now, config.idle, config.lifetime)?;
        let state = self.state_mut();
        state.stamp = Some(stamp);
        state.regenerated = true;
        Ok(())
    }

    /// Decides what the response sends: nothing, a new cookie, or a removal, and which
    /// caching headers go with it. `now` is the time of the response.
    ///
    /// # Errors
    /// [`SessionError::Encode`] if the session cannot be encoded (e.g. over the size
    /// limit). No header text exists then; the browser keeps its previous cookie, so the
    /// previous session stays in effect.
    pub fn finish(self, now: OffsetDateTime) -> Result<Decision, SessionError> {
        if self.server_side {
            return Err(SessionError::ServerSide);
        }
        let (brought_token, token_issued) = self.token_headers();
        let had_cookie = self.had_cookie();
        let Some(state) = self.state.into_inner() else {
            // Never accessed: nothing was decoded, nothing is sent, nothing varies.
            return Ok(Decision::untouched().with_token_headers(brought_token, token_issued));
        };
        let inner = &self.sessions.inner;
        let config = &inner.config;
        let persisted = persisted(config, &state);
        let persist = &*persisted;

        let action = if persist.is_empty() {
            // Empty sessions are never stored; an existing cookie is removed.
            if !had_cookie {
                Action::Keep
            } else {
                Action::Remove(cookie_header::removal(config))
            }
        } else if state.from_token {
            // A session that came in a token parameter travels on in `token()`, which
            // encodes it (and says if it no longer fits one); no cookie is written for it.
            Action::Keep
        } else {
            match state.stamp {
                // A new session (none came in, or it was expired, revoked or invalid).
                None => {
                    let stamp = Stamp::new(now, config.idle, config.lifetime)?;
                    set(inner, &state, persist, &stamp, now)
                        .map_err(|e| report(config, persist, e))?
                }
                Some(stamp) if state.regenerated => set(inner, &state, persist, &stamp, now)
                    .map_err(|e| report(config, persist, e))?,
                Some(stamp) => {
                    let changed = persist.changed();
                    let rotate =
                        state.outcome == LoadOutcome::LoadedOlderKey && config.reissue_older_keys;
                    let reformat =
                        format_changes(config, &state) || state.persistence != stamp.persistence();
                    let due = touch_due(config.touch, &stamp, config.idle, now);
                    if changed || rotate || reformat || due {
                        match stamp.renewed(now, config.idle) {
                            // The request outlived the session (loaded before its absolute
                            // deadline, finished after it): nothing valid is left to store.
                            Err(EncodeError::LifetimeOver) => {
                                Action::Remove(cookie_header::removal(config))
                            }
                            Err(error) => return Err(error.into()),
                            Ok(renewed) => match set(inner, &state, persist, &renewed, now) {
                                // Only a re-issue was asked for (a format upgrade, a renewal,
                                // a key rotation) and the unchanged data does not fit the
                                // format written now: the cookie the browser holds still
                                // works, so keep it rather than fail every request.
                                Err(EncodeError::TooLarge { size, limit }) if !changed => {
                                    diagnostics::reissue_deferred(
                                        config.name.as_str(),
                                        size,
                                        limit,
                                    );
                                    Action::Keep
                                }
                                other => other.map_err(|e| report(config, persist, e))?,
                            },
                        }
                    } else {
                        Action::Keep
                    }
                }
            }
        };
        let removals = match &action {
            Action::Keep => Vec::new(),
            _ => stray_removal(config, &state.stray).into_iter().collect(),
        };
        let (action, pieces) = match action {
            // A session that came in a token parameter travels on in `token()`: it is never
            // moved into a cookie, where a link someone followed could plant it.
            // Whose cookie failed to load is removed still, as without the token.
            Action::Set { .. } | Action::Keep if state.cookie_rejected => (
                CookieAction::Remove(cookie_header::removal(config)),
                Vec::new(),
            ),
            Action::Set { .. } if state.from_token => (CookieAction::Keep, Vec::new()),
            Action::Set { first, more } => (CookieAction::Set(first), more),
            Action::Remove(removal) => (CookieAction::Remove(removal), Vec::new()),
            Action::Keep => (CookieAction::Keep, Vec::new()),
        };
        let chunks = match &action {
            CookieAction::Keep => Vec::new(),
            // Pieces the request brought beyond those now written are removed: a session
            // that shrank, or one deleted. The cookie itself is position 1 and `pieces` are
            // positions 2 ..= len + 1, so the stale ones start at len + 2; a removal of a
            // piece just set would follow its `Set-Cookie` and delete it in the browser.
            _ => stale_pieces(config, &self.companions, pieces.len() + 2).fold(
                pieces,
                |mut all, removal| {
                    all.push(removal);
                    all
                },
            ),
        };
        Ok(Decision::accessed(action, removals)
            .with_chunks(chunks)
            .with_token_headers(brought_token, token_issued))
    }

    /// The value that carries this session in a link or a hidden form field, for clients
    /// without cookies: put it in the [token parameter](SessionConfig::with_token_parameter)
    /// of every link and form of the page. It is the same authenticated (and in encrypted
    /// mode, encrypted) value a cookie would hold, made from the session as it is now, so
    /// call it after the request's changes; a new session gets its id here. `None` for an
    /// empty session (there is nothing to carry). A server-side session's token is its
    /// signed id, as in its cookie.
    ///
    /// The response of a request that asks for a token gets `Cache-Control: no-store`
    /// (the page holds the session in its links).
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # let now = cookie_session::time::OffsetDateTime::now_utc();
    /// let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
    ///     .with_token_parameter("tg_visit")
    ///     .build()?;
    /// let mut session = sessions.load([], now);
    /// session.insert("cart", &["apple"])?;
    /// let token = session.token()?.expect("the session has data");
    /// let link = format!("/cart?tg_visit={token}"); // base64url: safe in a URL as it is
    ///
    /// // The next request brings it back in the parameter.
    /// let next = sessions.load_with_token([], Some(&token), now);
    /// assert_eq!(next.get::<Vec<String>>("cart")?, Some(vec!["apple".to_owned()]));
    /// # let _ = link;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SessionError::NoTokenParameter`] when the configuration names no token parameter;
    /// [`SessionError::Encode`] when the session does not fit one value (a token is never
    /// split or compressed beyond what one cookie holds).
    pub fn token(&mut self) -> Result<Option<String>, SessionError> {
        if self.sessions.inner.config.token.is_none() {
            return Err(SessionError::NoTokenParameter);
        }
        let token = if self.server_side {
            self.id_token()?
        } else {
            let (now, sessions) = (self.now, self.sessions.clone());
            let config = &sessions.inner.config;
            let state = self.state_mut();
            if persisted(config, state).is_empty() {
                return Ok(None);
            }
            let stamp = match state.stamp {
                Some(stamp) => stamp.renewed(now, config.idle)?,
                None => {
                    let stamp = Stamp::new(now, config.idle, config.lifetime)?;
                    state.stamp = Some(stamp);
                    stamp
                }
            };
            let stamp = stamp.with_persistence(state.persistence);
            let persist = persisted(config, state);
            let encoded = sessions
                .inner
                .codec
                .encode_json(&config.name, &stamp, |buf| persist.write_json(buf));
            Some(encoded.map_err(|e| match e {
                // A cookie could be split; a token cannot: say so.
                EncodeError::TooLarge { size, limit } => EncodeError::TokenTooLarge { size, limit },
                other => other,
            })?)
        };
        self.token_issued.set(token.is_some());
        Ok(token)
    }
}

/// One typed read-modify-write of `key` in `data`: `start` turns the stored value (if any)
/// into the one to change (`None`: leave the key missing).
fn apply<T: Serialize + DeserializeOwned>(
    data: &mut LazyMap,
    key: &str,
    start: impl FnOnce(Option<T>) -> Option<T>,
    change: &impl Fn(&mut T),
) -> Result<Updated, SessionError> {
    let stored = data
        .get::<T>(key)
        .transpose()
        .map_err(|source| value_error(key, source))?;
    let Some(mut value) = start(stored) else {
        return Ok(Updated::Missing);
    };
    change(&mut value);
    let value = serde_json::to_value(&value).map_err(|source| value_error(key, source))?;
    data.insert(key, value);
    Ok(Updated::Changed)
}

/// What a response stores: the data, or in explicit save mode what was last saved (or
/// loaded).
fn persisted<'a>(config: &SessionConfig, state: &'a State) -> std::borrow::Cow<'a, LazyMap> {
    match (config.save, &state.committed) {
        (SaveMode::Automatic, _) => std::borrow::Cow::Borrowed(&state.data),
        (SaveMode::Explicit, Some(committed)) => std::borrow::Cow::Borrowed(committed),
        (SaveMode::Explicit, None) => std::borrow::Cow::Owned(state.data.as_loaded()),
    }
}

/// Logs an encoding failure that the caller will see (with the session's keys when it is
/// too large), and passes it on.
fn report(config: &SessionConfig, persist: &LazyMap, error: EncodeError) -> EncodeError {
    if let EncodeError::TooLarge { size, limit } = error {
        let keys: Vec<&str> = persist.keys().collect();
        diagnostics::too_large(&config.name, size, limit, &keys);
    }
    error
}

/// What `finish` decided for the session's cookie(s), before it becomes a [`Decision`].
enum Action {
    Keep,
    /// The `Set-Cookie` of the cookie `name`, and those of the further pieces of a session
    /// split across cookies.
    Set {
        first: String,
        more: Vec<String>,
    },
    Remove(String),
}

/// The `Set-Cookie`s that store `persist` under `stamp`.
fn set(
    inner: &Inner,
    state: &State,
    persist: &LazyMap,
    stamp: &Stamp,
    now: OffsetDateTime,
) -> Result<Action, EncodeError> {
    let stamp = stamp.with_persistence(state.persistence);
    let value = encode(inner, state, persist, &stamp, now)?;
    let config = &inner.config;
    let persistence = state.persistence.unwrap_or(config.persistence);
    let deadline = stamp.idle_deadline();
    let mut pieces = value.iter();
    let first = cookie_header::set(
        config,
        pieces.next().unwrap_or_default(),
        persistence,
        deadline,
        now,
    );
    let more = pieces
        .enumerate()
        .map(|(index, piece)| {
            let name = crate::wire::format::chunk_name(&config.name, index + 2);
            cookie_header::set_named(config, &name, piece, persistence, deadline, now)
        })
        .collect();
    Ok(Action::Set { first, more })
}

/// The removals of the pieces the request brought at positions `from` and after.
fn stale_pieces<'a>(
    config: &'a SessionConfig,
    companions: &'a [(usize, String)],
    from: usize,
) -> impl Iterator<Item = String> + 'a {
    (from.max(2)..=crate::MAX_CHUNKS)
        .filter(move |position| companions.iter().any(|(p, _)| p == position))
        .map(move |position| {
            cookie_header::removal_named(
                config,
                &crate::wire::format::chunk_name(&config.name, position),
            )
        })
}

/// Whether a read-only request re-issues under this policy.
fn touch_due(
    touch: TouchPolicy,
    stamp: &Stamp,
    idle: std::time::Duration,
    now: OffsetDateTime,
) -> bool {
    match touch {
        TouchPolicy::Always => true,
        TouchPolicy::OnChange => false,
        TouchPolicy::Renew { after_percent } => {
            let elapsed = (now - stamp.issued_at()).whole_seconds();
            // More than `after_percent`% of the idle timeout has passed (integer arithmetic:
            // the boundary second itself does not renew).
            let threshold = u128::from(idle.as_secs()) * u128::from(after_percent);
            u128::try_from(elapsed).is_ok_and(|e| e * 100 > threshold)
        }
    }
}

/// Tries the candidates in order; the first authentic, unexpired, unrevoked one wins.
/// Otherwise the most telling failure is reported: revoked over expired over invalid, the
/// first of equals.
fn decode(
    sessions: &Sessions,
    candidates: &[String],
    companions: &[(usize, String)],
    token_at: Option<usize>,
    now: OffsetDateTime,
) -> State {
    let inner = &sessions.inner;
    let mut outcome = LoadOutcome::New;
    let mut rejection = None;
    let mut stray = None;
    let mut report = |found: LoadOutcome, error: Option<DecodeError>| {
        if rank(found) > rank(outcome) {
            outcome = found;
            rejection = error;
        }
    };
    for (index, value) in candidates.iter().enumerate() {
        let from_token = token_at == Some(index);
        // A token is one value; pieces belong to the cookie.
        let companions = if from_token { &[][..] } else { companions };
        match open(inner, value, companions, now) {
            Ok(opened) => {
                let revoked = inner.config.revocation.as_ref().is_some_and(|check| {
                    check(&crate::session::config::Revocable {
                        id: opened.stamp.id(),
                        issued_at: opened.stamp.issued_at(),
                        data: &opened.data,
                    })
                });
                if revoked {
                    report(LoadOutcome::Revoked, None);
                    keep_stray(&mut stray, opened.stray);
                    continue;
                }
                keep_stray(&mut stray, opened.stray);
                return State {
                    outcome: opened.outcome,
                    rejection: None,
                    from_token,
                    // With the cookie tried first, every cookie before the token failed.
                    cookie_rejected: from_token && index > 0,
                    replays: crate::session::replay::Replays::default(),
                    persistence: opened.stamp.persistence(),
                    key_id: opened.key_id,
                    stamp: Some(opened.stamp),
                    data: opened.data,
                    committed: None,
                    regenerated: false,
                    legacy: opened.legacy,
                    stray,
                };
            }
            Err(rejected) => {
                diagnostics::rejected(&inner.config.name, &rejected.error);
                let found = match rejected.error {
                    DecodeError::Expired(deadline) => LoadOutcome::Expired(deadline),
                    _ => LoadOutcome::Invalid,
                };
                report(found, Some(rejected.error));
                keep_stray(&mut stray, rejected.stray);
            }
        }
    }
    State {
        outcome,
        rejection,
        stamp: None,
        key_id: None,
        data: LazyMap::default(),
        committed: None,
        regenerated: false,
        persistence: None,
        from_token: false,
        cookie_rejected: false,
        replays: crate::session::replay::Replays::default(),
        legacy: Legacy::default(),
        stray,
    }
}

/// How telling a failed load is.
fn rank(outcome: LoadOutcome) -> u8 {
    match outcome {
        LoadOutcome::Revoked => 3,
        LoadOutcome::Expired(_) => 2,
        LoadOutcome::Invalid => 1,
        _ => 0,
    }
}

/// The first stray location found is the one cleaned up.
fn keep_stray(kept: &mut Stray, found: Stray) {
    if kept.is_none() {
        *kept = found;
    }
}

/// One authentic cookie, in whichever format it came.
struct Opened {
    outcome: LoadOutcome,
    stamp: Stamp,
    key_id: Option<crate::wire::key::KeyId>,
    data: LazyMap,
    legacy: Legacy,
    stray: Stray,
}

/// A candidate that did not load, and (for an authentic Beaker cookie past a deadline)
/// where it is stored.
struct Rejected {
    error: DecodeError,
    stray: Stray,
}

impl From<DecodeError> for Rejected {
    fn from(error: DecodeError) -> Self {
        Self { error, stray: None }
    }
}

/// Decodes one candidate value: the native format, then (with the `beaker` feature and a
/// Beaker configuration) Beaker's, for values that are not native-format at all.
fn open(
    inner: &Inner,
    value: &str,
    companions: &[(usize, String)],
    now: OffsetDateTime,
) -> Result<Opened, Rejected> {
    let native = if companions.is_empty() {
        inner
            .codec
            .decode_json(&inner.config.name, value, now, LazyMap::parse)
    } else {
        open_pieces(inner, value, companions, now)
    };
    // A value that is not in the native format at all may be in the other one.
    if let (Err(DecodeError::Malformed | DecodeError::UnsupportedVersion(_)), Some(format)) =
        (&native, &inner.config.legacy)
    {
        let opened = format
            .open(value, now, &inner.config.place())
            .map_err(|(error, stray)| Rejected { error, stray })?;
        return Ok(Opened {
            outcome: LoadOutcome::LoadedBeaker,
            stamp: opened.stamp,
            key_id: None,
            data: opened.data,
            legacy: Some(opened.state),
            stray: opened.stray,
        });
    }
    let opened = native?;
    Ok(Opened {
        outcome: match opened.key_age {
            KeyAge::Older => LoadOutcome::LoadedOlderKey,
            _ => LoadOutcome::Loaded,
        },
        stamp: opened.stamp,
        key_id: Some(opened.key_id),
        data: opened.value,
        legacy: Legacy::default(),
        stray: None,
    })
}

/// Decodes `first` with the further pieces the request brought. Where a position came more
/// than once (copies under other paths or domains), the combinations are tried in order,
/// at most [`cookie_header::MAX_CANDIDATES`]; the first that authenticates wins, else the
/// first one's error is reported.
fn open_pieces(
    inner: &Inner,
    first: &str,
    companions: &[(usize, String)],
    now: OffsetDateTime,
) -> Result<crate::wire::codec::Opened<LazyMap>, DecodeError> {
    let mut sets: Vec<Vec<&str>> = vec![vec![first]];
    for position in 2..=crate::MAX_CHUNKS {
        let here: Vec<&str> = companions
            .iter()
            .filter(|(p, _)| *p == position)
            .map(|(_, v)| v.as_str())
            .collect();
        if here.is_empty() {
            // Pieces after a gap cannot be used: the value is read only in order.
            break;
        }
        sets = sets
            .iter()
            .flat_map(|set| {
                here.iter().map(move |piece| {
                    let mut longer = set.clone();
                    longer.push(piece);
                    longer
                })
            })
            .take(cookie_header::MAX_CANDIDATES)
            .collect();
    }
    let mut first_error = None;
    for pieces in &sets {
        match inner
            .codec
            .decode_pieces(&inner.config.name, pieces, now, LazyMap::parse)
        {
            Ok(opened) => return Ok(opened),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(DecodeError::Malformed))
}

/// The removal of the session cookie at a stray location.
fn stray_removal(config: &SessionConfig, stray: &Stray) -> Option<String> {
    let (domain, path) = stray.as_ref()?;
    Some(cookie_header::removal_at(config, domain.as_deref(), path))
}

/// Whether the cookie must be re-issued because it is in the other format than the one
/// this configuration writes.
fn format_changes(config: &SessionConfig, state: &State) -> bool {
    let writes_legacy = config.legacy.as_ref().is_some_and(|f| f.writes());
    state.stamp.is_some() && writes_legacy != state.legacy.is_some()
}

/// The cookie value for `persist` under `stamp`, in the format the configuration writes.
fn encode(
    inner: &Inner,
    state: &State,
    persist: &LazyMap,
    stamp: &Stamp,
    now: OffsetDateTime,
) -> Result<Pieces, EncodeError> {
    if let Some(format) = inner.config.legacy.as_ref().filter(|f| f.writes()) {
        // Keep the format's own state of the session, unless it was regenerated or is new.
        let loaded = state.legacy.as_deref().filter(|_| !state.regenerated);
        let relocate = state.stray.is_some();
        return format
            .encode(
                persist,
                stamp.id(),
                loaded,
                now,
                &inner.config.place(),
                relocate,
            )
            .map(Pieces::single);
    }
    inner
        .codec
        .encode_pieces(&inner.config.name, stamp, |buf| persist.write_json(buf))
}

fn value_error(key: &str, source: serde_json::Error) -> SessionError {
    SessionError::Value {
        key: key.to_owned(),
        source: source.into(),
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the cookie values nor the data: both may be sensitive.
        f.debug_struct("Session")
            .field("name", &self.sessions.name())
            .field("candidates", &self.candidates.len())
            .field("accessed", &self.state.get().is_some())
            .field("outcome", &self.state.get().map(|s| s.outcome))
            .finish_non_exhaustive()
    }
}

/// What [`Session::update`] did: a missing key is not changed, and the caller must say
/// what that means (or use [`Session::update_or_default`]).
#[must_use = "a missing key was not updated; check for Updated::Missing or use update_or_default"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// The value was changed and stored.
    Changed,
    /// There was no such key: nothing was changed.
    Missing,
}

/// What to do with the session cookie on the response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieAction {
    /// Send no `Set-Cookie`.
    Keep,
    /// Send this `Set-Cookie` header value, which stores the session.
    Set(String),
    /// Send this `Set-Cookie` header value, which deletes the cookie.
    Remove(String),
}

/// The end-of-request decision: the cookie action and the caching headers that must go
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// What to do with the cookie.
    pub cookie: CookieAction,
    /// With a session split across cookies
    /// ([`SessionConfig::with_max_cookies`](crate::SessionConfig::with_max_cookies)): the
    /// `Set-Cookie` header values of its further pieces (`name.2`, ...) in order, then the
    /// removals of pieces the request brought that the session no longer needs. Empty
    /// otherwise.
    pub chunks: Vec<String>,
    /// Further `Set-Cookie` header values that delete other copies of the session cookie,
    /// sent with [`cookie`](Self::cookie): a Beaker cookie stored under another `Domain` or
    /// `Path` than the configured ones, which would otherwise shadow the new cookie or
    /// survive a logout. Empty in the usual case.
    pub removals: Vec<String>,
    /// The response depends on the `Cookie` header (the session was accessed, or a cookie
    /// is sent): add `Vary: Cookie`, or a shared cache may serve one visitor's page to
    /// another.
    pub vary_cookie: bool,
    /// The response carries the session cookie: it must not be stored by shared caches
    /// (`Cache-Control: private` or stronger), or the cookie itself is served to others
    /// (Flask's CVE-2023-30861).
    pub cache_private: bool,
    /// The request brought the session in its token parameter, or the page embeds a
    /// [token](Session::token): no cache may keep the response (`Cache-Control:
    /// no-store`).
    pub no_store: bool,
    /// The request brought the session in its token parameter, so the page's URL may hold
    /// it: the browser must not send that URL on as a `Referer` (`Referrer-Policy:
    /// no-referrer`, unless the application set a policy).
    pub no_referrer: bool,
}

impl Decision {
    pub(crate) fn untouched() -> Self {
        Self {
            cookie: CookieAction::Keep,
            chunks: Vec::new(),
            removals: Vec::new(),
            vary_cookie: false,
            cache_private: false,
            no_store: false,
            no_referrer: false,
        }
    }

    /// Adds the headers a session carried in a URL or a page needs.
    pub(crate) fn with_token_headers(mut self, brought_token: bool, token_issued: bool) -> Self {
        self.no_store |= brought_token || token_issued;
        self.no_referrer |= brought_token;
        self
    }

    pub(crate) fn accessed(cookie: CookieAction, removals: Vec<String>) -> Self {
        let sends = cookie != CookieAction::Keep || !removals.is_empty();
        Self {
            cookie,
            chunks: Vec::new(),
            removals,
            vary_cookie: true,
            cache_private: sends,
            no_store: false,
            no_referrer: false,
        }
    }

    /// Adds the `Set-Cookie`s of a split session's further pieces.
    pub(crate) fn with_chunks(mut self, chunks: Vec<String>) -> Self {
        self.cache_private |= !chunks.is_empty();
        self.chunks = chunks;
        self
    }

    /// The `Set-Cookie` header value of [`cookie`](Self::cookie), if any.
    #[must_use]
    pub fn set_cookie(&self) -> Option<&str> {
        match &self.cookie {
            CookieAction::Keep => None,
            CookieAction::Set(v) | CookieAction::Remove(v) => Some(v),
        }
    }

    /// Every `Set-Cookie` header value to send: [`set_cookie`](Self::set_cookie), then the
    /// [`chunks`](Self::chunks), then the [`removals`](Self::removals).
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.set_cookie()
            .into_iter()
            .chain(self.chunks.iter().map(String::as_str))
            .chain(self.removals.iter().map(String::as_str))
    }

    /// Every header the response needs, as `(name, value)` pairs with lowercase names:
    /// each `set-cookie`, `vary: Cookie`, `cache-control: private` (or `no-store`), and
    /// `referrer-policy: no-referrer`. An adapter that adds these cannot forget one. (If
    /// the application sets its own `Cache-Control`, keep whichever is stricter: `no-store`
    /// is stricter than `private`; keep its own `Referrer-Policy`.)
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let set_cookies = self.set_cookies().map(|v| ("set-cookie", v));
        let vary = self.vary_cookie.then_some(("vary", "Cookie"));
        let cache = if self.no_store {
            Some(("cache-control", "no-store"))
        } else {
            self.cache_private.then_some(("cache-control", "private"))
        };
        let referrer = self
            .no_referrer
            .then_some(("referrer-policy", "no-referrer"));
        set_cookies.chain(vary).chain(cache).chain(referrer)
    }
}
