//! The plugins as the API shows them: catalogue entries, subscriptions, dead letters, logs, call statistics and runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::*;

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
