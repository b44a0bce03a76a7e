//! Sessions larger than one cookie: split across `name`, `name.2`, ... and compressed,
//! through the public API, with a cookie jar that applies every `Set-Cookie` as a browser
//! does.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use cookie_session::{
    ConfigError, DecodeError, EncodeError, KeyRing, LoadOutcome, Mode, Session, SessionConfig,
    SessionError, Sessions, inspect,
};
use proptest::prelude::*;
use serde_json::Value;

/// The browser's cookies for the site: every `Set-Cookie` applied, `Max-Age=0` removes.
#[derive(Debug, Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// One request: load, `handler`, finish, apply every `Set-Cookie`.
    fn request(
        &mut self,
        sessions: &Sessions,
        now: i64,
        handler: impl FnOnce(&mut Session),
    ) -> Result<cookie_session::Decision, SessionError> {
        let header = self.header();
        let mut session = sessions.load([header.as_str()], at(now));
        handler(&mut session);
        let decision = session.finish(at(now))?;
        for set_cookie in decision.set_cookies() {
            let pair = set_cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            // What the browser enforces: larger cookies are dropped.
            assert!(name.len() + value.len() <= 4096, "{name}: {}", value.len());
            if set_cookie.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
        Ok(decision)
    }

    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

fn chunked(mode: Mode, cookies: usize, total: usize) -> SessionConfig {
    config(mode)
        .with_max_cookies(cookies)
        .with_max_total_size(total)
}

fn build(config: SessionConfig) -> Sessions {
    config.build().unwrap()
}

#[test]
fn sessions_of_every_size_round_trip_in_as_many_cookies_as_they_need() {
    for mode in MODES {
        let sessions = build(chunked(mode, 4, 16_384));
        let mut previous_count = 1;
        // Every 211 bytes from one cookie to just under four.
        for size in (100..12_200).step_by(211) {
            let blob = incompressible(size, size as u64);
            let mut jar = Jar::default();
            jar.request(&sessions, T0, |s| s.insert("blob", &blob).unwrap())
                .unwrap();
            let count = jar.0.len();
            assert!(count >= previous_count, "{mode} {size}: {count} cookies");
            previous_count = count;
            let expected: Vec<String> = (1..=count)
                .map(|i| cookie_session::chunk_name("sid", i))
                .collect();
            assert_eq!(
                jar.names(),
                expected.iter().map(String::as_str).collect::<Vec<_>>()
            );

            let back = jar
                .request(&sessions, T0 + 1, |s| {
                    assert_eq!(s.outcome(), LoadOutcome::Loaded, "{mode} {size}");
                    assert_eq!(s.get::<String>("blob").unwrap().as_deref(), Some(&*blob));
                })
                .unwrap();
            assert!(
                is_keep(&back) && back.chunks.is_empty(),
                "a read sends nothing"
            );
        }
        assert_eq!(previous_count, 4, "{mode}: the sizes reached four cookies");
    }
}

#[test]
fn a_session_over_the_limits_is_refused_and_the_browser_keeps_the_last_one() {
    for mode in MODES {
        // The default total of 6 KiB allows two cookies' worth even with four allowed.
        let sessions = build(config(mode).with_max_cookies(4));
        let mut jar = Jar::default();
        let fits = incompressible(4_000, 1);
        jar.request(&sessions, T0, |s| s.insert("blob", &fits).unwrap())
            .unwrap();
        assert_eq!(jar.0.len(), 2);
        let before = jar.clone();
        let error = jar
            .request(&sessions, T0 + 1, |s| {
                s.insert("blob", &incompressible(5_000, 2)).unwrap();
            })
            .unwrap_err();
        match error {
            SessionError::Encode(EncodeError::TooLarge { size, limit }) => {
                assert_eq!(limit, cookie_session::DEFAULT_MAX_TOTAL_SIZE);
                assert!(size > limit, "{size}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(jar.0, before.0, "nothing was sent");

        // More cookies than allowed.
        let two = build(chunked(mode, 2, 100_000));
        let error = Jar::default()
            .request(&two, T0, |s| {
                s.insert("blob", &incompressible(7_000, 3)).unwrap();
            })
            .unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Encode(EncodeError::TooLarge { limit: 8192, .. })
            ),
            "{error:?}"
        );
    }
}

#[test]
fn a_shrinking_session_removes_its_stale_pieces_and_delete_removes_them_all() {
    for mode in MODES {
        let sessions = build(chunked(mode, 4, 16_384));
        let mut jar = Jar::default();
        jar.request(&sessions, T0, |s| {
            s.insert("blob", &incompressible(8_000, 4)).unwrap();
            s.insert("user", &7).unwrap();
        })
        .unwrap();
        assert_eq!(jar.names(), ["sid", "sid.2", "sid.3"]);

        let d = jar
            .request(&sessions, T0 + 1, |s| {
                s.remove("blob");
            })
            .unwrap();
        assert_eq!(d.chunks.len(), 2, "two removals: {:?}", d.chunks);
        assert!(d.chunks.iter().all(|c| c.contains("Max-Age=0")));
        assert_eq!(jar.names(), ["sid"]);
        jar.request(&sessions, T0 + 2, |s| {
            assert_eq!(s.get::<u32>("user").unwrap(), Some(7));
        })
        .unwrap();

        jar.request(&sessions, T0 + 3, |s| {
            s.insert("blob", &incompressible(6_000, 5)).unwrap();
        })
        .unwrap();
        assert_eq!(jar.names(), ["sid", "sid.2"]);
        jar.request(&sessions, T0 + 4, Session::delete).unwrap();
        assert!(jar.0.is_empty(), "{:?}", jar.names());
    }
}

#[test]
fn missing_reordered_repeated_and_spliced_pieces_give_a_new_session_never_a_partial_one() {
    for mode in MODES {
        let sessions = build(chunked(mode, 4, 16_384));
        let mut alice = Jar::default();
        alice
            .request(&sessions, T0, |s| {
                s.insert("who", &"alice").unwrap();
                s.insert("blob", &incompressible(9_000, 6)).unwrap();
            })
            .unwrap();
        let mut mallory = Jar::default();
        mallory
            .request(&sessions, T0, |s| {
                s.insert("who", &"mallory").unwrap();
                s.insert("blob", &incompressible(9_000, 7)).unwrap();
            })
            .unwrap();
        assert_eq!(alice.names(), ["sid", "sid.2", "sid.3"]);
        let piece = |jar: &Jar, n: &str| jar.0[n].clone();

        let mut cases: Vec<(&str, Jar)> = Vec::new();
        let mut missing = alice.clone();
        missing.0.remove("sid.2");
        cases.push(("missing", missing));
        let mut missing_last = alice.clone();
        missing_last.0.remove("sid.3");
        cases.push(("missing last", missing_last));
        let mut reordered = alice.clone();
        reordered.0.insert("sid.2".into(), piece(&alice, "sid.3"));
        reordered.0.insert("sid.3".into(), piece(&alice, "sid.2"));
        cases.push(("reordered", reordered));
        let mut repeated = alice.clone();
        repeated.0.insert("sid.3".into(), piece(&alice, "sid.2"));
        cases.push(("repeated", repeated));
        let mut spliced = alice.clone();
        spliced.0.insert("sid.2".into(), piece(&mallory, "sid.2"));
        cases.push(("spliced", spliced));
        let mut spliced_first = alice.clone();
        spliced_first.0.insert("sid".into(), piece(&mallory, "sid"));
        cases.push(("spliced first", spliced_first));

        for (case, mut jar) in cases {
            let present: Vec<String> = jar.0.keys().cloned().collect();
            let d = jar
                .request(&sessions, T0 + 1, |s| {
                    assert_eq!(s.outcome(), LoadOutcome::Invalid, "{mode} {case}");
                    assert!(s.is_empty(), "{case}: nothing of the session is read");
                    let expected = match case {
                        "missing" | "missing last" => {
                            matches!(s.rejection(), Some(DecodeError::MissingChunk { .. }))
                        }
                        _ => matches!(
                            s.rejection(),
                            Some(DecodeError::Invalid | DecodeError::Malformed)
                        ),
                    };
                    assert!(expected, "{case}: {:?}", s.rejection());
                })
                .unwrap();
            assert!(is_remove(&d), "{case}");
            assert!(
                jar.0.is_empty(),
                "{case}: every piece is removed, {present:?} were sent"
            );
        }
    }
}

#[test]
fn a_stale_copy_of_a_piece_under_another_path_does_not_lose_the_session() {
    let sessions = build(chunked(Mode::Signed, 4, 16_384));
    let mut jar = Jar::default();
    jar.request(&sessions, T0, |s| {
        s.insert("blob", &incompressible(6_000, 8)).unwrap();
    })
    .unwrap();
    let mut old = Jar::default();
    old.request(&sessions, T0, |s| {
        s.insert("blob", &incompressible(6_000, 9)).unwrap();
    })
    .unwrap();
    // The browser sends the stale `sid.2` (a longer path) first, then the current one.
    let header = format!(
        "sid={}; sid.2={}; sid.2={}",
        jar.0["sid"], old.0["sid.2"], jar.0["sid.2"]
    );
    let session = sessions.load([header.as_str()], at(T0 + 1));
    assert_eq!(session.outcome(), LoadOutcome::Loaded);
    assert_eq!(
        session.get::<String>("blob").unwrap(),
        Some(incompressible(6_000, 8))
    );
}

#[test]
fn pieces_are_only_looked_for_when_the_configuration_splits() {
    let splitting = build(chunked(Mode::Signed, 3, 16_384));
    let mut jar = Jar::default();
    jar.request(&splitting, T0, |s| {
        s.insert("blob", &incompressible(5_000, 10)).unwrap();
    })
    .unwrap();
    // Splitting turned off: the first piece alone is refused, and removed.
    let single = build(config(Mode::Signed));
    let session = single.load([jar.header().as_str()], at(T0 + 1));
    assert_eq!(session.outcome(), LoadOutcome::Invalid);
    assert!(matches!(
        session.rejection(),
        Some(DecodeError::TooManyChunks { count: 2, limit: 1 })
    ));
    // A cookie that merely looks like a piece of another name is not one.
    let mut session = splitting.load(["sidx.2=abc; sid.10=abc; sid.1=abc"], at(T0));
    session.insert("a", &1).unwrap();
    let d = session.finish(at(T0)).unwrap();
    assert!(d.chunks.is_empty(), "{:?}", d.chunks);
}

#[test]
fn configurations_that_cannot_work_are_refused_at_build() {
    for cookies in [0, cookie_session::MAX_CHUNKS + 1] {
        assert_eq!(
            config(Mode::Signed)
                .with_max_cookies(cookies)
                .build()
                .unwrap_err(),
            ConfigError::InvalidMaxCookies(cookies)
        );
    }
    let error = config(Mode::Encrypted)
        .with_compression()
        .build()
        .unwrap_err();
    assert_eq!(error, ConfigError::CompressionRevealsLength);
    assert!(
        error
            .to_string()
            .contains("with_compression_leaking_length")
    );
    config(Mode::Encrypted)
        .with_compression_leaking_length()
        .build()
        .unwrap();
}

fn payload(name: &str) -> SessionMap {
    let all: Value = serde_json::from_str(include_str!("../benches/payloads.json")).unwrap();
    serde_json::from_value(all[name].clone()).unwrap()
}

fn set_value(d: &cookie_session::Decision) -> String {
    let header = d.set_cookie().unwrap();
    let pair = header.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

#[test]
fn compression_fits_the_large_payload_in_one_cookie_and_only_when_it_helps() {
    let large = payload("large");
    for (mode, compressing) in [
        (Mode::Signed, config(Mode::Signed).with_compression()),
        (
            Mode::Encrypted,
            config(Mode::Encrypted).with_compression_leaking_length(),
        ),
    ] {
        // Without compression the 3 KB cart does not fit.
        let plain = build(config(mode));
        let mut session = plain.load([], at(T0));
        session.extend_from(&large);
        assert!(matches!(
            session.finish(at(T0)),
            Err(SessionError::Encode(EncodeError::TooLarge { .. }))
        ));

        let sessions = build(compressing);
        let mut jar = Jar::default();
        let d = jar
            .request(&sessions, T0, |s| s.extend_from(&large))
            .unwrap();
        let value = set_value(&d);
        let seen = inspect(&value).unwrap();
        assert!(seen.compressed && seen.chunks == 1, "{mode}");
        assert!(value.len() < 1100, "{mode}: {} characters", value.len());
        jar.request(&sessions, T0 + 1, |s| {
            let all: SessionMap = s
                .keys()
                .map(|k| (k.to_owned(), s.get(k).unwrap().unwrap()))
                .collect();
            assert_eq!(all, large);
        })
        .unwrap();

        // The small payload does not shrink: stored as JSON.
        let d = Jar::default()
            .request(&sessions, T0, |s| s.extend_from(&payload("small")))
            .unwrap();
        assert!(!inspect(&set_value(&d)).unwrap().compressed, "{mode}");

        // Compressed cookies are read after compression is turned off.
        let off = build(config(mode));
        let session = off.load([jar.header().as_str()], at(T0 + 2));
        assert_eq!(session.outcome(), LoadOutcome::Loaded, "{mode}");
        assert_eq!(session.len(), large.len());
    }
}

#[test]
fn the_compression_flag_is_authenticated() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for (mode, compressing) in [
        (Mode::Signed, config(Mode::Signed).with_compression()),
        (
            Mode::Encrypted,
            config(Mode::Encrypted).with_compression_leaking_length(),
        ),
    ] {
        let sessions = build(compressing);
        for data in [payload("large"), payload("small")] {
            let d = Jar::default()
                .request(&sessions, T0, |s| s.extend_from(&data))
                .unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(set_value(&d)).unwrap();
            raw[45] ^= 0x04; // the compression flag (FORMAT.md)
            let flipped = format!("sid={}", URL_SAFE_NO_PAD.encode(&raw));
            let session = sessions.load([flipped.as_str()], at(T0 + 1));
            assert_eq!(session.outcome(), LoadOutcome::Invalid, "{mode}");
            assert!(
                matches!(session.rejection(), Some(DecodeError::Invalid)),
                "{mode}"
            );
        }
    }
}

#[test]
fn a_decompression_bomb_from_a_key_holder_stops_at_the_maximum_session_size() {
    // A megabyte of one letter deflates to about a kilobyte: one cookie. A key holder can
    // make it with a codec whose maximum session size allows it.
    let bomb: SessionMap = [("a".to_owned(), Value::from("a".repeat(1 << 20)))]
        .into_iter()
        .collect();
    for mode in MODES {
        let maker = cookie_session::Codec::new(mode, KeyRing::new(key(1)))
            .with_compression_leaking_length()
            .with_max_session_size(2 << 20);
        let value = maker.encode("sid", &bomb, &stamp()).unwrap();
        assert!(value.len() < 2000, "{}", value.len());

        let sessions = build(config(mode).with_max_session_size(64 * 1024));
        let session = sessions.load([format!("sid={value}").as_str()], at(T0 + 1));
        assert_eq!(session.outcome(), LoadOutcome::Invalid);
        assert!(matches!(
            session.rejection(),
            Some(DecodeError::SessionTooLarge { limit: 65_536 })
        ));
        // The same limit holds on the way out.
        let mut session = sessions.load([], at(T0));
        session.extend_from(&bomb);
        assert!(matches!(
            session.finish(at(T0)),
            Err(SessionError::Encode(EncodeError::SessionTooLarge {
                limit: 65_536,
                ..
            }))
        ));
    }
}

/// Extends a session with every entry of a map (test shorthand).
trait ExtendFrom {
    fn extend_from(&mut self, map: &SessionMap);
}

impl ExtendFrom for Session {
    fn extend_from(&mut self, map: &SessionMap) {
        for (k, v) in map {
            self.insert(k, v).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any session that fits the configuration round-trips, chunked and compressed; one that
    /// does not is refused with a size error whose size is over its limit, and never
    /// produces a cookie the browser would drop.
    #[test]
    fn any_session_up_to_the_limits_round_trips_chunked_and_compressed(
        entries in prop::collection::vec(
            (
                "[a-z]{1,12}",
                prop_oneof![
                    (0usize..4000, any::<u64>()).prop_map(|(n, seed)| Value::from(incompressible(n, seed))),
                    (0usize..6000).prop_map(|n| Value::from("ab".repeat(n / 2))),
                    any::<i64>().prop_map(Value::from),
                    prop::collection::vec(any::<u32>(), 0..50).prop_map(Value::from),
                ],
            ),
            0..6,
        ),
        encrypted in any::<bool>(),
        cookies in 1usize..=5,
    ) {
        let mode = if encrypted { Mode::Encrypted } else { Mode::Signed };
        let config = chunked(mode, cookies, 16_384).with_max_session_size(20_000);
        let sessions = build(if encrypted {
            config.with_compression_leaking_length()
        } else {
            config.with_compression()
        });
        let data: SessionMap = entries.into_iter().collect();
        let mut jar = Jar::default();
        match jar.request(&sessions, T0, |s| s.extend_from(&data)) {
            Ok(_) => {
                prop_assert!(jar.0.len() <= cookies);
                let mut read = SessionMap::new();
                jar.request(&sessions, T0 + 1, |s| {
                    read = s.keys().map(|k| (k.to_owned(), s.get(k).unwrap().unwrap())).collect();
                }).unwrap();
                prop_assert_eq!(read, data);
            }
            Err(SessionError::Encode(EncodeError::TooLarge { size, limit }))
            | Err(SessionError::Encode(EncodeError::SessionTooLarge { size, limit })) => {
                prop_assert!(size > limit, "{} <= {}", size, limit);
                prop_assert!(jar.0.is_empty());
            }
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }
}
