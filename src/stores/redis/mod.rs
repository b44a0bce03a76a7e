//! Sessions in Redis or Valkey (feature `redis`): see [`RedisStore`].

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;

use super::deadline::Deadlines;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size};

mod cluster;
mod sharded;
#[cfg(feature = "store-testing")]
pub use sharded::ClusterStep;

/// Sessions in Redis or Valkey (feature `redis`), shared by every instance of an
/// application.
///
/// Each record is a hash (`d` data, `e` expiry in UNIX seconds, `v` version, `x` the
/// native expiry) under `prefix` + the store key in hex. Every operation is one round
/// trip: a load is one `HMGET`; create, save, touch, rename and delete are Lua scripts
/// (sent by SHA, `EVALSHA`) that decide on the caller's `now` exactly as the other stores
/// do, so a record is never served past its expiry whatever the server's clock says.
///
/// - Expiry is also native: the server removes a record itself (`EXPIREAT`) at most a
///   minute after its expiry, so [`sweep`](SessionStore::sweep) has nothing to do (it
///   returns 0). A write moves the native expiry only when the record's expiry leaves that
///   minute: a sliding expiry costs one `EXPIREAT` a minute, not one per write (each
///   command a script issues costs Redis more than the same command sent directly). Keep
///   the application's and the server's clocks in sync (NTP).
/// - Create is set-if-absent (a live record is left alone); save is compare-and-set on the
///   version; touch never shortens; rename refuses an occupied target.
/// - The connection manager reconnects by itself after the server comes back; every
///   operation is bounded by a timeout (default 5 s), after which it is
///   [`StoreError::Unavailable`].
///
/// **Redis or Valkey Cluster** ([`connect_cluster`](Self::connect_cluster)): each record
/// is its own hash tag (`cookie-session:{hex}`), and each user's index another
/// (`cookie-session:user:{name}`), so one application's sessions spread over every master.
/// Every single-record operation is still one script in one slot and keeps every promise
/// above. A rename (a new session id) crosses slots: it copies the record to its new key
/// as pending, retires the old key only if nothing changed it meanwhile (else it starts
/// over), then makes the copy live: no lost update, no resurrection after a log out, an
/// occupied target refused, and a crash between the steps leaves at most a pending
/// orphan that expires by itself (the visitor's session may end), never two live
/// copies. A rename costs four or five round trips instead of one, and "log out
/// everywhere" at least two rounds over the user's sessions. A prefix that holds a hash
/// tag of its own ([`with_prefix`](Self::with_prefix)`("{app}:")`) keeps every key of the
/// store in that one slot instead: renames are then one script, and every session lives
/// on one master. Either way a master's replica takes over when it fails (requests in
/// the gap get [`StoreError::Unavailable`], a `503`); SECURITY.md says what a failover
/// can lose.
///
/// ```no_run
/// use cookie_session::store::RedisStore;
/// # async fn example() -> Result<(), cookie_session::store::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    /// The prefix of the user index's sets (the prefix + `user:`), made once.
    users: Arc<str>,
    max_record: usize,
    deadlines: Arc<Deadlines>,
    /// Wait for this many replicas to acknowledge each write, at most this long.
    acknowledgement: Option<(u32, Duration)>,
    /// Each record under its own hash tag (a cluster), rather than every key in one slot.
    sharded: bool,
    /// Awaited before each step of an operation across slots (tests script interleavings).
    #[cfg(feature = "store-testing")]
    pause: Option<PauseHook>,
}

/// See [`RedisStore::with_step_pause`].
#[cfg(feature = "store-testing")]
type PauseHook =
    Arc<dyn Fn(ClusterStep) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("max_record", &self.max_record)
            .field("timeout", &self.deadlines.timeout())
            .field("acknowledgement", &self.acknowledgement)
            .field("sharded", &self.sharded)
            .finish_non_exhaustive()
    }
}

/// One server through a reconnecting manager, or a cluster through the store's own
/// client (`cluster`), which follows slot moves and failovers.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(cluster::Cluster),
}

impl Connection {
    /// Sends `command`, which reads or writes `key`: on a cluster straight to the master of
    /// `key`'s slot.
    async fn send<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        command: redis::Cmd,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Single(c) => command.query_async(c).await,
            Self::Cluster(c) => c.send(key, command).await,
        }
    }
}

