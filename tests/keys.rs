//! Keys: weak keys refused with advice, nothing leaks through Debug, rotation by key id.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use cookie_session::{Codec, DecodeError, Key, KeyAge, KeyError, KeyRing, MIN_KEY_LEN, Mode};

#[test]
fn short_keys_are_refused_with_their_length() {
    for len in [0, 1, 16, 31] {
        let bytes: Vec<u8> = (0..len).map(|i| u8::try_from(i * 7 + 3).unwrap()).collect();
        assert_eq!(Key::from_bytes(&bytes), Err(KeyError::TooShort { len }));
    }
    let bytes: Vec<u8> = (0..MIN_KEY_LEN)
        .map(|i| u8::try_from(i * 7 + 3).unwrap())
        .collect();
    assert!(Key::from_bytes(&bytes).is_ok());
}

#[test]
fn repeated_and_patterned_keys_are_refused() {
    for byte in [0u8, 0x41, 0xff] {
        assert_eq!(Key::from_bytes(&[byte; 64]), Err(KeyError::LowEntropy));
    }
    assert_eq!(
        Key::from_bytes(&b"ab".repeat(32)),
        Err(KeyError::LowEntropy)
    );
    assert_eq!(
        Key::from_bytes(&b"q7-Xz!p0".repeat(8)),
        Err(KeyError::LowEntropy)
    );
    // 32 bytes with only 4 distinct values and no short period.
    let few: Vec<u8> = (0..32u32)
        .map(|i| b"abcd"[((i * i + i / 3) % 4) as usize])
        .collect();
    assert_eq!(Key::from_bytes(&few), Err(KeyError::LowEntropy));
}

/// Security review, item 6: one extra byte used to get a weak key past the checks.
#[test]
fn weak_keys_with_a_byte_appended_or_a_placeholder_inside_are_refused() {
    // A key file read with its newline: a placeholder, and the newline would be key material.
    assert_eq!(
        Key::from_bytes(b"changemechangemechangemechangeme\n"),
        Err(KeyError::WellKnown)
    );
    for weak in [
        "secretkeysecretkeysecretkeysecretkey1",
        "your-secret-key-your-secret-key-your-secret-key!",
        "my-app-SECRET-KEY-for-production-2026",
        "please change-me before going live, thanks",
    ] {
        assert_eq!(
            Key::from_bytes(weak.as_bytes()),
            Err(KeyError::WellKnown),
            "{weak}"
        );
    }
    // A short period covering all but a byte or two, without any placeholder.
    for weak in [
        "q7-Xz!p0q7-Xz!p0q7-Xz!p0q7-Xz!p0q7-Xz!p0\n".to_owned(),
        format!("{}1", "Tz8#kLm2Qw9".repeat(3)),
        format!("!{}?", "Tz8#kLm2Qw9".repeat(3)),
    ] {
        assert_eq!(
            Key::from_bytes(weak.as_bytes()),
            Err(KeyError::LowEntropy),
            "{weak:?}"
        );
    }
    // A strong key typed as text, but with the key file's newline: refused with advice.
    let text = "kT3#vQ9!mZ2@xL7$pR4%wN8^bH6&jF1*";
    assert!(Key::from_bytes(text.as_bytes()).is_ok());
    for padded in [
        format!("{text}\n"),
        format!("{text}\r\n"),
        format!(" {text}"),
    ] {
        let error = Key::from_bytes(padded.as_bytes()).unwrap_err();
        assert_eq!(error, KeyError::SurroundingWhitespace, "{padded:?}");
        assert!(error.to_string().contains("trim"), "{error}");
    }
    // Random keys, raw or as hex text, pass: the thresholds are far from random data.
    for _ in 0..2000 {
        let key = Key::generate().unwrap();
        let raw = URL_SAFE_NO_PAD
            .decode(key.to_base64url().as_bytes())
            .unwrap();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert!(Key::from_bytes(hex.as_bytes()).is_ok(), "{hex}");
        assert!(Key::from_bytes(key.to_base64url().as_bytes()).is_ok());
    }
}

#[test]
fn well_known_placeholder_secrets_are_refused_in_any_spelling() {
    for secret in [
        "secret",
        "changeme",
        "keyboard cat",
        "Keyboard-Cat",
        "your-secret-key",
        "YOUR_SECRET_KEY",
        "super secret key",
        "you-will-never-guess",
        "your-256-bit-secret",
        "your-secret-key-change-in-production",
    ] {
        assert_eq!(
            Key::from_bytes(secret.as_bytes()),
            Err(KeyError::WellKnown),
            "{secret}"
        );
        assert_eq!(
            Key::from_base64url(secret),
            Err(KeyError::WellKnown),
            "{secret}"
        );
    }
}

