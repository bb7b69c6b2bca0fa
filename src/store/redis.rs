//! [`RedisStore`]: the fleet's state in Redis or Valkey, with the `redis` crate's
//! connection manager (one multiplexed connection, reconnecting by itself, made lazily) and
//! three Lua scripts sent by `EVALSHA` (reloaded when the server answers `NOSCRIPT`, as after
//! a restart). Time is the server's (`TIME`), so the replicas' clocks may disagree.
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

/// A [`StateStore`] on a Redis (or Valkey) server.
///
/// ```no_run
/// # fn demo() -> Result<(), polyrelay::Error> {
/// use polyrelay::store::{RedisStore, Store};
/// let store = Store::new(RedisStore::open("redis://127.0.0.1:6379/", Default::default())?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// `host:port` only: a URL may carry a password.
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

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
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
        // The connection is made by a task of the current runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                ErrorKind::Config,
                "a Redis store connects from the tokio runtime: open it inside one",
            ));
        }
        let client = Client::open(url)
            .map_err(|e| Error::new(ErrorKind::Config, format!("store url does not parse: {e}")))?;
        let info = client.get_connection_info();
        let addr = info.addr().to_string();
        let timeout = if timeout.is_zero() {
            super::DEFAULT_STORE_TIMEOUT
        } else {
            timeout
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::new(ErrorKind::Config, format!("store at {addr}: {e}")))?;
        Ok(RedisStore {
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
        })
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

    /// Sends `pipe`, loading the scripts and sending it again if the server lost them.
    async fn query(&self, pipe: &redis::Pipeline) -> Result<Vec<redis::Value>, Error> {
        let mut conn = self.conn.clone();
        match pipe.query_async::<Vec<redis::Value>>(&mut conn).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                self.load_scripts().await?;
                pipe.query_async::<Vec<redis::Value>>(&mut conn)
                    .await
                    .map_err(|e| self.error(e))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    fn pipeline(&self, namespace: &str, replica: &str, ex: &Exchange) -> redis::Pipeline {
        let mut pipe = redis::pipe();
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
            pipe.invoke_script(&call);
        }
        for r in &ex.spend {
            let entity = format!("b:{}", r.budget);
            match r.window {
                Some(window) => {
                    let key = format!("{}:{window}", Self::key(namespace, &entity));
                    let mut call = self.calendar.key(key);
                    call.arg(replica).arg(r.spent).arg(ms(CALENDAR_TTL));
                    pipe.invoke_script(&call);
                }
                None => {
                    let key = format!("{}:rolling", Self::key(namespace, &entity));
                    let mut call = self.rolling.key(key);
                    call.arg(replica).arg(r.seq).arg(r.spent).arg(ms(r.period));
                    pipe.invoke_script(&call);
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
            pipe.invoke_script(&call);
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
            pipe.invoke_script(&call);
        }
        for st in &ex.strict_settles {
            let key = Self::strict_key(namespace, &st.budget, st.window);
            let mut call = self.strict_settle.key(key);
            call.arg(&st.reservation).arg(st.spent);
            pipe.invoke_script(&call).ignore();
        }
        if let Some(stats) = &ex.stats {
            let key = Self::key(namespace, "stats");
            pipe.hset(&key, replica, stats).ignore();
            pipe.pexpire(&key, ms(STATS_TTL) as i64).ignore();
        }
        let mut call = self.replicas.key(Self::key(namespace, "replicas"));
        call.arg(replica).arg(ms(ex.alive_for));
        pipe.invoke_script(&call);
        pipe
    }

    /// Loads the scripts (after the server answered `NOSCRIPT`: restarted, or flushed).
    async fn load_scripts(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.load_script(&self.breaker)
            .load_script(&self.calendar)
            .load_script(&self.rolling)
            .load_script(&self.lease)
            .load_script(&self.key_state)
            .load_script(&self.strict_reserve)
            .load_script(&self.strict_settle)
            .load_script(&self.replicas);
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: redis::RedisError) -> Error {
        let kind = if e.is_timeout() {
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
        let pipe = self.pipeline(namespace, replica, exchange);
        let values = self.query(&pipe).await?;
        decode(exchange, values)
    }

    async fn reserve_strict(
        &self,
        namespace: &str,
        reservation: &str,
        items: &[StrictItem],
    ) -> Result<Vec<Option<u64>>, Error> {
        let mut pipe = redis::pipe();
        for item in items {
            let key = Self::strict_key(namespace, &item.budget, item.window);
            let mut call = self.strict_reserve.key(key);
            call.arg(reservation)
                .arg(item.amount)
                .arg(item.limit)
                .arg(ms(STRICT_RESERVATION_TTL));
            pipe.invoke_script(&call);
        }
        let values = self.query(&pipe).await?;
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
        let mut conn = self.conn.clone();
        let mut all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(Self::key(namespace, "stats"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        all.sort();
        Ok(all)
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }
}
