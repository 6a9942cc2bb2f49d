//! Plugins in the kernel's terms: manifests, capabilities and what a shop
//! grants, the snapshots a plugin gets and the decisions it returns.
//!
//! [`Capability`] checks live here, in one place, so that the host (imports),
//! the bus (decisions) and the API (grants) agree on them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::FieldError;
use crate::model::Customer;

/// The WIT package versions this kernel serves, newest last.
pub const SERVED_API_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// The kind of a plugin, which names the WIT world its component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    TagRule,
    ScoringModel,
    LoyaltyScheme,
    ChannelConnector,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TagRule => "tag-rule",
            Kind::ScoringModel => "scoring-model",
            Kind::LoyaltyScheme => "loyalty-scheme",
            Kind::ChannelConnector => "channel-connector",
        }
    }

    /// Capabilities a plugin of this kind may request at all.
    pub fn allowed_capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Kind::TagRule => &[Log, Config, Kv, Clock, CustomersRead, TagsWrite, EventsEmit],
            Kind::ScoringModel => &[Log, Config, Kv, Clock, CustomersRead, ScoresWrite, TagsWrite, EventsEmit],
            Kind::LoyaltyScheme => &[Log, Config, Kv, Clock, CustomersRead, PointsWrite, TiersWrite, TagsWrite, EventsEmit],
            // A send commits no kv writes (only a delivery's decisions carry them), so a
            // connector may not ask for a store whose writes would be lost.
            Kind::ChannelConnector => &[Log, Config, Clock, Http],
        }
    }

    /// Whether plugins of this kind take events from the bus.
    pub fn subscribes(self) -> bool {
        !matches!(self, Kind::ChannelConnector)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Kind::TagRule, Kind::ScoringModel, Kind::LoyaltyScheme, Kind::ChannelConnector]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}`"))
    }
}

/// What a plugin may do: each host import and each kind of decision is behind one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Capability {
    /// Write log lines (`log` import).
    #[serde(rename = "log")]
    Log,
    /// Read the shop's configuration (`config` import).
    #[serde(rename = "config")]
    Config,
    /// Keep state in the shop's key-value space (`kv` import).
    #[serde(rename = "kv")]
    Kv,
    /// Read the kernel's clock (`clock` import).
    #[serde(rename = "clock")]
    Clock,
    /// Read any customer of the shop (`customers` import).
    #[serde(rename = "customers:read")]
    CustomersRead,
    /// Add and remove the plugin's own tags.
    #[serde(rename = "tags:write")]
    TagsWrite,
    /// Set the plugin's scores.
    #[serde(rename = "scores:write")]
    ScoresWrite,
    /// Award and claw back points.
    #[serde(rename = "points:write")]
    PointsWrite,
    /// Move customers between tiers.
    #[serde(rename = "tiers:write")]
    TiersWrite,
    /// Emit `plugin.*` events onto the bus.
    #[serde(rename = "events:emit")]
    EventsEmit,
    /// Outbound HTTP to the granted hosts (`wasi:http/outgoing-handler`).
    #[serde(rename = "http")]
    Http,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::Kv => "kv",
            Capability::Clock => "clock",
            Capability::CustomersRead => "customers:read",
            Capability::TagsWrite => "tags:write",
            Capability::ScoresWrite => "scores:write",
            Capability::PointsWrite => "points:write",
            Capability::TiersWrite => "tiers:write",
            Capability::EventsEmit => "events:emit",
            Capability::Http => "http",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits a plugin asks for; each is capped by the kernel's maxima.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestedLimits {
    /// Wall-clock budget of one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory of one instance, in MiB.
    pub memory_mib: Option<u64>,
    /// Fuel per call, for schemes that want deterministic bounds.
    pub fuel: Option<u64>,
    /// Events or customers per call, at most: fewer than the kernel's batch size for a
    /// plugin whose work per customer would not fit its time budget in a full batch.
    pub batch_size: Option<u32>,
    /// Events the plugin may emit per minute in one shop, at most
    /// [`MAX_EVENTS_PER_MINUTE`]; [`DEFAULT_EVENTS_PER_MINUTE`] unless asked. Past it the
    /// plugin's deliveries and runs in that shop wait until the minute has room (the bus).
    pub events_per_minute: Option<u32>,
}

/// Events a plugin may emit per minute in one shop when its manifest asks for no other number.
pub const DEFAULT_EVENTS_PER_MINUTE: u32 = 1_000;
/// The most events a plugin may emit per minute in one shop, whatever its manifest asks.
pub const MAX_EVENTS_PER_MINUTE: u32 = 60_000;

impl RequestedLimits {
    /// Each limit asked for is at least 1: a zero would fail every call. The emission rate
    /// has a ceiling of its own (the others are capped by the kernel's configured maxima).
    fn validate(&self) -> Result<(), FieldError> {
        let asked = [
            ("limits.timeout-ms", self.timeout_ms),
            ("limits.memory-mib", self.memory_mib),
            ("limits.fuel", self.fuel),
            ("limits.batch-size", self.batch_size.map(u64::from)),
            ("limits.events-per-minute", self.events_per_minute.map(u64::from)),
        ];
        if let Some((field, _)) = asked.into_iter().find(|(_, value)| *value == Some(0)) {
            return Err(FieldError::new(field, "must be at least 1"));
        }
        if self.events_per_minute.is_some_and(|n| n > MAX_EVENTS_PER_MINUTE) {
            return Err(FieldError::new("limits.events-per-minute", format!("must be at most {MAX_EVENTS_PER_MINUTE}")));
        }
        Ok(())
    }

    /// Events the plugin may emit per minute in one shop: what it asked for, within the ceiling.
    pub fn events_per_minute(&self) -> u32 {
        self.events_per_minute.unwrap_or(DEFAULT_EVENTS_PER_MINUTE).min(MAX_EVENTS_PER_MINUTE)
    }
}

/// `plugin.toml`: what a package says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Lower-case letters, digits and `-`, starting with a letter; at most 64 characters.
    pub id: String,
    /// Semantic version of the plugin.
    #[schema(value_type = String, example = "1.2.0")]
    pub version: semver::Version,
    pub kind: Kind,
    /// The `kith:plugin` WIT version the component was built against.
    #[schema(value_type = String, example = "0.1.0")]
    pub api_version: semver::Version,
    pub description: String,
    pub vendor: String,
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
    /// Hosts a channel connector may call, e.g. `api.example.com` or `127.0.0.1:9000`;
    /// `*` alone: whichever hosts the shop grants (a gateway the merchant configures).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The channel a connector sends on, e.g. `sms`; connectors only.
    #[serde(default)]
    pub channel: Option<String>,
    /// Event types delivered to the plugin, e.g. `order.paid`; `*` for all.
    #[serde(default)]
    pub events: Vec<String>,
    /// JSON Schema of the shop's configuration.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<Value>,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// Run over every customer of a shop this often (hours), because the
    /// plugin's results move with time (recency, windows); a shop may change it.
    #[serde(default)]
    pub run_every_hours: Option<u32>,
    /// The parts of each customer the plugin's batches carry, e.g.
    /// `["stats", "tags"]`; the others arrive empty. Absent: every part.
    /// What a plugin does not read is neither loaded nor passed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Part>>)]
    pub reads: Option<BTreeSet<Part>>,
    /// The tags the plugin owns, e.g. `lifecycle:`: no other plugin may set a
    /// tag that starts with it, so segments and journeys can trust them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix: Option<String>,
}

/// A part of the WIT `customer` record a plugin's batches may carry; `id`
/// and `created-at` always come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Name, gender, birthday, province, city and the shop's attributes.
    Profile,
    /// Purchase statistics.
    Stats,
    Tags,
    Scores,
    /// The points balance.
    Points,
    Tier,
}

/// Which parts of a customer to load and pass to a plugin: a set of [`Part`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads(u8);

impl Reads {
    /// Every part: plugins that do not say what they read.
    pub const ALL: Reads = Reads(u8::MAX);

    pub fn of(parts: impl IntoIterator<Item = Part>) -> Reads {
        Reads(parts.into_iter().fold(0, |bits, part| bits | (1 << part as u8)))
    }

    pub fn has(self, part: Part) -> bool {
        self.0 & (1 << part as u8) != 0
    }

    /// Clear what is not read, as the plugin is told it arrives: empty.
    pub fn blank(self, customer: &mut Customer) {
        if !self.has(Part::Profile) {
            customer.profile = Default::default();
        }
        if !self.has(Part::Stats) {
            customer.stats = Default::default();
        }
        if !self.has(Part::Tags) {
            customer.tags.clear();
        }
        if !self.has(Part::Scores) {
            customer.scores.clear();
        }
        if !self.has(Part::Points) {
            customer.points = 0;
        }
        if !self.has(Part::Tier) {
            customer.tier = None;
        }
    }
}

impl Manifest {
    /// What the plugin's batches carry of each customer.
    pub fn reads(&self) -> Reads {
        self.reads.as_ref().map_or(Reads::ALL, |parts| Reads::of(parts.iter().copied()))
    }
}

pub const MAX_ID_LEN: usize = 64;

/// A plugin id or a tag: lower-case ASCII letters, digits and `-`, starting with a letter.
pub fn valid_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Most bytes of a `plugin.toml`.
pub const MAX_MANIFEST_BYTES: usize = 256 << 10;
/// Most bytes of a manifest's `description`.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Most bytes of a manifest's `vendor`.
pub const MAX_VENDOR_BYTES: usize = 256;
/// Most event types a manifest may subscribe to.
pub const MAX_EVENT_TYPES: usize = 100;
/// Most hosts a manifest may declare.
pub const MAX_HOSTS: usize = 64;
/// Most bytes of a configuration schema, as JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;
/// Deepest nesting of a configuration schema (objects and arrays).
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Most bytes of a `tag-prefix`.
pub const MAX_TAG_PREFIX_BYTES: usize = 32;

impl Manifest {
    /// Parse `plugin.toml`; unknown fields are refused.
    pub fn parse(text: &str) -> Result<Manifest, FieldError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(FieldError::new("plugin.toml", format!("must be at most {MAX_MANIFEST_BYTES} bytes")));
        }
        let de = toml::Deserializer::parse(text).map_err(|e| FieldError::new("plugin.toml", e.message().to_owned()))?;
        let manifest: Manifest = serde_path_to_error::deserialize(de)
            .map_err(|e| FieldError::from_serde(&e.path().to_string(), e.inner().message().to_owned()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Rules that serde cannot express.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !valid_plugin_id(&self.id) {
            return Err(FieldError::new("id", "must be 1 to 64 lower-case letters, digits or `-`, starting with a letter"));
        }
        for (field, value, max) in [("description", &self.description, MAX_DESCRIPTION_BYTES), ("vendor", &self.vendor, MAX_VENDOR_BYTES)] {
            if value.len() > max || value.chars().any(|c| c.is_control() && c != '\n') || has_invisible(value) {
                return Err(FieldError::new(field, format!("must be at most {max} bytes, without control or invisible characters")));
            }
        }
        if self.events.len() > MAX_EVENT_TYPES {
            return Err(FieldError::new("events", format!("at most {MAX_EVENT_TYPES} event types")));
        }
        if self.allowed_hosts.len() > MAX_HOSTS {
            return Err(FieldError::new("allowed-hosts", format!("at most {MAX_HOSTS} hosts")));
        }
        if let Some(prefix) = &self.tag_prefix
            && (prefix.is_empty()
                || prefix.len() > MAX_TAG_PREFIX_BYTES
                || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
                || has_invisible(prefix))
        {
            return Err(FieldError::new(
                "tag-prefix",
                format!("expected 1 to {MAX_TAG_PREFIX_BYTES} bytes without spaces or invisible characters, e.g. `lifecycle:`"),
            ));
        }
        if !SERVED_API_VERSIONS.iter().any(|v| api_compatible(v, &self.api_version)) {
            return Err(FieldError::new(
                "api-version",
                format!("kith:plugin@{} is not served by this kernel (it serves {})", self.api_version, SERVED_API_VERSIONS.join(", ")),
            ));
        }
        let allowed = self.kind.allowed_capabilities();
        if let Some(cap) = self.capabilities.iter().find(|c| !allowed.contains(c)) {
            return Err(FieldError::new("capabilities", format!("a {} may not request `{cap}`", self.kind)));
        }
        if !self.allowed_hosts.is_empty() && !self.capabilities.contains(&Capability::Http) {
            return Err(FieldError::new("allowed-hosts", "hosts need the `http` capability"));
        }
        if self.allowed_hosts.len() > 1 && self.allowed_hosts.iter().any(|h| h == "*") {
            return Err(FieldError::new("allowed-hosts", "`*` stands alone: it lets the shop grant any host"));
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            if host != "*" && !valid_host_pattern(host) {
                return Err(FieldError::new(format!("allowed-hosts[{i}]"), "expected a host name or `host:port`, without scheme or path"));
            }
        }
        match (&self.channel, self.kind) {
            (None, Kind::ChannelConnector) => return Err(FieldError::new("channel", "a channel connector names its channel, e.g. `sms`")),
            (Some(_), kind) if kind != Kind::ChannelConnector => {
                return Err(FieldError::new("channel", format!("a {kind} sends on no channel")));
            }
            (Some(channel), _) if !crate::messaging::valid_channel(channel) => {
                return Err(FieldError::new("channel", "expected lower-case letters, digits or `-`, e.g. `sms`"));
            }
            _ => {}
        }
        if self.reads.is_some() && !self.kind.subscribes() {
            return Err(FieldError::new("reads", format!("a {} is handed no customers", self.kind)));
        }
        if !self.events.is_empty() && !self.kind.subscribes() {
            return Err(FieldError::new("events", format!("a {} does not take events", self.kind)));
        }
        for (i, ty) in self.events.iter().enumerate() {
            if ty.is_empty() || ty.len() > 64 || ty.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(FieldError::new(format!("events[{i}]"), "expected an event type such as `order.paid`, or `*`"));
            }
        }
        if let Some(schema) = &self.config_schema {
            check_schema(schema)?;
        }
        self.limits.validate()
    }
}

/// Whether two declared tag prefixes claim some tag in common.
pub fn prefixes_overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

pub fn has_invisible(text: &str) -> bool {
    text.chars().any(crate::text::is_invisible)
}

/// A configuration schema the kernel can validate against in bounded time and memory:
/// an object, at most `MAX_SCHEMA_BYTES` and `MAX_SCHEMA_DEPTH` deep, whose local
/// references (`$ref: "#/…"`) never lead back to themselves without consuming input
/// (a cycle through `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` or `$ref`
/// alone is followed forever by a validator). Identifiers and dynamic references are refused.
/// Keywords whose resolution escapes [`check_schema`]'s cycle check: refused.
const FORBIDDEN_SCHEMA_KEYWORDS: [&str; 6] = ["$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"];

pub fn check_schema(schema: &Value) -> Result<(), FieldError> {
    if !schema.is_object() {
        return Err(FieldError::new("config-schema", "must be a JSON Schema object"));
    }
    if serde_json::to_string(schema).map_or(usize::MAX, |s| s.len()) > MAX_SCHEMA_BYTES {
        return Err(FieldError::new("config-schema", format!("must be at most {MAX_SCHEMA_BYTES} bytes as JSON")));
    }
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    if depth(schema) > MAX_SCHEMA_DEPTH {
        return Err(FieldError::new("config-schema", format!("must nest at most {MAX_SCHEMA_DEPTH} levels")));
    }
    // From each subschema, the subschemas it applies to the same instance (in place).
    fn in_place<'a>(schema: &'a Value, root: &'a Value, out: &mut Vec<(String, &'a Value)>) -> Result<(), FieldError> {
        let Value::Object(map) = schema else { return Ok(()) };
        // Identifiers and dynamic references resolve outside `#/…` pointers, where the cycle
        // check cannot follow them. (A keyword's value is a string or a boolean: a property
        // of the same name, an object, is not one.)
        for key in FORBIDDEN_SCHEMA_KEYWORDS {
            if map.get(key).is_some_and(|v| !v.is_object()) {
                return Err(FieldError::new(
                    "config-schema",
                    format!("`{key}` is not served: only `$ref` to a JSON pointer within the schema (`#/…`)"),
                ));
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(items)) = map.get(key) {
                out.extend(items.iter().enumerate().map(|(i, s)| (format!("{key}[{i}]"), s)));
            }
        }
        for key in ["not", "if", "then", "else"] {
            if let Some(s) = map.get(key) {
                out.push((key.to_owned(), s));
            }
        }
        if let Some(Value::Object(deps)) = map.get("dependentSchemas") {
            out.extend(deps.iter().map(|(k, s)| (format!("dependentSchemas.{k}"), s)));
        }
        if let Some(Value::String(target)) = map.get("$ref") {
            let Some(pointer) = target.strip_prefix('#') else {
                return Err(FieldError::new(
                    "config-schema",
                    format!("`$ref` `{target}`: only references within the schema (`#…`) are served"),
                ));
            };
            let found = root
                .pointer(pointer)
                .ok_or_else(|| FieldError::new("config-schema", format!("`$ref` `{target}` names nothing in the schema")))?;
            out.push((format!("$ref {target}"), found));
        }
        Ok(())
    }
    // Depth-first over in-place applications, by node identity: a node seen on the current path is a cycle.
    fn walk<'a>(node: &'a Value, root: &'a Value, path: &mut Vec<*const Value>, budget: &mut usize) -> Result<(), FieldError> {
        let here = node as *const Value;
        if path.contains(&here) {
            return Err(FieldError::new(
                "config-schema",
                "a `$ref` leads back to itself without consuming input (through allOf, anyOf, oneOf, not, if/then/else or $ref): validation would never end",
            ));
        }
        *budget = budget.checked_sub(1).ok_or_else(|| FieldError::new("config-schema", "references expand too far"))?;
        let mut next = Vec::new();
        in_place(node, root, &mut next)?;
        path.push(here);
        for (_, child) in next {
            walk(child, root, path, budget)?;
        }
        path.pop();
        Ok(())
    }
    // Every subschema is a starting point: a cycle may sit under `properties`.
    fn every<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                out.push(v);
                m.values().for_each(|c| every(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| every(c, out)),
            _ => {}
        }
    }
    let mut nodes = Vec::new();
    every(schema, &mut nodes);
    let mut budget = 100_000usize;
    for node in nodes {
        walk(node, schema, &mut Vec::new(), &mut budget)?;
    }
    Ok(())
}

