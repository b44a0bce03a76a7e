//! Sessions in SQLite (feature `sqlite`): see [`SqliteStore`].

use std::future::Future;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use time::OffsetDateTime;

use super::worker::Worker;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size, datetime};

/// Sessions in an SQLite database (feature `sqlite`), the embedded default
/// for server-side sessions: one file, no server, shared by every process on the machine.
///
/// SQLite is compiled in (rusqlite's `bundled`), so no system library is needed. Every
/// statement runs on a dedicated thread, so the async runtime's threads never block on the
/// database. The schema is created on open:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS sessions (
///     key     BLOB PRIMARY KEY,     -- the 32-byte StoreKey, never the session id
///     data    BLOB NOT NULL,
///     expires INTEGER NOT NULL,     -- UNIX seconds
///     version INTEGER NOT NULL
/// );
/// CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
/// ```
///
/// Expiries are kept to the second (sub-second parts are dropped), like the cookies'.
///
/// Several processes may share the file. Loads run on a second connection of their own
/// (WAL lets reads proceed while another connection writes), so a write lock held
/// elsewhere never queues this instance's reads behind its writes; every read-then-write
/// runs in an immediate transaction, so it waits for the lock (up to 5 s) instead of
/// failing when another process commits between its read and its write. The database and
/// its `-wal` and `-shm` files are `0600`, whatever the umask; `open` refuses files that
/// belong to another user.
///
/// ```
/// use cookie_session::store::{SessionStore, SqliteStore, StoreKey};
/// # use cookie_session::time::{Duration, OffsetDateTime};
/// # use cookie_session::store::block_on;
///
/// let store = SqliteStore::open_in_memory()?; // or SqliteStore::open("sessions.db")?
/// let now = OffsetDateTime::now_utc();
/// let key = StoreKey::from_bytes([7; 32]);
/// block_on(store.create(&key, b"{}", now + Duration::minutes(20), now))?;
/// assert!(block_on(store.load(&key, now))?.is_some());
/// # Ok::<(), cookie_session::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    worker: Worker<Db>,
    /// Loads, on a connection of their own (none for an in-memory database, which only
    /// its one connection sees).
    reader: Option<Worker<Db>>,
    max_record: usize,
}

/// The connection and the statements' table name, owned by the worker thread.
struct Db {
    conn: Connection,
    table: String,
}

/// SQLite's answer, as a store error.
fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, with the table `sessions`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the file cannot be opened or the schema created;
    /// [`StoreError::Misconfigured`] if it or its `-wal`/`-shm` file belongs to another
    /// user.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_table(path, "sessions")
    }

    /// Opens the database file at `path` with sessions in `table` (letters, digits and `_`,
    /// not starting with a digit).
    ///
    /// # Errors
    /// As [`open`](Self::open); [`StoreError::Unavailable`] also for an invalid table name.
    pub fn open_with_table(path: impl AsRef<Path>, table: &str) -> Result<Self, StoreError> {
        let path: PathBuf = path.as_ref().to_owned();
        let on_disk = !path.as_os_str().is_empty()
            && path.as_os_str() != ":memory:"
            && !path.to_string_lossy().starts_with("file:");
        if on_disk {
            super::private::file(&path, true)?;
            for suffix in ["-wal", "-shm"] {
                let mut beside = path.clone().into_os_string();
                beside.push(suffix);
                super::private::file(Path::new(&beside), false)?;
            }
        }
        let writer_path = path.clone();
        let mut store = Self::start(table, move || Connection::open(writer_path))?;
        if on_disk {
            let table = table.to_owned();
            store.reader = Some(Worker::start("cookie-session-sqlite-reads", move || {
                let conn = Connection::open(path).map_err(unavailable)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
                Ok(Db { conn, table })
            })?);
        }
        Ok(store)
    }

    /// A private database in memory, gone with the store: for tests and single-process
    /// development.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::start("sessions", Connection::open_in_memory)
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 1 MiB.
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    fn start(
        table: &str,
        connect: impl FnOnce() -> rusqlite::Result<Connection> + Send + 'static,
    ) -> Result<Self, StoreError> {
        if !super::is_identifier(table) {
            return Err(StoreError::Unavailable(
                format!("{table:?} is not a table name (letters, digits and _)").into(),
            ));
        }
        let table = table.to_owned();
        let worker = Worker::start("cookie-session-sqlite", move || {
            let conn = connect().map_err(unavailable)?;
            // Another process (a second instance, the CLI's sweep) may hold the write lock
            // briefly: wait for it rather than fail. WAL with `synchronous = NORMAL`, as
            // SQLite recommends for WAL: a commit does not wait for the disk (about 10x
            // more writes per second here), and a power loss can only lose the last
            // commits, never corrupt the database.
            conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS {table} (
                     key BLOB PRIMARY KEY,
                     data BLOB NOT NULL,
                     expires INTEGER NOT NULL,
                     version INTEGER NOT NULL,
                     user_key TEXT
                 );
                 CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires);"
            ))
            .map_err(unavailable)?;
            // A table made before the user index existed gains its column (no row is
            // rewritten: SQLite adds a nullable column in the schema only).
            let has_user: bool = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM pragma_table_info('{table}') WHERE name = 'user_key'"
                    ),
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map(|n| n > 0)
                .map_err(unavailable)?;
            if !has_user {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN user_key TEXT"))
                    .map_err(unavailable)?;
            }
            conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS {table}_user_key ON {table} (user_key)
                 WHERE user_key IS NOT NULL;"
            ))
            .map_err(unavailable)?;
            Ok(Db { conn, table })
        })?;
        Ok(Self {
            worker,
            reader: None,
            max_record: 1 << 20,
        })
    }
}

