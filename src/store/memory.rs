//! [`MemoryStore`]: the fleet's state in this process's memory, for several relays in one
//! process and for tests. The same rules as the Redis store's scripts, on tokio's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    BreakerReport, Exchange, ExchangeReply, FleetBreaker, LeaseGrant, LeaseRequest,
    STRICT_RESERVATION_TTL, SharedKeyState, StateStore, StrictItem,
};
use crate::types::{Error, ErrorKind};

/// A [`StateStore`] in this process's memory: relays given clones of one `MemoryStore` share
/// their breakers and budgets as replicas sharing a Redis server do. Cheap to clone (an
/// `Arc` inside). It can also be switched off ([`set_available`](Self::set_available)) to
/// see a relay ride out a store failure.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    down: bool,
    exchanges: u64,
    breakers: HashMap<(String, String), Breaker>,
    /// Calendar windows: (namespace, budget, window) → replica → cumulative spend.
    calendar: HashMap<(String, String, u64), HashMap<String, u64>>,
    /// Rolling windows: (namespace, budget) → replica → its entry.
    rolling: HashMap<(String, String), HashMap<String, RollingEntry>>,
    /// Shared request limits: (namespace, bucket) → (next free slot, hold until).
    leases: HashMap<(String, String), (Instant, Instant)>,
    /// Pool keys: (namespace, key) → (kind 1–3, until).
    keys: HashMap<(String, String), (u8, Instant)>,
    /// Strict budgets: (namespace, budget, window) → (spent, reservation → (amount, until)).
    strict: HashMap<(String, String, u64), StrictWindow>,
    /// Published stats: namespace → replica → JSON.
    stats: HashMap<String, HashMap<String, String>>,
    /// Live replicas: namespace → replica → live until.
    replicas: HashMap<String, HashMap<String, Instant>>,
}

/// A strict budget window: settled spend, and reservations by id with their amount and
/// expiry.
type StrictWindow = (u64, HashMap<String, (u64, Instant)>);

/// A replica's rolling total: (seq, spend, written at).
type RollingEntry = (u64, u64, Instant);

#[derive(Debug)]
struct Breaker {
    until: Instant,
    probe: Option<(String, Instant)>,
}

impl MemoryStore {
    /// An empty store, available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail (`false`) or succeed again (`true`), as a store that went down
    /// and came back with its data. Default: available.
    pub fn set_available(&self, available: bool) {
        self.lock().down = !available;
    }

