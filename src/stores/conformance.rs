//! The conformance suite for [`SessionStore`] implementations (feature `store-testing`).
//!
//! One line runs every check against a store, each as its own `#[test]`:
//!
//! ```
//! # #[cfg(feature = "store-testing")] mod example {
//! cookie_session::store_conformance!(cookie_session::store::MemoryStore::new());
//! # }
//! ```
//!
//! The argument makes a fresh store (evaluated once per check, inside the future the check
//! runs in). A store that needs an async runtime passes its own `block_on` as a second
//! argument, for example `|future| tokio::runtime::Runtime::new().unwrap().block_on(future)`,
//! and a store made by an async constructor is written `async make_store()`:
//! `store_conformance!(async RedisStore::connect(URL), block_on)` (the constructor's future
//! must yield the store: unwrap it). Checks use random keys, so a shared backend (one
//! database for all checks) is fine, but one table or key prefix per check keeps the sweep
//! check's count exact.
//!
//! Each check is also a public async function that returns `Err(description)` on a
//! violation, so a test can show that a broken store fails it.
#![allow(
    clippy::missing_errors_doc,
    reason = "every check returns Err with a description of the violation it found"
)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use time::{Duration, OffsetDateTime};

use super::{SessionStore, StoreError, StoreKey, Version};

/// What a failed check says.
pub type Failure = String;

/// The checks, by name, as the macro runs them.
pub const CHECKS: [&str; 14] = [
    "create_then_load",
    "duplicate_create",
    "absent_and_expired_load_as_none",
    "save_compares_and_sets",
    "gone_is_never_recreated",
    "touch_never_shortens",
    "rename_moves_and_refuses_an_occupied_key",
    "delete_is_idempotent",
    "sweep_removes_only_expired_and_drains",
    "payloads_round_trip_exactly",
    "concurrent_writers_have_one_winner",
    "long_deadlines_are_kept_exactly",
    "debug_output_hides_data",
    "user_index_follows_its_records",
];

/// The suite's clock: the real time when the first check ran, to the second, then frozen.
/// Each check moves it forward explicitly. It starts at the real time because a backend
/// may also expire records natively on its own clock (Redis' `EXPIREAT`), which must not
/// remove a record the check still holds live.
fn t0() -> OffsetDateTime {
    static START: std::sync::OnceLock<OffsetDateTime> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    })
}

fn key() -> StoreKey {
    StoreKey(rand::random())
}

fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// Turns a store error into a failure of the check.
fn op<T>(what: &str, result: Result<T, StoreError>) -> Result<T, Failure> {
    result.map_err(|e| format!("{what} failed: {e} ({e:?})"))
}

pub use super::block_on;

/// A future of the suite, boxed so that several can run together.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls all futures concurrently until each is done; results in order.
async fn join_all<T>(futures: Vec<Boxed<'_, T>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// create → load returns the exact bytes, expiry and version 1.
pub async fn create_then_load<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    let data = br#"{"user_id":42,"cart":["SKU-1"]}"#;
    let version = op(
        "create",
        store.create(&k, data, now + minutes(20), now).await,
    )?;
    ensure!(
        version == Version::FIRST,
        "create returned {version:?}, not version 1"
    );
    let record =
        op("load", store.load(&k, now).await)?.ok_or("a created record loads as absent")?;
    ensure!(
        record.data == data,
        "load returned other bytes than were created"
    );
    ensure!(
        record.expires == now + minutes(20),
        "expiry changed to {}",
        record.expires
    );
    ensure!(
        record.version == Version::FIRST,
        "version {:?} after create",
        record.version
    );
    Ok(())
}

