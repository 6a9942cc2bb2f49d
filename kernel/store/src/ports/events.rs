//! The event log's port on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::EventLog;
use serde_json::Value;

use super::{CoreResult, Sql, core};
use crate::events;

impl EventLog for Sql<'_> {
    fn append(
        &self,
        shop_id: i64,
        kind: &str,
        customer_id: Option<i64>,
        payload: &Value,
        at: DateTime<Utc>,
        plugin: Option<&str>,
    ) -> CoreResult<i64> {
        core(events::append_from(self.0, shop_id, kind, customer_id, payload, plugin, at))
    }
}
