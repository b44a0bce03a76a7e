//! `cookie-session`: generate keys, and encode, decode or inspect cookie values.
//!
//! Exit status: 0 on success, 1 when a cookie is rejected or cannot be encoded (the reason
//! on stderr), 2 on usage errors (including unusable keys and malformed JSON input).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerFormat};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Codec, Inspection, Key, KeyRing, Mode, Stamp, inspect};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Generate keys, and encode, decode or inspect cookie-session cookie values.
///
/// Keys and cookie values are base64url and may begin with `-`: write `--key=VALUE`, and
/// put `--` before a positional VALUE.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random master key (base64url, 32 bytes).
    Keygen,
    /// Encode a JSON value into a cookie value; prints only the value.
    Encode {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        cookie: CookieArgs,
        #[command(flatten)]
        beaker: BeakerArgs,
        /// Idle timeout in seconds, at least 1 (TurboGears' visit timeout; unused for Beaker
        /// cookies, whose timeout is checked when they are read).
        #[arg(long, value_name = "SECS", default_value_t = 1200, value_parser = seconds())]
        idle: u64,
        /// Absolute lifetime in seconds, at least 1 (default 14 days).
        #[arg(long, value_name = "SECS", default_value_t = 14 * 86_400, value_parser = seconds())]
        lifetime: u64,
        /// The JSON data to encode.
        json: String,
    },
    /// Verify and decode a cookie value; prints its data and metadata as JSON.
    Decode {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        cookie: CookieArgs,
        #[command(flatten)]
        beaker: BeakerArgs,
        /// For Beaker cookies: Beaker's `session.timeout` in seconds, at least 1 (none:
        /// never expires).
        #[arg(long, value_name = "SECS", value_parser = seconds())]
        idle: Option<u64>,
        /// The cookie value.
        value: String,
    },
    /// Show a cookie value's header, and a signed cookie's payload, WITHOUT verifying it.
    Inspect {
        /// The cookie value.
        value: String,
    },
}

#[derive(Args)]
struct KeyArgs {
    /// A base64url master key; repeat for rotation: the first encodes, all decode.
    #[arg(long = "key", value_name = "KEY", allow_hyphen_values = true)]
    keys: Vec<String>,
    /// A file of keys, one per line, taken after the --key keys.
    #[arg(long = "key-file", value_name = "FILE")]
    key_files: Vec<PathBuf>,
}

#[derive(Args)]
struct CookieArgs {
    /// signed (HMAC-SHA256; data readable by the client) or encrypted (XAES-256-GCM).
    #[arg(long, value_enum, default_value_t = ModeArg::Signed)]
    mode: ModeArg,
    /// The cookie name the value is bound to (an RFC 6265 token).
    #[arg(long, value_parser = cookie_name)]
    name: String,
    /// The current time as UNIX seconds (default: the system clock).
    #[arg(long, value_name = "UNIX_SECS", allow_negative_numbers = true)]
    now: Option<i64>,
}

#[derive(Args)]
struct BeakerArgs {
    /// native (cookie-session's own format) or beaker (Beaker 1.x / TurboGears 2 cookies,
    /// keyed by --validate-key and --encrypt-key instead of --key/--mode).
    #[arg(long, value_enum, default_value_t = FormatArg::Native)]
    format: FormatArg,
    /// Beaker's `session.validate_key` (visible in `ps` and shell history: prefer
    /// --validate-key-file or the environment variable).
    #[arg(
        long,
        value_name = "KEY",
        allow_hyphen_values = true,
        env = "COOKIE_SESSION_BEAKER_VALIDATE_KEY",
        hide_env_values = true
    )]
    validate_key: Option<String>,
    /// A file holding Beaker's `session.validate_key` (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "validate_key")]
    validate_key_file: Option<PathBuf>,
    /// Beaker's `session.encrypt_key`, for encrypted Beaker cookies (prefer
    /// --encrypt-key-file or the environment variable).
    #[arg(
        long,
        value_name = "KEY",
        allow_hyphen_values = true,
        env = "COOKIE_SESSION_BEAKER_ENCRYPT_KEY",
        hide_env_values = true
    )]
    encrypt_key: Option<String>,
    /// A file holding Beaker's `session.encrypt_key` (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "encrypt_key")]
    encrypt_key_file: Option<PathBuf>,
    /// The AES mode of the Beaker application's crypto library: gcm (`cryptography`) or
    /// ctr (`pycryptodome`).
    #[arg(long, value_enum, default_value_t = CipherArg::Gcm)]
    beaker_cipher: CipherArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Native,
    Beaker,
}

