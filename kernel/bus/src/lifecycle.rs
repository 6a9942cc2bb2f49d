//! Installing plugins into the catalogue and enabling them per shop.

use kith_core::Actor;
use kith_core::delivery::{Chain, Effects};
use kith_core::plugins::PutSubscription;
use kith_core::prelude::*;
use kith_domain::FieldError;
use kith_domain::plugin::{CallStats, DeadLetter, Grant, InstalledPlugin, Kind, PluginLog, PluginRun, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{Bus, BusError, Called, Package, Result};

/// Enable a plugin in a shop, or change how it is enabled.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    /// A semver requirement such as `^1.2` or `=1.2.3`; the newest installed
    /// version that matches is used. Absent: the newest installed version.
    #[serde(default)]
    pub version: Option<String>,
    /// The configuration, valid against the plugin's schema. Absent: `{}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// What the merchant grants, a subset of what the manifest requests.
    /// Absent: everything it requests.
    #[serde(default)]
    pub grant: Option<Grant>,
    /// Hours between scheduled runs over every customer; 0 turns them off.
    /// Absent: the plugin's own `run-every-hours`.
    #[serde(default)]
    pub run_every_hours: Option<u32>,
}

/// A plugin in a shop: how it is enabled, where it is on the bus, how its calls go.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginStatus {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// Events in the shop's log past the cursor. Always 0 for a channel
    /// connector, which takes no events: what it has left to do is `outbox`.
    pub lag: i64,
    /// For a channel connector, the shop's messages on its channel still
    /// queued (held for quiet hours or waiting for a retry included) or
    /// being sent; `null` for other kinds.
    pub outbox: Option<i64>,
    pub calls: CallStats,
    /// Dead letters not yet re-driven.
    pub open_dead_letters: i64,
    /// The newest runs, newest first.
    pub runs: Vec<PluginRun>,
    /// The newest log lines, newest first.
    pub logs: Vec<PluginLog>,
    /// What the plugin reports about itself (its kv key `status`): the JSON object
    /// it stored there, `null` when it stored none or what it stored is not a JSON object.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
}

/// The kv key a plugin reports about itself under, shown as [`PluginStatus::report`].
pub const REPORT_KEY: &str = "status";

/// Check a configuration against a manifest's schema; the error names the field, as `config.<path>`.
pub fn validate_config(schema: Option<&Value>, config: &Value) -> Result<(), FieldError> {
    let Some(schema) = schema else {
        return match config {
            Value::Object(_) => Ok(()),
            _ => Err(FieldError::new("config", "must be a JSON object")),
        };
    };
    // A schema installed before the kernel checked schemas may still cycle: never validate with it.
    kith_domain::plugin::check_schema(schema)
        .map_err(|e| FieldError::new("config", format!("the plugin's schema is unusable: {}", e.reason)))?;
    let validator =
        jsonschema::validator_for(schema).map_err(|e| FieldError::new("config", format!("the plugin's schema is unusable: {e}")))?;
    let Some(error) = validator.iter_errors(config).next() else { return Ok(()) };
    let mut field = String::from("config");
    for segment in error.instance_path.to_string().split('/').filter(|s| !s.is_empty()) {
        if segment.parse::<usize>().is_ok() {
            field.push_str(&format!("[{segment}]"));
        } else {
            field.push('.');
            field.push_str(segment);
        }
    }
    let message = error.to_string();
    // A missing property is reported at its parent; name the property itself.
    if let Some(name) = message.strip_prefix('"').and_then(|m| m.split_once("\" is a required property")).map(|(n, _)| n) {
        field.push('.');
        field.push_str(name);
    }
    Err(FieldError::new(field, message))
}

impl Bus {
    /// Validate a package and add it to the catalogue: its manifest, its
    /// schema, and a component that really exports its kind's world.
    pub fn install(&self, package: &Package, actor: &Actor) -> Result<(InstalledPlugin, bool)> {
        if let Some(prefix) = &package.manifest.tag_prefix {
            let catalogue = self.store.list_plugins()?;
            let taken = catalogue.iter().find(|p| {
                p.manifest.id != package.manifest.id
                    && p.manifest.tag_prefix.as_deref().is_some_and(|other| kith_domain::plugin::prefixes_overlap(prefix, other))
            });
            if let Some(owner) = taken {
                let other = owner.manifest.tag_prefix.as_deref().unwrap_or_default();
                return Err(FieldError::new(
                    "plugin.toml.tag-prefix",
                    format!("`{prefix}` overlaps `{other}`, the tag prefix of the installed plugin {}", owner.manifest.id),
                )
                .into());
            }
        }
        self.host.load(&package.manifest, &package.wasm)?;
        let sha = kith_host::sha256_hex(&package.wasm);
        Ok(self.store.install_plugin(&package.manifest, &package.wasm, &sha, actor)?)
    }

