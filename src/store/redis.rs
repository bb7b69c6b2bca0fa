//! [`RedisStore`]: the fleet's state in Redis or Valkey, with the `redis` crate's
//! connection manager (one multiplexed connection, reconnecting by itself, made lazily), or on
//! a Redis Cluster with its cluster connection (one per node, following the slots, made
//! lazily), and Lua scripts sent by `EVALSHA` (reloaded when the server answers `NOSCRIPT`,
//! as after a restart). Time is the server's (`TIME`), so the replicas' clocks may disagree.
//!
//! On one server an exchange is one pipeline. On a cluster a pipeline must stay in one slot,
//! so the same commands are sent as one pipeline per key, all at once, and their replies put
//! back in order: about one round trip, spread over the nodes.
//!
//! Keys (`<ns>` the namespace, each entity under its own hash tag so that a cluster spreads
//! them over slots, and every script touches one key):
//! - `polyrelay:v1:<ns>:{cb:<target>}`: a hash, `until` (ms, server time) and the probe
//!   lease's `probe` (replica) and `probe_until`; it expires a minute after the cooldown
//!   (or the lease) ends.
//! - `polyrelay:v1:<ns>:{b:<budget>}:<window>`: a calendar window's hash, one field per
//!   replica holding its cumulative spend (merged by max); expires a day after its write.
//! - `polyrelay:v1:<ns>:{b:<budget>}:rolling`: a rolling window's hash, one field per replica
//!   holding `seq:spend:written_ms`; expires one period after its last write.
//! - `polyrelay:v1:<ns>:{rl:<bucket>}`: a shared request limit's hash, `next` (the schedule's
//!   next free slot, µs) and `hold` (µs); expires ten minutes after both pass.
//! - `polyrelay:v1:<ns>:{key:<provider>:<fingerprint>}`: a pool key's `kind` (resting,
//!   parked, invalid) and `until` (ms); expires a minute after it.
//! - `polyrelay:v1:<ns>:{b:<budget>}:strict:<window>`: a strict budget's window, `spent`
//!   and one `r:<id>` field per live reservation (`amount:expires_ms`).
//! - `polyrelay:v1:<ns>:{stats}`: each replica's stats since start (JSON), one field each;
//!   expires an hour after the last write.
//! - `polyrelay:v1:<ns>:{replicas}`: live replicas, one field each holding its live-until (ms).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Script};

use super::{
    BreakerReport, Exchange, ExchangeReply, FleetBreaker, LeaseGrant, STRICT_RESERVATION_TTL,
    SharedKeyState, StateStore, StrictItem,
};
use crate::types::{Error, ErrorKind};

/// A breaker: applies the replica's report (`open` with ms, `close`, `want` with the lease's
/// ms, or `read`) and answers `{state, remaining_ms, mine}`: 0 closed, 1 open, 2 half-open.
const BREAKER: &str = r"
local k = KEYS[1]
local replica, op, ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if op == 'close' then
  redis.call('DEL', k)
  return {0, 0, 0}
end
if op == 'open' then
  local u = now + ms
  local old = tonumber(redis.call('HGET', k, 'until') or '0')
  if old > u then u = old end
  redis.call('HSET', k, 'until', u)
  redis.call('HDEL', k, 'probe', 'probe_until')
  redis.call('PEXPIRE', k, u - now + 60000)
end
local u = tonumber(redis.call('HGET', k, 'until') or '-1')
if u < 0 then return {0, 0, 0} end
if now < u then return {1, u - now, 0} end
local holder = redis.call('HGET', k, 'probe')
local pu = tonumber(redis.call('HGET', k, 'probe_until') or '0')
if holder and pu > now then
  if holder == replica then return {2, pu - now, 1} end
  return {2, pu - now, 0}
end
if op == 'want' then
  redis.call('HSET', k, 'probe', replica, 'probe_until', now + ms)
  redis.call('PEXPIRE', k, ms + 60000)
  return {2, ms, 1}
end
return {2, 0, 0}
";

/// A calendar window: the replica's cumulative spend, merged by max (a repeated write
/// changes nothing); answers the fleet's total.
const CALENDAR: &str = r"
local k = KEYS[1]
local replica, spent = ARGV[1], tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', k, replica) or '0')
if spent > old then redis.call('HSET', k, replica, ARGV[2]) end
redis.call('PEXPIRE', k, tonumber(ARGV[3]))
local total = 0
for _, v in ipairs(redis.call('HVALS', k)) do total = total + tonumber(v) end
return tostring(total)
";