#[test]
fn key_errors_say_what_to_do() {
    for err in [
        KeyError::TooShort { len: 8 },
        KeyError::WellKnown,
        KeyError::LowEntropy,
        KeyError::NotBase64,
        KeyError::NotHex,
    ] {
        let msg = err.to_string();
        assert!(msg.contains("cookie-session keygen"), "{msg}");
        assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
    }
}

#[test]
fn base64url_keys_round_trip_and_bad_text_is_refused() {
    let key = Key::generate().unwrap();
    let text = key.to_base64url();
    assert_eq!(text.len(), 43);
    assert_eq!(Key::from_base64url(&text).unwrap(), key);
    assert_eq!(Key::from_base64url(&format!("{}\n", *text)).unwrap(), key);
    // Padded, as `openssl rand -base64 32` prints; wrong padding is refused.
    assert_eq!(Key::from_base64url(&format!("{}=", *text)).unwrap(), key);
    assert_eq!(
        Key::from_base64url(&format!("{}==", *text)),
        Err(KeyError::NotBase64)
    );
    assert_eq!(
        Key::from_base64url("not base64 at all!"),
        Err(KeyError::NotBase64)
    );
    assert_eq!(
        Key::from_base64url("AAAA"),
        Err(KeyError::TooShort { len: 3 })
    );
}

#[test]
fn generated_keys_differ_and_compare_by_value() {
    let a = Key::generate().unwrap();
    let b = Key::generate().unwrap();
    assert_ne!(a, b);
    assert_ne!(a.id(), b.id());
    assert_eq!(a, Key::from_base64url(&a.to_base64url()).unwrap());
}

#[test]
fn debug_output_never_contains_key_material() {
    let generated = Key::generate().unwrap();
    let secret = URL_SAFE_NO_PAD
        .decode(generated.to_base64url().as_bytes())
        .unwrap();
    let texts = [
        generated.to_base64url().to_string(),
        secret.iter().map(|b| format!("{b:02x}")).collect(),
        format!("{secret:?}"),
    ];
    let ring = KeyRing::new(Key::from_bytes(&secret).unwrap())
        .with_older(key(9))
        .unwrap();
    let codec = Codec::new(Mode::Encrypted, ring.clone());
    for shown in [
        format!("{generated:?}"),
        format!("{generated:#?}"),
        format!("{ring:?}"),
        format!("{codec:?}"),
    ] {
        for text in &texts {
            assert!(!shown.contains(text.as_str()), "{shown} leaks {text}");
        }
        assert!(
            shown.contains(&generated.id().to_string()),
            "{shown} should name the key id"
        );
    }
}

#[test]
fn an_older_key_decodes_and_is_flagged_and_the_current_key_encodes() {
    for mode in MODES {
        let old = Codec::new(mode, KeyRing::new(key(1)));
        let value = old.encode("session", &small(), &stamp()).unwrap();

        let rotated = Codec::new(mode, KeyRing::new(key(2)).with_older(key(1)).unwrap());
        let opened = rotated
            .decode::<SessionMap>("session", &value, at(T0))
            .unwrap();
        assert_eq!(opened.value, small());
        assert!(opened.opened_with_older_key());
        assert_eq!(opened.key_age, KeyAge::Older);
        assert_eq!(opened.key_id, key(1).id());

        // Re-issued under the current key: same session, no longer flagged.
        let reissued = rotated
            .encode("session", &opened.value, &opened.stamp)
            .unwrap();
        let again = rotated
            .decode::<SessionMap>("session", &reissued, at(T0))
            .unwrap();
        assert_eq!(again.key_id, key(2).id());
        assert!(!again.opened_with_older_key());
        assert_eq!(again.stamp.id(), opened.stamp.id());
    }
}

#[test]
fn unknown_and_retired_key_ids_are_rejected_by_id() {
    for mode in MODES {
        let value = Codec::new(mode, KeyRing::new(key(1)))
            .encode("session", &small(), &stamp())
            .unwrap();
        // Retired: key 1 was dropped from the ring.
        let retired = Codec::new(mode, KeyRing::new(key(2)).with_older(key(3)).unwrap());
        assert!(matches!(
            open(&retired, "session", &value),
            Err(DecodeError::UnknownKey(id)) if id == key(1).id()
        ));
    }
}

#[test]
fn a_cookie_relabelled_with_another_rings_key_id_fails_authentication() {
    // The id selects exactly one key; pointing it at another key of the ring must not
    // make the cookie verify.
    for mode in MODES {
        let ring = KeyRing::new(key(2)).with_older(key(1)).unwrap();
        let codec = Codec::new(mode, ring);
        let value = codec.encode("session", &small(), &stamp()).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        raw[1..5].copy_from_slice(&key(1).id().to_bytes());
        let relabelled = URL_SAFE_NO_PAD.encode(&raw);
        assert!(matches!(
            open(&codec, "session", &relabelled),
            Err(DecodeError::Invalid)
        ));
    }
}

