//! Drives the built `cookie-session` binary: keygen, encode, decode, inspect, exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

#[cfg(feature = "postgres")]
mod services;

use std::process::{Command, Output};

use cookie_session::Key;
use serde_json::Value;

const T0: &str = "1767225600";

fn run(args: &[&str], env_key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cookie-session"));
    cmd.args(args)
        .env_remove("COOKIE_SESSION_KEY")
        .env_remove("COOKIE_SESSION_BEAKER_VALIDATE_KEY")
        .env_remove("COOKIE_SESSION_BEAKER_ENCRYPT_KEY");
    if let Some(key) = env_key {
        cmd.env("COOKIE_SESSION_KEY", key);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim_end()
        .to_owned()
}

fn keygen() -> String {
    stdout(&run(&["keygen"], None))
}

/// A valid key whose base64url text begins with `-` (first byte 0b111110xx).
fn dash_key() -> String {
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| {
            if i == 0 {
                0xf8
            } else {
                i.wrapping_mul(53) ^ 0x5a
            }
        })
        .collect();
    let text = Key::from_bytes(&bytes).unwrap().to_base64url().to_string();
    assert!(text.starts_with('-'));
    text
}

#[test]
fn keygen_prints_a_fresh_usable_key() {
    let (a, b) = (keygen(), keygen());
    assert_ne!(a, b);
    assert_eq!(a.len(), 43);
    assert!(Key::from_base64url(&a).is_ok());
}

#[test]
fn encode_then_decode_round_trips_in_both_modes() {
    let key = keygen();
    for mode in ["signed", "encrypted"] {
        let k = format!("--key={key}");
        let value = stdout(&run(
            &[
                "encode",
                &k,
                "--mode",
                mode,
                "--name",
                "sid",
                "--now",
                T0,
                r#"{"user":7}"#,
            ],
            None,
        ));
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // No --mode: the cookie's first byte says which.
        let out = stdout(&run(
            &["decode", &k, "--name", "sid", "--now", T0, "--", &value],
            None,
        ));
        let decoded: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(decoded["data"]["user"], 7);
        assert_eq!(decoded["mode"], mode);
        assert_eq!(decoded["issued_at_rfc3339"], "2026-01-01T00:00:00Z");
        assert_eq!(decoded["idle_deadline_rfc3339"], "2026-01-01T00:20:00Z");
        assert_eq!(decoded["issued_at"], 1_767_225_600);
        assert_eq!(decoded["idle_deadline"], 1_767_225_600 + 1200);
        assert_eq!(decoded["absolute_deadline"], 1_767_225_600 + 14 * 86_400);
        assert_eq!(decoded["older_key"], false);
        assert_eq!(decoded["session_id"].as_str().unwrap().len(), 32);
    }
}

#[test]
fn keys_beginning_with_a_dash_work_in_both_spellings() {
    let key = dash_key();
    let eq = format!("--key={key}");
    let value = stdout(&run(
        &["encode", &eq, "--name", "s", "--now", T0, "{}"],
        None,
    ));
    let spaced = run(
        &[
            "decode", "--key", &key, "--name", "s", "--now", T0, "--", &value,
        ],
        None,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&spaced)).unwrap()["data"],
        serde_json::json!({})
    );
}