/// Redis's failure, as a store error.
fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// A Lua script: its SHA-1 (what a call sends) and its source (sent whole to a server that
/// does not know the script).
struct Lua {
    sha1: String,
    source: String,
}

impl Lua {
    fn new(source: impl Into<String>) -> Self {
        let source = source.into();
        Self {
            sha1: redis::Script::new(&source).get_hash().to_owned(),
            source,
        }
    }
}

/// One call of a Lua script: `EVALSHA` with its keys and arguments written straight into
/// one command's buffer. (redis-rs's `ScriptInvocation` keeps each argument in a vector of
/// its own and copies them all into a command again: about 3,000 instructions per write
/// under callgrind, of a request's 80,000.)
struct Call {
    lua: &'static Lua,
    command: redis::Cmd,
}

impl Call {
    fn new(lua: &'static Lua, keys: &[&str]) -> Self {
        // Room for a small session's arguments: the buffers grow at most once or twice.
        let mut command = redis::Cmd::with_capacity(8, 256);
        command.arg("EVALSHA").arg(&lua.sha1).arg(keys.len());
        for key in keys {
            command.arg(*key);
        }
        Self { lua, command }
    }

    /// Adds `ARGV[i]`.
    fn arg(&mut self, arg: impl redis::ToRedisArgs) -> &mut Self {
        self.command.arg(arg);
        self
    }

    /// The same call as `EVAL` with the whole source, which also caches the script: for a
    /// server that lost it (restarted, flushed, a new node). One command, so a flush
    /// between loading and calling cannot make it miss again.
    fn with_source(&self) -> redis::Cmd {
        let mut eval =
            redis::Cmd::with_capacity(self.command.args_iter().len(), self.lua.source.len() + 256);
        eval.arg("EVAL").arg(&self.lua.source);
        // Past `EVALSHA` and the SHA-1: the key count, the keys, the arguments.
        for arg in self.command.args_iter().skip(2) {
            if let redis::Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }
}

/// Lua every writing script starts with: the user index. A user's sessions are a sorted
/// set under `P .. user` (`P`, the last argument, is the store's prefix + `user:`), each
/// member a record's key scored by its expiry; the record's hash names its user in `u`.
/// Every write keeps the two in step, prunes members past their expiry, and lets the set
/// expire with its last member, so the index never outgrows the live sessions.
const INDEX: &str = r"
local P = ARGV[#ARGV]
local function index(user, member, e, now)
    local set = P .. user
    redis.call('ZADD', set, e, member)
    redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    local last = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
    if last[2] then redis.call('EXPIREAT', set, last[2]) end
end
local function unindex(member)
    local u = redis.call('HGET', member, 'u')
    if u then redis.call('ZREM', P .. u, member) end
    return u
end
";

/// How long past its expiry a record may stay until the server removes it: the native
/// expiry (`x`) is kept within `[e, e + SLACK]`, so writes that extend the expiry by less
/// leave it alone. Lua in front of every script, as `SLACK`.
const NATIVE: &str = r"
local SLACK = 60
local function native(key, e, x)
    e = tonumber(e)
    x = tonumber(x)
    if x and x >= e and x <= e + SLACK then return nil end
    redis.call('EXPIREAT', key, e + SLACK)
    return e + SLACK
end
";

/// A script with the index and expiry functions in front.
fn script(body: &str) -> Lua {
    Lua::new(format!("{INDEX}{NATIVE}{body}"))
}

/// `KEYS[1]`; `ARGV`: data, expires, now. 1 created, 0 a live record is there.
static CREATE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local e = redis.call('HGET', KEYS[1], 'e')
        if e and tonumber(e) > tonumber(ARGV[3]) then return 0 end
        unindex(KEYS[1])
        redis.call('DEL', KEYS[1])
        local x = tonumber(ARGV[2]) + SLACK
        redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2], 'v', '1', 'x', x)
        redis.call('EXPIREAT', KEYS[1], x)
        return 1",
    )
});

