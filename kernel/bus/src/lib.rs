//! Kith's event bus: each plugin enabled in a shop is a subscriber with a
//! durable cursor on the shop's event log.
//!
//! A delivery takes the next batch of events the plugin subscribes to, builds
//! snapshots from the store, calls the plugin through the host, checks every
//! decision against the shop's grant and hands the decisions to the store,
//! which applies them in the transaction that moves the cursor. A failure is
//! recorded instead: retried with backoff, dead-lettered after too many
//! attempts, and after too many in a row the breaker disables the plugin for
//! that shop. Each subscriber is claimed by one worker at a time, so one
//! plugin's slow or failing deliveries never hold up another's. When other kernel
//! processes share the database ([`kith_core::Backend::shared`]), a worker also takes a
//! lease on the work in the database, so that no two processes call the same plugin on
//! the same batch (see [`BusConfig::lease_margin`]).
//!
//! The bus also manages the plugin lifecycle (install, enable, upgrade,
//! disable), re-drives dead letters and runs plugins over a whole shop.

mod clock;
mod lifecycle;
mod outbox;
mod package;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kith_core::Backend;
use kith_core::delivery::{Attempt, Chain, Effects, FailureOutcome, FailurePolicy, PluginRunStep};
use kith_core::outbox::OutboxPolicy;
use kith_core::prelude::*;
use kith_domain::FieldError;
use kith_domain::plugin::{
    Decision, EventSnapshot, Grant, InstalledPlugin, Kind, Manifest, Reads, ShopContext, Subject, Subscription, SubscriptionStatus,
};
use kith_host::{CallEnv, CallError, CallReport, Host, Input, KvUsage, LoadError, Output, Plugin, PluginEnv};

pub use crate::clock::{Clock, SystemClock, TestClock};
pub use crate::lifecycle::{EnableRequest, PluginStatus, REPORT_KEY, validate_config};
pub use crate::package::Package;

/// Errors of the bus's operations, in the terms the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Store(#[from] kith_core::Error),
    /// A value of the request was refused.
    #[error("{0}")]
    Invalid(FieldError),
    /// The plugin failed the call the request asked for.
    #[error("{0}")]
    Call(CallError),
}

impl From<FieldError> for BusError {
    fn from(err: FieldError) -> Self {
        BusError::Invalid(err)
    }
}

impl From<LoadError> for BusError {
    fn from(err: LoadError) -> Self {
        // The component is the truth about its WIT version; a manifest that disagrees is the one to fix.
        let field = if matches!(err, LoadError::ApiVersion { .. }) { "plugin.toml.api-version" } else { "plugin.wasm" };
        BusError::Invalid(FieldError::new(field, err.to_string()))
    }
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

/// Points batches expired per transaction.
const EXPIRY_BATCH: usize = 500;
/// Segments swept per pass.
const SWEEP_BATCH: usize = 20;

#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Events (or customers, in runs) per call, at most; a manifest may ask for fewer
    /// (`[limits] batch-size`).
    pub batch_size: usize,
    pub policy: FailurePolicy,
    /// Threads delivering to plugins.
    pub workers: usize,
    /// How long a shop's context (averages, quintiles) is reused.
    pub context_ttl: Duration,
    /// How often idle workers look for work nobody announced (writes by other processes, backoffs ending).
    pub poll: Duration,
    /// Retries and claims of the outbox.
    pub outbox: OutboxPolicy,
    /// Messages claimed per transaction.
    pub outbox_batch: usize,
    /// How often each segment is swept: time-based definitions re-evaluated whole,
    /// daily counts recorded.
    pub segment_sweep: chrono::Duration,
    /// Changed customers re-evaluated against their segments per transaction.
    pub segment_batch: usize,
    /// Due journey runs executed per transaction.
    pub journey_batch: usize,
    /// The window of plugins' emission rates (`[limits] events-per-minute`): a minute, in real
    /// time; tests shorten it.
    pub emission_window: Duration,
    /// On a database shared with other kernel processes, a worker holds a plugin's deliveries
    /// (or run batches) in a shop by a lease in the database, taken before it reads the batch
    /// and released when the attempt ends. A lease runs for the longest a call may take (the
    /// host's `max_timeout`) plus this margin, in real time: the margin covers reading the
    /// batch and committing its effects, and the clocks of the nodes differing. A process
    /// killed while it holds one leaves it to run out by itself, so its plugins wait that
    /// long at most before another process takes them up. An attempt outlasting its lease
    /// (storage slower than the margin) may meet another process's attempt on the same batch:
    /// the cursor's compare-and-set still applies the batch's effects once.
    pub lease_margin: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            batch_size: 500,
            policy: FailurePolicy::default(),
            workers: 2,
            context_ttl: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            outbox: OutboxPolicy::default(),
            outbox_batch: 20,
            segment_sweep: chrono::Duration::hours(1),
            segment_batch: 500,
            journey_batch: 200,
            emission_window: Duration::from_secs(60),
            lease_margin: Duration::from_secs(30),
        }
    }
}

/// What kind of work a worker holds a claim on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    Delivery(i64, String),
    Run(i64, String),
}

impl Work {
    /// The shop, and the work as its lease in the database names it.
    fn lease(&self) -> (i64, String) {
        match self {
            Work::Delivery(shop_id, plugin_id) => (*shop_id, format!("delivery:{plugin_id}")),
            Work::Run(shop_id, plugin_id) => (*shop_id, format!("run:{plugin_id}")),
        }
    }
}

