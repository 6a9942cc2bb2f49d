//! The points ledger's port.

use chrono::{DateTime, Utc};
use kith_domain::loyalty::{ExpiringPoints, LedgerEntry, LedgerKind, TierChange};

use crate::Result;

/// The points ledger as stored: entries, and on each positive entry (a batch) what
/// remains of it. A method naming a customer, an order or an entry by id reads only the
/// shop's entries: a customer or an order of another shop has none, and an entry of
/// another shop is not found.
pub trait LedgerRead {
    /// The sum of the entries of the shop's customer `customer_id` (0 without any).
    fn balance(&self, shop_id: i64, customer_id: i64) -> Result<i64>;
    /// The entry of the shop posted under `source` / `source_key`, if any.
    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Sourced>>;
    /// The shop's customer's batches with points remaining, oldest first (by time, then id).
    fn open_batches(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>>;
    /// Every positive entry (batch) of the shop's customer with what remains of it, oldest first.
    fn batches(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>>;
    /// Every entry of the shop's customer, oldest first (by time, then id).
    fn entries(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Movement>>;
    /// Points earned on the shop's order `order_id` and points clawed back from it (a
    /// positive number).
    fn order_points(&self, shop_id: i64, order_id: i64) -> Result<OrderPoints>;
    /// The shop's entry `entry_id` as the API shows it; an error when the shop has no such
    /// entry.
    fn entry(&self, shop_id: i64, entry_id: i64) -> Result<LedgerEntry>;
    /// Batches of any shop with points remaining past their expiry at `now`, soonest
    /// expiry first, at most `limit`.
    fn expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Expired>>;
    /// Customers of a shop with at least one entry, by id.
    fn customers_with_entries(&self, shop_id: i64) -> Result<Vec<i64>>;
    /// A page of the shop's customer's entries as the API shows them, newest first: up to `limit`
    /// with an id below `before` (any when `None`).
    fn page(&self, shop_id: i64, customer_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>>;
    /// What remains of the shop's customer's batches that expire, summed per expiry, soonest first,
    /// at most 50 expiries.
    fn expiring(&self, shop_id: i64, customer_id: i64) -> Result<Vec<ExpiringPoints>>;
    /// The tier of the shop's customer `customer_id`, if they have one; the customer exists
    /// in the shop (the caller found it there).
    fn tier(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>>;
    /// The shop's customer's changes of tier, newest first, at most 100.
    fn tier_history(&self, shop_id: i64, customer_id: i64) -> Result<Vec<TierChange>>;
}

/// Writes to the points ledger.
pub trait LedgerWrite {
    /// Insert an entry; its id.
    fn insert(&self, entry: &NewEntry<'_>) -> Result<i64>;
    /// Take `points` from what remains of the shop's batch `batch_id` (nothing when it is
    /// another shop's).
    fn take(&self, shop_id: i64, batch_id: i64, points: i64) -> Result<()>;
    /// Set what remains of the shop's batch `batch_id` (nothing to write when it is that
    /// already, or when it is another shop's).
    fn set_remaining(&self, shop_id: i64, batch_id: i64, remaining: i64) -> Result<()>;
}

/// An entry found by its source key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub id: i64,
    pub customer_id: i64,
    pub points: i64,
}

/// A batch: a positive entry and what remains of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub remaining: i64,
}

/// An entry as a replay of the ledger reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub id: i64,
    pub kind: LedgerKind,
    pub points: i64,
    /// The batch an expiry entry expired.
    pub batch_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderPoints {
    pub earned: i64,
    pub clawed: i64,
}

/// A batch past its expiry with points remaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub batch_id: i64,
    pub shop_id: i64,
    pub customer_id: i64,
    pub remaining: i64,
}

/// An entry to insert, as the ledger's rules made it.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub kind: LedgerKind,
    /// Signed, never zero.
    pub points: i64,
    /// Who posted it: `api`, `kernel`, `reward`, a plugin's id, `journey:<id>`.
    pub source: &'a str,
    /// Unique per shop and source: a second entry with the same key is never posted.
    pub source_key: &'a str,
    pub reason: &'a str,
    pub order_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// What remains of a positive entry (a batch); 0 for a negative one.
    pub remaining: i64,
    /// The batch an expiry entry expired.
    pub batch_id: Option<i64>,
}
