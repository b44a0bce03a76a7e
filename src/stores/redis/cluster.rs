//! The store's Redis Cluster client: each command goes from the caller straight to the
//! multiplexed connection of its key's master.
//!
//! redis-rs's cluster client passes every command through a channel to its routing task,
//! which hands it to the node's connection task and returns the answer through a oneshot:
//! under `perf`, about twice a single node's CPU per command. The store needs much less of
//! a cluster client (one key per command, no pipelines across slots, no reads from
//! replicas), so it keeps a slot map of its own, shared without a lock:
//!
//! - A command's slot is looked up in the map and written to its master's connection by the
//!   caller, as on a single node.
//! - `MOVED` (the slot moved: resharding, or a failover seen late) or `READONLY` (a master
//!   demoted to replica) re-reads the map and sends the command once more; `ASK` (the slot is migrating) sends it once to the named
//!   node, after `ASKING`.
//! - A connection that fails, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN` or an
//!   operation that timed out make the map be re-read in the background (one at a time, at
//!   most every [`REFRESH_EVERY`]): the failed request itself is an error (a `503`), and
//!   the requests after the cluster has promoted a replica reach the new master. Each node
//!   asked is given [`NODE_ANSWER`], so a master that hangs without closing its connections
//!   cannot keep the map from being read from the others.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError};
use redis::{FromRedisValue, IntoConnectionInfo, RedisResult, ServerErrorKind, Value};

/// A cluster's slots.
const SLOTS: usize = 16_384;

/// The shortest time between two readings of the slot map.
const REFRESH_EVERY: Duration = Duration::from_millis(100);

/// A Redis Cluster, through one connection per master.
#[derive(Clone)]
pub(super) struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    /// The nodes given to connect: asked for the slot map when no known master answers.
    seeds: Vec<ConnectionInfo>,
    config: AsyncConnectionConfig,
    topology: ArcSwap<Topology>,
    /// A reading of the slot map is under way (one at a time).
    refreshing: AtomicBool,
    /// When the last reading started.
    refreshed: Mutex<Instant>,
    /// How long a reading may take before the map is left as it was.
    timeout: Duration,
}

/// A reading of the slot map under way: it holds `refreshing` and lets it go however it
/// ends (a request that awaits it may be dropped at its deadline).
struct Reading(Arc<Shared>);

impl Reading {
    fn begin(shared: &Arc<Shared>) -> Option<Self> {
        let taken = shared.refreshing.swap(true, Ordering::Acquire);
        (!taken).then(|| Self(Arc::clone(shared)))
    }

    /// At most one reading every `REFRESH_EVERY`; a cluster that does not answer in time
    /// keeps the map it had.
    async fn run(self) {
        let shared = &self.0;
        let since = {
            let mut last = shared
                .refreshed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let since = last.elapsed();
            *last = Instant::now() + REFRESH_EVERY.saturating_sub(since);
            since
        };
        if since < REFRESH_EVERY {
            tokio::time::sleep(REFRESH_EVERY - since).await;
        }
        if let Ok(Ok(topology)) = tokio::time::timeout(shared.timeout, shared.read()).await {
            shared.topology.store(Arc::new(topology));
        }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// The slot map: each slot's master.
struct Topology {
    /// Each slot's index in `masters`; `NONE` where no master serves it.
    slots: Box<[u16]>,
    masters: Vec<Arc<Master>>,
}

const NONE: u16 = u16::MAX;

struct Master {
    /// `host:port`, as `MOVED` and `ASK` name a node.
    address: String,
    /// `None` when it could not be reached at the last reading.
    connection: Option<MultiplexedConnection>,
    /// Its connection failed since: the next reading connects again.
    broken: AtomicBool,
}

impl Cluster {
    /// Reads the slot map from the first of `urls` that answers and connects to every
    /// master.
    pub(super) async fn connect(urls: &[&str], timeout: Duration) -> RedisResult<Self> {
        let seeds = urls
            .iter()
            .map(|url| url.into_connection_info())
            .collect::<RedisResult<Vec<_>>>()?;
        if seeds.is_empty() {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no cluster node given",
            )));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            // Every operation is bounded by the store's deadline, with a timer shared by
            // many: a response timeout would add a timer per command.
            .set_response_timeout(None);
        let shared = Arc::new(Shared {
            seeds,
            config,
            topology: ArcSwap::from_pointee(Topology {
                slots: vec![NONE; SLOTS].into_boxed_slice(),
                masters: Vec::new(),
            }),
            refreshing: AtomicBool::new(false),
            refreshed: Mutex::new(Instant::now()),
            timeout,
        });
        let topology = shared.read().await?;
        shared.topology.store(Arc::new(topology));
        Ok(Self { shared })
    }

