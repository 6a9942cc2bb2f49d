//! The dashboards' figures, the cohort table and the buyers' purchase summaries;
//! `kith_domain::metrics` defines each figure. The backend counts and sums
//! (`ports::MetricsRead`, `ports::SummariesRead`); the core reads the shop's days in its
//! zone and turns the counts into figures.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kith_domain::metrics::{
    Cohort, CohortMonth, CohortTable, CustomerFigures, FunnelStage, LabelCount, Overview, SalesFigures, ScoreDistribution,
};
use kith_domain::plugin::{BuyerSummary, MAX_SUMMARIES_PAGE};

use crate::Result;
use crate::ports::{ReadTx, Storage, StorageExt};

/// What the overview is asked for.
#[derive(Debug, Clone, Copy)]
pub struct OverviewQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub active_days: u32,
    pub churn_days: u32,
}

/// The first moment of `day` in `zone`.
pub fn start_of(zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A zone may skip midnight (a DST jump): take the earliest valid moment after it.
    (0..4)
        .find_map(|h| zone.from_local_datetime(&(midnight + Duration::hours(h))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

/// The shop's zone, its name and the currency.
fn shop_zone(tx: &dyn ReadTx, shop_id: i64) -> Result<(Tz, String, String)> {
    let shop = crate::shops::load(tx, shop_id)?;
    Ok((shop.time_zone.parse().unwrap_or(Tz::UTC), shop.time_zone, shop.currency))
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn customers(tx: &dyn ReadTx, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>, q: &OverviewQuery) -> Result<CustomerFigures> {
    let (total, new) = tx.metrics().customer_totals(shop_id, start, end)?;
    // Per buyer: counted orders in the range, first counted order ever, last counted order before the end.
    let (mut buyers, mut repeat, mut new_buyers, mut active, mut sleeping, mut churned, mut ever) = (0, 0, 0, 0, 0, 0, 0);
    for span in tx.metrics().buyer_spans(shop_id, start, end)? {
        if span.in_range > 0 {
            buyers += 1;
            repeat += i64::from(span.in_range >= 2);
            new_buyers += i64::from(span.first >= start);
        }
        if let Some(last) = span.last {
            ever += 1;
            let age = end - last;
            if age <= Duration::days(i64::from(q.active_days)) {
                active += 1;
            } else if age <= Duration::days(i64::from(q.churn_days)) {
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

fn sales(tx: &dyn ReadTx, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<SalesFigures> {
    let totals = tx.metrics().sales(shop_id, start, end)?;
    let (gmv, orders, refunds) = (totals.gmv, totals.orders, totals.refunds);
    Ok(SalesFigures {
        gmv,
        orders,
        aov: (orders > 0).then(|| gmv / orders),
        refunds,
        net: gmv - refunds,
        new_customer_revenue: totals.new_customer_revenue,
        returning_customer_revenue: gmv - totals.new_customer_revenue,
    })
}

fn code_of(label: &str) -> &str {
    label.split('|').next().unwrap_or(label)
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

fn aipl(tx: &dyn ReadTx, shop_id: i64) -> Result<Vec<FunnelStage>> {
    let counts = by_code(tx.metrics().labels(shop_id, "aipl")?);
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

/// Months between two (year, month) pairs.
fn months_between(a: (i32, u32), b: (i32, u32)) -> i64 {
    i64::from(b.0 - a.0) * 12 + i64::from(b.1) - i64::from(a.1)
}

/// The dashboards: the shop's figures over a range, score distributions, cohorts.
pub trait MetricsService: Storage {
    /// The dashboard over `q.from..=q.to` (the shop's dates); "now" figures at `now`.
    fn overview(&self, shop_id: i64, q: &OverviewQuery, now: DateTime<Utc>) -> Result<Overview> {
        self.read(|tx| {
            let (zone, zone_name, currency) = shop_zone(tx, shop_id)?;
            let start = start_of(zone, q.from);
            let end = start_of(zone, q.to.succ_opt().unwrap_or(q.to));
            Ok(Overview {
                from: q.from,
                to: q.to,
                time_zone: zone_name,
                currency,
                customers: customers(tx, shop_id, start, end, q)?,
                sales: sales(tx, shop_id, start, end)?,
                rfm: by_code(tx.metrics().labels(shop_id, "rfm")?),
                aipl: aipl(tx, shop_id)?,
                tiers: tx.metrics().tiers(shop_id)?,
                points: tx.metrics().points(shop_id, start, end, now)?,
                coupons: tx.metrics().coupons(shop_id, start, end)?,
                messages: tx.metrics().messages(shop_id, start, end)?,
            })
        })
    }

    /// How the values of a score model spread over the shop's customers (not merged away).
    fn score_distribution(&self, shop_id: i64, model: &str) -> Result<ScoreDistribution> {
        self.read(|tx| {
            let values = tx.metrics().score_values(shop_id, model)?;
            Ok(ScoreDistribution::of(model, values, by_code(tx.metrics().labels(shop_id, model)?)))
        })
    }

    /// Cohorts of first-order months from `from` to `to` (first days of months), each
    /// followed month by month up to the month of `now`.
    fn cohorts(&self, shop_id: i64, from: NaiveDate, to: NaiveDate, now: DateTime<Utc>) -> Result<CohortTable> {
        self.read(|tx| {
            let (zone, zone_name, _) = shop_zone(tx, shop_id)?;
            let month_of = |at: DateTime<Utc>| {
                let d = at.with_timezone(&zone).date_naive();
                (d.year(), d.month())
            };
            let current = {
                let d = now.with_timezone(&zone).date_naive();
                (d.year(), d.month())
            };
            let (first, last) = ((from.year(), from.month()), (to.year(), to.month()));
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
            for (id, paid_at) in tx.metrics().paid_orders(shop_id)? {
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

impl<S: Storage + ?Sized> MetricsService for S {}

/// Per-buyer purchase summaries over a whole shop, paged by customer id: what the
/// repeat-purchase models (BG/NBD, Gamma-Gamma) are fitted on (`summaries.buyers` of
/// `kith:plugin@0.2.0`).
pub trait SummariesService: Storage {
    /// Up to `limit` (at most [`MAX_SUMMARIES_PAGE`]) buyers of the shop with an id above
    /// `after`, by id. A buyer has at least one order that customer stats count: paid and
    /// not fully refunded; amounts are net of partial refunds. Days are calendar days in
    /// the shop's time zone; `age_days` counts to `now`'s day. Orders follow merges, so
    /// every summary is of an active customer.
    ///
    /// One query per page (on SQLite, one statement over the `orders_shop_customer` index,
    /// which covers both the page's customer ids and their orders).
    fn buyer_summaries(&self, shop_id: i64, after: Option<i64>, limit: usize, now: DateTime<Utc>) -> Result<Vec<BuyerSummary>> {
        let limit = limit.min(MAX_SUMMARIES_PAGE);
        self.read(|tx| {
            let zone = crate::shops::zone(tx, shop_id)?;
            let day = |at: DateTime<Utc>| at.with_timezone(&zone).date_naive();
            let today = day(now);
            let mut summaries: Vec<BuyerSummary> = Vec::new();
            // The current buyer's first and latest purchase days.
            let (mut first_day, mut last_day) = (NaiveDate::MIN, NaiveDate::MIN);
            for (customer_id, paid_at, net) in tx.summaries().buyer_orders(shop_id, after, limit)? {
                let order_day = day(paid_at);
                let paid_at = paid_at.timestamp_millis();
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
    fn counted_orders(&self, shop_id: i64) -> Result<Vec<(i64, NaiveDate, i64)>> {
        self.read(|tx| {
            let zone = crate::shops::zone(tx, shop_id)?;
            let orders = tx.summaries().counted_orders(shop_id)?;
            Ok(orders.into_iter().map(|(customer, paid_at, net)| (customer, paid_at.with_timezone(&zone).date_naive(), net)).collect())
        })
    }
}

impl<S: Storage + ?Sized> SummariesService for S {}

/// Whole days from `from` to `to`, 0 when `to` is not after `from`.
fn days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    (to - from).num_days().clamp(0, i64::from(u32::MAX)) as u32
}
