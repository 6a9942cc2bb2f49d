//! The event log's ports on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{EventLog, EventsRead};
use kith_domain::model::Event;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{CoreResult, Sql, core, sql};
use crate::events::{self, PUBLIC_EVENT_COLUMNS, row_to_event};

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

impl EventsRead for Sql<'_> {
    fn position_at(&self, shop_id: i64, seq: i64) -> CoreResult<i64> {
        let position = self
            .0
            .prepare_cached("SELECT position FROM events WHERE shop_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1")
            .and_then(|mut stmt| stmt.query_row(params![shop_id, seq], |r| r.get::<_, Option<i64>>(0)).optional());
        Ok(sql(position)?.flatten().unwrap_or(0))
    }

    fn last_position(&self, shop_id: i64) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events WHERE shop_id = ?1")
            .and_then(|mut stmt| stmt.query_row([shop_id], |r| r.get(0))))
    }

    fn head(&self, shop_id: i64) -> CoreResult<i64> {
        core(events::head(self.0, shop_id))
    }

    fn after(&self, shop_id: i64, after: i64, limit: usize) -> CoreResult<Vec<Event>> {
        sql(self
            .0
            .prepare_cached(&format!(
                "SELECT {PUBLIC_EVENT_COLUMNS} FROM events WHERE shop_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
            ))
            .and_then(|mut stmt| stmt.query_map(params![shop_id, after, limit as i64], row_to_event)?.collect()))
    }
}
