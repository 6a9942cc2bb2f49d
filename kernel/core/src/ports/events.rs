//! The event log's port: the one way every feature appends to a shop's log.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Result;

/// A shop's append-only event log, which the bus, the event stream, journeys and
/// plugins read. Every feature appends through this one method.
pub trait EventLog {
    /// Append an event of type `kind` to the shop's log, stamped `at`; `plugin` names
    /// the plugin that emitted it, so that it is not delivered back to that plugin.
    /// The backend numbers the shop's events in the order they are appended. The
    /// event's global sequence number.
    fn append(
        &self,
        shop_id: i64,
        kind: &str,
        customer_id: Option<i64>,
        payload: &Value,
        at: DateTime<Utc>,
        plugin: Option<&str>,
    ) -> Result<i64>;
}