/// Whether a component built against `built` runs on a host serving `served`:
/// same major (same minor while the major is 0), and not newer than served.
pub fn api_compatible(served: &str, built: &semver::Version) -> bool {
    let Ok(served) = semver::Version::parse(served) else { return false };
    let same_line = if served.major == 0 { built.major == 0 && built.minor == served.minor } else { built.major == served.major };
    same_line && *built <= served
}

fn valid_host_pattern(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Whether `authority` (`host` or `host:port` of a request) matches one of `patterns`.
/// A pattern without a port allows any port of that host.
pub fn host_allowed(patterns: &[String], authority: &str) -> bool {
    let authority = authority.to_ascii_lowercase();
    let host = authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h);
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        if p.contains(':') { p == authority } else { p == host }
    })
}

/// What a merchant grants a plugin in a shop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub capabilities: BTreeSet<Capability>,
    /// Hosts a connector may call; a subset of the manifest's `allowed-hosts`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Grant {
    /// Everything the manifest requests.
    pub fn all_requested(manifest: &Manifest) -> Grant {
        let hosts = manifest.allowed_hosts.iter().filter(|h| *h != "*").cloned().collect();
        Grant { capabilities: manifest.capabilities.clone(), allowed_hosts: hosts }
    }

    /// A grant may only hold what the manifest requests.
    pub fn check(&self, manifest: &Manifest) -> Result<(), FieldError> {
        if let Some(cap) = self.capabilities.iter().find(|c| !manifest.capabilities.contains(c)) {
            return Err(FieldError::new("grant.capabilities", format!("`{cap}` is not requested by {} {}", manifest.id, manifest.version)));
        }
        let any_host = manifest.allowed_hosts.iter().any(|h| h == "*");
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            if any_host && !valid_host_pattern(host) {
                return Err(FieldError::new(
                    format!("grant.allowed_hosts[{i}]"),
                    "expected a host name or `host:port`, without scheme or path",
                ));
            }
            if !any_host && !manifest.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(FieldError::new(format!("grant.allowed_hosts[{i}]"), format!("`{host}` is not declared by the manifest")));
            }
        }
        if !self.allowed_hosts.is_empty() && !self.capabilities.contains(&Capability::Http) {
            return Err(FieldError::new("grant.allowed_hosts", "hosts need the `http` capability granted"));
        }
        // Such a plugin could reach nothing: every call it makes would fail.
        if any_host && self.has(Capability::Http) && self.allowed_hosts.is_empty() {
            return Err(FieldError::new(
                "grant.allowed_hosts",
                format!("{} reaches whatever hosts the shop grants: name at least one, e.g. the provider's API host", manifest.id),
            ));
        }
        Ok(())
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    /// Hosts a request may go to: those granted, which are declared by construction.
    pub fn allows_host(&self, authority: &str) -> bool {
        self.has(Capability::Http) && host_allowed(&self.allowed_hosts, authority)
    }
}

