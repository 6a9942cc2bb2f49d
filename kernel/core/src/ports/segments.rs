//! The segments' port: a definition evaluated by the backend (its own query language:
//! SQL on SQLite), segments' current definitions, tracked membership, the customers
//! whose data changed since their last re-evaluation, sweeps and daily counts.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::model::Customer;
use kith_domain::segments::{Node, Segment, SegmentVersion, Snapshot};
use serde_json::Value;

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
    /// The tracked members of the shop's segment; among `only` when given; none when the
    /// segment is another shop's.
    fn tracked(&self, shop_id: i64, segment_id: i64, only: Option<&[i64]>) -> Result<BTreeSet<i64>>;
    /// Up to `limit` customers of any shop (shop, customer) whose data changed since
    /// segments last re-evaluated them.
    fn changed(&self, limit: usize) -> Result<Vec<(i64, i64)>>;
    /// Up to `limit` live segments of any shop (each with its shop), least recently swept first, not swept since
    /// `swept_before`, or whose ranks moved and not swept since `ranked_before`.
    fn due(&self, swept_before: DateTime<Utc>, ranked_before: DateTime<Utc>, limit: usize) -> Result<Vec<DueSweep>>;
    /// The current version of a live segment of the shop and its definition as stored.
    fn current(&self, shop_id: i64, segment_id: i64) -> Result<Option<(i64, Value)>>;
    /// `version` of a live segment of the shop (its current one when `None`) and that
    /// version's definition as stored.
    fn version(&self, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<Option<(i64, Value)>>;
    /// A live segment of the shop with its current definition, or the one in force at `at`
    /// (none when it was created after `at`); with its count of tracked members.
    fn get(&self, shop_id: i64, segment_id: i64, at: Option<DateTime<Utc>>) -> Result<Option<Segment>>;
    /// The shop's live segments with their current definitions, by id.
    fn list(&self, shop_id: i64) -> Result<Vec<Segment>>;
    /// Every version of the shop's segment, oldest first; none when it is another shop's.
    fn versions(&self, shop_id: i64, segment_id: i64) -> Result<Vec<SegmentVersion>>;
    /// The shop's active customers matching `node` at `now`: the first `limit` by id after
    /// `after`, and how many match in all when `with_count`. `segment` is as for
    /// [`SegmentsRead::members`].
    #[allow(clippy::too_many_arguments, reason = "the definition and the page's bounds")]
    fn page(
        &self,
        shop_id: i64,
        node: &Node,
        segment: Option<i64>,
        after: i64,
        limit: usize,
        with_count: bool,
        now: DateTime<Utc>,
    ) -> Result<(Option<i64>, Vec<Customer>)>;
    /// The segment's snapshot `snapshot_id` in the shop.
    fn snapshot(&self, shop_id: i64, segment_id: i64, snapshot_id: i64) -> Result<Option<Snapshot>>;
    /// The segment's snapshots, newest first.
    fn snapshots(&self, shop_id: i64, segment_id: i64) -> Result<Vec<Snapshot>>;
    /// Up to `limit` members of the shop's snapshot with an id above `after`, by id, with
    /// their data as it is now (a member merged since shows the record that was merged
    /// away); none when the snapshot is another shop's.
    fn snapshot_members(&self, shop_id: i64, snapshot_id: i64, after: i64, limit: usize) -> Result<Vec<Customer>>;
    /// The shop's segment's recorded daily counts up to `to` (inclusive), by day; none when
    /// the segment is another shop's.
    fn counts(&self, shop_id: i64, segment_id: i64, to: NaiveDate) -> Result<Vec<(NaiveDate, i64)>>;
}

/// What segments write: each method changes only the shop's rows; given a segment of
/// another shop, it changes nothing.
pub trait SegmentsWrite {
    /// The customer entered the tracked membership of the shop's segment at `at`.
    fn enter(&self, shop_id: i64, segment_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// The customer left the tracked membership of the shop's segment.
    fn exit(&self, shop_id: i64, segment_id: i64, customer_id: i64) -> Result<()>;
    /// Record the size of the shop's segment on `day`: the day's first record counts the
    /// tracked members, later ones add `change`.
    fn record_count(&self, shop_id: i64, segment_id: i64, day: NaiveDate, change: i64) -> Result<()>;
    /// The customer was re-evaluated: no longer changed.
    fn clear_changed(&self, shop_id: i64, customer_id: i64) -> Result<()>;
    /// The shop's segment was swept at `at`; `state` is what [`DueSweep::state`] read: when
    /// it changed since (its ranks moved again), the segment stays marked.
    fn swept(&self, shop_id: i64, segment_id: i64, state: Option<i64>, at: DateTime<Utc>) -> Result<()>;
    /// A new segment at version 1 with its first definition, created at `at` by `created_by`
    /// (the core checked it; `timed` is what its membership depends on); its id.
    #[allow(clippy::too_many_arguments, reason = "a segment's row and its first version's")]
    fn insert(
        &self,
        shop_id: i64,
        name: &str,
        description: Option<&str>,
        timed: bool,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<i64>;
    /// Set a segment's name, description, current version and `timed`, updated at `at`.
    #[allow(clippy::too_many_arguments, reason = "a segment's row")]
    fn update(
        &self,
        shop_id: i64,
        segment_id: i64,
        name: &str,
        description: Option<&str>,
        version: i64,
        timed: bool,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Store `version` of the shop's segment's definition, created at `at` by `created_by`.
    fn add_version(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<()>;
    /// Whether the shop's segment's membership can change with time alone.
    fn set_timed(&self, shop_id: i64, segment_id: i64, timed: bool) -> Result<()>;
    /// Delete the segment at `at` (its versions and snapshots stay) and its tracked members.
    fn delete(&self, shop_id: i64, segment_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Freeze who matches `node` (version `version` of the segment) at `taken_at` as a new
    /// snapshot taken by `taken_by`: its id and size.
    fn take_snapshot(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        node: &Node,
        taken_at: DateTime<Utc>,
        taken_by: &str,
    ) -> Result<(i64, i64)>;
}
