//! The ports of ingest and identity resolution: receipts, identifiers, customer rows,
//! orders and their stats, behaviours.
//!
//! Ingest is the kernel's hottest path: each method is one statement of a SQL
//! backend (the order's items excepted), so the core asks for nothing an event does
//! not need.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_domain::ingest::{BehaviourInput, ValidOrder};
use kith_domain::model::Stats;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Limits on how many identifiers of one kind a customer may hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCaps {
    /// Cap for kinds not listed in `per_kind`.
    pub default: u32,
    /// Caps by kind, e.g. `phone = 3`, `external:erp = 1`.
    #[serde(default)]
    pub per_kind: BTreeMap<String, u32>,
}

impl Default for IdentityCaps {
    fn default() -> Self {
        IdentityCaps { default: 3, per_kind: BTreeMap::new() }
    }
}

impl IdentityCaps {
    pub fn cap(&self, kind: &str) -> u32 {
        self.per_kind.get(kind).copied().unwrap_or(self.default)
    }
}

/// Identifiers as identity resolution finds them.
pub trait Identities {
    /// The customer of the shop holding the identifier `kind` / `value` (normalised).
    fn owner(&self, shop_id: i64, kind: &str, value: &str) -> Result<Option<i64>>;
    /// How many identifiers of each kind the shop's customer `customer_id` holds (none
    /// when it is not the shop's).
    fn counts(&self, shop_id: i64, customer_id: i64) -> Result<BTreeMap<String, u32>>;
    /// The identifiers of the shop's customer `customer_id`, by kind then value (none when
    /// it is not the shop's).
    fn of_customer(&self, shop_id: i64, customer_id: i64) -> Result<Vec<IdentityRow>>;
}

/// What ingest reads besides identifiers. Customers and orders named by id are the
/// shop's, which the caller found in it already: a method answers only for a row of the
/// shop it is given (one that reads a single row fails when the shop has no such row).
pub trait IngestRead {
    /// The shop's region, the default country of its phone numbers; not found
    /// without such a shop.
    fn region(&self, shop_id: i64) -> Result<String>;
    /// Whether the shop received an event with this id: `Some` with the customer it
    /// resolved to (`None` inside when it had none).
    fn receipt(&self, shop_id: i64, event_id: &str) -> Result<Option<Option<i64>>>;
    /// When the shop's customer `customer_id` was first seen.
    fn created_at(&self, shop_id: i64, customer_id: i64) -> Result<DateTime<Utc>>;
    /// The profile of the shop's customer `customer_id` as stored.
    fn profile(&self, shop_id: i64, customer_id: i64) -> Result<ProfileRow>;
    /// The purchase stats of the shop's customer `customer_id` as stored.
    fn stats(&self, shop_id: i64, customer_id: i64) -> Result<Stats>;
    /// How many of the shop's orders the customer `customer_id` has, refunded or not.
    fn order_count(&self, shop_id: i64, customer_id: i64) -> Result<i64>;
    /// The shop's order with the shop's own id `external_id`, with what was paid and refunded.
    fn order(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderRow>>;
}

/// What ingest writes. A method naming a customer or an order by id writes only that row
/// of the shop it is given: nothing when the shop has no such row.
pub trait IngestWrite {
    /// Record that the shop received the event `event_id`, resolved to `customer_id`.
    fn receive(&self, shop_id: i64, event_id: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// A new customer without identifiers, profile or orders; its id.
    fn insert_customer(&self, shop_id: i64, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> Result<i64>;
    /// Move the first sighting of the shop's customer `customer_id` back to `at` when it
    /// is earlier.
    fn seen_at(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Mark the shop's customer `customer_id` changed at `at`.
    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Store the profile of the shop's customer `customer_id`.
    fn set_profile(&self, shop_id: i64, customer_id: i64, profile: &ProfileRow) -> Result<()>;
    /// Give a customer an identifier no customer of the shop holds.
    fn attach(&self, shop_id: i64, kind: &str, value: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Insert a paid order and its items (the shop's order id is not taken); its id.
    fn insert_order(&self, shop_id: i64, customer_id: i64, order: &ValidOrder, at: DateTime<Utc>) -> Result<i64>;
    /// Count a paid order in the stats of the shop's customer `customer_id`, and mark the
    /// customer changed at `at`.
    fn add_order_to_stats(&self, shop_id: i64, customer_id: i64, amount: i64, paid_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()>;
    /// Add a refund to the refunded amount of the shop's order `order_id`; `fully`: nothing
    /// of it remains paid.
    fn refund_order(&self, shop_id: i64, order_id: i64, amount: i64, fully: bool) -> Result<()>;
    /// Record one refund of the shop's order `order_id` (nothing when it is not the shop's).
    fn insert_refund(&self, shop_id: i64, order_id: i64, amount: i64, reason: Option<&str>, refunded_at: DateTime<Utc>) -> Result<()>;
    /// Take a refund off the stats of the shop's customer `customer_id` (`fully`: the order
    /// no longer counts), and mark the customer changed at `at`.
    fn subtract_refund(&self, shop_id: i64, customer_id: i64, amount: i64, fully: bool, at: DateTime<Utc>) -> Result<()>;
    /// Recompute the stats of the shop's customer `customer_id` from their orders and
    /// refunds in the shop.
    fn recompute_stats(&self, shop_id: i64, customer_id: i64) -> Result<()>;
    /// Record a behaviour of a customer.
    fn insert_behaviour(&self, shop_id: i64, customer_id: i64, behaviour: &BehaviourInput, occurred_at: DateTime<Utc>) -> Result<()>;
}

/// A write transaction's savepoints: one event of a batch applies whole or not at all
/// inside the batch's transaction.
pub trait Savepoints {
    /// A count that every write of the transaction so far has moved: equal before and
    /// after a step when the step wrote nothing.
    fn written(&self) -> u64;
    /// Open a savepoint.
    fn savepoint(&self) -> Result<()>;
    /// Keep what was written since the savepoint, and close it.
    fn release(&self) -> Result<()>;
    /// Undo what was written since the savepoint, and close it.
    fn roll_back(&self) -> Result<()>;
    /// Whether the transaction is still open: a backend may have rolled it back whole on
    /// a failure of the machine, leaving no savepoint to return to.
    fn active(&self) -> bool;
}

/// An identifier as stored: kind, normalised value, and when it was attached. In a
/// merge record it is the array `[kind, value, attached at in Unix milliseconds]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(String, String, i64)", into = "(String, String, i64)")]
pub struct IdentityRow {
    pub kind: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
}

impl From<(String, String, i64)> for IdentityRow {
    fn from((kind, value, ms): (String, String, i64)) -> Self {
        IdentityRow { kind, value, created_at: from_millis(ms) }
    }
}

impl From<IdentityRow> for (String, String, i64) {
    fn from(row: IdentityRow) -> Self {
        (row.kind, row.value, row.created_at.timestamp_millis())
    }
}

/// The profile columns of a customer, as stored: `attributes` is a JSON object's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    pub name: Option<String>,
    pub gender: Option<String>,
    pub birthday: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub attributes: String,
}

/// An order as a refund finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: i64,
    pub customer_id: i64,
    pub amount: i64,
    pub refunded: i64,
}

/// A paid order, as the coupon it names is redeemed by.
#[derive(Debug, Clone, Copy)]
pub struct PaidOrder<'a> {
    pub id: i64,
    pub external_id: &'a str,
    pub customer_id: i64,
    pub amount: i64,
    pub paid_at: DateTime<Utc>,
}

/// An instant from Unix milliseconds, as merge records keep them (the epoch for one
/// out of range).
pub(super) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
