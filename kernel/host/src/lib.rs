//! Kith's plugin host: the only crate that depends on wasmtime.
//!
//! One [`Host`] holds one wasmtime `Engine` (component model, pooling
//! allocator, epoch interruption driven by its own ticker thread, an on-disk
//! compile cache), one `Linker` with the `kith:plugin` imports and a WASI that
//! grants nothing, and turns each installed component into a [`Plugin`]
//! holding its `InstancePre`. [`Host::call`] runs one call in a fresh `Store`
//! bounded in time, memory and output, and reports what the plugin decided,
//! logged and wrote to its key-value space. The host applies nothing: the bus
//! checks the decisions and applies them with the subscriber's cursor.

pub mod bindings;
mod blocking;
mod convert;
mod http;
mod imports;
mod state;
mod v0_1;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kith_domain::plugin::{
    Decision, Delivery, Grant, GuestError, InboundRequest, Kind, LogLine, Manifest, OutboundMessage, Receipt, ShopContext, Snapshot,
    Subject,
};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::{v0_1 as v1, v0_2 as v2};
use crate::state::State;
pub use crate::state::{KvUsage, KvWrite, PluginEnv};
use crate::v0_1::To;

/// The host's maxima and defaults; a plugin's manifest may ask for less or
/// more within the maxima.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub default_memory: usize,
    pub max_memory: usize,
    /// Most decisions one call may return.
    pub max_decisions: usize,
    /// Most bytes of text in what one call returns.
    pub max_output_bytes: usize,
    pub max_log_lines: usize,
    pub max_log_line_bytes: usize,
    pub kv: KvLimits,
    /// Budget of one outbound HTTP request, connect to last byte.
    pub http_timeout: Duration,
    pub max_http_response_bytes: usize,
    /// Count fuel, so that plugins may ask for a fuel budget per call.
    pub fuel: bool,
    /// Instances that may be alive at once across all calls.
    pub max_instances: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            cache_dir: None,
            default_timeout: Duration::from_secs(2),
            max_timeout: Duration::from_secs(30),
            default_memory: 64 << 20,
            max_memory: 512 << 20,
            max_decisions: 50_000,
            max_output_bytes: 8 << 20,
            max_log_lines: 200,
            max_log_line_bytes: 4096,
            kv: KvLimits::default(),
            http_timeout: Duration::from_secs(10),
            max_http_response_bytes: 1 << 20,
            fuel: true,
            max_instances: 64,
        }
    }
}

/// Quotas of one (shop, plugin) key-value space.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_keys: u64,
    pub max_total_bytes: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits { max_key_bytes: 256, max_value_bytes: 64 << 10, max_keys: 100_000, max_total_bytes: 64 << 20 }
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error("the component imports something this kernel does not provide: {0}")]
    Imports(String),
    #[error("the component does not export the `{world}` world: {detail}")]
    WrongWorld { world: &'static str, detail: String },
    /// The manifest's `api-version` is not the `kith:plugin` version the component is built against.
    #[error("plugin.toml says api-version {manifest}, but the component is built against kith:plugin@{component}")]
    ApiVersion { manifest: String, component: String },
    #[error("the component {0}")]
    Package(String),
}

/// Why a call failed. Each fails the delivery it belongs to, nothing else.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("the call ran past its deadline of {0:?}")]
    Timeout(Duration),
    #[error("the plugin exceeded its memory limit of {0} bytes")]
    Memory(usize),
    #[error("the plugin held more than {0} host resources (streams, pollables, HTTP fields) at once")]
    Resources(usize),
    #[error("the plugin ran out of fuel ({0})")]
    Fuel(u64),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin returned too much: {0}")]
    Output(String),
    #[error("the plugin returned an error: {0}")]
    Guest(GuestError),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiate(String),
    #[error("a {kind} plugin has no `{call}` export")]
    WrongKind { kind: Kind, call: &'static str },
}