#[derive(Clone, Copy, ValueEnum)]
enum CipherArg {
    Gcm,
    Ctr,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Signed,
    Encrypted,
}

/// Why the command failed, and so its exit status.
enum Failure {
    /// Exit 2: the invocation cannot work (bad key, bad JSON, bad time).
    Usage(String),
    /// Exit 1: the cookie was rejected or could not be encoded.
    Rejected(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits 2 on usage errors
    match run(cli.command) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(Failure::Rejected(why)) => {
            eprintln!("cookie-session: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(why)) => {
            eprintln!("cookie-session: {why}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<String, Failure> {
    match command {
        Command::Keygen => {
            let key = Key::generate().map_err(|e| Failure::Rejected(e.to_string()))?;
            Ok(key.to_base64url().to_string())
        }
        Command::Encode {
            keys,
            cookie,
            beaker,
            idle,
            lifetime,
            json,
        } => {
            let data: Value = serde_json::from_str(&json)
                .map_err(|e| Failure::Usage(format!("JSON argument is not valid JSON: {e}")))?;
            if beaker.format == FormatArg::Beaker {
                let Value::Object(data) = data else {
                    return Err(Failure::Usage("a Beaker session is a JSON object".into()));
                };
                let cookie_data = BeakerCookie::new(data, now(cookie.now)?);
                return beaker_format(&beaker)?
                    .encode(&cookie.name, &cookie_data)
                    .map_err(|e| Failure::Rejected(format!("cannot encode: {e}")));
            }
            let codec = codec(&keys, cookie.mode)?;
            let stamp = Stamp::new(
                now(cookie.now)?,
                Duration::from_secs(idle),
                Duration::from_secs(lifetime),
            )
            .map_err(|e| Failure::Usage(e.to_string()))?;
            codec
                .encode(&cookie.name, &data, &stamp)
                .map_err(|e| Failure::Rejected(format!("cannot encode: {e}")))
        }
        Command::Decode {
            keys,
            cookie,
            beaker,
            idle,
            value,
        } => {
            if beaker.format == FormatArg::Beaker {
                let mut format = beaker_format(&beaker)?;
                if let Some(secs) = idle {
                    format = format.with_timeout(Duration::from_secs(secs));
                }
                let opened = format
                    .decode(&value, now(cookie.now)?)
                    .map_err(|e| Failure::Rejected(format!("cookie rejected: {e}")))?;
                return Ok(pretty(&beaker_json(&opened, idle)));
            }
            let codec = codec(&keys, cookie.mode)?;
            let opened = codec
                .decode::<Value>(&cookie.name, &value, now(cookie.now)?)
                .map_err(|e| Failure::Rejected(format!("cookie rejected: {e}")))?;
            let stamp = opened.stamp;
            Ok(pretty(&json!({
                "format": "native",
                "data": opened.value,
                "session_id": stamp.id().to_string(),
                "key_id": opened.key_id.to_string(),
                "older_key": opened.opened_with_older_key(),
                "issued_at": stamp.issued_at().unix_timestamp(),
                "idle_deadline": stamp.idle_deadline().unix_timestamp(),
                "absolute_deadline": stamp.absolute_deadline().unix_timestamp(),
            })))
        }
        Command::Inspect { value } => {
            let seen =
                inspect(&value).map_err(|e| Failure::Rejected(format!("cannot inspect: {e}")))?;
            Ok(pretty(&inspection_json(&seen)))
        }
    }
}

/// The same shape as a native decode: the user's keys in `data`, Beaker's internal keys in
/// the metadata.
fn beaker_json(cookie: &BeakerCookie, timeout: Option<u64>) -> Value {
    // Whole seconds, like the native output; Beaker's float times stay in `beaker`.
    #[allow(clippy::cast_possible_truncation, reason = "whole seconds are wanted")]
    let issued_at = cookie.accessed_time.floor() as i64;
    json!({
        "format": "beaker",
        "data": cookie.data,
        "session_id": cookie.id,
        "issued_at": issued_at,
        "idle_deadline": timeout.and_then(|t| i64::try_from(t).ok()).map(|t| issued_at.saturating_add(t)),
        "absolute_deadline": null,
        "beaker": {
            "_id": cookie.id,
            "_creation_time": cookie.creation_time,
            "_accessed_time": cookie.accessed_time,
            "_domain": cookie.domain,
            "_path": cookie.path,
        },
    })
}

fn beaker_format(args: &BeakerArgs) -> Result<BeakerFormat, Failure> {
    let validate = beaker_key(args.validate_key.as_deref(), args.validate_key_file.as_ref())?
        .ok_or_else(|| {
            Failure::Usage(
                "--format beaker needs --validate-key-file, COOKIE_SESSION_BEAKER_VALIDATE_KEY or --validate-key".into(),
            )
        })?;
    let encrypt = beaker_key(args.encrypt_key.as_deref(), args.encrypt_key_file.as_ref())?;
    let format = match encrypt.as_deref() {
        None => BeakerFormat::signed(&validate),
        Some(encrypt) => {
            let cipher = match args.beaker_cipher {
                CipherArg::Gcm => BeakerCipher::Gcm,
                CipherArg::Ctr => BeakerCipher::Ctr,
            };
            BeakerFormat::encrypted(&validate, encrypt, cipher)
        }
    };
    format.map_err(|e| Failure::Usage(e.to_string()))
}

/// A Beaker key from the command line or environment, or from a file. Beaker keys are
/// arbitrary text, so only the file's line ending is removed; the text is wiped on drop.
fn beaker_key(
    given: Option<&str>,
    file: Option<&PathBuf>,
) -> Result<Option<Zeroizing<String>>, Failure> {
    if let Some(path) = file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!("cannot read key file {}: {e}", path.display()))
        })?);
        let key = text
            .strip_suffix('\n')
            .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
        return Ok(Some(Zeroizing::new(key.to_owned())));
    }
    Ok(given.map(|k| Zeroizing::new(k.to_owned())))
}

