//! Logs and a channel connector's traffic: outbound messages, inbound requests, receipts, and the errors a guest reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
