//! Beaker's server-side id cookie (`BeakerIds`, feature `beaker`): values Beaker 1.14.1's
//! `SignedCookie` wrote (made with `beaker.session.SignedCookie(secret)`, secrets with
//! non-ASCII text included) read here and written identically, and every neighbour of a
//! valid value refused: each truncation and extension, each changed character, quotes,
//! case, another secret, a signed value in plain mode and a plain one in signed mode.
#![cfg(feature = "beaker")]
#![allow(clippy::unwrap_used)]

use cookie_session::beaker::BeakerIds;
use cookie_session::{DecodeError, SessionId};

/// (secret, id, the cookie value Beaker wrote).
const BEAKER: [(&str, &str, &str); 3] = [
    (
        "a secret shared by both applications",
        "0123456789abcdef0123456789abcdef",
        "f3beffc0e4e265a3c7f64135f55d0838f5849c380123456789abcdef0123456789abcdef",
    ),
    (
        "ключ ✓",
        "fedcba9876543210fedcba9876543210",
        "eae2cc17cde123760301f5bc182ca0199f9ffb19fedcba9876543210fedcba9876543210",
    ),
    (
        "s",
        "00000000000000000000000000000000",
        "d1414e3c98531cac54e458a645f3a7e45499979200000000000000000000000000000000",
    ),
];

#[test]
fn beakers_signed_ids_read_and_write_identically() {
    for (secret, id, value) in BEAKER {
        let ids = BeakerIds::signed(secret).unwrap();
        let parsed: SessionId = id.parse().unwrap();
        assert_eq!(ids.decode(value).unwrap(), parsed);
        assert_eq!(ids.encode(parsed), value);
        // Beaker strips quotes around the value; so does this.
        assert_eq!(ids.decode(&format!("\"{value}\"")).unwrap(), parsed);
    }
}

#[test]
fn every_neighbour_of_a_signed_id_is_refused() {
    let (secret, _, value) = BEAKER[0];
    let ids = BeakerIds::signed(secret).unwrap();
    for end in 0..value.len() {
        assert!(ids.decode(&value[..end]).is_err(), "truncated to {end}");
    }
    assert!(ids.decode(&format!("{value}0")).is_err());
    for at in 0..value.len() {
        for with in [b'0', b'f', b'A', b'g', b' '] {
            let mut changed = value.as_bytes().to_vec();
            if changed[at] == with {
                continue;
            }
            changed[at] = with;
            let changed = String::from_utf8(changed).unwrap();
            let error = ids.decode(&changed).unwrap_err();
            // A changed signature or id never verifies.
            assert!(
                matches!(error, DecodeError::Invalid | DecodeError::Malformed),
                "{changed}: {error:?}"
            );
        }
    }
    assert!(matches!(
        BeakerIds::signed("another secret").unwrap().decode(value),
        Err(DecodeError::Invalid)
    ));
    // A correctly signed id that Beaker would not write (uppercase): refused.
    let upper = format!("{}{}", &value[..40], value[40..].to_uppercase());
    assert!(ids.decode(&upper).is_err());
    // The plain id, without its signature.
    assert!(ids.decode(&value[40..]).is_err());
}

#[test]
fn plain_ids_are_32_lowercase_hex_digits() {
    let ids = BeakerIds::plain();
    let id = SessionId::generate();
    let value = ids.encode(id);
    assert_eq!(value, id.to_string());
    assert_eq!(ids.decode(&value).unwrap(), id);
    for bad in [
        "",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef-123456789abcdef",
        BEAKER[0].2, // a signed value is not a plain id
    ] {
        assert!(
            matches!(ids.decode(bad), Err(DecodeError::Malformed)),
            "{bad}"
        );
    }
    assert!(BeakerIds::signed("").is_err());
}

/// Through the session layer, on a store keyed as Beaker's are (the memory store holds any
/// key): the cookie a new session gets is Beaker's signed id, the store key is that raw id,
/// a login moves it to a new id, a forged id reads nothing, and a logout removes both.
#[test]
fn the_session_layer_speaks_beaker_ids() {
    use std::sync::Arc;

    use cookie_session::store::{DynStore, MemoryStore, SessionStore as _, StoreKey, block_on};
    use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
    use time::OffsetDateTime;

    let (secret, _, _) = BEAKER[0];
    let ids = BeakerIds::signed(secret).unwrap();
    let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate().unwrap()))
        .with_name("beaker.session.id")
        .with_beaker_ids(ids.clone())
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let now = OffsetDateTime::now_utc();
    let request = |cookie: Option<&str>| {
        let header = cookie.map(|c| format!("beaker.session.id={c}"));
        let session = sessions.load_server_side(header.as_deref().map(str::as_bytes), now);
        let dyn_store: Arc<dyn DynStore> = store.clone();
        let handle = SessionHandle::server_side(session, dyn_store);
        block_on(handle.load()).unwrap();
        handle
    };
    let cookie_of = |decision: cookie_session::Decision| {
        let set = decision.set_cookie().unwrap().to_owned();
        let pair = set.split(';').next().unwrap().to_owned();
        pair.strip_prefix("beaker.session.id=").unwrap().to_owned()
    };
    let raw = |id: SessionId| {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&id.to_bytes());
        StoreKey::from_bytes(key)
    };

    let handle = request(None);
    handle.insert("user", "ada").unwrap();
    let cookie = cookie_of(block_on(handle.commit(now)).unwrap());
    assert_eq!(cookie.len(), 72);
    let id = ids.decode(&cookie).unwrap();
    assert!(block_on(store.load(&raw(id), now)).unwrap().is_some());

    let handle = request(Some(&cookie));
    assert_eq!(
        handle.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
    handle.regenerate().unwrap();
    let moved = cookie_of(block_on(handle.commit(now)).unwrap());
    let new_id = ids.decode(&moved).unwrap();
    assert_ne!(new_id, id);
    assert!(block_on(store.load(&raw(id), now)).unwrap().is_none());
    assert!(block_on(store.load(&raw(new_id), now)).unwrap().is_some());

    // The old id, and a forged signature on the new one, read nothing.
    for stale in [cookie.clone(), format!("{}{}", &cookie[..40], &moved[40..])] {
        let handle = request(Some(&stale));
        assert_eq!(handle.get::<String>("user").unwrap(), None, "{stale}");
    }

    let handle = request(Some(&moved));
    handle.delete().unwrap();
    let decision = block_on(handle.commit(now)).unwrap();
    assert!(decision.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(block_on(store.load(&raw(new_id), now)).unwrap().is_none());
}