/// What to call.
#[derive(Debug, Clone)]
pub enum Input {
    /// Tag rule: `evaluate`.
    Evaluate(ShopContext, Vec<Subject>),
    /// Scoring model: `score`.
    Score(ShopContext, Vec<Snapshot>),
    /// Loyalty scheme: `on-events`.
    OnEvents(ShopContext, Vec<Subject>),
    /// Loyalty scheme: `review`.
    Review(ShopContext, Vec<Snapshot>),
    /// Channel connector: `deliver`.
    Send(ShopContext, OutboundMessage),
    /// Channel connector: `parse-receipt`.
    ParseReceipt(ShopContext, InboundRequest),
}

impl Input {
    /// How many subjects (or customers) the call is handed; one message or receipt for a connector.
    pub fn subjects(&self) -> usize {
        match self {
            Input::Evaluate(_, subjects) | Input::OnEvents(_, subjects) => subjects.len(),
            Input::Score(_, customers) | Input::Review(_, customers) => customers.len(),
            Input::Send(..) | Input::ParseReceipt(..) => 1,
        }
    }
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Decisions(Vec<Decision>),
    Delivery(Delivery),
    Receipts(Vec<Receipt>),
}

/// Everything one call did.
#[derive(Debug)]
pub struct CallReport {
    pub output: Result<Output, CallError>,
    /// Log lines, including captured stdout (info) and stderr (warn).
    pub logs: Vec<LogLine>,
    /// Key-value writes in order (`None` deletes); apply them only with the decisions.
    pub kv_writes: Vec<KvWrite>,
    pub duration: Duration,
    /// The part of `duration` spent instantiating the component (zero when it never got there).
    pub instantiation: Duration,
    /// Fuel the call burned, instantiation included; `None` when the host does not count fuel.
    pub fuel_used: Option<u64>,
    /// The most bytes of linear memory the instance held at once, all its memories together.
    pub peak_memory: usize,
    /// Bytes of text in what the call returned, as counted against `HostConfig::max_output_bytes`
    /// (zero when the call failed).
    pub output_bytes: usize,
}

/// The shop side of a call: who calls, with what grant and configuration.
pub struct CallEnv {
    pub shop_id: i64,
    pub grant: Grant,
    pub config: serde_json::Value,
    pub now_ms: i64,
    pub services: Box<dyn PluginEnv>,
}

/// Limits in force for one plugin: its manifest's requests capped by the host's maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory: usize,
    pub fuel: Option<u64>,
}

/// An installed component, ready to instantiate.
pub struct Plugin {
    pub id: String,
    pub version: String,
    pub kind: Kind,
    pub sha256: String,
    pub limits: Limits,
    /// Hosts the manifest declares; the grant narrows them further.
    pub declared_hosts: Vec<String>,
    pre: KindPre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("id", &self.id).field("version", &self.version).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A component linked to its kind's world, in the WIT version it is built against.
enum KindPre {
    TagRule(v2::tag_rule::TagRulePre<State>),
    ScoringModel(v2::scoring_model::ScoringModelPre<State>),
    LoyaltyScheme(v2::loyalty_scheme::LoyaltySchemePre<State>),
    ChannelConnector(v2::channel_connector::ChannelConnectorPre<State>),
    /// 0.1 builds: called with their arguments converted down, their results converted up.
    TagRule01(v1::tag_rule::TagRulePre<State>),
    ScoringModel01(v1::scoring_model::ScoringModelPre<State>),
    LoyaltyScheme01(v1::loyalty_scheme::LoyaltySchemePre<State>),
    ChannelConnector01(v1::channel_connector::ChannelConnectorPre<State>),
}

/// The `kith:plugin` versions this host has bindings for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wit {
    V0_1,
    V0_2,
}

