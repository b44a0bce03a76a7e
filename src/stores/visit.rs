//! Sessions in a TurboGears 1 application's visit table (feature `turbogears`): see
//! [`VisitStore`].

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::{Map, Value};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::deadline::Deadlines;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size, is_identifier};
use crate::legacy::pickle::{Limits, from_pickle, to_pickle};

/// Server-side sessions shared with a running TurboGears 1 application that keeps them in
/// its visit table, as the TurboGears documents' "visit based sessions" recipe does:
///
/// ```text
/// visit          (visit_key varchar(40) PRIMARY KEY, created timestamp, expiry timestamp,
///                 session_data bytea)       -- pickle.dumps(dict), NULL for no session
/// visit_identity (visit_key varchar(40) PRIMARY KEY, user_id integer)
/// ```
///
/// Use it with [`SessionConfig::with_turbogears_visits`](crate::SessionConfig::with_turbogears_visits)
/// (the `tg-visit` cookie, records keyed by the visit key) and an idle timeout equal to
/// `visit.timeout`. Times are UTC (run the Python side with `TZ=UTC`).
///
/// - A visit is live while its `expiry` is in the future; its session is the pickled dict
///   in `session_data` (plain values only: see [`pickle`](crate::pickle)). A live visit
///   without data (a visitor who never stored anything, or logged out) is an empty
///   session: reading it writes nothing and keeps the cookie, and data stored here goes
///   into that visit, with its key and its user as TurboGears made them.
/// - Writes compare the `session_data` bytes they read in the statement itself (the recipe
///   keeps no version), so a write from either side in between is never overwritten here;
///   versions are a fingerprint of those bytes. A save raises `expiry` and never lowers it,
///   as the recipe does.
/// - Delete (logout) clears `session_data` and the visit's `visit_identity` row; the visit
///   row stays for the Visit framework's own housekeeping ([`PostgresStore`]'s sweep with
///   [`PostgresTable::turbogears_visit`] and `with_identity_table`, or the CLI's `sweep`):
///   [`sweep`](SessionStore::sweep) here removes nothing.
/// - The user index is `visit_identity`: user keys are TurboGears' integer user ids
///   ([`StoreError::InvalidUser`] for anything else). A user logged in on a Python page is
///   the session's user here, and "log out everywhere" here ends the Python visits too.
///
/// [`PostgresStore`]: crate::store::PostgresStore
/// [`PostgresTable::turbogears_visit`]: crate::store::PostgresTable::turbogears_visit
#[derive(Clone)]
pub struct VisitStore {
    pool: Pool,
    sql: std::sync::Arc<Sql>,
    max_record: usize,
    deadlines: std::sync::Arc<Deadlines>,
}

impl std::fmt::Debug for VisitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitStore")
            .field("visit", &self.sql.visit)
            .field("identity", &self.sql.identity)
            .finish_non_exhaustive()
    }
}

/// The statements, with the table names in them.
struct Sql {
    visit: String,
    identity: String,
    load: String,
    create: String,
    save: String,
    touch: String,
    clear: String,
    drop_identity: String,
    move_identity: String,
    set_user: String,
    sessions_of: String,
    log_out: String,
}

/// `$n` (UNIX seconds) as a UTC `timestamp`.
fn at(n: usize) -> String {
    format!("(to_timestamp(${n}::float8) AT TIME ZONE 'UTC')")
}

