//! Migrating from Beaker / TurboGears: sessions read real Beaker cookies (frozen vectors from
//! Beaker 1.14.1) through the same `Session` API, and write native or Beaker cookies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::Duration;

use common::{Browser, T0, at, is_keep, is_remove, is_set, key};
use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerFormat, BeakerMigration};
use cookie_session::{
    Deadline, DecodeError, KeyRing, LoadOutcome, Mode, SessionConfig, SessionId, Sessions,
};
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

// ---- Security review (issue 11): deadlines, where the cookie lives, cookies that do not fit.

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// A Beaker session signed with the vectors' key, created and last accessed at the given
/// times, stored under `_domain`/`_path`.
fn beaker_value(created: i64, accessed: i64, domain: Option<&str>, path: &str) -> String {
    let mut data = serde_json::Map::new();
    data.insert("user".into(), "alice".into());
    beaker_value_with(data, created, accessed, domain, path)
}

fn beaker_value_with(
    data: serde_json::Map<String, Value>,
    created: i64,
    accessed: i64,
    domain: Option<&str>,
    path: &str,
) -> String {
    let mut cookie = BeakerCookie::new(data, at(created));
    cookie.accessed_time = accessed as f64;
    cookie.domain = domain.map(str::to_owned);
    cookie.path = path.to_owned();
    signed_format().encode("myproject", &cookie).unwrap()
}

fn signed_format() -> BeakerFormat {
    BeakerFormat::signed(vectors()["validate_key"].as_str().unwrap()).unwrap()
}

/// The crate's defaults: 20-minute idle timeout, 14-day lifetime; no Beaker timeout.
fn default_deadlines(migration: BeakerMigration) -> Sessions {
    SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .with_beaker(signed_format(), migration)
        .build()
        .unwrap()
}

const MIGRATIONS: [BeakerMigration; 2] = [
    BeakerMigration::KeepBeaker,
    BeakerMigration::UpgradeToNative,
];

#[test]
fn beaker_sessions_past_the_configured_deadlines_are_expired_in_both_modes() {
    for migration in MIGRATIONS {
        let sessions = default_deadlines(migration);
        // Created and last used a year ago: past the 14-day lifetime.
        let mut old = Browser {
            cookie: Some(format!(
                "myproject={}",
                beaker_value(T0 - 365 * DAY, T0 - 365 * DAY, None, "/")
            )),
        };
        let d = old.request(&sessions, T0, |s| {
            assert_eq!(
                s.outcome(),
                LoadOutcome::Expired(Deadline::Absolute),
                "{migration:?}"
            );
            assert_eq!(
                s.get::<String>("user").unwrap(),
                None,
                "no data reaches the handler"
            );
            assert!(matches!(
                s.rejection(),
                Some(DecodeError::Expired(Deadline::Absolute))
            ));
        });
        assert!(is_remove(&d), "{migration:?}");

        // Idle for 30 minutes under a 20-minute idle timeout: expired, never re-issued.
        let mut idle = Browser {
            cookie: Some(format!(
                "myproject={}",
                beaker_value(T0 - HOUR, T0 - 30 * 60, None, "/")
            )),
        };
        let d = idle.request(&sessions, T0, |s| {
            assert_eq!(
                s.outcome(),
                LoadOutcome::Expired(Deadline::Idle),
                "{migration:?}"
            );
            assert_eq!(s.get::<String>("user").unwrap(), None);
        });
        assert!(is_remove(&d), "{migration:?}: not a fresh native cookie");

        // Idle for 19 minutes: still valid.
        let mut fresh = Browser {
            cookie: Some(format!(
                "myproject={}",
                beaker_value(T0 - HOUR, T0 - 19 * 60, None, "/")
            )),
        };
        fresh.request(&sessions, T0, |s| {
            assert_eq!(s.outcome(), LoadOutcome::LoadedBeaker, "{migration:?}");
        });
    }
}

#[test]
fn re_issuing_a_beaker_session_never_extends_its_lifetime() {
    // Created 15 minutes short of 14 days ago, active a minute ago.
    let created = T0 - 14 * DAY + 15 * 60;
    for migration in MIGRATIONS {
        let sessions = default_deadlines(migration);
        let mut browser = Browser {
            cookie: Some(format!(
                "myproject={}",
                beaker_value(created, T0 - 60, None, "/")
            )),
        };
        // Active every 2 minutes, writing each time: the cookie is re-issued each time.
        for minute in (0..5).map(|m| T0 + m * 120) {
            let d = browser.request(&sessions, minute, |s| {
                assert_ne!(s.outcome(), LoadOutcome::New, "{migration:?} at {minute}");
                assert_eq!(
                    s.stamp().unwrap().absolute_deadline(),
                    at(created + 14 * DAY),
                    "{migration:?}: the absolute deadline comes from _creation_time"
                );
                s.insert("minute", &minute).unwrap();
            });
            assert!(is_set(&d));
        }
        // 16 minutes after the start: past creation + 14 days, however active.
        let d = browser.request(&sessions, T0 + 16 * 60, |s| {
            assert_eq!(
                s.outcome(),
                LoadOutcome::Expired(Deadline::Absolute),
                "{migration:?}"
            );
        });
        assert!(is_remove(&d));
    }
}

