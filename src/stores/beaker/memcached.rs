//! Beaker's `ext:memcached` backend (`beaker.ext.memcached`, with python-memcached): the
//! session value of id `ID` is the item `ID_session`, holding the session's text as
//! python-memcached stores a `str` (UTF-8, client flags 16), with no expiration of its own
//! (Beaker passes none; this side gives `timeout + 120` s). Beaker takes no lock; this side
//! compares the bytes it read and writes with memcached's CAS (`cas`, `add`, and the meta
//! delete `md ... C<cas>` of memcached 1.6), so nothing written in between is lost.

use std::time::Duration;

use super::{Backend, BeakerStore, Found};
use crate::legacy::beaker::BeakerStored;
use crate::stores::memcached::{Connection, RawItem, Reply};
use crate::stores::{BoxFuture, MemcachedStore, StoreError};

/// python-memcached's flag for a `str` value.
const TEXT: u32 = 16;
/// The largest item read: a Beaker value of the largest session this store writes.
const LIMIT: usize = 4 << 20;
/// memcached reads an expiration over 30 days as a UNIX time.
const MAX_RELATIVE: u64 = 30 * 24 * 3600;

struct Memcached {
    client: MemcachedStore,
}

impl std::fmt::Debug for Memcached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ext:memcached")
    }
}

impl BeakerStore {
    /// Sessions in the memcached a Beaker application with `session.type = ext:memcached`
    /// and `session.url = address` uses (python-memcached's client; memcached 1.6 or
    /// later), in `value`'s format, expiring after `timeout` (`session.timeout`) without
    /// access. Connects on first use.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cookie_session::beaker::{BeakerSerializer, BeakerStored};
    /// use cookie_session::store::BeakerStore;
    /// let store = BeakerStore::memcached(
    ///     "127.0.0.1:11211",
    ///     BeakerStored::new(BeakerSerializer::Pickle),
    ///     Duration::from_secs(1200),
    /// );
    /// ```
    #[must_use]
    pub fn memcached(address: &str, value: BeakerStored, timeout: Duration) -> Self {
        let backend = Memcached {
            client: MemcachedStore::new(address),
        };
        Self::with_backend(std::sync::Arc::new(backend), value, timeout)
    }
}

/// Beaker's key for the session value of `id` (`namespace + '_' + key`).
fn key(id: &str) -> String {
    format!("{id}_session")
}

fn exptime(keep: Duration) -> u32 {
    u32::try_from(keep.as_secs().clamp(1, MAX_RELATIVE)).unwrap_or(1)
}

/// The value in an item: python-memcached's `str` or `bytes`; anything else (a pickled
/// object, an int) is unreadable here.
fn found(item: &RawItem) -> Found {
    let value = match item.flags {
        TEXT | 0 => item.value.clone(),
        _ => Vec::new(),
    };
    Found {
        value,
        raw: item.value.clone(),
    }
}

/// The item under `key` if its bytes are `expected` (`Ok(None)` inside: absent, as
/// expected); `Err(())` if it differs.
async fn compare(
    c: &mut Connection,
    key: &str,
    expected: Option<&[u8]>,
) -> Result<Result<Option<RawItem>, ()>, StoreError> {
    let item = c.gets_raw(key, LIMIT).await?;
    let same = item.as_ref().map(|i| i.value.as_slice()) == expected;
    Ok(if same { Ok(item) } else { Err(()) })
}

/// Writes `value` where `current` was read: `cas` over it, or `add` where nothing was.
async fn put(
    c: &mut Connection,
    key: &str,
    current: Option<&RawItem>,
    value: &[u8],
    keep: Duration,
) -> Result<bool, StoreError> {
    let reply = match current {
        Some(item) => {
            c.store_flagged("cas", key, TEXT, value, exptime(keep), Some(item.cas))
                .await?
        }
        None => {
            c.store_flagged("add", key, TEXT, value, exptime(keep), None)
                .await?
        }
    };
    Ok(reply == Reply::Stored)
}

impl Backend for Memcached {
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Found>, StoreError>> {
        Box::pin(async move {
            let key = &key(id);
            self.client
                .with(move |mut c| async move {
                    let r = c.gets_raw(key, LIMIT).await;
                    (c, r.map(|item| item.as_ref().map(found)))
                })
                .await
        })
    }

    fn swap<'a>(
        &'a self,
        id: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let key = &key(id);
            self.client
                .with(move |mut c| async move {
                    let r = async {
                        let Ok(current) = compare(&mut c, key, expected).await? else {
                            return Ok(false);
                        };
                        match (new, current) {
                            (Some(value), current) => {
                                put(&mut c, key, current.as_ref(), value, keep).await
                            }
                            (None, Some(item)) => c.delete_if(key, item.cas).await,
                            (None, None) => Ok(true),
                        }
                    }
                    .await;
                    (c, r)
                })
                .await
        })
    }

    fn relocate<'a>(
        &'a self,
        from: &'a str,
        from_raw: &'a [u8],
        to: &'a str,
        to_raw: Option<&'a [u8]>,
        value: &'a [u8],
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let (from, to) = (&key(from), &key(to));
            self.client
                .with(move |mut c| async move {
                    let r = async {
                        // The copy first, then the original, only if unchanged since read;
                        // if it changed, the copy is taken back and the caller reads again.
                        let Ok(target) = compare(&mut c, to, to_raw).await? else {
                            return Ok(false);
                        };
                        if !put(&mut c, to, target.as_ref(), value, keep).await? {
                            return Ok(false);
                        }
                        let removed = match compare(&mut c, from, Some(from_raw)).await? {
                            Ok(Some(item)) => c.delete_if(from, item.cas).await?,
                            _ => false,
                        };
                        if !removed && let Ok(Some(copy)) = compare(&mut c, to, Some(value)).await?
                        {
                            c.delete_if(to, copy.cas).await?;
                        }
                        Ok(removed)
                    }
                    .await;
                    (c, r)
                })
                .await
        })
    }
}
