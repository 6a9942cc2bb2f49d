//! Configuration: defaults, then the TOML file, then environment variables and flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kith_core::ingest::IdentityCaps;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// When the console's session cookie is `Secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CookieSecureSetting {
    /// When the request came through a proxy over HTTPS (`X-Forwarded-Proto: https`).
    #[default]
    Auto,
    Always,
    Never,
}

impl From<CookieSecureSetting> for kith_api::CookieSecure {
    fn from(setting: CookieSecureSetting) -> Self {
        match setting {
            CookieSecureSetting::Auto => kith_api::CookieSecure::Auto,
            CookieSecureSetting::Always => kith_api::CookieSecure::Always,
            CookieSecureSetting::Never => kith_api::CookieSecure::Never,
        }
    }
}

/// The merchant console's sessions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `auto` (the default: when a proxy says `X-Forwarded-Proto: https`), `always` (behind
    /// a TLS proxy that does not say so) or `never`.
    pub cookie_secure: CookieSecureSetting,
}

/// Everything `kith` can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address `kith serve` listens on.
    pub bind: String,
    /// The database: a SQLite file (the default), or a PostgreSQL URL
    /// (`postgres://user[:password]@host[:port]/db`).
    pub database: PathBuf,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How many identifiers of one kind a customer may hold.
    pub identity: IdentityCaps,
    pub plugins: PluginsConfig,
    pub console: ConsoleConfig,
    pub testing: TestingConfig,
}

/// For tests of the whole kernel: never in production.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Run on a test clock that starts at the system's time and moves only when an admin
    /// moves it (`POST /v1/admin/clock`): waits, expiries, schedules and the plugins' `now`
    /// follow it, and events without a time of their own happen at it.
    pub clock: bool,
}

/// The plugin host and the bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Compiled components, so that a restart does not compile again; default: `<database>.cache` beside the database.
    pub cache_dir: Option<PathBuf>,
    /// Threads delivering events to plugins.
    pub workers: usize,
    /// Events or customers per plugin call.
    pub batch_size: usize,
    /// Default wall-clock budget of a call, in milliseconds (a manifest may ask for up to `max_timeout_ms`).
    pub timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Default memory of an instance, in MiB (a manifest may ask for up to `max_memory_mib`).
    pub memory_mib: usize,
    pub max_memory_mib: usize,
    /// Seconds a message claimed for sending is held past the worst case of its claim's sends
    /// (one connector deadline each, up to and including its own); after a crash mid-send it
    /// goes out again (with the same idempotency key) once that has passed.
    pub outbox_lease_secs: u64,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        let host = kith_host::HostConfig::default();
        let bus = kith_bus::BusConfig::default();
        PluginsConfig {
            cache_dir: None,
            workers: bus.workers,
            batch_size: bus.batch_size,
            timeout_ms: host.default_timeout.as_millis() as u64,
            max_timeout_ms: host.max_timeout.as_millis() as u64,
            memory_mib: host.default_memory >> 20,
            max_memory_mib: host.max_memory >> 20,
            outbox_lease_secs: bus.outbox.lease.as_secs(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8080".into(),
            database: "kith.db".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: kith_api::ApiConfig::default().body_limit,
            identity: IdentityCaps::default(),
            plugins: PluginsConfig::default(),
            console: ConsoleConfig::default(),
            testing: TestingConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }

    /// The PostgreSQL URL `database` holds, when it is one rather than a SQLite file.
    pub fn postgres_url(&self) -> Option<&str> {
        let url = self.database.to_str()?;
        (url.starts_with("postgres://") || url.starts_with("postgresql://")).then_some(url)
    }

    /// The database as logs and messages show it: a SQLite file's path, or a PostgreSQL
    /// URL without its password.
    pub fn database_name(&self) -> String {
        match self.postgres_url() {
            Some(url) => redact(url),
            None => self.database.display().to_string(),
        }
    }

    /// Open the backend `database` names: PostgreSQL for a `postgres://` URL, else the SQLite file.
    pub fn open_store(&self) -> Result<Arc<dyn kith_core::Backend>> {
        if let Some(url) = self.postgres_url() {
            let options = kith_postgres::PgOptions { identity_caps: self.identity.clone(), ..Default::default() };
            let store = kith_postgres::Postgres::open(url, options).with_context(|| format!("opening database {}", redact(url)))?;
            return Ok(Arc::new(store));
        }
        let options = kith_sqlite::StoreOptions { identity_caps: self.identity.clone() };
        let store =
            kith_sqlite::Store::open(&self.database, options).with_context(|| format!("opening database {}", self.database.display()))?;
        Ok(Arc::new(store))
    }

    /// Where compiled components are kept by default: beside a SQLite file
    /// (`<database>.cache`), or `kith-plugin-cache` in the working folder for PostgreSQL
    /// (each node compiles its own; the database holds only the packages).
    fn default_cache_dir(&self) -> PathBuf {
        if self.postgres_url().is_some() {
            return PathBuf::from("kith-plugin-cache");
        }
        let mut dir = self.database.clone().into_os_string();
        dir.push(".cache");
        dir.into()
    }
}