/// Every `Set-Cookie` of a decision that targets `Domain=example.com` (any spelling).
fn domain_removals(d: &cookie_session::Decision) -> Vec<String> {
    d.set_cookies()
        .filter(|h| h.to_ascii_lowercase().contains("domain=example.com"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_beaker_cookie_under_its_own_domain_is_removed_where_it_lives() {
    for migration in MIGRATIONS {
        let sessions = default_deadlines(migration);
        let value = beaker_value(T0 - HOUR, T0 - 60, Some(".example.com"), "/");
        let cookie = format!("myproject={value}");

        // Logout: the configured (host-only) cookie and the Beaker one are both removed.
        let mut session = sessions.load([cookie.as_str()], at(T0));
        assert_eq!(session.outcome(), LoadOutcome::LoadedBeaker);
        session.delete();
        let d = session.finish(at(T0)).unwrap();
        assert!(is_remove(&d));
        let removals = domain_removals(&d);
        assert_eq!(removals.len(), 1, "{migration:?}: {d:?}");
        assert!(removals[0].starts_with("myproject=;"), "{}", removals[0]);
        assert!(removals[0].contains("Max-Age=0"));
        assert!(removals[0].contains("Path=/"));
        assert!(d.cache_private);
        assert_eq!(d.headers().filter(|(n, _)| *n == "set-cookie").count(), 2);

        // A write: the new cookie goes where the configuration says, the old one is removed,
        // so it cannot shadow the new one.
        let mut session = sessions.load([cookie.as_str()], at(T0));
        session.insert("cart", &["SKU-1"]).unwrap();
        let d = session.finish(at(T0)).unwrap();
        let set = d.set_cookie().unwrap();
        assert!(
            is_set(&d) && !set.to_ascii_lowercase().contains("domain="),
            "{set}"
        );
        assert_eq!(domain_removals(&d).len(), 1, "{migration:?}");
        if migration == BeakerMigration::KeepBeaker {
            // Beaker writes its cookie where `_domain` says: now where we write it.
            let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
            let written = signed_format().decode(value, at(T0)).unwrap();
            assert_eq!(written.domain, None);
            assert_eq!(written.path, "/");
        }

        // A read that sends nothing touches nothing.
        if migration == BeakerMigration::KeepBeaker {
            let session = sessions.load([cookie.as_str()], at(T0));
            assert_eq!(
                session.get::<String>("user").unwrap().as_deref(),
                Some("alice")
            );
            let d = session.finish(at(T0)).unwrap();
            assert!(is_keep(&d) && d.removals.is_empty());
        }
    }
}

#[test]
fn a_beaker_cookie_under_its_own_path_is_removed_there_and_odd_locations_are_not_echoed() {
    let sessions = default_deadlines(BeakerMigration::UpgradeToNative);
    let value = beaker_value(T0 - HOUR, T0 - 60, None, "/shop");
    let mut session = sessions.load([format!("myproject={value}").as_str()], at(T0));
    session.delete();
    let d = session.finish(at(T0)).unwrap();
    let paths: Vec<_> = d
        .set_cookies()
        .map(|h| {
            h.split("; ")
                .find(|a| a.starts_with("Path="))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(paths, ["Path=/", "Path=/shop"]);

    // The location is authenticated, but it still becomes header text: nothing that could
    // add an attribute is echoed.
    let value = beaker_value(T0 - HOUR, T0 - 60, Some("x.test; Max-Age=99999"), "/");
    let mut session = sessions.load([format!("myproject={value}").as_str()], at(T0));
    session.delete();
    let d = session.finish(at(T0)).unwrap();
    assert!(d.removals.is_empty());
    assert!(d.set_cookies().all(|h| !h.contains("99999")));

    // The same location spelt differently is the same location: nothing extra.
    let same = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .with_domain("Example.COM")
        .with_beaker(signed_format(), BeakerMigration::UpgradeToNative)
        .build()
        .unwrap();
    let value = beaker_value(T0 - HOUR, T0 - 60, Some(".example.com"), "/");
    let mut session = same.load([format!("myproject={value}").as_str()], at(T0));
    session.delete();
    assert!(session.finish(at(T0)).unwrap().removals.is_empty());
}

#[test]
fn an_upgrade_that_does_not_fit_keeps_the_visitor_on_the_beaker_cookie() {
    // About 4.5 KB of JSON that zlib shrinks to a fraction: fits Beaker, not the native format.
    let mut data = serde_json::Map::new();
    for i in 0..70 {
        data.insert(
            format!("preference_{i:02}"),
            "light-theme,compact,en-GB,".repeat(2).into(),
        );
    }
    let json_len = serde_json::to_string(&data).unwrap().len();
    assert!(json_len > 4400, "{json_len}");
    let value = beaker_value_with(data, T0 - HOUR, T0 - 60, None, "/");
    let sessions = default_deadlines(BeakerMigration::UpgradeToNative);
    let cookie = format!("myproject={value}");

    // Read-only requests keep working: no Set-Cookie, no error, the data readable.
    for _ in 0..3 {
        let session = sessions.load([cookie.as_str()], at(T0));
        assert_eq!(session.outcome(), LoadOutcome::LoadedBeaker);
        assert_eq!(session.len(), 70);
        let d = session
            .finish(at(T0))
            .expect("a read never fails on the upgrade");
        assert!(is_keep(&d), "{d:?}");
    }
    // A real change that cannot be stored is still an error, as for any session.
    let mut session = sessions.load([cookie.as_str()], at(T0));
    session.insert("more", &"x").unwrap();
    assert!(matches!(
        session.finish(at(T0)),
        Err(cookie_session::SessionError::Encode(
            cookie_session::EncodeError::TooLarge { .. }
        ))
    ));
}

#[test]
fn with_compression_the_same_beaker_session_upgrades_to_one_compressed_native_cookie() {
    // The session of the test above: over 4.4 KB of JSON, which the uncompressed native
    // format cannot hold.
    let mut data = serde_json::Map::new();
    for i in 0..70 {
        data.insert(
            format!("preference_{i:02}"),
            "light-theme,compact,en-GB,".repeat(2).into(),
        );
    }
    let value = beaker_value_with(data.clone(), T0 - HOUR, T0 - 60, None, "/");
    for mode in [Mode::Signed, Mode::Encrypted] {
        let config = SessionConfig::new(mode, KeyRing::new(key(1)))
            .with_name("myproject")
            .with_beaker(signed_format(), BeakerMigration::UpgradeToNative);
        let sessions = match mode {
            Mode::Signed => config.with_compression(),
            _ => config.with_compression_leaking_length(),
        }
        .build()
        .unwrap();
        let session = sessions.load([format!("myproject={value}").as_str()], at(T0));
        assert_eq!(session.outcome(), LoadOutcome::LoadedBeaker);
        let d = session.finish(at(T0)).unwrap();
        let header = d.set_cookie().expect("the upgrade is sent");
        assert_eq!(d.chunks, Vec::<String>::new(), "one cookie is enough");
        let pair = header.split(';').next().unwrap();
        let native = pair.strip_prefix("myproject=").unwrap();
        assert!(pair.len() <= 4096, "{}", pair.len());
        let seen = cookie_session::inspect(native).unwrap();
        assert!(seen.compressed, "{mode}");

        // The next request reads the native cookie, with every value intact.
        let session = sessions.load([pair], at(T0 + 1));
        assert_eq!(session.outcome(), LoadOutcome::Loaded);
        for (k, v) in &data {
            assert_eq!(session.get::<Value>(k).unwrap().as_ref(), Some(v), "{k}");
        }
    }
}

#[test]
fn a_beaker_id_that_is_not_hex_gets_a_stable_session_id_and_is_kept() {
    let mut cookie = BeakerCookie::new(serde_json::Map::new(), at(T0 - 60));
    cookie.data.insert("user".into(), "alice".into());
    cookie.id = "legacy-id-42".into();
    let value = signed_format().encode("myproject", &cookie).unwrap();
    let header = format!("myproject={value}");

    let sessions = default_deadlines(BeakerMigration::KeepBeaker);
    let id = |sessions: &Sessions| sessions.load([header.as_str()], at(T0)).id().unwrap();
    let first = id(&sessions);
    assert_eq!(first, id(&sessions), "the same cookie, the same id");
    assert_eq!(first, cookie.session_id());

    // So a revocation check can match it.
    let revoked = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("myproject")
        .with_beaker(signed_format(), BeakerMigration::KeepBeaker)
        .with_revocation(move |sid, _| sid == first)
        .build()
        .unwrap();
    assert_eq!(
        revoked.load([header.as_str()], at(T0)).outcome(),
        LoadOutcome::Revoked
    );

    // Written back, Beaker's own `_id` is unchanged.
    let mut session = sessions.load([header.as_str()], at(T0));
    session.insert("cart", &1).unwrap();
    let d = session.finish(at(T0)).unwrap();
    let value = d
        .set_cookie()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    assert_eq!(
        signed_format().decode(value, at(T0)).unwrap().id,
        "legacy-id-42"
    );
}
