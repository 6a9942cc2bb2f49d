//! The audit log: every write, key operation, unmasked read and export.

use chrono::{DateTime, Utc};
use kith_domain::model::AuditEntry;
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::{Actor, Result, Store, from_ms, json_text, parse_json, to_ms};

pub(crate) fn record(
    conn: &Connection,
    shop_id: Option<i64>,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    detail: Value,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached("INSERT INTO audit_log (shop_id, key_id, action, target, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![shop_id, actor.key_id, action, target, json_text(&detail), to_ms(now)])?;
    Ok(())
}

impl Store {
    /// Record an audit entry on its own, for reads and exports that write nothing else.
    pub fn audit(&self, shop_id: Option<i64>, actor: &Actor, action: &str, target: Option<&str>, detail: Value) -> Result<()> {
        self.write(|tx| record(tx, shop_id, actor, action, target, detail, Utc::now()))
    }

    /// Audit entries of a shop, newest first, before the entry id `before`.
    pub fn list_audit(&self, shop_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, shop_id, key_id, action, target, detail, created_at FROM audit_log
                 WHERE shop_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![shop_id, before.unwrap_or(i64::MAX), limit as i64], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    shop_id: r.get(1)?,
                    key_id: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: parse_json(&r.get::<_, String>(5)?),
                    created_at: from_ms(r.get(6)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
