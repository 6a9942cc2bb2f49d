//! The audit log's reading port on PostgreSQL (`Audit::record`, its writing, is in
//! `basics.rs`).

use kith_core::ports::*;
use kith_domain::model::AuditEntry;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, time};

impl AuditRead for Pg<'_> {
    fn list(&self, shop_id: i64, before: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = self.query(
            "SELECT id, shop_id, key_id, action, target, detail, created_at FROM audit_log
             WHERE shop_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            &[&shop_id, &before, &(limit as i64)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: get(row, 0)?,
                    shop_id: get(row, 1)?,
                    key_id: get(row, 2)?,
                    action: get(row, 3)?,
                    target: get(row, 4)?,
                    detail: serde_json::from_str(&get::<String>(row, 5)?).unwrap_or(serde_json::Value::Null),
                    created_at: time(get(row, 6)?)?,
                })
            })
            .collect()
    }
}