/// A rolling window: the replica's current total, replaced only by a newer `seq`; answers
/// the total of the entries written within one period.
const ROLLING: &str = r"
local k = KEYS[1]
local replica, seq, spent, period = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('HGET', k, replica)
local old_seq = -1
if old then old_seq = tonumber(string.match(old, '^(%d+):')) end
if seq >= old_seq then redis.call('HSET', k, replica, seq .. ':' .. spent .. ':' .. now) end
redis.call('PEXPIRE', k, period + 60000)
local total = 0
for _, v in ipairs(redis.call('HVALS', k)) do
  local _, s, at = string.match(v, '^(%d+):(%d+):(%d+)$')
  if s and now - tonumber(at) < period then total = total + tonumber(s) end
end
return tostring(total)
";

/// A shared request limit: a hold (µs, server time) only ever extended, and the next free
/// slot of the fleet's schedule; leases the next free slots up to the horizon. Answers
/// `{slots, first_in_us, hold_left_us}`.
const LEASE: &str = r"
local k = KEYS[1]
local want, spacing, horizon, hold_us, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hold = tonumber(redis.call('HGET', k, 'hold') or '0')
if hold_us > 0 and now + hold_us > hold then
  hold = now + hold_us
  redis.call('HSET', k, 'hold', hold)
end
local hold_left = 0
if hold > now then hold_left = hold - now end
local start = math.max(tonumber(redis.call('HGET', k, 'next') or '0'), now - burst)
local slots = 0
if want > 0 and spacing > 0 and start <= now + horizon then
  slots = math.min(want, math.floor((now + horizon - start) / spacing) + 1)
  redis.call('HSET', k, 'next', start + slots * spacing)
end
redis.call('PEXPIRE', k, math.floor((math.max(start, hold) - now) / 1000) + 600000)
return {slots, math.max(start - now, 0), hold_left}
";

/// A pool key: the longest absence wins (kind 1 resting, 2 parked, 3 invalid, kept an
/// hour); answers `{kind, left_ms}` (kind 0: usable).
const KEY: &str = r"
local k = KEYS[1]
local kind, ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sk = tonumber(redis.call('HGET', k, 'kind') or '0')
local su = tonumber(redis.call('HGET', k, 'until') or '0')
if kind > 0 then
  local u = now + ms
  if su <= now or (kind == 3 and sk ~= 3) or (sk ~= 3 and u > su) then
    redis.call('HSET', k, 'kind', kind, 'until', u)
    redis.call('PEXPIRE', k, ms + 60000)
    sk, su = kind, u
  end
end
if su <= now then return {0, 0} end
return {sk, su - now}
";

/// A strict budget window: reserves `amount` under id `r:<id>` if the settled `spent` plus
/// the live reservations leave room under the limit; answers `{1, used}` (reserved) or
/// `{0, used}`. Expired reservations (a replica that died) are swept.
const STRICT_RESERVE: &str = r"
local k = KEYS[1]
local id, amount, limit, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = tonumber(redis.call('HGET', k, 'spent') or '0')
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'r:' then
    local a, exp = string.match(all[i + 1], '^(%d+):(%d+)$')
    if a and tonumber(exp) > now then used = used + tonumber(a) else redis.call('HDEL', k, all[i]) end
  end
end
if used + amount > limit then return {0, used} end
redis.call('HSET', k, 'r:' .. id, amount .. ':' .. (now + ttl))
redis.call('PEXPIRE', k, ttl + 86400000)
return {1, used + amount}
";

/// A strict reservation's end: the spend replaces the reservation, once.
const STRICT_SETTLE: &str = r"
local k = KEYS[1]
if redis.call('HDEL', k, 'r:' .. ARGV[1]) == 1 then
  redis.call('HINCRBY', k, 'spent', ARGV[2])
end
return 1
";

/// Live replicas: each exchange marks its replica live until a time (ms); answers how many
/// are.
const REPLICAS: &str = r"
local k = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', k, ARGV[1], now + tonumber(ARGV[2]))
local live = 0
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then live = live + 1 else redis.call('HDEL', k, all[i]) end
end
redis.call('PEXPIRE', k, tonumber(ARGV[2]) + 60000)
return live
";

