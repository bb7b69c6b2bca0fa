//! Shared state for a fleet of relays: the [`StateStore`] trait through which replicas of
//! one application exchange breaker transitions, rate-limit leases, pool keys' states,
//! budget spend and stats, and its backends — [`MemoryStore`] (several relays in one
//! process, and tests) and, behind the `redis` cargo feature, `RedisStore` (Redis or Valkey:
//! one server with `Store::redis`, a cluster with `Store::redis_cluster`; for replicas in
//! separate processes).
//!
//! Without a store (the default) a relay keeps all its state in its own memory, as before.
//! With one ([`RelayBuilder::store`](crate::RelayBuilder::store)), **no request waits on the
//! store**: a request reads and writes local memory only, and one background task per relay
//! exchanges state with the store every [`Store::sync_interval`] (default 250 ms), and at
//! once when a breaker changes. What the fleet shares:
//!
//! - **Breakers.** A replica that opens a target's breaker publishes it; the others hold the
//!   target open within one or two sync intervals. After the cooldown, one replica in the
//!   whole fleet takes a lease and sends the one probe; its outcome closes or reopens the
//!   breaker everywhere. Failures are counted by each replica on its own traffic.
//! - **Budgets.** Each replica writes its own spend in each budget's window (a calendar
//!   window: its cumulative spend there, merged by max, so a write repeated after a timeout
//!   changes nothing; a rolling window: its current total, newest write wins) and reads the
//!   fleet's total; a request is admitted against the others' spend plus its replica's own,
//!   so the fleet overshoots a budget by at most what the replicas spend in one sync
//!   interval plus what is in flight.
//!
//! When the store fails (down, frozen, slow, refusing writes, restarted empty) requests go on
//! on local state: every store call has a timeout ([`Store::timeout`]), the first error marks
//! the store degraded, and the task retries with a growing pause; spend keeps counting and
//! reaches the store when it returns, so the fleet's totals are exact again.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::types::{Error, ErrorKind};

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// Default pause between two exchanges with the store: 250 ms.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// Default bound on one exchange with the store: 100 ms.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(100);
/// Default longest pause between two attempts to reach a failing store: 5 s.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Default namespace of a store's keys: `"default"`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What one replica tells the fleet about one target's breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerReport {
    /// Nothing new: only read the fleet's view.
    Read,
    /// The breaker opened here for this long (a new opening never shortens one in force).
    Open {
        /// How long it stays open.
        open_for: Duration,
    },
    /// The target answered here: the breaker closes everywhere.
    Close,
    /// The cooldown is over and a request here wants to probe: take the fleet's probe lease
    /// for this long, if nobody holds it.
    WantProbe {
        /// How long the lease lasts if its holder never reports.
        lease_for: Duration,
    },
}

/// A target's breaker as the fleet sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetBreaker {
    /// Closed: no replica holds it open.
    Closed,
    /// Open for this much longer.
    Open {
        /// Time left before the cooldown ends.
        remaining: Duration,
    },
    /// The cooldown is over; the probe lease is free, held by this replica, or held by
    /// another one for `remaining`.
    HalfOpen {
        /// Whether this replica holds the probe lease.
        mine: bool,
        /// Time left on the lease (zero when nobody holds it).
        remaining: Duration,
    },
}

/// One budget window's spend written by a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpendReport {
    /// The budget's name.
    pub budget: String,
    /// The window: a calendar window's number, or `None` for a rolling window.
    pub window: Option<u64>,
    /// The replica's spend in the window, in the budget's integer units (nano-dollars or
    /// tokens): cumulative for a calendar window (it only grows within a window), the
    /// current total for a rolling one.
    pub spent: u64,
    /// A rolling window's length: entries older than this no longer count.
    pub period: Duration,
    /// The replica's write sequence (a rolling entry is replaced only by a newer one).
    pub seq: u64,
}

