//! The event log's port: the one way every feature appends to a shop's log.

use chrono::{DateTime, Utc};
use kith_domain::model::Event;
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

/// Reading a shop's event log. A shop's events have a global sequence number (`seq`,
/// the bus's cursor) and the shop's own position (1, 2, 3 …, what the API shows).
pub trait EventsRead {
    /// The shop's own position of its last event at or before the global sequence
    /// number `seq`; 0 before any.
    fn position_at(&self, shop_id: i64, seq: i64) -> Result<i64>;
    /// The position of the shop's newest event; 0 without events.
    fn last_position(&self, shop_id: i64) -> Result<i64>;
    /// The global sequence number of the shop's newest event; 0 without events.
    fn head(&self, shop_id: i64) -> Result<i64>;
    /// The shop's events past its position `after`, oldest first, at most `limit`;
    /// each event's `seq` is its position.
    fn after(&self, shop_id: i64, after: i64, limit: usize) -> Result<Vec<Event>>;
}
