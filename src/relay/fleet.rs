//! The relay's side of a fleet ([`crate::store`]): one background task per relay that
//! exchanges breaker transitions and budget spend with the store every sync interval (and
//! at once when a breaker changes), and the store's health. Requests never wait on it: they
//! read and write the breakers' and budgets' local state, which this task keeps in step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Table;
use super::fleet_stats::{FleetStats, Published, merge};
use super::health::FleetLink;
use crate::spend::fleet_limits::{FleetSignals, Leased};
use crate::spend::limiter::Limiter;
use crate::store::{Exchange, Store, StoreHealth};
use crate::types::{Error, ErrorKind};

/// How often a replica publishes its stats.
const STATS_EVERY: Duration = Duration::from_secs(5);

/// The running task, stopped when the relay (its last clone) is dropped.
pub(crate) struct Fleet {
    task: tokio::task::JoinHandle<()>,
    status: Arc<Status>,
    store: Store,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("store", &self.store).finish()
    }
}

/// What the task knows of the store, read by [`Fleet::health`].
#[derive(Debug)]
struct Status {
    up: Arc<AtomicBool>,
    /// Replicas live in the namespace at the last exchange.
    replicas: Arc<AtomicU32>,
    /// Wakes the task for an exchange now, even while the store fails ([`Fleet::sync`]).
    force: Notify,
    /// Rounds started and finished, and whether the last finished one succeeded.
    rounds: tokio::sync::watch::Sender<(u64, u64, bool)>,
    exchanges: AtomicU64,
    failures: AtomicU64,
    consecutive: AtomicU32,
    last_error: Mutex<Option<String>>,
    last_ok: Mutex<Option<Instant>>,
}