    /// Sends `command`, whose key is `key`, to the master of `key`'s slot.
    pub(super) async fn send<T: FromRedisValue>(&self, key: &str, command: Cmd) -> RedisResult<T> {
        let slot = slot(key.as_bytes());
        match self.send_to_slot(slot, &command).await {
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::ReadOnly)
                ) =>
            {
                // The slot has a new master (a master demoted to replica answers
                // `READONLY`, without applying the command): read the map now and try
                // once more.
                self.shared.refresh().await;
                self.send_to_slot(slot, &command).await
            }
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::Ask) => {
                let Some((address, _)) = error.redirect_node() else {
                    return Err(error);
                };
                self.ask(address, &command).await
            }
            result => result,
        }
    }

    /// An operation on this cluster timed out: the map is read again in the background
    /// (a master may have stopped answering without closing its connections).
    pub(super) fn timed_out(&self) {
        self.shared.refresh_soon();
    }

    async fn send_to_slot<T: FromRedisValue>(&self, slot: u16, command: &Cmd) -> RedisResult<T> {
        let master = {
            let topology = self.shared.topology.load();
            topology
                .masters
                .get(usize::from(topology.slots[usize::from(slot)]))
                .cloned()
        };
        let Some(mut connection) = master.as_ref().and_then(|m| m.connection.clone()) else {
            self.shared.refresh_soon();
            return Err(RedisError::from((
                ErrorKind::Server(ServerErrorKind::ClusterDown),
                "no reachable master serves the slot",
                format!("slot {slot}"),
            )));
        };
        let result = command.query_async(&mut connection).await;
        if let Err(error) = &result {
            self.shared.failed(master.as_deref(), error);
        }
        result
    }

    /// Sends `command` once to the node at `address` (`host:port`), after `ASKING`.
    async fn ask<T: FromRedisValue>(&self, address: &str, command: &Cmd) -> RedisResult<T> {
        let known = self
            .shared
            .topology
            .load()
            .masters
            .iter()
            .find(|m| m.address == address)
            .and_then(|m| m.connection.clone());
        let mut connection = match known {
            Some(connection) => connection,
            None => {
                let (host, port) = split(address)?;
                self.shared
                    .connect_to(&self.shared.seeds[0], host, port)
                    .await?
            }
        };
        // One pipeline: nothing another request sends can come between the two.
        let (value,): (T,) = redis::pipe()
            .cmd("ASKING")
            .ignore()
            .add_command(command.clone())
            .query_async(&mut connection)
            .await?;
        Ok(value)
    }
}