/// How long the store keeps a key's invalid mark: an hour, so a key fixed at the vendor
/// comes back to the fleet.
const INVALID_FOR: Duration = Duration::from_secs(3_600);

/// How long published stats outlive their last write: an hour.
const STATS_TTL: Duration = Duration::from_secs(3_600);

/// How long a calendar window's hash outlives its last write: a day, more than any
/// window's end needs for the replicas still in it.
const CALENDAR_TTL: Duration = Duration::from_secs(86_400);

/// A [`StateStore`] on a Redis (or Valkey) server, or on a Redis Cluster.
///
/// ```no_run
/// # fn demo() -> Result<(), polyrelay::Error> {
/// use polyrelay::store::{RedisStore, Store};
/// let store = Store::new(RedisStore::open("redis://127.0.0.1:6379/", Default::default())?);
/// let cluster = Store::new(RedisStore::open_cluster(
///     &["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"],
///     Default::default(),
/// )?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// `host:port` only (comma-separated for a cluster's nodes): a URL may carry a password.
    addr: String,
    breaker: Script,
    calendar: Script,
    rolling: Script,
    lease: Script,
    key_state: Script,
    replicas: Script,
    strict_reserve: Script,
    strict_settle: Script,
}

/// The connection: one server, or a cluster.
#[derive(Clone)]
enum Conn {
    /// One server: an exchange is one pipeline.
    Node(ConnectionManager),
    /// A cluster: an exchange is one request per key (each key its own slot), sent at once.
    Cluster(ClusterConnection),
}

/// An exchange's commands, as the connection sends them: one pipeline for a single server,
/// one pipeline per key for a cluster (its pipelines must stay in one slot). The commands
/// are built once, by the same code, for both.
struct Batch {
    pipes: Vec<redis::Pipeline>,
    one: bool,
}

impl Batch {
    /// The pipeline for the commands of the next key.
    fn next(&mut self) -> &mut redis::Pipeline {
        if !self.one || self.pipes.is_empty() {
            self.pipes.push(redis::pipe());
        }
        let last = self.pipes.len() - 1;
        &mut self.pipes[last]
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the server at `url`, opened inside a tokio runtime (a `Config` error outside one) (`redis://[user:password@]host:port/db`; `rediss://` needs TLS,
    /// which this build does not enable). Connects lazily, in the background: returns at once
    /// even when the server is down. `timeout` bounds a connection attempt and every command
    /// (default of [`Store`](super::Store): 100 ms; zero here means 100 ms); the connection
    /// is retried once per command, then the command fails and the relay runs on local state.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, Error> {
        in_runtime()?;
        let client = Client::open(url)
            .map_err(|e| Error::new(ErrorKind::Config, format!("store url does not parse: {e}")))?;
        let info = client.get_connection_info();
        let addr = info.addr().to_string();
        let timeout = or_default(timeout);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::new(ErrorKind::Config, format!("store at {addr}: {e}")))?;
        Ok(Self::with(Conn::Node(conn), addr))
    }

