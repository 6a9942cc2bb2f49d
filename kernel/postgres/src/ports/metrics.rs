//! The dashboards' figures, the cohort table and the per-buyer purchase summaries on
//! PostgreSQL: the counts and sums behind the core's `MetricsService` and
//! `SummariesService`; `kith_domain::metrics` defines each figure.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::metrics::{ChannelFigures, CouponFigures, LabelCount, PointsFigures};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{Params, get, millis, time};

impl Pg<'_> {
    /// The one number `sql` answers, 0 for NULL.
    fn one(&self, sql: &str, params: Params<'_>) -> Result<i64> {
        let row = self.query_one(sql, params)?;
        Ok(get::<Option<i64>>(&row, 0)?.unwrap_or(0))
    }
}

fn counted_order(row: &Row) -> Result<(i64, DateTime<Utc>, i64)> {
    Ok((get(row, 0)?, time(get(row, 1)?)?, get(row, 2)?))
}

impl MetricsRead for Pg<'_> {
    /// The active customers created before `end`, and of them those created from `start`.
    fn customer_totals(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(i64, i64)> {
        let (start, end) = (millis(start), millis(end));
        let total =
            self.one("SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL AND created_at < $2", &[&shop_id, &end])?;
        let new = self.one(
            "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL AND created_at >= $2 AND created_at < $3",
            &[&shop_id, &start, &end],
        )?;
        Ok((total, new))
    }

    /// Per buyer: counted orders in the range, first counted order ever, last counted order before the end.
    fn buyer_spans(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<BuyerSpan>> {
        let rows = self.query(
            "SELECT o.customer_id,
                    COUNT(*) FILTER (WHERE o.paid_at >= $2 AND o.paid_at < $3),
                    MIN(o.paid_at),
                    MAX(CASE WHEN o.paid_at < $3 THEN o.paid_at END)
             FROM orders o JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id
             WHERE o.shop_id = $1 AND o.status <> 'refunded' AND c.merged_into IS NULL
             GROUP BY o.customer_id",
            &[&shop_id, &millis(start), &millis(end)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(BuyerSpan {
                    in_range: get(row, 1)?,
                    first: time(get(row, 2)?)?,
                    last: get::<Option<i64>>(row, 3)?.map(time).transpose()?,
                })
            })
            .collect()
    }

    fn sales(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<SalesTotals> {
        let (start, end) = (millis(start), millis(end));
        let row = self.query_one(
            "SELECT COALESCE(SUM(o.amount), 0)::BIGINT, COUNT(*),
                    COALESCE(SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM orders p WHERE p.shop_id = o.shop_id AND p.customer_id = o.customer_id
                        AND (p.paid_at < o.paid_at OR (p.paid_at = o.paid_at AND p.id < o.id))) THEN o.amount END), 0)::BIGINT
             FROM orders o WHERE o.shop_id = $1 AND o.paid_at >= $2 AND o.paid_at < $3",
            &[&shop_id, &start, &end],
        )?;
        let (gmv, orders, new_customer_revenue) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
        let refunds = self.one(
            "SELECT SUM(r.amount)::BIGINT FROM refunds r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id
             WHERE o.shop_id = $1 AND r.refunded_at >= $2 AND r.refunded_at < $3",
            &[&shop_id, &start, &end],
        )?;
        Ok(SalesTotals { gmv, orders, new_customer_revenue, refunds })
    }

    fn labels(&self, shop_id: i64, model: &str) -> Result<Vec<(f64, String, i64)>> {
        let rows = self.query(
            "SELECT MIN(s.value), s.label, COUNT(*) FROM scores s JOIN customers c ON c.shop_id = s.shop_id AND c.id = s.customer_id
             WHERE s.shop_id = $1 AND s.model = $2 AND s.label IS NOT NULL AND c.merged_into IS NULL GROUP BY s.label",
            &[&shop_id, &model],
        )?;
        rows.iter().map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?))).collect()
    }

    fn tiers(&self, shop_id: i64) -> Result<Vec<LabelCount>> {
        let rows = self.query(
            "SELECT tier, COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL AND tier IS NOT NULL
             GROUP BY tier ORDER BY 2 DESC, 1",
            &[&shop_id],
        )?;
        rows.iter()
            .map(|row| {
                let tier: String = get(row, 0)?;
                Ok(LabelCount { code: tier.clone(), label: tier, customers: get(row, 1)? })
            })
            .collect()
    }

    fn points(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Result<PointsFigures> {
        let row = self.query_one(
            "SELECT COALESCE(SUM(CASE WHEN points > 0 AND kind IN ('earn', 'adjust') THEN points END), 0)::BIGINT,
                    COALESCE(-SUM(CASE WHEN kind = 'redeem' THEN points END), 0)::BIGINT,
                    COALESCE(-SUM(CASE WHEN kind = 'expire' THEN points END), 0)::BIGINT,
                    COALESCE(-SUM(CASE WHEN points < 0 AND kind IN ('clawback', 'adjust') THEN points END), 0)::BIGINT
             FROM points_ledger WHERE shop_id = $1 AND created_at >= $2 AND created_at < $3",
            &[&shop_id, &millis(start), &millis(end)],
        )?;
        let (issued, redeemed, expired, clawed_back) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, get(&row, 3)?);
        let outstanding = self.one(
            "SELECT SUM(remaining)::BIGINT FROM points_ledger
             WHERE shop_id = $1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)",
            &[&shop_id, &millis(now)],
        )?;
        let debt = self.one(
            "SELECT (-SUM(balance))::BIGINT FROM (SELECT SUM(points) AS balance FROM points_ledger WHERE shop_id = $1 GROUP BY customer_id) b
             WHERE balance < 0",
            &[&shop_id],
        )?;
        Ok(PointsFigures { issued, redeemed, expired, clawed_back, outstanding, debt })
    }

    fn coupons(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<CouponFigures> {
        let (start, end) = (millis(start), millis(end));
        let issued =
            self.one("SELECT COUNT(*) FROM coupons WHERE shop_id = $1 AND issued_at >= $2 AND issued_at < $3", &[&shop_id, &start, &end])?;
        let row = self.query_one(
            "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0)::BIGINT FROM coupons c
             JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
             WHERE c.shop_id = $1 AND c.redeemed_at >= $2 AND c.redeemed_at < $3",
            &[&shop_id, &start, &end],
        )?;
        Ok(CouponFigures { issued, redeemed: get(&row, 0)?, cost: get(&row, 1)? })
    }

    fn messages(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<ChannelFigures>> {
        // SQLite's SUM of comparisons counts the rows where they hold, NULL (0) where
        // none holds; COUNT FILTER counts the same rows.
        let rows = self.query(
            "SELECT channel,
                    COUNT(*) FILTER (WHERE sent_at >= $2 AND sent_at < $3),
                    COUNT(*) FILTER (WHERE delivered_at >= $2 AND delivered_at < $3),
                    COUNT(*) FILTER (WHERE status = 'failed' AND updated_at >= $2 AND updated_at < $3),
                    COUNT(*) FILTER (WHERE status = 'suppressed' AND updated_at >= $2 AND updated_at < $3),
                    COUNT(*) FILTER (WHERE status IN ('queued', 'sending'))
             FROM messages WHERE shop_id = $1 GROUP BY channel ORDER BY channel",
            &[&shop_id, &millis(start), &millis(end)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(ChannelFigures {
                    channel: get(row, 0)?,
                    sent: get(row, 1)?,
                    delivered: get(row, 2)?,
                    failed: get(row, 3)?,
                    suppressed: get(row, 4)?,
                    pending: get(row, 5)?,
                })
            })
            .collect()
    }

    fn score_values(&self, shop_id: i64, model: &str) -> Result<Vec<f64>> {
        let rows = self.query(
            "SELECT s.value FROM scores s JOIN customers c ON c.shop_id = s.shop_id AND c.id = s.customer_id
             WHERE s.shop_id = $1 AND s.model = $2 AND c.merged_into IS NULL",
            &[&shop_id, &model],
        )?;
        rows.iter().map(|row| get(row, 0)).collect()
    }

    fn paid_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>)>> {
        let rows = self.query(
            "SELECT o.customer_id, o.paid_at FROM orders o JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id
             WHERE o.shop_id = $1 AND o.status <> 'refunded' AND c.merged_into IS NULL ORDER BY o.customer_id, o.paid_at",
            &[&shop_id],
        )?;
        rows.iter().map(|row| Ok((get(row, 0)?, time(get(row, 1)?)?))).collect()
    }
}