pub struct Bus {
    store: Arc<dyn Backend>,
    host: Arc<Host>,
    clock: Arc<dyn Clock>,
    config: BusConfig,
    /// Loaded components by plugin id, version and sha256: two packages with the same
    /// component keep their own limits and declared hosts.
    plugins: Mutex<HashMap<(String, String, String), Arc<Plugin>>>,
    contexts: Arc<Contexts>,
    claimed: Mutex<HashSet<Work>>,
    /// This process among the kernels sharing the database: the holder of its leases.
    node: String,
    /// Events each plugin emitted in each shop in the last minute.
    emissions: Emissions,
    /// Groups of the outbox being sent, and whose turn is next.
    outbox: outbox::Senders,
    /// Workers held by calls that may run long and by the outbox's passes through such connectors: one budget.
    long_work: Shared,
    wake: (Mutex<u64>, Condvar),
    stop: AtomicBool,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Shop contexts by (shop, window), reused for a while: computing one reads every buyer of
/// the shop (seconds at a million customers). While one caller computes a newer one, the
/// others are served the one before at once instead of waiting for it.
///
/// A context is reused only while both clocks agree it is recent: less than the TTL of real
/// time since it was computed, and the kernel's clock less than the TTL past the time it was
/// computed at. The distributions (days since the last order) move with the kernel's clock,
/// and a test clock moves days at once: a context of yesterday is never served today, even
/// one whose computation began before the clock moved and finished after.
struct Contexts {
    store: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cache: Mutex<ContextCache>,
}

/// A shop and a window in days (`None`: all time).
type ContextKey = (i64, Option<u32>);

#[derive(Default)]
struct ContextCache {
    /// When each was computed, in real time and on the kernel's clock.
    computed: HashMap<ContextKey, (Instant, chrono::DateTime<chrono::Utc>, ShopContext)>,
    /// Contexts a caller is computing now.
    computing: HashSet<ContextKey>,
    /// Bumped by [`Contexts::clear`]: a context whose computation began before is not kept.
    generation: u64,
}

impl Contexts {
    fn get(&self, shop_id: i64, window_days: Option<u32>) -> Result<ShopContext, kith_core::Error> {
        let now = self.clock.now();
        let key = (shop_id, window_days);
        let generation = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, computed_at, ctx)) = cache.computed.get(&key)
                && self.recent_on_clock(*computed_at, now)
                && (at.elapsed() < self.ttl || cache.computing.contains(&key))
            {
                return Ok(ShopContext { now_ms: now.timestamp_millis(), ..ctx.clone() });
            }
            cache.computing.insert(key);
            cache.generation
        };
        let computing = Computing { contexts: self, key };
        let computed = self.store.shop_context(shop_id, now, window_days);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Kept unless the cache was cleared meanwhile, or holds one computed a little later
        // on the clock (by a caller that began after this one).
        if let Ok(ctx) = &computed
            && cache.generation == generation
            && cache.computed.get(&key).is_none_or(|(_, later, _)| *later <= now || !self.recent_on_clock(now, *later))
        {
            cache.computed.insert(key, (Instant::now(), now, ctx.clone()));
        }
        drop(cache);
        drop(computing);
        computed
    }

    /// Whether a context computed at `computed_at` on the kernel's clock still holds at `now`:
    /// not before it, and at most the TTL after.
    fn recent_on_clock(&self, computed_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> bool {
        (now - computed_at).to_std().is_ok_and(|age| age <= self.ttl)
    }

    fn clear(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.computed.clear();
        cache.generation += 1;
    }
}

/// A context being computed; no longer when dropped, also on a panic.
struct Computing<'a> {
    contexts: &'a Contexts,
    key: ContextKey,
}

impl Drop for Computing<'_> {
    fn drop(&mut self) {
        self.contexts.cache.lock().unwrap_or_else(|p| p.into_inner()).computing.remove(&self.key);
    }
}

/// The store, as one call's host functions see it: this shop and this plugin only.
struct StoreEnv {
    store: Arc<dyn Backend>,
    contexts: Arc<Contexts>,
    shop_id: i64,
    plugin_id: String,
}

impl PluginEnv for StoreEnv {
    fn read_customer(&mut self, id: i64) -> anyhow::Result<Option<kith_domain::model::Customer>> {
        // The `customers` import reads the whole customer, whatever the batches carry.
        Ok(self.store.snapshots(self.shop_id, &[id], Reads::ALL)?.remove(&id))
    }

    fn kv_get(&mut self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.store.plugin_kv_get(self.shop_id, &self.plugin_id, key)?)
    }

    fn kv_usage(&mut self) -> anyhow::Result<KvUsage> {
        let (keys, bytes) = self.store.plugin_kv_usage(self.shop_id, &self.plugin_id)?;
        Ok(KvUsage { keys, bytes })
    }

    fn histories(&mut self, ids: &[i64], since_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::History>> {
        Ok(self.store.histories(self.shop_id, ids, since_ms)?)
    }

    fn shop_context(&mut self, window_days: Option<u32>) -> anyhow::Result<ShopContext> {
        Ok(self.contexts.get(self.shop_id, window_days)?)
    }

    fn buyers(&mut self, after: Option<i64>, limit: usize, now_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::BuyerSummary>> {
        let now = chrono::DateTime::from_timestamp_millis(now_ms).ok_or_else(|| anyhow::anyhow!("clock out of range: {now_ms}"))?;
        Ok(self.store.buyer_summaries(self.shop_id, after, limit, now)?)
    }
}

/// Work held by one worker; released when the work is done, however it ends.
struct Claim<'a> {
    claimed: &'a Mutex<HashSet<Work>>,
    work: Work,
}

impl<'a> Claim<'a> {
    /// `None` when another worker holds the work.
    fn take(claimed: &'a Mutex<HashSet<Work>>, work: Work) -> Option<Claim<'a>> {
        let fresh = claimed.lock().unwrap_or_else(|p| p.into_inner()).insert(work.clone());
        // The guard is gone before a Claim exists: dropping one locks the set again.
        fresh.then(|| Claim { claimed, work })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.claimed.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.work);
    }
}