#[test]
fn key_files_and_the_environment_supply_keys_and_older_keys_are_flagged() {
    let (old, new) = (keygen(), keygen());
    let value = stdout(&run(
        &["encode", "--name", "s", "--now", T0, r#"{"a":1}"#],
        Some(&old),
    ));

    let dir = std::env::temp_dir().join(format!("cookie-session-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, format!("{new}\n\n{old}\n")).unwrap();
    let file = file.to_str().unwrap();

    let out = stdout(&run(
        &[
            "decode",
            "--key-file",
            file,
            "--name",
            "s",
            "--now",
            T0,
            "--",
            &value,
        ],
        None,
    ));
    let decoded: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decoded["older_key"], true);
    assert_eq!(
        decoded["key_id"],
        Key::from_base64url(&old).unwrap().id().to_string()
    );

    // The first key encodes: a cookie encoded with the file's keys is under `new`.
    let fresh = stdout(&run(
        &[
            "encode",
            "--key-file",
            file,
            "--name",
            "s",
            "--now",
            T0,
            "{}",
        ],
        None,
    ));
    let seen: Value =
        serde_json::from_str(&stdout(&run(&["inspect", "--", &fresh], None))).unwrap();
    assert_eq!(
        seen["key_id"],
        Key::from_base64url(&new).unwrap().id().to_string()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_shows_the_header_and_only_a_signed_payload() {
    let key = format!("--key={}", keygen());
    for (mode, payload) in [
        ("signed", serde_json::json!({"x": "y"})),
        ("encrypted", Value::Null),
    ] {
        let value = stdout(&run(
            &[
                "encode",
                &key,
                "--mode",
                mode,
                "--name",
                "s",
                "--now",
                T0,
                r#"{"x":"y"}"#,
            ],
            None,
        ));
        let seen: Value =
            serde_json::from_str(&stdout(&run(&["inspect", "--", &value], None))).unwrap();
        assert_eq!(seen["verified"], false);
        assert_eq!(seen["version"], 2);
        assert_eq!(seen["mode"], mode);
        assert_eq!(seen["issued_at"], 1_767_225_600);
        assert_eq!(seen["payload"], payload);
    }
}

#[test]
fn inspect_inflates_a_compressed_signed_payload_and_names_the_flags() {
    let vectors: Value = serde_json::from_str(include_str!("vectors/v2.json")).unwrap();
    let v = vectors["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "signed-compressed")
        .unwrap();
    let seen: Value = serde_json::from_str(&stdout(&run(
        &["inspect", "--", v["value"].as_str().unwrap()],
        None,
    )))
    .unwrap();
    assert_eq!(seen["compressed"], true);
    assert_eq!(seen["chunks"], 1);
    let payload: Value = serde_json::from_str(v["payload"].as_str().unwrap()).unwrap();
    assert_eq!(seen["payload"], payload);
}

#[test]
fn rejected_cookies_exit_1_with_the_reason_on_stderr() {
    let key = format!("--key={}", keygen());
    let other_key = format!("--key={}", keygen());
    let value = stdout(&run(
        &["encode", &key, "--name", "s", "--now", T0, "{}"],
        None,
    ));
    let cases: [(&[&str], &str); 4] = [
        (
            &["decode", &key, "--name", "other", "--now", T0, "--", &value],
            "wrong key, wrong --name, or altered",
        ),
        (
            &[
                "decode",
                &key,
                "--name",
                "s",
                "--now",
                "1767300000",
                "--",
                &value,
            ],
            "expired",
        ),
        (
            &[
                "decode", &other_key, "--name", "s", "--now", T0, "--", &value,
            ],
            "not in the key ring",
        ),
        (
            &["inspect", "--", "not a cookie"],
            "not in the cookie-session format",
        ),
    ];
    for (args, reason) in cases {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(5000));
    let out = run(&["encode", &key, "--name", "s", &big], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit is 4096"));
}

#[test]
fn usage_errors_exit_2() {
    let key = format!("--key={}", keygen());
    let cases: [&[&str]; 8] = [
        &["bogus"],
        &["encode", "--name", "s", "{}"], // no key anywhere
        &["encode", "--key=keyboard-cat", "--name", "s", "{}"], // weak key
        &["encode", &key, "--name", "s", "{not json"],
        &["decode", &key, "--name", "s"], // missing VALUE
        &["encode", &key, "--mode", "rot13", "--name", "s", "{}"],
        &[
            "decode", &key, "--mode", "signed", "--name", "s", "--", "AAAA",
        ], // the cookie's own
        &["encode", &key, "--name", "s", "[1, 2]"], // not an object: no session holds it
    ];
    for args in cases {
        let out = run(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let weak = run(&["encode", "--key=keyboard-cat", "--name", "s", "{}"], None);
    assert!(String::from_utf8_lossy(&weak.stderr).contains("cookie-session keygen"));
}

/// The Beaker vectors file and its vector called `name` (cookies made by the real Beaker).
#[cfg(feature = "beaker")]
fn beaker_vector(name: &str) -> (Value, Value) {
    let file: Value = serde_json::from_str(include_str!("vectors/beaker.json")).unwrap();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone();
    (file, v)
}

const VALIDATE: &str = "--validate-key=8f0c6a52-5b1e-4f43-9a7e-2d3c4b5a6f70";

#[cfg(feature = "beaker")]
#[test]
fn beaker_cookies_made_by_real_beaker_decode_with_internal_keys_as_metadata() {
    let (file, v) = beaker_vector("gcm-simple");
    let now = format!("{}", v["now"].as_f64().unwrap() as i64);
    let encrypt = format!("--encrypt-key={}", file["encrypt_key"].as_str().unwrap());
    let args = [
        "decode",
        "--format",
        "beaker",
        VALIDATE,
        &encrypt,
        "--name",
        "myproject",
        "--now",
        &now,
        "--",
        v["value"].as_str().unwrap(),
    ];
    let out: Value = serde_json::from_str(&stdout(&run(&args, None))).unwrap();
    assert_eq!(out["format"], "beaker");
    assert_eq!(out["data"], v["data"], "only the user's keys");
    assert_eq!(out["session_id"], v["internal"]["_id"]);
    assert_eq!(
        out["beaker"]["_creation_time"],
        v["internal"]["_creation_time"]
    );
    assert_eq!(out["beaker"]["_path"], "/");
}

#[cfg(feature = "beaker")]
#[test]
fn beaker_encode_decode_timeout_and_usage_errors() {
    let value = stdout(&run(
        &[
            "encode",
            "--format",
            "beaker",
            VALIDATE,
            "--name",
            "myproject",
            "--now",
            T0,
            r#"{"user":"carol"}"#,
        ],
        None,
    ));
    assert!(value.len() > 40 && value[..40].bytes().all(|b| b.is_ascii_hexdigit()));
    let decode = |now: &str, idle: &str| {
        run(
            &[
                "decode",
                "--format",
                "beaker",
                VALIDATE,
                "--name",
                "myproject",
                "--now",
                now,
                "--idle",
                idle,
                "--",
                &value,
            ],
            None,
        )
    };
    let out: Value = serde_json::from_str(&stdout(&decode("1767226200", "600"))).unwrap();
    assert_eq!(out["data"]["user"], "carol");
    assert_eq!(out["idle_deadline"], 1_767_225_600 + 600);
    let expired = decode("1767226201", "600");
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));
    // Wrong key: rejected (1). No validate key, or a list as data: usage (2).
    let wrong = run(
        &[
            "decode",
            "--format",
            "beaker",
            "--validate-key=other",
            "--name",
            "myproject",
            "--",
            &value,
        ],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(
        run(
            &[
                "decode",
                "--format",
                "beaker",
                "--name",
                "myproject",
                "--",
                &value
            ],
            None
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        run(
            &[
                "encode", "--format", "beaker", VALIDATE, "--name", "m", "[1]"
            ],
            None
        )
        .status
        .code(),
        Some(2)
    );
}

/// Security review, item 8: Beaker keys need not appear on the command line.
#[cfg(feature = "beaker")]
#[test]
fn beaker_keys_come_from_files_or_the_environment() {
    let (file, v) = beaker_vector("gcm-simple");
    let validate = file["validate_key"].as_str().unwrap();
    let encrypt = file["encrypt_key"].as_str().unwrap();
    let now = format!("{}", v["now"].as_f64().unwrap() as i64);
    let dir = std::env::temp_dir().join(format!("cookie-session-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let validate_file = dir.join("validate");
    let encrypt_file = dir.join("encrypt");
    // Key files as editors write them: with a trailing newline.
    std::fs::write(&validate_file, format!("{validate}\n")).unwrap();
    std::fs::write(&encrypt_file, format!("{encrypt}\r\n")).unwrap();
    let base = [
        "decode",
        "--format",
        "beaker",
        "--name",
        "myproject",
        "--now",
        &now,
    ];
    let value = v["value"].as_str().unwrap();

    let from_files = run(
        &[
            &base[..],
            &[
                "--validate-key-file",
                validate_file.to_str().unwrap(),
                "--encrypt-key-file",
                encrypt_file.to_str().unwrap(),
                "--",
                value,
            ],
        ]
        .concat(),
        None,
    );
    let out: Value = serde_json::from_str(&stdout(&from_files)).unwrap();
    assert_eq!(out["data"], v["data"]);

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cookie-session"));
    let from_env = cmd
        .args([&base[..], &["--", value]].concat())
        .env_remove("COOKIE_SESSION_KEY")
        .env("COOKIE_SESSION_BEAKER_VALIDATE_KEY", validate)
        .env("COOKIE_SESSION_BEAKER_ENCRYPT_KEY", encrypt)
        .output()
        .unwrap();
    let out: Value = serde_json::from_str(&stdout(&from_env)).unwrap();
    assert_eq!(out["data"], v["data"]);

    // --help names the variables but never shows their values.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cookie-session"));
    let help = cmd
        .args(["decode", "--help"])
        .env("COOKIE_SESSION_BEAKER_VALIDATE_KEY", validate)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("COOKIE_SESSION_BEAKER_VALIDATE_KEY"),
        "{help}"
    );
    assert!(!help.contains(validate), "{help}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Security review, item 8: a bad name or a zero duration is a usage error (2), not a
/// rejected cookie (1) or an already expired one (0).
#[test]
fn bad_names_and_zero_durations_are_usage_errors() {
    let key = format!("--key={}", keygen());
    let cases: [&[&str]; 7] = [
        &["encode", &key, "--name", "my session", "{}"],
        &["encode", &key, "--name", "a;b", "{}"],
        &["decode", &key, "--name", "a=b", "--", "AAAA"],
        &["encode", &key, "--name", "s", "--idle", "0", "{}"],
        &["encode", &key, "--name", "s", "--lifetime", "0", "{}"],
        &[
            "encode", "--format", "beaker", VALIDATE, "--name", "x y", "{}",
        ],
        &[
            "decode", "--format", "beaker", VALIDATE, "--name", "s", "--idle", "0", "--", "AAAA",
        ],
    ];
    for args in cases {
        let out = run(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing is printed");
    }
    let out = run(&["encode", &key, "--name", "my session", "{}"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 6265 token"));
}

#[test]
fn what_operators_paste_is_understood_and_times_are_readable() {
    let key = format!("--key={}", keygen());
    let value = stdout(&run(
        &[
            "encode",
            &key,
            "--mode",
            "encrypted",
            "--name",
            "sid",
            "--now",
            T0,
            r#"{"u":1}"#,
        ],
        None,
    ));
    let pasted = [
        value.clone(),
        format!("sid={value}"),
        format!("Cookie: theme=dark; sid={value}; lang=en"),
        format!("cookie:sid=\"{value}\""),
        format!("theme=dark; sid={value}"),
    ];
    for input in &pasted {
        let out = run(
            &["decode", &key, "--name", "sid", "--now", T0, "--", input],
            None,
        );
        let decoded: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(decoded["data"]["u"], 1, "{input}");
        assert_eq!(decoded["mode"], "encrypted");
        let out = run(&["inspect", "--name", "sid", "--", input], None);
        let seen: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(seen["issued_at_rfc3339"], "2026-01-01T00:00:00Z", "{input}");
        assert_eq!(seen["absolute_deadline_rfc3339"], "2026-01-15T00:00:00Z");
    }
    // A header without the named cookie, or several cookies without --name.
    let out = run(&["decode", &key, "--name", "other", "--", &pasted[2]], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no cookie called other"));
    let out = run(&["inspect", "--", &pasted[2]], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_expired_cookie_names_its_deadline_and_can_still_be_shown() {
    let key = format!("--key={}", keygen());
    let value = stdout(&run(
        &[
            "encode",
            &key,
            "--name",
            "s",
            "--now",
            T0,
            "--remember",
            r#"{"cart":[1]}"#,
        ],
        None,
    ));
    let later = "1767227000"; // 1400 s later: past the 20-minute idle deadline
    let out = run(
        &["decode", &key, "--name", "s", "--now", later, "--", &value],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expired at 2026-01-01T00:20:00Z")
            && stderr.contains("idle timeout")
            && stderr.contains("1767226800")
            && stderr.contains("--ignore-expiry"),
        "{stderr}"
    );
    let out = run(
        &[
            "decode",
            &key,
            "--name",
            "s",
            "--now",
            later,
            "--ignore-expiry",
            "--",
            &value,
        ],
        None,
    );
    let decoded: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(decoded["data"]["cart"], serde_json::json!([1]));
    assert_eq!(decoded["expired"]["at_rfc3339"], "2026-01-01T00:20:00Z");
    assert_eq!(decoded["persistence"], "persistent");
    // --ignore-expiry never makes a forgery readable.
    let out = run(
        &[
            "decode",
            &key,
            "--name",
            "x",
            "--now",
            later,
            "--ignore-expiry",
            "--",
            &value,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn help_is_the_long_help() {
    let out = run(&["--help"], None);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--key=VALUE") && help.contains("Cookie:"),
        "{help}"
    );
    let out = run(&["decode", "--help"], None);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--ignore-expiry") && !help.contains("--mode"),
        "{help}"
    );
}

/// `--features cli` alone is a native-only tool; Beaker comes with `--features cli,beaker`.
#[cfg(not(feature = "beaker"))]
#[test]
fn without_the_beaker_feature_there_is_no_beaker_format() {
    let out = run(
        &["decode", "--format", "beaker", "--name", "s", "--", "AAAA"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `sweep --store sqlite:PATH` removes expired sessions for cron, and nothing else.
#[cfg(feature = "sqlite")]
#[test]
fn sweep_removes_expired_sessions_from_an_sqlite_store() {
    use cookie_session::store::{SessionStore, SqliteStore, StoreKey, block_on};
    let dir = std::env::temp_dir().join(format!("cookie-session-cli-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    let t0 = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        for n in 0..25u8 {
            let ttl = if n < 20 { 60 } else { 86_400 };
            block_on(store.create(
                &StoreKey::from_bytes([n; 32]),
                b"x",
                t0 + time::Duration::seconds(ttl),
                t0,
            ))
            .unwrap();
        }
    }
    let target = format!("sqlite:{}", path.display());
    let later = "1767229200";
    let out = run(
        &["sweep", "--store", &target, "--batch", "7", "--now", later],
        None,
    );
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["removed"], 20);
    let store = SqliteStore::open(&path).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(1_767_229_200).unwrap();
    for n in 20..25u8 {
        assert!(
            block_on(store.load(&StoreKey::from_bytes([n; 32]), at))
                .unwrap()
                .is_some()
        );
    }
    // Usage errors: no such file, an unknown store kind.
    let missing = format!("sqlite:{}", dir.join("nope.db").display());
    for store in [missing.as_str(), "redis://localhost"] {
        assert_eq!(
            run(&["sweep", "--store", store], None).status.code(),
            Some(2),
            "{store}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sweep --store files:DIR` removes the expired records of a file store, and no live one.
#[cfg(feature = "files")]
#[test]
fn sweep_removes_expired_sessions_from_a_file_store() {
    use cookie_session::store::{FileStore, SessionStore, StoreKey, block_on};
    let dir = std::env::temp_dir().join(format!("cookie-session-cli-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t0 = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    {
        let store = FileStore::open(&dir).unwrap();
        for n in 0..12u8 {
            let ttl = if n < 9 { 60 } else { 86_400 };
            block_on(store.create(
                &StoreKey::from_bytes([n; 32]),
                b"x",
                t0 + time::Duration::seconds(ttl),
                t0,
            ))
            .unwrap();
        }
    }
    let target = format!("files:{}", dir.display());
    let out = run(
        &[
            "sweep",
            "--store",
            &target,
            "--batch",
            "4",
            "--now",
            "1767229200",
        ],
        None,
    );
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["removed"], 9);
    let store = FileStore::open(&dir).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(1_767_229_200).unwrap();
    for n in 0..12u8 {
        let live = block_on(store.load(&StoreKey::from_bytes([n; 32]), at)).unwrap();
        assert_eq!(live.is_some(), n >= 9, "{n}");
    }
    let missing = format!("files:{}", dir.join("nope").display());
    assert_eq!(
        run(&["sweep", "--store", &missing], None).status.code(),
        Some(2)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sweep --store postgres:URL#TABLE --turbogears-visit` is the Visit documents'
/// housekeeping: visits expired more than `--keep-days` ago (default 7) go, with their
/// `--identity-table` rows; later-expired and live ones stay.
#[cfg(feature = "postgres")]
#[test]
fn sweep_keeps_turbogears_visits_for_keep_days_and_takes_their_identities() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::current_name();
        let identity = format!("{table}_identity");
        let sql = services::postgres_client(&url).await;
        sql.batch_execute(&format!(
            "CREATE TABLE {table} (visit_key varchar(40) PRIMARY KEY, session_data bytea,
                 created timestamp NOT NULL DEFAULT now(), expiry timestamp);
             CREATE TABLE {identity} (visit_key varchar(40) PRIMARY KEY, user_id integer);"
        ))
        .await
        .unwrap();
        let t0 = 1_767_225_600_i64;
        for (key, expiry, user) in [
            ("old", t0 - 10 * 86_400, 1),
            ("recent", t0 - 3 * 86_400, 2),
            ("live", t0 + 86_400, 3),
        ] {
            #[allow(clippy::cast_precision_loss)]
            let expiry = expiry as f64;
            sql.execute(
                &format!(
                    "INSERT INTO {table} (visit_key, expiry)
                     VALUES ($1, to_timestamp($2::float8) AT TIME ZONE 'UTC')"
                ),
                &[&key, &expiry],
            )
            .await
            .unwrap();
            sql.execute(
                &format!("INSERT INTO {identity} (visit_key, user_id) VALUES ($1, $2)"),
                &[&key, &user],
            )
            .await
            .unwrap();
        }
        let store = format!("postgres:{url}#{table}");
        let now = t0.to_string();
        let sweep = |extra: &[&str]| {
            let mut args = vec!["sweep", "--store", &store, "--turbogears-visit"];
            args.extend(["--identity-table", &identity, "--now", &now]);
            args.extend(extra);
            let out = run(&args, None);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_str::<Value>(&stdout(&out)).unwrap()["removed"].clone()
        };
        let keys = |table: String| {
            let sql = &sql;
            async move {
                sql.query(&format!("SELECT visit_key FROM {table} ORDER BY 1"), &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(sweep(&[]), 1, "the visit expired 10 days ago");
        assert_eq!(keys(table.clone()).await, ["live", "recent"]);
        assert_eq!(keys(identity.clone()).await, ["live", "recent"]);
        assert_eq!(sweep(&["--keep-days", "4"]), 0);
        assert_eq!(
            sweep(&["--keep-days", "0"]),
            1,
            "the visit expired 3 days ago"
        );
        assert_eq!(keys(table.clone()).await, ["live"]);
        assert_eq!(keys(identity.clone()).await, ["live"]);
        sql.batch_execute(&format!("DROP TABLE {identity}"))
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}
