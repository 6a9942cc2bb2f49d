//! Segments' ports on PostgreSQL: a definition is evaluated by the backend's compiler
//! (`crate::segments`: one SQL expression over `customers c`); tracked membership is
//! `segment_members`, changed customers are `segment_dirty` (marked by the core's
//! writers through `SegmentMarks::customer_changed`), sweeps are `segments.swept_at` (a
//! negative time marks moved ranks) and daily counts `segment_counts`. The child tables
//! (`segment_members`, `segment_counts`) take their `shop_id` from the segment.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use kith_core::ports::{Dependence, DueSweep, LiveSegment, SegmentsRead, SegmentsWrite};
use kith_domain::model::Customer;
use kith_domain::segments::{Node, Segment, SegmentVersion, Snapshot};
use serde_json::Value;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis};
use crate::segments::{self, Compiler, Reach};

impl SegmentsRead for Pg<'_> {
    fn members(&self, shop_id: i64, node: &Node, segment: Option<i64>, only: Option<&[i64]>, now: DateTime<Utc>) -> Result<BTreeSet<i64>> {
        let reach = if only.is_some() { Reach::Customers } else { Reach::Shop };
        let compiled = Compiler::new(self, shop_id, now, reach)?.compile(node, segment)?;
        segments::matching(self, shop_id, &compiled, only)
    }

    fn count(&self, shop_id: i64, node: &Node, now: DateTime<Utc>) -> Result<i64> {
        let compiled = Compiler::new(self, shop_id, now, Reach::Shop)?.compile(node, None)?;
        segments::count(self, shop_id, &compiled)
    }

    fn dependence(&self, shop_id: i64, node: &Node, segment: Option<i64>) -> Result<Dependence> {
        // Compiled per customer for what it depends on alone, which reads nothing of the shop.
        let compiled = Compiler::new(self, shop_id, DateTime::<Utc>::UNIX_EPOCH, Reach::Customers)?.compile(node, segment)?;
        Ok(Dependence { timed: compiled.timed, ranked: compiled.ranked })
    }

    fn live(&self, shop_id: i64) -> Result<Vec<LiveSegment>> {
        segments::live_segments(self, shop_id)
    }

    fn tracked(&self, shop_id: i64, segment_id: i64, only: Option<&[i64]>) -> Result<BTreeSet<i64>> {
        let rows = match only {
            Some(ids) => self.query(
                "SELECT customer_id FROM segment_members WHERE shop_id = $3 AND segment_id = $1 AND customer_id = ANY ($2)",
                &[&segment_id, &ids, &shop_id],
            )?,
            None => {
                self.query("SELECT customer_id FROM segment_members WHERE shop_id = $2 AND segment_id = $1", &[&segment_id, &shop_id])?
            }
        };
        rows.iter().map(|r| get::<i64>(r, 0)).collect()
    }

    fn changed(&self, limit: usize) -> Result<Vec<(i64, i64)>> {
        self.query("SELECT shop_id, customer_id FROM segment_dirty LIMIT $1", &[&(limit as i64)])?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
    }

    fn due(&self, swept_before: DateTime<Utc>, ranked_before: DateTime<Utc>, limit: usize) -> Result<Vec<DueSweep>> {
        // SQLite orders NULLs first.
        self.query(
            "SELECT id, shop_id, swept_at FROM segments WHERE deleted_at IS NULL
               AND (swept_at IS NULL OR (swept_at >= 0 AND swept_at <= $1) OR (swept_at < 0 AND -swept_at <= $3))
             ORDER BY swept_at ASC NULLS FIRST, id LIMIT $2",
            &[&millis(swept_before), &(limit as i64), &millis(ranked_before)],
        )?
        .iter()
        .map(|r| {
            let state: Option<i64> = get(r, 2)?;
            Ok(DueSweep { segment_id: get(r, 0)?, shop_id: get(r, 1)?, ranks_moved: state.is_some_and(|at| at < 0), state })
        })
        .collect()
    }

    fn current(&self, shop_id: i64, segment_id: i64) -> Result<Option<(i64, Value)>> {
        segments::current_definition(self, shop_id, segment_id)
    }

    fn version(&self, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<Option<(i64, Value)>> {
        segments::version_row(self, shop_id, segment_id, version)
    }

    fn get(&self, shop_id: i64, segment_id: i64, at: Option<DateTime<Utc>>) -> Result<Option<Segment>> {
        segments::find_segment(self, shop_id, segment_id, at)
    }

    fn list(&self, shop_id: i64) -> Result<Vec<Segment>> {
        segments::list_segments(self, shop_id)
    }

    fn versions(&self, shop_id: i64, segment_id: i64) -> Result<Vec<SegmentVersion>> {
        segments::segment_versions(self, shop_id, segment_id)
    }

    fn page(
        &self,
        shop_id: i64,
        node: &Node,
        segment: Option<i64>,
        after: i64,
        limit: usize,
        with_count: bool,
        now: DateTime<Utc>,
    ) -> Result<(Option<i64>, Vec<Customer>)> {
        segments::audience(self, shop_id, node, segment, after, limit, with_count, now)
    }

    fn snapshot(&self, shop_id: i64, segment_id: i64, snapshot_id: i64) -> Result<Option<Snapshot>> {
        segments::snapshot_row(self, shop_id, segment_id, snapshot_id)
    }

    fn snapshots(&self, shop_id: i64, segment_id: i64) -> Result<Vec<Snapshot>> {
        segments::list_snapshots(self, shop_id, segment_id)
    }

    fn snapshot_members(&self, shop_id: i64, snapshot_id: i64, after: i64, limit: usize) -> Result<Vec<Customer>> {
        segments::snapshot_members(self, shop_id, snapshot_id, after, limit)
    }

    fn counts(&self, shop_id: i64, segment_id: i64, to: NaiveDate) -> Result<Vec<(NaiveDate, i64)>> {
        segments::segment_counts(self, shop_id, segment_id, to)
    }
}

