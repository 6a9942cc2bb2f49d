//! The dashboards' figures and the buyers' purchase summaries: what the backend counts
//! and sums over a shop's tables; the core turns the counts into figures.

use chrono::{DateTime, Utc};
use kith_domain::metrics::{ChannelFigures, CouponFigures, LabelCount, PointsFigures};

use crate::Result;

/// A buyer's counted orders (paid, not refunded) as the customers' figures read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerSpan {
    /// Counted orders paid within the range.
    pub in_range: i64,
    /// The first counted order ever.
    pub first: DateTime<Utc>,
    /// The last counted order paid before the range's end.
    pub last: Option<DateTime<Utc>>,
}

/// The orders paid within a range (whatever became of them) and the refunds made in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalesTotals {
    /// The amounts paid.
    pub gmv: i64,
    pub orders: i64,
    /// The amounts of the orders that were their customer's first.
    pub new_customer_revenue: i64,
    /// The amounts refunded within the range.
    pub refunds: i64,
}

/// What the dashboards read; every range is `start..end`.
pub trait MetricsRead {
    /// The shop's active customers (not merged away) created before `end`, and how many
    /// of them were created from `start`.
    fn customer_totals(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(i64, i64)>;
    /// Every active customer with a counted order (paid, not refunded), with their orders' span.
    fn buyer_spans(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<BuyerSpan>>;
    fn sales(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<SalesTotals>;
    /// The labels of the model held by active customers: each label's lowest value, the
    /// label and how many hold it.
    fn labels(&self, shop_id: i64, model: &str) -> Result<Vec<(f64, String, i64)>>;
    /// Active customers by tier, the largest first (then by tier).
    fn tiers(&self, shop_id: i64) -> Result<Vec<LabelCount>>;
    /// Points issued, redeemed, expired and clawed back in the range; outstanding (not
    /// expired at `now`) and owed by customers whose balance is below zero.
    fn points(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Result<PointsFigures>;
    /// Coupons issued and redeemed in the range, and the redeemed ones' face value.
    fn coupons(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<CouponFigures>;
    /// Messages by channel: sent, delivered, failed and suppressed in the range; pending now.
    fn messages(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<ChannelFigures>>;
    /// The values of the model held by active customers.
    fn score_values(&self, shop_id: i64, model: &str) -> Result<Vec<f64>>;
    /// Counted orders (paid, not refunded) of active customers as (customer, paid at), by
    /// customer and payment time.
    fn paid_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>)>>;
}

/// What the buyers' summaries read: counted orders (paid, not fully refunded) as
/// (customer, paid at, amount net of partial refunds), by customer and payment time.
/// Orders follow merges, so every customer is active.
pub trait SummariesRead {
    /// The counted orders of the first `limit` buyers with an id above `after`.
    fn buyer_orders(&self, shop_id: i64, after: Option<i64>, limit: usize) -> Result<Vec<(i64, DateTime<Utc>, i64)>>;
    /// Every counted order of the shop, by customer, then payment time.
    fn counted_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>, i64)>>;
}
