//! What a plugin call leaves behind whether it succeeded or not (its log lines and call
//! record): shared by deliveries and runs (`kith_core::delivery`, through the plugins' port)
//! and by connectors' sends (`messages`), which neither owns.

use kith_core::delivery::Attempt;
use rusqlite::{Connection, params};

use crate::{Result, to_ms};

/// Log lines and call records kept per shop and plugin; older ones are dropped.
const KEPT_LOGS: i64 = 1000;
const KEPT_CALLS: i64 = 1000;

/// Keep the log lines and the call record of an attempt.
pub(crate) fn record_attempt(tx: &Connection, a: &Attempt<'_>, error: Option<&str>) -> Result<()> {
    let now = to_ms(a.now);
    let mut insert =
        tx.prepare_cached("INSERT INTO plugin_logs (shop_id, plugin_id, level, message, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for line in a.logs {
        insert.execute(params![a.shop_id, a.plugin_id, line.level.as_str(), line.message, now])?;
    }
    tx.prepare_cached("INSERT INTO plugin_calls (shop_id, plugin_id, duration_us, error, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![a.shop_id, a.plugin_id, a.duration.as_micros() as i64, error, now])?;
    for (table, kept) in [("plugin_logs", KEPT_LOGS), ("plugin_calls", KEPT_CALLS)] {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE shop_id = ?1 AND plugin_id = ?2 AND id <=
               (SELECT id FROM {table} WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)"
        ))?
        .execute(params![a.shop_id, a.plugin_id, kept])?;
    }
    Ok(())
}
