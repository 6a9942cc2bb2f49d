//! The figures of the dashboards (`GET /v1/metrics/overview`) and the cohort
//! table, each defined where it is declared: these comments are the API docs.
//!
//! A range is two dates in the shop's time zone, both included: from the start
//! of `from` to the end of `to`. Amounts are in the shop's currency, minor units.
//! "Counted orders" are orders not fully refunded (as of now).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The dashboard of one shop over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    pub currency: String,
    pub customers: CustomerFigures,
    pub sales: SalesFigures,
    /// Customers per RFM group (model `rfm`), now, by label code; largest first.
    pub rfm: Vec<LabelCount>,
    /// The AIPL funnel (model `aipl`), now: awareness, interest, purchase, loyalty.
    pub aipl: Vec<FunnelStage>,
    /// Customers per membership tier, now; largest first.
    pub tiers: Vec<LabelCount>,
    pub points: PointsFigures,
    pub coupons: CouponFigures,
    /// Messages per channel, by channel name.
    pub messages: Vec<ChannelFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerFigures {
    /// Customers (not merged away) first seen before the end of the range: a customer is first
    /// seen at the earliest time of their events (an order's payment, a behaviour, an upsert's
    /// `occurred_at`), whenever those events arrived.
    pub total: i64,
    /// Customers first seen within the range.
    pub new: i64,
    /// Customers with a counted order paid within the range (whenever they were first seen).
    pub buyers: i64,
    /// Buyers whose first counted order ever was paid within the range.
    pub new_buyers: i64,
    /// Customers whose last counted order before the end of the range is at most
    /// `active_days` (default 90) old at that moment.
    pub active: i64,
    /// Last counted order more than `active_days` and at most `churn_days` (default 180) old.
    pub sleeping: i64,
    /// Last counted order more than `churn_days` old.
    pub churned: i64,
    /// Customers of `total` without a counted order before the end of the range.
    pub never_bought: i64,
    /// Buyers with two or more counted orders within the range ÷ buyers; absent without buyers.
    pub repurchase_rate: Option<f64>,
    /// The thresholds used, in days.
    pub active_days: u32,
    pub churn_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SalesFigures {
    /// Sum of the amounts of all orders paid within the range (refunded or not).
    pub gmv: i64,
    /// Orders paid within the range.
    pub orders: i64,
    /// `gmv` ÷ `orders`, rounded down; absent without orders.
    pub aov: Option<i64>,
    /// Sum of refunds made within the range (whatever the order's date).
    pub refunds: i64,
    /// `gmv` − `refunds`.
    pub net: i64,
    /// `gmv` of orders that were their customer's first order ever.
    pub new_customer_revenue: i64,
    /// `gmv` of the other orders.
    pub returning_customer_revenue: i64,
}

/// Customers holding one label (or tier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabelCount {
    /// The label code (the label's part before `|`), or the tier.
    pub code: String,
    /// The full label as the model wrote it.
    pub label: String,
    pub customers: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunnelStage {
    /// `A`, `I`, `P` or `L`.
    pub stage: String,
    pub label: String,
    /// Customers at this stage now.
    pub customers: i64,
    /// Customers at this stage or a later one.
    pub reached: i64,
    /// `reached` ÷ the previous stage's `reached`; absent for the first stage or when that is 0.
    pub conversion: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PointsFigures {
    /// Points of earn entries and positive adjustments within the range.
    pub issued: i64,
    /// Points spent on rewards within the range.
    pub redeemed: i64,
    /// Points expired within the range.
    pub expired: i64,
    /// Points clawed back (refunds) and negative adjustments within the range.
    pub clawed_back: i64,
    /// Points in open, unexpired batches now: what the shop still owes.
    pub outstanding: i64,
    /// Points owed by customers with a negative balance now.
    pub debt: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CouponFigures {
    /// Coupons issued within the range.
    pub issued: i64,
    /// Coupons redeemed within the range.
    pub redeemed: i64,
    /// Face value of the coupons redeemed within the range.
    pub cost: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelFigures {
    pub channel: String,
    /// Messages a connector accepted within the range.
    pub sent: i64,
    /// Messages reported delivered within the range.
    pub delivered: i64,
    /// Messages that failed within the range.
    pub failed: i64,
    /// Messages suppressed (consent, cap, no address) within the range.
    pub suppressed: i64,
    /// Messages waiting or being sent now.
    pub pending: i64,
}

/// Customers by the month of their first counted order × months since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CohortTable {
    pub time_zone: String,
    pub cohorts: Vec<Cohort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cohort {
    /// `YYYY-MM`, in the shop's time zone.
    pub month: String,
    /// Customers whose first counted order was in `month`.
    pub customers: i64,
    /// One entry per month from `month` to the current month.
    pub months: Vec<CohortMonth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CohortMonth {
    /// 0 is the first-order month itself.
    pub months_since: u32,
    /// Cohort customers with a counted order in that month.
    pub customers: i64,
    /// `customers` ÷ the cohort's size.
    pub rate: f64,
}

/// How a score model's values spread over the shop's customers (`GET /v1/metrics/scores/{model}`).
/// A model no customer holds answers with `customers` 0, a `sum` of 0 and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreDistribution {
    pub model: String,
    /// Customers (not merged away) holding a score of the model.
    pub customers: i64,
    /// The values added up. For `predict.clv` (minor units) this is the expected revenue of the
    /// customer base over the plugin's CLV horizon (its `clv_months`, discounted, times its
    /// `margin`); for `predict.expected_purchases`, the orders expected over its `horizon_days`.
    pub sum: f64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// p10, p20 … p90 by nearest rank: the p-th is the ⌈n·p/100⌉-th lowest value.
    pub quantiles: Vec<Quantile>,
    /// Ten buckets of equal width from `min` to `max`, each holding `from` ≤ value < `to` (the
    /// last one its `to` too); one bucket when every value is the same.
    pub histogram: Vec<Bucket>,
    /// Customers per label code, largest first (empty when the model writes no labels).
    pub labels: Vec<LabelCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quantile {
    /// The percentage: 10, 20 … 90.
    pub p: u8,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bucket {
    pub from: f64,
    pub to: f64,
    pub customers: i64,
}

impl ScoreDistribution {
    /// The figures of `values` (in any order) and the customers per label code.
    pub fn of(model: &str, mut values: Vec<f64>, labels: Vec<LabelCount>) -> ScoreDistribution {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let sum: f64 = values.iter().sum();
        let (min, max) = (values.first().copied(), values.last().copied());
        let quantiles = if n == 0 {
            Vec::new()
        } else {
            (1..=9u8).map(|d| Quantile { p: d * 10, value: values[(n * usize::from(d) * 10).div_ceil(100).max(1) - 1] }).collect()
        };
        let histogram = match (min, max) {
            (Some(lo), Some(hi)) if hi > lo => {
                let width = (hi - lo) / 10.0;
                let mut counts = [0i64; 10];
                for v in &values {
                    counts[(((v - lo) / width) as usize).min(9)] += 1;
                }
                (0..10)
                    .map(|i| Bucket {
                        from: lo + width * i as f64,
                        to: if i == 9 { hi } else { lo + width * (i + 1) as f64 },
                        customers: counts[i],
                    })
                    .collect()
            }
            (Some(lo), Some(hi)) => vec![Bucket { from: lo, to: hi, customers: n as i64 }],
            _ => Vec::new(),
        };
        ScoreDistribution {
            model: model.to_owned(),
            customers: n as i64,
            sum,
            mean: (n > 0).then(|| sum / n as f64),
            min,
            max,
            quantiles,
            histogram,
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_reads_as_its_values_say() {
        // 1..=20, shuffled: p10 is the 2nd lowest, p50 the 10th, p90 the 18th.
        let values: Vec<f64> = (1..=20).map(|i| f64::from((i * 7) % 20 + 1)).collect();
        let d = ScoreDistribution::of("predict.clv", values, Vec::new());
        assert_eq!((d.customers, d.sum, d.mean, d.min, d.max), (20, 210.0, Some(10.5), Some(1.0), Some(20.0)));
        let q: Vec<(u8, f64)> = d.quantiles.iter().map(|q| (q.p, q.value)).collect();
        assert_eq!(q, vec![(10, 2.0), (20, 4.0), (30, 6.0), (40, 8.0), (50, 10.0), (60, 12.0), (70, 14.0), (80, 16.0), (90, 18.0)]);
        assert_eq!(d.histogram.len(), 10);
        assert_eq!(d.histogram.iter().map(|b| b.customers).sum::<i64>(), 20);
        assert_eq!((d.histogram[0].from, d.histogram[9].to), (1.0, 20.0));
        // Width 1.9: [1, 2.9) holds 1 and 2; the last, [18.1, 20], holds 19 and 20 (the maximum included).
        assert_eq!(d.histogram[0].customers, 2);
        assert_eq!(d.histogram[9].customers, 2);

        let three = ScoreDistribution::of("m", vec![0.2, 0.9, 0.5], Vec::new());
        assert_eq!(three.quantiles[0].value, 0.2, "⌈3·10/100⌉ = 1st lowest");
        assert_eq!(three.quantiles[8].value, 0.9, "⌈3·90/100⌉ = 3rd lowest");
        let same = ScoreDistribution::of("m", vec![3.0; 4], Vec::new());
        assert_eq!(same.histogram, vec![Bucket { from: 3.0, to: 3.0, customers: 4 }]);
        let none = ScoreDistribution::of("m", Vec::new(), Vec::new());
        assert_eq!((none.customers, none.sum, none.mean, none.quantiles.len(), none.histogram.len()), (0, 0.0, None, 0, 0));
    }
}