/// `KEYS[1]`; `ARGV`: expected version, data, expires, now, the next version (the client
/// counts: a script's `string.format` and `tonumber` cost Redis more than the write).
/// 1 saved, -1 gone, -2 another version.
static SAVE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'v', 'u', 'x')
        if not r[1] or tonumber(r[1]) <= tonumber(ARGV[4]) then return -1 end
        if r[2] ~= ARGV[1] then return -2 end
        local x = native(KEYS[1], ARGV[3], r[4])
        if x then
            redis.call('HSET', KEYS[1], 'd', ARGV[2], 'e', ARGV[3], 'v', ARGV[5], 'x', x)
        else
            redis.call('HSET', KEYS[1], 'd', ARGV[2], 'e', ARGV[3], 'v', ARGV[5])
        end
        if r[3] then index(r[3], KEYS[1], ARGV[3], ARGV[4]) end
        return 1",
    )
});

/// `KEYS[1]`; `ARGV`: expires, now. 1 live (extended if later), 0 gone.
static TOUCH: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local r = redis.call('HMGET', KEYS[1], 'e', 'u', 'x')
        if not r[1] or tonumber(r[1]) <= tonumber(ARGV[2]) then return 0 end
        if tonumber(ARGV[1]) > tonumber(r[1]) then
            local x = native(KEYS[1], ARGV[1], r[3])
            if x then
                redis.call('HSET', KEYS[1], 'e', ARGV[1], 'x', x)
            else
                redis.call('HSET', KEYS[1], 'e', ARGV[1])
            end
            if r[2] then index(r[2], KEYS[1], ARGV[1], ARGV[2]) end
        end
        return 1",
    )
});

/// `KEYS`: from, to; `ARGV`: now. 1 moved, -1 gone, -2 the target is live.
static RENAME: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local now = tonumber(ARGV[1])
        local e = redis.call('HGET', KEYS[1], 'e')
        if not e or tonumber(e) <= now then return -1 end
        if KEYS[1] == KEYS[2] then return 1 end
        local t = redis.call('HGET', KEYS[2], 'e')
        if t and tonumber(t) > now then return -2 end
        unindex(KEYS[2])
        local u = unindex(KEYS[1])
        redis.call('RENAME', KEYS[1], KEYS[2])
        if u then index(u, KEYS[2], e, now) end
        return 1",
    )
});

/// `KEYS[1]`; `ARGV`: now. 1 a live record was deleted, 0 not.
static DELETE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local e = redis.call('HGET', KEYS[1], 'e')
        unindex(KEYS[1])
        redis.call('DEL', KEYS[1])
        if e and tonumber(e) > tonumber(ARGV[1]) then return 1 end
        return 0",
    )
});

/// `KEYS[1]`; `ARGV`: user, now. 1 linked, 0 gone.
static SET_USER: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local e = redis.call('HGET', KEYS[1], 'e')
        if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end
        unindex(KEYS[1])
        redis.call('HSET', KEYS[1], 'u', ARGV[1])
        index(ARGV[1], KEYS[1], e, ARGV[2])
        return 1",
    )
});

/// `KEYS[1]`: the user's set (so that a cluster routes the script to its slot); `ARGV`:
/// user, now. The keys of the user's live records.
static SESSIONS_OF: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local set = KEYS[1]
        redis.call('ZREMRANGEBYSCORE', set, '-inf', ARGV[2])
        local live = {}
        for _, member in ipairs(redis.call('ZRANGE', set, 0, -1)) do
            local r = redis.call('HMGET', member, 'e', 'u')
            if r[1] and tonumber(r[1]) > tonumber(ARGV[2]) and r[2] == ARGV[1] then
                table.insert(live, member)
            end
        end
        return live",
    )
});

