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
