//! The segments' port: a definition evaluated by the backend (its own query language:
//! SQL on SQLite), segments' current definitions, tracked membership, the customers
//! whose data changed since their last re-evaluation, sweeps and daily counts.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::segments::Node;

use crate::Result;

/// A live segment of a shop with its current version's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSegment {
    pub id: i64,
    pub name: String,
    pub version: i64,
    pub node: Node,
}

/// What a definition's membership depends on besides each customer's own data, its
/// referenced segments included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependence {
    /// Membership can change with time alone (windows, days since, relative dates).
    pub timed: bool,
    /// Score models it ranks customers by (`top_percent`, `bottom_percent`): membership
    /// moves with any customer's score of these.
    pub ranked: BTreeSet<String>,
}

/// A segment due for a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueSweep {
    pub segment_id: i64,
    pub shop_id: i64,
    /// Other customers' scores moved one of its ranks since its last sweep.
    pub ranks_moved: bool,
    /// The segment's sweep state as read, handed back to [`SegmentsWrite::swept`]: a mark
    /// made since stays.
    pub state: Option<i64>,
}

/// What segments read.
pub trait SegmentsRead {
    /// Ids of the shop's active customers that match `node` at `now`; among `only` when
    /// given (the backend then reads nothing of the other customers). `segment` is the
    /// saved segment the definition is of, so that a reference back to it is refused.
    /// Invalid (field `definition`) when a referenced segment is not in the shop, refers
    /// back to itself or nests too deep.
    fn members(&self, shop_id: i64, node: &Node, segment: Option<i64>, only: Option<&[i64]>, now: DateTime<Utc>) -> Result<BTreeSet<i64>>;
    /// How many of the shop's active customers match `node` at `now`.
    fn count(&self, shop_id: i64, node: &Node, now: DateTime<Utc>) -> Result<i64>;
    /// What `node`'s membership depends on, its references followed.
    fn dependence(&self, shop_id: i64, node: &Node, segment: Option<i64>) -> Result<Dependence>;
    /// The shop's live segments by id; one whose stored definition no longer parses is left out.
    fn live(&self, shop_id: i64) -> Result<Vec<LiveSegment>>;
    /// The segment's tracked members; among `only` when given.
    fn tracked(&self, segment_id: i64, only: Option<&[i64]>) -> Result<BTreeSet<i64>>;
    /// Up to `limit` customers (shop, customer) whose data changed since segments last
    /// re-evaluated them.
    fn changed(&self, limit: usize) -> Result<Vec<(i64, i64)>>;
    /// Up to `limit` live segments, least recently swept first, not swept since
    /// `swept_before`, or whose ranks moved and not swept since `ranked_before`.
    fn due(&self, swept_before: DateTime<Utc>, ranked_before: DateTime<Utc>, limit: usize) -> Result<Vec<DueSweep>>;
}

/// What segments write.
pub trait SegmentsWrite {
    /// The customer entered the segment's tracked membership at `at`.
    fn enter(&self, segment_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// The customer left the segment's tracked membership.
    fn exit(&self, segment_id: i64, customer_id: i64) -> Result<()>;
    /// Record the segment's size on `day`: the day's first record counts the tracked
    /// members, later ones add `change`.
    fn record_count(&self, segment_id: i64, day: NaiveDate, change: i64) -> Result<()>;
    /// The customer was re-evaluated: no longer changed.
    fn clear_changed(&self, shop_id: i64, customer_id: i64) -> Result<()>;
    /// The segment was swept at `at`; `state` is what [`DueSweep::state`] read: when it
    /// changed since (its ranks moved again), the segment stays marked.
    fn swept(&self, segment_id: i64, state: Option<i64>, at: DateTime<Utc>) -> Result<()>;
}