/// A live duplicate `create` is `Duplicate` and leaves the original; an expired one is
/// replaced.
pub async fn duplicate_create<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    op(
        "create",
        store.create(&k, b"first", now + minutes(20), now).await,
    )?;
    let again = store.create(&k, b"second", now + minutes(30), now).await;
    ensure!(
        matches!(again, Err(StoreError::Duplicate)),
        "a live duplicate create gave {again:?}"
    );
    let record = op("load", store.load(&k, now).await)?;
    ensure!(
        record.is_some_and(|r| r.data == b"first" && r.expires == now + minutes(20)),
        "a refused duplicate create changed the original"
    );
    // At its expiry second the record is dead, and a new one may take the key.
    let later = now + minutes(20);
    let replaced = store.create(&k, b"third", later + minutes(20), later).await;
    ensure!(
        matches!(replaced, Ok(Version::FIRST)),
        "create over an expired record gave {replaced:?}"
    );
    let record = op("load", store.load(&k, later).await)?;
    ensure!(
        record.is_some_and(|r| r.data == b"third"),
        "the replacing record does not load"
    );
    Ok(())
}

/// Unknown and expired keys load as `None`, before any sweep, including at `expires == now`.
pub async fn absent_and_expired_load_as_none<S: SessionStore>(store: S) -> Result<(), Failure> {
    let now = t0();
    ensure!(
        op("load", store.load(&key(), now).await)?.is_none(),
        "an unknown key loads as a record"
    );
    let k = key();
    op(
        "create",
        store.create(&k, b"x", now + minutes(1), now).await,
    )?;
    let before = now + minutes(1) - Duration::SECOND;
    ensure!(
        op("load", store.load(&k, before).await)?.is_some(),
        "a record is absent one second before its expiry"
    );
    ensure!(
        op("load", store.load(&k, now + minutes(1)).await)?.is_none(),
        "a record loads at its expiry second (expires == now is expired)"
    );
    ensure!(
        op("load", store.load(&k, now + minutes(90)).await)?.is_none(),
        "an expired record loads before any sweep"
    );
    Ok(())
}

/// A save with the current version bumps it; a stale one is `Conflict` and changes nothing.
pub async fn save_compares_and_sets<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    let v1 = op(
        "create",
        store.create(&k, b"v1", now + minutes(20), now).await,
    )?;
    let v2 = op(
        "save",
        store.save(&k, v1, b"v2", now + minutes(25), now).await,
    )?;
    ensure!(v2 > v1, "save returned {v2:?} after {v1:?}");
    let stale = store.save(&k, v1, b"stale", now + minutes(90), now).await;
    ensure!(
        matches!(stale, Err(StoreError::Conflict)),
        "a save with a stale version gave {stale:?}"
    );
    let record = op("load", store.load(&k, now).await)?.ok_or("the record vanished")?;
    ensure!(
        record.data == b"v2" && record.version == v2 && record.expires == now + minutes(25),
        "a conflicting save changed the record"
    );
    let v3 = op(
        "save",
        store.save(&k, v2, b"v3", now + minutes(25), now).await,
    )?;
    ensure!(v3 > v2, "versions do not increase: {v3:?} after {v2:?}");
    Ok(())
}

/// save, touch and rename on a deleted or expired record are `Gone` and recreate nothing.
pub async fn gone_is_never_recreated<S: SessionStore>(store: S) -> Result<(), Failure> {
    let now = t0();
    let deleted = key();
    let v = op(
        "create",
        store.create(&deleted, b"x", now + minutes(20), now).await,
    )?;
    op("delete", store.delete(&deleted, now).await)?;
    let expired = key();
    let w = op(
        "create",
        store.create(&expired, b"y", now + minutes(1), now).await,
    )?;
    let later = now + minutes(2);
    for (k, version, at, what) in [(deleted, v, now, "deleted"), (expired, w, later, "expired")] {
        let saved = store.save(&k, version, b"z", at + minutes(20), at).await;
        ensure!(
            matches!(saved, Err(StoreError::Gone)),
            "save on a {what} record gave {saved:?}"
        );
        let touched = store.touch(&k, at + minutes(20), at).await;
        ensure!(
            matches!(touched, Err(StoreError::Gone)),
            "touch on a {what} record gave {touched:?}"
        );
        let target = key();
        let renamed = store.rename(&k, &target, at).await;
        ensure!(
            matches!(renamed, Err(StoreError::Gone)),
            "rename of a {what} record gave {renamed:?}"
        );
        ensure!(
            op("load", store.load(&k, at).await)?.is_none(),
            "a {what} record came back after save/touch"
        );
        ensure!(
            op("load", store.load(&target, at).await)?.is_none(),
            "rename of a {what} record created the target"
        );
    }
    Ok(())
}

