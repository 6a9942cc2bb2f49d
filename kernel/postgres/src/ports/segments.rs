//! The segments ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use std::collections::BTreeSet;
use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::model::Customer;
use kith_domain::segments::{Node, Segment, SegmentVersion, Snapshot};
use serde_json::Value;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl SegmentsRead for Pg<'_> {
    fn members(&self, shop_id: i64, node: &Node, segment: Option<i64>, only: Option<&[i64]>, now: DateTime<Utc>) -> Result<BTreeSet<i64>> {
        Err(unported("SegmentsRead::members"))
    }

    fn count(&self, shop_id: i64, node: &Node, now: DateTime<Utc>) -> Result<i64> {
        Err(unported("SegmentsRead::count"))
    }

    fn dependence(&self, shop_id: i64, node: &Node, segment: Option<i64>) -> Result<Dependence> {
        Err(unported("SegmentsRead::dependence"))
    }

    fn live(&self, shop_id: i64) -> Result<Vec<LiveSegment>> {
        Err(unported("SegmentsRead::live"))
    }

    fn tracked(&self, segment_id: i64, only: Option<&[i64]>) -> Result<BTreeSet<i64>> {
        Err(unported("SegmentsRead::tracked"))
    }

    fn changed(&self, limit: usize) -> Result<Vec<(i64, i64)>> {
        Err(unported("SegmentsRead::changed"))
    }

    fn due(&self, swept_before: DateTime<Utc>, ranked_before: DateTime<Utc>, limit: usize) -> Result<Vec<DueSweep>> {
        Err(unported("SegmentsRead::due"))
    }

    fn current(&self, shop_id: i64, segment_id: i64) -> Result<Option<(i64, Value)>> {
        Err(unported("SegmentsRead::current"))
    }

    fn version(&self, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<Option<(i64, Value)>> {
        Err(unported("SegmentsRead::version"))
    }

    fn get(&self, shop_id: i64, segment_id: i64, at: Option<DateTime<Utc>>) -> Result<Option<Segment>> {
        Err(unported("SegmentsRead::get"))
    }

    fn list(&self, shop_id: i64) -> Result<Vec<Segment>> {
        Err(unported("SegmentsRead::list"))
    }

    fn versions(&self, segment_id: i64) -> Result<Vec<SegmentVersion>> {
        Err(unported("SegmentsRead::versions"))
    }

    fn page( &self, shop_id: i64, node: &Node, segment: Option<i64>, after: i64, limit: usize, with_count: bool, now: DateTime<Utc>, ) -> Result<(Option<i64>, Vec<Customer>)> {
        Err(unported("SegmentsRead::page"))
    }

    fn snapshot(&self, shop_id: i64, segment_id: i64, snapshot_id: i64) -> Result<Option<Snapshot>> {
        Err(unported("SegmentsRead::snapshot"))
    }

    fn snapshots(&self, shop_id: i64, segment_id: i64) -> Result<Vec<Snapshot>> {
        Err(unported("SegmentsRead::snapshots"))
    }

    fn snapshot_members(&self, snapshot_id: i64, after: i64, limit: usize) -> Result<Vec<Customer>> {
        Err(unported("SegmentsRead::snapshot_members"))
    }

    fn counts(&self, segment_id: i64, to: NaiveDate) -> Result<Vec<(NaiveDate, i64)>> {
        Err(unported("SegmentsRead::counts"))
    }
}

impl SegmentsWrite for Pg<'_> {
    fn enter(&self, segment_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("SegmentsWrite::enter"))
    }

    fn exit(&self, segment_id: i64, customer_id: i64) -> Result<()> {
        Err(unported("SegmentsWrite::exit"))
    }

    fn record_count(&self, segment_id: i64, day: NaiveDate, change: i64) -> Result<()> {
        Err(unported("SegmentsWrite::record_count"))
    }

    fn clear_changed(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        Err(unported("SegmentsWrite::clear_changed"))
    }

    fn swept(&self, segment_id: i64, state: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("SegmentsWrite::swept"))
    }

    fn insert( &self, shop_id: i64, name: &str, description: Option<&str>, timed: bool, definition: &Value, at: DateTime<Utc>, created_by: &str, ) -> Result<i64> {
        Err(unported("SegmentsWrite::insert"))
    }

    fn update( &self, shop_id: i64, segment_id: i64, name: &str, description: Option<&str>, version: i64, timed: bool, at: DateTime<Utc>, ) -> Result<()> {
        Err(unported("SegmentsWrite::update"))
    }

    fn add_version(&self, segment_id: i64, version: i64, definition: &Value, at: DateTime<Utc>, created_by: &str) -> Result<()> {
        Err(unported("SegmentsWrite::add_version"))
    }

    fn set_timed(&self, segment_id: i64, timed: bool) -> Result<()> {
        Err(unported("SegmentsWrite::set_timed"))
    }

    fn delete(&self, shop_id: i64, segment_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("SegmentsWrite::delete"))
    }

    fn take_snapshot( &self, shop_id: i64, segment_id: i64, version: i64, node: &Node, taken_at: DateTime<Utc>, taken_by: &str, ) -> Result<(i64, i64)> {
        Err(unported("SegmentsWrite::take_snapshot"))
    }
}
