//! `MemcachedStore` against a real memcached (`MEMCACHED_URL`): the conformance suite,
//! rename's restore of an occupied target, and an unreachable server.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

use cookie_session::store::{MemcachedStore, SessionStore, StoreError, StoreKey};
use cookie_session::time::{Duration, OffsetDateTime};

cookie_session::store_conformance!(async services::memcached_store(), services::with_memcached);

#[test]
fn an_unreachable_server_is_unavailable() {
    services::runtime().block_on(async {
        let store = MemcachedStore::new("127.0.0.1:9");
        let result = store
            .load(&StoreKey::from_bytes([3; 32]), OffsetDateTime::now_utc())
            .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    });
}

#[test]
fn a_refused_rename_leaves_both_sessions_as_they_were() {
    services::with_memcached(async {
        let store = services::memcached_store().await;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (a, b) = (
            StoreKey::from_bytes(rand::random()),
            StoreKey::from_bytes(rand::random()),
        );
        let va = store
            .create(&a, b"{\"a\":1}", now + Duration::minutes(20), now)
            .await
            .unwrap();
        store
            .create(&b, b"{\"b\":1}", now + Duration::minutes(30), now)
            .await
            .unwrap();
        assert!(matches!(
            store.rename(&a, &b, now).await,
            Err(StoreError::Duplicate)
        ));
        let ra = store.load(&a, now).await.unwrap().unwrap();
        assert_eq!((ra.data.as_slice(), ra.version), (&b"{\"a\":1}"[..], va));
        assert_eq!(ra.expires, now + Duration::minutes(20));
        assert_eq!(
            store.load(&b, now).await.unwrap().unwrap().data,
            b"{\"b\":1}"
        );
        // And a save on the old key still works after the refused move.
        store
            .save(&a, va, b"{\"a\":2}", now + Duration::minutes(20), now)
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}

/// A TCP proxy in front of memcached whose connections can all be cut at once, as a
/// memcached restart cuts them.
struct Proxy {
    address: String,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = links.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                accepted.lock().unwrap().push(link);
            }
        });
        Self { address, links }
    }

    /// Cuts every open connection (both ends are closed).
    fn cut(&self) -> usize {
        let links = std::mem::take(&mut *self.links.lock().unwrap());
        for link in &links {
            link.abort();
        }
        links.len()
    }
}

/// After memcached comes back, no request fails on a connection the outage broke: the
/// first broken one retires its idle siblings and the operation runs again on a fresh
/// connection (nothing of it had reached a server).
#[test]
fn after_a_restart_no_request_fails_on_a_broken_pooled_connection() {
    services::with_memcached(async {
        let proxy = Proxy::start(services::memcached_address()).await;
        let store = MemcachedStore::new(&proxy.address).with_prefix(&services::current_name());
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let later = now + Duration::minutes(20);
        let keys: Vec<StoreKey> = (0..12u8).map(|n| StoreKey::from_bytes([n; 32])).collect();
        for key in &keys {
            store.create(key, b"{\"n\":0}", later, now).await.unwrap();
        }
        for round in 0..3 {
            // Twelve requests at once: twelve connections in the pool.
            let loads = keys.iter().map(|key| store.load(key, now));
            for loaded in futures_join_all(loads).await {
                assert!(loaded.unwrap().is_some());
            }
            // Let the aborted tasks close their sockets.
            let cut = proxy.cut();
            assert!(cut >= 2, "round {round}: {cut} connections");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            // Every kind of operation, one at a time and then at once: none fails.
            for key in &keys {
                let record = store.load(key, now).await.unwrap().unwrap();
                store
                    .save(key, record.version, b"{\"n\":1}", later, now)
                    .await
                    .unwrap();
            }
            proxy.cut();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let touches = keys.iter().map(|key| store.touch(key, later, now));
            for touched in futures_join_all(touches).await {
                touched.unwrap();
            }
        }
        Ok::<(), String>(())
    })
    .unwrap();
}

/// Runs the futures concurrently on the test's runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future,
{
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}