/// touch extends and never shortens the expiry, and keeps the version.
pub async fn touch_never_shortens<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    let v = op(
        "create",
        store.create(&k, b"x", now + minutes(20), now).await,
    )?;
    op("touch", store.touch(&k, now + minutes(5), now).await)?;
    let record = op("load", store.load(&k, now).await)?.ok_or("the record vanished")?;
    ensure!(
        record.expires == now + minutes(20),
        "touch shortened the expiry to {}",
        record.expires
    );
    op("touch", store.touch(&k, now + minutes(40), now).await)?;
    let record = op("load", store.load(&k, now).await)?.ok_or("the record vanished")?;
    ensure!(
        record.expires == now + minutes(40),
        "touch did not extend the expiry"
    );
    ensure!(
        record.version == v,
        "touch changed the version to {:?}",
        record.version
    );
    ensure!(record.data == b"x", "touch changed the data");
    // A save after a touch still works with the same version.
    op(
        "save",
        store.save(&k, v, b"y", now + minutes(40), now).await,
    )?;
    Ok(())
}

/// rename moves data, expiry and version, frees the old key, refuses an occupied target.
pub async fn rename_moves_and_refuses_an_occupied_key<S: SessionStore>(
    store: S,
) -> Result<(), Failure> {
    let (from, to, now) = (key(), key(), t0());
    let v1 = op(
        "create",
        store.create(&from, b"data", now + minutes(20), now).await,
    )?;
    let v2 = op(
        "save",
        store
            .save(&from, v1, b"data2", now + minutes(20), now)
            .await,
    )?;
    op("rename", store.rename(&from, &to, now).await)?;
    ensure!(
        op("load", store.load(&from, now).await)?.is_none(),
        "the old key still loads after rename"
    );
    let moved = op("load", store.load(&to, now).await)?.ok_or("the renamed record is absent")?;
    ensure!(
        moved.data == b"data2" && moved.version == v2 && moved.expires == now + minutes(20),
        "rename did not move data, version and expiry"
    );
    let occupied = key();
    op(
        "create",
        store
            .create(&occupied, b"other", now + minutes(20), now)
            .await,
    )?;
    let refused = store.rename(&to, &occupied, now).await;
    ensure!(
        matches!(refused, Err(StoreError::Duplicate)),
        "rename onto a live record gave {refused:?}"
    );
    let (a, b) = (
        op("load", store.load(&to, now).await)?,
        op("load", store.load(&occupied, now).await)?,
    );
    ensure!(
        a.is_some_and(|r| r.data == b"data2") && b.is_some_and(|r| r.data == b"other"),
        "a refused rename changed a record"
    );
    Ok(())
}

/// delete is idempotent and reports whether a live record was there.
pub async fn delete_is_idempotent<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    op(
        "create",
        store.create(&k, b"x", now + minutes(20), now).await,
    )?;
    ensure!(
        op("delete", store.delete(&k, now).await)?,
        "delete of a live record said false"
    );
    ensure!(
        !op("delete", store.delete(&k, now).await)?,
        "a second delete said true"
    );
    ensure!(
        !op("delete", store.delete(&key(), now).await)?,
        "delete of nothing said true"
    );
    ensure!(
        op("load", store.load(&k, now).await)?.is_none(),
        "a deleted record loads"
    );
    Ok(())
}