impl Shared {
    /// Notes a failed command: a connection that failed is replaced at the next reading,
    /// which errors that say the cluster is changing start.
    fn failed(self: &Arc<Self>, master: Option<&Master>, error: &RedisError) {
        let connection =
            error.is_io_error() || error.is_connection_dropped() || error.is_unrecoverable_error();
        if connection && let Some(master) = master {
            master.broken.store(true, Ordering::Relaxed);
        }
        let changing = matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
            )
        );
        if connection || changing {
            self.refresh_soon();
        }
    }

    /// Reads the map in the background, unless a reading is under way.
    fn refresh_soon(self: &Arc<Self>) {
        if let Some(reading) = Reading::begin(self) {
            tokio::spawn(reading.run());
        }
    }

    /// Reads the map now, unless a reading is under way (then waits for it a little).
    async fn refresh(self: &Arc<Self>) {
        match Reading::begin(self) {
            Some(reading) => reading.run().await,
            None => tokio::time::sleep(REFRESH_EVERY).await,
        }
    }

    /// The slot map, from a known master that answers or else from a seed, with a
    /// connection to every master (each known master's own kept unless it failed).
    async fn read(&self) -> RedisResult<Topology> {
        let old = self.topology.load_full();
        let mut last_error = None;
        let mut answer = None;
        // Each node in turn, each given `NODE_ANSWER`: a master that hangs (stopped, or cut
        // off without its connections closing) must not keep the others from being asked.
        for master in old
            .masters
            .iter()
            .filter(|m| !m.broken.load(Ordering::Relaxed))
        {
            let Some(mut connection) = master.connection.clone() else {
                continue;
            };
            match within(cluster_slots(&mut connection)).await {
                Ok(slots) => {
                    answer = Some((slots, split(&master.address)?.0.to_owned()));
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if answer.is_none() {
            for seed in &self.seeds {
                let asked = within(async {
                    let mut connection = redis::Client::open(seed.clone())?
                        .get_multiplexed_async_connection_with_config(&self.config)
                        .await?;
                    cluster_slots(&mut connection).await
                });
                match asked.await {
                    Ok(slots) => {
                        answer = Some((slots, host(seed.addr()).to_owned()));
                        break;
                    }
                    Err(error) => last_error = Some(error),
                }
            }
        }
        let Some((slots, asked)) = answer else {
            return Err(last_error
                .unwrap_or_else(|| RedisError::from((ErrorKind::Io, "no cluster node answered"))));
        };
        let ranges = parse_slots(slots, &asked)?;
        let mut addresses: Vec<&str> = Vec::new();
        for (_, _, address) in &ranges {
            if !addresses.contains(&address.as_str()) {
                addresses.push(address);
            }
        }
        // Each master's connection: its own kept unless it failed, the others made at once.
        let masters = addresses.iter().map(|&address| {
            let kept = old
                .masters
                .iter()
                .find(|m| m.address == address && !m.broken.load(Ordering::Relaxed))
                .and_then(|m| m.connection.clone());
            async move {
                let connection = match kept {
                    Some(connection) => Some(connection),
                    None => match split(address) {
                        Ok((host, port)) => within(self.connect_to(&self.seeds[0], host, port))
                            .await
                            .ok(),
                        Err(_) => None,
                    },
                };
                Arc::new(Master {
                    address: address.to_owned(),
                    connection,
                    broken: AtomicBool::new(false),
                })
            }
        });
        let masters = futures_util::future::join_all(masters).await;
        let mut topology = Topology {
            slots: vec![NONE; SLOTS].into_boxed_slice(),
            masters,
        };
        for (start, end, address) in &ranges {
            let index = addresses
                .iter()
                .position(|a| a == address)
                .and_then(|index| u16::try_from(index).ok())
                .unwrap_or(NONE);
            for slot in *start..=*end {
                topology.slots[usize::from(slot)] = index;
            }
        }
        Ok(topology)
    }

    /// A connection to `host:port` with `like`'s settings (TLS, credentials).
    async fn connect_to(
        &self,
        like: &ConnectionInfo,
        host: &str,
        port: u16,
    ) -> RedisResult<MultiplexedConnection> {
        let addr = match like.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        redis::Client::open(like.clone().set_addr(addr))?
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }
}

/// How long one node may take to answer while the slot map is read, or to be connected to.
const NODE_ANSWER: Duration = Duration::from_secs(2);

/// `operation`, or an error once `NODE_ANSWER` has passed.
async fn within<T>(operation: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(NODE_ANSWER, operation)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from((
                ErrorKind::Io,
                "a cluster node did not answer in time",
            )))
        })
}

