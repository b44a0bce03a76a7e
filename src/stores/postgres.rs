//! Sessions in PostgreSQL (feature `postgres`): see [`PostgresStore`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::deadline::Deadlines;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size};

/// Where and how a [`PostgresStore`] keeps sessions: the table, its column names, the type
/// of its time columns and the width of its key column.
///
/// [`PostgresTable::new`] describes this crate's own table (created by
/// [`PostgresStore::create_table`]); [`PostgresTable::turbogears_visit`] an existing
/// TurboGears `visit` table (brought up to date by [`PostgresStore::migrate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTable {
    table: String,
    key: String,
    data: String,
    created: String,
    expires: String,
    version: String,
    user: String,
    with_time_zone: bool,
    key_hex_digits: usize,
    /// How long past its expiry a row is kept before the sweep deletes it.
    retention: Duration,
    /// A table whose rows (keyed by the same column name) go with the swept ones.
    identity: Option<String>,
}

impl PostgresTable {
    /// This crate's table, named `table`: `key text PRIMARY KEY, data bytea, created
    /// timestamptz, expires timestamptz, version bigint, user_key text` (the user index),
    /// the key as 64 hex digits.
    #[must_use]
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            key: "key".to_owned(),
            data: "data".to_owned(),
            created: "created".to_owned(),
            expires: "expires".to_owned(),
            version: "version".to_owned(),
            user: "user_key".to_owned(),
            with_time_zone: true,
            key_hex_digits: 64,
            retention: Duration::ZERO,
            identity: None,
        }
    }

    /// The TurboGears `visit` table as its documents define it (`visit_key varchar(40)
    /// PRIMARY KEY, session_data bytea, created timestamp, expiry timestamp`) plus the
    /// `version` and `user_key` columns [`PostgresStore::migrate`] adds. Keys are the first 160 bits of the
    /// keyed store key, as 40 hex digits, to fit `visit_key`; times are UTC.
    ///
    /// The sweep keeps expired visits for 7 days, as the Visit documents' housekeeping
    /// does (`keep_days`; [`with_retention`](Self::with_retention)); an expired visit is
    /// never loaded, whether or not it is still kept. Add
    /// [`with_identity_table`](Self::with_identity_table)`("visit_identity")` to delete a
    /// swept visit's identity row with it.
    #[must_use]
    pub fn turbogears_visit() -> Self {
        Self {
            table: "visit".to_owned(),
            key: "visit_key".to_owned(),
            data: "session_data".to_owned(),
            created: "created".to_owned(),
            expires: "expiry".to_owned(),
            version: "version".to_owned(),
            user: "user_key".to_owned(),
            with_time_zone: false,
            key_hex_digits: 40,
            retention: Duration::from_secs(7 * 24 * 3600),
            identity: None,
        }
    }

    /// Keeps rows for `retention` past their expiry: the sweep deletes only those that
    /// expired longer ago (rows of an application that shares the table included: the
    /// sweep deletes by expiry alone). Expired rows are never loaded meanwhile; they stay
    /// for audit. Default: none for [`new`](Self::new), 7 days for
    /// [`turbogears_visit`](Self::turbogears_visit).
    #[must_use]
    pub const fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Deletes, with each swept row, the rows of `table` under the same key (a column of
    /// the key column's name): TurboGears' `visit_identity`, which links a visit to its
    /// user, goes with the visit. In the sweep's statement, so neither is left without
    /// the other.
    #[must_use]
    pub fn with_identity_table(mut self, table: &str) -> Self {
        self.identity = Some(table.to_owned());
        self
    }

    /// The same layout under another table name.
    #[must_use]
    pub fn with_table(mut self, table: &str) -> Self {
        self.table = table.to_owned();
        self
    }

    /// Other column names (each a plain SQL identifier: letters, digits and `_`).
    #[must_use]
    pub fn with_columns(
        mut self,
        key: &str,
        data: &str,
        created: &str,
        expires: &str,
        version: &str,
    ) -> Self {
        self.key = key.to_owned();
        self.data = data.to_owned();
        self.created = created.to_owned();
        self.expires = expires.to_owned();
        self.version = version.to_owned();
        self
    }

    /// Another name for the user index's column (default `user_key`).
    #[must_use]
    pub fn with_user_column(mut self, user: &str) -> Self {
        self.user = user.to_owned();
        self
    }

    /// Whether the time columns are `timestamptz` (`true`) or `timestamp` holding UTC.
    #[must_use]
    pub const fn with_time_zone(mut self, with_time_zone: bool) -> Self {
        self.with_time_zone = with_time_zone;
        self
    }

    /// How many hex digits of the 256-bit store key the key column holds: 32 to 64, even
    /// (fewer than 32 would give under 128 bits; see SECURITY.md). Default 64.
    #[must_use]
    pub const fn with_key_hex_digits(mut self, digits: usize) -> Self {
        self.key_hex_digits = digits;
        self
    }

    fn validate(&self) -> Result<(), StoreError> {
        for name in [
            &self.table,
            &self.key,
            &self.data,
            &self.created,
            &self.expires,
            &self.version,
            &self.user,
        ]
        .into_iter()
        .chain(&self.identity)
        {
            if !super::is_identifier(name) {
                return Err(StoreError::Unavailable(
                    format!("{name:?} is not an SQL identifier (letters, digits and _)").into(),
                ));
            }
        }
        if !(32..=64).contains(&self.key_hex_digits) || !self.key_hex_digits.is_multiple_of(2) {
            return Err(StoreError::Unavailable(
                format!(
                    "a key column of {} hex digits: use an even number from 32 to 64",
                    self.key_hex_digits
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// `$n` (UNIX seconds, float8) as a value of the time columns.
    fn time(&self, n: u8) -> String {
        if self.with_time_zone {
            format!("to_timestamp(${n}::float8)")
        } else {
            format!("(to_timestamp(${n}::float8) AT TIME ZONE 'UTC')")
        }
    }

    /// The expiry column as UNIX seconds.
    fn expires_epoch(&self) -> String {
        let column = &self.expires;
        if self.with_time_zone {
            format!("floor(extract(epoch FROM {column}))::int8")
        } else {
            format!("floor(extract(epoch FROM {column} AT TIME ZONE 'UTC'))::int8")
        }
    }

    /// A key column's text as a store key: the hex digits it holds, zero-padded. A
    /// shortened key (`with_key_hex_digits` under 64) maps back to a store key that finds the
    /// same row again through [`key_text`](Self::key_text).
    fn parse_key(&self, text: &str) -> Option<StoreKey> {
        StoreKey::from_hex(text).filter(|_| text.len() == self.key_hex_digits)
    }

    fn key_text(&self, key: &StoreKey) -> String {
        let mut text = key.to_string();
        text.truncate(self.key_hex_digits);
        text
    }
}

/// The statements, built once from the table description.
#[derive(Debug)]
struct Sql {
    load: String,
    create: String,
    save: String,
    touch: String,
    clear_expired: String,
    rename: String,
    live: String,
    delete: String,
    sweep: String,
    set_user: String,
    sessions_of: String,
    delete_sessions_of: String,
    /// The advisory lock only one sweeper of this table holds at a time.
    sweep_lock: i64,
}

impl Sql {
    fn new(t: &PostgresTable) -> Self {
        let PostgresTable {
            table,
            key,
            data,
            created,
            expires,
            version,
            user,
            identity,
            ..
        } = t;
        let epoch = t.expires_epoch();
        // Rows of the identity table go with the swept ones, in the same statement.
        let identities = identity.as_ref().map_or(String::new(), |identity| {
            format!(
                ", identities AS (DELETE FROM {identity} WHERE {key} IN (SELECT {key} FROM gone))"
            )
        });
        let (ts1, ts2, ts3, ts4, ts5) = (t.time(1), t.time(2), t.time(3), t.time(4), t.time(5));
        Self {
            load: format!(
                "SELECT {data}, {epoch}, {version} FROM {table} WHERE {key} = $1 AND {expires} > {ts2}"
            ),
            // Insert, or take over the key of an expired record; a live one is left alone
            // and no row comes back.
            create: format!(
                "INSERT INTO {table} ({key}, {data}, {created}, {expires}, {version})
                 VALUES ($1, $2, {ts3}, {ts4}, 1)
                 ON CONFLICT ({key}) DO UPDATE
                 SET {data} = excluded.{data}, {created} = excluded.{created},
                     {expires} = excluded.{expires}, {version} = 1, {user} = NULL
                 WHERE {table}.{expires} <= {ts3}
                 RETURNING {version}"
            ),
            // Compare-and-set in one statement; the second column tells a conflict (a live
            // record at another version) from a record that is gone.
            save: format!(
                "WITH current AS (
                     SELECT {version} FROM {table} WHERE {key} = $1 AND {expires} > {ts5}
                 ), saved AS (
                     UPDATE {table} SET {data} = $3, {expires} = {ts4}, {version} = {version} + 1
                     WHERE {key} = $1 AND {version} = $2 AND {expires} > {ts5}
                     RETURNING {version}
                 )
                 SELECT (SELECT {version} FROM saved), (SELECT {version} FROM current)"
            ),
            touch: format!(
                "UPDATE {table} SET {expires} = GREATEST({expires}, {ts2})
                 WHERE {key} = $1 AND {expires} > {ts3}"
            ),
            clear_expired: format!("DELETE FROM {table} WHERE {key} = $1 AND {expires} <= {ts2}"),
            rename: format!(
                "UPDATE {table} SET {key} = $2 WHERE {key} = $1 AND {expires} > {ts3}
                 AND NOT EXISTS (SELECT 1 FROM {table} WHERE {key} = $2)"
            ),
            live: format!("SELECT 1 FROM {table} WHERE {key} = $1 AND {expires} > {ts2}"),
            delete: format!("DELETE FROM {table} WHERE {key} = $1 RETURNING {expires} > {ts2}"),
            // PostgreSQL has no DELETE ... LIMIT: the batch is chosen by the expiry index,
            // oldest first, skipping rows another transaction holds. `$1` is the cut-off:
            // now, less the retention.
            sweep: format!(
                "WITH gone AS (
                     DELETE FROM {table} WHERE {key} IN (
                         SELECT {key} FROM {table} WHERE {expires} <= {ts1}
                         ORDER BY {expires} LIMIT $2 FOR UPDATE SKIP LOCKED
                     ) AND {expires} <= {ts1}
                     RETURNING {key}
                 ){identities}
                 SELECT count(*) FROM gone"
            ),
            set_user: format!(
                "UPDATE {table} SET {user} = $2 WHERE {key} = $1 AND {expires} > {ts3}"
            ),
            sessions_of: format!(
                "SELECT {key} FROM {table} WHERE {user} = $1 AND {expires} > {ts2}"
            ),
            delete_sessions_of: format!(
                "DELETE FROM {table} WHERE {user} = $1 AND {key} <> $2
                 RETURNING {key}, {expires} > {ts3}"
            ),
            sweep_lock: sweep_lock_id(table),
        }
    }
}

/// The advisory lock `create_table` and `migrate` take: another label than the sweep's.
fn ddl_lock_id(table: &str) -> i64 {
    sweep_lock_id(&format!("{table}\0ddl"))
}

/// A fixed 64-bit advisory lock id per table (FNV-1a of a label): stable across instances
/// and versions of the application.
fn sweep_lock_id(table: &str) -> i64 {
    let hash = format!("cookie-session sweep {table}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Sessions in PostgreSQL (feature `postgres`), shared by every instance of an application.
///
/// Each operation is one statement (a rename is a short transaction), through a pool of
/// connections ([deadpool-postgres]) that replaces broken connections, so the store comes
/// back by itself after the server does. Every operation is bounded by a timeout (default
/// 5 s): a server that stops answering is [`StoreError::Unavailable`], never a request that
/// hangs.
///
/// - Saves are compare-and-set on the version column in one statement.
/// - Expiry is the `expires` column compared with the caller's `now`; the sweep removes
///   expired rows (those past the table's retention, [`PostgresTable::with_retention`])
///   in ordered batches of at most `max` through the expiry index, under an advisory lock
///   so that only one instance sweeps a table at a time (the others report 0).
/// - [`PostgresTable::turbogears_visit`] keeps sessions in an existing TurboGears `visit`
///   table, after [`migrate`](Self::migrate) has added what it lacks.
///
/// ```no_run
/// use cookie_session::store::{PostgresStore, PostgresTable};
/// # async fn example() -> Result<(), cookie_session::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@localhost/app", PostgresTable::new("sessions"))?;
/// store.create_table().await?;
/// # Ok(()) }
/// ```
///
/// [deadpool-postgres]: https://docs.rs/deadpool-postgres
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    table: Arc<PostgresTable>,
    sql: Arc<Sql>,
    max_record: usize,
    deadlines: Arc<Deadlines>,
}

/// PostgreSQL's or the pool's failure, as a store error: a table that does not fit the
/// statements (a missing column or table, a wrong type, no privilege: SQLSTATE class 42,
/// or a key column too short) is [`StoreError::Misconfigured`], which retrying cannot fix;
/// anything else is unavailability.
pub(crate) fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let db = (&error as &(dyn std::error::Error + 'static))
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error);
    if let Some(db) = db {
        let code = db.code().code();
        if code.starts_with("42") || code == SqlState::STRING_DATA_RIGHT_TRUNCATION.code() {
            return StoreError::Misconfigured(format!(
                "PostgreSQL refused the session table: {} (SQLSTATE {code}); check it against its PostgresTable and run PostgresStore::migrate",
                db.message()
            ));
        }
    }
    StoreError::Unavailable(Box::new(error))
}

fn seconds(t: OffsetDateTime) -> f64 {
    // Whole seconds, as every store keeps them; exact in a float8 up to 2^53.
    #[allow(
        clippy::cast_precision_loss,
        reason = "|t| < 2^38 s for years up to 9999"
    )]
    let secs = t.unix_timestamp() as f64;
    secs
}

fn sql_version(version: Version) -> i64 {
    i64::try_from(version.0).unwrap_or(i64::MAX)
}

fn version(v: i64) -> Version {
    Version(u64::try_from(v).unwrap_or(0))
}

/// A pool of up to 16 connections to `url` (no TLS), each checked before reuse, every wait
/// bounded by 5 s.
pub(crate) fn pool(url: &str) -> Result<Pool, StoreError> {
    let config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A connection is checked before reuse: after an outage, broken ones are
            // replaced instead of failing a request each.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(Duration::from_secs(5));
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()
        .map_err(unavailable)
}

impl PostgresStore {
    /// A store on a new pool of up to 16 connections to `url` (a libpq-style connection
    /// string or `postgres://` URL; no TLS: for TLS, build the pool with the TLS connector
    /// of your choice and use [`from_pool`](Self::from_pool)). Connects lazily.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] for a URL that does not parse or an invalid table
    /// description.
    pub fn connect(url: &str, table: PostgresTable) -> Result<Self, StoreError> {
        Self::from_pool(pool(url)?, table)
    }

    /// A store on the application's own pool.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] for an invalid table description.
    pub fn from_pool(pool: Pool, table: PostgresTable) -> Result<Self, StoreError> {
        table.validate()?;
        Ok(Self {
            pool,
            sql: Arc::new(Sql::new(&table)),
            table: Arc::new(table),
            max_record: 1 << 20,
            deadlines: Arc::new(Deadlines::new(Duration::from_secs(5))),
        })
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 1 MiB.
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// How long one operation may take, pool wait included, before it is
    /// [`StoreError::Unavailable`]. Default 5 s. Operations that start close together share
    /// one timer, so one may end up to a tenth of `timeout` sooner.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadlines = Arc::new(Deadlines::new(timeout));
        self
    }

    /// The advisory lock id [`sweep`](SessionStore::sweep) takes for this table (for
    /// `pg_locks` in monitoring, or to keep sweeps off while maintaining the table).
    #[must_use]
    pub fn sweep_lock_id(&self) -> i64 {
        self.sql.sweep_lock
    }

    /// Creates this crate's table and its indexes if they do not exist, and brings an
    /// existing one up to date ([`migrate`](Self::migrate)). Several instances may start at
    /// once: the DDL runs in one transaction under an advisory lock of the table's.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if PostgreSQL cannot be reached;
    /// [`StoreError::Misconfigured`] if it refuses (no privilege) or the existing table
    /// lacks a column that cannot be added (see [`migrate`](Self::migrate)).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let PostgresTable {
            table,
            key,
            data,
            created,
            expires,
            version,
            user,
            with_time_zone,
            ..
        } = &*self.table;
        let time = if *with_time_zone {
            "timestamptz"
        } else {
            "timestamp"
        };
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 {key} text PRIMARY KEY,
                 {data} bytea NOT NULL,
                 {created} {time} NOT NULL,
                 {expires} {time} NOT NULL,
                 {version} bigint NOT NULL DEFAULT 1,
                 {user} text
             );"
        );
        // The indexes; and a table an earlier version created gains what it lacks.
        self.ddl(&create).await
    }

    /// Brings an existing table (a TurboGears `visit` table) up to what the store needs,
    /// adding what is missing:
    ///
    /// - the data column (`session_data bytea`, nullable), which a TurboGears 1 visit table
    ///   lacks (the visit-sessions recipe adds it by hand);
    /// - the version column (`version bigint NOT NULL DEFAULT 1`);
    /// - the user index's column (`user_key text`, nullable);
    /// - an index on the expiry column, and a partial index on the user key.
    ///
    /// No row is rewritten: a nullable column, or one with a constant default, is a
    /// catalog change in PostgreSQL 11 and later. Then it checks that the key, created and
    /// expiry columns exist. Several instances may run it at once: it runs in one
    /// transaction under an advisory lock of the table's.
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] if the table does not exist, lacks a column that is
    /// not added (the message names it), or PostgreSQL refuses (no privilege);
    /// [`StoreError::Unavailable`] if it cannot be reached.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.ddl("").await
    }

    /// Runs `before` and the migration in one transaction, under the table's DDL lock
    /// (concurrent `CREATE TABLE IF NOT EXISTS` of one table can fail on PostgreSQL's own
    /// catalog), then checks the columns.
    async fn ddl(&self, before: &str) -> Result<(), StoreError> {
        let PostgresTable {
            table,
            key,
            data,
            created,
            expires,
            version,
            user,
            ..
        } = &*self.table;
        let lock = ddl_lock_id(table);
        let ddl = format!(
            "SELECT pg_advisory_xact_lock({lock});
             {before}
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {data} bytea;
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {version} bigint NOT NULL DEFAULT 1;
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {user} text;
             CREATE INDEX IF NOT EXISTS {table}_{expires}_idx ON {table} ({expires});
             CREATE INDEX IF NOT EXISTS {table}_{user}_idx ON {table} ({user})
                 WHERE {user} IS NOT NULL;"
        );
        let columns = self
            .bounded(async {
                let mut client = self.pool.get().await.map_err(unavailable)?;
                let tx = client.transaction().await.map_err(unavailable)?;
                tx.batch_execute(&ddl).await.map_err(unavailable)?;
                let rows = tx
                    .query(
                        "SELECT column_name::text FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = $1",
                        &[&table.to_ascii_lowercase()],
                    )
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(rows
                    .iter()
                    .map(|row| row.get::<_, String>(0))
                    .collect::<Vec<_>>())
            })
            .await?;
        for column in [key, created, expires] {
            if !columns.contains(&column.to_ascii_lowercase()) {
                return Err(StoreError::Misconfigured(format!(
                    "the session table {table} has no column {column}; add it or name the table's own with PostgresTable::with_columns"
                )));
            }
        }
        Ok(())
    }

    /// A pooled connection and `sql` prepared on it (each connection caches its
    /// statements, so this is a round trip only the first time).
    async fn prepared(
        &self,
        sql: &str,
    ) -> Result<(deadpool_postgres::Object, tokio_postgres::Statement), StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        Ok((client, statement))
    }

    /// Runs `op`, or fails with `Unavailable` once the timeout has passed.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.deadlines.within("PostgreSQL", op).await
    }
}

