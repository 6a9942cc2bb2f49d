//! Customers as the shop reads them: a profile with its records, pages of the list,
//! the timeline, and the checks of their stats.

use chrono::{DateTime, Utc};
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, Event, Stats};

use crate::Result;

/// Filters of the customer list; all present filters must hold.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Holds this tag, from any source.
    pub tag: Option<String>,
    /// Holds this (normalised) identifier.
    pub identity: Option<Identifier>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Holds a score of this model, with this label code when given (the
    /// label itself, or its part before the first `|`, e.g. `important-value`).
    pub score: Option<(String, Option<String>)>,
}

/// Customers with their identities, tags and scores.
pub trait CustomerViews {
    /// The shop's active (unmerged) customer with its records; `None` when there is none.
    fn get(&self, shop_id: i64, customer_id: i64) -> Result<Option<Customer>>;
    /// Whether the customer is an active (unmerged) customer of the shop.
    fn exists(&self, shop_id: i64, customer_id: i64) -> Result<bool>;
    /// The newest `limit` events of the customer and of those merged into them, newest first.
    fn timeline(&self, shop_id: i64, customer_id: i64, limit: usize) -> Result<Vec<Event>>;
    /// The customer holding the identifier in the shop (merged or not).
    fn owner(&self, shop_id: i64, identifier: &Identifier) -> Result<Option<i64>>;
    /// A page of the shop's active customers in id order after `after`, with their records,
    /// passing the filter's tag, update time and score (not its identity).
    fn page(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>>;
    /// Every customer of the shop (merged ones too) with its stored stats and those
    /// recomputed from its orders.
    fn stats_check(&self, shop_id: i64) -> Result<Vec<(i64, Stats, Stats)>>;
    /// How many active customers the shop has.
    fn count(&self, shop_id: i64) -> Result<i64>;
}