/// A PostgreSQL URL with its password, if any, replaced by `***`, and its query (whose
/// parameters may carry a `password=`) left out.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(not a URL)".to_owned() };
    let rest = rest.split_once('?').map_or(rest, |(before, _query)| before);
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    match tail {
        Some(tail) => format!("{scheme}://{authority}/{}", tail.split_once('?').map_or(tail, |(db, _)| db)),
        None => format!("{scheme}://{authority}"),
    }
}

impl Config {
    /// The plugin host and the bus over `store`; workers are not started.
    /// The plugin host's limits as `kith serve` sets them (`kith plugin test` runs plugins with the same),
    /// compiled components cached in `cache_dir` (default: beside the database).
    pub fn host_config(&self, cache_dir: Option<PathBuf>) -> Result<kith_host::HostConfig> {
        let p = &self.plugins;
        let cache_dir = cache_dir.or_else(|| p.cache_dir.clone()).unwrap_or_else(|| self.default_cache_dir());
        // wasmtime's cache wants an absolute directory.
        let cache_dir = std::path::absolute(&cache_dir).with_context(|| format!("resolving {}", cache_dir.display()))?;
        Ok(kith_host::HostConfig {
            cache_dir: Some(cache_dir),
            default_timeout: Duration::from_millis(p.timeout_ms),
            max_timeout: Duration::from_millis(p.max_timeout_ms.max(p.timeout_ms)),
            default_memory: p.memory_mib << 20,
            max_memory: p.max_memory_mib.max(p.memory_mib) << 20,
            ..kith_host::HostConfig::default()
        })
    }

    pub fn open_bus(&self, store: Arc<dyn kith_core::Backend>) -> Result<Arc<kith_bus::Bus>> {
        let p = &self.plugins;
        let host = Arc::new(kith_host::Host::new(self.host_config(None)?).context("starting the plugin host")?);
        let defaults = kith_bus::BusConfig::default();
        let outbox = kith_core::outbox::OutboxPolicy { lease: Duration::from_secs(p.outbox_lease_secs.max(1)), ..defaults.outbox };
        let bus = kith_bus::BusConfig { workers: p.workers, batch_size: p.batch_size.max(1), outbox, ..defaults };
        let clock: Arc<dyn kith_bus::Clock> = if self.testing.clock {
            tracing::warn!("running on a test clock: time moves only through POST /v1/admin/clock");
            Arc::new(kith_bus::TestClock::new(chrono::Utc::now()))
        } else {
            Arc::new(kith_bus::SystemClock)
        };
        Ok(kith_bus::Bus::new(store, host, clock, bus))
    }
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        assert_eq!(redact("postgres://kith:s3cret@db.internal:5432/shop?sslmode=require"), "postgres://kith:***@db.internal:5432/shop");
        assert_eq!(redact("postgresql://kith@db/shop"), "postgresql://kith@db/shop");
        assert_eq!(redact("postgres://db?password=s3cret"), "postgres://db");
        assert_eq!(redact("postgres://k:p@db"), "postgres://k:***@db");
        assert_eq!(redact("host=db password=s3cret"), "(not a URL)");
    }

    #[test]
    fn file_overrides_defaults_and_refuses_unknown_keys() {
        let cfg: Config = toml::from_str("bind = \"0.0.0.0:9000\"\n[identity]\ndefault = 5\nper_kind = { phone = 2 }\n").unwrap();
        assert_eq!(cfg.bind, "0.0.0.0:9000");
        assert_eq!(cfg.database, PathBuf::from("kith.db"));
        assert_eq!(cfg.identity.cap("phone"), 2);
        assert_eq!(cfg.identity.cap("email"), 5);
        assert!(toml::from_str::<Config>("bnd = \"x\"").is_err());
        assert_eq!(cfg.console.cookie_secure, CookieSecureSetting::Auto);
        let cfg: Config = toml::from_str("[console]\ncookie_secure = \"always\"\n").unwrap();
        assert_eq!(cfg.console.cookie_secure, CookieSecureSetting::Always);
        assert!(toml::from_str::<Config>("[console]\ncookie_secure = \"sometimes\"\n").is_err());
    }
}
