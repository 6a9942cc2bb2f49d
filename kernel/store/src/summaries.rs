//! Per-buyer purchase summaries over a whole shop, paged by customer id: what
//! the repeat-purchase models (BG/NBD, Gamma-Gamma) are fitted on
//! (`summaries.buyers` of `kith:plugin@0.2.0`).

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::plugin::{BuyerSummary, MAX_SUMMARIES_PAGE};
use rusqlite::params;

use crate::{Result, Store, from_ms, shops, to_ms};

impl Store {
    /// Up to `limit` (at most [`MAX_SUMMARIES_PAGE`]) buyers of the shop with an id above
    /// `after`, by id. A buyer has at least one order that customer stats count: paid and
    /// not fully refunded; amounts are net of partial refunds. Days are calendar days in
    /// the shop's time zone; `age_days` counts to `now`'s day. Orders follow merges, so
    /// every summary is of an active customer.
    ///
    /// One statement per page, over the `orders_shop_customer` index (shop, customer,
    /// paid_at, status, amounts): it covers both the page's customer ids and their orders.
    pub fn buyer_summaries(&self, shop_id: i64, after: Option<i64>, limit: usize, now: DateTime<Utc>) -> Result<Vec<BuyerSummary>> {
        let limit = limit.min(MAX_SUMMARIES_PAGE);
        self.read(|conn| {
            let zone = shops::zone(conn, shop_id)?;
            let day = |ms: i64| from_ms(ms).with_timezone(&zone).date_naive();
            let today = day(to_ms(now));
            let mut stmt = conn.prepare_cached(
                "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
                 WHERE shop_id = ?1 AND customer_id > ?2 AND status != 'refunded'
                   AND customer_id <= (SELECT MAX(customer_id) FROM (
                       SELECT DISTINCT customer_id FROM orders
                       WHERE shop_id = ?1 AND customer_id > ?2 AND status != 'refunded'
                       ORDER BY customer_id LIMIT ?3))
                 ORDER BY customer_id, paid_at",
            )?;
            let rows = stmt.query_map(params![shop_id, after.unwrap_or(i64::MIN), limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?;
            let mut summaries: Vec<BuyerSummary> = Vec::new();
            // The current buyer's first and latest purchase days.
            let (mut first_day, mut last_day) = (NaiveDate::MIN, NaiveDate::MIN);
            for row in rows {
                let (customer_id, paid_at, net) = row?;
                let order_day = day(paid_at);
                match summaries.last_mut() {
                    Some(s) if s.customer_id == customer_id => {
                        s.order_count += 1;
                        s.total_spent += net;
                        s.last_order_at_ms = paid_at;
                        if order_day != first_day {
                            s.repeat_spent += net;
                        }
                        if order_day != last_day {
                            s.purchase_days += 1;
                            last_day = order_day;
                        }
                    }
                    _ => {
                        (first_day, last_day) = (order_day, order_day);
                        summaries.push(BuyerSummary {
                            customer_id,
                            first_order_at_ms: paid_at,
                            last_order_at_ms: paid_at,
                            purchase_days: 1,
                            order_count: 1,
                            total_spent: net,
                            repeat_spent: 0,
                            span_days: 0,
                            age_days: days_between(order_day, today),
                        });
                    }
                }
                let s = summaries.last_mut().expect("pushed above");
                s.span_days = days_between(first_day, last_day);
            }
            Ok(summaries)
        })
    }

    /// Every order of the shop that customer stats count (paid, not fully refunded) as
    /// (customer, day in the shop's time zone, amount net of partial refunds), by customer
    /// and payment time: the transactions a backtest of the repeat-purchase models splits
    /// into calibration and holdout (`kith backtest`). Orders follow merges, as above.
    pub fn counted_orders(&self, shop_id: i64) -> Result<Vec<(i64, NaiveDate, i64)>> {
        self.read(|conn| {
            let zone = shops::zone(conn, shop_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
                 WHERE shop_id = ?1 AND status != 'refunded' ORDER BY customer_id, paid_at",
            )?;
            let rows = stmt.query_map([shop_id], |r| {
                Ok((r.get::<_, i64>(0)?, from_ms(r.get(1)?).with_timezone(&zone).date_naive(), r.get::<_, i64>(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

/// Whole days from `from` to `to`, 0 when `to` is not after `from`.
fn days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    (to - from).num_days().clamp(0, i64::from(u32::MAX)) as u32
}