/// The `kith:plugin` version a component is built against, read from the interfaces it
/// imports (every world's exports use `kith:plugin/types`): the component, not its
/// manifest, says which bindings can call it.
fn wit_version(engine: &Engine, component: &Component) -> Result<(Wit, String), LoadError> {
    let ty = component.component_type();
    let mut versions: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name))
        .filter_map(|name| name.strip_prefix("kith:plugin/"))
        .filter_map(|name| name.split_once('@').map(|(_, version)| version.to_owned()))
        .collect();
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [] => Err(LoadError::Package("imports no `kith:plugin` interface, so its WIT version is unknown".into())),
        [version] => match version.split('.').take(2).collect::<Vec<_>>().as_slice() {
            ["0", "1"] => Ok((Wit::V0_1, version.clone())),
            ["0", "2"] => Ok((Wit::V0_2, version.clone())),
            _ => Err(LoadError::Imports(format!(
                "kith:plugin@{version} is not served by this kernel (it serves {})",
                kith_domain::plugin::SERVED_API_VERSIONS.join(", ")
            ))),
        },
        many => Err(LoadError::Package(format!("imports several versions of kith:plugin: {}", many.join(", ")))),
    }
}

/// Epoch ticks per second; the deadline of a call is counted in ticks.
const TICK: Duration = Duration::from_millis(10);

/// The wasmtime engine, linker and ticker of one kernel.
pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    config: HostConfig,
    cache: Option<wasmtime::Cache>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes of each linear memory kept mapped between instances (see [`Host::new`]).
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

