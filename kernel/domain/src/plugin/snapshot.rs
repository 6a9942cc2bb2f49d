//! What a plugin reads: customers, orders, histories, buyer summaries, the events of a batch and the shop around it.

use serde::{Deserialize, Serialize};

use crate::model::Customer;

/// A customer as a plugin sees them.
pub type Snapshot = Customer;

/// An order as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub external_id: String,
    pub customer_id: i64,
    pub amount: i64,
    pub refunded_amount: i64,
    pub status: String,
    pub coupon_code: Option<String>,
    pub paid_at_ms: i64,
    pub items: Vec<OrderItemSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItemSnapshot {
    pub sku: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub quantity: u32,
    pub unit_price: i64,
    pub discount: i64,
}

/// A behaviour as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviourSnapshot {
    /// `view`, `favorite`, `cart` or `purchase`.
    pub kind: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub occurred_at_ms: i64,
}

/// What a customer did since a time, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub customer_id: i64,
    pub orders: Vec<OrderSnapshot>,
    pub behaviours: Vec<BehaviourSnapshot>,
    /// The oldest entries past the caps were left out.
    pub truncated: bool,
}

/// Customers one `history` call may ask for.
pub const MAX_HISTORY_IDS: usize = 1000;
/// Orders and behaviours one history holds at most (the newest).
pub const MAX_HISTORY_ORDERS: usize = 500;
pub const MAX_HISTORY_BEHAVIOURS: usize = 1000;

/// One buyer's purchases as the repeat-purchase models (BG/NBD, Gamma-Gamma)
/// read them (`summaries.buyers`, since `kith:plugin@0.2.0`). Orders are those
/// customer stats count (paid, not fully refunded, partial refunds deducted);
/// days are calendar days in the shop's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerSummary {
    pub customer_id: i64,
    pub first_order_at_ms: i64,
    pub last_order_at_ms: i64,
    /// Distinct days with an order; the repeat purchases are one fewer.
    pub purchase_days: u32,
    pub order_count: u32,
    /// Amount paid less refunds, over all the buyer's orders.
    pub total_spent: i64,
    /// Amount paid less refunds, over the orders of the days after the first purchase day.
    pub repeat_spent: i64,
    /// Days from the first purchase day to the last.
    pub span_days: u32,
    /// Days from the first purchase day to today.
    pub age_days: u32,
}

/// Buyers one `summaries.buyers` page holds at most.
pub const MAX_SUMMARIES_PAGE: usize = 1000;

/// One unit of work for a tag rule or a loyalty scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub customer: Snapshot,
    pub event: Option<EventSnapshot>,
    pub order: Option<OrderSnapshot>,
}

/// An event of the log as a plugin is handed it: the payload as the log
/// holds it, JSON text the kernel does not parse on the way (plugins take
/// it as text), and the order it names, read from it by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSnapshot {
    pub seq: i64,
    /// e.g. `order.paid`.
    pub kind: String,
    pub customer_id: Option<i64>,
    /// A JSON object, as text.
    pub payload: String,
    /// The payload's `order_id`, when it is a string.
    pub order_id: Option<String>,
    pub created_at_ms: i64,
}

/// A measure over the shop's buyers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub average: f64,
    /// 20th, 40th, 60th and 80th percentiles; empty without buyers.
    pub quintiles: Vec<f64>,
}

/// The shop around a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopContext {
    pub shop_id: i64,
    pub now_ms: i64,
    /// The window in days the distributions cover; `None`: all time.
    pub window_days: Option<u32>,
    pub time_zone: String,
    pub currency: String,
    pub customer_count: u64,
    pub buyer_count: u64,
    pub recency_days: Distribution,
    pub frequency: Distribution,
    pub monetary: Distribution,
    pub average_order_value: f64,
}
