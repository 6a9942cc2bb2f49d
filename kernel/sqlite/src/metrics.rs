//! The dashboards' figures and the cohort table on SQLite: the counts and sums behind
//! the core's `MetricsService`; `kith_domain::metrics` defines each figure.

use chrono::{DateTime, Utc};
use kith_core::ports::{BuyerSpan, MetricsRead, SalesTotals};
use kith_domain::metrics::{ChannelFigures, CouponFigures, LabelCount, PointsFigures};
use rusqlite::{Connection, params};

use crate::sql::Sql;
use crate::sql::{CoreResult, core};
use crate::{Result, from_ms, to_ms};

fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<i64> {
    Ok(conn.prepare_cached(sql)?.query_row(params, |r| r.get::<_, Option<i64>>(0))?.unwrap_or(0))
}

/// The active customers created before `end`, and of them those created from `start`.
fn customer_totals(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<(i64, i64)> {
    let total =
        one(conn, "SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL AND created_at < ?2", params![shop_id, end])?;
    let new = one(
        conn,
        "SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL AND created_at >= ?2 AND created_at < ?3",
        params![shop_id, start, end],
    )?;
    Ok((total, new))
}

/// Per buyer: counted orders in the range, first counted order ever, last counted order before the end.
fn buyer_spans(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<Vec<BuyerSpan>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.customer_id,
                SUM(o.paid_at >= ?2 AND o.paid_at < ?3),
                MIN(o.paid_at),
                MAX(CASE WHEN o.paid_at < ?3 THEN o.paid_at END)
         FROM orders o JOIN customers c ON c.id = o.customer_id
         WHERE o.shop_id = ?1 AND o.status <> 'refunded' AND c.merged_into IS NULL
         GROUP BY o.customer_id",
    )?;
    let rows = stmt.query_map(params![shop_id, start, end], |r| {
        Ok(BuyerSpan { in_range: r.get(1)?, first: from_ms(r.get(2)?), last: r.get::<_, Option<i64>>(3)?.map(from_ms) })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn sales(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<SalesTotals> {
    let (gmv, orders, new_customer_revenue): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(o.amount), 0), COUNT(*),
                    COALESCE(SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM orders p WHERE p.customer_id = o.customer_id
                        AND (p.paid_at < o.paid_at OR (p.paid_at = o.paid_at AND p.id < o.id))) THEN o.amount END), 0)
             FROM orders o WHERE o.shop_id = ?1 AND o.paid_at >= ?2 AND o.paid_at < ?3",
        )?
        .query_row(params![shop_id, start, end], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let refunds = one(
        conn,
        "SELECT SUM(r.amount) FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.shop_id = ?1 AND r.refunded_at >= ?2 AND r.refunded_at < ?3",
        params![shop_id, start, end],
    )?;
    Ok(SalesTotals { gmv, orders, new_customer_revenue, refunds })
}

fn labels(conn: &Connection, shop_id: i64, model: &str) -> Result<Vec<(f64, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT MIN(s.value), s.label, COUNT(*) FROM scores s JOIN customers c ON c.id = s.customer_id
         WHERE s.shop_id = ?1 AND s.model = ?2 AND s.label IS NOT NULL AND c.merged_into IS NULL GROUP BY s.label",
    )?;
    Ok(stmt.query_map(params![shop_id, model], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn tiers(conn: &Connection, shop_id: i64) -> Result<Vec<LabelCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT tier, COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL AND tier IS NOT NULL GROUP BY tier ORDER BY 2 DESC, 1",
    )?;
    let rows = stmt.query_map([shop_id], |r| {
        let tier: String = r.get(0)?;
        Ok(LabelCount { code: tier.clone(), label: tier, customers: r.get(1)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
fn points(conn: &Connection, shop_id: i64, start: i64, end: i64, now: i64) -> Result<PointsFigures> {
    let (issued, redeemed, expired, clawed_back): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN points > 0 AND kind IN ('earn', 'adjust') THEN points END), 0),
                    COALESCE(-SUM(CASE WHEN kind = 'redeem' THEN points END), 0),
                    COALESCE(-SUM(CASE WHEN kind = 'expire' THEN points END), 0),
                    COALESCE(-SUM(CASE WHEN points < 0 AND kind IN ('clawback', 'adjust') THEN points END), 0)
             FROM points_ledger WHERE shop_id = ?1 AND created_at >= ?2 AND created_at < ?3",
        )?
        .query_row(params![shop_id, start, end], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let outstanding = one(
        conn,
        "SELECT SUM(remaining) FROM points_ledger WHERE shop_id = ?1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?2)",
        params![shop_id, now],
    )?;
    let debt = one(
        conn,
        "SELECT -SUM(balance) FROM (SELECT SUM(points) AS balance FROM points_ledger WHERE shop_id = ?1 GROUP BY customer_id) WHERE balance < 0",
        [shop_id],
    )?;
    Ok(PointsFigures { issued, redeemed, expired, clawed_back, outstanding, debt })
}

fn coupons(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<CouponFigures> {
    let issued =
        one(conn, "SELECT COUNT(*) FROM coupons WHERE shop_id = ?1 AND issued_at >= ?2 AND issued_at < ?3", params![shop_id, start, end])?;
    let (redeemed, cost): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0) FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
             WHERE c.shop_id = ?1 AND c.redeemed_at >= ?2 AND c.redeemed_at < ?3",
        )?
        .query_row(params![shop_id, start, end], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(CouponFigures { issued, redeemed, cost })
}

fn messages(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<Vec<ChannelFigures>> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel,
                SUM(sent_at >= ?2 AND sent_at < ?3),
                SUM(delivered_at >= ?2 AND delivered_at < ?3),
                SUM(status = 'failed' AND updated_at >= ?2 AND updated_at < ?3),
                SUM(status = 'suppressed' AND updated_at >= ?2 AND updated_at < ?3),
                SUM(status IN ('queued', 'sending'))
         FROM messages WHERE shop_id = ?1 GROUP BY channel ORDER BY channel",
    )?;
    let rows = stmt.query_map(params![shop_id, start, end], |r| {
        Ok(ChannelFigures {
            channel: r.get(0)?,
            sent: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
            delivered: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            failed: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            suppressed: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            pending: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl MetricsRead for Sql<'_> {
    fn customer_totals(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> CoreResult<(i64, i64)> {
        core(customer_totals(self.0, shop_id, to_ms(start), to_ms(end)))
    }

    fn buyer_spans(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> CoreResult<Vec<BuyerSpan>> {
        core(buyer_spans(self.0, shop_id, to_ms(start), to_ms(end)))
    }

    fn sales(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> CoreResult<SalesTotals> {
        core(sales(self.0, shop_id, to_ms(start), to_ms(end)))
    }

    fn labels(&self, shop_id: i64, model: &str) -> CoreResult<Vec<(f64, String, i64)>> {
        core(labels(self.0, shop_id, model))
    }

    fn tiers(&self, shop_id: i64) -> CoreResult<Vec<LabelCount>> {
        core(tiers(self.0, shop_id))
    }

    fn points(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> CoreResult<PointsFigures> {
        core(points(self.0, shop_id, to_ms(start), to_ms(end), to_ms(now)))
    }

    fn coupons(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> CoreResult<CouponFigures> {
        core(coupons(self.0, shop_id, to_ms(start), to_ms(end)))
    }

    fn messages(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> CoreResult<Vec<ChannelFigures>> {
        core(messages(self.0, shop_id, to_ms(start), to_ms(end)))
    }

    fn score_values(&self, shop_id: i64, model: &str) -> CoreResult<Vec<f64>> {
        core((|| {
            let mut stmt = self.0.prepare_cached(
                "SELECT s.value FROM scores s JOIN customers c ON c.id = s.customer_id
                 WHERE s.shop_id = ?1 AND s.model = ?2 AND c.merged_into IS NULL",
            )?;
            Ok(stmt.query_map(params![shop_id, model], |r| r.get(0))?.collect::<rusqlite::Result<Vec<f64>>>()?)
        })())
    }

    fn paid_orders(&self, shop_id: i64) -> CoreResult<Vec<(i64, DateTime<Utc>)>> {
        core((|| {
            let mut stmt = self.0.prepare_cached(
                "SELECT o.customer_id, o.paid_at FROM orders o JOIN customers c ON c.id = o.customer_id
                 WHERE o.shop_id = ?1 AND o.status <> 'refunded' AND c.merged_into IS NULL ORDER BY o.customer_id, o.paid_at",
            )?;
            let rows = stmt.query_map([shop_id], |r| Ok((r.get::<_, i64>(0)?, from_ms(r.get(1)?))))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })())
    }
}