impl Host {
    pub fn new(config: HostConfig) -> anyhow::Result<Host> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true);
        // Every call is synchronous: the bus runs plugins on its own threads.
        wasm.concurrency_support(false);
        wasm.epoch_interruption(true);
        wasm.consume_fuel(config.fuel);
        // Real components (componentize-py, componentize-js) carry an
        // interpreter: many core instances, memories and large tables.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 16)
            .total_memories(config.max_instances * 4)
            .total_tables(config.max_instances * 16)
            .total_stacks(config.max_instances)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(32)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .table_elements(100_000)
            .max_memory_size(config.max_memory)
            // A call's instance is fresh; its memory slot is reused. Zeroing the first pages
            // in place keeps them mapped for the next call, where giving them back to the
            // kernel made every call fault them in again: -15 % per customer for a Rust tag
            // rule in batches of 500, whose memory stays under 2 MiB.
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let cache = match &config.cache_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let mut cache = wasmtime::CacheConfig::new();
                cache.with_directory(dir);
                Some(wasmtime::Cache::new(cache)?)
            }
            None => None,
        };
        wasm.cache(cache.clone());
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        // Components from other toolchains import more of WASI than they use;
        // all of it is linked, with nothing granted (no files, sockets or environment).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        blocking::add_to_linker(&mut linker)?;
        imports::add_to_linker(&mut linker)?;
        // The 0.1 imports beside the current ones: a 0.1 component links against those.
        v0_1::add_to_linker(&mut linker)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new().name("kith-epoch".into()).spawn(move || {
            while !ticker_stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                ticker_engine.increment_epoch();
            }
        })?;
        Ok(Host { engine, linker, config, cache, stop })
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Compile hits and misses of the on-disk cache since start.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache.as_ref().map(|c| (c.cache_hits(), c.cache_misses()))
    }

    /// The limits in force for a manifest.
    pub fn limits_for(&self, manifest: &Manifest) -> Limits {
        let requested = &manifest.limits;
        Limits {
            timeout: requested.timeout_ms.map(Duration::from_millis).unwrap_or(self.config.default_timeout).min(self.config.max_timeout),
            memory: requested.memory_mib.map(|m| (m as usize) << 20).unwrap_or(self.config.default_memory).min(self.config.max_memory),
            fuel: requested.fuel.filter(|_| self.config.fuel),
        }
    }

    /// Compile (or fetch from the cache) and link a component, and check that
    /// it exports the world of the manifest's kind.
    pub fn load(&self, manifest: &Manifest, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let component = Component::new(&self.engine, wasm).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let (wit, built) = wit_version(&self.engine, &component)?;
        let declared = &manifest.api_version;
        if !built.split('.').take(2).eq([declared.major.to_string(), declared.minor.to_string()].iter().map(String::as_str)) {
            return Err(LoadError::ApiVersion { manifest: declared.to_string(), component: built });
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| LoadError::Imports(format!("{e:#}")))?;
        let wrong = |e: wasmtime::Error| LoadError::WrongWorld { world: manifest.kind.as_str(), detail: format!("{e:#}") };
        let pre = match (wit, manifest.kind) {
            (Wit::V0_2, Kind::TagRule) => KindPre::TagRule(v2::tag_rule::TagRulePre::new(pre).map_err(wrong)?),
            (Wit::V0_2, Kind::ScoringModel) => KindPre::ScoringModel(v2::scoring_model::ScoringModelPre::new(pre).map_err(wrong)?),
            (Wit::V0_2, Kind::LoyaltyScheme) => KindPre::LoyaltyScheme(v2::loyalty_scheme::LoyaltySchemePre::new(pre).map_err(wrong)?),
            (Wit::V0_2, Kind::ChannelConnector) => {
                KindPre::ChannelConnector(v2::channel_connector::ChannelConnectorPre::new(pre).map_err(wrong)?)
            }
            (Wit::V0_1, Kind::TagRule) => KindPre::TagRule01(v1::tag_rule::TagRulePre::new(pre).map_err(wrong)?),
            (Wit::V0_1, Kind::ScoringModel) => KindPre::ScoringModel01(v1::scoring_model::ScoringModelPre::new(pre).map_err(wrong)?),
            (Wit::V0_1, Kind::LoyaltyScheme) => KindPre::LoyaltyScheme01(v1::loyalty_scheme::LoyaltySchemePre::new(pre).map_err(wrong)?),
            (Wit::V0_1, Kind::ChannelConnector) => {
                KindPre::ChannelConnector01(v1::channel_connector::ChannelConnectorPre::new(pre).map_err(wrong)?)
            }
        };
        Ok(Plugin {
            id: manifest.id.clone(),
            version: manifest.version.to_string(),
            kind: manifest.kind,
            sha256: sha256_hex(wasm),
            limits: self.limits_for(manifest),
            declared_hosts: manifest.allowed_hosts.clone(),
            pre,
        })
    }

    /// Run one call in a fresh store. Never panics on guest behaviour: every
    /// failure is in the report.
    pub fn call(&self, plugin: &Plugin, env: CallEnv, input: Input) -> CallReport {
        let started = Instant::now();
        let mut store = Store::new(&self.engine, State::new(&self.config, plugin, env));
        store.limiter(|s| &mut s.limits);
        let ticks = (plugin.limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        let fuel = plugin.limits.fuel.unwrap_or(u64::MAX);
        if self.config.fuel {
            store.set_fuel(fuel).expect("fuel is enabled on the engine");
        }
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let mut instantiation = Duration::ZERO;
        let output = self.run(plugin, &mut store, input, &mut instantiation).map_err(|e| match e {
            Failure::Call(e) => e,
            Failure::Wasm(err) => classify(err, &store, plugin),
        });
        let (output, output_bytes) = match output.and_then(|out| convert::check_output(&self.config, out)) {
            Ok((output, bytes)) => (Ok(output), bytes),
            Err(err) => (Err(err), 0),
        };
        let fuel_used = self.config.fuel.then(|| fuel - store.get_fuel().unwrap_or(fuel));
        let peak_memory = store.data().limits.peak;
        // A guest's error that comes back once the deadline has passed (an HTTP request
        // that the deadline ended, whichever of the two timers fired first) is the deadline's.
        let output = match output {
            Err(CallError::Guest(_)) if store.data().time_left().is_none() => Err(CallError::Timeout(plugin.limits.timeout)),
            other => other,
        };
        let state = store.into_data();
        let (logs, kv_writes) = state.finish();
        let kv_writes = if output.is_ok() { kv_writes } else { Vec::new() };
        CallReport { output, logs, kv_writes, duration: started.elapsed(), instantiation, fuel_used, peak_memory, output_bytes }
    }

    fn run(&self, plugin: &Plugin, store: &mut Store<State>, input: Input, instantiation: &mut Duration) -> Result<Output, Failure> {
        let wrong = |call| Failure::Call(CallError::WrongKind { kind: plugin.kind, call });
        let instantiated = |e: wasmtime::Error| Failure::Call(CallError::Instantiate(format!("{e:#}")));
        // One deadline covers instantiation (start functions run guest code) and the call:
        // the epoch deadline set before instantiation, and the state's, go on counting.
        macro_rules! instantiate {
            ($pre:expr) => {{
                let started = Instant::now();
                let instance = $pre.instantiate(&mut *store).map_err(|e| match classify_trap(&e) {
                    Some(_) => Failure::Wasm(e),
                    None => instantiated(e),
                })?;
                *instantiation = started.elapsed();
                instance
            }};
        }
        match (&plugin.pre, input) {
            (KindPre::TagRule(pre), Input::Evaluate(ctx, subjects)) => {
                let rule = instantiate!(pre);
                let subjects: Vec<_> = subjects.into_iter().map(convert::subject).collect();
                decisions(rule.call_evaluate(&mut *store, &convert::context(&ctx), &subjects))
            }
            (KindPre::ScoringModel(pre), Input::Score(ctx, customers)) => {
                let model = instantiate!(pre);
                let customers: Vec<_> = customers.into_iter().map(convert::customer).collect();
                decisions(model.call_score(&mut *store, &convert::context(&ctx), &customers))
            }
            (KindPre::LoyaltyScheme(pre), Input::OnEvents(ctx, subjects)) => {
                let scheme = instantiate!(pre);
                let subjects: Vec<_> = subjects.into_iter().map(convert::subject).collect();
                decisions(scheme.call_on_events(&mut *store, &convert::context(&ctx), &subjects))
            }
            (KindPre::LoyaltyScheme(pre), Input::Review(ctx, customers)) => {
                let scheme = instantiate!(pre);
                let customers: Vec<_> = customers.into_iter().map(convert::customer).collect();
                decisions(scheme.call_review(&mut *store, &convert::context(&ctx), &customers))
            }
            (KindPre::ChannelConnector(pre), Input::Send(ctx, message)) => {
                let connector = instantiate!(pre);
                let out =
                    connector.call_deliver(&mut *store, &convert::context(&ctx), &convert::message(&message)).map_err(Failure::Wasm)?;
                Ok(Output::Delivery(convert::delivery(guest(out)?)))
            }
            (KindPre::ChannelConnector(pre), Input::ParseReceipt(ctx, request)) => {
                let connector = instantiate!(pre);
                let out = connector
                    .call_parse_receipt(&mut *store, &convert::context(&ctx), &convert::inbound(&request))
                    .map_err(Failure::Wasm)?;
                Ok(Output::Receipts(guest(out)?.into_iter().map(convert::receipt).collect()))
            }
            // 0.1 builds: the same calls, through the 0.1 bindings.
            (KindPre::TagRule01(pre), Input::Evaluate(ctx, subjects)) => {
                let rule = instantiate!(pre);
                let subjects: Vec<v1::types::Subject> = subjects.into_iter().map(|s| convert::subject(s).to()).collect();
                decisions(up(rule.call_evaluate(&mut *store, &convert::context(&ctx).to(), &subjects)))
            }
            (KindPre::ScoringModel01(pre), Input::Score(ctx, customers)) => {
                let model = instantiate!(pre);
                let customers: Vec<v1::types::Customer> = customers.into_iter().map(|c| convert::customer(c).to()).collect();
                decisions(up(model.call_score(&mut *store, &convert::context(&ctx).to(), &customers)))
            }
            (KindPre::LoyaltyScheme01(pre), Input::OnEvents(ctx, subjects)) => {
                let scheme = instantiate!(pre);
                let subjects: Vec<v1::types::Subject> = subjects.into_iter().map(|s| convert::subject(s).to()).collect();
                decisions(up(scheme.call_on_events(&mut *store, &convert::context(&ctx).to(), &subjects)))
            }
            (KindPre::LoyaltyScheme01(pre), Input::Review(ctx, customers)) => {
                let scheme = instantiate!(pre);
                let customers: Vec<v1::types::Customer> = customers.into_iter().map(|c| convert::customer(c).to()).collect();
                decisions(up(scheme.call_review(&mut *store, &convert::context(&ctx).to(), &customers)))
            }
            (KindPre::ChannelConnector01(pre), Input::Send(ctx, message)) => {
                let connector = instantiate!(pre);
                let message: v1::types::Message = convert::message(&message).to();
                let out: Result<v2::types::Delivery, v2::types::Error> =
                    connector.call_deliver(&mut *store, &convert::context(&ctx).to(), &message).map_err(Failure::Wasm)?.to();
                Ok(Output::Delivery(convert::delivery(guest(out)?)))
            }
            (KindPre::ChannelConnector01(pre), Input::ParseReceipt(ctx, request)) => {
                let connector = instantiate!(pre);
                let request: v1::types::InboundRequest = convert::inbound(&request).to();
                let out: Result<Vec<v2::types::Receipt>, v2::types::Error> =
                    connector.call_parse_receipt(&mut *store, &convert::context(&ctx).to(), &request).map_err(Failure::Wasm)?.to();
                Ok(Output::Receipts(guest(out)?.into_iter().map(convert::receipt).collect()))
            }
            (_, Input::Evaluate(..)) => Err(wrong("evaluate")),
            (_, Input::Score(..)) => Err(wrong("score")),
            (_, Input::OnEvents(..)) => Err(wrong("on-events")),
            (_, Input::Review(..)) => Err(wrong("review")),
            (_, Input::Send(..)) => Err(wrong("deliver")),
            (_, Input::ParseReceipt(..)) => Err(wrong("parse-receipt")),
        }
    }
}