/// `KEYS[1]`: the user's set; `ARGV`: user, the key to keep ('' for none), now. The keys
/// of the live records it deleted.
static DELETE_SESSIONS_OF: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"local set = KEYS[1]
        local deleted = {}
        for _, member in ipairs(redis.call('ZRANGE', set, 0, -1)) do
            if member ~= ARGV[2] then
                local r = redis.call('HMGET', member, 'e', 'u')
                if r[2] == ARGV[1] then
                    redis.call('DEL', member)
                    if r[1] and tonumber(r[1]) > tonumber(ARGV[3]) then
                        table.insert(deleted, member)
                    end
                end
                redis.call('ZREM', set, member)
            end
        end
        return deleted",
    )
});

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` for TLS where the `redis`
    /// crate is built with it) with keys under `cookie-session:`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URL does not parse or the server cannot be
    /// reached now (later outages are reconnected by themselves).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let timeout = Duration::from_secs(5);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            // Every operation is bounded by `Deadlines`, with a timer shared by many: a
            // response timeout would add a timer per command.
            .set_response_timeout(None)
            // Reconnection is retried by the next request, not in a long loop here.
            .set_number_of_retries(1);
        let connection =
            tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| StoreError::Unavailable("Redis did not answer within 5 s".into()))?
                .map_err(unavailable)?;
        Ok(Self {
            connection: Connection::Single(connection),
            prefix: Arc::from("cookie-session:"),
            users: Self::users("cookie-session:"),
            max_record: 1 << 20,
            deadlines: Arc::new(Deadlines::new(timeout)),
            acknowledgement: None,
            sharded: false,
            #[cfg(feature = "store-testing")]
            pause: None,
        })
    }

    /// Connects to a Redis or Valkey Cluster through any of its nodes (`urls`, e.g.
    /// `["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]`), with keys under
    /// `cookie-session:`, each record in its own slot (see the type's documentation).
    ///
    /// ```no_run
    /// use cookie_session::store::RedisStore;
    /// # async fn example() -> Result<(), cookie_session::store::StoreError> {
    /// let store = RedisStore::connect_cluster(&["redis://127.0.0.1:7000"]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if a URL does not parse or no node answers now.
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(5);
        // A failover's gap is answered with a 503 now, not waited out here.
        let connection = tokio::time::timeout(timeout, cluster::Cluster::connect(urls, timeout))
            .await
            .map_err(|_| {
                StoreError::Unavailable("no Redis Cluster node answered within 5 s".into())
            })?
            .map_err(unavailable)?;
        Ok(Self {
            connection: Connection::Cluster(connection),
            prefix: Arc::from("cookie-session:"),
            users: Self::users("cookie-session:"),
            max_record: 1 << 20,
            deadlines: Arc::new(Deadlines::new(timeout)),
            acknowledgement: None,
            sharded: true,
            #[cfg(feature = "store-testing")]
            pause: None,
        })
    }

    /// Keys under `prefix` instead of `cookie-session:` (for several applications, or
    /// tests, on one server). On a cluster, a prefix that holds a hash tag (`{app}:`) puts
    /// every key of the store in that tag's slot (one master; atomic renames); without
    /// one, each record is in its own slot.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        let tagged = prefix
            .split_once('{')
            .is_some_and(|(_, rest)| rest.split_once('}').is_some_and(|(tag, _)| !tag.is_empty()));
        self.sharded = matches!(self.connection, Connection::Cluster(_)) && !tagged;
        self.prefix = Arc::from(prefix);
        self.users = Self::users(prefix);
        self
    }

    /// Awaits `pause(step)` before each step of an operation across slots (a rename, a
    /// round of log out everywhere; feature `store-testing`): tests park one between two
    /// steps and run other operations meanwhile, to check the promises in each
    /// interleaving.
    #[cfg(feature = "store-testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "store-testing")))]
    #[must_use]
    pub fn with_step_pause<F, Fut>(mut self, pause: F) -> Self
    where
        F: Fn(ClusterStep) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.pause = Some(Arc::new(move |step| Box::pin(pause(step))));
        self
    }

    #[cfg(feature = "store-testing")]
    async fn pause(&self, step: ClusterStep) {
        if let Some(pause) = &self.pause {
            pause(step).await;
        }
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 1 MiB.
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// Waits after each write until `replicas` replicas have acknowledged it (Redis
    /// `WAIT`), at most `wait`; fewer in time is [`StoreError::Unavailable`] (a `503`).
    /// The write itself has happened then on the master and is not undone: the visitor's
    /// retry sees it. This narrows what a failover can lose (SECURITY.md) at the cost of
    /// one more round trip per write, and of the replica's lag in each write's latency.
    /// Off by default.
    #[must_use]
    pub const fn with_replica_acknowledgement(mut self, replicas: u32, wait: Duration) -> Self {
        self.acknowledgement = Some((replicas, wait));
        self
    }

    /// How long one operation may take before it is [`StoreError::Unavailable`].
    /// Default 5 s. Operations that start close together share one timer, so one may end
    /// up to a tenth of `timeout` sooner.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadlines = Arc::new(Deadlines::new(timeout));
        self
    }

    fn key(&self, key: &StoreKey) -> String {
        use std::fmt::Write as _;
        // Sized once (`format!` grows its string several times on the way to 80 bytes).
        let mut out = String::with_capacity(self.prefix.len() + 66);
        out.push_str(&self.prefix);
        let _ = if self.sharded {
            write!(out, "{{{key}}}")
        } else {
            write!(out, "{key}")
        };
        out
    }

    /// The prefix of the user index's sets, from `prefix`.
    fn users(prefix: &str) -> Arc<str> {
        Arc::from(format!("{prefix}user:"))
    }

    /// A user's index: in the user's own slot when sharded.
    fn user_set(&self, user: &str) -> String {
        if self.sharded {
            format!("{}user:{{{user}}}", self.prefix)
        } else {
            format!("{}user:{user}", self.prefix)
        }
    }

    /// A record's Redis key back as its store key.
    fn parse(&self, member: &str) -> Option<StoreKey> {
        let hex = member.strip_prefix(&*self.prefix)?;
        let hex = if self.sharded {
            hex.strip_prefix('{')?.strip_suffix('}')?
        } else {
            hex
        };
        StoreKey::from_hex(hex).filter(|_| hex.len() == 64)
    }

    /// Runs the script call `call` makes (with the user index's prefix as its last
    /// argument), on the master of `route`, bounded as [`bounded`](Self::bounded); a
    /// server that does not know the script (restarted, or a new node) is sent the call
    /// again with the script's source (`call` makes it again: a cluster's client takes
    /// the command it sends).
    /// With [`with_replica_acknowledgement`](Self::with_replica_acknowledgement), then
    /// waits for the replicas of the master that holds `route`.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        route: &str,
        call: impl Fn() -> Call,
    ) -> Result<T, StoreError> {
        let users = (!self.sharded).then_some(&*self.users);
        let make = || {
            let mut made = call();
            if let Some(users) = users {
                made.arg(users);
            }
            made
        };
        let result = self
            .bounded(|mut c| async move {
                match c.send(route, make().command).await {
                    Err(error)
                        if error.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        c.send(route, make().with_source()).await
                    }
                    result => result,
                }
            })
            .await?;
        if let Some((replicas, wait)) = self.acknowledgement {
            self.wait(route, replicas, wait).await?;
        }
        Ok(result)
    }

    /// `WAIT replicas wait` on the master that holds `route` (on a cluster, routed to it).
    async fn wait(&self, route: &str, replicas: u32, wait: Duration) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas)
            .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        let acknowledged: i64 = self
            .bounded(|mut c| async move { c.send(route, cmd).await })
            .await?;
        if acknowledged < i64::from(replicas) {
            return Err(StoreError::Unavailable(
                format!(
                    "the write reached {acknowledged} of {replicas} replicas within {wait:?} (it is on the master)"
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// Runs `op` on a handle to the shared connection, or fails with `Unavailable` once
    /// the timeout has passed.
    async fn bounded<T, F>(&self, op: impl FnOnce(Connection) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match self.deadlines.bound(op(self.connection.clone())).await {
            Some(result) => result.map_err(unavailable),
            None => {
                if let Connection::Cluster(cluster) = &self.connection {
                    cluster.timed_out();
                }
                Err(StoreError::Unavailable(
                    format!("Redis did not answer within {:?}", self.deadlines.timeout()).into(),
                ))
            }
        }
    }
}

impl SessionStore for RedisStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let key = self.key(key);
        async move {
            type Fields = (Option<Vec<u8>>, Option<i64>, Option<u64>, Option<Vec<u8>>);
            // `p`: a copy a cross-slot rename has staged and not yet made live.
            let (data, expires, version, pending): Fields = self
                .bounded(|mut c| async move {
                    // Sized once: `redis::cmd` grows its two buffers argument by argument.
                    let mut command = redis::Cmd::with_capacity(6, 128);
                    command.arg("HMGET").arg(&key).arg(&["d", "e", "v", "p"]);
                    c.send(&key, command).await
                })
                .await?;
            match (data, expires, version, pending) {
                (Some(data), Some(expires), Some(version), None)
                    if expires > now.unix_timestamp() =>
                {
                    Ok(Some(Record::new(
                        data,
                        super::datetime(expires)?,
                        Version(version),
                    )))
                }
                _ => Ok(None),
            }
        }
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.key(key);
        let checked = check_size(data, self.max_record);
        async move {
            checked?;
            let (expires, now) = (expires.unix_timestamp(), now.unix_timestamp());
            let created: i64 = if self.sharded {
                self.sharded_create(&key, data, expires, now).await?
            } else {
                self.invoke(&key, || {
                    let mut call = Call::new(&CREATE, &[&key]);
                    call.arg(data).arg(expires).arg(now);
                    call
                })
                .await?
            };
            if created == 1 {
                Ok(Version::FIRST)
            } else {
                Err(StoreError::Duplicate)
            }
        }
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.key(key);
        let checked = check_size(data, self.max_record);
        async move {
            checked?;
            let next = Version(expected.0.saturating_add(1));
            let saved: i64 = if self.sharded {
                let (expires, now) = (expires.unix_timestamp(), now.unix_timestamp());
                self.sharded_save(&key, expected, data, expires, now)
                    .await?
            } else {
                self.invoke(&key, || {
                    let mut call = Call::new(&SAVE, &[&key]);
                    call.arg(expected.0)
                        .arg(data)
                        .arg(expires.unix_timestamp())
                        .arg(now.unix_timestamp())
                        .arg(next.0);
                    call
                })
                .await?
            };
            match saved {
                1 => Ok(next),
                -2 => Err(StoreError::Conflict),
                _ => Err(StoreError::Gone),
            }
        }
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.key(key);
        async move {
            let (expires, now) = (expires.unix_timestamp(), now.unix_timestamp());
            let live: i64 = if self.sharded {
                self.sharded_touch(&key, expires, now).await?
            } else {
                self.invoke(&key, || {
                    let mut call = Call::new(&TOUCH, &[&key]);
                    call.arg(expires).arg(now);
                    call
                })
                .await?
            };
            if live == 1 {
                Ok(())
            } else {
                Err(StoreError::Gone)
            }
        }
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (from, to) = (self.key(from), self.key(to));
        async move {
            if self.sharded {
                return self.sharded_rename(&from, &to, now.unix_timestamp()).await;
            }
            let moved: i64 = self
                .invoke(&from, || {
                    let mut call = Call::new(&RENAME, &[&from, &to]);
                    call.arg(now.unix_timestamp());
                    call
                })
                .await?;
            match moved {
                1 => Ok(()),
                -2 => Err(StoreError::Duplicate),
                _ => Err(StoreError::Gone),
            }
        }
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let key = self.key(key);
        async move {
            let now = now.unix_timestamp();
            let live: i64 = if self.sharded {
                self.sharded_delete(&key, now).await?
            } else {
                self.invoke(&key, || {
                    let mut call = Call::new(&DELETE, &[&key]);
                    call.arg(now);
                    call
                })
                .await?
            };
            Ok(live == 1)
        }
    }

    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.key(key);
        let checked = super::check_user(user);
        async move {
            checked?;
            let now = now.unix_timestamp();
            let linked: i64 = if self.sharded {
                self.sharded_set_user(&key, user, now).await?
            } else {
                self.invoke(&key, || {
                    let mut call = Call::new(&SET_USER, &[&key]);
                    call.arg(user).arg(now);
                    call
                })
                .await?
            };
            if linked == 1 {
                Ok(())
            } else {
                Err(StoreError::Gone)
            }
        }
    }

    async fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<StoreKey>, StoreError> {
        if self.sharded {
            return self.sharded_sessions_of(user, now.unix_timestamp()).await;
        }
        let set = self.user_set(user);
        let members: Vec<String> = self
            .invoke(&set, || {
                let mut call = Call::new(&SESSIONS_OF, &[&set]);
                call.arg(user).arg(now.unix_timestamp());
                call
            })
            .await?;
        Ok(members.iter().filter_map(|m| self.parse(m)).collect())
    }

    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let except = except.map(|k| self.key(k)).unwrap_or_default();
        let set = self.user_set(user);
        async move {
            if self.sharded {
                return self
                    .sharded_delete_sessions_of(user, &except, now.unix_timestamp())
                    .await;
            }
            let members: Vec<String> = self
                .invoke(&set, || {
                    let mut call = Call::new(&DELETE_SESSIONS_OF, &[&set]);
                    call.arg(user).arg(&except).arg(now.unix_timestamp());
                    call
                })
                .await?;
            Ok(members.iter().filter_map(|m| self.parse(m)).collect())
        }
    }

    /// Redis removes expired records itself (`EXPIREAT`): nothing to sweep.
    fn sweep(
        &self,
        _now: OffsetDateTime,
        _max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        std::future::ready(Ok(0))
    }
}