/// Durations in whole seconds, at least one: a zero timeout makes cookies that are
/// already expired.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

/// A cookie name is a usage matter: refused by clap (exit 2) before any work.
fn cookie_name(name: &str) -> Result<String, String> {
    if cookie_session::is_valid_name(name) {
        Ok(name.to_owned())
    } else {
        Err("a cookie name is a non-empty RFC 6265 token (no spaces, controls or ()<>@,;:\\\"/[]?={})".to_owned())
    }
}

fn inspection_json(seen: &Inspection) -> Value {
    // A genuine signed payload is JSON; anything else is shown as (lossy) text.
    let payload = seen.payload.as_ref().map(|bytes| {
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    });
    json!({
        "verified": false,
        "version": seen.version,
        "mode": seen.mode.to_string(),
        "key_id": seen.key_id.to_string(),
        "session_id": seen.session_id.to_string(),
        "issued_at": seen.issued_at,
        "idle_deadline": seen.idle_deadline,
        "absolute_deadline": seen.absolute_deadline,
        "payload": payload,
    })
}

/// The keys in order: every `--key`, then each `--key-file` line; `COOKIE_SESSION_KEY`
/// only when neither is given.
fn codec(args: &KeyArgs, mode: ModeArg) -> Result<Codec, Failure> {
    let mut texts = args.keys.clone();
    for path in &args.key_files {
        let content = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("cannot read key file {}: {e}", path.display())))?;
        texts.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    if texts.is_empty()
        && let Ok(key) = std::env::var("COOKIE_SESSION_KEY")
    {
        texts.push(key);
    }
    if texts.is_empty() {
        return Err(Failure::Usage(
            "no key: pass --key, --key-file or set COOKIE_SESSION_KEY (generate one with `cookie-session keygen`)".into(),
        ));
    }
    let keys = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Key::from_base64url(t).map_err(|e| Failure::Usage(format!("key {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ring = KeyRing::from_keys(keys).map_err(|e| Failure::Usage(e.to_string()))?;
    let mode = match mode {
        ModeArg::Signed => Mode::Signed,
        ModeArg::Encrypted => Mode::Encrypted,
    };
    Ok(Codec::new(mode, ring))
}

fn now(given: Option<i64>) -> Result<OffsetDateTime, Failure> {
    match given {
        None => Ok(OffsetDateTime::now_utc()),
        Some(secs) => OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| Failure::Usage(format!("--now {secs} is not a representable time"))),
    }
}

fn pretty(value: &Value) -> String {
    // Serializing a `Value` to a String cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}