impl Sql {
    fn new(visit: &str, identity: &str) -> Self {
        let live = format!("expiry > {}", at(2));
        Self {
            visit: visit.to_owned(),
            identity: identity.to_owned(),
            // $1 key, $2 now
            load: format!(
                "SELECT session_data, floor(extract(epoch FROM expiry AT TIME ZONE 'UTC'))::int8 \
                 FROM {visit} WHERE visit_key = $1 AND {live}"
            ),
            // $1 key, $2 now, $3 data, $4 expiry
            create: format!(
                "INSERT INTO {visit} (visit_key, created, expiry, session_data) \
                 VALUES ($1, {now}, {expiry}, $3) ON CONFLICT (visit_key) DO UPDATE \
                 SET session_data = EXCLUDED.session_data, expiry = EXCLUDED.expiry \
                 WHERE {visit}.expiry <= {now} OR {visit}.session_data IS NULL",
                now = at(2),
                expiry = at(4),
            ),
            // $1 key, $2 now, $3 data, $4 expiry, $5 data read
            save: format!(
                "UPDATE {visit} SET session_data = $3, expiry = GREATEST(expiry, {expiry}) \
                 WHERE visit_key = $1 AND {live} AND session_data IS NOT DISTINCT FROM $5",
                expiry = at(4),
            ),
            // $1 key, $2 now, $3 expiry
            touch: format!(
                "UPDATE {visit} SET expiry = GREATEST(expiry, {expiry}) \
                 WHERE visit_key = $1 AND {live}",
                expiry = at(3),
            ),
            // $1 key, $2 now, $3 data read: clears the session (logout, or the old key of a
            // rename); true where it was live.
            clear: format!(
                "UPDATE {visit} SET session_data = NULL \
                 WHERE visit_key = $1 AND session_data IS NOT DISTINCT FROM $3 RETURNING {live}"
            ),
            drop_identity: format!("DELETE FROM {identity} WHERE visit_key = $1"),
            // $1 from, $2 to
            move_identity: format!("UPDATE {identity} SET visit_key = $2 WHERE visit_key = $1"),
            // $1 key, $2 user
            set_user: format!(
                "INSERT INTO {identity} (visit_key, user_id) VALUES ($1, $2::int8) \
                 ON CONFLICT (visit_key) DO UPDATE SET user_id = EXCLUDED.user_id"
            ),
            // $1 user, $2 now
            sessions_of: format!(
                "SELECT v.visit_key FROM {identity} i JOIN {visit} v ON v.visit_key = i.visit_key \
                 WHERE i.user_id = $1::int8 AND v.{live}"
            ),
            // $1 user, $2 now, $3 the visit to keep ('' for none): the visits whose identity
            // ended, and whether each was a live session.
            log_out: format!(
                "WITH mine AS (SELECT visit_key FROM {identity} WHERE user_id = $1::int8 AND visit_key <> $3), \
                 before AS (SELECT v.visit_key, v.{live} AS live \
                 FROM {visit} v JOIN mine ON mine.visit_key = v.visit_key), \
                 gone AS (DELETE FROM {identity} WHERE visit_key IN (SELECT visit_key FROM mine)), \
                 cleared AS (UPDATE {visit} SET session_data = NULL \
                 WHERE visit_key IN (SELECT visit_key FROM mine)) \
                 SELECT visit_key FROM before WHERE live"
            ),
        }
    }
}