/// A customer as a plugin sees them.
pub type Snapshot = Customer;

/// An order as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub external_id: String,
    pub customer_id: i64,
    pub amount: i64,
    pub refunded_amount: i64,
    pub status: String,
    pub coupon_code: Option<String>,
    pub paid_at_ms: i64,
    pub items: Vec<OrderItemSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItemSnapshot {
    pub sku: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub quantity: u32,
    pub unit_price: i64,
    pub discount: i64,
}

/// A behaviour as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviourSnapshot {
    /// `view`, `favorite`, `cart` or `purchase`.
    pub kind: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub occurred_at_ms: i64,
}

/// What a customer did since a time, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub customer_id: i64,
    pub orders: Vec<OrderSnapshot>,
    pub behaviours: Vec<BehaviourSnapshot>,
    /// The oldest entries past the caps were left out.
    pub truncated: bool,
}

/// Customers one `history` call may ask for.
pub const MAX_HISTORY_IDS: usize = 1000;
/// Orders and behaviours one history holds at most (the newest).
pub const MAX_HISTORY_ORDERS: usize = 500;
pub const MAX_HISTORY_BEHAVIOURS: usize = 1000;

/// One buyer's purchases as the repeat-purchase models (BG/NBD, Gamma-Gamma)
/// read them (`summaries.buyers`, since `kith:plugin@0.2.0`). Orders are those
/// customer stats count (paid, not fully refunded, partial refunds deducted);
/// days are calendar days in the shop's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerSummary {
    pub customer_id: i64,
    pub first_order_at_ms: i64,
    pub last_order_at_ms: i64,
    /// Distinct days with an order; the repeat purchases are one fewer.
    pub purchase_days: u32,
    pub order_count: u32,
    /// Amount paid less refunds, over all the buyer's orders.
    pub total_spent: i64,
    /// Amount paid less refunds, over the orders of the days after the first purchase day.
    pub repeat_spent: i64,
    /// Days from the first purchase day to the last.
    pub span_days: u32,
    /// Days from the first purchase day to today.
    pub age_days: u32,
}

