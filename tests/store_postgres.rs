//! `PostgresStore` against a real PostgreSQL (`DATABASE_URL`): the conformance suite, the
//! TurboGears `visit` table, the sweep's batches and lock.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

cookie_session::store_conformance!(async services::postgres_store(), services::with_postgres);

use std::sync::Arc;

use cookie_session::store::{PostgresStore, PostgresTable, SessionStore, StoreError, StoreKey};
use cookie_session::time::{Duration, OffsetDateTime};
use cookie_session::{CookieAction, Key, KeyRing, Mode, SessionConfig, SessionHandle};

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap()
}

/// The `visit` table exactly as the TurboGears documents define it, in PostgreSQL types.
const TURBOGEARS_VISIT: &str = "
    visit_key varchar(40) PRIMARY KEY,
    session_data bytea,
    created timestamp NOT NULL DEFAULT now(),
    expiry timestamp";

#[test]
fn sessions_live_in_a_migrated_turbogears_visit_table() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::unique_name("cs_test");
        let sql = services::postgres_client(&url).await;
        sql.batch_execute(&format!(
            "CREATE TABLE {table} ({TURBOGEARS_VISIT});
             INSERT INTO {table} VALUES
               ('{old}', '\\x80037d71', '2009-05-01 10:00:00', '2009-05-01 10:20:00'),
               ('{bare}', NULL, '2009-05-01 11:00:00', '2999-01-01 00:00:00');",
            old = "a".repeat(40),
            bare = "b".repeat(40),
        ))
        .await
        .unwrap();
        let file_before: u32 = sql
            .query_one(
                &format!("SELECT relfilenode FROM pg_class WHERE relname = '{table}'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);

        let store =
            PostgresStore::connect(&url, PostgresTable::turbogears_visit().with_table(&table))
                .unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap(); // idempotent

        // The existing rows are neither rewritten nor changed.
        let file_after: u32 = sql
            .query_one(
                &format!("SELECT relfilenode FROM pg_class WHERE relname = '{table}'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(file_before, file_after, "migrate rewrote the table");
        let rows = sql
            .query(
                &format!(
                    "SELECT visit_key, session_data, created::text, expiry::text, version
                     FROM {table} ORDER BY visit_key"
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].get::<_, Option<Vec<u8>>>(1),
            Some(vec![0x80, 0x03, 0x7d, 0x71])
        );
        assert_eq!(rows[0].get::<_, String>(2), "2009-05-01 10:00:00");
        assert_eq!(rows[0].get::<_, String>(3), "2009-05-01 10:20:00");
        assert_eq!(rows[0].get::<_, i64>(4), 1);
        assert_eq!(rows[1].get::<_, Option<Vec<u8>>>(1), None);
        let index = sql
            .query_opt(
                "SELECT 1 FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expiry)%'",
                &[&table],
            )
            .await
            .unwrap();
        assert!(index.is_some(), "no index on expiry");

        // Sessions through the whole layer: created, read back, changed.
        let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate().unwrap()))
            .with_name("tg-visit")
            .build()
            .unwrap();
        let store: Arc<dyn cookie_session::store::DynStore> = Arc::new(store);
        let t = now();
        let first = SessionHandle::server_side(sessions.load_server_side([], t), store.clone());
        first.load().await.unwrap();
        first.insert("user", "ada").unwrap();
        let CookieAction::Set(header) = first.commit(t).await.unwrap().cookie else {
            panic!("a new session sets its cookie")
        };
        let cookie = header.split(';').next().unwrap().to_owned();

        let second = SessionHandle::server_side(
            sessions.load_server_side([cookie.as_bytes()], t + Duration::seconds(1)),
            store.clone(),
        );
        second.load().await.unwrap();
        assert_eq!(
            second.get::<String>("user").unwrap().as_deref(),
            Some("ada")
        );
        second.insert("theme", "dark").unwrap();
        assert_eq!(
            second
                .commit(t + Duration::seconds(1))
                .await
                .unwrap()
                .cookie,
            CookieAction::Keep
        );

        let row = sql
            .query_one(
                &format!(
                    "SELECT visit_key, session_data, version,
                            extract(epoch FROM created AT TIME ZONE 'UTC')::int8,
                            extract(epoch FROM expiry AT TIME ZONE 'UTC')::int8
                     FROM {table} WHERE visit_key NOT IN ($1, $2)"
                ),
                &[&"a".repeat(40), &"b".repeat(40)],
            )
            .await
            .unwrap();
        let visit_key: String = row.get(0);
        assert_eq!(visit_key.len(), 40, "{visit_key}");
        assert!(visit_key.bytes().all(|b| b.is_ascii_hexdigit()));
        let data: serde_json::Value = serde_json::from_slice(&row.get::<_, Vec<u8>>(1)).unwrap();
        assert_eq!(data, serde_json::json!({"user": "ada", "theme": "dark"}));
        assert_eq!(row.get::<_, i64>(2), 2);
        assert_eq!(row.get::<_, i64>(3), t.unix_timestamp(), "created is UTC");
        // The default idle timeout of 20 minutes, from the write.
        assert_eq!(
            row.get::<_, i64>(4),
            (t + Duration::seconds(1) + Duration::minutes(20)).unix_timestamp()
        );
        sql.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn visits_without_session_data_load_as_no_session() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::unique_name("cs_test");
        let sql = services::postgres_client(&url).await;
        let store =
            PostgresStore::connect(&url, PostgresTable::turbogears_visit().with_table(&table))
                .unwrap();
        sql.batch_execute(&format!("CREATE TABLE {table} ({TURBOGEARS_VISIT})"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let key = StoreKey::from_bytes([0xab; 32]);
        sql.execute(
            &format!("INSERT INTO {table} (visit_key, expiry) VALUES ($1, '2999-01-01')"),
            &[&key.to_string()[..40].to_owned()],
        )
        .await
        .unwrap();
        assert_eq!(store.load(&key, now()).await.unwrap(), None);
        sql.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn the_sweep_deletes_oldest_first_in_bounded_batches_under_one_lock() {
    services::with_postgres(async {
        let store = services::postgres_store().await;
        let url = std::env::var("DATABASE_URL").unwrap();
        let t = now();
        // Ten expired records, expiring one minute apart, and three live ones.
        let mut expired = Vec::new();
        for i in 0..10 {
            let key = StoreKey::from_bytes(rand::random());
            store
                .create(&key, b"{}", t + Duration::minutes(i + 1), t)
                .await
                .unwrap();
            expired.push(key);
        }
        let mut live = Vec::new();
        for _ in 0..3 {
            let key = StoreKey::from_bytes(rand::random());
            store
                .create(&key, b"{}", t + Duration::days(1), t)
                .await
                .unwrap();
            live.push(key);
        }
        let later = t + Duration::hours(1);

        // Another instance holds the sweep lock: this one sweeps nothing.
        let other = services::postgres_client(&url).await;
        other
            .query_one("SELECT pg_advisory_lock($1)", &[&store.sweep_lock_id()])
            .await
            .unwrap();
        assert_eq!(store.sweep(later, 4).await.unwrap(), 0);
        other
            .query_one("SELECT pg_advisory_unlock($1)", &[&store.sweep_lock_id()])
            .await
            .unwrap();

        // Batches of at most 4, the soonest-expired first, until one comes back short.
        assert_eq!(store.sweep(later, 4).await.unwrap(), 4);
        for (i, key) in expired.iter().enumerate() {
            // Loaded at `t`, when all ten were live: only the swept ones are missing.
            let present = store.load(key, t).await.unwrap().is_some();
            assert_eq!(present, i >= 4, "record {i} after the first batch");
        }
        assert_eq!(store.sweep(later, 4).await.unwrap(), 4);
        assert_eq!(store.sweep(later, 4).await.unwrap(), 2);
        assert_eq!(store.sweep(later, 4).await.unwrap(), 0);
        for key in &live {
            assert!(store.load(key, later).await.unwrap().is_some());
        }
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn an_unreachable_server_is_unavailable_within_the_timeout() {
    let rt = services::runtime();
    rt.block_on(async {
        // A port nothing listens on.
        let store = PostgresStore::connect(
            "postgres://nobody@127.0.0.1:9/none",
            PostgresTable::new("sessions"),
        )
        .unwrap()
        .with_timeout(std::time::Duration::from_secs(2));
        let result = store.load(&StoreKey::from_bytes([1; 32]), now()).await;
        assert!(
            matches!(
                result,
                Err(cookie_session::store::StoreError::Unavailable(_))
            ),
            "{result:?}"
        );
    });
}

#[test]
fn invalid_table_descriptions_are_refused() {
    for table in [
        PostgresTable::new("sessions; DROP TABLE x"),
        PostgresTable::new("sessions").with_key_hex_digits(30),
        PostgresTable::new("sessions").with_key_hex_digits(41),
        PostgresTable::new("sessions").with_columns("k", "d", "c", "e e", "v"),
    ] {
        assert!(PostgresStore::connect("postgres://localhost/x", table).is_err());
    }
}

#[test]
fn the_sweep_can_use_the_expiry_index() {
    services::with_postgres(async {
        let store = services::postgres_store().await;
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::current_name();
        let t = now();
        for _ in 0..50 {
            let key = StoreKey::from_bytes(rand::random());
            store
                .create(&key, b"{}", t + Duration::minutes(1), t)
                .await
                .unwrap();
        }
        // The sweep's batch query, planned with sequential scans ruled out: a tiny table
        // would be scanned anyway, so this asks whether the index serves the ordered batch.
        let sql = services::postgres_client(&url).await;
        sql.batch_execute("SET enable_seqscan = off; SET enable_sort = off")
            .await
            .unwrap();
        let plan: Vec<String> = sql
            .query(
                &format!(
                    "EXPLAIN SELECT key FROM {table} WHERE expires <= now()
                     ORDER BY expires LIMIT 100 FOR UPDATE SKIP LOCKED"
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(&format!("{table}_expires_idx")), "{plan}");
        Ok::<(), String>(())
    })
    .unwrap();
}

/// A TurboGears 1 visit table, without the `session_data` column the visit-sessions recipe
/// adds by hand.
const TURBOGEARS_1_VISIT: &str = "
    visit_key varchar(40) PRIMARY KEY,
    created timestamp NOT NULL DEFAULT now(),
    expiry timestamp";

/// `migrate()` adds the data column a TurboGears 1 visit table lacks (nullable: no row
/// rewritten, existing visits are no session), and sessions then work through the layer.
#[test]
fn migrate_adds_the_data_column_a_turbogears_1_visit_table_lacks() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::current_name();
        let sql = services::postgres_client(&url).await;
        sql.batch_execute(&format!(
            "CREATE TABLE {table} ({TURBOGEARS_1_VISIT});
             INSERT INTO {table} VALUES ('{}', '2009-05-01 11:00:00', '2999-01-01 00:00:00');",
            "c".repeat(40)
        ))
        .await
        .unwrap();
        let store =
            PostgresStore::connect(&url, PostgresTable::turbogears_visit().with_table(&table))
                .unwrap();
        // Before the migration a write is a schema error that names the column, not
        // "unavailable, retry".
        let now = now();
        let key = StoreKey::from_bytes([0x3c; 32]);
        let error = store
            .create(&key, b"{}", now + Duration::minutes(20), now)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
        assert!(error.to_string().contains("session_data"), "{error}");

        store.migrate().await.unwrap();
        let nullable: String = sql
            .query_one(
                "SELECT is_nullable::text FROM information_schema.columns
                 WHERE table_name = $1 AND column_name = 'session_data'",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nullable, "YES");
        let version = store
            .create(&key, b"{\"n\":1}", now + Duration::minutes(20), now)
            .await
            .unwrap();
        store
            .save(
                &key,
                version,
                b"{\"n\":2}",
                now + Duration::minutes(20),
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            store.load(&key, now).await.unwrap().unwrap().data,
            b"{\"n\":2}"
        );
        // The visit that was there is kept, with no data.
        let kept: Option<Vec<u8>> = sql
            .query_one(
                &format!("SELECT session_data FROM {table} WHERE visit_key = $1"),
                &[&"c".repeat(40)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept, None);
        Ok::<(), String>(())
    })
    .unwrap();
}

/// A table without a column the store needs and cannot add is refused at start-up by
/// `migrate()` with an error that names the column; the store's operations report such a
/// table as misconfigured, never as unavailable.
#[test]
fn a_table_without_a_needed_column_is_a_schema_error_naming_it() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::current_name();
        let sql = services::postgres_client(&url).await;
        sql.batch_execute(&format!(
            "CREATE TABLE {table} (visit_key varchar(40) PRIMARY KEY, expiry timestamp)"
        ))
        .await
        .unwrap();
        let store =
            PostgresStore::connect(&url, PostgresTable::turbogears_visit().with_table(&table))
                .unwrap();
        let error = store.migrate().await.unwrap_err();
        assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
        assert!(error.to_string().contains("no column created"), "{error}");
        // A table that does not exist at all.
        let missing = PostgresStore::connect(
            &url,
            PostgresTable::new(&services::unique_name("cs_test_missing")),
        )
        .unwrap();
        let error = missing.migrate().await.unwrap_err();
        assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
        let now = now();
        let error = missing
            .load(&StoreKey::from_bytes([1; 32]), now)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
        Ok::<(), String>(())
    })
    .unwrap();
}

/// Ten instances start at once on a table that does not exist yet: every `create_table`
/// and `migrate` succeeds (PostgreSQL's catalog refuses concurrent `CREATE TABLE IF NOT
/// EXISTS` of one table without the lock).
#[test]
fn instances_starting_at_once_all_create_and_migrate_the_table() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::current_name();
        for round in 0..3 {
            let starts: Vec<_> = (0..10)
                .map(|n| {
                    let store = PostgresStore::connect(&url, PostgresTable::new(&table)).unwrap();
                    tokio::spawn(async move {
                        if n % 2 == 0 {
                            store.create_table().await
                        } else {
                            store.create_table().await?;
                            store.migrate().await
                        }
                    })
                })
                .collect();
            for (n, started) in starts.into_iter().enumerate() {
                started
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}, instance {n}: {e:?}"));
            }
            let sql = services::postgres_client(&url).await;
            sql.batch_execute(&format!("DROP TABLE {table}"))
                .await
                .unwrap();
        }
        Ok::<(), String>(())
    })
    .unwrap();
}

