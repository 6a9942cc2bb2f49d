//! The data of one call's `Store`: what the host functions may see of the
//! shop, the limits, and what the plugin produced besides its return value.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_domain::plugin::{BuyerSummary, Capability, Grant, History, LogLevel, LogLine, ShopContext, Snapshot};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::http::Outbound;
use crate::{CallEnv, HostConfig, KvLimits, Plugin};

/// A key-value write of a call: the key and its new value, `None` to delete.
pub type KvWrite = (String, Option<Vec<u8>>);

/// Size of one (shop, plugin) key-value space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvUsage {
    pub keys: u64,
    /// Key and value bytes together.
    pub bytes: u64,
}

/// What the kernel lends the host functions of one call. Implemented by the
/// bus over the store; reads only, since writes go back in the report.
pub trait PluginEnv: Send {
    /// A customer of the calling shop, `None` when the id is not one.
    fn read_customer(&mut self, id: i64) -> anyhow::Result<Option<Snapshot>>;
    /// The committed value of a key.
    fn kv_get(&mut self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    fn kv_usage(&mut self) -> anyhow::Result<KvUsage>;
    /// Histories since `since_ms` of those of `ids` that are customers of the calling shop, in that order.
    fn histories(&mut self, ids: &[i64], since_ms: i64) -> anyhow::Result<Vec<History>>;
    /// The shop's context over a window of days (`None`: all time).
    fn shop_context(&mut self, window_days: Option<u32>) -> anyhow::Result<ShopContext>;
    /// Up to `limit` buyers of the calling shop with an id above `after`, by id, their
    /// days counted to the day of `now_ms` in the shop's time zone (see `kith_core::metrics::SummariesService::buyer_summaries`).
    fn buyers(&mut self, after: Option<i64>, limit: usize, now_ms: i64) -> anyhow::Result<Vec<BuyerSummary>>;
}

/// Captured standard output and error of a call; more is cut.
const STDIO_CAPTURE: usize = 64 << 10;
/// Table elements one store may hold across its tables.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Host resources (WASI streams, pollables, HTTP fields, requests, …) one call may hold at
/// once. Their memory is the host's, outside the call's memory limit: this count and the
/// size cap of each (`MAX_FIELDS_BYTES` for header sets, the response cap for bodies) bound it.
pub(crate) const MAX_RESOURCES: usize = 1024;
/// Bytes of one set of HTTP header fields a plugin builds, in memory (names, values and
/// their overhead): 1,024 resources of this size are 16 MiB at most.
pub(crate) const MAX_FIELDS_BYTES: usize = 16 << 10;
/// The most random bytes one `wasi:random` call may ask for: the host allocates them before
/// copying them into the guest, outside the call's memory limit (wasmtime's default is 64 MiB).
pub(crate) const MAX_RANDOM_BYTES: u64 = 64 << 10;
/// Bytes of key-value writes (keys and values) one call may make: what one delivery commits.
pub(crate) const MAX_KV_BYTES_PER_CALL: usize = 8 << 20;

pub struct State {
    pub(crate) plugin_id: String,
    pub(crate) shop_id: i64,
    pub(crate) grant: Grant,
    pub(crate) config: String,
    pub(crate) now_ms: i64,
    pub(crate) services: Box<dyn PluginEnv>,
    pub(crate) limits: Limiter,
    kv_limits: KvLimits,
    /// Writes of this call, newest value per key; `None` deletes.
    pub(crate) kv: BTreeMap<String, Option<Vec<u8>>>,
    kv_order: Vec<String>,
    kv_usage: Option<KvUsage>,
    /// Key and value bytes written by this call so far.
    kv_written: usize,
    /// When the call's time is up; blocking host calls wait no longer (see `blocking.rs`).
    deadline: Instant,
    logs: Vec<LogLine>,
    dropped_logs: usize,
    max_log_lines: usize,
    max_log_line_bytes: usize,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) outbound: Outbound,
    table: ResourceTable,
}

impl State {
    pub(crate) fn new(config: &HostConfig, plugin: &Plugin, env: CallEnv) -> State {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
        // Nothing is granted through WASI: no preopened directories, no
        // environment, no arguments, no sockets. Only clocks and randomness work.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        // `*` declares whatever the shop grants (a gateway the merchant configures).
        let any = plugin.declared_hosts.iter().any(|h| h == "*");
        let hosts: Vec<String> = env.grant.allowed_hosts.iter().filter(|h| any || plugin.declared_hosts.contains(h)).cloned().collect();
        let http_granted = env.grant.has(Capability::Http);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        // One deadline for instantiation and the call, HTTP requests included.
        let deadline = Instant::now() + plugin.limits.timeout;
        let mut outbound =
            Outbound::new(if http_granted { hosts } else { Vec::new() }, config.http_timeout, config.max_http_response_bytes);
        outbound.deadline = deadline;
        State {
            plugin_id: plugin.id.clone(),
            shop_id: env.shop_id,
            config: env.config.to_string(),
            now_ms: env.now_ms,
            services: env.services,
            limits: Limiter { memory_cap: plugin.limits.memory, memory: 0, peak: 0, table_elements: 0, memory_exceeded: false },
            kv_limits: config.kv,
            kv: BTreeMap::new(),
            kv_order: Vec::new(),
            kv_usage: None,
            kv_written: 0,
            deadline,
            logs: Vec::new(),
            dropped_logs: 0,
            max_log_lines: config.max_log_lines,
            max_log_line_bytes: config.max_log_line_bytes,
            stdout,
            stderr,
            wasi,
            http,
            outbound,
            table,
            grant: env.grant,
        }
    }

