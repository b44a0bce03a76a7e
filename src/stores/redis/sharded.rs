//! The sharded layout of a cluster store: each record under its own hash tag, so that one
//! application's sessions spread over every master.
//!
//! A script may touch one slot only, so nothing here spans two keys in one step:
//!
//! - **The user index** is a sorted set per user in the user's own slot. A record with a
//!   user keeps in `i` the score its index entry is known to have; the index must outlive
//!   the record (`i >= x`, its native expiry) so that pruning the set by score never drops a
//!   live record. A write that would move `x` past `i` is refused with "index first": the
//!   client raises the entry (`ZADD GT`), then writes again with the new coverage. Covering
//!   an hour past `x` makes that one extra round trip an hour for a sliding session.
//! - **A rename** is five steps over the two slots: snapshot `from`, index `to`, stage `to`
//!   (a full copy marked pending with a token: never loaded, saved or touched), retire
//!   `from` only if it is still exactly the snapshot, activate `to` only if it is still
//!   staged with the token. Retiring is the moment the session moves: before it `from` is
//!   the session and a write to it makes the rename start over; after it only `to` is, and
//!   whoever deletes `to` (a log out everywhere) ends the session. A crash between steps
//!   leaves `from` live and `to` a pending orphan, or `from` gone and `to` pending (the
//!   visitor's session ends): never two records a request could write to. A pending
//!   record expires natively like any other.
//! - **Log out everywhere** deletes the index's members round by round until two rounds in
//!   a row find nothing but records that are already gone: a rename whose `from` was found
//!   gone indexed its `to` before retiring, so the round after sees `to` staged and
//!   deletes it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::LazyLock;

use time::OffsetDateTime;

use super::{Call, Lua, RedisStore};
use crate::stores::{StoreError, StoreKey, Version};

/// How far past a record's native expiry its index entry reaches (seconds).
const COVER: i64 = 3600;

/// How many times an operation starts over when concurrent writes keep changing what it
/// read, before it gives up with [`StoreError::Unavailable`].
const ATTEMPTS: usize = 16;

/// The step of an operation across slots about to run (see
/// `RedisStore::with_step_pause`, feature `store-testing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(not(feature = "store-testing"), allow(unreachable_pub))]
pub enum ClusterStep {
    /// Reading `from` (data, expiry, version, user).
    Snapshot,
    /// Adding `to` to the user's index.
    Index,
    /// Writing `to` as a pending copy.
    Stage,
    /// Deleting `from` if it is unchanged since the snapshot.
    Retire,
    /// Making `to` live.
    Activate,
    /// Log out everywhere: deleting the records one round read from the user's index.
    LogOutRound,
}

/// Lua in front of every script: the native expiry and the index's coverage.
const PRELUDE: &str = r"
local SLACK = 60
local function native(e, x)
    e = tonumber(e)
    x = tonumber(x)
    if x and x >= e and x <= e + SLACK then return x, false end
    return e + SLACK, true
end
local function covered(key, u, i, x, cu, ci)
    if not u then return true end
    if i and tonumber(i) >= x then return true end
    if cu == u and tonumber(ci) >= x then
        redis.call('HSET', key, 'i', ci)
        return true
    end
    return false
end
";

fn script(body: &str) -> Lua {
    Lua::new(format!("{PRELUDE}{body}"))
}

/// `KEYS[1]`; `ARGV`: data, expires, now. 1 created, 0 occupied (live or pending).
static CREATE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local e = redis.call('HGET', KEYS[1], 'e')
        if e and tonumber(e) > tonumber(ARGV[3]) then return 0 end
        redis.call('DEL', KEYS[1])
        local x = tonumber(ARGV[2]) + SLACK
        redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2], 'v', '1', 'x', x)
        redis.call('EXPIREAT', KEYS[1], x)
        return 1",
    )
});

/// `KEYS[1]`; `ARGV`: expected version, data, expires, now, covering user, coverage, the
/// next version (the client counts). `{1, ''}` saved, `{-1, ''}` gone, `{-2, ''}` another
/// version, `{-3, user}` index first.
static SAVE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'v', 'u', 'x', 'i', 'p')
        if not r[1] or r[6] or tonumber(r[1]) <= tonumber(ARGV[4]) then return {-1, ''} end
        if r[2] ~= ARGV[1] then return {-2, ''} end
        local x, moved = native(ARGV[3], r[4])
        if not covered(KEYS[1], r[3], r[5], x, ARGV[5], ARGV[6]) then return {-3, r[3]} end
        redis.call('HSET', KEYS[1], 'd', ARGV[2], 'e', ARGV[3], 'v', ARGV[7], 'x', x)
        if moved then redis.call('EXPIREAT', KEYS[1], x) end
        return {1, ''}",
    )
});

