//! Per-shop settings of the features above the kernel, one JSON document per section:
//! the SQLite side of the core's settings ports (the rules, and the export policy's
//! service, are `kith_core::settings`'s).

use chrono::{DateTime, Utc};
use kith_core::ports::SettingsWrite;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::sql::Sql;
use crate::sql::{CoreResult, core};
use crate::{Result, to_ms};

pub(crate) use kith_core::settings::{EXPORT, LOYALTY, MESSAGING};

/// A section as stored, or its default when the shop never set it.
pub(crate) fn load<T: DeserializeOwned + Default>(conn: &Connection, shop_id: i64, section: &str) -> Result<T> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM shop_settings WHERE shop_id = ?1 AND section = ?2")?
        .query_row(params![shop_id, section], |r| r.get(0))
        .optional()?;
    match text {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("stored {section} settings of shop {shop_id}: {e}").into()),
    }
}

/// Replace a section's document.
fn put(conn: &Connection, shop_id: i64, section: &str, json: &Value, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO shop_settings (shop_id, section, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (shop_id, section) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![shop_id, section, json.to_string(), to_ms(now)])?;
    Ok(())
}

impl SettingsWrite for Sql<'_> {
    fn put(&self, shop_id: i64, section: &str, value: &Value, at: DateTime<Utc>) -> CoreResult<()> {
        core(put(self.0, shop_id, section, value, at))
    }
}