/// Buyers one `summaries.buyers` page holds at most.
pub const MAX_SUMMARIES_PAGE: usize = 1000;

/// One unit of work for a tag rule or a loyalty scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub customer: Snapshot,
    pub event: Option<EventSnapshot>,
    pub order: Option<OrderSnapshot>,
}

/// An event of the log as a plugin is handed it: the payload as the log
/// holds it, JSON text the kernel does not parse on the way (plugins take
/// it as text), and the order it names, read from it by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSnapshot {
    pub seq: i64,
    /// e.g. `order.paid`.
    pub kind: String,
    pub customer_id: Option<i64>,
    /// A JSON object, as text.
    pub payload: String,
    /// The payload's `order_id`, when it is a string.
    pub order_id: Option<String>,
    pub created_at_ms: i64,
}

/// A measure over the shop's buyers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub average: f64,
    /// 20th, 40th, 60th and 80th percentiles; empty without buyers.
    pub quintiles: Vec<f64>,
}

/// The shop around a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopContext {
    pub shop_id: i64,
    pub now_ms: i64,
    /// The window in days the distributions cover; `None`: all time.
    pub window_days: Option<u32>,
    pub time_zone: String,
    pub currency: String,
    pub customer_count: u64,
    pub buyer_count: u64,
    pub recency_days: Distribution,
    pub frequency: Distribution,
    pub monetary: Distribution,
    pub average_order_value: f64,
}

/// What a plugin asks the kernel to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Decision {
    AddTag { customer_id: i64, tag: String, reason: String },
    RemoveTag { customer_id: i64, tag: String, reason: String },
    SetScore { customer_id: i64, model: String, value: f64, label: Option<String>, explanation: String },
    AwardPoints { customer_id: i64, points: i64, source_key: String, reason: String, expires_at_ms: Option<i64> },
    ClawBackPoints { customer_id: i64, points: i64, source_key: String, reason: String },
    ChangeTier { customer_id: i64, tier: String, reason: String },
    EmitEvent { customer_id: Option<i64>, event_type: String, payload: String },
}