/// `KEYS[1]`; `ARGV`: expires, now, covering user, coverage. `{1, ''}` live (extended if
/// later), `{0, ''}` gone, `{-3, user}` index first.
static TOUCH: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'u', 'x', 'i', 'p')
        if not r[1] or r[5] or tonumber(r[1]) <= tonumber(ARGV[2]) then return {0, ''} end
        if tonumber(ARGV[1]) > tonumber(r[1]) then
            local x, moved = native(ARGV[1], r[3])
            if not covered(KEYS[1], r[2], r[4], x, ARGV[3], ARGV[4]) then return {-3, r[2]} end
            redis.call('HSET', KEYS[1], 'e', ARGV[1], 'x', x)
            if moved then redis.call('EXPIREAT', KEYS[1], x) end
        end
        return {1, ''}",
    )
});

/// `KEYS[1]`; `ARGV`: now. 1 a live record was deleted, 0 not.
static DELETE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'p')
        redis.call('DEL', KEYS[1])
        if r[1] and not r[2] and tonumber(r[1]) > tonumber(ARGV[1]) then return 1 end
        return 0",
    )
});

/// `KEYS[1]`; `ARGV`: user, now, coverage. `{1, ''}` linked, `{0, ''}` gone, `{-3, x}` index
/// first, up to the native expiry `x`.
static SET_USER: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'x', 'p')
        if not r[1] or r[3] or tonumber(r[1]) <= tonumber(ARGV[2]) then return {0, ''} end
        local x = tonumber(r[2]) or (tonumber(r[1]) + SLACK)
        if tonumber(ARGV[3]) < x then return {-3, string.format('%d', x)} end
        redis.call('HSET', KEYS[1], 'u', ARGV[1], 'i', ARGV[3])
        return {1, ''}",
    )
});

/// `KEYS[1]`: a user's set; `ARGV`: member, score, now. Raises (never lowers) the member's
/// score, prunes members past their score, and lets the set expire with its last member.
static INDEX: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if last[2] then redis.call('EXPIREAT', KEYS[1], last[2]) end
        return 1",
    )
});

/// `KEYS[1]`: the target; `ARGV`: data, expires, version, user ('' none), native expiry,
/// coverage, token, now. 1 staged, 0 occupied (live or pending).
static STAGE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"local t = redis.call('HGET', KEYS[1], 'e')
        if t and tonumber(t) > tonumber(ARGV[8]) then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2], 'v', ARGV[3], 'x', ARGV[5], 'p', ARGV[7])
        if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[4], 'i', ARGV[6]) end
        redis.call('EXPIREAT', KEYS[1], ARGV[5])
        return 1",
    )
});

/// `KEYS[1]`: the source; `ARGV`: version, expires, user ('' none), now. 1 retired, -1 gone,
/// -2 changed since the snapshot.
static RETIRE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'v', 'u', 'p')
        if not r[1] or r[4] or tonumber(r[1]) <= tonumber(ARGV[4]) then return -1 end
        if r[2] ~= ARGV[1] or r[1] ~= ARGV[2] or (r[3] or '') ~= ARGV[3] then return -2 end
        redis.call('DEL', KEYS[1])
        return 1",
    )
});

/// `KEYS[1]`: the target; `ARGV`: token. 1 made live, 0 no longer staged with the token.
static ACTIVATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
        redis.call('HDEL', KEYS[1], 'p')
        return 1",
    )
});

/// `KEYS[1]`: the target; `ARGV`: token. Deletes it if still staged with the token.
static UNSTAGE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        return 1",
    )
});

/// `KEYS[1]`; `ARGV`: user, now. Deletes the record if it is the user's (live, pending or
/// expired): 1 it was live, 2 it was not, -1 someone else's, 0 there is none.
static DELETE_IF_USER: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'u', 'p')
        if not r[1] then return 0 end
        if r[2] ~= ARGV[1] then return -1 end
        redis.call('DEL', KEYS[1])
        if not r[3] and tonumber(r[1]) > tonumber(ARGV[2]) then return 1 end
        return 2",
    )
});

/// What a rename read from its source.
struct Snapshot {
    data: Vec<u8>,
    expires: String,
    version: String,
    user: Option<String>,
    native: i64,
}

impl RedisStore {
    /// Runs a script that may answer "index first" (`-3` with the user) until the user's
    /// index covers `native`: `attempt(user, coverage)` is the script's call.
    async fn covering<F, Fut>(
        &self,
        key: &str,
        native: i64,
        mut attempt: F,
    ) -> Result<i64, StoreError>
    where
        F: FnMut(String, i64) -> Fut,
        Fut: Future<Output = Result<(i64, String), StoreError>>,
    {
        let (mut user, mut coverage) = (String::new(), 0);
        for _ in 0..ATTEMPTS {
            let (code, needs) = attempt(user, coverage).await?;
            if code != -3 {
                return Ok(code);
            }
            coverage = native + COVER;
            self.index(&needs, key, coverage).await?;
            user = needs;
        }
        Err(changing("the record's user"))
    }

