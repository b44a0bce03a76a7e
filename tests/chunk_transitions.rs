//! A session split across cookies keeps every piece through every change of its piece
//! count: 1..8 pieces to 1..8 pieces, growing, shrinking and staying, in both modes,
//! through a cookie jar that follows RFC 6265's storage model (a cookie is keyed by name,
//! domain and path; the `Set-Cookie`s of one response are applied in order; `Max-Age=0`
//! removes).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;
#[path = "model/jar.rs"]
mod jar;

use std::collections::BTreeSet;

use common::*;
use cookie_session::{Decision, LoadOutcome, MAX_CHUNKS, Mode, Session, Sessions, chunk_name};
use jar::Jar;

/// The browser: the RFC 6265 jar, and requests through it at a time.
#[derive(Debug, Default)]
struct Rfc6265Jar(Jar);

impl Rfc6265Jar {
    fn names(&self) -> BTreeSet<String> {
        self.0.names()
    }

    /// One request: load, `handler`, finish, apply every `Set-Cookie` in order.
    fn request(
        &mut self,
        sessions: &Sessions,
        now: i64,
        handler: impl FnOnce(&mut Session),
    ) -> Decision {
        let header = self.0.header(now);
        let mut session = sessions.load([header.as_str()], at(now));
        handler(&mut session);
        let decision = session.finish(at(now)).unwrap();
        assert_sets_or_removes_each_cookie_once(&decision);
        for set_cookie in decision.set_cookies() {
            self.0.apply(set_cookie, now);
        }
        decision
    }
}

/// No response both sets and removes a cookie, or sets one twice: a browser applies them
/// in order, and the last would win.
fn assert_sets_or_removes_each_cookie_once(decision: &Decision) {
    let mut seen = BTreeSet::new();
    for set_cookie in decision.set_cookies() {
        let name = set_cookie.split('=').next().unwrap();
        assert!(
            seen.insert(name.to_owned()),
            "{name} appears twice in one response: {:?}",
            decision
                .set_cookies()
                .map(|c| c.split('=').next().unwrap())
                .collect::<Vec<_>>()
        );
    }
}

fn split_sessions(mode: Mode) -> Sessions {
    config(mode)
        .with_max_cookies(MAX_CHUNKS)
        .with_max_total_size(MAX_CHUNKS * 4096)
        .build()
        .unwrap()
}

/// How many cookies a fresh session holding `size` incompressible characters takes (more
/// than the most where it does not fit).
fn pieces_for(sessions: &Sessions, size: usize) -> usize {
    let mut session = sessions.load([""], at(T0));
    session.insert("blob", &incompressible(size, 1)).unwrap();
    session
        .finish(at(T0))
        .map_or(MAX_CHUNKS + 1, |decision| decision.set_cookies().count())
}

/// For each piece count 1..=8, a blob size that takes exactly that many cookies (found by
/// bisection over sizes: the count grows with the size).
fn size_for_each_count(sessions: &Sessions) -> Vec<usize> {
    (1..=MAX_CHUNKS)
        .map(|count| {
            let (mut low, mut high) = (1, MAX_CHUNKS * 4096);
            // The smallest size that needs at least `count` pieces.
            while low < high {
                let mid = (low + high) / 2;
                if pieces_for(sessions, mid) >= count {
                    high = mid;
                } else {
                    low = mid + 1;
                }
            }
            // Some way inside the range of sizes that give exactly `count`.
            let size = low + 200;
            assert_eq!(pieces_for(sessions, size), count, "size {size}");
            size
        })
        .collect()
}

fn expected_names(count: usize) -> BTreeSet<String> {
    (1..=count).map(|i| chunk_name("sid", i)).collect()
}

#[test]
fn every_change_of_piece_count_keeps_the_whole_session() {
    for mode in MODES {
        let sessions = split_sessions(mode);
        let sizes = size_for_each_count(&sessions);
        for from in 1..=MAX_CHUNKS {
            for to in 1..=MAX_CHUNKS {
                let mut jar = Rfc6265Jar::default();
                let first = incompressible(sizes[from - 1], 10 + from as u64);
                jar.request(&sessions, T0, |s| s.insert("blob", &first).unwrap());
                assert_eq!(jar.names(), expected_names(from), "{mode}: {from} pieces");

                // A write that moves the session from `from` to `to` pieces (a new value
                // even when the count stays).
                let second = incompressible(sizes[to - 1], 100 + to as u64);
                jar.request(&sessions, T0 + 1, |s| {
                    assert_eq!(s.outcome(), LoadOutcome::Loaded, "{mode} {from}->{to}");
                    s.insert("blob", &second).unwrap();
                });
                assert_eq!(
                    jar.names(),
                    expected_names(to),
                    "{mode}: {from} -> {to} pieces"
                );

                // The next request has the whole session, and a read sends nothing.
                let read = jar.request(&sessions, T0 + 2, |s| {
                    assert_eq!(s.outcome(), LoadOutcome::Loaded, "{mode} {from}->{to}");
                    assert_eq!(s.get::<String>("blob").unwrap(), Some(second.clone()));
                });
                assert!(read.set_cookies().next().is_none(), "{mode} {from}->{to}");
            }
        }
    }
}

#[test]
fn a_write_that_keeps_the_piece_count_keeps_every_piece() {
    // The same count written again and again, with another small change each time.
    for mode in MODES {
        let sessions = split_sessions(mode);
        let sizes = size_for_each_count(&sessions);
        for (index, size) in sizes.iter().enumerate() {
            let count = index + 1;
            let blob = incompressible(*size, 7);
            let mut jar = Rfc6265Jar::default();
            jar.request(&sessions, T0, |s| s.insert("blob", &blob).unwrap());
            for round in 0..3_u32 {
                jar.request(&sessions, T0 + 1 + i64::from(round), |s| {
                    s.insert("round", &round).unwrap();
                });
                assert_eq!(jar.names(), expected_names(count), "{mode}: {count} pieces");
                jar.request(&sessions, T0 + 10, |s| {
                    assert_eq!(s.get::<u32>("round").unwrap(), Some(round), "{mode}");
                    assert_eq!(s.get::<String>("blob").unwrap().as_ref(), Some(&blob));
                });
            }
        }
    }
}

#[test]
fn clearing_a_split_session_removes_every_piece_once() {
    for mode in MODES {
        let sessions = split_sessions(mode);
        let sizes = size_for_each_count(&sessions);
        for (index, size) in sizes.iter().enumerate() {
            let mut jar = Rfc6265Jar::default();
            jar.request(&sessions, T0, |s| {
                s.insert("blob", &incompressible(*size, 3)).unwrap();
            });
            assert_eq!(jar.names(), expected_names(index + 1), "{mode}");
            let decision = jar.request(&sessions, T0 + 1, Session::clear);
            assert_eq!(decision.set_cookies().count(), index + 1, "{mode}");
            assert!(jar.0.is_empty(), "{mode}: {:?}", jar.names());
        }
    }
}
