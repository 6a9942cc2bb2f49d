//! Writing a shop's settings (reading them is [`Settings`](super::Settings)'s).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Result;

pub trait SettingsWrite {
    /// Replace the shop's settings of one section (`loyalty`, `messaging`, `export` …)
    /// with this JSON document, changed at `at`.
    fn put(&self, shop_id: i64, section: &str, value: &Value, at: DateTime<Utc>) -> Result<()>;
}