    /// Enable a plugin in a shop, or change its version, configuration or grant.
    pub fn enable(&self, shop_id: i64, plugin_id: &str, request: &EnableRequest, actor: &Actor) -> Result<(Subscription, bool)> {
        let versions = self.store.plugin_versions(plugin_id)?;
        if versions.is_empty() {
            return Err(kith_core::Error::NotFound(format!("plugin {plugin_id}")).into());
        }
        let requirement = request.version.as_deref().unwrap_or("*");
        let req =
            semver::VersionReq::parse(requirement).map_err(|e| FieldError::new("version", format!("not a semver requirement: {e}")))?;
        let installed = versions
            .iter()
            .rev()
            .find(|v| req.matches(&v.manifest.version))
            .ok_or_else(|| FieldError::new("version", format!("no installed version of {plugin_id} matches `{requirement}`")))?;
        let manifest = &installed.manifest;
        let config = request.config.clone().unwrap_or_else(|| Value::Object(Default::default()));
        validate_config(manifest.config_schema.as_ref(), &config)?;
        let grant = request.grant.clone().unwrap_or_else(|| Grant::all_requested(manifest));
        grant.check(manifest)?;
        // Compile now, so that a component this host cannot run fails the request, not the first delivery.
        self.plugin(installed)?;
        let version = manifest.version.to_string();
        let run_every_hours = request.run_every_hours.or(manifest.run_every_hours).filter(|h| *h > 0);
        let put = PutSubscription {
            plugin_id,
            version_req: requirement,
            version: &version,
            config: &config,
            grant: &grant,
            run_every_hours,
            channel: manifest.channel.as_deref(),
        };
        let (subscription, created) = self.store.put_subscription(shop_id, &put, actor)?;
        self.notify();
        Ok((subscription, created))
    }

    pub fn disable(&self, shop_id: i64, plugin_id: &str, actor: &Actor) -> Result<Subscription> {
        Ok(self.store.disable_subscription(shop_id, plugin_id, actor)?)
    }

    pub fn status(&self, shop_id: i64, plugin_id: &str) -> Result<PluginStatus> {
        let subscription = self.store.subscription(shop_id, plugin_id)?;
        // A connector's cursor stays where it was enabled, since it is handed
        // no events; the distance to the log's head would only count the
        // shop's events since then.
        let (lag, outbox) = if subscription.kind == Kind::ChannelConnector {
            (0, Some(self.store.outbox_backlog(shop_id, plugin_id)?))
        } else {
            // Counted in the shop's own events: global sequence numbers include other shops'.
            (self.store.events_past(shop_id, subscription.cursor)?, None)
        };
        let open_dead_letters = self.store.dead_letters(shop_id, plugin_id)?.iter().filter(|d| d.redriven_at.is_none()).count() as i64;
        Ok(PluginStatus {
            lag,
            outbox,
            calls: self.store.call_stats(shop_id, plugin_id)?,
            open_dead_letters,
            runs: self.store.runs(shop_id, plugin_id)?.into_iter().take(5).collect(),
            logs: self.store.plugin_logs(shop_id, plugin_id, None, 20)?,
            report: self
                .store
                .plugin_kv_get(shop_id, plugin_id, REPORT_KEY)?
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .filter(Value::is_object),
            subscription,
        })
    }

    /// Deliver a dead letter's events again, now; on success its decisions
    /// apply and it is marked re-driven, on failure it stays open.
    pub fn redrive(&self, shop_id: i64, plugin_id: &str, dead_letter: i64) -> Result<DeadLetter> {
        let letter = self.store.dead_letter(shop_id, plugin_id, dead_letter)?;
        if letter.redriven_at.is_some() {
            return Err(kith_core::Error::Conflict(format!("dead letter {dead_letter} was already re-driven")).into());
        }
        let sub = self.store.subscription(shop_id, plugin_id)?;
        let installed = self.store.plugin_version(plugin_id, &sub.version)?;
        let (events, _) = self.store.events_for(
            shop_id,
            plugin_id,
            &installed.manifest.events,
            letter.first_seq - 1,
            Some(letter.last_seq),
            usize::MAX,
        )?;
        let chain = Chain::of(events.iter().filter_map(|e| Some((e.customer_id?, e))));
        let subjects = self.subjects(shop_id, events, &installed.manifest)?;
        let plugin = self.plugin(&installed)?;
        let input = crate::event_input(sub.kind, self.context(shop_id)?, subjects)
            .ok_or_else(|| FieldError::new("plugin", "channel connectors take no events"))?;
        match self.call(&plugin, &sub, input, &chain) {
            Called::Decided(decisions, report) => {
                let attempt = self.attempt(&sub, &report);
                let effects = Effects { decisions: &decisions, kv_writes: &report.kv_writes, chain: Some(&chain) };
                match self.store.commit_redrive(&attempt, dead_letter, &effects) {
                    Err(kith_core::Error::Invalid(refused)) => {
                        let error = format!("decision refused: {refused}");
                        self.store.record_redrive_failure(&attempt, dead_letter, &error)?;
                        Err(BusError::Invalid(FieldError::new("dead_letter", error)))
                    }
                    other => Ok(other?),
                }
            }
            Called::Failed(error, report) => {
                self.store.record_redrive_failure(&self.attempt(&sub, &report), dead_letter, &error)?;
                Err(BusError::Invalid(FieldError::new("dead_letter", format!("the re-drive failed: {error}"))))
            }
        }
    }

    /// Start a run of the plugin over all of the shop's customers.
    pub fn start_run(&self, shop_id: i64, plugin_id: &str, actor: &Actor) -> Result<PluginRun> {
        let sub = self.store.subscription(shop_id, plugin_id)?;
        if sub.kind == Kind::ChannelConnector {
            return Err(FieldError::new("plugin", "channel connectors have no runs").into());
        }
        let run = self.store.start_run(shop_id, plugin_id, actor, self.clock.now())?;
        self.refresh_contexts();
        self.notify();
        Ok(run)
    }

    pub fn resume_run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        let run = self.store.resume_run(shop_id, plugin_id, run_id)?;
        self.notify();
        Ok(run)
    }
}