/// Work held in the database by this process, among the processes sharing it; released
/// when dropped, also on a panic. A release that fails leaves the lease to run out.
struct Lease<'a> {
    store: &'a dyn Backend,
    shop_id: i64,
    work: String,
    holder: &'a str,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.store.release_lease(self.shop_id, &self.work, self.holder) {
            tracing::warn!(shop = self.shop_id, work = %self.work, error = %err, "releasing a lease failed; it runs out by itself");
        }
    }
}

/// Work held by one worker of this process and, on a shared database, by this process
/// alone: the lease is released first, while the worker still holds the work here.
struct Holding<'a> {
    _lease: Option<Lease<'a>>,
    _claim: Claim<'a>,
}

/// Fair workers: calls whose deadline is longer than the host's default ("long" calls,
/// a manifest's `timeout-ms` above it) may hold all workers but one, across every shop
/// and plugin, so that a delivery with the default deadline always finds a worker within
/// that deadline, whatever slow plugins other shops (or the same one) run. A pass of the
/// outbox through a connector with a long deadline counts as long work too: long calls and
/// those passes share the one budget of `workers - 1`. With a single worker, they take it
/// in turn with the rest.
type Shared = Mutex<Held>;

/// The long work in progress: calls and outbox passes.
#[derive(Debug, Default)]
struct Held {
    calls: usize,
    passes: usize,
}

#[derive(Debug, Clone, Copy)]
enum Long {
    Call,
    Pass,
}

/// A worker held for one call or pass; a share is given back when dropped, also on a panic.
struct Slot<'a> {
    held: Option<(&'a Shared, Long)>,
}

impl<'a> Slot<'a> {
    /// One of `workers - 1` (at least one) places of `shared`, if one is free.
    fn take(shared: &'a Shared, workers: usize, long: Long) -> Option<Slot<'a>> {
        let mut held = shared.lock().unwrap_or_else(|p| p.into_inner());
        if held.calls + held.passes >= workers.saturating_sub(1).max(1) {
            return None;
        }
        match long {
            Long::Call => held.calls += 1,
            Long::Pass => held.passes += 1,
        }
        Some(Slot { held: Some((shared, long)) })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some((shared, long)) = self.held {
            let mut held = shared.lock().unwrap_or_else(|p| p.into_inner());
            match long {
                Long::Call => held.calls = held.calls.saturating_sub(1),
                Long::Pass => held.passes = held.passes.saturating_sub(1),
            }
        }
    }
}

/// How a call ended, as the bus records it.
enum Called {
    Decided(Vec<Decision>, CallReport),
    Failed(String, CallReport),
}

impl Bus {
    pub fn new(store: Arc<dyn Backend>, host: Arc<Host>, clock: Arc<dyn Clock>, config: BusConfig) -> Arc<Bus> {
        Arc::new(Bus {
            contexts: Arc::new(Contexts { store: store.clone(), clock: clock.clone(), ttl: config.context_ttl, cache: Mutex::default() }),
            store,
            host,
            clock,
            config,
            plugins: Mutex::new(HashMap::new()),
            claimed: Mutex::new(HashSet::new()),
            node: node_id(),
            emissions: Emissions::default(),
            outbox: outbox::Senders::default(),
            long_work: Mutex::default(),
            wake: (Mutex::new(0), Condvar::new()),
            stop: AtomicBool::new(false),
        })
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.store
    }

    /// This process among the kernels sharing the database (host, process id and a random
    /// part, made anew by each `Bus::new`): the holder its leases name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Calls that may run long (a deadline above the host's default) running now.
    pub fn long_calls_running(&self) -> usize {
        self.long_work.lock().unwrap_or_else(|p| p.into_inner()).calls
    }

    /// The kernel's clock (a test clock in tests).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The kernel's clock when it is a test clock, which may be moved.
    pub fn test_clock(&self) -> Option<&TestClock> {
        self.clock.as_test()
    }

    /// Start the worker threads; they run until [`Bus::stop`].
    pub fn start(self: &Arc<Self>) -> Vec<std::thread::JoinHandle<()>> {
        (0..self.config.workers.max(1))
            .map(|i| {
                let bus = self.clone();
                std::thread::Builder::new().name(format!("kith-bus-{i}")).spawn(move || bus.work()).expect("spawning a bus worker")
            })
            .collect()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.notify();
    }

    /// New events were written: wake the workers.
    pub fn notify(&self) {
        let (count, cond) = &self.wake;
        *count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cond.notify_all();
    }

    fn work(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let seen = *self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
            let done = match self.run_pending() {
                Ok(done) => done,
                Err(err) => {
                    tracing::error!("bus: {err:#}");
                    0
                }
            };
            if done == 0 {
                let (count, cond) = &self.wake;
                let guard = count.lock().unwrap_or_else(|p| p.into_inner());
                if *guard == seen {
                    // A timeout or a spurious wake-up only means another look for work.
                    let _ = cond.wait_timeout(guard, self.config.poll);
                }
            }
        }
    }

