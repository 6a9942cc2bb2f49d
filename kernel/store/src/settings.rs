//! Per-shop settings of the features above the kernel, one JSON document per section.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Actor, Result, audit, to_ms};

pub(crate) const LOYALTY: &str = "loyalty";
pub(crate) const MESSAGING: &str = "messaging";
pub(crate) const EXPORT: &str = "export";

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

pub(crate) fn store<T: Serialize>(
    conn: &Connection,
    shop_id: i64,
    section: &str,
    value: &T,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let json = serde_json::to_value(value).map_err(anyhow::Error::from)?;
    conn.prepare_cached(
        "INSERT INTO shop_settings (shop_id, section, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (shop_id, section) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![shop_id, section, json.to_string(), to_ms(now)])?;
    audit::record(conn, Some(shop_id), actor, &format!("settings.{section}"), None, json, now)
}

impl crate::Store {
    /// The shop's export policy; no personal columns unless the owner allowed them.
    pub fn export_policy(&self, shop_id: i64) -> Result<kith_domain::model::ExportPolicy> {
        self.read(|conn| load(conn, shop_id, EXPORT))
    }

    /// Replace the shop's export policy (audited as `settings.export`).
    pub fn put_export_policy(
        &self,
        shop_id: i64,
        policy: &kith_domain::model::ExportPolicy,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| store(tx, shop_id, EXPORT, policy, actor, now))
    }
}