/// A replica's request for slots of a shared limit, and its news of a vendor's hold.
///
/// The fleet's requests (or tokens) are one schedule of slots `spacing` apart (server time),
/// whoever sends them: a lease is the next `n ≤ want` free slots from
/// `max(next free, now - burst)`, none later than `horizon` from now.
/// A replica sends a request in a slot no earlier than its time, so however the slots are
/// spread over the replicas, the fleet never sends two requests closer than the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRequest {
    /// The limit's name (`target:<provider/model>`, `provider:<name>`, `key:<provider>:<fingerprint>`).
    pub bucket: String,
    /// Slots wanted (0: only read the hold).
    pub want: u32,
    /// The schedule's step.
    pub spacing: Duration,
    /// How far ahead slots may be leased.
    pub horizon: Duration,
    /// How far behind now the schedule may resume after a quiet spell: zero for a requests
    /// limit (no burst), the limit's period for a tokens bucket (it refills to a period's
    /// worth).
    pub burst: Duration,
    /// A vendor asked to wait this long (a 429's `Retry-After`, rate-limit headers): the
    /// whole fleet holds. Zero: no news.
    pub hold: Duration,
}

/// Slots granted by a [`LeaseRequest`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseGrant {
    /// Slots granted (may be 0: the schedule is booked past the horizon).
    pub slots: u32,
    /// When the first slot is, from the store's now; the others follow every `spacing`.
    pub first_in: Duration,
    /// How much longer the fleet holds the limit (zero: no hold).
    pub hold_left: Duration,
}

/// A pool key's state as one replica has it, and as the fleet merges it: the longest
/// absence wins, and an invalid mark stays (for an hour at the store, so a key fixed at the
/// vendor comes back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedKeyState {
    /// Usable.
    #[default]
    Ready,
    /// Resting (a 429) for this much longer.
    Resting(Duration),
    /// Parked (quota exhausted) for this much longer.
    Parked(Duration),
    /// Refused by the vendor (401).
    Invalid,
}

/// One budget window of a strict reservation ([`StateStore::reserve_strict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StrictItem {
    /// The budget's name.
    pub budget: String,
    /// The calendar window's number.
    pub window: u64,
    /// The amount to reserve (the call's estimate), in the budget's integer units.
    pub amount: u64,
    /// The budget's limit, in the same units.
    pub limit: u64,
}

/// A strict reservation's end: what the call spent, replacing what it reserved (once: a
/// settle repeated, or for a reservation already settled or expired, changes nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StrictSettle {
    /// The budget's name.
    pub budget: String,
    /// The calendar window's number the reservation was made in.
    pub window: u64,
    /// The reservation's id.
    pub reservation: String,
    /// What the call spent, in the budget's integer units (0 gives the reservation back).
    pub spent: u64,
}

/// How long the store keeps a strict reservation that is never settled (its replica died):
/// a day, the longest a call may last.
pub const STRICT_RESERVATION_TTL: Duration = Duration::from_secs(86_400);

/// What a replica sends the store in one exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exchange {
    /// Breakers, by target (`provider/model`).
    pub breakers: Vec<(String, BreakerReport)>,
    /// Budget windows.
    pub spend: Vec<SpendReport>,
    /// Shared request limits.
    pub leases: Vec<LeaseRequest>,
    /// Pool keys (`<provider>:<fingerprint>`) with their state here.
    pub keys: Vec<(String, SharedKeyState)>,
    /// How long this replica counts as live without another exchange (for
    /// [`ExchangeReply::replicas`]).
    pub alive_for: Duration,
    /// Strict reservations ended since the last exchange.
    pub strict_settles: Vec<StrictSettle>,
    /// This replica's stats since start, as JSON, to publish for
    /// [`StateStore::fleet_stats`] (sent every few exchanges, not every one).
    pub stats: Option<String>,
}

/// What the store answers an [`Exchange`], in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeReply {
    /// The fleet's view of each breaker sent.
    pub breakers: Vec<FleetBreaker>,
    /// The fleet's total spend in each budget window sent (this replica's included).
    pub spend: Vec<u64>,
    /// The grant for each lease request sent.
    pub leases: Vec<LeaseGrant>,
    /// The fleet's state of each pool key sent.
    pub keys: Vec<SharedKeyState>,
    /// Replicas live in the namespace (this one included).
    pub replicas: u32,
}

