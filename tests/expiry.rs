//! Deadlines come from the authenticated cookie and are checked against the `now` passed
//! in. A deadline is the first invalid second.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use cookie_session::{Deadline, DecodeError, Mode, Stamp};

const IDLE_S: i64 = IDLE.as_secs() as i64;
const LIFE_S: i64 = LIFETIME.as_secs() as i64;

fn decode_at(mode: Mode, value: &str, now: i64) -> Result<SessionMap, DecodeError> {
    codec(mode)
        .decode::<SessionMap>("session", value, at(now))
        .map(|o| o.value)
}

#[test]
fn idle_deadline_boundary() {
    for mode in MODES {
        let value = codec(mode).encode("session", &small(), &stamp()).unwrap();
        assert!(decode_at(mode, &value, T0 + IDLE_S - 1).is_ok());
        assert!(matches!(
            decode_at(mode, &value, T0 + IDLE_S),
            Err(DecodeError::Expired(Deadline::Idle))
        ));
        assert!(matches!(
            decode_at(mode, &value, T0 + IDLE_S + 1),
            Err(DecodeError::Expired(Deadline::Idle))
        ));
    }
}

#[test]
fn absolute_deadline_boundary_even_for_an_active_session() {
    for mode in MODES {
        // Re-issued 5 minutes before the end: idle would allow 20 more minutes.
        let late = at(T0 + LIFE_S - 300);
        let renewed = stamp().renewed(late, IDLE).unwrap();
        assert_eq!(
            renewed.idle_deadline(),
            renewed.absolute_deadline(),
            "idle is capped"
        );
        let value = codec(mode).encode("session", &small(), &renewed).unwrap();
        assert!(decode_at(mode, &value, T0 + LIFE_S - 1).is_ok());
        assert!(matches!(
            decode_at(mode, &value, T0 + LIFE_S),
            Err(DecodeError::Expired(Deadline::Absolute))
        ));
    }
}

#[test]
fn renewal_extends_the_idle_deadline_but_keeps_the_session() {
    let first = stamp();
    let later = first.renewed(at(T0 + 900), IDLE).unwrap();
    assert_eq!(later.id(), first.id());
    assert_eq!(later.absolute_deadline(), first.absolute_deadline());
    assert_eq!(later.idle_deadline(), at(T0 + 900 + IDLE_S));
    let value = codec(Mode::Signed)
        .encode("session", &small(), &later)
        .unwrap();
    assert!(decode_at(Mode::Signed, &value, T0 + IDLE_S + 100).is_ok());
}

#[test]
fn a_cookie_issued_in_the_future_beyond_the_skew_is_rejected() {
    for mode in MODES {
        let value = codec(mode).encode("session", &small(), &stamp()).unwrap();
        assert!(
            decode_at(mode, &value, T0 - 60).is_ok(),
            "within the default 60 s skew"
        );
        assert!(matches!(
            decode_at(mode, &value, T0 - 61),
            Err(DecodeError::IssuedInFuture)
        ));
        let strict = codec(mode).with_clock_skew(Duration::ZERO);
        assert!(matches!(
            strict.decode::<SessionMap>("session", &value, at(T0 - 1)),
            Err(DecodeError::IssuedInFuture)
        ));
    }
}

#[test]
fn expiry_is_reported_only_for_authentic_cookies() {
    for mode in MODES {
        let value = codec(mode).encode("session", &small(), &stamp()).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        // Long expired and tampered: authentication is what fails.
        assert!(matches!(
            decode_at(mode, &forged, T0 + LIFE_S * 2),
            Err(DecodeError::Invalid)
        ));
    }
}

#[test]
fn pushing_a_deadline_forward_in_the_cookie_is_a_forgery() {
    // The browser's Max-Age is never consulted, and editing the deadline bytes breaks the tag.
    for mode in MODES {
        let value = codec(mode).encode("session", &small(), &stamp()).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        // idle deadline: bytes 29..37; absolute: 37..45 (FORMAT.md).
        let far = (T0 as u64 + 365 * 86_400).to_be_bytes();
        raw[29..37].copy_from_slice(&far);
        raw[37..45].copy_from_slice(&far);
        let extended = URL_SAFE_NO_PAD.encode(&raw);
        assert!(matches!(
            decode_at(mode, &extended, T0 + IDLE_S + 1),
            Err(DecodeError::Invalid)
        ));
    }
}

/// 9999-12-31T23:59:59Z, where deadlines saturate.
const LAST_SECOND: i64 = 253_402_300_799;

#[test]
fn stamps_refuse_unrepresentable_times_and_saturate_long_durations() {
    assert!(Stamp::new(at(-1), IDLE, LIFETIME).is_err());
    // Huge durations mean "as late as can be", not an error (and never a wrap-around).
    let forever = Stamp::new(at(T0), IDLE, Duration::MAX).unwrap();
    assert_eq!(forever.absolute_deadline(), at(LAST_SECOND));
    assert_eq!(forever.idle_deadline(), at(T0) + IDLE);
    let stamp = Stamp::new(at(T0), Duration::from_secs(u64::MAX / 2), LIFETIME).unwrap();
    assert_eq!(stamp.idle_deadline(), stamp.absolute_deadline());
    let no_idle = Stamp::new(at(T0), LIFETIME, LIFETIME).unwrap();
    assert_eq!(no_idle.idle_deadline(), no_idle.absolute_deadline());
    assert_eq!(no_idle.remaining(at(T0)), LIFETIME);
    assert_eq!(no_idle.remaining(at(T0 + LIFE_S + 5)), Duration::ZERO);
}