impl Fleet {
    /// Starts the task for the relay whose table is `table`, on the current tokio runtime
    /// (a `Config` error outside one).
    pub fn start(store: Store, table: Weak<Table>) -> Result<Fleet, Error> {
        store.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "a relay with a store starts its sync task on the tokio runtime: build it inside one",
            )
        })?;
        let status = Arc::new(Status {
            up: Arc::default(),
            replicas: Arc::new(AtomicU32::new(1)),
            force: Notify::new(),
            rounds: tokio::sync::watch::Sender::new((0, 0, false)),
            exchanges: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            last_error: Mutex::new(None),
            last_ok: Mutex::new(None),
        });
        let wake = Arc::new(Notify::new());
        let signals = FleetSignals {
            up: status.up.clone(),
            started: Arc::new(AtomicBool::new(false)),
            wake: wake.clone(),
            replicas: status.replicas.clone(),
            refill_wait: store.get_timeout(),
            interval: store.get_sync_interval(),
        };
        // The limits are shared from the first request on: before the first exchange they
        // wait for it rather than run on their own.
        if let Some(t) = table.upgrade() {
            drop(shared_limits(&t.current.load(), &signals));
        }
        let task = runtime.spawn(run(store.clone(), table, status.clone(), wake, signals));
        Ok(Fleet {
            task,
            status,
            store,
        })
    }

    /// Runs an exchange now and waits for it: one that starts after this call.
    pub async fn sync(&self) -> Result<(), Error> {
        let mut rounds = self.status.rounds.subscribe();
        let after = rounds.borrow().0;
        self.status.force.notify_one();
        let done = rounds
            .wait_for(|&(_, finished, _)| finished > after)
            .await
            .map(|r| r.2)
            .unwrap_or(false);
        if done {
            Ok(())
        } else {
            let message = lock(&self.status.last_error)
                .clone()
                .unwrap_or_else(|| "the store sync task stopped".to_string());
            Err(Error::new(ErrorKind::Connect, message))
        }
    }

    /// Publishes this replica's stats, then reads and adds up the fleet's.
    pub async fn stats(&self) -> Result<FleetStats, Error> {
        self.sync().await?;
        let read = self.store.backend().fleet_stats(self.store.get_namespace());
        let published = tokio::time::timeout(self.store.get_timeout(), read)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the store did not answer within {:?}",
                        self.store.get_timeout()
                    ),
                )
            })??;
        merge(published)
    }

    /// The store's state.
    pub fn health(&self) -> StoreHealth {
        let s = &self.status;
        let up = s.up.load(Ordering::Relaxed);
        StoreHealth {
            up,
            replica: self.store.get_replica_id().to_string(),
            namespace: self.store.get_namespace().to_string(),
            replicas: s.replicas.load(Ordering::Relaxed),
            exchanges: s.exchanges.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            consecutive_failures: s.consecutive.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
            last_sync_ago: lock(&s.last_ok).map(|at| at.elapsed()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The task: wait (the sync interval, less when a breaker changed; a growing pause while the
/// store fails), exchange, apply; until the relay is gone.
async fn run(
    store: Store,
    table: Weak<Table>,
    status: Arc<Status>,
    wake: Arc<Notify>,
    signals: FleetSignals,
) {
    // Slots are leased two sync intervals ahead, so a busy replica's lease lasts until the
    // next exchange.
    let horizon = store.get_sync_interval().saturating_mul(2);
    let strict_queue = crate::spend::budget::StrictQueue {
        settles: Arc::default(),
        wake: wake.clone(),
    };
    let stats_every =
        (STATS_EVERY.as_millis() / store.get_sync_interval().as_millis().max(1)).max(1) as u64;
    let mut links: HashMap<String, Arc<FleetLink>> = HashMap::new();
    let mut seq: u64 = 0;
    let mut pause = Duration::ZERO;
    loop {
        let up = status.up.load(Ordering::Relaxed);
        let forced = tokio::select! {
            () = tokio::time::sleep(pause) => false,
            // A breaker changed, or wants the probe lease: tell the fleet now (unless the
            // store is failing: then the breakers decide alone, and the pause holds).
            () = wake.notified(), if up => false,
            () = status.force.notified() => true,
        };
        status.rounds.send_modify(|r| r.0 += 1);
        let Some(table) = table.upgrade() else {
            return;
        };
        let inner = table.current.load_full();
        drop(table);

        // Link every known target's breaker (a target first used since the last round joins
        // now), and gather what to tell the fleet.
        let states = inner.registry.all();
        let mut exchange = Exchange::default();
        let mut generations = Vec::with_capacity(states.len());
        let mut seen = Vec::with_capacity(states.len());
        for s in &states {
            let name = s.id.to_string();
            let link = links
                .entry(name.clone())
                .or_insert_with(|| Arc::new(FleetLink::new(status.up.clone(), wake.clone())));
            s.health.attach(link);
            if let Some((report, generation)) = s.health.fleet_report() {
                exchange.breakers.push((name.clone(), report));
                generations.push((s.clone(), generation));
            }
            seen.push(name);
        }
        links.retain(|name, _| seen.contains(name));
        let quotas = shared_limits(&inner, &signals);
        let replicas = status.replicas.load(Ordering::Relaxed);
        exchange.leases = quotas
            .iter()
            .map(|(_, q)| q.lease_request(horizon, replicas))
            .collect();
        let now = Instant::now();
        let rings: Vec<_> = inner
            .keys
            .iter()
            .map(|(p, r)| (p.clone(), r.clone()))
            .collect();
        let mut key_slots = Vec::new();
        for (provider, ring) in &rings {
            for i in 0..ring.len() {
                let name = format!("{provider}:{}", ring.label(i).fingerprint);
                exchange.keys.push((name, ring.shared_state(i, now)));
                key_slots.push((ring.clone(), i));
            }
        }
        exchange.alive_for = store
            .get_sync_interval()
            .saturating_mul(4)
            .max(store.get_max_backoff());
        seq = seq.wrapping_add(1);
        // Stats every few seconds (they are larger, and read rarely), and on demand.
        if forced || seq.is_multiple_of(stats_every) {
            exchange.stats = inner.acct.stats.as_ref().and_then(|s| {
                let snapshot = s.snapshot();
                serde_json::to_string(&Published {
                    total: &snapshot.total,
                })
                .ok()
            });
        }
        let budgets = inner.acct.budgets.clone();
        if let Some(b) = &budgets {
            exchange.spend = b.fleet_reports(seq);
            b.attach_strict(|| crate::spend::budget::StrictGate {
                store: store.backend().clone(),
                namespace: store.get_namespace().to_string(),
                timeout: store.get_timeout(),
                queue: strict_queue.clone(),
                up: status.up.clone(),
            });
        }
        exchange.strict_settles = std::mem::take(&mut *lock(&strict_queue.settles));
        drop(inner);

        let result = tokio::time::timeout(
            store.get_timeout(),
            store
                .backend()
                .exchange(store.get_namespace(), store.get_replica_id(), &exchange),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("the store did not answer within {:?}", store.get_timeout()),
            ))
        });
        match result {
            Ok(reply) => {
                let now = Instant::now();
                for ((state, generation), view) in generations.iter().zip(&reply.breakers) {
                    state.health.apply_fleet(*view, *generation, now);
                }
                if let Some(b) = &budgets {
                    b.apply_fleet(&exchange.spend, &reply.spend);
                }
                for ((at, quota), grant) in quotas.iter().zip(&reply.leases) {
                    if let Some(until) = quota.apply(*grant, now)
                        && let Some(limiter) = at.limiter()
                    {
                        limiter.hold_here(until);
                    }
                }
                for ((ring, i), state) in key_slots.iter().zip(&reply.keys) {
                    if let Some(changed) = ring.apply_shared_state(*i, *state, now) {
                        tracing::info!(
                            key = %ring.label(*i),
                            state = ?changed,
                            "pool key state taken from the fleet"
                        );
                    }
                }
                status
                    .replicas
                    .store(reply.replicas.max(1), Ordering::Relaxed);
                if !status.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        store.replica = store.get_replica_id(),
                        "fleet store reachable: sharing breakers and budgets"
                    );
                }
                status.exchanges.fetch_add(1, Ordering::Relaxed);
                status.consecutive.store(0, Ordering::Relaxed);
                *lock(&status.last_ok) = Some(now);
                pause = store.get_sync_interval();
                signals.started.store(true, Ordering::Release);
                status.rounds.send_modify(|r| {
                    r.1 = r.0;
                    r.2 = true;
                });
            }
            Err(e) => {
                // Strict settles go again with the next exchange (they are idempotent).
                lock(&strict_queue.settles).extend(exchange.strict_settles.drain(..));
                let n = status.consecutive.fetch_add(1, Ordering::Relaxed);
                status.failures.fetch_add(1, Ordering::Relaxed);
                if status.up.swap(false, Ordering::Relaxed) || n == 0 {
                    tracing::warn!(
                        error = %e,
                        "fleet store failing: breakers and budgets run on this replica's state until it answers"
                    );
                }
                *lock(&status.last_error) = Some(e.to_string());
                // Double the pause from the sync interval up to the longest, with jitter so
                // that replicas do not return all at once.
                let base = store
                    .get_sync_interval()
                    .saturating_mul(1u32 << n.min(16))
                    .min(store.get_max_backoff());
                pause = base.mul_f64(0.75 + fastrand::f64() * 0.5);
                signals.started.store(true, Ordering::Release);
                status.rounds.send_modify(|r| {
                    r.1 = r.0;
                    r.2 = false;
                });
            }
        }
    }
}