    /// A store on the Redis Cluster (or Valkey cluster) that `urls` lead to: some of its
    /// primaries' URLs (`redis://[user:password@]host:port`; one reachable node is enough,
    /// the client discovers the others and follows the slots as they move), opened inside a
    /// tokio runtime (a `Config` error outside one, or when `urls` is empty or a URL does not
    /// parse). Connects lazily, in the background: returns at once even when the cluster is
    /// down, and calls fail until it is up. `timeout` bounds a connection attempt and every
    /// command (zero means 100 ms); a command is retried once.
    ///
    /// Every key the relay writes is hash-tagged per entity and every script touches one key,
    /// so an exchange is sent as one request per key, all at once (a pipeline per key: a
    /// cluster's pipeline cannot cross slots): about one round trip, spread over the nodes.
    pub fn open_cluster(urls: &[&str], timeout: Duration) -> Result<Self, Error> {
        in_runtime()?;
        if urls.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "a Redis Cluster store needs at least one node's URL",
            ));
        }
        let mut infos = Vec::with_capacity(urls.len());
        for url in urls {
            let info = redis::IntoConnectionInfo::into_connection_info(*url).map_err(|e| {
                Error::new(ErrorKind::Config, format!("store url does not parse: {e}"))
            })?;
            infos.push(info);
        }
        let addr = infos
            .iter()
            .map(|i| i.addr().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let timeout = or_default(timeout);
        let client = ClusterClient::builder(infos)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("store at {addr}: {e}")))?;
        let config = ClusterConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let conn = client.get_pending_async_connection_with_config(config);
        Ok(Self::with(Conn::Cluster(conn), addr))
    }

    fn with(conn: Conn, addr: String) -> Self {
        RedisStore {
            conn,
            addr,
            breaker: Script::new(BREAKER),
            calendar: Script::new(CALENDAR),
            rolling: Script::new(ROLLING),
            lease: Script::new(LEASE),
            key_state: Script::new(KEY),
            strict_reserve: Script::new(STRICT_RESERVE),
            strict_settle: Script::new(STRICT_SETTLE),
            replicas: Script::new(REPLICAS),
        }
    }

    fn key(namespace: &str, entity: &str) -> String {
        format!("polyrelay:v1:{namespace}:{{{entity}}}")
    }

    fn strict_key(namespace: &str, budget: &str, window: u64) -> String {
        format!(
            "{}:strict:{window}",
            Self::key(namespace, &format!("b:{budget}"))
        )
    }

    /// An empty batch for this connection.
    fn batch(&self) -> Batch {
        Batch {
            pipes: Vec::new(),
            one: matches!(self.conn, Conn::Node(_)),
        }
    }

    /// Sends one pipeline.
    async fn send(&self, pipe: &redis::Pipeline) -> redis::RedisResult<Vec<redis::Value>> {
        match &self.conn {
            Conn::Node(c) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }
    }

    /// Sends `batch`'s pipelines at once, answering their values in order; the pipelines the
    /// server answered `NOSCRIPT` (restarted, or flushed) are sent again once the scripts
    /// are loaded.
    async fn query(&self, batch: &Batch) -> Result<Vec<redis::Value>, Error> {
        let mut results = futures::future::join_all(batch.pipes.iter().map(|p| self.send(p))).await;
        let lost = |r: &redis::RedisResult<_>| matches!(r, Err(e) if e.code() == Some("NOSCRIPT"));
        if results.iter().any(lost) {
            self.load_scripts().await?;
            let again: Vec<usize> = (0..results.len()).filter(|&i| lost(&results[i])).collect();
            let retried =
                futures::future::join_all(again.iter().map(|&i| self.send(&batch.pipes[i]))).await;
            for (i, r) in again.into_iter().zip(retried) {
                results[i] = r;
            }
        }
        let mut values = Vec::new();
        for r in results {
            values.extend(r.map_err(|e| self.error(e))?);
        }
        Ok(values)
    }

    fn commands(&self, namespace: &str, replica: &str, ex: &Exchange) -> Batch {
        let mut batch = self.batch();
        for (target, report) in &ex.breakers {
            let (op, ms) = match report {
                BreakerReport::Read => ("read", 0),
                BreakerReport::Open { open_for } => ("open", ms(*open_for)),
                BreakerReport::Close => ("close", 0),
                BreakerReport::WantProbe { lease_for } => ("want", ms(*lease_for)),
            };
            let mut call = self
                .breaker
                .key(Self::key(namespace, &format!("cb:{target}")));
            call.arg(replica).arg(op).arg(ms);
            batch.next().invoke_script(&call);
        }
        for r in &ex.spend {
            let entity = format!("b:{}", r.budget);
            match r.window {
                Some(window) => {
                    let key = format!("{}:{window}", Self::key(namespace, &entity));
                    let mut call = self.calendar.key(key);
                    call.arg(replica).arg(r.spent).arg(ms(CALENDAR_TTL));
                    batch.next().invoke_script(&call);
                }
                None => {
                    let key = format!("{}:rolling", Self::key(namespace, &entity));
                    let mut call = self.rolling.key(key);
                    call.arg(replica).arg(r.seq).arg(r.spent).arg(ms(r.period));
                    batch.next().invoke_script(&call);
                }
            }
        }
        for l in &ex.leases {
            let key = Self::key(namespace, &format!("rl:{}", l.bucket));
            let mut call = self.lease.key(key);
            // The step in fractional microseconds: a tokens bucket's is often below one.
            call.arg(l.want)
                .arg(l.spacing.as_secs_f64() * 1e6)
                .arg(us(l.horizon))
                .arg(if l.hold.is_zero() { 0 } else { us(l.hold) })
                .arg(u64::try_from(l.burst.as_micros()).unwrap_or(u64::MAX));
            batch.next().invoke_script(&call);
        }
        for (key, state) in &ex.keys {
            let (kind, left) = match state {
                SharedKeyState::Ready => (0, Duration::ZERO),
                SharedKeyState::Resting(d) => (1, *d),
                SharedKeyState::Parked(d) => (2, *d),
                SharedKeyState::Invalid => (3, INVALID_FOR),
            };
            let mut call = self
                .key_state
                .key(Self::key(namespace, &format!("key:{key}")));
            call.arg(kind).arg(ms(left));
            batch.next().invoke_script(&call);
        }
        for st in &ex.strict_settles {
            let key = Self::strict_key(namespace, &st.budget, st.window);
            let mut call = self.strict_settle.key(key);
            call.arg(&st.reservation).arg(st.spent);
            batch.next().invoke_script(&call).ignore();
        }
        if let Some(stats) = &ex.stats {
            let key = Self::key(namespace, "stats");
            let pipe = batch.next();
            pipe.hset(&key, replica, stats).ignore();
            pipe.pexpire(&key, ms(STATS_TTL) as i64).ignore();
        }
        let mut call = self.replicas.key(Self::key(namespace, "replicas"));
        call.arg(replica).arg(ms(ex.alive_for));
        batch.next().invoke_script(&call);
        batch
    }

    /// Loads the scripts (after the server answered `NOSCRIPT`: restarted, or flushed); on
    /// a cluster, on every node (the client sends `SCRIPT LOAD` to all of them).
    async fn load_scripts(&self) -> Result<(), Error> {
        let scripts = [
            &self.breaker,
            &self.calendar,
            &self.rolling,
            &self.lease,
            &self.key_state,
            &self.strict_reserve,
            &self.strict_settle,
            &self.replicas,
        ];
        let loads = scripts.iter().map(|s| async move {
            match &self.conn {
                Conn::Node(c) => s.load_async(&mut c.clone()).await,
                Conn::Cluster(c) => s.load_async(&mut c.clone()).await,
            }
        });
        for r in futures::future::join_all(loads).await {
            r.map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Sends one command.
    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let r = match &self.conn {
            Conn::Node(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        r.map_err(|e| self.error(e))
    }

    fn error(&self, e: redis::RedisError) -> Error {
        // A server's error reply (NOSCRIPT, CROSSSLOT, OOM…) carries a code: the server
        // answered, whatever the transport says.
        let kind = if e.code().is_some() {
            ErrorKind::Server
        } else if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            ErrorKind::Connect
        } else {
            ErrorKind::Server
        };
        let mut err = Error::new(kind, format!("store at {}: {e}", self.addr));
        if let Some(code) = e.code() {
            err = err.with_code(code);
        }
        err
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A reply's integer, from an integer or a decimal string.
fn int(v: &redis::Value) -> u64 {
    match v {
        redis::Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        redis::Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(0, |f| if f > 0.0 { f as u64 } else { 0 }),
        redis::Value::SimpleString(s) => s.parse::<f64>().map_or(0, |f| f.max(0.0) as u64),
        _ => 0,
    }
}

fn decode(ex: &Exchange, values: Vec<redis::Value>) -> Result<ExchangeReply, Error> {
    let sent = ex.breakers.len() + ex.spend.len() + ex.leases.len() + ex.keys.len() + 1;
    if values.len() != sent {
        return Err(Error::new(
            ErrorKind::Decode,
            format!("store answered {} values to {sent} commands", values.len()),
        ));
    }
    let mut values = values.into_iter();
    let mut reply = ExchangeReply::default();
    for _ in &ex.breakers {
        let view = match values.next() {
            Some(redis::Value::Array(parts)) if parts.len() == 3 => {
                let remaining = Duration::from_millis(int(&parts[1]));
                match int(&parts[0]) {
                    1 => FleetBreaker::Open { remaining },
                    2 => FleetBreaker::HalfOpen {
                        mine: int(&parts[2]) == 1,
                        remaining,
                    },
                    _ => FleetBreaker::Closed,
                }
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Decode,
                    "store answered a breaker with something else than 3 numbers",
                ));
            }
        };
        reply.breakers.push(view);
    }
    reply.spend = values
        .by_ref()
        .take(ex.spend.len())
        .map(|v| int(&v))
        .collect();
    for _ in &ex.leases {
        let grant = match values.next() {
            Some(redis::Value::Array(parts)) if parts.len() == 3 => LeaseGrant {
                slots: u32::try_from(int(&parts[0])).unwrap_or(u32::MAX),
                first_in: Duration::from_micros(int(&parts[1])),
                hold_left: Duration::from_micros(int(&parts[2])),
            },
            _ => {
                return Err(Error::new(
                    ErrorKind::Decode,
                    "store answered a lease with something else than 3 numbers",
                ));
            }
        };
        reply.leases.push(grant);
    }
    for _ in &ex.keys {
        let state = match values.next() {
            Some(redis::Value::Array(parts)) if parts.len() == 2 => {
                let left = Duration::from_millis(int(&parts[1]));
                match int(&parts[0]) {
                    1 => SharedKeyState::Resting(left),
                    2 => SharedKeyState::Parked(left),
                    3 => SharedKeyState::Invalid,
                    _ => SharedKeyState::Ready,
                }
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Decode,
                    "store answered a key state with something else than 2 numbers",
                ));
            }
        };
        reply.keys.push(state);
    }
    reply.replicas = values
        .next()
        .map_or(1, |v| u32::try_from(int(&v)).unwrap_or(u32::MAX));
    Ok(reply)
}

