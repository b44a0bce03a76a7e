//! Beaker's `ext:database` backend (`beaker.ext.database`, SQLAlchemy) on PostgreSQL: the
//! session value of id `ID` is the row `namespace = ID` of the table `beaker_cache` (or
//! `session.table_name`), whose `data` column (`bytea`, SQLAlchemy's `PickleType`) holds
//! `pickle.dumps({'session': value})`, with `accessed` and `created` timestamps. Beaker
//! creates the table on first use; it takes no lock (its access lock is a no-op here).
//! This side's writes compare the `data` bytes they read in the statement itself, so a
//! write in between is never overwritten.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::{Map, Value};
use tokio_postgres::error::SqlState;

use super::{Backend, BeakerStore, Found};
use crate::legacy::beaker::BeakerStored;
use crate::legacy::pickle::{Limits, from_pickle, to_pickle};
use crate::stores::deadline::Deadlines;
use crate::stores::{BoxFuture, StoreError, is_identifier};

struct Database {
    pool: Pool,
    /// The statements, with the table's name in them.
    get: String,
    update: String,
    insert: String,
    delete: String,
    deadlines: Deadlines,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ext:database")
    }
}

impl BeakerStore {
    /// Sessions in the PostgreSQL table a Beaker application with `session.type =
    /// ext:database` and `session.url` on the same database uses (`table`: Beaker's
    /// `session.table_name`, by default `beaker_cache`), in `value`'s format, expiring after
    /// `timeout` (`session.timeout`) without access. Connects lazily (no TLS: for TLS, use
    /// [`database_from_pool`](Self::database_from_pool)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cookie_session::beaker::{BeakerSerializer, BeakerStored};
    /// use cookie_session::store::BeakerStore;
    /// let store = BeakerStore::database(
    ///     "postgres://app@127.0.0.1/app",
    ///     "beaker_cache",
    ///     BeakerStored::new(BeakerSerializer::Pickle),
    ///     Duration::from_secs(1200),
    /// )?;
    /// # Ok::<(), cookie_session::store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for a table name that is not a plain identifier;
    /// [`StoreError::Unavailable`] for a URL that does not parse.
    pub fn database(
        url: &str,
        table: &str,
        value: BeakerStored,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::database_from_pool(crate::stores::postgres::pool(url)?, table, value, timeout)
    }

    /// [`database`](Self::database) on the application's own pool.
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for a table name that is not a plain identifier.
    pub fn database_from_pool(
        pool: Pool,
        table: &str,
        value: BeakerStored,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        if !is_identifier(table) {
            return Err(StoreError::Misconfigured(format!(
                "{table:?} is not a plain table name (letters, digits, _)"
            )));
        }
        let backend = Database {
            pool,
            get: format!("SELECT data FROM {table} WHERE namespace = $1"),
            update: format!(
                "UPDATE {table} SET data = $2, accessed = LOCALTIMESTAMP WHERE namespace = $1 AND data = $3"
            ),
            insert: format!(
                "INSERT INTO {table} (namespace, accessed, created, data) \
                 VALUES ($1, LOCALTIMESTAMP, LOCALTIMESTAMP, $2) ON CONFLICT (namespace) DO NOTHING"
            ),
            delete: format!("DELETE FROM {table} WHERE namespace = $1 AND data = $2"),
            deadlines: Deadlines::new(Duration::from_secs(5)),
        };
        Ok(Self::with_backend(
            std::sync::Arc::new(backend),
            value,
            timeout,
        ))
    }
}

/// A table that does not fit the statements is the operator's to fix; anything else is
/// unavailability.
fn failed(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let db = (&error as &(dyn std::error::Error + 'static))
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error);
    if let Some(db) = db
        && (db.code().code().starts_with("42")
            || *db.code() == SqlState::INVALID_TEXT_REPRESENTATION)
    {
        return StoreError::Misconfigured(format!(
            "PostgreSQL refused Beaker's session table: {} (SQLSTATE {}); let the Beaker application create it (ext:database), or check the table name",
            db.message(),
            db.code().code()
        ));
    }
    StoreError::Unavailable(Box::new(error))
}

/// The session value in a row's `data` (an empty value for one this side cannot read).
fn found(raw: Vec<u8>) -> Option<Found> {
    let value = match from_pickle(&raw, &Limits::default()) {
        Ok(hash) => match hash.get("session") {
            Some(Value::String(text)) => text.clone().into_bytes(),
            // Beaker's namespace without a session: nothing here.
            None => return None,
            Some(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    };
    Some(Found { value, raw })
}

/// `data` for a session value: `{'session': value}` pickled.
fn wrap(value: &[u8]) -> Result<Vec<u8>, StoreError> {
    let text = std::str::from_utf8(value).map_err(|_| StoreError::Corrupt)?;
    let mut hash = Map::new();
    hash.insert("session".into(), Value::String(text.to_owned()));
    to_pickle(&hash).map_err(|e| StoreError::Unavailable(Box::new(e)))
}

impl Database {
    /// Runs `op`, or fails with `Unavailable` once the timeout has passed.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.deadlines.within("PostgreSQL", op).await
    }
}

impl Backend for Database {
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Found>, StoreError>> {
        Box::pin(self.bounded(async move {
            let client = self.pool.get().await.map_err(failed)?;
            let row = client.query_opt(&self.get, &[&id]).await.map_err(failed)?;
            Ok(row.and_then(|row| found(row.get(0))))
        }))
    }

    fn swap<'a>(
        &'a self,
        id: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
        _keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.bounded(async move {
            let new = new.map(wrap).transpose()?;
            let client = self.pool.get().await.map_err(failed)?;
            let changed = match (expected, new) {
                (Some(old), Some(new)) => client.execute(&self.update, &[&id, &new, &old]).await,
                (None, Some(new)) => client.execute(&self.insert, &[&id, &new]).await,
                (Some(old), None) => client.execute(&self.delete, &[&id, &old]).await,
                (None, None) => return Ok(true),
            }
            .map_err(failed)?;
            Ok(changed == 1)
        }))
    }

    fn relocate<'a>(
        &'a self,
        from: &'a str,
        from_raw: &'a [u8],
        to: &'a str,
        to_raw: Option<&'a [u8]>,
        value: &'a [u8],
        _keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.bounded(async move {
            let new = wrap(value)?;
            let mut client = self.pool.get().await.map_err(failed)?;
            // One transaction: every step must find what was read, or nothing happens.
            let tx = client.transaction().await.map_err(failed)?;
            let from_gone = tx
                .execute(&self.delete, &[&from, &from_raw])
                .await
                .map_err(failed)?;
            let to_free = match to_raw {
                Some(old) => tx
                    .execute(&self.delete, &[&to, &old])
                    .await
                    .map_err(failed)?,
                None => 1,
            };
            let to_set = tx
                .execute(&self.insert, &[&to, &new])
                .await
                .map_err(failed)?;
            if from_gone != 1 || to_free != 1 || to_set != 1 {
                tx.rollback().await.map_err(failed)?;
                return Ok(false);
            }
            tx.commit().await.map_err(failed)?;
            Ok(true)
        }))
    }
}
