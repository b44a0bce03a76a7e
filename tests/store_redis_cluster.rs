//! `RedisStore` on a Redis or Valkey Cluster (`REDIS_CLUSTER_URL`, comma-separated node
//! URLs; `.ci/run` starts three masters and three replicas on loopback): the conformance
//! suite in both layouts (each record in its own slot; every key in one slot), where the
//! keys land, and renames across slots parked between their steps while other requests
//! save, delete, rename, relink and log out the same session.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

cookie_session::store_conformance!(
    async services::redis_cluster_store(),
    services::with_redis_cluster
);

/// The same suite with a prefix that holds a hash tag: every key in one slot.
mod one_slot {
    use super::services;
    cookie_session::store_conformance!(
        async services::redis_cluster_store_in_one_slot(),
        services::with_redis_cluster
    );
}

#[cfg(all(feature = "redis", feature = "store-testing"))]
mod layout_and_races {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::services;
    use cookie_session::store::{
        ClusterStep, RedisStore, SessionStore, StoreError, StoreKey, Version,
    };
    use cookie_session::time::{Duration, OffsetDateTime};
    use tokio::sync::Notify;

    async fn cluster() -> redis::cluster_async::ClusterConnection {
        let urls = services::cluster_urls().unwrap();
        let client = redis::cluster::ClusterClient::new(urls.iter().map(String::as_str)).unwrap();
        client.get_async_connection().await.unwrap()
    }

    /// The keys of this check's store, and their slots.
    async fn keys_and_slots() -> (Vec<String>, BTreeSet<i64>) {
        let mut conn = cluster().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", services::current_name()))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut slots = BTreeSet::new();
        for key in &keys {
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            slots.insert(slot);
        }
        (keys, slots)
    }

    /// How many masters hold at least one of this check's keys.
    async fn masters_holding_keys() -> usize {
        let mut holding = 0;
        for url in services::cluster_urls().unwrap() {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
            let master = matches!(&role[0], redis::Value::BulkString(r) if r == b"master");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", services::current_name()))
                .query_async(&mut conn)
                .await
                .unwrap();
            if master && !keys.is_empty() {
                holding += 1;
            }
        }
        holding
    }

    fn later(now: OffsetDateTime) -> OffsetDateTime {
        now + Duration::hours(1)
    }

    /// By default each record is in its own slot, and one application's sessions spread
    /// over every master; renamed records and the user index included.
    #[test]
    fn records_spread_over_every_master() {
        services::with_redis_cluster(async {
            let store = services::redis_cluster_store().await;
            let now = OffsetDateTime::now_utc();
            for i in 0..48u8 {
                let key = StoreKey::from_bytes([i; 32]);
                store.create(&key, b"{}", later(now), now).await.unwrap();
                store.set_user(&key, "ada", now).await.unwrap();
            }
            let (a, b) = (
                StoreKey::from_bytes([1; 32]),
                StoreKey::from_bytes([200; 32]),
            );
            store.rename(&a, &b, now).await.unwrap();
            assert_eq!(store.sessions_of("ada", now).await.unwrap().len(), 48);
            let (keys, slots) = keys_and_slots().await;
            assert_eq!(keys.len(), 49, "48 records and the user's set: {keys:?}");
            assert!(slots.len() >= 40, "{} slots", slots.len());
            assert_eq!(masters_holding_keys().await, 3);
            Ok::<(), String>(())
        })
        .unwrap();
    }

    /// Every master that lost the store's scripts (restarted, flushed, a new node) is sent
    /// each again by the call that found it missing: single-record writes, a rename across
    /// slots and log out everywhere all go through, with the scripts flushed before each.
    #[test]
    fn masters_that_forgot_the_scripts_are_sent_them_again() {
        services::with_redis_cluster(async {
            let store = services::redis_cluster_store().await;
            let now = OffsetDateTime::now_utc();
            let flush = || async {
                let () = redis::cmd("SCRIPT")
                    .arg("FLUSH")
                    .query_async(&mut cluster().await)
                    .await
                    .unwrap();
            };
            let keys: Vec<StoreKey> = (0..12u8).map(|i| StoreKey::from_bytes([i; 32])).collect();
            for key in &keys {
                flush().await;
                store.create(key, b"{}", later(now), now).await.unwrap();
                flush().await;
                let saved = store
                    .save(key, Version::FIRST, b"{\"a\":1}", later(now), now)
                    .await
                    .unwrap();
                assert!(saved > Version::FIRST);
                flush().await;
                store.set_user(key, "ada", now).await.unwrap();
            }
            flush().await;
            let moved = StoreKey::from_bytes([200; 32]);
            store.rename(&keys[0], &moved, now).await.unwrap();
            assert!(store.load(&keys[0], now).await.unwrap().is_none());
            assert_eq!(
                store.load(&moved, now).await.unwrap().unwrap().data,
                b"{\"a\":1}"
            );
            flush().await;
            assert_eq!(store.sessions_of("ada", now).await.unwrap().len(), 12);
            flush().await;
            assert_eq!(
                store
                    .delete_sessions_of("ada", None, now)
                    .await
                    .unwrap()
                    .len(),
                12
            );
            for key in keys.iter().skip(1).chain([&moved]) {
                assert!(store.load(key, now).await.unwrap().is_none());
            }
            Ok::<(), String>(())
        })
        .unwrap();
    }