/// What an export returning decisions returned.
type Returned<T, E> = wasmtime::Result<Result<Vec<T>, E>>;

/// A 0.1 export's decisions in 0.2 terms.
fn up(returned: Returned<v1::types::Decision, v1::types::Error>) -> Returned<v2::types::Decision, v2::types::Error> {
    returned.map(To::to)
}

/// The decisions a kind's export returned, or why there are none.
fn decisions(returned: Returned<v2::types::Decision, v2::types::Error>) -> Result<Output, Failure> {
    let returned = guest(returned.map_err(Failure::Wasm)?)?;
    Ok(Output::Decisions(returned.into_iter().map(convert::decision).collect()))
}

fn guest<T>(result: Result<T, v2::types::Error>) -> Result<T, Failure> {
    result.map_err(|e| Failure::Call(CallError::Guest(convert::guest_error(e))))
}

enum Failure {
    Call(CallError),
    Wasm(wasmtime::Error),
}

fn classify_trap(err: &wasmtime::Error) -> Option<wasmtime::Trap> {
    err.downcast_ref::<wasmtime::Trap>().copied()
}

/// Name the limit a failed call ran into, where it ran into one.
fn classify(err: wasmtime::Error, store: &Store<State>, plugin: &Plugin) -> CallError {
    match classify_trap(&err) {
        Some(wasmtime::Trap::Interrupt) => CallError::Timeout(plugin.limits.timeout),
        Some(wasmtime::Trap::OutOfFuel) => CallError::Fuel(plugin.limits.fuel.unwrap_or(u64::MAX)),
        _ if err.downcast_ref::<blocking::DeadlinePassed>().is_some() => CallError::Timeout(plugin.limits.timeout),
        _ if matches!(
            err.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        ) =>
        {
            CallError::Resources(state::MAX_RESOURCES)
        }
        _ if store.data().memory_exceeded() => CallError::Memory(plugin.limits.memory),
        _ => {
            // The first line names the trap; the backtrace is for the plugin's log.
            let text = format!("{err:#}");
            CallError::Trap(text.chars().take(2000).collect())
        }
    }
}
