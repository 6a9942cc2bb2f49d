//! The leases' port on PostgreSQL: one row per (shop, work) in `leases`, taken by one
//! upsert whose update only a free, run-out or own lease lets through.

use chrono::{DateTime, Utc};
use kith_core::ports::Leases;

use super::{CoreResult, Pg};
use crate::pg::millis;

impl Leases for Pg<'_> {
    fn take(&self, shop_id: i64, work: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> CoreResult<bool> {
        let taken = self.query_opt(
            "INSERT INTO leases (shop_id, work, holder, until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (shop_id, work) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
             WHERE leases.until <= $5 OR leases.holder = EXCLUDED.holder
             RETURNING 1",
            &[&shop_id, &work, &holder, &millis(until), &millis(now)],
        )?;
        Ok(taken.is_some())
    }

    fn release(&self, shop_id: i64, work: &str, holder: &str) -> CoreResult<()> {
        self.execute("DELETE FROM leases WHERE shop_id = $1 AND work = $2 AND holder = $3", &[&shop_id, &work, &holder])?;
        Ok(())
    }
}