    /// Raises `member`'s entry in `user`'s index to `score`, and prunes entries past their
    /// score by the clock Redis expires records by (the machine's, kept in sync with it):
    /// such an entry's record has expired natively.
    async fn index(&self, user: &str, member: &str, score: i64) -> Result<(), StoreError> {
        let set = self.user_set(user);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let _: i64 = self
            .invoke(&set, || {
                let mut call = Call::new(&INDEX, &[&set]);
                call.arg(member).arg(score).arg(now);
                call
            })
            .await?;
        Ok(())
    }

    pub(super) async fn sharded_create(
        &self,
        key: &str,
        data: &[u8],
        expires: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.invoke(key, || {
            let mut call = Call::new(&CREATE, &[key]);
            call.arg(data).arg(expires).arg(now);
            call
        })
        .await
    }

    pub(super) async fn sharded_save(
        &self,
        key: &str,
        expected: Version,
        data: &[u8],
        expires: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.covering(key, expires + 60, |user, coverage| async move {
            self.invoke(key, || {
                let mut call = Call::new(&SAVE, &[key]);
                call.arg(expected.0)
                    .arg(data)
                    .arg(expires)
                    .arg(now)
                    .arg(&user)
                    .arg(coverage)
                    .arg(expected.0.saturating_add(1));
                call
            })
            .await
        })
        .await
    }

    pub(super) async fn sharded_touch(
        &self,
        key: &str,
        expires: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.covering(key, expires + 60, |user, coverage| async move {
            self.invoke(key, || {
                let mut call = Call::new(&TOUCH, &[key]);
                call.arg(expires).arg(now).arg(&user).arg(coverage);
                call
            })
            .await
        })
        .await
    }

    pub(super) async fn sharded_delete(&self, key: &str, now: i64) -> Result<i64, StoreError> {
        self.invoke(key, || {
            let mut call = Call::new(&DELETE, &[key]);
            call.arg(now);
            call
        })
        .await
    }

    pub(super) async fn sharded_set_user(
        &self,
        key: &str,
        user: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut coverage = 0;
        for _ in 0..ATTEMPTS {
            let (code, native): (i64, String) = self
                .invoke(key, || {
                    let mut call = Call::new(&SET_USER, &[key]);
                    call.arg(user).arg(now).arg(coverage);
                    call
                })
                .await?;
            if code != -3 {
                return Ok(code);
            }
            let native: i64 = native.parse().map_err(|_| corrupt("native expiry"))?;
            coverage = native + COVER;
            self.index(user, key, coverage).await?;
        }
        Err(changing("the record's expiry"))
    }

    /// The five steps (see the module's documentation); starts over when `from` changes
    /// between the snapshot and the retirement.
    pub(super) async fn sharded_rename(
        &self,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        for _ in 0..ATTEMPTS {
            self.pause(ClusterStep::Snapshot).await;
            let Some(snapshot) = self.snapshot(from, now).await? else {
                return Err(StoreError::Gone);
            };
            if from == to {
                return Ok(());
            }
            let coverage = snapshot.native + COVER;
            if let Some(user) = &snapshot.user {
                self.pause(ClusterStep::Index).await;
                self.index(user, to, coverage).await?;
            }
            let token = base16ct::lower::encode_string(&rand::random::<[u8; 16]>());
            self.pause(ClusterStep::Stage).await;
            let staged: i64 = self
                .invoke(to, || {
                    let mut call = Call::new(&STAGE, &[to]);
                    call.arg(&snapshot.data)
                        .arg(&snapshot.expires)
                        .arg(&snapshot.version)
                        .arg(snapshot.user.as_deref().unwrap_or(""))
                        .arg(snapshot.native)
                        .arg(coverage)
                        .arg(&token)
                        .arg(now);
                    call
                })
                .await?;
            if staged != 1 {
                return Err(StoreError::Duplicate);
            }
            self.pause(ClusterStep::Retire).await;
            // An error here leaves it unknown whether `from` was retired: `to` stays
            // pending (never two live copies) and expires by itself.
            let retired: i64 = self
                .invoke(from, || {
                    let mut call = Call::new(&RETIRE, &[from]);
                    call.arg(&snapshot.version)
                        .arg(&snapshot.expires)
                        .arg(snapshot.user.as_deref().unwrap_or(""))
                        .arg(now);
                    call
                })
                .await?;
            if retired != 1 {
                self.unstage(to, &token).await?;
                if retired == -1 {
                    return Err(StoreError::Gone);
                }
                continue;
            }
            self.pause(ClusterStep::Activate).await;
            let active: i64 = self
                .invoke(to, || {
                    let mut call = Call::new(&ACTIVATE, &[to]);
                    call.arg(&token);
                    call
                })
                .await?;
            // Not active: deleted while pending (a log out everywhere) after `from` was
            // retired, so the session has ended.
            return if active == 1 {
                Ok(())
            } else {
                Err(StoreError::Gone)
            };
        }
        Err(changing("the session"))
    }