impl SummariesRead for Pg<'_> {
    /// One statement per page, over the `orders_shop_customer` index (shop, customer,
    /// paid_at, status, amounts): it covers both the page's customer ids and their orders.
    fn buyer_orders(&self, shop_id: i64, after: Option<i64>, limit: usize) -> Result<Vec<(i64, DateTime<Utc>, i64)>> {
        let rows = self.query(
            "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
             WHERE shop_id = $1 AND customer_id > $2 AND status != 'refunded'
               AND customer_id <= (SELECT MAX(customer_id) FROM (
                   SELECT DISTINCT customer_id FROM orders
                   WHERE shop_id = $1 AND customer_id > $2 AND status != 'refunded'
                   ORDER BY customer_id LIMIT $3) page)
             ORDER BY customer_id, paid_at",
            &[&shop_id, &after.unwrap_or(i64::MIN), &(limit as i64)],
        )?;
        rows.iter().map(counted_order).collect()
    }

    fn counted_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>, i64)>> {
        let rows = self.query(
            "SELECT customer_id, paid_at, amount - refunded_amount FROM orders
             WHERE shop_id = $1 AND status != 'refunded' ORDER BY customer_id, paid_at",
            &[&shop_id],
        )?;
        rows.iter().map(counted_order).collect()
    }
}
