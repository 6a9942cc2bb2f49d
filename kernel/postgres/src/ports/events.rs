//! The append-only event log the bus and the event stream read: the events ports on
//! PostgreSQL.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::model::{Event, Payload};
use serde_json::Value;
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

/// The columns of an event as the API shows it, its `seq` the shop's own position; read with [`row_to_event`].
pub(crate) const PUBLIC_EVENT_COLUMNS: &str = "position, type, customer_id, payload, created_at";

pub(crate) fn row_to_event(row: &Row) -> Result<Event> {
    Ok(Event {
        seq: get(row, 0)?,
        kind: get(row, 1)?,
        customer_id: get(row, 2)?,
        payload: Payload::from_text(get(row, 3)?),
        created_at: time(get(row, 4)?)?,
    })
}

impl EventLog for Pg<'_> {
    /// Append an event; `plugin` names the plugin that emitted it, so that it is not
    /// delivered back to that plugin. The global `seq` is the identity's.
    fn append(
        &self,
        shop_id: i64,
        kind: &str,
        customer_id: Option<i64>,
        payload: &Value,
        at: DateTime<Utc>,
        plugin: Option<&str>,
    ) -> Result<i64> {
        // The one writer (the write transaction holds the global lock) numbers the
        // shop's events: the newest position is one seek on `events_shop_position`, and
        // no other transaction can take the same number meanwhile.
        let row = self.query_one(
            "INSERT INTO events (shop_id, type, customer_id, payload, source, created_at, position)
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(position), 0) + 1 FROM events WHERE shop_id = $1))
             RETURNING seq",
            &[&shop_id, &kind, &customer_id, &payload.to_string(), &plugin, &millis(at)],
        )?;
        get(&row, 0)
    }
}

impl EventsRead for Pg<'_> {
    fn position_at(&self, shop_id: i64, seq: i64) -> Result<i64> {
        let row =
            self.query_opt("SELECT position FROM events WHERE shop_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1", &[&shop_id, &seq])?;
        Ok(match row {
            Some(row) => get::<Option<i64>>(&row, 0)?.unwrap_or(0),
            None => 0,
        })
    }

    fn last_position(&self, shop_id: i64) -> Result<i64> {
        let row = self.query_one("SELECT COALESCE(MAX(position), 0) FROM events WHERE shop_id = $1", &[&shop_id])?;
        get(&row, 0)
    }

    /// The sequence number of a shop's newest event as this transaction sees it; 0 without events.
    fn head(&self, shop_id: i64) -> Result<i64> {
        let row = self.query_one("SELECT COALESCE(MAX(seq), 0) FROM events WHERE shop_id = $1", &[&shop_id])?;
        get(&row, 0)
    }

    fn after(&self, shop_id: i64, after: i64, limit: usize) -> Result<Vec<Event>> {
        self.query(
            &format!("SELECT {PUBLIC_EVENT_COLUMNS} FROM events WHERE shop_id = $1 AND position > $2 ORDER BY position LIMIT $3"),
            &[&shop_id, &after, &(limit as i64)],
        )?
        .iter()
        .map(row_to_event)
        .collect()
    }
}
