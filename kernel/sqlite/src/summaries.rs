//! Per-buyer purchase summaries over a whole shop, paged by customer id, on SQLite: the
//! counted orders behind the core's `SummariesService` (what the repeat-purchase models,
//! BG/NBD and Gamma-Gamma, are fitted on: `summaries.buyers` of `kith:plugin@0.2.0`).

use chrono::{DateTime, Utc};
use kith_core::ports::SummariesRead;
use rusqlite::params;

use crate::from_ms;
use crate::sql::Sql;
use crate::sql::{CoreResult, sql};

fn counted_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, DateTime<Utc>, i64)> {
    Ok((r.get::<_, i64>(0)?, from_ms(r.get(1)?), r.get::<_, i64>(2)?))
}

impl SummariesRead for Sql<'_> {
    /// One statement per page, over the `orders_shop_customer` index (shop, customer,
    /// paid_at, status, amounts): it covers both the page's customer ids and their orders.
    fn buyer_orders(&self, shop_id: i64, after: Option<i64>, limit: usize) -> CoreResult<Vec<(i64, DateTime<Utc>, i64)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
                 WHERE shop_id = ?1 AND customer_id > ?2 AND status != 'refunded'
                   AND customer_id <= (SELECT MAX(customer_id) FROM (
                       SELECT DISTINCT customer_id FROM orders
                       WHERE shop_id = ?1 AND customer_id > ?2 AND status != 'refunded'
                       ORDER BY customer_id LIMIT ?3))
                 ORDER BY customer_id, paid_at",
            )
            .and_then(|mut stmt| stmt.query_map(params![shop_id, after.unwrap_or(i64::MIN), limit as i64], counted_order)?.collect()))
    }

    fn counted_orders(&self, shop_id: i64) -> CoreResult<Vec<(i64, DateTime<Utc>, i64)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
                 WHERE shop_id = ?1 AND status != 'refunded' ORDER BY customer_id, paid_at",
            )
            .and_then(|mut stmt| stmt.query_map([shop_id], counted_order)?.collect()))
    }
}