impl SessionStore for PostgresStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let key = self.table.key_text(key);
        self.bounded(async move {
            let (client, statement) = self.prepared(&self.sql.load).await?;
            let row = client
                .query_opt(&statement, &[&key, &seconds(now)])
                .await
                .map_err(unavailable)?;
            let Some(row) = row else {
                return Ok(None);
            };
            // A TurboGears visit without session data (NULL) is no session of ours.
            let Some(data) = row.try_get::<_, Option<Vec<u8>>>(0).map_err(unavailable)? else {
                return Ok(None);
            };
            let expires: i64 = row.try_get(1).map_err(unavailable)?;
            let v: i64 = row.try_get(2).map_err(unavailable)?;
            Ok(Some(Record::new(
                data,
                super::datetime(expires)?,
                version(v),
            )))
        })
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.table.key_text(key);
        let checked = check_size(data, self.max_record);
        self.bounded(async move {
            checked?;
            let (client, statement) = self.prepared(&self.sql.create).await?;
            let row = client
                .query_opt(&statement, &[&key, &data, &seconds(now), &seconds(expires)])
                .await
                .map_err(|e| duplicate_or_unavailable(&e).unwrap_or_else(|| unavailable(e)))?;
            match row {
                Some(_) => Ok(Version::FIRST),
                None => Err(StoreError::Duplicate),
            }
        })
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.table.key_text(key);
        let checked = check_size(data, self.max_record);
        self.bounded(async move {
            checked?;
            let (client, statement) = self.prepared(&self.sql.save).await?;
            let row = client
                .query_one(
                    &statement,
                    &[
                        &key,
                        &sql_version(expected),
                        &data,
                        &seconds(expires),
                        &seconds(now),
                    ],
                )
                .await
                .map_err(unavailable)?;
            let saved: Option<i64> = row.try_get(0).map_err(unavailable)?;
            let current: Option<i64> = row.try_get(1).map_err(unavailable)?;
            match (saved, current) {
                (Some(v), _) => Ok(version(v)),
                (None, Some(_)) => Err(StoreError::Conflict),
                (None, None) => Err(StoreError::Gone),
            }
        })
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.table.key_text(key);
        self.bounded(async move {
            let (client, statement) = self.prepared(&self.sql.touch).await?;
            let changed = client
                .execute(&statement, &[&key, &seconds(expires), &seconds(now)])
                .await
                .map_err(unavailable)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::Gone)
            }
        })
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (from, to) = (self.table.key_text(from), self.table.key_text(to));
        self.bounded(async move {
            let mut client = self.pool.get().await.map_err(unavailable)?;
            let tx = client.transaction().await.map_err(unavailable)?;
            let now = seconds(now);
            let live = tx
                .prepare_cached(&self.sql.live)
                .await
                .map_err(unavailable)?;
            if from == to {
                let found = tx
                    .query_opt(&live, &[&from, &now])
                    .await
                    .map_err(unavailable)?;
                return if found.is_some() {
                    Ok(())
                } else {
                    Err(StoreError::Gone)
                };
            }
            // An expired record under the new key is cleared first; a live one stays and
            // the move does not happen.
            let clear = tx
                .prepare_cached(&self.sql.clear_expired)
                .await
                .map_err(unavailable)?;
            tx.execute(&clear, &[&to, &now])
                .await
                .map_err(unavailable)?;
            let rename = tx
                .prepare_cached(&self.sql.rename)
                .await
                .map_err(unavailable)?;
            let moved = tx
                .execute(&rename, &[&from, &to, &now])
                .await
                .map_err(|e| duplicate_or_unavailable(&e).unwrap_or_else(|| unavailable(e)))?;
            if moved == 1 {
                return tx.commit().await.map_err(unavailable);
            }
            let occupied = tx
                .query_opt(&live, &[&to, &now])
                .await
                .map_err(unavailable)?;
            Err(if occupied.is_some() {
                StoreError::Duplicate
            } else {
                StoreError::Gone
            })
        })
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let key = self.table.key_text(key);
        self.bounded(async move {
            let (client, statement) = self.prepared(&self.sql.delete).await?;
            let row = client
                .query_opt(&statement, &[&key, &seconds(now)])
                .await
                .map_err(unavailable)?;
            match row {
                Some(row) => row.try_get::<_, bool>(0).map_err(unavailable),
                None => Ok(false),
            }
        })
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.bounded(async move {
            let mut client = self.pool.get().await.map_err(unavailable)?;
            let tx = client.transaction().await.map_err(unavailable)?;
            // Held until the transaction ends; another instance sweeping now means there is
            // nothing for this one to do.
            let locked: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1)",
                    &[&self.sql.sweep_lock],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(unavailable)?;
            if !locked {
                return Ok(0);
            }
            let statement = tx
                .prepare_cached(&self.sql.sweep)
                .await
                .map_err(unavailable)?;
            let cutoff = now
                .checked_sub(
                    time::Duration::try_from(self.table.retention).unwrap_or(time::Duration::MAX),
                )
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let removed: i64 = tx
                .query_one(&statement, &[&seconds(cutoff), &max])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(usize::try_from(removed).unwrap_or(0))
        })
    }

    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.table.key_text(key);
        let checked = super::check_user(user);
        self.bounded(async move {
            checked?;
            let (client, statement) = self.prepared(&self.sql.set_user).await?;
            let changed = client
                .execute(&statement, &[&key, &user, &seconds(now)])
                .await
                .map_err(unavailable)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::Gone)
            }
        })
    }

    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        self.bounded(async move {
            let (client, statement) = self.prepared(&self.sql.sessions_of).await?;
            let rows = client
                .query(&statement, &[&user, &seconds(now)])
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|row| row.try_get::<_, String>(0).map_err(unavailable))
                .filter_map(|key| key.map(|k| self.table.parse_key(&k)).transpose())
                .collect()
        })
    }

    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let except = except.map(|k| self.table.key_text(k)).unwrap_or_default();
        self.bounded(async move {
            let (client, statement) = self.prepared(&self.sql.delete_sessions_of).await?;
            let rows = client
                .query(&statement, &[&user, &except, &seconds(now)])
                .await
                .map_err(unavailable)?;
            let mut deleted = Vec::new();
            for row in rows {
                let key: String = row.try_get(0).map_err(unavailable)?;
                let live: bool = row.try_get(1).map_err(unavailable)?;
                if let (Some(key), true) = (self.table.parse_key(&key), live) {
                    deleted.push(key);
                }
            }
            Ok(deleted)
        })
    }
}

/// A unique violation (a concurrent insert of the same key won) is `Duplicate`.
fn duplicate_or_unavailable(error: &tokio_postgres::Error) -> Option<StoreError> {
    (error.code() == Some(&SqlState::UNIQUE_VIOLATION)).then_some(StoreError::Duplicate)
}
