//! What the server part keeps with a request's session, in the session's opaque slot: the
//! record it was read from (or written to), the user to link at commit, and the last store
//! key computed.

use std::cell::Cell;

use time::OffsetDateTime;

use crate::session::Session;
use crate::stores::{StoreKey, Version};
use crate::wire::key::{KeyId, Prepared};
use crate::wire::stamp::SessionId;

/// The record a server-side session is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored {
    pub(crate) key: StoreKey,
    pub(crate) version: Version,
    pub(crate) expires: OffsetDateTime,
    /// The record was read as plain JSON by a sealed store during a sealing migration: the
    /// commit rewrites it sealed.
    pub(crate) unsealed: bool,
}

/// A store key with what it was computed from.
#[derive(Clone, Copy)]
struct KeyedId {
    key_id: KeyId,
    session_id: SessionId,
    store_key: StoreKey,
}

#[derive(Default)]
pub(crate) struct Backing {
    pub(crate) record: Option<Stored>,
    /// A user to link the record to when it is next written (`attach_user`).
    pub(crate) user: Option<String>,
    /// A request asks for its store key several times (load, attach, commit), and each is
    /// an HMAC.
    key_cache: Cell<Option<KeyedId>>,
}

/// The session's server-side state, if it has any yet.
pub(crate) fn backing(session: &Session) -> Option<&Backing> {
    session.server.as_deref()?.downcast_ref()
}

/// The session's server-side state, created on first use.
pub(crate) fn backing_mut(session: &mut Session) -> &mut Backing {
    let slot = &mut session.server;
    if !slot.as_ref().is_some_and(|s| s.is::<Backing>()) {
        *slot = Some(Box::new(Backing::default()));
    }
    match slot.as_mut().and_then(|s| s.downcast_mut()) {
        Some(backing) => backing,
        None => unreachable!("the slot was just given a Backing"),
    }
}

/// The record the session is bound to.
pub(crate) fn record(session: &Session) -> Option<Stored> {
    backing(session)?.record
}

/// `key.store_key(id)`, computed once per request for each (key, id) it is asked for.
pub(crate) fn keyed(session: &Session, key: &Prepared, id: SessionId) -> StoreKey {
    let cache = backing(session).map(|b| &b.key_cache);
    match cache.and_then(Cell::get) {
        Some(cached) if cached.key_id == key.id && cached.session_id == id => cached.store_key,
        _ => {
            let store_key = StoreKey::from_bytes(key.store_key(id));
            if let Some(cache) = cache {
                cache.set(Some(KeyedId {
                    key_id: key.id,
                    session_id: id,
                    store_key,
                }));
            }
            store_key
        }
    }
}