pub const MAX_TAG_LEN: usize = 64;
pub const MAX_REASON_LEN: usize = 1024;
pub const MAX_EMITTED_PAYLOAD: usize = 16 * 1024;
/// Scores are finite and at most this large either way.
pub const MAX_SCORE: f64 = 1e12;
/// Points expire between 2000-01-01 and 9999-12-31 (UTC), in ms.
pub const EXPIRES_AT_RANGE: std::ops::RangeInclusive<i64> = 946_684_800_000..=253_402_300_799_999;
/// Tags one plugin may hold on one customer; a decision past it is refused.
pub const MAX_TAGS_PER_CUSTOMER: usize = 256;
/// Points one call may award one customer, all decisions together.
pub const MAX_POINTS_PER_CUSTOMER_PER_CALL: i64 = 1_000_000_000;
/// Events one call may emit per subject it was handed (on average over the call).
pub const MAX_EVENTS_PER_SUBJECT: usize = 4;
/// How many plugins an emitted event may have passed through: an event a plugin emits
/// because of another plugin's event is one deeper. Past this the chain is refused.
pub const MAX_EVENT_CHAIN: u32 = 4;
/// The payload key carrying an emitted event's chain depth when it is 2 or more.
pub const CHAIN_KEY: &str = "chain";

impl Decision {
    pub fn customer_id(&self) -> Option<i64> {
        match self {
            Decision::AddTag { customer_id, .. }
            | Decision::RemoveTag { customer_id, .. }
            | Decision::SetScore { customer_id, .. }
            | Decision::AwardPoints { customer_id, .. }
            | Decision::ClawBackPoints { customer_id, .. }
            | Decision::ChangeTier { customer_id, .. } => Some(*customer_id),
            Decision::EmitEvent { customer_id, .. } => *customer_id,
        }
    }

    /// The capability the decision needs.
    pub fn capability(&self) -> Capability {
        match self {
            Decision::AddTag { .. } | Decision::RemoveTag { .. } => Capability::TagsWrite,
            Decision::SetScore { .. } => Capability::ScoresWrite,
            Decision::AwardPoints { .. } | Decision::ClawBackPoints { .. } => Capability::PointsWrite,
            Decision::ChangeTier { .. } => Capability::TiersWrite,
            Decision::EmitEvent { .. } => Capability::EventsEmit,
        }
    }

    /// Check the decision of plugin `plugin_id` against its grant and the
    /// kernel's rules for values. Shop membership of the customer is the
    /// store's check, when it applies the decision.
    pub fn check(&self, plugin_id: &str, grant: &Grant) -> Result<(), String> {
        let cap = self.capability();
        if !grant.has(cap) {
            return Err(format!("capability `{cap}` is not granted"));
        }
        let text = |what: &str, value: &str, max: usize| -> Result<(), String> {
            if value.len() > max || value.chars().any(char::is_control) {
                return Err(format!("{what} must be at most {max} bytes without control characters"));
            }
            if has_invisible(value) {
                return Err(format!("{what} must not hold invisible characters (bidirectional controls, zero-width characters)"));
            }
            Ok(())
        };
        match self {
            Decision::AddTag { tag, reason, .. } | Decision::RemoveTag { tag, reason, .. } => {
                if tag.trim().is_empty() {
                    return Err("tag must not be empty".into());
                }
                text("tag", tag, MAX_TAG_LEN)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::SetScore { model, value, label, explanation, .. } => {
                if model != plugin_id && !model.strip_prefix(plugin_id).is_some_and(|rest| rest.starts_with('.') && rest.len() > 1) {
                    return Err(format!("score model `{model}` must be `{plugin_id}` or `{plugin_id}.<facet>`"));
                }
                text("model", model, MAX_ID_LEN * 2)?;
                if !value.is_finite() || value.abs() > MAX_SCORE {
                    return Err(format!("score value must be a finite number between -{MAX_SCORE:e} and {MAX_SCORE:e}"));
                }
                text("label", label.as_deref().unwrap_or(""), 256)?;
                text("explanation", explanation, MAX_REASON_LEN)
            }
            Decision::AwardPoints { points, source_key, reason, .. } | Decision::ClawBackPoints { points, source_key, reason, .. } => {
                if let Decision::AwardPoints { expires_at_ms: Some(at), .. } = self
                    && !EXPIRES_AT_RANGE.contains(at)
                {
                    return Err("points must expire between 2000-01-01 and 9999-12-31".into());
                }
                if !(1..=1_000_000_000).contains(points) {
                    return Err("points must be between 1 and 1000000000".into());
                }
                if source_key.is_empty() {
                    return Err("source key must not be empty".into());
                }
                text("source key", source_key, 256)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::ChangeTier { tier, reason, .. } => {
                if tier.trim().is_empty() {
                    return Err("tier must not be empty".into());
                }
                text("tier", tier, MAX_TAG_LEN)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::EmitEvent { event_type, payload, .. } => {
                if !event_type.starts_with("plugin.") || event_type.len() <= "plugin.".len() {
                    return Err(format!("emitted event type `{event_type}` must start with `plugin.`"));
                }
                text("event type", event_type, MAX_ID_LEN)?;
                if payload.len() > MAX_EMITTED_PAYLOAD {
                    return Err(format!("event payload must be at most {MAX_EMITTED_PAYLOAD} bytes"));
                }
                match serde_json::from_str::<Value>(payload) {
                    Ok(Value::Object(_)) => Ok(()),
                    _ => Err("event payload must be a JSON object".into()),
                }
            }
        }
    }
}

/// Check what one call decided, taken together: tags per customer, points per
/// customer, events emitted for the `subjects` the call was handed. Each decision
/// is checked alone by [`Decision::check`].
pub fn check_call(decisions: &[Decision], subjects: usize) -> Result<(), String> {
    use std::collections::{HashMap, HashSet};
    let mut tags: HashMap<i64, HashSet<&str>> = HashMap::new();
    let mut points: HashMap<i64, i64> = HashMap::new();
    let mut emitted = 0usize;
    for decision in decisions {
        match decision {
            Decision::AddTag { customer_id, tag, .. } => {
                let held = tags.entry(*customer_id).or_default();
                held.insert(tag);
                if held.len() > MAX_TAGS_PER_CUSTOMER {
                    return Err(format!("more than {MAX_TAGS_PER_CUSTOMER} tags for customer {customer_id}"));
                }
            }
            Decision::AwardPoints { customer_id, points: n, .. } => {
                let total = points.entry(*customer_id).or_default();
                *total = total.saturating_add(*n);
                if *total > MAX_POINTS_PER_CUSTOMER_PER_CALL {
                    return Err(format!(
                        "more than {MAX_POINTS_PER_CUSTOMER_PER_CALL} points awarded to customer {customer_id} in one call"
                    ));
                }
            }
            Decision::EmitEvent { .. } => emitted += 1,
            _ => {}
        }
    }
    let most = MAX_EVENTS_PER_SUBJECT * subjects.max(1);
    if emitted > most {
        return Err(format!("{emitted} events emitted for {subjects} subjects: at most {MAX_EVENTS_PER_SUBJECT} per subject"));
    }
    Ok(())
}

/// Log levels of the `log` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(s: &str) -> LogLevel {
        match s {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// A line a plugin logged during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// A message handed to a channel connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub id: String,
    pub customer_id: i64,
    pub channel: String,
    pub recipient: String,
    pub template: String,
    pub variables: Vec<(String, String)>,
}

/// A connector's answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Delivery {
    Accepted { provider_id: Option<String> },
    Rejected { reason: String },
    RetryAfter { seconds: u32 },
}

/// A request a provider posted back to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Delivered,
    Failed,
    Pending,
}

/// A delivery receipt as a connector parsed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub message_id: Option<String>,
    pub provider_id: Option<String>,
    pub status: ReceiptStatus,
    pub detail: Option<String>,
    pub at_ms: Option<i64>,
}