/// Where the replicas of a fleet share their state. Implemented by [`MemoryStore`] and
/// (feature `redis`) [`RedisStore`]; implement it to share through something else.
///
/// Every method is called by the relay's background task, never on a request's path, under
/// [`Store::timeout`]. `replica` is the calling relay's id ([`Store::replica_id`]).
/// Implementations must make every write idempotent: the task repeats an exchange that
/// failed or timed out (a calendar spend is merged by max, a rolling one by `seq`, a
/// breaker opening by the later end).
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug + 'static {
    /// Applies `exchange` and reads the fleet's view, in one round trip if it can.
    async fn exchange(
        &self,
        namespace: &str,
        replica: &str,
        exchange: &Exchange,
    ) -> Result<ExchangeReply, Error>;

    /// Checks that the store answers (used while it is degraded).
    async fn ping(&self) -> Result<(), Error>;

    /// Every replica's last published stats (from [`Exchange::stats`]), as (replica, JSON).
    async fn fleet_stats(&self, namespace: &str) -> Result<Vec<(String, String)>, Error>;

    /// Reserves each item under `reservation` if the fleet's spend and reservations in its
    /// window leave room for it: one round trip, on the request's path (a strict budget's
    /// price). Answers, for each item, `None` (reserved) or `Some(used)` (refused: the
    /// fleet's spend and reservations). All or nothing is the caller's: it settles at 0 the
    /// items reserved before a refusal.
    async fn reserve_strict(
        &self,
        namespace: &str,
        reservation: &str,
        items: &[StrictItem],
    ) -> Result<Vec<Option<u64>>, Error>;
}

/// A relay's link to its fleet: the shared [`StateStore`] and how to use it. Given to
/// [`RelayBuilder::store`](crate::RelayBuilder::store).
///
/// ```
/// use std::time::Duration;
/// use polyrelay::store::{MemoryStore, Store};
///
/// let shared = MemoryStore::new();
/// let store = Store::new(shared.clone())
///     .namespace("support-bot")
///     .sync_interval(Duration::from_millis(100));
/// assert_eq!(store.get_namespace(), "support-bot");
/// ```
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn StateStore>,
    namespace: String,
    sync_interval: Duration,
    timeout: Duration,
    max_backoff: Duration,
    replica: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("namespace", &self.namespace)
            .field("sync_interval", &self.sync_interval)
            .field("timeout", &self.timeout)
            .field("replica", &self.replica)
            .finish()
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.backend, &other.backend)
            && self.namespace == other.namespace
            && self.sync_interval == other.sync_interval
            && self.timeout == other.timeout
            && self.max_backoff == other.max_backoff
            && self.replica == other.replica
    }
}

impl Store {
    /// A link to `backend`, with namespace [`DEFAULT_NAMESPACE`], sync interval
    /// [`DEFAULT_SYNC_INTERVAL`] (250 ms), timeout [`DEFAULT_STORE_TIMEOUT`] (100 ms) and a
    /// random replica id.
    pub fn new(backend: impl StateStore) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// [`new`](Self::new) over a shared backend.
    pub fn from_arc(backend: Arc<dyn StateStore>) -> Self {
        Store {
            backend,
            namespace: DEFAULT_NAMESPACE.to_string(),
            sync_interval: DEFAULT_SYNC_INTERVAL,
            timeout: DEFAULT_STORE_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            replica: random_replica_id(),
        }
    }

    /// A link to the Redis (or Valkey) server at `url` (`redis://host:port/db`,
    /// `rediss://…` for TLS is not built in), connecting lazily: the relay builds and serves
    /// while the server is down, and joins the fleet when it comes up.
    #[cfg(feature = "redis")]
    pub fn redis(url: &str) -> Result<Self, Error> {
        Ok(Self::new(RedisStore::open(url, DEFAULT_STORE_TIMEOUT)?))
    }