#[test]
fn rings_refuse_duplicates_and_emptiness() {
    assert_eq!(
        KeyRing::new(key(1)).with_older(key(1)).unwrap_err(),
        KeyError::DuplicateKeyId(key(1).id())
    );
    assert_eq!(KeyRing::from_keys([]).unwrap_err(), KeyError::EmptyRing);
    let ring = KeyRing::from_keys([key(1), key(2), key(3)]).unwrap();
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.current_id(), key(1).id());
    assert_eq!(
        ring.ids().collect::<Vec<_>>(),
        vec![key(1).id(), key(2).id(), key(3).id()]
    );
}

#[test]
fn keys_and_rings_are_zeroized_on_drop() {
    // Compile-time: stops compiling if either type loses its ZeroizeOnDrop guarantee.
    fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<Key>();
    wiped::<KeyRing>();
    wiped::<zeroize::Zeroizing<String>>(); // what `Key::to_base64url` returns
}

/// What `openssl rand -base64 32` prints (standard alphabet, padded, a newline), the same
/// key in base64url, and in hex behind its prefix: one key. Hex without the prefix is read
/// as base64 (it is valid base64), so it is another key, never a silent guess.
#[test]
fn keys_parse_from_base64_in_either_alphabet_and_from_prefixed_hex() {
    for _ in 0..64 {
        let bytes: [u8; 32] = rand::random();
        let Ok(key) = Key::from_bytes(&bytes) else {
            continue;
        };
        let url = key.to_base64url();
        let standard = url.replace('-', "+").replace('_', "/");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        for text in [
            url.to_string(),
            format!("{}=", *url),
            format!("{standard}=\n"),
            standard.clone(),
            format!("hex:{hex}"),
            format!("hex:{}", hex.to_uppercase()),
            format!("  hex:{hex}\n"),
        ] {
            assert_eq!(Key::parse(&text).unwrap(), key, "{text}");
        }
        assert_eq!(Key::from_base64url(&format!("{standard}=")).unwrap(), key);
        // 64 hex digits without the prefix are base64 of 48 other bytes.
        assert!(Key::parse(&hex).map_or(true, |other| other != key));
        // Both alphabets in one text: refused.
        if url.contains(['-', '_']) && url.contains(|c: char| c.is_ascii_alphanumeric()) {
            let mixed = format!("+{}", &url[1..]);
            if mixed.contains(['-', '_']) {
                assert_eq!(Key::parse(&mixed), Err(KeyError::NotBase64), "{mixed}");
            }
        }
    }
    for bad in ["hex:", "hex:abc", "hex:zz", "hex:0g"] {
        assert_eq!(Key::parse(bad), Err(KeyError::NotHex), "{bad}");
    }
    assert_eq!(Key::parse("hex:0102"), Err(KeyError::TooShort { len: 2 }));
}

/// `fn main() -> Result<(), Box<dyn Error>>` prints an error it returns with `Debug`: for
/// key, configuration, store and session errors that is the message (with its causes), on
/// one line, never a dump of the variant.
#[test]
fn errors_returned_from_main_print_their_message() {
    use cookie_session::store::StoreError;
    use cookie_session::{ConfigError, SessionConfig, SessionError};
    let key_error: Box<dyn std::error::Error> = Key::parse("secret").unwrap_err().into();
    let too_short: Box<dyn std::error::Error> = Key::parse("c2hvcnQ").unwrap_err().into();
    let config_error: Box<dyn std::error::Error> = SessionConfig::new(
        cookie_session::Mode::Signed,
        KeyRing::new(Key::generate().unwrap()),
    )
    .with_name("bad name")
    .build()
    .unwrap_err()
    .into();
    let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    let store_error: Box<dyn std::error::Error> = StoreError::Unavailable(Box::new(cause)).into();
    let session_error: Box<dyn std::error::Error> = SessionError::Stored(
        StoreError::Misconfigured("the table has no column expiry".into()),
    )
    .into();
    for (error, expected) in [
        (
            &key_error,
            "KeyError: key is a well-known placeholder secret",
        ),
        (&too_short, "KeyError: key is 5 bytes but at least 32 bytes"),
        (&config_error, "ConfigError: "),
        (
            &store_error,
            "StoreError: the session store is unavailable: connection refused",
        ),
        (
            &session_error,
            "SessionError: the session store failed: the session store is misconfigured: the table has no column expiry",
        ),
    ] {
        let printed = format!("{error:?}");
        assert!(printed.starts_with(expected), "{printed}");
        // One line, and none of the variants' or a driver's Debug.
        assert!(!printed.contains('\n'), "{printed}");
        for dump in [" { ", "Unavailable(", "Custom {", "kind:"] {
            assert!(!printed.contains(dump), "{printed}");
        }
    }
    assert!(format!("{:?}", ConfigError::InvalidName).starts_with("ConfigError: "));
}