/// A failure of PostgreSQL or the pool; a table that does not fit (SQLSTATE class 42) is the
/// operator's to fix.
fn failed(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let db = (&error as &(dyn std::error::Error + 'static))
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error);
    if let Some(db) = db
        && db.code().code().starts_with("42")
    {
        return StoreError::Misconfigured(format!(
            "PostgreSQL refused the visit tables: {} (SQLSTATE {}); VisitStore needs TurboGears' visit table with the session_data column, and visit_identity",
            db.message(),
            db.code().code()
        ));
    }
    StoreError::Unavailable(Box::new(error))
}

#[allow(clippy::cast_precision_loss, reason = "whole seconds below 2^38")]
fn seconds(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64
}

/// The version of a row's `session_data`: a fingerprint of its bytes (of none for NULL),
/// never 0.
fn fingerprint(data: Option<&[u8]>) -> Version {
    let digest = sha2::Sha256::digest(data.unwrap_or_default());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Version(u64::from_be_bytes(first).max(1))
}

fn user_id(user: &str) -> Result<i64, StoreError> {
    super::check_user(user)?;
    user.parse().map_err(|_| StoreError::InvalidUser)
}

impl VisitStore {
    /// A store on a new pool of up to 16 connections to `url` (no TLS: see
    /// [`from_pool`](Self::from_pool)), on the tables `visit` and `visit_identity`.
    ///
    /// ```
    /// use cookie_session::store::VisitStore;
    /// let store = VisitStore::connect("postgres://app@127.0.0.1/app")?;
    /// # Ok::<(), cookie_session::store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] for a URL that does not parse.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::from_pool(super::postgres::pool(url)?))
    }

    /// A store on the application's own pool.
    #[must_use]
    pub fn from_pool(pool: Pool) -> Self {
        Self {
            pool,
            sql: std::sync::Arc::new(Sql::new("visit", "visit_identity")),
            max_record: 1 << 20,
            deadlines: std::sync::Arc::new(Deadlines::new(Duration::from_secs(5))),
        }
    }

    /// Other table names than TurboGears' `visit` and `visit_identity` (plain identifiers).
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for a name that is not a plain identifier.
    pub fn with_tables(mut self, visit: &str, identity: &str) -> Result<Self, StoreError> {
        for name in [visit, identity] {
            if !is_identifier(name) {
                return Err(StoreError::Misconfigured(format!(
                    "{name:?} is not a plain table name (letters, digits, _)"
                )));
            }
        }
        self.sql = std::sync::Arc::new(Sql::new(visit, identity));
        Ok(self)
    }

    /// The visit key a store key stands for: 40 hex digits. A key that is not one (a keyed
    /// hash, from a configuration without TurboGears visits) is refused.
    fn visit_key(key: &StoreKey) -> Result<String, StoreError> {
        let bytes = key.to_bytes();
        if bytes[20..].iter().any(|b| *b != 0) {
            return Err(StoreError::Misconfigured(
                "VisitStore keeps sessions under TurboGears' visit keys: configure the sessions with SessionConfig::with_turbogears_visits".into(),
            ));
        }
        Ok(base16ct::lower::encode_string(&bytes[..20]))
    }

    fn key_of(visit_key: &str) -> Option<StoreKey> {
        StoreKey::from_hex(visit_key)
    }

    /// Session JSON as the recipe's `pickle.dumps(dict)`.
    fn pickled(&self, data: &[u8]) -> Result<Vec<u8>, StoreError> {
        check_size(data, self.max_record)?;
        let map: Map<String, Value> =
            serde_json::from_slice(data).map_err(|_| StoreError::Corrupt)?;
        to_pickle(&map).map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    /// Runs `op`, or fails with `Unavailable` once the timeout has passed.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.deadlines.within("PostgreSQL", op).await
    }

    /// The live visit's pickled data and expiry (UNIX seconds).
    async fn read(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        visit_key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Option<Vec<u8>>, i64)>, StoreError> {
        let row = client
            .query_opt(&self.sql.load, &[&visit_key, &seconds(now)])
            .await
            .map_err(failed)?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }
}

