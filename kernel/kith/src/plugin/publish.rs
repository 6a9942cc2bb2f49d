//! `kith plugin publish`: pack, install into a running kernel, and optionally enable in a shop.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::{Project, pack};
use crate::config::Config;

#[derive(Args)]
pub struct PublishArgs {
    /// The project (default: the current folder, or the nearest above it with a plugin.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The kernel's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "KITH_URL")]
    pub url: String,
    /// An admin key (installing adds to the catalogue every shop sees).
    #[arg(long, env = "KITH_ADMIN_KEY", hide_env_values = true)]
    pub key: String,
    /// Enable the version just installed in the shop of --shop-key.
    #[arg(long)]
    pub enable: bool,
    /// A key of the shop to enable it in, with plugins:manage (an owner's key).
    #[arg(long, env = "KITH_SHOP_KEY", hide_env_values = true)]
    pub shop_key: Option<String>,
    /// The shop's configuration of the plugin: a JSON file, or JSON text (default {}).
    #[arg(long)]
    pub plugin_config: Option<String>,
    /// A host the shop grants the plugin (repeatable): a connector reaches only hosts its manifest
    /// declares and the shop grants. With none, the shop grants what the manifest asks for.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Publish the component the last build made, without building.
    #[arg(long)]
    pub no_build: bool,
}

pub fn run(config: &Config, args: PublishArgs) -> Result<()> {
    let project = Project::find(&args.dir)?;
    let plugin_config = match &args.plugin_config {
        None => json!({}),
        Some(text) if text.trim_start().starts_with('{') => serde_json::from_str(text).context("--plugin-config is not JSON")?,
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
            .with_context(|| format!("{path} is not JSON"))?,
    };
    if args.enable && args.shop_key.is_none() {
        bail!("--enable needs --shop-key (a key of the shop, with plugins:manage)");
    }
    let (_, package) = pack::pack(config, &project, None, args.no_build)?;
    let base = args.url.trim_end_matches('/').to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{base}/v1/plugins"))
            .header("authorization", format!("Bearer {}", args.key))
            .header("content-type", "application/gzip")
            .body(package)
            .send()
            .await
            .with_context(|| format!("POST {base}/v1/plugins"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("installing was refused ({status}): {}", problem(&body));
        }
        let id = &project.manifest.id;
        let version = project.manifest.version.to_string();
        println!("{} {id} {version} into {base}", if status.as_u16() == 201 { "installed" } else { "already installed:" });
        if let (true, Some(shop_key)) = (args.enable, &args.shop_key) {
            let response = client
                .put(format!("{base}/v1/shop/plugins/{id}"))
                .header("authorization", format!("Bearer {shop_key}"))
                .json(&enable_request(&project.manifest, &version, plugin_config, &args.allow_hosts))
                .send()
                .await
                .with_context(|| format!("PUT {base}/v1/shop/plugins/{id}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("enabling was refused ({status}): {}", problem(&body));
            }
            println!("enabled {id} {version} in shop {} ({})", body["shop_id"], body["status"].as_str().unwrap_or("enabled"));
        }
        Ok(())
    })
}

/// The body of `PUT /v1/shop/plugins/{id}`: this version, the config, and everything the manifest
/// asks for with the hosts given (none given: the kernel's default grant).
fn enable_request(manifest: &kith_domain::plugin::Manifest, version: &str, config: Value, hosts: &[String]) -> Value {
    let mut request = json!({"version": format!("={version}"), "config": config});
    if !hosts.is_empty() {
        let mut granted: Vec<String> = manifest.allowed_hosts.iter().filter(|h| *h != "*").cloned().collect();
        granted.extend(hosts.iter().filter(|h| !granted.contains(h)).cloned().collect::<Vec<_>>());
        request["grant"] = json!({"capabilities": manifest.capabilities, "allowed_hosts": granted});
    }
    request
}

/// A problem+json answer in one line: its detail and the field at fault.
fn problem(body: &Value) -> String {
    let detail = body["detail"].as_str().or(body["title"].as_str()).unwrap_or("no detail");
    match body["field"].as_str() {
        Some(field) => format!("{detail} (field {field})"),
        None => detail.to_owned(),
    }
}