/// sweep removes only expired records, at most `max` a call, and drains when repeated.
pub async fn sweep_removes_only_expired_and_drains<S: SessionStore>(
    store: S,
) -> Result<(), Failure> {
    let now = t0();
    let live: Vec<StoreKey> = (0..3).map(|_| key()).collect();
    let dead: Vec<StoreKey> = (0..5).map(|_| key()).collect();
    for k in &live {
        op(
            "create",
            store.create(k, b"live", now + minutes(60), now).await,
        )?;
    }
    for k in &dead {
        op(
            "create",
            store.create(k, b"dead", now + minutes(1), now).await,
        )?;
    }
    let later = now + minutes(2);
    // Records of other checks may share the backend: count only what the sweep may remove.
    let mut removed = 0;
    let mut first = None;
    for _ in 0..10_000 {
        let n = op("sweep", store.sweep(later, 2).await)?;
        ensure!(n <= 2, "sweep(max = 2) removed {n}");
        first.get_or_insert(n);
        removed += n;
        if n < 2 {
            break;
        }
    }
    for k in &dead {
        let gone = op("load", store.load(k, later).await)?.is_none();
        ensure!(gone, "an expired record loads after sweeping");
    }
    for k in &live {
        let record = op("load", store.load(k, later).await)?;
        ensure!(record.is_some(), "sweep removed a live record");
    }
    // A store whose engine expires records itself may report 0; otherwise it drained ours.
    ensure!(
        removed == 0 || removed >= dead.len(),
        "sweeps removed {removed} of {} expired records and stopped",
        dead.len()
    );
    ensure!(
        op("sweep", store.sweep(later, 2).await)? == 0 || removed == 0,
        "a drained store still sweeps records"
    );
    Ok(())
}

/// Binary, Unicode and large payloads round-trip exactly; an oversized one is `TooLarge`
/// (or stored exactly, for a store without a limit that small).
pub async fn payloads_round_trip_exactly<S: SessionStore>(store: S) -> Result<(), Failure> {
    let now = t0();
    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let unicode = "caf\u{e9} \u{1f36a} \u{65e5}\u{672c} \"quoted\" \\ \u{0}"
        .as_bytes()
        .to_vec();
    let large: Vec<u8> = (0..32 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for (what, data) in [
        ("binary", &binary),
        ("Unicode", &unicode),
        ("32 KiB", &large),
        ("empty", &Vec::new()),
    ] {
        let k = key();
        op(
            "create",
            store.create(&k, data, now + minutes(20), now).await,
        )?;
        let record = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
        ensure!(
            &record.data == data,
            "the {what} payload did not round-trip"
        );
        let v = record.version;
        op(
            "save",
            store.save(&k, v, data, now + minutes(20), now).await,
        )?;
        let again = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
        ensure!(&again.data == data, "the {what} payload changed on save");
    }
    let huge = vec![b'x'; 16 << 20];
    let k = key();
    match store.create(&k, &huge, now + minutes(20), now).await {
        Err(StoreError::TooLarge { size, .. }) => {
            ensure!(size == huge.len(), "TooLarge reports {size} bytes");
            ensure!(
                op("load", store.load(&k, now).await)?.is_none(),
                "a refused oversized record was stored"
            );
        }
        Ok(_) => {
            let record = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
            ensure!(record.data == huge, "a 16 MiB payload did not round-trip");
        }
        Err(other) => return Err(format!("an oversized payload gave {other:?}, not TooLarge")),
    }
    Ok(())
}

/// Of concurrent creates of one key, and of concurrent saves on one version, exactly one
/// succeeds; the others are `Duplicate` / `Conflict`.
pub async fn concurrent_writers_have_one_winner<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    let creates: Vec<Boxed<'_, _>> = (0..8u8)
        .map(|i| -> Boxed<'_, _> {
            let (store, k) = (&store, k);
            Box::pin(async move { store.create(&k, &[i], now + minutes(20), now).await })
        })
        .collect();
    let results = join_all(creates).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    ensure!(
        wins == 1,
        "{wins} of 8 concurrent creates of one key succeeded"
    );
    ensure!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Duplicate))),
        "a losing create was not Duplicate: {results:?}"
    );
    let winner = results.iter().position(Result::is_ok).unwrap_or(0);
    let record = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
    ensure!(
        record.data == [u8::try_from(winner).unwrap_or(0)],
        "the record is not the winner's"
    );

    let v = record.version;
    let saves: Vec<Boxed<'_, _>> = (0..8u8)
        .map(|i| -> Boxed<'_, _> {
            let (store, k) = (&store, k);
            Box::pin(async move { store.save(&k, v, &[100 + i], now + minutes(20), now).await })
        })
        .collect();
    let results = join_all(saves).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    ensure!(
        wins == 1,
        "{wins} of 8 concurrent saves on one version succeeded"
    );
    ensure!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict))),
        "a losing save was not Conflict: {results:?}"
    );
    Ok(())
}

