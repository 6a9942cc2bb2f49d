//! The leases' port on SQLite: one row per (shop, work) in `leases` (migration 15).

use chrono::{DateTime, Utc};
use kith_core::ports::Leases;
use rusqlite::params;

use super::{CoreResult, Sql, sql};
use crate::to_ms;

impl Leases for Sql<'_> {
    fn take(&self, shop_id: i64, work: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> CoreResult<bool> {
        // An upsert whose update is refused by its WHERE changes no row.
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO leases (shop_id, work, holder, until) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (shop_id, work) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until <= ?5 OR leases.holder = excluded.holder",
            )
            .and_then(|mut s| s.execute(params![shop_id, work, holder, to_ms(until), to_ms(now)]))
            .map(|changed| changed == 1))
    }

    fn release(&self, shop_id: i64, work: &str, holder: &str) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM leases WHERE shop_id = ?1 AND work = ?2 AND holder = ?3")
            .and_then(|mut s| s.execute(params![shop_id, work, holder]))
            .map(|_| ()))
    }
}
