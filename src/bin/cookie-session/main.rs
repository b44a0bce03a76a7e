//! `cookie-session`: generate keys, and encode, decode or inspect cookie values.
//!
//! Exit status: 0 on success, 1 when a cookie is rejected or cannot be encoded (the reason
//! on stderr), 2 on usage errors (including unusable keys and malformed JSON input).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cookie_session::time::OffsetDateTime;
use cookie_session::time::format_description::well_known::Rfc3339;
use cookie_session::{
    Codec, Deadline, DecodeError, Inspection, Key, KeyRing, Mode, Persistence, Stamp, inspect,
};
use serde_json::{Value, json};

#[cfg(feature = "beaker")]
mod beaker;

/// Generate keys, and encode, decode or inspect cookie-session cookie values.
///
/// VALUE may be pasted as it comes: the bare cookie value, `name=value`, or a whole
/// `Cookie:` request header (the cookie called --name is picked from it).
///
/// Keys and cookie values are base64url and may begin with `-`: write `--key=VALUE`, and
/// put `--` before a positional VALUE. Keys are safer in a file (--key-file) or in
/// COOKIE_SESSION_KEY than on the command line, where `ps` and shell history see them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random master key (base64url, 32 bytes).
    Keygen,
    /// Encode a JSON object into a cookie value; prints only the value.
    Encode {
        #[command(flatten)]
        keys: KeyArgs,
        /// signed (HMAC-SHA256; data readable by the client) or encrypted (XAES-256-GCM).
        #[arg(long, value_enum, default_value_t = ModeArg::Signed)]
        mode: ModeArg,
        #[command(flatten)]
        cookie: CookieArgs,
        #[cfg(feature = "beaker")]
        #[command(flatten)]
        beaker: beaker::BeakerArgs,
        /// Idle timeout in seconds, at least 1 (TurboGears' visit timeout; unused for Beaker
        /// cookies, whose timeout is checked when they are read).
        #[arg(long, value_name = "SECS", default_value_t = 1200, value_parser = seconds())]
        idle: u64,
        /// Absolute lifetime in seconds, at least 1 (default 14 days).
        #[arg(long, value_name = "SECS", default_value_t = 14 * 86_400, value_parser = seconds())]
        lifetime: u64,
        /// Make the cookie persistent for this session ("remember me"), whatever the
        /// application's configuration says.
        #[arg(long)]
        remember: bool,
        /// The session data: a JSON object (what a session can hold).
        json: String,
    },
    /// Verify and decode a cookie value (the mode comes from the cookie); prints its data
    /// and metadata as JSON.
    Decode {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        cookie: CookieArgs,
        #[cfg(feature = "beaker")]
        #[command(flatten)]
        beaker: beaker::BeakerArgs,
        /// For Beaker cookies: Beaker's `session.timeout` in seconds, at least 1 (none:
        /// never expires).
        #[cfg(feature = "beaker")]
        #[arg(long, value_name = "SECS", value_parser = seconds())]
        idle: Option<u64>,
        /// Show the data of an authentic cookie even if it has expired (it is decoded as
        /// of the second before its first deadline); the output says it expired.
        #[arg(long)]
        ignore_expiry: bool,
        /// The cookie value, `name=value`, or a `Cookie:` header.
        value: String,
    },
    /// Remove expired server-side sessions from a store, in batches, until none is left
    /// (for cron; a server runs the same sweeper in the background). Prints the count.
    /// Serves the stores of the build that keep expired records: SQLite (`sqlite`
    /// feature), files (`files`) and PostgreSQL (`postgres`: also TurboGears' visit
    /// table, with its housekeeping). Redis and memcached expire records themselves.
    #[cfg(any(feature = "sqlite", feature = "files", feature = "postgres"))]
    Sweep {
        /// The store: `sqlite:PATH` (the table `sessions`), `sqlite:PATH#TABLE`,
        /// `files:DIR`, or `postgres:URL` / `postgres:URL#TABLE` (the table `sessions`, or
        /// `visit` with `--turbogears-visit`).
        #[arg(long, value_name = "STORE")]
        store: String,
        /// PostgreSQL: the table is a TurboGears `visit` table (`visit_key`, `expiry`,
        /// `session_data`), whose expired visits are kept 7 days unless `--keep-days`.
        #[cfg(feature = "postgres")]
        #[arg(long)]
        turbogears_visit: bool,
        /// PostgreSQL: delete only rows that expired more than this many days ago (the
        /// Visit documents' `keep_days`).
        #[cfg(feature = "postgres")]
        #[arg(long, value_name = "DAYS")]
        keep_days: Option<u64>,
        /// PostgreSQL: delete each swept row's row in this table too (same key column),
        /// e.g. TurboGears' `visit_identity`.
        #[cfg(feature = "postgres")]
        #[arg(long, value_name = "TABLE")]
        identity_table: Option<String>,
        /// At most this many records per statement.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        batch: usize,
        /// The current time as UNIX seconds (default: the system clock).
        #[arg(long, value_name = "UNIX_SECS", allow_negative_numbers = true)]
        now: Option<i64>,
    },
    /// Show a cookie value's header, and a signed cookie's payload, WITHOUT verifying it.
    Inspect {
        /// The cookie to pick from a pasted `Cookie:` header.
        #[arg(long, value_parser = cookie_name)]
        name: Option<String>,
        /// The cookie value, `name=value`, or a `Cookie:` header.
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
    /// The cookie name the value is bound to (an RFC 6265 token).
    #[arg(long, value_parser = cookie_name)]
    name: String,
    /// The current time as UNIX seconds (default: the system clock).
    #[arg(long, value_name = "UNIX_SECS", allow_negative_numbers = true)]
    now: Option<i64>,
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
            mode,
            cookie,
            #[cfg(feature = "beaker")]
            beaker,
            idle,
            lifetime,
            remember,
            json,
        } => {
            let data: Value = serde_json::from_str(&json)
                .map_err(|e| Failure::Usage(format!("JSON argument is not valid JSON: {e}")))?;
            if !data.is_object() {
                return Err(Failure::Usage(
                    "a session is a JSON object (`{\"key\": value, ...}`): the session layer cannot load anything else".into(),
                ));
            }
            #[cfg(feature = "beaker")]
            if beaker.is_beaker() {
                return beaker::encode(&beaker, &cookie.name, data, now(cookie.now)?);
            }
            let codec = codec(&keys, mode.into())?;
            let stamp = Stamp::new(
                now(cookie.now)?,
                Duration::from_secs(idle),
                Duration::from_secs(lifetime),
            )
            .map_err(|e| Failure::Usage(e.to_string()))?
            .with_persistence(remember.then_some(Persistence::Persistent));
            codec
                .encode(&cookie.name, &data, &stamp)
                .map_err(|e| Failure::Rejected(format!("cannot encode: {e}")))
        }
        Command::Decode {
            keys,
            cookie,
            #[cfg(feature = "beaker")]
            beaker,
            #[cfg(feature = "beaker")]
            idle,
            ignore_expiry,
            value,
        } => {
            let value = pasted(&value, Some(&cookie.name))?;
            #[cfg(feature = "beaker")]
            if beaker.is_beaker() {
                return beaker::decode(&beaker, idle, &value, now(cookie.now)?);
            }
            decode(&keys, &cookie, &value, ignore_expiry)
        }
        #[cfg(any(feature = "sqlite", feature = "files", feature = "postgres"))]
        Command::Sweep {
            store,
            batch,
            now: at,
            #[cfg(feature = "postgres")]
            turbogears_visit,
            #[cfg(feature = "postgres")]
            keep_days,
            #[cfg(feature = "postgres")]
            identity_table,
        } => {
            #[cfg(feature = "postgres")]
            if let Some(url) = store.strip_prefix("postgres:") {
                let table = PostgresSweep {
                    turbogears_visit,
                    keep_days,
                    identity_table,
                };
                return sweep_postgres(url, &table, batch, now(at)?);
            }
            sweep(&store, batch, now(at)?)
        }
        Command::Inspect { name, value } => {
            let value = pasted(&value, name.as_deref())?;
            let seen =
                inspect(&value).map_err(|e| Failure::Rejected(format!("cannot inspect: {e}")))?;
            Ok(pretty(&inspection_json(&seen)))
        }
    }
}