/// Expiries 400 days ahead (what browsers allow) and at odd seconds are kept exactly
/// (memcached, for one, reads relative times over 30 days as timestamps).
pub async fn long_deadlines_are_kept_exactly<S: SessionStore>(store: S) -> Result<(), Failure> {
    let now = t0();
    for ahead in [
        Duration::days(400),
        Duration::days(31),
        Duration::seconds(2_592_001),
    ] {
        let k = key();
        let expires = now + ahead + Duration::seconds(7);
        op("create", store.create(&k, b"x", expires, now).await)?;
        let record = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
        ensure!(
            record.expires == expires,
            "expiry {expires} came back as {}",
            record.expires
        );
        let before = expires - Duration::SECOND;
        ensure!(
            op("load", store.load(&k, before).await)?.is_some(),
            "record absent before its expiry"
        );
        ensure!(
            op("load", store.load(&k, expires).await)?.is_none(),
            "record present at its expiry"
        );
    }
    Ok(())
}

/// A record's `Debug` output shows no data (it is session data).
pub async fn debug_output_hides_data<S: SessionStore>(store: S) -> Result<(), Failure> {
    let (k, now) = (key(), t0());
    op(
        "create",
        store
            .create(&k, b"secret-session-value", now + minutes(20), now)
            .await,
    )?;
    let record = op("load", store.load(&k, now).await)?.ok_or("record absent")?;
    let shown = format!("{record:?}");
    ensure!(
        !shown.contains("secret-session-value"),
        "Debug shows the data: {shown}"
    );
    Ok(())
}