/// TurboGears' `visit_identity`: a visit's link to its user (`user_id` an integer).
const TURBOGEARS_VISIT_IDENTITY: &str = "
    visit_key varchar(40) PRIMARY KEY,
    user_id integer NOT NULL";

/// The Visit documents' housekeeping: the sweep deletes visits that expired more than the
/// retention ago (7 days by default; rows the Python side wrote and ours alike, the one
/// exactly at the cut-off included) with their `visit_identity` rows, in batches; visits
/// expired more recently stay (never loadable) with their identities, as do live ones.
/// Then a retention of zero takes every expired visit.
#[test]
fn the_visit_sweep_keeps_expired_visits_for_the_retention_and_takes_their_identities() {
    use cookie_session::store::Sweeper;
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = services::unique_name("cs_test");
        let identity = format!("{table}_identity");
        let sql = services::postgres_client(&url).await;
        sql.batch_execute(&format!(
            "CREATE TABLE {table} ({TURBOGEARS_VISIT});
             CREATE TABLE {identity} ({TURBOGEARS_VISIT_IDENTITY});"
        ))
        .await
        .unwrap();
        let visits = PostgresTable::turbogears_visit()
            .with_table(&table)
            .with_identity_table(&identity);
        let store = PostgresStore::connect(&url, visits.clone()).unwrap();
        store.migrate().await.unwrap();
        let t = now();
        let day = Duration::days(1);
        // The Python side's visits: key, expiry, user id.
        let python = [
            ("py-old", t - day * 10, 1),
            ("py-cutoff", t - day * 7, 2),
            ("py-recent", t - day * 6, 3),
            ("py-live", t + Duration::hours(1), 4),
        ];
        for (key, expiry, user) in python {
            sql.execute(
                &format!(
                    "INSERT INTO {table} (visit_key, expiry)
                     VALUES ($1, to_timestamp($2::float8) AT TIME ZONE 'UTC');
                     "
                ),
                &[&key, &(expiry.unix_timestamp() as f64)],
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
        // Ours, created when each was live.
        let ours = |i: u8| StoreKey::from_bytes([i; 32]);
        for (i, expiry) in [(1, t - day * 8), (2, t - day * 2), (3, t + day)] {
            store
                .create(&ours(i), b"{}", expiry, expiry - Duration::hours(1))
                .await
                .unwrap();
        }
        let remaining = |table: String| {
            let sql = &sql;
            async move {
                let rows = sql
                    .query(&format!("SELECT visit_key FROM {table} ORDER BY 1"), &[])
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
            }
        };
        let hex = |i: u8| ours(i).to_string()[..40].to_owned();

        let removed = Sweeper::new()
            .with_batch_size(2)
            .sweep_once(&store, t)
            .await
            .unwrap();
        assert_eq!(removed, 3, "py-old, py-cutoff and ours 8 days past");
        let mut kept = vec![hex(2), hex(3), "py-live".to_owned(), "py-recent".to_owned()];
        kept.sort();
        assert_eq!(remaining(table.clone()).await, kept);
        assert_eq!(
            remaining(identity.clone()).await,
            vec!["py-live".to_owned(), "py-recent".to_owned()]
        );
        // Kept for audit, never loadable.
        assert_eq!(store.load(&ours(2), t).await.unwrap(), None);
        assert!(store.load(&ours(3), t).await.unwrap().is_some());

        let store =
            PostgresStore::connect(&url, visits.with_retention(std::time::Duration::ZERO)).unwrap();
        let removed = Sweeper::new().sweep_once(&store, t).await.unwrap();
        assert_eq!(removed, 2, "py-recent and ours 2 days past");
        let mut kept = vec![hex(3), "py-live".to_owned()];
        kept.sort();
        assert_eq!(remaining(table.clone()).await, kept);
        assert_eq!(
            remaining(identity.clone()).await,
            vec!["py-live".to_owned()]
        );
        sql.batch_execute(&format!("DROP TABLE {table}; DROP TABLE {identity};"))
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}
