//! The dashboards' figures and the cohort table; `kith_domain::metrics` defines each figure.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use kith_domain::metrics::{
    ChannelFigures, Cohort, CohortMonth, CohortTable, CouponFigures, CustomerFigures, FunnelStage, LabelCount, Overview, PointsFigures,
    SalesFigures, ScoreDistribution,
};
use rusqlite::{Connection, params};

use crate::segments::start_of;
use crate::{Result, Store, from_ms, shops, to_ms};

const DAY_MS: i64 = 86_400_000;

/// What the overview is asked for.
#[derive(Debug, Clone, Copy)]
pub struct OverviewQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub active_days: u32,
    pub churn_days: u32,
}

fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<i64> {
    Ok(conn.prepare_cached(sql)?.query_row(params, |r| r.get::<_, Option<i64>>(0))?.unwrap_or(0))
}

/// The shop's zone, its name and the currency.
fn shop_zone(conn: &Connection, shop_id: i64) -> Result<(Tz, String, String)> {
    let shop = shops::load_shop(conn, shop_id)?;
    Ok((shop.time_zone.parse().unwrap_or(Tz::UTC), shop.time_zone, shop.currency))
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn customers(conn: &Connection, shop_id: i64, start: i64, end: i64, q: &OverviewQuery) -> Result<CustomerFigures> {
    let total =
        one(conn, "SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL AND created_at < ?2", params![shop_id, end])?;
    let new = one(
        conn,
        "SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL AND created_at >= ?2 AND created_at < ?3",
        params![shop_id, start, end],
    )?;
    // Per buyer: counted orders in the range, first counted order ever, last counted order before the end.
    let mut stmt = conn.prepare_cached(
        "SELECT o.customer_id,
                SUM(o.paid_at >= ?2 AND o.paid_at < ?3),
                MIN(o.paid_at),
                MAX(CASE WHEN o.paid_at < ?3 THEN o.paid_at END)
         FROM orders o JOIN customers c ON c.id = o.customer_id
         WHERE o.shop_id = ?1 AND o.status <> 'refunded' AND c.merged_into IS NULL
         GROUP BY o.customer_id",
    )?;
    let (mut buyers, mut repeat, mut new_buyers, mut active, mut sleeping, mut churned, mut ever) = (0, 0, 0, 0, 0, 0, 0);
    let rows =
        stmt.query_map(params![shop_id, start, end], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?)))?;
    for row in rows {
        let (in_range, first, last) = row?;
        if in_range > 0 {
            buyers += 1;
            repeat += i64::from(in_range >= 2);
            new_buyers += i64::from(first >= start);
        }
        if let Some(last) = last {
            ever += 1;
            let age = end - last;
            if age <= i64::from(q.active_days) * DAY_MS {
                active += 1;
            } else if age <= i64::from(q.churn_days) * DAY_MS {
                sleeping += 1;
            } else {
                churned += 1;
            }
        }
    }
    Ok(CustomerFigures {
        total,
        new,
        buyers,
        new_buyers,
        active,
        sleeping,
        churned,
        never_bought: total - ever,
        repurchase_rate: ratio(repeat, buyers),
        active_days: q.active_days,
        churn_days: q.churn_days,
    })
}

fn sales(conn: &Connection, shop_id: i64, start: i64, end: i64) -> Result<SalesFigures> {
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
    Ok(SalesFigures {
        gmv,
        orders,
        aov: (orders > 0).then(|| gmv / orders),
        refunds,
        net: gmv - refunds,
        new_customer_revenue,
        returning_customer_revenue: gmv - new_customer_revenue,
    })
}

fn code_of(label: &str) -> &str {
    label.split('|').next().unwrap_or(label)
}