/// A store with a user index (optional: a store that answers `Unsupported` passes): links
/// follow their records through save, touch and rename and end with them (delete,
/// expiry); "log out everywhere" deletes exactly the user's other records.
pub async fn user_index_follows_its_records<S: SessionStore>(store: S) -> Result<(), Failure> {
    let now = t0();
    let (ada, bob) = (
        format!("ada-{:x}", rand::random::<u64>()),
        format!("bob-{:x}", rand::random::<u64>()),
    );
    let [a1, a2, a3, b1] = [key(), key(), key(), key()];
    for k in [&a1, &a2, &a3, &b1] {
        op(
            "create",
            store.create(k, b"{}", now + minutes(60), now).await,
        )?;
    }
    match store.set_user(&a1, &ada, now).await {
        Err(StoreError::Unsupported) => return Ok(()),
        other => op("set_user", other)?,
    }
    op("set_user", store.set_user(&a2, &ada, now).await)?;
    op("set_user", store.set_user(&b1, &bob, now).await)?;
    let sorted = |mut keys: Vec<StoreKey>| {
        keys.sort();
        keys
    };
    ensure!(
        sorted(op("sessions_of", store.sessions_of(&ada, now).await)?) == sorted(vec![a1, a2]),
        "sessions_of does not list exactly the user's two records"
    );
    ensure!(
        matches!(
            store.set_user(&key(), &ada, now).await,
            Err(StoreError::Gone)
        ),
        "set_user on an absent record is not Gone"
    );
    ensure!(
        matches!(
            store.set_user(&a3, "", now).await,
            Err(StoreError::InvalidUser)
        ),
        "an empty user key is accepted"
    );
    // Save and touch keep the link; rename moves it.
    op(
        "save",
        store
            .save(&a1, Version::FIRST, b"{\"x\":1}", now + minutes(60), now)
            .await,
    )?;
    op("touch", store.touch(&a1, now + minutes(90), now).await)?;
    let moved = key();
    op("rename", store.rename(&a2, &moved, now).await)?;
    ensure!(
        sorted(op("sessions_of", store.sessions_of(&ada, now).await)?) == sorted(vec![a1, moved]),
        "the index did not follow save, touch and rename"
    );
    // Expired and deleted records leave it.
    let short = key();
    op(
        "create",
        store.create(&short, b"{}", now + minutes(1), now).await,
    )?;
    op("set_user", store.set_user(&short, &ada, now).await)?;
    let later = now + minutes(2);
    ensure!(
        !op("sessions_of", store.sessions_of(&ada, later).await)?.contains(&short),
        "an expired record is still listed"
    );
    op("sweep", store.sweep(later, 1000).await)?;
    op("delete", store.delete(&moved, later).await)?;
    ensure!(
        op("sessions_of", store.sessions_of(&ada, later).await)? == vec![a1],
        "a deleted record is still listed"
    );
    // A record re-created under a key does not inherit the old link.
    op(
        "create",
        store
            .create(&moved, b"{}", later + minutes(60), later)
            .await,
    )?;
    ensure!(
        op("sessions_of", store.sessions_of(&ada, later).await)? == vec![a1],
        "a new record under a deleted one's key inherited its user"
    );
    // Log out everywhere but here.
    let here = key();
    op(
        "create",
        store.create(&here, b"{}", later + minutes(60), later).await,
    )?;
    op("set_user", store.set_user(&here, &ada, later).await)?;
    let gone = op(
        "delete_sessions_of",
        store.delete_sessions_of(&ada, Some(&here), later).await,
    )?;
    ensure!(
        gone == vec![a1],
        "log out everywhere deleted {} records, not the other one",
        gone.len()
    );
    ensure!(
        op("load", store.load(&a1, later).await)?.is_none(),
        "a record logged out everywhere still loads"
    );
    ensure!(
        op("load", store.load(&here, later).await)?.is_some(),
        "the excepted record was deleted"
    );
    ensure!(
        op("sessions_of", store.sessions_of(&bob, later).await)? == vec![b1],
        "another user's records were touched"
    );
    let gone = op(
        "delete_sessions_of",
        store.delete_sessions_of(&ada, None, later).await,
    )?;
    ensure!(
        gone == vec![here],
        "log out everywhere without an exception missed one"
    );
    ensure!(
        op("sessions_of", store.sessions_of(&ada, later).await)?.is_empty(),
        "the user still has records"
    );
    Ok(())
}

/// Runs every check against stores made by `$make`, as one `#[test]` each (feature
/// `store-testing`). See [`store::conformance`](crate::store::conformance).
#[macro_export]
macro_rules! store_conformance {
    (async $make:expr, $block_on:expr) => {
        $crate::store_conformance!(@all ($make).await, $block_on);
    };
    ($make:expr) => {
        $crate::store_conformance!($make, $crate::store::conformance::block_on);
    };
    ($make:expr, $block_on:expr) => {
        $crate::store_conformance!(@all $make, $block_on);
    };
    (@all $make:expr, $block_on:expr) => {
        $crate::store_conformance!(@checks $make, $block_on;
            create_then_load, duplicate_create, absent_and_expired_load_as_none,
            save_compares_and_sets, gone_is_never_recreated, touch_never_shortens,
            rename_moves_and_refuses_an_occupied_key, delete_is_idempotent,
            sweep_removes_only_expired_and_drains, payloads_round_trip_exactly,
            concurrent_writers_have_one_winner, long_deadlines_are_kept_exactly,
            debug_output_hides_data, user_index_follows_its_records);
    };
    (@checks $make:expr, $block_on:expr; $($check:ident),+) => {
        $(
            #[test]
            fn $check() {
                // The store is made inside the future: a store that needs the runtime
                // `block_on` provides (or an async constructor) gets it.
                let result = ($block_on)(async { $crate::store::conformance::$check($make).await });
                if let Err(failure) = result {
                    panic!("store conformance: {}: {failure}", stringify!($check));
                }
            }
        )+
    };
}