/// `CLUSTER SLOTS` on `connection`.
async fn cluster_slots(connection: &mut MultiplexedConnection) -> RedisResult<Value> {
    redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await
}

/// The host of a seed's address (for a node the slot map names without an address).
fn host(addr: &ConnectionAddr) -> &str {
    match addr {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host,
        _ => "",
    }
}

/// `host:port` (the host may be an IPv6 address, itself with colons).
fn split(address: &str) -> RedisResult<(&str, u16)> {
    address
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse().ok()?)))
        .ok_or_else(|| {
            RedisError::from((
                ErrorKind::Parse,
                "a cluster node's address is not host:port",
                address.to_owned(),
            ))
        })
}

/// `CLUSTER SLOTS`' answer as (first slot, last slot, the master's `host:port`); a master
/// named without a host (`""` or `?`) is on the host that answered, `asked`.
fn parse_slots(value: Value, asked: &str) -> RedisResult<Vec<(u16, u16, String)>> {
    let invalid = |what: &str| {
        RedisError::from((
            ErrorKind::Parse,
            "CLUSTER SLOTS answered something unexpected",
            what.to_owned(),
        ))
    };
    let Value::Array(ranges) = value else {
        return Err(invalid("not an array"));
    };
    let mut parsed = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(invalid("a range is not an array"));
        };
        let number = |value: Option<&Value>| match value {
            Some(Value::Int(n)) => u16::try_from(*n).ok().filter(|&n| usize::from(n) < SLOTS),
            _ => None,
        };
        let (Some(start), Some(end)) = (number(fields.first()), number(fields.get(1))) else {
            return Err(invalid("a range's slots"));
        };
        let Some(Value::Array(master)) = fields.get(2) else {
            return Err(invalid("a range's master"));
        };
        let host = match master.first() {
            Some(Value::BulkString(host)) => String::from_utf8_lossy(host).into_owned(),
            Some(Value::SimpleString(host)) => host.clone(),
            _ => return Err(invalid("a master's host")),
        };
        let Some(Value::Int(port)) = master.get(1) else {
            return Err(invalid("a master's port"));
        };
        let host = if host.is_empty() || host == "?" {
            asked.to_owned()
        } else {
            host
        };
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        if start <= end {
            parsed.push((start, end, address));
        }
    }
    Ok(parsed)
}

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (the text between its first `{` and
/// the next `}`, when not empty) or else of the whole key, modulo 16,384.
fn slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tag.unwrap_or(key)) % 16_384
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_specification() {
        // The specification's example: CRC16 of "123456789" is 0x31C3.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"a{123456789}b"), 0x31C3);
        // What Redis 7.0's `CLUSTER KEYSLOT` answers: a tag counts alone; the first `{`
        // and the next `}`; an empty tag or none closed means the whole key.
        for (key, expected) in [
            (&b"{user1000}.following"[..], 3443),
            (b"foo{{bar}}zap", 4015),
            (b"foo{}{bar}", 8363),
            (b"foo{bar", 15278),
            (b"cookie-session:{0a1b}", 15090),
            (b"", 0),
        ] {
            assert_eq!(slot(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split("127.0.0.1:7000").unwrap(), ("127.0.0.1", 7000));
        assert_eq!(split("[::1]:7000").unwrap(), ("::1", 7000));
        assert!(split("no-port").is_err());
        assert!(split("host:port").is_err());
    }

    #[test]
    fn cluster_slots_answers_parse_and_odd_ones_are_errors() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let answer = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        assert_eq!(
            parse_slots(answer, "10.0.0.9").unwrap(),
            vec![
                (0, 5460, "10.0.0.1:7000".to_owned()),
                (5461, 16383, "10.0.0.9:7001".to_owned())
            ]
        );
        for odd in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(16384),
                node("h", 1),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                Value::Nil,
            ])]),
        ] {
            assert!(parse_slots(odd, "h").is_err());
        }
    }
}