/// A failure a plugin returned as a value (WIT `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum GuestError {
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("failed: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = r#"
        id = "webhook"
        version = "1.0.0"
        kind = "channel-connector"
        api-version = "0.1.0"
        description = "Posts messages"
        vendor = "Kith"
        capabilities = ["log", "config", "http"]
        allowed-hosts = ["hooks.example.com", "127.0.0.1:9000"]
        channel = "webhook"
    "#;

    #[test]
    fn manifest_parses_and_refuses_what_it_must() {
        let m = Manifest::parse(MANIFEST).unwrap();
        assert_eq!(m.kind, Kind::ChannelConnector);
        assert_eq!(m.api_version, semver::Version::new(0, 1, 0));

        let err = Manifest::parse(&format!("{MANIFEST}\nhomepage = \"x\"")).unwrap_err();
        assert!(err.reason.contains("unknown field `homepage`"), "{err}");
        let served = Manifest::parse(&MANIFEST.replace("0.1.0\"\n        desc", "0.2.0\"\n        desc")).unwrap();
        assert_eq!(served.api_version, semver::Version::new(0, 2, 0), "0.2 is served beside 0.1");
        let err = Manifest::parse(&MANIFEST.replace("0.1.0\"\n        desc", "0.3.0\"\n        desc")).unwrap_err();
        assert_eq!(err.field, "api-version");
        assert!(err.reason.contains("it serves 0.1.0, 0.2.0"), "{err}");
        let err = Manifest::parse(&MANIFEST.replace("\"http\"]", "\"http\", \"points:write\"]")).unwrap_err();
        assert_eq!(err.field, "capabilities");
        let err = Manifest::parse(&MANIFEST.replace("\"http\"]", "\"http\", \"kv\"]")).unwrap_err();
        assert_eq!((err.field.as_str(), err.reason.as_str()), ("capabilities", "a channel-connector may not request `kv`"));
        let err = Manifest::parse(&MANIFEST.replace("id = \"webhook\"", "id = \"Web Hook\"")).unwrap_err();
        assert_eq!(err.field, "id");
        let err = Manifest::parse(&MANIFEST.replace("\"hooks.example.com\"", "\"https://hooks.example.com/x\"")).unwrap_err();
        assert_eq!(err.field, "allowed-hosts[0]");
        let err = Manifest::parse(&MANIFEST.replace("kind = \"channel-connector\"\n", "")).unwrap_err();
        assert_eq!(err.field, "kind");
        let err = Manifest::parse(&MANIFEST.replace("channel = \"webhook\"", "")).unwrap_err();
        assert_eq!(err.field, "channel", "a connector names its channel");
        let err = Manifest::parse(&MANIFEST.replace("\"hooks.example.com\", ", "\"*\", ")).unwrap_err();
        assert_eq!(err.field, "allowed-hosts", "`*` stands alone");
    }

    #[test]
    fn reads_names_parts_of_a_customer_and_defaults_to_all() {
        let rule = MANIFEST
            .replace("channel-connector", "tag-rule")
            .replace("\"http\"]", "\"tags:write\"]")
            .replace("allowed-hosts = [\"hooks.example.com\", \"127.0.0.1:9000\"]", "")
            .replace("channel = \"webhook\"", "");
        assert_eq!(Manifest::parse(&rule).unwrap().reads(), Reads::ALL, "absent: every part");
        let m = Manifest::parse(&format!("{rule}\nreads = [\"tags\", \"stats\"]")).unwrap();
        let stats_and_tags = Reads::of([Part::Stats, Part::Tags]);
        assert_eq!(m.reads(), stats_and_tags);
        assert!(stats_and_tags.has(Part::Tags) && !stats_and_tags.has(Part::Scores));
        let none = Manifest::parse(&format!("{rule}\nreads = []")).unwrap().reads();
        assert_eq!(none, Reads::of([]));

        let at = chrono::DateTime::UNIX_EPOCH;
        let mut c = Customer {
            id: 1,
            profile: crate::model::Profile { name: Some("Ann".into()), ..Default::default() },
            identities: vec![],
            stats: crate::model::Stats { order_count: 2, ..Default::default() },
            tags: vec![],
            scores: vec![],
            points: 5,
            tier: Some("gold".into()),
            created_at: at,
            updated_at: at,
        };
        stats_and_tags.blank(&mut c);
        assert_eq!((c.profile.name, c.stats.order_count, c.points, c.tier), (None, 2, 0, None));

        let err = Manifest::parse(&format!("{rule}\nreads = [\"stats\", \"identities\"]")).unwrap_err();
        assert_eq!(err.field, "reads[1]");
        assert!(err.reason.contains("unknown variant `identities`"), "{err}");
        let err = Manifest::parse(&format!("{MANIFEST}\nreads = [\"stats\"]")).unwrap_err();
        assert_eq!(err.field, "reads", "a connector is handed no customers");
    }

    #[test]
    fn limits_asked_for_are_at_least_one() {
        let m = Manifest::parse(&format!("{MANIFEST}\n[limits]\nbatch-size = 20\ntimeout-ms = 500")).unwrap();
        assert_eq!((m.limits.batch_size, m.limits.timeout_ms, m.limits.memory_mib), (Some(20), Some(500), None));
        for field in ["batch-size", "timeout-ms", "memory-mib", "fuel", "events-per-minute"] {
            let err = Manifest::parse(&format!("{MANIFEST}\n[limits]\n{field} = 0")).unwrap_err();
            assert_eq!((err.field.as_str(), err.reason.as_str()), (format!("limits.{field}").as_str(), "must be at least 1"));
        }
    }

    #[test]
    fn the_emission_rate_has_a_default_and_a_ceiling() {
        assert_eq!(Manifest::parse(MANIFEST).unwrap().limits.events_per_minute(), DEFAULT_EVENTS_PER_MINUTE);
        let m = Manifest::parse(&format!("{MANIFEST}\n[limits]\nevents-per-minute = {MAX_EVENTS_PER_MINUTE}")).unwrap();
        assert_eq!(m.limits.events_per_minute(), MAX_EVENTS_PER_MINUTE);
        let err = Manifest::parse(&format!("{MANIFEST}\n[limits]\nevents-per-minute = {}", MAX_EVENTS_PER_MINUTE + 1)).unwrap_err();
        assert_eq!((err.field.as_str(), err.reason.as_str()), ("limits.events-per-minute", "must be at most 60000"));
    }

    #[test]
    fn a_star_lets_the_shop_grant_any_host_and_nothing_more() {
        let m = Manifest::parse(&MANIFEST.replace("[\"hooks.example.com\", \"127.0.0.1:9000\"]", "[\"*\"]")).unwrap();
        let default = Grant::all_requested(&m);
        assert!(default.allowed_hosts.is_empty(), "nothing is granted by default");
        let err = default.check(&m).unwrap_err();
        assert_eq!(err.field, "grant.allowed_hosts", "a connector that could reach no host is refused at enable");
        assert!(err.reason.contains("name at least one"), "{err}");
        let gateway = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["sms.example.cn".into()] };
        assert!(gateway.check(&m).is_ok());
        assert!(gateway.allows_host("sms.example.cn") && !gateway.allows_host("other.example.cn"));
        let star = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["*".into()] };
        assert_eq!(star.check(&m).unwrap_err().field, "grant.allowed_hosts[0]", "a grant names real hosts");
    }

    #[test]
    fn api_versions_follow_semver_with_zero_major_minors_apart() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(api_compatible("0.1.0", &v("0.1.0")));
        assert!(api_compatible("0.1.3", &v("0.1.1")));
        assert!(!api_compatible("0.1.0", &v("0.1.1")), "built against a newer patch than served");
        assert!(!api_compatible("0.2.0", &v("0.1.0")));
        assert!(!api_compatible("0.1.0", &v("0.2.0")));
        assert!(api_compatible("1.4.0", &v("1.2.0")));
        assert!(!api_compatible("2.0.0", &v("1.2.0")));
    }

    #[test]
    fn a_grant_holds_only_what_was_requested() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let all = Grant::all_requested(&m);
        assert!(all.check(&m).is_ok());
        let more = Grant { capabilities: [Capability::Http, Capability::Kv].into(), allowed_hosts: vec![] };
        assert_eq!(more.check(&m).unwrap_err().field, "grant.capabilities");
        let other_host = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["evil.example.com".into()] };
        assert_eq!(other_host.check(&m).unwrap_err().field, "grant.allowed_hosts[0]");

        let narrow = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["hooks.example.com".into()] };
        assert!(narrow.allows_host("hooks.example.com:443"));
        assert!(narrow.allows_host("HOOKS.example.com"));
        assert!(!narrow.allows_host("127.0.0.1:9000"), "declared but not granted");
        assert!(!narrow.allows_host("hooks.example.com.evil.net"));
        let port = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["127.0.0.1:9000".into()] };
        assert!(port.allows_host("127.0.0.1:9000"));
        assert!(!port.allows_host("127.0.0.1:9001"));
    }

    #[test]
    fn decisions_are_checked_against_the_grant_and_the_rules() {
        let grant = Grant { capabilities: [Capability::TagsWrite, Capability::ScoresWrite].into(), allowed_hosts: vec![] };
        let tag = Decision::AddTag { customer_id: 1, tag: "vip".into(), reason: "spent a lot".into() };
        assert_eq!(tag.check("rfm", &grant), Ok(()));
        let points = Decision::AwardPoints { customer_id: 1, points: 5, source_key: "o1".into(), reason: "".into(), expires_at_ms: None };
        assert_eq!(points.check("rfm", &grant).unwrap_err(), "capability `points:write` is not granted");
        let score =
            |model: &str| Decision::SetScore { customer_id: 1, model: model.into(), value: 1.0, label: None, explanation: String::new() };
        assert!(score("rfm").check("rfm", &grant).is_ok());
        assert!(score("rfm.r").check("rfm", &grant).is_ok());
        assert!(score("rfmx").check("rfm", &grant).is_err());
        assert!(score("aipl").check("rfm", &grant).is_err());
        let nan = Decision::SetScore { customer_id: 1, model: "rfm".into(), value: f64::NAN, label: None, explanation: String::new() };
        assert!(nan.check("rfm", &grant).is_err());
        let long = Decision::AddTag { customer_id: 1, tag: "x".repeat(65), reason: String::new() };
        assert!(long.check("rfm", &grant).is_err());
    }

    #[test]
    fn schemas_whose_references_cycle_in_place_are_refused() {
        let cyclic = [
            json!({"allOf": [{"$ref": "#"}]}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"anyOf": [{"$ref": "#/$defs/y"}]}, "y": {"not": {"$ref": "#/$defs/x"}}}}),
            json!({"if": {"$ref": "#"}}),
        ];
        for schema in cyclic {
            let err = check_schema(&schema).unwrap_err();
            assert!(err.reason.contains("leads back to itself"), "{schema}: {err}");
        }
        // Recursion under `properties` or `items` consumes input: it ends with the instance.
        let tree = json!({"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}});
        check_schema(&tree).unwrap();
        let shared = json!({"allOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/a"}], "$defs": {"a": {"type": "object"}}});
        check_schema(&shared).unwrap();
        assert!(check_schema(&json!({"$ref": "https://example.com/s.json"})).is_err(), "remote references are not served");
        assert!(check_schema(&json!({"$ref": "#/nowhere"})).is_err());
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"items": deep});
        }
        assert!(check_schema(&deep).unwrap_err().reason.contains("nest at most"));
    }

    #[test]
    fn schema_identifiers_and_dynamic_references_are_refused() {
        let escaping = [
            json!({"$id": "https://example.com/s", "allOf": [{"$ref": "https://example.com/s"}]}),
            json!({"$defs": {"a": {"$anchor": "a", "allOf": [{"$ref": "#a"}]}}}),
            json!({"$dynamicAnchor": "node", "allOf": [{"$dynamicRef": "#node"}]}),
            json!({"properties": {"a": {"$dynamicRef": "#node"}}}),
            json!({"$recursiveAnchor": true, "anyOf": [{"$recursiveRef": "#"}]}),
            json!({"items": {"$recursiveRef": "#"}}),
        ];
        for schema in escaping {
            let err = check_schema(&schema).unwrap_err();
            assert_eq!(err.field, "config-schema");
            assert!(err.reason.contains("is not served"), "{schema}: {err}");
        }
        // A property of that name is not the keyword.
        check_schema(&json!({"type": "object", "properties": {"$id": {"type": "string"}}})).unwrap();
    }

    #[test]
    fn invisible_characters_and_wild_values_are_refused() {
        let grant =
            Grant { capabilities: [Capability::TagsWrite, Capability::ScoresWrite, Capability::PointsWrite].into(), allowed_hosts: vec![] };
        let tag = |t: &str| Decision::AddTag { customer_id: 1, tag: t.into(), reason: String::new() };
        for t in ["vip\u{202e}", "v\u{200b}ip", "\u{feff}vip", "a\u{2066}b"] {
            assert!(tag(t).check("p", &grant).unwrap_err().contains("invisible"), "{t:?}");
        }
        tag("高价值").check("p", &grant).unwrap();
        let score = |value: f64| Decision::SetScore { customer_id: 1, model: "p".into(), value, label: None, explanation: String::new() };
        assert!(score(f64::MAX).check("p", &grant).is_err());
        assert!(score(-1e13).check("p", &grant).is_err());
        score(-1e12).check("p", &grant).unwrap();
        let award = |expires_at_ms| Decision::AwardPoints {
            customer_id: 1,
            points: 10,
            source_key: "k".into(),
            reason: String::new(),
            expires_at_ms,
        };
        assert!(award(Some(i64::MIN)).check("p", &grant).is_err());
        assert!(award(Some(i64::MAX)).check("p", &grant).is_err());
        award(Some(1_800_000_000_000)).check("p", &grant).unwrap();
    }

    #[test]
    fn a_calls_decisions_are_bounded_together() {
        let tags: Vec<_> =
            (0..=MAX_TAGS_PER_CUSTOMER).map(|i| Decision::AddTag { customer_id: 1, tag: format!("t{i}"), reason: String::new() }).collect();
        assert!(check_call(&tags, 1).unwrap_err().contains("tags for customer 1"));
        check_call(&tags[..MAX_TAGS_PER_CUSTOMER], 1).unwrap();
        let award = |customer_id, points| Decision::AwardPoints {
            customer_id,
            points,
            source_key: "k".into(),
            reason: String::new(),
            expires_at_ms: None,
        };
        check_call(&[award(1, 600_000_000), award(2, 600_000_000)], 1).unwrap();
        assert!(check_call(&[award(1, 600_000_000), award(1, 600_000_000)], 1).unwrap_err().contains("points"));
        let emit = Decision::EmitEvent { customer_id: None, event_type: "plugin.x".into(), payload: "{}".into() };
        check_call(&vec![emit.clone(); 8], 2).unwrap();
        assert!(check_call(&vec![emit; 9], 2).is_err());
    }

    #[test]
    fn manifest_fields_are_bounded() {
        let long = "x".repeat(MAX_DESCRIPTION_BYTES + 1);
        let err = Manifest::parse(&MANIFEST.replace("description = \"Posts messages\"", &format!("description = \"{long}\""))).unwrap_err();
        assert_eq!(err.field, "description");
        let err = Manifest::parse(&MANIFEST.replace("vendor = \"Kith\"", "vendor = \"Ki\\u202Eth\"")).unwrap_err();
        assert_eq!(err.field, "vendor");
        let err = Manifest::parse(&format!("tag-prefix = \"a b\"\n{MANIFEST}")).unwrap_err();
        assert_eq!(err.field, "tag-prefix");
        assert_eq!(Manifest::parse(&format!("tag-prefix = \"hooks:\"\n{MANIFEST}")).unwrap().tag_prefix.as_deref(), Some("hooks:"));
        assert!(prefixes_overlap("lifecycle:", "lifecycle:vip") && !prefixes_overlap("lifecycle:", "prefers:"));
    }
}