    /// Separates fleets sharing one store: replicas share state only within a namespace.
    /// Default: [`DEFAULT_NAMESPACE`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The pause between two exchanges with the store. Default: [`DEFAULT_SYNC_INTERVAL`]
    /// (250 ms); from 10 ms to 60 s.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// The bound on one exchange with the store; past it the store counts as failing.
    /// Default: [`DEFAULT_STORE_TIMEOUT`] (100 ms); from 1 ms to 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest pause between two attempts to reach a failing store (the pause doubles
    /// from the sync interval up to this; a value below the sync interval counts as the
    /// interval). Default: [`DEFAULT_MAX_BACKOFF`] (5 s); at most 600 s.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// This relay's id in the fleet: unique per replica (a restarted replica should take a
    /// new one, or its calendar spend must start where it left). Default: random.
    pub fn replica_id(mut self, id: impl Into<String>) -> Self {
        self.replica = id.into();
        self
    }

    /// The namespace.
    pub fn get_namespace(&self) -> &str {
        &self.namespace
    }

    /// The replica id.
    pub fn get_replica_id(&self) -> &str {
        &self.replica
    }

    /// The sync interval.
    pub fn get_sync_interval(&self) -> Duration {
        self.sync_interval
    }

    /// The timeout of one exchange.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest pause between attempts to reach a failing store (never below the sync
    /// interval).
    pub fn get_max_backoff(&self) -> Duration {
        self.max_backoff.max(self.sync_interval)
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn StateStore> {
        &self.backend
    }

    /// Checks the settings: a namespace and replica id of 1 to 128 characters without
    /// braces or `:`, an interval of 10 ms to 60 s, a timeout of 1 ms to 10 s.
    pub fn validate(&self) -> Result<(), Error> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && !s.contains(['{', '}', ':'])
                && !s.contains(char::is_whitespace)
        };
        let problem = if !name_ok(&self.namespace) {
            Some(format!(
                "store namespace {:?} must be 1 to 128 characters without braces, ':' or spaces",
                crate::types::truncate_utf8(&self.namespace, 128)
            ))
        } else if !name_ok(&self.replica) {
            Some(format!(
                "store replica id {:?} must be 1 to 128 characters without braces, ':' or spaces",
                crate::types::truncate_utf8(&self.replica, 128)
            ))
        } else if !(Duration::from_millis(10)..=Duration::from_secs(60))
            .contains(&self.sync_interval)
        {
            Some(format!(
                "store sync_interval {:?} must be from 10 ms to 60 s",
                self.sync_interval
            ))
        } else if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&self.timeout) {
            Some(format!(
                "store timeout {:?} must be from 1 ms to 10 s",
                self.timeout
            ))
        } else if self.max_backoff > Duration::from_secs(600) {
            Some(format!(
                "store max_backoff {:?} must be at most 600 s",
                self.max_backoff
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::new(ErrorKind::Config, p)),
            None => Ok(()),
        }
    }
}

/// The state of a relay's link to its store, as
/// [`Relay::store_health`](crate::Relay::store_health) reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct StoreHealth {
    /// Whether the last exchange succeeded (`false` before the first one and while the
    /// store fails: the relay then runs on local state).
    pub up: bool,
    /// This relay's replica id.
    pub replica: String,
    /// The namespace.
    pub namespace: String,
    /// Replicas live in the namespace at the last exchange (this one included).
    pub replicas: u32,
    /// Exchanges that succeeded since the relay was built.
    pub exchanges: u64,
    /// Exchanges that failed or timed out since the relay was built.
    pub failures: u64,
    /// Consecutive failures now (0 when up).
    pub consecutive_failures: u32,
    /// The last failure's message, if any failed.
    pub last_error: Option<String>,
    /// How long ago the last exchange succeeded, if one did.
    #[serde(serialize_with = "millis_some")]
    pub last_sync_ago: Option<Duration>,
}

/// A replica id unlikely to repeat: 16 hex digits from the process id, the time and
/// randomness.
fn random_replica_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = fastrand::u64(..) ^ nanos.rotate_left(17) ^ u64::from(std::process::id());
    format!("{mixed:016x}")
}

/// Serializes an optional duration as whole milliseconds (`null` for `None`).
fn millis_some<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}