fn labels(conn: &Connection, shop_id: i64, model: &str) -> Result<Vec<(f64, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT MIN(s.value), s.label, COUNT(*) FROM scores s JOIN customers c ON c.id = s.customer_id
         WHERE s.shop_id = ?1 AND s.model = ?2 AND s.label IS NOT NULL AND c.merged_into IS NULL GROUP BY s.label",
    )?;
    Ok(stmt.query_map(params![shop_id, model], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn by_code(rows: Vec<(f64, String, i64)>) -> Vec<LabelCount> {
    let mut merged: BTreeMap<String, LabelCount> = BTreeMap::new();
    for (_, label, n) in rows {
        let code = code_of(&label).to_owned();
        merged.entry(code.clone()).or_insert(LabelCount { code, label, customers: 0 }).customers += n;
    }
    let mut out: Vec<LabelCount> = merged.into_values().collect();
    out.sort_by(|a, b| b.customers.cmp(&a.customers).then(a.code.cmp(&b.code)));
    out
}

fn aipl(conn: &Connection, shop_id: i64) -> Result<Vec<FunnelStage>> {
    let counts = by_code(labels(conn, shop_id, "aipl")?);
    let stages = [("A", "A|认知|Awareness"), ("I", "I|兴趣|Interest"), ("P", "P|购买|Purchase"), ("L", "L|忠诚|Loyalty")];
    let at: Vec<(String, String, i64)> = stages
        .iter()
        .map(|(code, default)| {
            let found = counts.iter().find(|c| c.code == *code);
            (code.to_string(), found.map_or(default.to_string(), |c| c.label.clone()), found.map_or(0, |c| c.customers))
        })
        .collect();
    let mut out = Vec::new();
    for (i, (stage, label, customers)) in at.iter().enumerate() {
        let reached: i64 = at[i..].iter().map(|s| s.2).sum();
        let conversion = if i == 0 { None } else { ratio(reached, out.last().map_or(0, |s: &FunnelStage| s.reached)) };
        out.push(FunnelStage { stage: stage.clone(), label: label.clone(), customers: *customers, reached, conversion });
    }
    Ok(out)
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

/// Months between two (year, month) pairs.
fn months_between(a: (i32, u32), b: (i32, u32)) -> i64 {
    i64::from(b.0 - a.0) * 12 + i64::from(b.1) - i64::from(a.1)
}

impl Store {
    /// The dashboard over `q.from..=q.to` (the shop's dates); "now" figures at `now`.
    pub fn overview(&self, shop_id: i64, q: &OverviewQuery, now: DateTime<Utc>) -> Result<Overview> {
        self.read(|conn| {
            let (zone, zone_name, currency) = shop_zone(conn, shop_id)?;
            let start = start_of(zone, q.from);
            let end = start_of(zone, q.to.succ_opt().unwrap_or(q.to));
            Ok(Overview {
                from: q.from,
                to: q.to,
                time_zone: zone_name,
                currency,
                customers: customers(conn, shop_id, start, end, q)?,
                sales: sales(conn, shop_id, start, end)?,
                rfm: by_code(labels(conn, shop_id, "rfm")?),
                aipl: aipl(conn, shop_id)?,
                tiers: tiers(conn, shop_id)?,
                points: points(conn, shop_id, start, end, to_ms(now))?,
                coupons: coupons(conn, shop_id, start, end)?,
                messages: messages(conn, shop_id, start, end)?,
            })
        })
    }

    /// How the values of a score model spread over the shop's customers (not merged away).
    pub fn score_distribution(&self, shop_id: i64, model: &str) -> Result<ScoreDistribution> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.value FROM scores s JOIN customers c ON c.id = s.customer_id
                 WHERE s.shop_id = ?1 AND s.model = ?2 AND c.merged_into IS NULL",
            )?;
            let values = stmt.query_map(params![shop_id, model], |r| r.get(0))?.collect::<rusqlite::Result<Vec<f64>>>()?;
            Ok(ScoreDistribution::of(model, values, by_code(labels(conn, shop_id, model)?)))
        })
    }

    /// Cohorts of first-order months from `from` to `to` (first days of months), each
    /// followed month by month up to the month of `now`.
    pub fn cohorts(&self, shop_id: i64, from: NaiveDate, to: NaiveDate, now: DateTime<Utc>) -> Result<CohortTable> {
        self.read(|conn| {
            let (zone, zone_name, _) = shop_zone(conn, shop_id)?;
            let month_of = |ms: i64| {
                let d = from_ms(ms).with_timezone(&zone).date_naive();
                (d.year(), d.month())
            };
            let current = {
                let d = now.with_timezone(&zone).date_naive();
                (d.year(), d.month())
            };
            let (first, last) = ((from.year(), from.month()), (to.year(), to.month()));
            let mut stmt = conn.prepare_cached(
                "SELECT o.customer_id, o.paid_at FROM orders o JOIN customers c ON c.id = o.customer_id
                 WHERE o.shop_id = ?1 AND o.status <> 'refunded' AND c.merged_into IS NULL ORDER BY o.customer_id, o.paid_at",
            )?;
            // cohort month → (customers, months since → customers active then)
            let mut table: BTreeMap<(i32, u32), (i64, BTreeMap<i64, i64>)> = BTreeMap::new();
            let mut customer: Option<(i64, (i32, u32), BTreeSet<i64>)> = None;
            let mut close = |done: Option<(i64, (i32, u32), BTreeSet<i64>)>| {
                if let Some((_, month, offsets)) = done
                    && month >= first
                    && month <= last
                {
                    let entry = table.entry(month).or_default();
                    entry.0 += 1;
                    for k in offsets {
                        *entry.1.entry(k).or_default() += 1;
                    }
                }
            };
            let rows = stmt.query_map([shop_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (id, paid_at) = row?;
                let month = month_of(paid_at);
                match &mut customer {
                    Some((current_id, first_month, offsets)) if *current_id == id => {
                        offsets.insert(months_between(*first_month, month));
                    }
                    _ => {
                        close(customer.take());
                        customer = Some((id, month, BTreeSet::from([0])));
                    }
                }
            }
            close(customer.take());
            let mut cohorts = Vec::new();
            let mut month = first;
            while month <= last && month <= current {
                let (size, active) = table.remove(&month).unwrap_or_default();
                let span = months_between(month, current).max(0);
                cohorts.push(Cohort {
                    month: format!("{:04}-{:02}", month.0, month.1),
                    customers: size,
                    months: (0..=span)
                        .map(|k| {
                            let n = active.get(&k).copied().unwrap_or(0);
                            CohortMonth { months_since: k as u32, customers: n, rate: ratio(n, size).unwrap_or(0.0) }
                        })
                        .collect(),
                });
                month = if month.1 == 12 { (month.0 + 1, 1) } else { (month.0, month.1 + 1) };
            }
            Ok(CohortTable { time_zone: zone_name, cohorts })
        })
    }
}