impl SessionStore for VisitStore {
    async fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let visit_key = Self::visit_key(key)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let Some((pickled, expiry)) = self.read(&client, &visit_key, now).await? else {
                return Ok(None);
            };
            let version = fingerprint(pickled.as_deref());
            let expires = super::datetime(expiry)?;
            // A visit without session data is an empty session (its key and user stay);
            // a dict this side cannot read (a class, a datetime) is handed on as it is: the
            // session layer starts a new session, and the Python side keeps its own.
            let data = match pickled
                .as_deref()
                .map(|p| from_pickle(p, &Limits::default()))
            {
                None => b"{}".to_vec(),
                Some(Ok(map)) => serde_json::to_vec(&map).map_err(|_| StoreError::Corrupt)?,
                Some(Err(_)) => pickled.unwrap_or_default(),
            };
            Ok(Some(Record::new(data, expires, version)))
        })
        .await
    }

    async fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Version, StoreError> {
        let visit_key = Self::visit_key(key)?;
        let pickled = self.pickled(data)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let created = client
                .execute(
                    &self.sql.create,
                    &[&visit_key, &seconds(now), &pickled, &seconds(expires)],
                )
                .await
                .map_err(failed)?;
            if created == 0 {
                return Err(StoreError::Duplicate);
            }
            Ok(fingerprint(Some(&pickled)))
        })
        .await
    }

    async fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Version, StoreError> {
        let visit_key = Self::visit_key(key)?;
        let pickled = self.pickled(data)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let Some((current, _)) = self.read(&client, &visit_key, now).await? else {
                return Err(StoreError::Gone);
            };
            if fingerprint(current.as_deref()) != expected {
                return Err(StoreError::Conflict);
            }
            let saved = client
                .execute(
                    &self.sql.save,
                    &[
                        &visit_key,
                        &seconds(now),
                        &pickled,
                        &seconds(expires),
                        &current,
                    ],
                )
                .await
                .map_err(failed)?;
            if saved == 0 {
                // Changed (or ended) since read: the caller reloads.
                return Err(StoreError::Conflict);
            }
            Ok(fingerprint(Some(&pickled)))
        })
        .await
    }

    async fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let visit_key = Self::visit_key(key)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let touched = client
                .execute(
                    &self.sql.touch,
                    &[&visit_key, &seconds(now), &seconds(expires)],
                )
                .await
                .map_err(failed)?;
            if touched == 0 {
                return Err(StoreError::Gone);
            }
            Ok(())
        })
        .await
    }

    async fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (from, to) = (Self::visit_key(from)?, Self::visit_key(to)?);
        self.bounded(async {
            let mut client = self.pool.get().await.map_err(failed)?;
            let tx = client.transaction().await.map_err(failed)?;
            let Some((data, expiry)) = self.read(&tx, &from, now).await? else {
                return Err(StoreError::Gone);
            };
            #[allow(clippy::cast_precision_loss, reason = "whole seconds below 2^38")]
            let expiry = expiry as f64;
            let created = tx
                .execute(&self.sql.create, &[&to, &seconds(now), &data, &expiry])
                .await
                .map_err(failed)?;
            if created == 0 {
                return Err(StoreError::Duplicate);
            }
            let cleared = tx
                .query_opt(&self.sql.clear, &[&from, &seconds(now), &data])
                .await
                .map_err(failed)?;
            if cleared.is_none() {
                // Changed since read: nothing moves (the transaction is dropped).
                return Err(StoreError::Conflict);
            }
            // The visit's user follows it (a login that regenerates the id stays logged in).
            tx.execute(&self.sql.move_identity, &[&from, &to])
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)
        })
        .await
    }

    async fn delete(&self, key: &StoreKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        let visit_key = Self::visit_key(key)?;
        self.bounded(async {
            let mut client = self.pool.get().await.map_err(failed)?;
            let tx = client.transaction().await.map_err(failed)?;
            let live = match self.read(&tx, &visit_key, now).await? {
                Some((data, _)) => tx
                    .query_opt(&self.sql.clear, &[&visit_key, &seconds(now), &data])
                    .await
                    .map_err(failed)?
                    .is_some_and(|row| row.get::<_, bool>(0)),
                None => false,
            };
            tx.execute(&self.sql.drop_identity, &[&visit_key])
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(live)
        })
        .await
    }

    async fn sweep(&self, _now: OffsetDateTime, _max: usize) -> Result<usize, StoreError> {
        // The visit rows are the TurboGears application's: its housekeeping removes them.
        Ok(0)
    }

    async fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let visit_key = Self::visit_key(key)?;
        let user = user_id(user)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            if self.read(&client, &visit_key, now).await?.is_none() {
                return Err(StoreError::Gone);
            }
            client
                .execute(&self.sql.set_user, &[&visit_key, &user])
                .await
                .map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let user = user_id(user)?;
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let rows = client
                .query(&self.sql.sessions_of, &[&user, &seconds(now)])
                .await
                .map_err(failed)?;
            Ok(rows
                .iter()
                .filter_map(|row| Self::key_of(row.get(0)))
                .collect())
        })
        .await
    }

    async fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let user = user_id(user)?;
        let keep = except.map(Self::visit_key).transpose()?.unwrap_or_default();
        self.bounded(async {
            let client = self.pool.get().await.map_err(failed)?;
            let rows = client
                .query(&self.sql.log_out, &[&user, &seconds(now), &keep])
                .await
                .map_err(failed)?;
            Ok(rows
                .iter()
                .filter_map(|row| Self::key_of(row.get(0)))
                .collect())
        })
        .await
    }
}