#[async_trait]
impl StateStore for RedisStore {
    async fn exchange(
        &self,
        namespace: &str,
        replica: &str,
        exchange: &Exchange,
    ) -> Result<ExchangeReply, Error> {
        let batch = self.commands(namespace, replica, exchange);
        let values = self.query(&batch).await?;
        decode(exchange, values)
    }

    async fn reserve_strict(
        &self,
        namespace: &str,
        reservation: &str,
        items: &[StrictItem],
    ) -> Result<Vec<Option<u64>>, Error> {
        let mut batch = self.batch();
        for item in items {
            let key = Self::strict_key(namespace, &item.budget, item.window);
            let mut call = self.strict_reserve.key(key);
            call.arg(reservation)
                .arg(item.amount)
                .arg(item.limit)
                .arg(ms(STRICT_RESERVATION_TTL));
            batch.next().invoke_script(&call);
        }
        let values = self.query(&batch).await?;
        if values.len() != items.len() {
            return Err(Error::new(
                ErrorKind::Decode,
                "store answered a strict reservation with the wrong number of values",
            ));
        }
        Ok(values
            .iter()
            .map(|v| match v {
                redis::Value::Array(parts) if parts.len() == 2 && int(&parts[0]) == 1 => None,
                redis::Value::Array(parts) if parts.len() == 2 => Some(int(&parts[1])),
                _ => Some(u64::MAX),
            })
            .collect())
    }

