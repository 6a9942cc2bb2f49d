//! Configuration: defaults, then the TOML file, then environment variables and flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kith_store::IdentityCaps;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `kith` can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address `kith serve` listens on.
    pub bind: String,
    /// The SQLite database file.
    pub database: PathBuf,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How many identifiers of one kind a customer may hold.
    pub identity: IdentityCaps,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8080".into(),
            database: "kith.db".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: kith_api::ApiConfig::default().body_limit,
            identity: IdentityCaps::default(),
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }

    pub fn open_store(&self) -> Result<kith_store::Store> {
        let options = kith_store::StoreOptions { identity_caps: self.identity.clone() };
        kith_store::Store::open(&self.database, options).with_context(|| format!("opening database {}", self.database.display()))
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
    fn file_overrides_defaults_and_refuses_unknown_keys() {
        let cfg: Config = toml::from_str("bind = \"0.0.0.0:9000\"\n[identity]\ndefault = 5\nper_kind = { phone = 2 }\n").unwrap();
        assert_eq!(cfg.bind, "0.0.0.0:9000");
        assert_eq!(cfg.database, PathBuf::from("kith.db"));
        assert_eq!(cfg.identity.cap("phone"), 2);
        assert_eq!(cfg.identity.cap("email"), 5);
        assert!(toml::from_str::<Config>("bnd = \"x\"").is_err());
    }
}
