//! The tags' port: rows of (customer, tag, source) with a reason.

use chrono::{DateTime, Utc};
use kith_domain::model::Tag;

use crate::Result;

/// Tags as the tag writer and the plugins' checks read them.
pub trait TagsRead {
    /// Whether `source` set `tag` on the shop's customer (false when the customer is not the
    /// shop's).
    fn held_by(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<bool>;
    /// How many tags `source` set on the shop's customer (0 when the customer is not the shop's).
    fn count_by(&self, shop_id: i64, customer_id: i64, source: &str) -> Result<i64>;
    /// The row (customer, tag, source) of the shop; not found when the shop has no such row.
    fn get(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<Tag>;
}

/// Writes of tag rows; the effects around them (events, the customer's `updated_at`) are
/// the core's (`kith_core::tags`).
pub trait TagsWrite {
    /// Insert the row (customer, tag, source) unless it exists; whether it was inserted.
    fn insert(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>, at: DateTime<Utc>) -> Result<bool>;
    /// Set the reason of an existing row of the shop; whether it differed (and so changed);
    /// false (nothing written) when the shop has no such row.
    fn reword(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>) -> Result<bool>;
    /// Delete the shop's customer's rows of `tag` set by `sources`; the sources of the rows
    /// deleted (none when the customer is not the shop's).
    fn delete(&self, shop_id: i64, customer_id: i64, tag: &str, sources: TagSources<'_>) -> Result<Vec<String>>;
}

/// Which sources' rows of a tag [`TagsWrite::delete`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSources<'a> {
    /// The row of this one source (`manual`, `journey:<id>`, a plugin's id).
    One(&'a str),
    /// Rows set by hand (`manual`) or by any journey (`journey:<id>`).
    ManualOrJourney,
}

/// Writes of customers' own columns that several features share.
pub trait CustomersWrite {
    /// Move the shop's customer's `updated_at` to `at`, never back (nothing when the customer
    /// is not the shop's).
    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
}
