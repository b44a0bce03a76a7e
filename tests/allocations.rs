//! Heap allocations per operation, counted with a counting global allocator: the
//! allocation targets of the performance work, as assertions. One test function, so that
//! no other test thread allocates while a region is measured.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use cookie_session::{CookieAction, SessionConfig};
use serde_json::Value;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made by `f`: the least over a few runs (the first run fills per-thread
/// buffers; the harness's own threads may add noise, never remove it).
fn allocations<R>(mut f: impl FnMut() -> R) -> usize {
    (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            std::hint::black_box(f());
            region.change().allocations
        })
        .min()
        .unwrap_or(usize::MAX)
}

#[test]
fn encode_allocates_its_result_only_and_a_read_only_request_a_handful() {
    let payloads: Value = serde_json::from_str(include_str!("../benches/payloads.json")).unwrap();
    let medium: SessionMap = serde_json::from_value(payloads["medium"].clone()).unwrap();
    for mode in MODES {
        let codec = codec(mode);
        assert_eq!(
            allocations(|| codec.encode("sid", &medium, &stamp()).unwrap()),
            1,
            "{mode}: encode"
        );

        let sessions = SessionConfig::new(mode, cookie_session::KeyRing::new(key(1)))
            .with_name("sid")
            .build()
            .unwrap();
        let header = format!(
            "theme=dark; sid={}",
            codec.encode("sid", &medium, &stamp()).unwrap()
        );
        let read_only = allocations(|| {
            let session = sessions.load([header.as_str()], at(T0 + 1));
            assert_eq!(
                session.get::<u64>("user_id").unwrap(),
                medium["user_id"].as_u64()
            );
            let decision = session.finish(at(T0 + 1)).unwrap();
            assert_eq!(decision.cookie, CookieAction::Keep);
        });
        // The full map alone would take 57 (one per key, string and container).
        assert!(read_only <= 10, "{mode}: read-only request: {read_only}");
    }

    // A compressed cookie that inflates to a megabyte (made by a key holder with a codec
    // that allows it) costs a reader with the default 64 KiB limit about that limit, not
    // the megabyte: the inflater's buffer grows in steps and stops at the limit.
    let bomb = serde_json::json!({ "a": "a".repeat(1 << 20) });
    for mode in MODES {
        let value = codec(mode)
            .with_compression_leaking_length()
            .with_max_session_size(2 << 20)
            .encode("sid", &bomb, &stamp())
            .unwrap();
        let reader = codec(mode);
        let mut bytes = usize::MAX;
        for _ in 0..3 {
            let region = Region::new(GLOBAL);
            let result = reader.decode::<Value>("sid", &value, at(T0 + 1));
            bytes = bytes.min(region.change().bytes_allocated);
            assert!(matches!(
                result,
                Err(cookie_session::DecodeError::SessionTooLarge { limit: 65_536 })
            ));
        }
        assert!(bytes < 4 * 65_536, "{mode}: {bytes} bytes allocated");
    }
}