    async fn fleet_stats(&self, namespace: &str) -> Result<Vec<(String, String)>, Error> {
        let mut all: Vec<(String, String)> = self
            .command(redis::cmd("HGETALL").arg(Self::key(namespace, "stats")))
            .await?;
        all.sort();
        Ok(all)
    }

    async fn ping(&self) -> Result<(), Error> {
        self.command::<()>(&redis::cmd("PING")).await
    }
}

impl super::Store {
    /// A link to the Redis Cluster (or Valkey cluster) that `urls` lead to (some of its
    /// primaries, `redis://host:port`; one reachable is enough), connecting lazily: the relay
    /// builds and serves while the cluster is down, and joins the fleet when it comes up. See
    /// [`RedisStore::open_cluster`]; for a single server, [`Store::redis`](Self::redis).
    pub fn redis_cluster(urls: &[&str]) -> Result<Self, Error> {
        Ok(Self::new(RedisStore::open_cluster(
            urls,
            super::DEFAULT_STORE_TIMEOUT,
        )?))
    }
}

/// A Redis store's connection is made by a task of the current runtime: an error outside one.
fn in_runtime() -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::new(
            ErrorKind::Config,
            "a Redis store connects from the tokio runtime: open it inside one",
        ));
    }
    Ok(())
}

/// `timeout`, or [`DEFAULT_STORE_TIMEOUT`](super::DEFAULT_STORE_TIMEOUT) for zero.
fn or_default(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        super::DEFAULT_STORE_TIMEOUT
    } else {
        timeout
    }
}