/// How `sweep --store postgres:...` describes the table.
#[cfg(feature = "postgres")]
struct PostgresSweep {
    turbogears_visit: bool,
    keep_days: Option<u64>,
    identity_table: Option<String>,
}

/// `sweep --store postgres:URL[#TABLE]`, on a runtime of its own (tokio-postgres needs one).
#[cfg(feature = "postgres")]
fn sweep_postgres(
    location: &str,
    how: &PostgresSweep,
    batch: usize,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    use cookie_session::store::{PostgresStore, PostgresTable, Sweeper};
    let (url, named) = match location.rsplit_once('#') {
        Some((url, table)) => (url, Some(table)),
        None => (location, None),
    };
    let mut table = if how.turbogears_visit {
        PostgresTable::turbogears_visit().with_table(named.unwrap_or("visit"))
    } else {
        PostgresTable::new(named.unwrap_or("sessions"))
    };
    if let Some(days) = how.keep_days {
        let seconds = days
            .checked_mul(24 * 3600)
            .ok_or_else(|| Failure::Usage(format!("--keep-days {days} is too long")))?;
        table = table.with_retention(std::time::Duration::from_secs(seconds));
    }
    if let Some(identity) = &how.identity_table {
        table = table.with_identity_table(identity);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Rejected(format!("cannot start a runtime: {e}")))?;
    let store = PostgresStore::connect(url, table)
        .map_err(|e| Failure::Usage(format!("--store postgres:...: {e}")))?;
    let removed = runtime
        .block_on(
            Sweeper::new()
                .with_batch_size(batch)
                .sweep_once(&store, now),
        )
        .map_err(|e| Failure::Rejected(format!("sweep failed: {e}")))?;
    Ok(pretty(&json!({ "removed": removed })))
}

