//! The stateful model test of the whole session layer (`tests/model`), by proptest: see
//! the model's documentation for what is run and checked.
#![allow(clippy::unwrap_used, clippy::panic)]

mod model;

use cookie_session::Mode;
use model::{Kind, Op, run_model};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, 0..5u8, any::<u64>()).prop_map(|(k, s, seed)| Op::Insert(k, s, seed)),
        3 => (0..2u8).prop_map(Op::Increment),
        2 => (0..4u8).prop_map(Op::Remove),
        1 => Just(Op::Clear),
        1 => Just(Op::Regenerate),
        1 => Just(Op::Delete),
        2 => Just(Op::Read),
        1 => (0..3u8).prop_map(Op::Flash),
        1 => Just(Op::TakeFlashes),
        2 => (1..=60u16).prop_map(Op::Wait),
        1 => Just(Op::Expire),
        1 => Just(Op::Rotate),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    let mode = prop_oneof![Just(Mode::Signed), Just(Mode::Encrypted)];
    prop_oneof![
        5 => (mode.clone(), any::<bool>(), 1..=8usize, proptest::bool::weighted(0.2)).prop_map(
            |(mode, compress, cookies, beaker)| Kind::Cookie { mode, compress, cookies, beaker }
        ),
        1 => mode.prop_map(|mode| Kind::ServerSide { mode }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 160,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_session_layer_behaves_like_a_map(kind in kind(), ops in proptest::collection::vec(op(), 1..40)) {
        run_model(kind, &ops);
    }
}

/// The sequences that found defects, kept as plain tests.
#[test]
fn a_split_session_written_again_keeps_its_pieces() {
    for mode in [Mode::Signed, Mode::Encrypted] {
        for cookies in 2..=8 {
            let kind = Kind::Cookie {
                mode,
                compress: false,
                cookies,
                beaker: false,
            };
            run_model(
                kind,
                &[
                    Op::Insert(0, 3, 1),
                    Op::Insert(1, 3, 2),
                    Op::Increment(0),
                    Op::Insert(1, 2, 3),
                    Op::Read,
                ],
            );
        }
    }
}
