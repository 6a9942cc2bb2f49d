//! The audit log: every write, key operation, unmasked read and export. The SQLite
//! side of the core's audit ports (`kith_core::audit` records entries on their own and
//! lists them).

use chrono::{DateTime, Utc};
use kith_core::ports::AuditRead;
use kith_domain::model::AuditEntry;
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::sql::Sql;
use crate::sql::{CoreResult, sql};
use crate::{Actor, Result, from_ms, json_text, parse_json, to_ms};

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

impl AuditRead for Sql<'_> {
    fn list(&self, shop_id: i64, before: i64, limit: usize) -> CoreResult<Vec<AuditEntry>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT id, shop_id, key_id, action, target, detail, created_at FROM audit_log
                 WHERE shop_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![shop_id, before, limit as i64], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        shop_id: r.get(1)?,
                        key_id: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        detail: parse_json(&r.get::<_, String>(5)?),
                        created_at: from_ms(r.get(6)?),
                    })
                })?
                .collect()
            }))
    }
}

#[cfg(test)]
mod tests {
    use kith_core::prelude::*;
    use kith_domain::model::NewShop;

    use crate::{Actor, temp_store};

    #[test]
    fn concurrent_audits_are_each_written_once() {
        let (_dir, store) = temp_store();
        let shop = NewShop { name: "A".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
        let shop = store.create_shop(&shop, &Actor::cli("test")).unwrap().id;
        std::thread::scope(|s| {
            for thread in 0..8 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..40 {
                        let target = format!("{thread}:{i}");
                        store
                            .audit(Some(shop), &Actor::cli("test"), "customer.read_unmasked", Some(&target), serde_json::json!({}))
                            .unwrap();
                    }
                });
            }
        });
        let mut targets: Vec<String> = Vec::new();
        let mut before = None;
        loop {
            let page = store.list_audit(shop, before, 100).unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            targets.extend(page.iter().filter(|e| e.action == "customer.read_unmasked").filter_map(|e| e.target.clone()));
        }
        targets.sort();
        let mut expected: Vec<String> = (0..8).flat_map(|t| (0..40).map(move |i| format!("{t}:{i}"))).collect();
        expected.sort();
        assert_eq!(targets, expected);
    }
}