/// A plugin version in the kernel's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstalledPlugin {
    pub manifest: Manifest,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: i64,
    pub installed_at: chrono::DateTime<chrono::Utc>,
}

/// Whether a shop's plugin takes deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Enabled,
    Disabled,
    /// The breaker tripped after repeated failures; enabling it again resets the breaker.
    Tripped,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Enabled => "enabled",
            SubscriptionStatus::Disabled => "disabled",
            SubscriptionStatus::Tripped => "tripped",
        }
    }

    pub fn parse(s: &str) -> SubscriptionStatus {
        match s {
            "enabled" => SubscriptionStatus::Enabled,
            "tripped" => SubscriptionStatus::Tripped,
            _ => SubscriptionStatus::Disabled,
        }
    }
}

/// A plugin enabled (or once enabled) in a shop: its configuration, grant and place on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub shop_id: i64,
    pub plugin_id: String,
    pub kind: Kind,
    /// Hours between scheduled runs over every customer; `None`: no schedule.
    pub run_every_hours: Option<u32>,
    /// The requirement the merchant gave, e.g. `^1.2`.
    pub version_req: String,
    /// The installed version it resolved to.
    pub version: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub grant: Grant,
    pub status: SubscriptionStatus,
    /// Sequence number of the last event delivered (or skipped as not subscribed).
    pub cursor: i64,
    /// Failed attempts at the current batch.
    pub attempts: i64,
    /// Failures since the last success; the breaker trips at its threshold.
    pub consecutive_failures: i64,
    pub retry_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A batch of events a plugin failed on too often; re-drivable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    pub plugin_id: String,
    pub version: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub attempts: i64,
    pub error: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub redriven_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A stored log line of a plugin in a shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginLog {
    pub id: i64,
    pub level: LogLevel,
    pub message: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Calls of a plugin in a shop, over its recent calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallStats {
    /// Calls recorded (the most recent are kept).
    pub calls: i64,
    pub failures: i64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The most recent errors, newest first.
    pub last_errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = RunStatus)]
pub enum PluginRunStatus {
    Running,
    Done,
    Failed,
}

/// A run of a plugin over all of a shop's customers, in batches with a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Run)]
pub struct PluginRun {
    pub id: i64,
    pub plugin_id: String,
    pub status: PluginRunStatus,
    /// Customers when the run started.
    pub total: i64,
    /// Customers processed.
    pub done: i64,
    /// Last customer id processed; a resumed run continues after it.
    pub checkpoint: i64,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}