    /// Make one attempt at every delivery and run batch that is due now and
    /// not claimed by another worker. Returns how many were attempted.
    pub fn run_pending(&self) -> Result<usize> {
        let now = self.clock.now();
        // Every step of a pass is logged when it fails and leaves the rest of the pass to run.
        match self.store.start_scheduled_runs(now) {
            // Runs score against the shop as it is now.
            Ok(started) if started > 0 => self.refresh_contexts(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "starting scheduled runs failed"),
        }
        // Segment entries and exits first, so that this pass delivers their events. A
        // failure there is logged and leaves the rest of the pass to run.
        let mut done = 0;
        match self.store.refresh_segments(self.config.segment_batch, now) {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "re-evaluating changed customers against segments failed"),
        }
        match self.store.sweep_segments(self.config.segment_sweep, SWEEP_BATCH, now) {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "sweeping segments failed"),
        }
        // Journeys after segments (an entry event starts a run in the same pass) and
        // before the outbox (a message a step queued goes out in the same pass).
        match self.store.advance_journeys(now, self.config.journey_batch) {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "advancing journeys failed"),
        }
        // A delivery or run batch that fails in storage is recorded against its subscriber (see
        // `deliver`); one that fails before its batch is known, or because the machine's storage
        // is unavailable (a full disk, a busy lock: no fault of the plugin's, and nothing could be
        // recorded anyway), is logged and taken again on a later pass. Either way the pass goes on
        // to the others: no subscriber's failure stops another's deliveries, journeys or the outbox.
        let due = self.store.due_subscriptions(now).unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading due deliveries failed");
            Vec::new()
        });
        for due in due {
            if let Some(_claim) = self.claim(Work::Delivery(due.shop_id, due.plugin_id.clone())) {
                match self.deliver(due.shop_id, &due.plugin_id) {
                    Ok(true) => done += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(shop = due.shop_id, plugin = %due.plugin_id, error = %e, "delivery not made; taken again later")
                    }
                }
            }
        }
        let runs = self.store.due_plugin_runs(now).unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading due runs failed");
            Vec::new()
        });
        for (shop_id, plugin_id, run_id) in runs {
            if let Some(_claim) = self.claim(Work::Run(shop_id, plugin_id.clone())) {
                match self.run_batch(shop_id, &plugin_id, run_id) {
                    Ok(true) => done += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(shop = shop_id, plugin = %plugin_id, run = run_id, error = %e, "run batch not made; taken again later")
                    }
                }
            }
        }
        // One group of the outbox (a shop's channel) per pass, taken in turn; a group whose
        // connector may run long shares long calls' budget of all workers but one (outbox.rs).
        match self.send_due() {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "sending due messages failed"),
        }
        match self.store.expire_points(now, EXPIRY_BATCH) {
            Ok(n) => done += n,
            Err(e) => tracing::error!(error = %e, "expiring points failed"),
        }
        Ok(done)
    }

    /// Work until nothing is due (tests drive the bus with this and a test clock).
    pub fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let done = self.run_pending()?;
            if done == 0 {
                return Ok(total);
            }
            total += done;
        }
    }

    /// The work for this worker alone: claimed in this process and, when other processes
    /// share the database, leased there too. `None` when another worker or process holds it
    /// (or the lease could not be asked for: the work is taken again on a later pass).
    fn claim(&self, work: Work) -> Option<Holding<'_>> {
        let claim = Claim::take(&self.claimed, work)?;
        if !self.store.shared() {
            return Some(Holding { _lease: None, _claim: claim });
        }
        let (shop_id, name) = claim.work.lease();
        // Real time, not the kernel's clock (a test clock may stand still): leases are
        // compared across processes.
        let now = chrono::Utc::now();
        let until = chrono::Duration::from_std(self.host.config().max_timeout + self.config.lease_margin)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        match self.store.take_lease(shop_id, &name, &self.node, until, now) {
            Ok(true) => {
                let lease = Lease { store: &*self.store, shop_id, work: name, holder: &self.node };
                Some(Holding { _lease: Some(lease), _claim: claim })
            }
            Ok(false) => {
                tracing::trace!(shop = shop_id, work = %name, "held by another process");
                None
            }
            Err(err) => {
                tracing::error!(shop = shop_id, work = %name, error = %err, "taking a lease failed; taken again later");
                None
            }
        }
    }

    /// The component of an installed version, compiled once per process.
    fn plugin(&self, installed: &InstalledPlugin) -> Result<Arc<Plugin>> {
        let key = (installed.manifest.id.clone(), installed.manifest.version.to_string(), installed.sha256.clone());
        if let Some(plugin) = self.plugins.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(plugin.clone());
        }
        let wasm = self.store.plugin_wasm(&installed.sha256)?;
        let plugin = Arc::new(self.host.load(&installed.manifest, &wasm)?);
        self.plugins.lock().unwrap_or_else(|p| p.into_inner()).insert(key, plugin.clone());
        Ok(plugin)
    }

    /// The all-time context a batch is called with.
    fn context(&self, shop_id: i64) -> Result<ShopContext> {
        Ok(self.contexts.get(shop_id, None)?)
    }

    /// Forget cached shop contexts, so the next call sees the store as it is now.
    pub fn refresh_contexts(&self) {
        self.contexts.clear();
    }

    /// Events or customers per call of a plugin: the kernel's batch size, or fewer if
    /// its manifest asks.
    fn batch_size(&self, manifest: &Manifest) -> usize {
        let asked = manifest.limits.batch_size.map_or(usize::MAX, |n| n as usize);
        self.config.batch_size.min(asked).max(1)
    }

    /// What a call of a subscriber's plugin runs with.
    fn env(&self, sub: &Subscription) -> CallEnv {
        CallEnv {
            shop_id: sub.shop_id,
            grant: sub.grant.clone(),
            config: sub.config.clone(),
            now_ms: self.clock.now().timestamp_millis(),
            services: Box::new(StoreEnv {
                store: self.store.clone(),
                contexts: self.contexts.clone(),
                shop_id: sub.shop_id,
                plugin_id: sub.plugin_id.clone(),
            }),
        }
    }

    fn call(&self, plugin: &Plugin, sub: &Subscription, input: Input, chain: &Chain) -> Called {
        let subjects = input.subjects();
        let mut report = self.host.call(plugin, self.env(sub), input);
        match std::mem::replace(&mut report.output, Ok(Output::Decisions(Vec::new()))) {
            Ok(Output::Decisions(mut decisions)) => {
                match check(&sub.plugin_id, &sub.grant, &decisions, subjects).and_then(|()| chain.mark(&mut decisions)) {
                    Ok(()) => Called::Decided(decisions, report),
                    Err(refused) => Called::Failed(refused, report),
                }
            }
            Ok(other) => Called::Failed(format!("unexpected output {other:?}"), report),
            Err(err) => Called::Failed(err.to_string(), report),
        }
    }

    /// A worker for a call of `installed`, unless it may run long and long calls hold all
    /// workers but one already (see [`Shared`]).
    fn slot(&self, installed: &InstalledPlugin) -> Option<Slot<'_>> {
        let long = self.host.limits_for(&installed.manifest).timeout > self.host.config().default_timeout;
        if !long {
            return Some(Slot { held: None });
        }
        Slot::take(&self.long_work, self.config.workers, Long::Call)
    }

    /// One delivery attempt for a subscriber; `false` when it waits for a worker.
    fn deliver(&self, shop_id: i64, plugin_id: &str) -> Result<bool> {
        let sub = self.store.subscription(shop_id, plugin_id)?;
        if sub.status != SubscriptionStatus::Enabled || !sub.kind.subscribes() {
            return Ok(true);
        }
        let installed = self.store.plugin_version(plugin_id, &sub.version)?;
        // A plugin at its emission rate in this shop waits, like one waiting for a worker.
        if self.emissions_spent(&sub, &installed.manifest) {
            return Ok(false);
        }
        // A scoring model is called once per customer however many of their events a batch
        // holds, so its batches are counted in customers: a customer's tens of events in a row
        // made AIPL (behaviours and orders) a hundred-event delivery per three customers, one
        // after another on one worker.
        let scoring = sub.kind == Kind::ScoringModel;
        let batch = self.batch_size(&installed.manifest);
        let limit = if scoring { batch.saturating_mul(SCORING_EVENTS_PER_CUSTOMER) } else { batch };
        let (events, to) = self.store.events_for(shop_id, plugin_id, &installed.manifest.events, sub.cursor, None, limit)?;
        let (selected, to) = if scoring { up_to_customers(events, to, batch) } else { (events, to) };
        if to == sub.cursor {
            return Ok(true);
        }
        // A worker for long work is held for a call only, not to look for events.
        let Some(_slot) = self.slot(&installed) else { return Ok(false) };
        // From here the batch is known: whatever fails, storage included, is a failure of this
        // delivery (backoff, dead letter, breaker, `last_error`), never of the bus.
        match self.deliver_batch(&sub, &installed, selected, to) {
            Err(BusError::Store(kith_core::Error::Conflict(_))) => Ok(true),
            Err(BusError::Store(err)) if err.unavailable().is_some() => Err(err.into()),
            Err(err) => self.fail_delivery(&sub, sub.cursor, to, &format!("storage failure: {err}"), &[], Duration::ZERO).map(|()| true),
            Ok(()) => Ok(true),
        }
    }

    /// Call the plugin on a batch of events up to `to` and commit what it decided, or record
    /// why it failed.
    fn deliver_batch(&self, sub: &Subscription, installed: &InstalledPlugin, selected: Vec<EventSnapshot>, to: i64) -> Result<()> {
        let shop_id = sub.shop_id;
        // Before subjects are built: a scoring model's keep one event per customer.
        let chain = Chain::of(selected.iter().filter_map(|e| Some((e.customer_id?, e))));
        let subjects = self.subjects(shop_id, selected, &installed.manifest)?;
        if subjects.is_empty() {
            self.store.advance_cursor(shop_id, &sub.plugin_id, sub.cursor, to)?;
            return Ok(());
        }
        let plugin = match self.plugin(installed) {
            Ok(plugin) => plugin,
            Err(err) => return self.fail_delivery(sub, sub.cursor, to, &err.to_string(), &[], Duration::ZERO),
        };
        let Some(input) = event_input(sub.kind, self.context(shop_id)?, subjects) else { return Ok(()) };
        match self.call(&plugin, sub, input, &chain) {
            Called::Decided(decisions, report) => {
                let attempt = self.attempt(sub, &report);
                let effects = Effects { decisions: &decisions, kv_writes: &report.kv_writes, chain: Some(&chain) };
                match self.store.commit_delivery(&attempt, sub.cursor, to, &effects) {
                    Ok(()) => {
                        self.emitted(sub, &decisions);
                        Ok(())
                    }
                    Err(kith_core::Error::Invalid(refused)) => {
                        self.fail_delivery(sub, sub.cursor, to, &format!("decision refused: {refused}"), &report.logs, report.duration)
                    }
                    // Another worker or process delivered this batch first.
                    Err(kith_core::Error::Conflict(_)) => Ok(()),
                    Err(err) if err.unavailable().is_some() => Err(err.into()),
                    Err(err) => self.fail_delivery(sub, sub.cursor, to, &format!("storage failure: {err}"), &report.logs, report.duration),
                }
            }
            Called::Failed(error, report) => self.fail_delivery(sub, sub.cursor, to, &error, &report.logs, report.duration),
        }
    }

    /// Whether the plugin has emitted its `[limits] events-per-minute` in the shop within the
    /// window: then its deliveries and run batches wait until the window has room.
    fn emissions_spent(&self, sub: &Subscription, manifest: &Manifest) -> bool {
        let spent = self.emissions.spent(
            sub.shop_id,
            &sub.plugin_id,
            manifest.limits.events_per_minute(),
            Instant::now(),
            self.config.emission_window,
        );
        if spent {
            tracing::debug!(shop = sub.shop_id, plugin = %sub.plugin_id, "held back: at its emission rate");
        }
        spent
    }

    /// Count the events a committed call emitted against the plugin's rate in the shop.
    fn emitted(&self, sub: &Subscription, decisions: &[Decision]) {
        let emitted = decisions.iter().filter(|d| matches!(d, Decision::EmitEvent { .. })).count();
        self.emissions.add(sub.shop_id, &sub.plugin_id, emitted, Instant::now(), self.config.emission_window);
    }

    fn attempt<'a>(&self, sub: &'a Subscription, report: &'a CallReport) -> Attempt<'a> {
        Attempt { shop_id: sub.shop_id, plugin_id: &sub.plugin_id, logs: &report.logs, duration: report.duration, now: self.clock.now() }
    }

    fn fail_delivery(
        &self,
        sub: &Subscription,
        from: i64,
        to: i64,
        error: &str,
        logs: &[kith_domain::plugin::LogLine],
        duration: Duration,
    ) -> Result<()> {
        let policy = &self.config.policy;
        let attempt = Attempt { shop_id: sub.shop_id, plugin_id: &sub.plugin_id, logs, duration, now: self.clock.now() };
        match self.store.record_failure(&attempt, from, to, error, policy) {
            Ok(FailureOutcome::Retry { at }) => {
                tracing::warn!(shop = sub.shop_id, plugin = %sub.plugin_id, retry_at = %at, "delivery failed: {error}");
            }
            Ok(FailureOutcome::DeadLettered { dead_letter }) => {
                tracing::warn!(shop = sub.shop_id, plugin = %sub.plugin_id, dead_letter, "delivery dead-lettered: {error}");
            }
            Ok(FailureOutcome::Tripped { .. }) => {
                tracing::error!(shop = sub.shop_id, plugin = %sub.plugin_id, "breaker tripped; plugin disabled for the shop: {error}");
            }
            Err(kith_core::Error::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Subjects for events: the customer as they are now (merged customers
    /// resolve to their survivor), with the parts the plugin reads, and the
    /// order an order event names. A scoring model is handed customers
    /// alone: one subject per customer, no orders loaded.
    fn subjects(&self, shop_id: i64, events: Vec<EventSnapshot>, manifest: &Manifest) -> Result<Vec<Subject>> {
        let ids: Vec<i64> = events.iter().filter_map(|e| e.customer_id).collect();
        let customers = self.store.snapshots(shop_id, &ids, manifest.reads())?;
        let scoring = manifest.kind == Kind::ScoringModel;
        let orders = if scoring {
            HashMap::new()
        } else {
            let order_ids: Vec<&str> = events.iter().filter_map(|e| e.order_id.as_deref()).collect();
            self.store.order_snapshots(shop_id, &order_ids)?
        };
        let mut seen = HashSet::new();
        let mut subjects = Vec::with_capacity(events.len());
        for event in events {
            let Some(customer) = event.customer_id.and_then(|id| customers.get(&id)) else { continue };
            if scoring && !seen.insert(customer.id) {
                continue;
            }
            let order = event.order_id.as_deref().and_then(|id| orders.get(id)).cloned();
            subjects.push(Subject { customer: customer.clone(), event: Some(event), order });
        }
        Ok(subjects)
    }

    /// One batch of a run over all of a shop's customers.
    fn run_batch(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<bool> {
        let run = self.store.run(shop_id, plugin_id, run_id)?;
        let sub = self.store.subscription(shop_id, plugin_id)?;
        let installed = self.store.plugin_version(plugin_id, &sub.version)?;
        if self.emissions_spent(&sub, &installed.manifest) {
            return Ok(false);
        }
        let Some(_slot) = self.slot(&installed) else { return Ok(false) };
        self.run_batch_in(shop_id, plugin_id, run_id, run, sub, installed).map(|()| true)
    }

    fn run_batch_in(
        &self,
        shop_id: i64,
        plugin_id: &str,
        run_id: i64,
        run: kith_domain::plugin::PluginRun,
        sub: Subscription,
        installed: InstalledPlugin,
    ) -> Result<()> {
        let batch = self.batch_size(&installed.manifest);
        let customers = self.store.customer_batch(shop_id, run.checkpoint, batch, installed.manifest.reads())?;
        let finished = customers.len() < batch;
        let to = customers.last().map_or(run.checkpoint, |c| c.id);
        let processed = customers.len() as i64;
        let policy = &self.config.policy;
        let plugin = match self.plugin(&installed) {
            Ok(plugin) => plugin,
            Err(err) => {
                let attempt = Attempt { shop_id, plugin_id, logs: &[], duration: Duration::ZERO, now: self.clock.now() };
                self.store.record_run_failure(&attempt, run_id, &err.to_string(), policy)?;
                return Ok(());
            }
        };
        let ctx = self.context(shop_id)?;
        let input = match sub.kind {
            Kind::TagRule => {
                Input::Evaluate(ctx, customers.into_iter().map(|customer| Subject { customer, event: None, order: None }).collect())
            }
            Kind::ScoringModel => Input::Score(ctx, customers),
            Kind::LoyaltyScheme => Input::Review(ctx, customers),
            Kind::ChannelConnector => return Ok(()),
        };
        let called =
            if processed == 0 { Called::Decided(Vec::new(), empty_report()) } else { self.call(&plugin, &sub, input, &Chain::default()) };
        match called {
            Called::Decided(decisions, report) => {
                let attempt = self.attempt(&sub, &report);
                let effects = Effects { decisions: &decisions, kv_writes: &report.kv_writes, chain: None };
                let step = PluginRunStep { run_id, from: run.checkpoint, to, processed, finished };
                let failure = match self.store.commit_run_batch(&attempt, &step, &effects) {
                    Ok(_) => {
                        self.emitted(&sub, &decisions);
                        return Ok(());
                    }
                    Err(kith_core::Error::Conflict(_)) => return Ok(()),
                    Err(err) if err.unavailable().is_some() => return Err(err.into()),
                    Err(kith_core::Error::Invalid(refused)) => format!("decision refused: {refused}"),
                    // A storage failure is the run's, retried with backoff like any other.
                    Err(err) => format!("storage failure: {err}"),
                };
                self.store.record_run_failure(&attempt, run_id, &failure, policy)?;
                Ok(())
            }
            Called::Failed(error, report) => {
                self.store.record_run_failure(&self.attempt(&sub, &report), run_id, &error, policy)?;
                Ok(())
            }
        }
    }
}

/// A name for this process among the kernels sharing a database: its host, its process id
/// and 64 random bits (a process may make several buses, each its own node).
fn node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    // The standard library's hashers are keyed with random bits per process and per hasher.
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{host}/{}/{:016x}", std::process::id(), random.finish())
}

/// How many events per customer a scoring model's delivery reads at most (a batch of
/// `batch_size` customers reads `batch_size` times this many events).
const SCORING_EVENTS_PER_CUSTOMER: usize = 20;

/// The events of the first `customers` customers of `events` and the cursor after them: `to`
/// when all are kept, else the last kept event's sequence number.
fn up_to_customers(mut events: Vec<EventSnapshot>, to: i64, customers: usize) -> (Vec<EventSnapshot>, i64) {
    let mut seen = HashSet::new();
    // The first event of the customer one past the count.
    let cut = events.iter().position(|e| e.customer_id.is_some_and(|id| seen.insert(id) && seen.len() > customers));
    match cut {
        Some(cut) if cut > 0 => {
            let to = events[cut - 1].seq;
            events.truncate(cut);
            (events, to)
        }
        _ => (events, to),
    }
}

/// The call that hands events to a plugin of `kind`: subjects for tag rules
/// and loyalty schemes, each customer once for scoring models; connectors take none.
fn event_input(kind: Kind, ctx: ShopContext, subjects: Vec<Subject>) -> Option<Input> {
    match kind {
        Kind::TagRule => Some(Input::Evaluate(ctx, subjects)),
        Kind::LoyaltyScheme => Some(Input::OnEvents(ctx, subjects)),
        Kind::ScoringModel => {
            let mut seen = HashSet::new();
            Some(Input::Score(ctx, subjects.into_iter().map(|s| s.customer).filter(|c| seen.insert(c.id)).collect()))
        }
        Kind::ChannelConnector => None,
    }
}

fn empty_report() -> CallReport {
    CallReport {
        output: Ok(Output::Decisions(Vec::new())),
        logs: Vec::new(),
        kv_writes: Vec::new(),
        duration: Duration::ZERO,
        instantiation: Duration::ZERO,
        fuel_used: None,
        peak_memory: 0,
        output_bytes: 0,
    }
}

/// Check every decision against the grant, and the call's decisions together; the first
/// refusal fails the call. `kith plugin test` checks a fixture's decisions with it too.
pub fn check(plugin_id: &str, grant: &Grant, decisions: &[Decision], subjects: usize) -> Result<(), String> {
    for (i, decision) in decisions.iter().enumerate() {
        decision.check(plugin_id, grant).map_err(|reason| format!("decision {i} refused: {reason}"))?;
    }
    kith_domain::plugin::check_call(decisions, subjects).map_err(|reason| format!("decisions refused: {reason}"))
}

/// The events each plugin emitted in each shop within the last window (a minute of real time:
/// a rate is about load, not the shop's clock), kept in memory by this process. A plugin that
/// has emitted its `events-per-minute` in a shop waits there (its deliveries and run batches
/// are held back, nothing counted against it) until the window has room again, so it can
/// overshoot by one call's events at most (at most 4 per subject). A chain of plugins
/// answering each other is bounded and tripped by [`Chain`]; this bounds a plugin that emits
/// on every event of a busy shop, or on every customer of a run, and slows only that plugin in
/// that shop. Only committed calls are counted: a batch retried after a failed commit is not
/// counted twice.
#[derive(Debug, Default)]
struct Emissions {
    /// By shop and plugin: when each committed call's events were counted, how many, and the
    /// window they count in.
    recent: Mutex<HashMap<(i64, String), Emitted>>,
}

type Emitted = VecDeque<(Instant, usize)>;

/// Shops and plugins held before the ones that emitted nothing for a window are forgotten.
const EMISSIONS_KEPT: usize = 1024;

impl Emissions {
    /// Count a committed call's `emitted` events, forgetting what is older than `window`.
    fn add(&self, shop_id: i64, plugin_id: &str, emitted: usize, now: Instant, window: Duration) {
        if emitted == 0 {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= EMISSIONS_KEPT {
            recent.retain(|_, calls| calls.back().is_some_and(|(at, _)| now.saturating_duration_since(*at) < window));
        }
        let calls = recent.entry((shop_id, plugin_id.to_owned())).or_default();
        while calls.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window) {
            calls.pop_front();
        }
        calls.push_back((now, emitted));
    }

    /// Whether the plugin has emitted `most` events or more in the shop within the window
    /// (`add` forgets older calls; those still held but older are not counted here either).
    fn spent(&self, shop_id: i64, plugin_id: &str, most: u32, now: Instant, window: Duration) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let Some(calls) = recent.get(&(shop_id, plugin_id.to_owned())) else { return false };
        let within: usize = calls.iter().filter(|(at, _)| now.saturating_duration_since(*at) < window).map(|(_, n)| n).sum();
        within >= most as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emissions_are_counted_per_shop_and_plugin_over_a_window() {
        let emissions = Emissions::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let minute = Duration::from_secs(60);
        let spent = |shop, plugin, s| emissions.spent(shop, plugin, 10, at(s), minute);
        assert!(!spent(1, "echo", 0), "nothing emitted yet");
        emissions.add(1, "echo", 6, at(0), minute);
        assert!(!spent(1, "echo", 1), "6 of 10");
        emissions.add(1, "echo", 4, at(30), minute);
        assert!(spent(1, "echo", 59), "10 in a minute is the limit: the plugin waits");
        assert!(!spent(2, "echo", 59), "another shop counts its own");
        assert!(!spent(1, "other", 59), "another plugin counts its own");
        assert!(!spent(1, "echo", 60), "the first 6 are a minute old");
        emissions.add(1, "echo", 9, at(61), minute);
        assert!(spent(1, "echo", 62), "4 at 30 s and 9 at 61 s: one call may overshoot");
        assert!(!spent(1, "echo", 121), "all older than a minute");
        emissions.add(1, "echo", 0, at(122), minute);
        assert!(!spent(1, "echo", 122), "a call that emits nothing counts nothing");
    }

    #[test]
    fn shared_work_leaves_a_worker_free() {
        let shared = Mutex::default();
        let first = Slot::take(&shared, 3, Long::Call).expect("a free place");
        let second = Slot::take(&shared, 3, Long::Call).expect("a second of three workers");
        assert!(Slot::take(&shared, 3, Long::Call).is_none(), "the third worker stays free");
        drop(second);
        assert!(Slot::take(&shared, 3, Long::Call).is_some());
        drop(first);
        let alone = Slot::take(&shared, 1, Long::Call).expect("a single worker takes it in turn");
        assert!(Slot::take(&shared, 1, Long::Call).is_none());
        drop(alone);
        let held = shared.lock().unwrap();
        assert_eq!((held.calls, held.passes), (0, 0));
    }

    #[test]
    fn long_calls_and_outbox_passes_share_one_budget() {
        let shared = Mutex::default();
        let call = Slot::take(&shared, 2, Long::Call).expect("a free place");
        assert!(Slot::take(&shared, 2, Long::Pass).is_none(), "a pass may not take the last worker");
        drop(call);
        let pass = Slot::take(&shared, 2, Long::Pass).expect("a free place");
        assert!(Slot::take(&shared, 2, Long::Call).is_none(), "a long call may not take the last worker");
        drop(pass);
        let (call, pass) = (Slot::take(&shared, 3, Long::Call), Slot::take(&shared, 3, Long::Pass));
        assert!(call.is_some() && pass.is_some());
        assert!(Slot::take(&shared, 3, Long::Call).is_none() && Slot::take(&shared, 3, Long::Pass).is_none());
    }

    #[test]
    fn work_is_held_by_one_worker_until_released() {
        let claimed = Mutex::new(HashSet::new());
        let work = Work::Delivery(1, "vip-tag".into());
        let first = Claim::take(&claimed, work.clone()).expect("free work is claimed");
        assert!(Claim::take(&claimed, work.clone()).is_none(), "held work is refused");
        assert!(Claim::take(&claimed, Work::Run(1, "vip-tag".into())).is_some(), "other work is free");
        assert!(claimed.lock().unwrap().contains(&work), "a refused claim does not release the holder's");
        drop(first);
        assert!(Claim::take(&claimed, work).is_some());
    }

    #[test]
    fn a_context_being_computed_is_served_as_it_was_meanwhile() {
        use chrono::TimeZone;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(kith_sqlite::Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
        let actor = kith_core::Actor::cli("test");
        let new = kith_domain::model::NewShop {
            name: "A".into(),
            time_zone: "Asia/Shanghai".into(),
            currency: "CNY".into(),
            region: "CN".into(),
        };
        let shop = store.create_shop(&new, &actor).unwrap().id;
        let buyer = |n: u32| {
            let order = serde_json::json!({"id": format!("o{n}"), "type": "order.paid",
                "identities": [{"kind": "phone", "value": format!("1380000{n:04}")}], "order": {"id": format!("o{n}"), "amount": 100}});
            assert_eq!(store.ingest(shop, vec![order], &actor).unwrap().accepted, 1);
        };
        let clock = Arc::new(clock::TestClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()));
        // Expired as soon as computed: every look computes again, unless another is computing.
        let contexts = Contexts { store: store.clone(), clock: clock.clone(), ttl: Duration::ZERO, cache: Mutex::default() };
        buyer(1);
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 1);
        buyer(2);
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 2, "an expired context is computed again");

        let key = (shop, None);
        buyer(3);
        let computing = Computing { contexts: &contexts, key };
        contexts.cache.lock().unwrap().computing.insert(key);
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 2, "served the last one while another computes");
        assert_eq!(contexts.get(shop, Some(30)).unwrap().buyer_count, 3, "another window is computed");
        drop(computing);
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 3);

        // Cleared (a run starts): nothing older is served, even while another computes.
        buyer(4);
        contexts.cache.lock().unwrap().computing.insert(key);
        contexts.clear();
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 4);
        assert!(contexts.cache.lock().unwrap().computed.contains_key(&key), "computed after the clear: kept");

        // The clock moved on past the TTL: the one before is not served, even while another computes.
        buyer(5);
        contexts.cache.lock().unwrap().computing.insert(key);
        clock.advance(chrono::Duration::milliseconds(1));
        assert_eq!(contexts.get(shop, None).unwrap().buyer_count, 5, "a context of an earlier clock time");
    }
}
