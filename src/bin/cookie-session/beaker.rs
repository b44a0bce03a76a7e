//! The Beaker side of the CLI (`--features cli,beaker`): Beaker 1.x / TurboGears 2 cookies.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerFormat};
use cookie_session::time::OffsetDateTime;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{Failure, pretty};

#[derive(Args)]
pub(crate) struct BeakerArgs {
    /// native (cookie-session's own format) or beaker (Beaker 1.x / TurboGears 2 cookies,
    /// keyed by the validate and encrypt keys instead of --key).
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

impl BeakerArgs {
    pub(crate) fn is_beaker(&self) -> bool {
        self.format == FormatArg::Beaker
    }
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

pub(crate) fn encode(
    args: &BeakerArgs,
    name: &str,
    data: Value,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let Value::Object(data) = data else {
        return Err(Failure::Usage("a Beaker session is a JSON object".into()));
    };
    format(args)?
        .encode(name, &BeakerCookie::new(data, now))
        .map_err(|e| Failure::Rejected(format!("cannot encode: {e}")))
}

pub(crate) fn decode(
    args: &BeakerArgs,
    idle: Option<u64>,
    value: &str,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let mut format = format(args)?;
    if let Some(secs) = idle {
        format = format.with_timeout(Duration::from_secs(secs));
    }
    let opened = format
        .decode(value, now)
        .map_err(|e| Failure::Rejected(format!("cookie rejected: {e}")))?;
    Ok(pretty(&json_of(&opened, idle)))
}

/// The same shape as a native decode: the user's keys in `data`, Beaker's internal keys in
/// the metadata.
fn json_of(cookie: &BeakerCookie, timeout: Option<u64>) -> Value {
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

fn format(args: &BeakerArgs) -> Result<BeakerFormat, Failure> {
    let validate = key(args.validate_key.as_deref(), args.validate_key_file.as_ref())?
        .ok_or_else(|| {
            Failure::Usage(
                "--format beaker needs --validate-key-file, COOKIE_SESSION_BEAKER_VALIDATE_KEY or --validate-key".into(),
            )
        })?;
    let encrypt = key(args.encrypt_key.as_deref(), args.encrypt_key_file.as_ref())?;
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
fn key(given: Option<&str>, file: Option<&PathBuf>) -> Result<Option<Zeroizing<String>>, Failure> {
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
