//! Explicit save mode (Beaker's semantics): only what `save()` committed is sent.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{Mode, SaveMode, Sessions};

fn explicit() -> Sessions {
    config(Mode::Encrypted)
        .with_save_mode(SaveMode::Explicit)
        .build()
        .unwrap()
}

#[test]
fn unsaved_changes_are_dropped() {
    let sessions = explicit();
    let mut browser = Browser::default();
    let d = browser.request(&sessions, T0, |s| s.insert("a", &1).unwrap());
    assert!(is_keep(&d), "nothing saved, nothing sent");
    assert_eq!(browser.cookie, None);
}

#[test]
fn saved_changes_are_sent_and_later_unsaved_ones_are_not() {
    let sessions = explicit();
    let mut browser = Browser::default();
    let d = browser.request(&sessions, T0, |s| {
        s.insert("a", &1).unwrap();
        s.save();
        s.insert("b", &2).unwrap(); // after the save: dropped
    });
    assert!(is_set(&d));
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
        assert_eq!(s.get::<i32>("b").unwrap(), None);
    });
}

#[test]
fn unsaved_changes_to_a_loaded_session_leave_the_cookie_alone() {
    let sessions = explicit();
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        s.insert("a", &1).unwrap();
        s.save();
    });
    let before = browser.cookie.clone();
    let d = browser.request(&sessions, T0 + 1, |s| {
        s.insert("a", &99).unwrap();
        s.clear();
    });
    assert!(is_keep(&d));
    assert_eq!(browser.cookie, before);
    browser.request(&sessions, T0 + 2, |s| {
        assert_eq!(s.get::<i32>("a").unwrap(), Some(1))
    });
}

#[test]
fn saving_an_unchanged_session_sends_nothing() {
    let sessions = explicit();
    let mut browser =
        Browser::with_session(&config(Mode::Encrypted).build().unwrap(), T0, &small());
    let d = browser.request(&sessions, T0 + 1, |s| s.save());
    assert!(is_keep(&d));
}

#[test]
fn delete_takes_effect_without_a_save() {
    let sessions = explicit();
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        s.insert("a", &1).unwrap();
        s.save();
    });
    let d = browser.request(&sessions, T0 + 1, |s| s.delete());
    assert!(is_remove(&d));
}
