//! A plugin's manifest (`plugin.toml`): its kind, the capabilities and limits it requests, its configuration schema, the hosts it may reach, and the WIT versions the kernel serves.

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

/// Keywords whose resolution escapes [`check_schema`]'s cycle check: refused.
const FORBIDDEN_SCHEMA_KEYWORDS: [&str; 6] = ["$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"];

/// A configuration schema the kernel can validate against in bounded time and memory:
/// an object, at most `MAX_SCHEMA_BYTES` and `MAX_SCHEMA_DEPTH` deep, whose local
/// references (`$ref: "#/…"`) never lead back to themselves without consuming input
/// (a cycle through `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` or `$ref`
/// alone is followed forever by a validator). Identifiers and dynamic references are refused.
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

pub(super) fn valid_host_pattern(host: &str) -> bool {
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