/// How long a statement waits for a lock another connection holds, as the network stores
/// bound each operation.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Db {
    /// The version of the live record under `key`, if any.
    fn live_version(&self, key: &[u8; 32], now: i64) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT version FROM {} WHERE key = ?1 AND expires > ?2",
                    self.table
                ),
                params![key.as_slice(), now],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.map(|v| u64::try_from(v).unwrap_or(0)))
            .map_err(unavailable)
    }
}

/// A version as SQLite stores it (versions stay far below `i64::MAX`).
fn sql_version(version: Version) -> i64 {
    i64::try_from(version.0).unwrap_or(i64::MAX)
}

impl SessionStore for SqliteStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let (key, now) = (key.0, unix(now));
        self.reader.as_ref().unwrap_or(&self.worker).run(move |db| {
            let row = db
                .conn
                .query_row(
                    &format!(
                        "SELECT data, expires, version FROM {} WHERE key = ?1 AND expires > ?2",
                        db.table
                    ),
                    params![key.as_slice(), now],
                    |row| {
                        // Blob or text (a row written by another tool): the same bytes.
                        Ok((
                            row.get_ref(0)?.as_bytes()?.to_vec(),
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(data, expires, version)| {
                Ok(Record::new(
                    data,
                    datetime(expires)?,
                    Version(u64::try_from(version).unwrap_or(0)),
                ))
            })
            .transpose()
        })
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let checked = check_size(data, self.max_record);
        let (key, data, expires, now) = (key.0, data.to_vec(), unix(expires), unix(now));
        // The size is checked before the job is sent: a sent job runs whether or not the
        // future is awaited.
        let job = checked.map(|()| {
            self.worker.run(move |db| {
                // One statement: insert, or take over the key of an expired record; a live one
                // is left alone, and then nothing changed.
                let changed = db
                    .conn
                    .execute(
                        &format!(
                            "INSERT INTO {t} (key, data, expires, version) VALUES (?1, ?2, ?3, 1)
                         ON CONFLICT (key) DO UPDATE
                         SET data = excluded.data, expires = excluded.expires, version = 1,
                             user_key = NULL
                         WHERE {t}.expires <= ?4",
                            t = db.table
                        ),
                        params![key.as_slice(), data, expires, now],
                    )
                    .map_err(unavailable)?;
                if changed == 1 {
                    Ok(Version::FIRST)
                } else {
                    Err(StoreError::Duplicate)
                }
            })
        });
        async move { job?.await }
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let checked = check_size(data, self.max_record);
        let (key, data, expires, now) = (key.0, data.to_vec(), unix(expires), unix(now));
        // The size is checked before the job is sent: a sent job runs whether or not the
        // future is awaited.
        let job = checked.map(|()| {
            self.worker.run(move |db| {
                // Compare-and-set in one statement.
                let changed = db
                    .conn
                    .execute(
                        &format!(
                            "UPDATE {} SET data = ?1, expires = ?2, version = version + 1
                         WHERE key = ?3 AND version = ?4 AND expires > ?5",
                            db.table
                        ),
                        params![data, expires, key.as_slice(), sql_version(expected), now],
                    )
                    .map_err(unavailable)?;
                if changed == 1 {
                    return Ok(expected.next());
                }
                match db.live_version(&key, now)? {
                    None => Err(StoreError::Gone),
                    Some(_) => Err(StoreError::Conflict),
                }
            })
        });
        async move { job?.await }
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (key, expires, now) = (key.0, unix(expires), unix(now));
        self.worker.run(move |db| {
            let changed = db
                .conn
                .execute(
                    &format!(
                        "UPDATE {} SET expires = MAX(expires, ?1) WHERE key = ?2 AND expires > ?3",
                        db.table
                    ),
                    params![expires, key.as_slice(), now],
                )
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
        let (from, to, now) = (from.0, to.0, unix(now));
        self.worker.run(move |db| {
            // Immediate: a deferred transaction that reads and then writes fails at once
            // (SQLITE_BUSY, no busy wait) when another process committed in between.
            let tx = db
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let table = &db.table;
            let live = |key: &[u8; 32]| {
                tx.query_row(
                    &format!("SELECT 1 FROM {table} WHERE key = ?1 AND expires > ?2"),
                    params![key.as_slice(), now],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
                .map_err(unavailable)
            };
            if !live(&from)? {
                return Err(StoreError::Gone);
            }
            if from == to {
                return Ok(());
            }
            if live(&to)? {
                return Err(StoreError::Duplicate);
            }
            tx.execute(
                &format!("DELETE FROM {table} WHERE key = ?1"),
                params![to.as_slice()],
            )
            .map_err(unavailable)?;
            tx.execute(
                &format!("UPDATE {table} SET key = ?1 WHERE key = ?2"),
                params![to.as_slice(), from.as_slice()],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (key, now) = (key.0, unix(now));
        self.worker.run(move |db| {
            let expires: Option<i64> = db
                .conn
                .query_row(
                    &format!("DELETE FROM {} WHERE key = ?1 RETURNING expires", db.table),
                    params![key.as_slice()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(expires.is_some_and(|e| e > now))
        })
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let now = unix(now);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.worker.run(move |db| {
            // Bounded and ordered by the expiry index: the oldest first, at most `max`.
            db.conn
                .execute(
                    &format!(
                        "DELETE FROM {t} WHERE key IN
                         (SELECT key FROM {t} WHERE expires <= ?1 ORDER BY expires LIMIT ?2)",
                        t = db.table
                    ),
                    params![now, max],
                )
                .map_err(unavailable)
        })
    }

    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let checked = super::check_user(user);
        let (key, user, now) = (key.0, user.to_owned(), unix(now));
        let job = checked.map(|()| {
            self.worker.run(move |db| {
                let changed = db
                    .conn
                    .execute(
                        &format!(
                            "UPDATE {} SET user_key = ?1 WHERE key = ?2 AND expires > ?3",
                            db.table
                        ),
                        params![user, key.as_slice(), now],
                    )
                    .map_err(unavailable)?;
                if changed == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Gone)
                }
            })
        });
        async move { job?.await }
    }

    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let (user, now) = (user.to_owned(), unix(now));
        self.worker.run(move |db| {
            let mut statement = db
                .conn
                .prepare(&format!(
                    "SELECT key FROM {} WHERE user_key = ?1 AND expires > ?2",
                    db.table
                ))
                .map_err(unavailable)?;
            let keys = statement
                .query_map(params![user, now], |row| row.get::<_, Vec<u8>>(0))
                .map_err(unavailable)?;
            keys.filter_map(|k| k.map(|k| <[u8; 32]>::try_from(k).ok()).transpose())
                .map(|k| k.map(StoreKey).map_err(unavailable))
                .collect()
        })
    }

    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let (user, except, now) = (user.to_owned(), except.map(|k| k.0), unix(now));
        self.worker.run(move |db| {
            let except = except.map(|k| k.to_vec()).unwrap_or_default();
            let mut statement = db
                .conn
                .prepare(&format!(
                    "DELETE FROM {} WHERE user_key = ?1 AND key != ?2 RETURNING key, expires",
                    db.table
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![user, except], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(unavailable)?;
            let mut deleted = Vec::new();
            for row in rows {
                let (key, expires) = row.map_err(unavailable)?;
                if let (Ok(key), true) = (<[u8; 32]>::try_from(key), expires > now) {
                    deleted.push(StoreKey(key));
                }
            }
            Ok(deleted)
        })
    }
}