    pub(crate) fn granted(&self, cap: Capability) -> bool {
        self.grant.has(cap)
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: &str) {
        if self.logs.len() >= self.max_log_lines {
            self.dropped_logs += 1;
            return;
        }
        let mut message = message.to_owned();
        if message.len() > self.max_log_line_bytes {
            let mut cut = self.max_log_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.logs.push(LogLine { level, message });
    }

    /// What is left of the call's time; `None` once it has passed.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(crate) fn memory_exceeded(&self) -> bool {
        self.limits.memory_exceeded
    }

    pub(crate) fn kv_get(&mut self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.kv.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.services.kv_get(key),
        }
    }

    /// Record a write after checking the quotas; `Err` carries the reason.
    pub(crate) fn kv_put(&mut self, key: &str, value: Option<Vec<u8>>) -> anyhow::Result<Result<(), String>> {
        let limits = self.kv_limits;
        if key.is_empty() || key.len() > limits.max_key_bytes {
            return Ok(Err(format!("keys must be 1 to {} bytes", limits.max_key_bytes)));
        }
        if value.as_ref().is_some_and(|v| v.len() > limits.max_value_bytes) {
            return Ok(Err(format!("values must be at most {} bytes", limits.max_value_bytes)));
        }
        let before = self.kv_get(key)?;
        let mut usage = match self.kv_usage {
            Some(usage) => usage,
            None => self.services.kv_usage()?,
        };
        let size = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        usage.bytes = usage.bytes - size(&before) + size(&value);
        usage.keys = usage.keys - u64::from(before.is_some()) + u64::from(value.is_some());
        if value.is_some() && (usage.keys > limits.max_keys || usage.bytes > limits.max_total_bytes) {
            return Ok(Err(format!("the space holds at most {} keys and {} bytes", limits.max_keys, limits.max_total_bytes)));
        }
        let written = self.kv_written + key.len() + value.as_ref().map_or(0, Vec::len);
        if written > MAX_KV_BYTES_PER_CALL {
            return Ok(Err(format!("one call may write at most {MAX_KV_BYTES_PER_CALL} bytes of keys and values")));
        }
        self.kv_written = written;
        self.kv_usage = Some(usage);
        if !self.kv.contains_key(key) {
            self.kv_order.push(key.to_owned());
        }
        self.kv.insert(key.to_owned(), value);
        Ok(Ok(()))
    }

    /// The call's log lines (standard output and error last) and key-value writes.
    pub(crate) fn finish(mut self) -> (Vec<LogLine>, Vec<KvWrite>) {
        for authority in std::mem::take(&mut self.outbound.denied) {
            self.log(LogLevel::Warn, &format!("outbound request to `{authority}` denied: the host is not granted to this plugin"));
        }
        for (pipe, level) in [(self.stdout.clone(), LogLevel::Info), (self.stderr.clone(), LogLevel::Warn)] {
            let text = String::from_utf8_lossy(&pipe.contents()).into_owned();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.log(level, line);
            }
        }
        if self.dropped_logs > 0 {
            let dropped = self.dropped_logs;
            self.logs
                .push(LogLine { level: LogLevel::Warn, message: format!("{dropped} more log lines dropped (cap {})", self.max_log_lines) });
        }
        let mut kv = self.kv;
        let writes = self.kv_order.into_iter().map(|k| (k.clone(), kv.remove(&k).flatten())).collect();
        (self.logs, writes)
    }
}

/// Memory and table caps of one store; memory counts all linear memories together.
pub(crate) struct Limiter {
    memory_cap: usize,
    memory: usize,
    /// The most `memory` has been.
    pub(crate) peak: usize,
    table_elements: usize,
    memory_exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory.saturating_sub(current) + desired;
        if total > self.memory_cap {
            self.memory_exceeded = true;
            return Err(wasmtime::format_err!("memory limit of {} bytes exceeded", self.memory_cap));
        }
        self.memory = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.table_elements.saturating_sub(current) + desired;
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}