    /// A prefix with a hash tag keeps every key (records, the user index, renamed records)
    /// in the tag's slot.
    #[test]
    fn a_tagged_prefix_keeps_every_key_in_one_slot() {
        services::with_redis_cluster(async {
            let store = services::redis_cluster_store_in_one_slot().await;
            let now = OffsetDateTime::now_utc();
            let (a, b) = (StoreKey::from_bytes([1; 32]), StoreKey::from_bytes([2; 32]));
            store.create(&a, b"{}", later(now), now).await.unwrap();
            store.set_user(&a, "ada", now).await.unwrap();
            store.rename(&a, &b, now).await.unwrap();
            assert_eq!(store.sessions_of("ada", now).await.unwrap(), vec![b]);
            let (keys, slots) = keys_and_slots().await;
            assert_eq!(keys.len(), 2, "the record and the user's set: {keys:?}");
            assert_eq!(slots.len(), 1, "{keys:?} in {slots:?}");
            Ok::<(), String>(())
        })
        .unwrap();
    }

    /// The index entry of a record with a user always outlives the record (its score is at
    /// least the record's native expiry), whichever way saves, touches and renames move
    /// the expiry: pruning the index never drops a live session.
    #[test]
    fn the_user_index_outlives_every_record() {
        services::with_redis_cluster(async {
            let store = services::redis_cluster_store().await;
            let mut conn = cluster().await;
            let name = services::current_name();
            let now = OffsetDateTime::now_utc();
            let (a, b) = (StoreKey::from_bytes([3; 32]), StoreKey::from_bytes([4; 32]));
            let mut e = now + Duration::minutes(20);
            store.create(&a, b"{}", e, now).await.unwrap();
            store.set_user(&a, "ada", now).await.unwrap();
            let mut version = Version::FIRST;
            let mut key = a;
            let steps = [
                ("save", 60),
                ("touch", 3000),
                ("rename", 0),
                ("save", 90_000),
            ];
            for (step, extend) in steps.into_iter().chain([("touch", 30), ("save", -7200)]) {
                e += Duration::seconds(extend);
                match step {
                    "save" => version = store.save(&key, version, b"{}", e, now).await.unwrap(),
                    "touch" => store.touch(&key, e, now).await.unwrap(),
                    _ => {
                        store.rename(&key, &b, now).await.unwrap();
                        key = b;
                    }
                }
                let record = format!("{name}{{{key}}}");
                let native: i64 = redis::cmd("EXPIRETIME")
                    .arg(&record)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let score: Option<f64> = redis::cmd("ZSCORE")
                    .arg(format!("{name}user:{{ada}}"))
                    .arg(&record)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let score = score.ok_or(format!("step {step}: {record} is not indexed"))?;
                assert!(native >= e.unix_timestamp(), "step {step}");
                #[allow(clippy::cast_precision_loss)]
                let native = native as f64;
                assert!(
                    score >= native,
                    "step {step}: index {score} < record {native}"
                );
            }
            assert_eq!(store.sessions_of("ada", now).await.unwrap(), vec![key]);
            Ok::<(), String>(())
        })
        .unwrap();
    }

    /// Parks a rename before one of its steps until the test releases it.
    struct Gate {
        step: ClusterStep,
        armed: AtomicBool,
        parked: Notify,
        release: Notify,
    }

    impl Gate {
        async fn wait_parked(&self) {
            self.parked.notified().await;
        }
        fn release(&self) {
            self.release.notify_one();
        }
    }

