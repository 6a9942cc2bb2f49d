//! The events ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::model::Event;
use serde_json::Value;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl EventLog for Pg<'_> {
    fn append( &self, shop_id: i64, kind: &str, customer_id: Option<i64>, payload: &Value, at: DateTime<Utc>, plugin: Option<&str>, ) -> Result<i64> {
        Err(unported("EventLog::append"))
    }
}

impl EventsRead for Pg<'_> {
    fn position_at(&self, shop_id: i64, seq: i64) -> Result<i64> {
        Err(unported("EventsRead::position_at"))
    }

    fn last_position(&self, shop_id: i64) -> Result<i64> {
        Err(unported("EventsRead::last_position"))
    }

    fn head(&self, shop_id: i64) -> Result<i64> {
        Err(unported("EventsRead::head"))
    }

    fn after(&self, shop_id: i64, after: i64, limit: usize) -> Result<Vec<Event>> {
        Err(unported("EventsRead::after"))
    }
}
