//! The append-only event log the bus and the event stream read (through the core's
//! event ports, `ports/events.rs`).

use chrono::{DateTime, Utc};
use kith_domain::model::{Event, Payload};
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::{Result, from_ms, json_text, to_ms};

/// Append an event emitted by no plugin (the schema's tests).
#[cfg(test)]
pub(crate) fn append(
    conn: &Connection,
    shop_id: i64,
    kind: &str,
    customer_id: Option<i64>,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<i64> {
    append_from(conn, shop_id, kind, customer_id, payload, None, now)
}

/// Append an event; `source` names the plugin that emitted it, so that it is not delivered back to that plugin.
pub(crate) fn append_from(
    conn: &Connection,
    shop_id: i64,
    kind: &str,
    customer_id: Option<i64>,
    payload: &Value,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<i64> {
    // The one writer numbers the shop's events: the newest position is one seek on
    // `events_shop_position`.
    conn.prepare_cached(
        "INSERT INTO events (shop_id, type, customer_id, payload, source, created_at, position)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(position), 0) + 1 FROM events WHERE shop_id = ?1))",
    )?
    .execute(params![shop_id, kind, customer_id, json_text(payload), source, to_ms(now)])?;
    Ok(conn.last_insert_rowid())
}

/// The columns of an event as the API shows it, its `seq` the shop's own position; read with [`row_to_event`].
pub(crate) const PUBLIC_EVENT_COLUMNS: &str = "position, type, customer_id, payload, created_at";

pub(crate) fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(0)?,
        kind: r.get(1)?,
        customer_id: r.get(2)?,
        payload: Payload::from_text(r.get(3)?),
        created_at: from_ms(r.get(4)?),
    })
}

/// The sequence number of a shop's newest event as `conn` sees it; 0 without events.
pub(crate) fn head(conn: &Connection, shop_id: i64) -> Result<i64> {
    Ok(conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE shop_id = ?1")?.query_row([shop_id], |r| r.get(0))?)
}