    /// A store whose next rename parks before `step`.
    async fn gated(step: ClusterStep) -> (RedisStore, Arc<Gate>) {
        let gate = Arc::new(Gate {
            step,
            armed: AtomicBool::new(true),
            parked: Notify::new(),
            release: Notify::new(),
        });
        let hook = Arc::clone(&gate);
        let store = services::redis_cluster_store()
            .await
            .with_step_pause(move |at| {
                let gate = Arc::clone(&hook);
                async move {
                    if at == gate.step && gate.armed.swap(false, Ordering::SeqCst) {
                        gate.parked.notify_one();
                        gate.release.notified().await;
                    }
                }
            });
        (store, gate)
    }

    /// An outcome that compares: `Err("gone")`, `Err("duplicate")` or the error's text.
    fn outcome<T>(result: Result<T, StoreError>) -> Result<T, String> {
        result.map_err(|e| match e {
            StoreError::Gone => "gone".to_owned(),
            StoreError::Duplicate => "duplicate".to_owned(),
            e => e.to_string(),
        })
    }

    const FROM: StoreKey = StoreKey::from_bytes([10; 32]);
    const TO: StoreKey = StoreKey::from_bytes([11; 32]);
    const ELSEWHERE: StoreKey = StoreKey::from_bytes([12; 32]);