impl SegmentsWrite for Pg<'_> {
    fn enter(&self, shop_id: i64, segment_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO segment_members (shop_id, segment_id, customer_id, entered_at)
             SELECT s.shop_id, s.id, $2::BIGINT, $3::BIGINT FROM segments s WHERE s.shop_id = $4 AND s.id = $1",
            &[&segment_id, &customer_id, &millis(at), &shop_id],
        )
        .map(drop)
    }

    fn exit(&self, shop_id: i64, segment_id: i64, customer_id: i64) -> Result<()> {
        self.execute(
            "DELETE FROM segment_members WHERE shop_id = $3 AND segment_id = $1 AND customer_id = $2",
            &[&segment_id, &customer_id, &shop_id],
        )
        .map(drop)
    }

    fn record_count(&self, shop_id: i64, segment_id: i64, day: NaiveDate, change: i64) -> Result<()> {
        self.execute(
            "INSERT INTO segment_counts (shop_id, segment_id, day, members)
             SELECT s.shop_id, s.id, $2::TEXT,
               (SELECT COUNT(*) FROM segment_members m WHERE m.shop_id = $4 AND m.shop_id = s.shop_id AND m.segment_id = s.id)
             FROM segments s WHERE s.shop_id = $4 AND s.id = $1
             ON CONFLICT (shop_id, segment_id, day) DO UPDATE SET members = segment_counts.members + $3::BIGINT",
            &[&segment_id, &day.to_string(), &change, &shop_id],
        )
        .map(drop)
    }

    fn clear_changed(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        self.execute("DELETE FROM segment_dirty WHERE shop_id = $1 AND customer_id = $2", &[&shop_id, &customer_id]).map(drop)
    }

    fn swept(&self, shop_id: i64, segment_id: i64, state: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE segments SET swept_at = CASE WHEN swept_at IS NOT DISTINCT FROM $3::BIGINT THEN $2::BIGINT ELSE -$2::BIGINT - 1 END
             WHERE shop_id = $4 AND id = $1",
            &[&segment_id, &millis(at), &state, &shop_id],
        )
        .map(drop)
    }

    fn insert(
        &self,
        shop_id: i64,
        name: &str,
        description: Option<&str>,
        timed: bool,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<i64> {
        segments::insert_segment(self, shop_id, name, description, timed, definition, at, created_by)
    }

    fn update(
        &self,
        shop_id: i64,
        segment_id: i64,
        name: &str,
        description: Option<&str>,
        version: i64,
        timed: bool,
        at: DateTime<Utc>,
    ) -> Result<()> {
        segments::update_segment(self, shop_id, segment_id, name, description, version, timed, at)
    }

    fn add_version(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<()> {
        segments::add_version(self, shop_id, segment_id, version, definition, at, created_by)
    }

    fn set_timed(&self, shop_id: i64, segment_id: i64, timed: bool) -> Result<()> {
        segments::set_timed(self, shop_id, segment_id, timed)
    }

    fn delete(&self, shop_id: i64, segment_id: i64, at: DateTime<Utc>) -> Result<()> {
        segments::delete_segment(self, shop_id, segment_id, at)
    }

    fn take_snapshot(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        node: &Node,
        taken_at: DateTime<Utc>,
        taken_by: &str,
    ) -> Result<(i64, i64)> {
        segments::take_snapshot(self, shop_id, segment_id, version, node, taken_at, taken_by)
    }
}
