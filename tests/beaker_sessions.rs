//! Migrating from Beaker / TurboGears: sessions read real Beaker cookies (frozen vectors from
//! Beaker 1.14.1) through the same `Session` API, and write native or Beaker cookies.
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use common::{Browser, T0, at, is_keep, is_remove, is_set, key};
use cookie_session::beaker::{BeakerCipher, BeakerFormat, BeakerMigration};
use cookie_session::{KeyRing, LoadOutcome, Mode, SessionConfig, SessionId, Sessions};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/beaker.json")).unwrap()
}

fn vector(name: &str) -> Value {
    common::named(&vectors(), name)
}

fn sessions(migration: BeakerMigration, cipher: Option<BeakerCipher>) -> Sessions {
    let file = vectors();
    let validate = file["validate_key"].as_str().unwrap();
    let format = match cipher {
        None => BeakerFormat::signed(validate).unwrap(),
        Some(c) => {
            BeakerFormat::encrypted(validate, file["encrypt_key"].as_str().unwrap(), c).unwrap()
        }
    };
    SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .with_beaker(format.with_timeout(Duration::from_secs(3600)), migration)
        .build()
        .unwrap()
}

/// A browser holding the Beaker cookie of `name`, at the vector's time.
fn beaker_browser(name: &str) -> (Browser, i64, Value) {
    let v = vector(name);
    let now = v["now"].as_f64().unwrap() as i64;
    (
        Browser {
            cookie: Some(format!("myproject={}", v["value"].as_str().unwrap())),
        },
        now,
        v,
    )
}

#[test]
fn a_beaker_session_reads_like_any_other_with_internal_keys_hidden() {
    for (name, cipher) in [
        ("signed-simple", None),
        ("gcm-simple", Some(BeakerCipher::Gcm)),
        ("ctr-simple", Some(BeakerCipher::Ctr)),
    ] {
        let sessions = sessions(BeakerMigration::KeepBeaker, cipher);
        let (mut browser, now, v) = beaker_browser(name);
        browser.request(&sessions, now, |s| {
            assert_eq!(s.outcome(), LoadOutcome::LoadedBeaker, "{name}");
            assert!(
                s.keys().all(|k| !k.starts_with('_')),
                "{name}: internal keys are hidden"
            );
            assert_eq!(s.len(), v["data"].as_object().unwrap().len());
            let id: SessionId = v["internal"]["_id"].as_str().unwrap().parse().unwrap();
            assert_eq!(s.id(), Some(id), "the Beaker _id is the session id");
            for (k, expected) in v["data"].as_object().unwrap() {
                assert_eq!(&s.get::<Value>(k).unwrap().unwrap(), expected);
            }
        });
    }
}

#[test]
fn upgrade_to_native_re_issues_every_beaker_session_on_its_next_response() {
    let sessions = sessions(BeakerMigration::UpgradeToNative, None);
    let (mut browser, now, v) = beaker_browser("signed-simple");
    let id: SessionId = v["internal"]["_id"].as_str().unwrap().parse().unwrap();
    // Even a read-only request upgrades (touch policy OnChange notwithstanding).
    let d = browser.request(&sessions, now, |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"))
    });
    assert!(is_set(&d));
    // Now a native cookie: same data, same session id, and reads send nothing.
    let d = browser.request(&sessions, now + 1, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Loaded);
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"));
        assert_eq!(s.id(), Some(id));
    });
    assert!(is_keep(&d));
}

#[test]
fn keep_beaker_writes_beaker_cookies_that_keep_beakers_internal_keys() {
    let sessions = sessions(BeakerMigration::KeepBeaker, Some(BeakerCipher::Gcm));
    let (mut browser, now, v) = beaker_browser("gcm-simple");
    // Read-only: nothing to send (our touch policy, not Beaker's touch-on-every-read).
    assert!(is_keep(
        &browser.request(&sessions, now, |s| assert_eq!(s.len(), 1))
    ));
    let d = browser.request(&sessions, now + 5, |s| {
        s.insert("cart", &["SKU-1"]).unwrap()
    });
    assert!(is_set(&d));
    // What we wrote is a Beaker cookie with the same _id and _creation_time, new access time.
    let value = browser
        .cookie
        .as_ref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let file = vectors();
    let format = BeakerFormat::encrypted(
        file["validate_key"].as_str().unwrap(),
        file["encrypt_key"].as_str().unwrap(),
        BeakerCipher::Gcm,
    )
    .unwrap();
    let cookie = format.decode(&value, at(now + 5)).unwrap();
    assert_eq!(cookie.id, v["internal"]["_id"].as_str().unwrap());
    assert_eq!(
        cookie.creation_time,
        v["internal"]["_creation_time"].as_f64().unwrap()
    );
    assert_eq!(cookie.accessed_time, (now + 5) as f64);
    assert_eq!(cookie.data["user"], "bob");
    assert_eq!(cookie.data["cart"], serde_json::json!(["SKU-1"]));
}

#[test]
fn keep_beaker_converts_native_cookies_back_and_new_sessions_are_beaker() {
    let native = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .build()
        .unwrap();
    let mut browser = Browser::default();
    browser.request(&native, T0, |s| s.insert("user", "dave").unwrap());
    let sessions = sessions(BeakerMigration::KeepBeaker, None);
    let d = browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Loaded)
    });
    assert!(is_set(&d), "a native cookie is re-issued as Beaker");
    browser.request(&sessions, T0 + 2, |s| {
        assert_eq!(s.outcome(), LoadOutcome::LoadedBeaker);
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("dave"));
    });
    let mut fresh = Browser::default();
    fresh.request(&sessions, T0, |s| s.insert("user", "erin").unwrap());
    fresh.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.outcome(), LoadOutcome::LoadedBeaker)
    });
}

#[test]
fn tampered_expired_and_unconfigured_beaker_cookies_are_removed() {
    let (mut tampered, now, _) = beaker_browser("signed-tampered");
    let keep = sessions(BeakerMigration::KeepBeaker, None);
    let d = tampered.request(&keep, now, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Invalid)
    });
    assert!(is_remove(&d));

    let (mut old, now, _) = beaker_browser("signed-simple");
    let d = old.request(&keep, now + 3601, |s| {
        assert_eq!(
            s.outcome(),
            LoadOutcome::Expired(cookie_session::Deadline::Idle)
        );
    });
    assert!(is_remove(&d));

    let plain = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .build()
        .unwrap();
    let (mut browser, now, _) = beaker_browser("signed-simple");
    let d = browser.request(&plain, now, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Invalid)
    });
    assert!(
        is_remove(&d),
        "without with_beaker, a Beaker cookie is just invalid"
    );
}