/// `sweep --store sqlite:PATH[#TABLE]` or `--store files:DIR` (what is not PostgreSQL).
#[cfg(any(feature = "sqlite", feature = "files", feature = "postgres"))]
fn sweep(store: &str, batch: usize, now: OffsetDateTime) -> Result<String, Failure> {
    let (kind, location) = store.split_once(':').unwrap_or((store, ""));
    let Some(swept) = sweep_local(kind, location, batch, now)? else {
        return Err(Failure::Usage(format!(
            "--store {store:?}: say {} (Redis and memcached expire records themselves)",
            SWEEPABLE.join(" or ")
        )));
    };
    let removed = swept.map_err(|e| Failure::Rejected(format!("sweep failed: {e}")))?;
    Ok(pretty(&json!({ "removed": removed })))
}

/// Sweeps a store of this machine's (SQLite or files); `None` for another kind.
#[cfg(any(feature = "sqlite", feature = "files", feature = "postgres"))]
#[cfg_attr(
    not(any(feature = "sqlite", feature = "files")),
    allow(unused_variables, clippy::unnecessary_wraps)
)]
fn sweep_local(
    kind: &str,
    location: &str,
    batch: usize,
    now: OffsetDateTime,
) -> Result<Option<Result<u64, cookie_session::store::StoreError>>, Failure> {
    #[cfg(any(feature = "sqlite", feature = "files"))]
    {
        use cookie_session::store::{Sweeper, block_on};
        let sweeper = Sweeper::new().with_batch_size(batch);
        let opened = |e: cookie_session::store::StoreError| {
            Failure::Rejected(format!("cannot open the store: {e}"))
        };
        let must_exist = |path: &str| {
            if std::path::Path::new(path).exists() {
                Ok(())
            } else {
                Err(Failure::Usage(format!("--store: nothing at {path}")))
            }
        };
        match kind {
            #[cfg(feature = "sqlite")]
            "sqlite" if !location.is_empty() => {
                let (path, table) = location.rsplit_once('#').unwrap_or((location, "sessions"));
                must_exist(path)?;
                let store = cookie_session::store::SqliteStore::open_with_table(path, table)
                    .map_err(opened)?;
                return Ok(Some(block_on(sweeper.sweep_once(&store, now))));
            }
            #[cfg(feature = "files")]
            "files" if !location.is_empty() => {
                must_exist(location)?;
                let store = cookie_session::store::FileStore::open(location).map_err(opened)?;
                return Ok(Some(block_on(sweeper.sweep_once(&store, now))));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The `--store` forms this build sweeps.
#[cfg(any(feature = "sqlite", feature = "files", feature = "postgres"))]
const SWEEPABLE: &[&str] = &[
    #[cfg(feature = "sqlite")]
    "`sqlite:PATH[#TABLE]`",
    #[cfg(feature = "files")]
    "`files:DIR`",
    #[cfg(feature = "postgres")]
    "`postgres:URL[#TABLE]`",
];

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Signed => Self::Signed,
            ModeArg::Encrypted => Self::Encrypted,
        }
    }
}

fn decode(
    keys: &KeyArgs,
    cookie: &CookieArgs,
    value: &str,
    ignore_expiry: bool,
) -> Result<String, Failure> {
    // The mode is the cookie's own first byte; a value that has none is rejected below.
    let header = inspect(value).ok();
    let mode = header.as_ref().map_or(Mode::Signed, |h| h.mode);
    let codec = codec(keys, mode)?;
    let now = now(cookie.now)?;
    let (opened, expired) = match codec.decode::<Value>(&cookie.name, value, now) {
        Ok(opened) => (opened, None),
        // Only an authentic cookie is ever reported as expired.
        Err(DecodeError::Expired(deadline)) => {
            let header = header.ok_or_else(|| Failure::Rejected("cookie rejected".into()))?;
            let at = match deadline {
                Deadline::Idle => header.idle_deadline,
                _ => header.absolute_deadline,
            };
            if !ignore_expiry {
                return Err(Failure::Rejected(format!(
                    "cookie rejected: it expired at {} ({deadline} deadline, UNIX {at}); --ignore-expiry shows its data",
                    rfc3339(at).as_str().unwrap_or("a time out of range")
                )));
            }
            let before = header
                .idle_deadline
                .min(header.absolute_deadline)
                .saturating_sub(1);
            let then = OffsetDateTime::from_unix_timestamp(i64::try_from(before).unwrap_or(0))
                .map_err(|_| Failure::Rejected("cookie rejected".into()))?;
            let opened = codec
                .decode::<Value>(&cookie.name, value, then)
                .map_err(rejected)?;
            (opened, Some((deadline, at)))
        }
        Err(error) => return Err(rejected(error)),
    };
    let stamp = opened.stamp;
    let time = |t: OffsetDateTime| t.unix_timestamp();
    let mut out = json!({
        "format": "native",
        "mode": mode.to_string(),
        "data": opened.value,
        "session_id": stamp.id().to_string(),
        "key_id": opened.key_id.to_string(),
        "older_key": opened.opened_with_older_key(),
        "persistence": persistence(stamp.persistence()),
        "issued_at": time(stamp.issued_at()),
        "issued_at_rfc3339": rfc3339_of(stamp.issued_at()),
        "idle_deadline": time(stamp.idle_deadline()),
        "idle_deadline_rfc3339": rfc3339_of(stamp.idle_deadline()),
        "absolute_deadline": time(stamp.absolute_deadline()),
        "absolute_deadline_rfc3339": rfc3339_of(stamp.absolute_deadline()),
    });
    if let Some((deadline, at)) = expired {
        out["expired"] = json!({
            "deadline": deadline.to_string(),
            "at": at,
            "at_rfc3339": rfc3339(at),
        });
    }
    Ok(pretty(&out))
}

/// A rejection with what to check. An authentication failure says no more than these three
/// possibilities: it must not become an oracle.
fn rejected(error: DecodeError) -> Failure {
    match error {
        DecodeError::Invalid => Failure::Rejected(
            "cookie rejected: it failed authentication: wrong key, wrong --name, or altered".into(),
        ),
        other => Failure::Rejected(format!("cookie rejected: {other}")),
    }
}

/// The cookie value out of what was pasted: a bare value, `name=value`, or a `Cookie:`
/// header (`Cookie: a=1; name=value`).
fn pasted(input: &str, name: Option<&str>) -> Result<String, Failure> {
    let input = input.trim();
    let header = strip_prefix_ignore_case(input, "cookie:").map(str::trim_start);
    let pairs = header.or_else(|| input.contains(';').then_some(input));
    let Some(pairs) = pairs else {
        // `name=value`, or the bare value (which may end in Beaker's base64 `=` padding).
        return Ok(
            match name.and_then(|n| input.strip_prefix(n)?.strip_prefix('=')) {
                Some(value) => value.to_owned(),
                None => input.to_owned(),
            },
        );
    };
    let name = name.ok_or_else(|| {
        Failure::Usage("a pasted Cookie header holds several cookies: say which with --name".into())
    })?;
    pairs
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim_matches([' ', '\t']) == name)
        .map(|(_, v)| v.trim_matches([' ', '\t']).trim_matches('"').to_owned())
        .ok_or_else(|| Failure::Rejected(format!("the pasted header has no cookie called {name}")))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn persistence(p: Option<Persistence>) -> Value {
    match p {
        None => Value::Null,
        Some(Persistence::Persistent) => "persistent".into(),
        Some(_) => "browser-session".into(),
    }
}

fn inspection_json(seen: &Inspection) -> Value {
    // A genuine signed payload is JSON (or its raw deflate, inflated here up to 1 MiB: the
    // data is unverified); anything else is shown as (lossy) text.
    let payload = seen.payload.as_ref().map(|bytes| {
        let mut inflated = Vec::new();
        let bytes = if seen.compressed {
            let reader = flate2::read::DeflateDecoder::new(&bytes[..]);
            match std::io::Read::read_to_end(
                &mut std::io::Read::take(reader, 1 << 20),
                &mut inflated,
            ) {
                Ok(_) => &inflated[..],
                Err(_) => &bytes[..],
            }
        } else {
            &bytes[..]
        };
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    });
    json!({
        "verified": false,
        "version": seen.version,
        "mode": seen.mode.to_string(),
        "key_id": seen.key_id.to_string(),
        "session_id": seen.session_id.to_string(),
        "persistence": persistence(seen.persistence),
        "compressed": seen.compressed,
        "chunks": seen.chunks,
        "issued_at": seen.issued_at,
        "issued_at_rfc3339": rfc3339(seen.issued_at),
        "idle_deadline": seen.idle_deadline,
        "idle_deadline_rfc3339": rfc3339(seen.idle_deadline),
        "absolute_deadline": seen.absolute_deadline,
        "absolute_deadline_rfc3339": rfc3339(seen.absolute_deadline),
        "payload": payload,
    })
}

/// UNIX seconds as RFC 3339 (UTC), or `null` for a time out of range (an unverified header
/// can claim anything).
fn rfc3339(unix: u64) -> Value {
    i64::try_from(unix)
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or(Value::Null, rfc3339_of)
}

fn rfc3339_of(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map_or(Value::Null, Value::String)
}

/// The keys in order: every `--key`, then each `--key-file` line; `COOKIE_SESSION_KEY`
/// only when neither is given.
fn codec(args: &KeyArgs, mode: Mode) -> Result<Codec, Failure> {
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
            "no key: pass --key-file, set COOKIE_SESSION_KEY or pass --key (generate one with `cookie-session keygen`)".into(),
        ));
    }
    let keys = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Key::parse(t).map_err(|e| Failure::Usage(format!("key {}: {e}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    let ring = KeyRing::from_keys(keys).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(Codec::new(mode, ring))
}

fn now(given: Option<i64>) -> Result<OffsetDateTime, Failure> {
    match given {
        None => Ok(OffsetDateTime::now_utc()),
        Some(secs) => OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| Failure::Usage(format!("--now {secs} is not a representable time"))),
    }
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

fn pretty(value: &Value) -> String {
    // Serializing a `Value` to a String cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}