    /// `FROM` live with `a` and user `ada`; the rename `FROM -> TO` parked before `step`;
    /// `interleave` run on another store meanwhile; then the rename's outcome.
    async fn race<F, Fut>(step: ClusterStep, interleave: F) -> Result<(), String>
    where
        F: FnOnce(RedisStore, OffsetDateTime) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (store, gate) = gated(step).await;
        let now = OffsetDateTime::now_utc();
        store.create(&FROM, b"a", later(now), now).await.unwrap();
        store.set_user(&FROM, "ada", now).await.unwrap();
        let rename = tokio::spawn({
            let store = store.clone();
            async move { outcome(store.rename(&FROM, &TO, now).await) }
        });
        gate.wait_parked().await;
        interleave(services::redis_cluster_store().await, now).await;
        gate.release();
        rename.await.unwrap()
    }

    /// What a later request finds: the data at each key (`None`: no session there), and
    /// the user's sessions.
    async fn state() -> (Option<Vec<u8>>, Option<Vec<u8>>, Vec<StoreKey>) {
        let store = services::redis_cluster_store().await;
        let now = OffsetDateTime::now_utc();
        let data = |r: Option<cookie_session::store::Record>| r.map(|r| r.data);
        (
            data(store.load(&FROM, now).await.unwrap()),
            data(store.load(&TO, now).await.unwrap()),
            store.sessions_of("ada", now).await.unwrap(),
        )
    }

    const BEFORE_RETIRING: [ClusterStep; 4] = [
        ClusterStep::Snapshot,
        ClusterStep::Index,
        ClusterStep::Stage,
        ClusterStep::Retire,
    ];

    /// A save to the old key while the rename is before its retirement is never lost: the
    /// rename starts over and moves the saved data. After the retirement, the save finds
    /// the old key gone.
    #[test]
    fn a_save_during_a_rename_is_moved_or_refused_never_lost() {
        for step in BEFORE_RETIRING.into_iter().chain([ClusterStep::Activate]) {
            services::with_redis_cluster(async {
                let saved = Arc::new(std::sync::Mutex::new(None));
                let result = race(step, |other, now| {
                    let saved = Arc::clone(&saved);
                    async move {
                        let outcome = other
                            .save(&FROM, Version::FIRST, b"b", later(now), now)
                            .await;
                        *saved.lock().unwrap() = Some(outcome);
                    }
                })
                .await;
                assert_eq!(result, Ok(()), "{step:?}");
                let saved = saved.lock().unwrap().take().unwrap();
                let (from, to, listed) = state().await;
                assert_eq!(from, None, "{step:?}");
                match saved {
                    Ok(_) => assert_eq!(to.as_deref(), Some(&b"b"[..]), "{step:?}"),
                    Err(StoreError::Gone) => {
                        assert_eq!(step, ClusterStep::Activate);
                        assert_eq!(to.as_deref(), Some(&b"a"[..]), "{step:?}");
                    }
                    Err(e) => panic!("{step:?}: {e}"),
                }
                assert_eq!(listed, vec![TO], "{step:?}");
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// A delete (log out) of the old key during a rename: before the retirement the rename
    /// finds it gone and leaves no copy; after, the delete finds nothing and the renamed
    /// session lives on (the rename came first).
    #[test]
    fn a_delete_during_a_rename_leaves_no_copy_behind() {
        for step in BEFORE_RETIRING.into_iter().chain([ClusterStep::Activate]) {
            services::with_redis_cluster(async {
                let deleted = Arc::new(AtomicBool::new(false));
                let result = race(step, |other, now| {
                    let deleted = Arc::clone(&deleted);
                    async move {
                        deleted.store(other.delete(&FROM, now).await.unwrap(), Ordering::SeqCst);
                    }
                })
                .await;
                let (from, to, listed) = state().await;
                assert_eq!(from, None, "{step:?}");
                if deleted.load(Ordering::SeqCst) {
                    assert_eq!(result, Err("gone".to_owned()), "{step:?}");
                    assert_eq!((to, listed), (None, vec![]), "{step:?}");
                } else {
                    assert_eq!(step, ClusterStep::Activate);
                    assert_eq!(result, Ok(()));
                    assert_eq!((to.as_deref(), listed), (Some(&b"a"[..]), vec![TO]));
                }
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// "Log out everywhere" at any point of a rename ends the session under both keys: the
    /// renamed copy is never resurrected.
    #[test]
    fn log_out_everywhere_during_a_rename_ends_both_keys() {
        for step in BEFORE_RETIRING.into_iter().chain([ClusterStep::Activate]) {
            services::with_redis_cluster(async {
                let result = race(step, |other, now| async move {
                    let ended = other.delete_sessions_of("ada", None, now).await.unwrap();
                    assert!(ended.len() <= 1, "{ended:?}");
                })
                .await;
                assert_eq!(result, Err("gone".to_owned()), "{step:?}");
                assert_eq!(state().await, (None, None, vec![]), "{step:?}");
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// A rename that runs whole while "log out everywhere" is between reading the user's
    /// index and deleting what it read (the index named only the old key): the log out
    /// finds the old key gone, reads again, and ends the renamed session too.
    #[test]
    fn a_rename_inside_a_log_out_round_is_caught_by_the_next_round() {
        services::with_redis_cluster(async {
            let (parking, gate) = gated(ClusterStep::LogOutRound).await;
            let store = services::redis_cluster_store().await;
            let now = OffsetDateTime::now_utc();
            store.create(&FROM, b"a", later(now), now).await.unwrap();
            store.set_user(&FROM, "ada", now).await.unwrap();
            let log_out =
                tokio::spawn(async move { parking.delete_sessions_of("ada", None, now).await });
            gate.wait_parked().await;
            store.rename(&FROM, &TO, now).await.unwrap();
            gate.release();
            let ended = outcome(log_out.await.unwrap());
            assert_eq!(ended, Ok(vec![TO]));
            assert_eq!(state().await, (None, None, vec![]));
            Ok::<(), String>(())
        })
        .unwrap();
    }

    /// Two renames of one session (two requests with the same cookie): one wins, the other
    /// is told the session is gone, and exactly one key holds it.
    #[test]
    fn two_renames_of_one_session_leave_one_copy() {
        for step in BEFORE_RETIRING.into_iter().chain([ClusterStep::Activate]) {
            services::with_redis_cluster(async {
                let other_result = Arc::new(std::sync::Mutex::new(None));
                let result = race(step, |other, now| {
                    let other_result = Arc::clone(&other_result);
                    async move {
                        *other_result.lock().unwrap() =
                            Some(outcome(other.rename(&FROM, &ELSEWHERE, now).await));
                    }
                })
                .await;
                let other_result = other_result.lock().unwrap().take().unwrap();
                let now = OffsetDateTime::now_utc();
                let store = services::redis_cluster_store().await;
                let elsewhere = store.load(&ELSEWHERE, now).await.unwrap();
                let (from, to, listed) = state().await;
                assert_eq!(from, None, "{step:?}");
                if step == ClusterStep::Activate {
                    // Already retired: the second rename finds the session gone.
                    assert_eq!((result, other_result), (Ok(()), Err("gone".to_owned())));
                    assert!(to.is_some() && elsewhere.is_none(), "{step:?}");
                    assert_eq!(listed, vec![TO]);
                } else {
                    assert_eq!((result, other_result), (Err("gone".to_owned()), Ok(())));
                    assert!(to.is_none() && elsewhere.is_some(), "{step:?}");
                    assert_eq!(listed, vec![ELSEWHERE]);
                }
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// Linking the session to another user before the retirement: the rename starts over
    /// and the renamed session belongs to the new user.
    #[test]
    fn a_new_user_during_a_rename_is_kept() {
        for step in BEFORE_RETIRING {
            services::with_redis_cluster(async {
                let result = race(step, |other, now| async move {
                    other.set_user(&FROM, "bob", now).await.unwrap();
                })
                .await;
                assert_eq!(result, Ok(()), "{step:?}");
                let (from, to, ada) = state().await;
                assert_eq!((from, to.is_some(), ada), (None, true, vec![]), "{step:?}");
                let store = services::redis_cluster_store().await;
                let now = OffsetDateTime::now_utc();
                assert_eq!(store.sessions_of("bob", now).await.unwrap(), vec![TO]);
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// A rename stopped between two steps (the process died): never two live copies; the
    /// copy it left pending is never loaded, listed or written, and expires by itself.
    #[test]
    fn a_rename_stopped_between_steps_leaves_at_most_an_expiring_orphan() {
        for step in [ClusterStep::Retire, ClusterStep::Activate] {
            services::with_redis_cluster(async {
                let (store, gate) = gated(step).await;
                let now = OffsetDateTime::now_utc();
                store.create(&FROM, b"a", later(now), now).await.unwrap();
                store.set_user(&FROM, "ada", now).await.unwrap();
                let rename = tokio::spawn({
                    let store = store.clone();
                    async move { outcome(store.rename(&FROM, &TO, now).await) }
                });
                gate.wait_parked().await;
                rename.abort();
                assert!(rename.await.unwrap_err().is_cancelled());
                let (from, to, listed) = state().await;
                assert_eq!(to, None, "{step:?}: the pending copy is not a session");
                assert_eq!(
                    outcome(store.save(&TO, Version::FIRST, b"x", later(now), now).await),
                    Err("gone".to_owned())
                );
                assert_eq!(
                    outcome(store.touch(&TO, later(now), now).await),
                    Err("gone".to_owned())
                );
                assert_eq!(
                    outcome(store.set_user(&TO, "eve", now).await),
                    Err("gone".to_owned())
                );
                let mut conn = cluster().await;
                let orphan = format!("{}{{{TO}}}", services::current_name());
                let expiry: i64 = redis::cmd("EXPIRETIME")
                    .arg(&orphan)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert!(expiry > 0, "{step:?}: the orphan expires (at {expiry})");
                if step == ClusterStep::Retire {
                    // Stopped before the retirement: the old key is the session still.
                    assert_eq!((from.as_deref(), listed), (Some(&b"a"[..]), vec![FROM]));
                    store
                        .save(&FROM, Version::FIRST, b"b", later(now), now)
                        .await
                        .unwrap();
                    store.rename(&FROM, &ELSEWHERE, now).await.unwrap();
                } else {
                    // Stopped after it: the session has ended (a log out, not a copy).
                    assert_eq!((from, listed), (None, vec![]));
                }
                Ok::<(), String>(())
            })
            .unwrap();
        }
    }

    /// A rename to a key that is live, or pending for another rename, is refused and
    /// changes neither record.
    #[test]
    fn an_occupied_target_is_refused() {
        services::with_redis_cluster(async {
            let store = services::redis_cluster_store().await;
            let now = OffsetDateTime::now_utc();
            store.create(&FROM, b"a", later(now), now).await.unwrap();
            store.create(&TO, b"t", later(now), now).await.unwrap();
            assert_eq!(
                outcome(store.rename(&FROM, &TO, now).await),
                Err("duplicate".to_owned())
            );
            let (from, to, _) = state().await;
            assert_eq!(
                (from.as_deref(), to.as_deref()),
                (Some(&b"a"[..]), Some(&b"t"[..]))
            );
            // Pending for a parked rename: refused too, and the parked one completes.
            store.delete(&TO, now).await.unwrap();
            let (parking, gate) = gated(ClusterStep::Activate).await;
            store
                .create(&ELSEWHERE, b"e", later(now), now)
                .await
                .unwrap();
            let parked = tokio::spawn(async move { parking.rename(&ELSEWHERE, &TO, now).await });
            gate.wait_parked().await;
            assert_eq!(
                outcome(store.rename(&FROM, &TO, now).await),
                Err("duplicate".to_owned())
            );
            gate.release();
            assert_eq!(outcome(parked.await.unwrap()), Ok(()));
            let (from, to, _) = state().await;
            assert_eq!(
                (from.as_deref(), to.as_deref()),
                (Some(&b"a"[..]), Some(&b"e"[..]))
            );
            Ok::<(), String>(())
        })
        .unwrap();
    }
}