/// Where a rate limiter lives (held so the limiter outlives the exchange).
enum LimiterAt {
    Target(Arc<super::registry::TargetState>),
    Provider(Arc<Limiter>),
    Key(Arc<crate::spend::keys::KeyRing>, usize),
}

impl LimiterAt {
    fn limiter(&self) -> Option<&Limiter> {
        match self {
            LimiterAt::Target(s) => s.limiter.as_ref(),
            LimiterAt::Provider(l) => Some(l),
            LimiterAt::Key(ring, i) => ring.limiter(*i),
        }
    }
}

/// Every rate limiter with a requests limit, shared with the fleet under a name every
/// replica gives it: `target:<provider/model>`, `provider:<name>`,
/// `key:<provider>:<fingerprint>`.
fn shared_limits(
    inner: &super::Inner,
    signals: &FleetSignals,
) -> Vec<(Arc<LimiterAt>, Arc<dyn Leased>)> {
    let mut found = Vec::new();
    for s in inner.registry.all() {
        let bucket = format!("target:{}", s.id);
        found.push((LimiterAt::Target(s), bucket));
    }
    for (name, l) in inner.registry.provider_limiters() {
        found.push((LimiterAt::Provider(l.clone()), format!("provider:{name}")));
    }
    for (provider, ring) in &inner.keys {
        for i in 0..ring.len() {
            let bucket = format!("key:{provider}:{}", ring.label(i).fingerprint);
            found.push((LimiterAt::Key(ring.clone(), i), bucket));
        }
    }
    let mut out = Vec::new();
    for (at, bucket) in found {
        let at = Arc::new(at);
        let shared = at
            .limiter()
            .map(|l| l.attach_fleet(&bucket, signals))
            .unwrap_or_default();
        out.extend(shared.into_iter().map(|s| (at.clone(), s)));
    }
    out
}