    /// How many exchanges the store has answered.
    pub fn exchanges(&self) -> u64 {
        self.lock().exchanges
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unavailable() -> Error {
    Error::new(ErrorKind::Connect, "the memory store is switched off")
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn exchange(
        &self,
        namespace: &str,
        replica: &str,
        exchange: &Exchange,
    ) -> Result<ExchangeReply, Error> {
        let mut s = self.lock();
        if s.down {
            return Err(unavailable());
        }
        s.exchanges += 1;
        let now = Instant::now();
        let mut reply = ExchangeReply::default();
        for (target, report) in &exchange.breakers {
            let key = (namespace.to_string(), target.clone());
            reply
                .breakers
                .push(breaker(&mut s.breakers, key, replica, report, now));
        }
        for r in &exchange.spend {
            let total = match r.window {
                Some(window) => {
                    let key = (namespace.to_string(), r.budget.clone(), window);
                    let fields = s.calendar.entry(key).or_default();
                    let mine = fields.entry(replica.to_string()).or_default();
                    *mine = (*mine).max(r.spent);
                    fields.values().fold(0u64, |a, v| a.saturating_add(*v))
                }
                None => {
                    let key = (namespace.to_string(), r.budget.clone());
                    let fields = s.rolling.entry(key).or_default();
                    let entry = fields.entry(replica.to_string()).or_insert((0, 0, now));
                    if r.seq >= entry.0 {
                        *entry = (r.seq, r.spent, now);
                    }
                    fields
                        .values()
                        .filter(|(_, _, at)| now.saturating_duration_since(*at) < r.period)
                        .fold(0u64, |a, (_, v, _)| a.saturating_add(*v))
                }
            };
            reply.spend.push(total);
        }
        for l in &exchange.leases {
            let key = (namespace.to_string(), l.bucket.clone());
            let entry = s.leases.entry(key).or_insert((now, now));
            reply.leases.push(lease(entry, l, now));
        }
        for (key, state) in &exchange.keys {
            let entry = s.keys.entry((namespace.to_string(), key.clone()));
            reply.keys.push(merge_key(entry, *state, now));
        }
        for st in &exchange.strict_settles {
            let key = (namespace.to_string(), st.budget.clone(), st.window);
            if let Some((spent, held)) = s.strict.get_mut(&key)
                && held.remove(&st.reservation).is_some()
            {
                *spent = spent.saturating_add(st.spent);
            }
        }
        if let Some(stats) = &exchange.stats {
            s.stats
                .entry(namespace.to_string())
                .or_default()
                .insert(replica.to_string(), stats.clone());
        }
        let live = s.replicas.entry(namespace.to_string()).or_default();
        live.insert(
            replica.to_string(),
            now.checked_add(exchange.alive_for).unwrap_or(now),
        );
        live.retain(|_, until| *until > now);
        reply.replicas = u32::try_from(live.len()).unwrap_or(u32::MAX);
        Ok(reply)
    }

    async fn ping(&self) -> Result<(), Error> {
        if self.lock().down {
            Err(unavailable())
        } else {
            Ok(())
        }
    }

    async fn reserve_strict(
        &self,
        namespace: &str,
        reservation: &str,
        items: &[StrictItem],
    ) -> Result<Vec<Option<u64>>, Error> {
        let mut s = self.lock();
        if s.down {
            return Err(unavailable());
        }
        let now = Instant::now();
        let until = now.checked_add(STRICT_RESERVATION_TTL).unwrap_or(now);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let key = (namespace.to_string(), item.budget.clone(), item.window);
            let (spent, held) = s.strict.entry(key).or_default();
            held.retain(|_, (_, exp)| *exp > now);
            let used = held
                .values()
                .fold(*spent, |a, (amount, _)| a.saturating_add(*amount));
            if used.saturating_add(item.amount) > item.limit {
                out.push(Some(used));
            } else {
                held.insert(reservation.to_string(), (item.amount, until));
                out.push(None);
            }
        }
        Ok(out)
    }

    async fn fleet_stats(&self, namespace: &str) -> Result<Vec<(String, String)>, Error> {
        let s = self.lock();
        if s.down {
            return Err(unavailable());
        }
        let mut all: Vec<_> = s
            .stats
            .get(namespace)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        all.sort();
        Ok(all)
    }
}

/// The breaker rules (the Redis store's script does the same).
fn breaker(
    all: &mut HashMap<(String, String), Breaker>,
    key: (String, String),
    replica: &str,
    report: &BreakerReport,
    now: Instant,
) -> FleetBreaker {
    let later = |d: Duration| now.checked_add(d).unwrap_or(now);
    match report {
        BreakerReport::Open { open_for } => {
            let until = later(*open_for);
            let b = all
                .entry(key.clone())
                .or_insert(Breaker { until, probe: None });
            b.until = b.until.max(until);
            b.probe = None;
        }
        BreakerReport::Close => {
            all.remove(&key);
            return FleetBreaker::Closed;
        }
        BreakerReport::Read | BreakerReport::WantProbe { .. } => {}
    }
    let Some(b) = all.get_mut(&key) else {
        return FleetBreaker::Closed;
    };
    if now < b.until {
        return FleetBreaker::Open {
            remaining: b.until - now,
        };
    }
    if let Some((holder, until)) = &b.probe
        && *until > now
    {
        return FleetBreaker::HalfOpen {
            mine: holder == replica,
            remaining: *until - now,
        };
    }
    if let BreakerReport::WantProbe { lease_for } = report {
        b.probe = Some((replica.to_string(), later(*lease_for)));
        return FleetBreaker::HalfOpen {
            mine: true,
            remaining: *lease_for,
        };
    }
    FleetBreaker::HalfOpen {
        mine: false,
        remaining: Duration::ZERO,
    }
}

/// The lease rules (the Redis store's script does the same): the next free slots of the
/// schedule, none past the horizon; a hold only ever extends.
fn lease(entry: &mut (Instant, Instant), l: &LeaseRequest, now: Instant) -> LeaseGrant {
    let (next, hold) = entry;
    if !l.hold.is_zero() {
        *hold = (*hold).max(now.checked_add(l.hold).unwrap_or(now));
    }
    let hold_left = hold.saturating_duration_since(now);
    let start = (*next).max(now.checked_sub(l.burst).unwrap_or(now));
    let horizon = now.checked_add(l.horizon).unwrap_or(now);
    if l.want == 0 || start > horizon || l.spacing.is_zero() {
        return LeaseGrant {
            slots: 0,
            first_in: start.saturating_duration_since(now),
            hold_left,
        };
    }
    let room = (horizon - start).as_nanos() / l.spacing.as_nanos() + 1;
    let slots = u32::try_from(room).unwrap_or(u32::MAX).min(l.want);
    *next = start
        .checked_add(l.spacing.saturating_mul(slots))
        .unwrap_or(start);
    LeaseGrant {
        slots,
        first_in: start.saturating_duration_since(now),
        hold_left,
    }
}

/// How long the store keeps a key's invalid mark.
const INVALID_FOR: Duration = Duration::from_secs(3_600);

/// The key rules (the Redis store's script does the same): the longest absence wins, an
/// invalid mark stays [`INVALID_FOR`].
fn merge_key(
    entry: std::collections::hash_map::Entry<'_, (String, String), (u8, Instant)>,
    state: SharedKeyState,
    now: Instant,
) -> SharedKeyState {
    let later = |d: Duration| now.checked_add(d).unwrap_or(now);
    let mine = match state {
        SharedKeyState::Ready => None,
        SharedKeyState::Resting(d) => Some((1, later(d))),
        SharedKeyState::Parked(d) => Some((2, later(d))),
        SharedKeyState::Invalid => Some((3, later(INVALID_FOR))),
    };
    let stored = entry.or_insert((0, now));
    if let Some((kind, until)) = mine {
        let live = stored.1 > now;
        if !live || kind == 3 && stored.0 != 3 || (stored.0 != 3 && until > stored.1) {
            *stored = (kind, until);
        }
    }
    let left = stored.1.saturating_duration_since(now);
    match stored.0 {
        _ if left.is_zero() => SharedKeyState::Ready,
        1 => SharedKeyState::Resting(left),
        2 => SharedKeyState::Parked(left),
        3 => SharedKeyState::Invalid,
        _ => SharedKeyState::Ready,
    }
}
