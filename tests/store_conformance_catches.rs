//! The conformance suite catches broken stores: a reference store (`common/faulty.rs`) passes every
//! check, and each deliberately broken variant (ignores versions, resurrects deleted
//! records, shortens on touch, loads expired records, lets two creates win) fails the check
//! that guards against it.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::faulty::{Fault, Faulty};
use cookie_session::store::conformance::{self, block_on};

/// Every check, by name, against a store with `fault`: the names of those that fail.
fn failing(fault: Fault) -> Vec<&'static str> {
    macro_rules! run {
        ($($check:ident),+) => {{
            let mut failed = Vec::new();
            $(
                if block_on(conformance::$check(Faulty::new(fault))).is_err() {
                    failed.push(stringify!($check));
                }
            )+
            failed
        }};
    }
    let failed = run!(
        create_then_load,
        duplicate_create,
        absent_and_expired_load_as_none,
        save_compares_and_sets,
        gone_is_never_recreated,
        touch_never_shortens,
        rename_moves_and_refuses_an_occupied_key,
        delete_is_idempotent,
        sweep_removes_only_expired_and_drains,
        payloads_round_trip_exactly,
        concurrent_writers_have_one_winner,
        long_deadlines_are_kept_exactly,
        debug_output_hides_data
    );
    assert!(failed.iter().all(|name| conformance::CHECKS.contains(name)));
    failed
}

#[test]
fn the_reference_store_passes_every_check() {
    assert_eq!(failing(Fault::None), Vec::<&str>::new());
}

#[test]
fn a_store_that_ignores_versions_fails() {
    let failed = failing(Fault::IgnoresVersions);
    assert!(failed.contains(&"save_compares_and_sets"), "{failed:?}");
    assert!(
        failed.contains(&"concurrent_writers_have_one_winner"),
        "{failed:?}"
    );
}

#[test]
fn a_store_that_resurrects_deleted_records_fails() {
    let failed = failing(Fault::ResurrectsDeleted);
    assert!(failed.contains(&"gone_is_never_recreated"), "{failed:?}");
}

#[test]
fn a_store_that_shortens_on_touch_fails() {
    assert_eq!(failing(Fault::ShortensOnTouch), ["touch_never_shortens"]);
}

#[test]
fn a_store_that_loads_expired_records_fails() {
    let failed = failing(Fault::LoadsExpired);
    assert!(
        failed.contains(&"absent_and_expired_load_as_none"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"long_deadlines_are_kept_exactly"),
        "{failed:?}"
    );
}

#[test]
fn a_store_where_the_last_create_wins_fails() {
    let failed = failing(Fault::LastCreateWins);
    assert!(failed.contains(&"duplicate_create"), "{failed:?}");
    assert!(
        failed.contains(&"concurrent_writers_have_one_winner"),
        "{failed:?}"
    );
}