    async fn snapshot(&self, key: &str, now: i64) -> Result<Option<Snapshot>, StoreError> {
        type Fields = (
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
        );
        let key = key.to_owned();
        let (data, expires, version, user, native, pending): Fields = self
            .bounded(|mut c| async move {
                let mut command = redis::cmd("HMGET");
                command.arg(&key).arg(&["d", "e", "v", "u", "x", "p"]);
                c.send(&key, command).await
            })
            .await?;
        let (Some(data), Some(expires), Some(version), None) = (data, expires, version, pending)
        else {
            return Ok(None);
        };
        let e: i64 = expires.parse().map_err(|_| corrupt("expiry"))?;
        if e <= now {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            data,
            expires,
            version,
            user,
            native: native.unwrap_or(e + 60),
        }))
    }

    async fn unstage(&self, to: &str, token: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .invoke(to, || {
                let mut call = Call::new(&UNSTAGE, &[to]);
                call.arg(token);
                call
            })
            .await?;
        Ok(())
    }

    pub(super) async fn sharded_sessions_of(
        &self,
        user: &str,
        now: i64,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let members = self.members(user, now).await?;
        let checks = members.iter().map(|member| async move {
            let key = member.clone();
            let fields: (Option<i64>, Option<String>, Option<String>) = self
                .bounded(|mut c| async move {
                    let mut command = redis::cmd("HMGET");
                    command.arg(&key).arg(&["e", "u", "p"]);
                    c.send(&key, command).await
                })
                .await?;
            Ok::<_, StoreError>(match fields {
                (Some(e), Some(u), None) if e > now && u == user => self.parse(member),
                _ => None,
            })
        });
        let found = futures_util::future::try_join_all(checks).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The members of `user`'s index (live or not) whose score has not passed.
    async fn members(&self, user: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let set = self.user_set(user);
        self.bounded(|mut c| async move {
            let mut command = redis::cmd("ZRANGE");
            command.arg(&set).arg(now).arg("+inf").arg("BYSCORE");
            c.send(&set, command).await
        })
        .await
    }

    pub(super) async fn sharded_delete_sessions_of(
        &self,
        user: &str,
        except: &str,
        now: i64,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let mut deleted = Vec::new();
        let mut gone_before: Option<BTreeSet<String>> = None;
        for _ in 0..ATTEMPTS {
            let members: BTreeSet<String> = self
                .members(user, now)
                .await?
                .into_iter()
                .filter(|m| m != except)
                .collect();
            self.pause(ClusterStep::LogOutRound).await;
            let outcomes = futures_util::future::try_join_all(members.iter().map(|member| {
                let member = member.clone();
                async move {
                    let outcome: i64 = self
                        .invoke(&member, || {
                            let mut call = Call::new(&DELETE_IF_USER, &[&member]);
                            call.arg(user).arg(now);
                            call
                        })
                        .await?;
                    Ok::<_, StoreError>((member, outcome))
                }
            }))
            .await?;
            let mut gone = BTreeSet::new();
            let mut done = Vec::new();
            for (member, outcome) in outcomes {
                match outcome {
                    0 => {
                        gone.insert(member);
                    }
                    1 => {
                        deleted.extend(self.parse(&member));
                        done.push(member);
                    }
                    _ => done.push(member),
                }
            }
            // Two rounds in a row that found only records already gone: no rename was
            // between its retirement and the next round (see the module's documentation).
            let settled = done.is_empty() && gone_before.as_ref() == Some(&gone);
            if settled {
                done.extend(gone.iter().cloned());
            }
            self.unindex(user, &done).await?;
            if settled {
                return Ok(deleted);
            }
            gone_before = Some(gone);
        }
        Err(changing("the user's sessions"))
    }

    async fn unindex(&self, user: &str, members: &[String]) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let set = self.user_set(user);
        let members = members.to_vec();
        self.bounded(|mut c| async move {
            let mut command = redis::cmd("ZREM");
            command.arg(&set).arg(members);
            c.send::<i64>(&set, command).await
        })
        .await?;
        Ok(())
    }

    #[cfg(not(feature = "store-testing"))]
    #[allow(clippy::unused_async)]
    async fn pause(&self, _step: ClusterStep) {}
}

fn changing(what: &str) -> StoreError {
    StoreError::Unavailable(
        format!("{what} kept changing under concurrent writes; try again").into(),
    )
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("a stored record's {what} is not a number").into())
}
