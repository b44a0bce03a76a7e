//! `RedisStore` against a real Redis or Valkey (`REDIS_URL`): the conformance suite and
//! native expiry.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

cookie_session::store_conformance!(async services::redis_store(), services::with_redis);
