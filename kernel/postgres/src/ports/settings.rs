//! The settings ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl SettingsWrite for Pg<'_> {
    fn put(&self, shop_id: i64, section: &str, value: &Value, at: DateTime<Utc>) -> Result<()> {
        Err(unported("SettingsWrite::put"))
    }
}
