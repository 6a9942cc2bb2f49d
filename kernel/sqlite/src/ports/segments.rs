//! Segments' ports on SQLite: a definition is evaluated by the store's compiler (one SQL
//! expression over `customers c`); tracked membership is `segment_members`, changed
//! customers are `segment_dirty` (marked by the core's writers through
//! `SegmentMarks::customer_changed`), sweeps are `segments.swept_at` (a
//! negative time marks moved ranks) and daily counts `segment_counts`.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use kith_core::ports::{Dependence, DueSweep, LiveSegment, SegmentsRead, SegmentsWrite};
use kith_domain::model::Customer;
use kith_domain::segments::{Node, Segment, SegmentVersion, Snapshot};
use rusqlite::params;
use serde_json::Value;

use super::{CoreResult, Sql, core, sql};
use crate::segments::{self, Compiler, Reach};
use crate::to_ms;

impl SegmentsRead for Sql<'_> {
    fn members(
        &self,
        shop_id: i64,
        node: &Node,
        segment: Option<i64>,
        only: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> CoreResult<BTreeSet<i64>> {
        core((|| {
            let reach = if only.is_some() { Reach::Customers } else { Reach::Shop };
            let compiled = Compiler::new(self.0, shop_id, now, reach)?.compile(node, segment)?;
            segments::matching(self.0, shop_id, &compiled, only)
        })())
    }

    fn count(&self, shop_id: i64, node: &Node, now: DateTime<Utc>) -> CoreResult<i64> {
        core((|| {
            let compiled = Compiler::new(self.0, shop_id, now, Reach::Shop)?.compile(node, None)?;
            segments::count(self.0, shop_id, &compiled)
        })())
    }

    fn dependence(&self, shop_id: i64, node: &Node, segment: Option<i64>) -> CoreResult<Dependence> {
        // Compiled per customer for what it depends on alone, which reads nothing of the shop.
        core((|| {
            let compiled = Compiler::new(self.0, shop_id, DateTime::<Utc>::UNIX_EPOCH, Reach::Customers)?.compile(node, segment)?;
            Ok(Dependence { timed: compiled.timed, ranked: compiled.ranked })
        })())
    }

    fn live(&self, shop_id: i64) -> CoreResult<Vec<LiveSegment>> {
        core(segments::live_segments(self.0, shop_id))
    }

    fn tracked(&self, shop_id: i64, segment_id: i64, only: Option<&[i64]>) -> CoreResult<BTreeSet<i64>> {
        // The members' shop is their segment's.
        sql(match only {
            Some(ids) => self
                .0
                .prepare_cached(
                    "SELECT m.customer_id FROM segment_members m JOIN segments s ON s.id = m.segment_id
                     WHERE m.segment_id = ?1 AND s.shop_id = ?3 AND m.customer_id IN (SELECT value FROM json_each(?2))",
                )
                .and_then(|mut s| s.query_map(params![segment_id, segments::json_list(ids), shop_id], |r| r.get(0))?.collect()),
            None => self
                .0
                .prepare_cached(
                    "SELECT m.customer_id FROM segment_members m JOIN segments s ON s.id = m.segment_id
                     WHERE m.segment_id = ?1 AND s.shop_id = ?2",
                )
                .and_then(|mut s| s.query_map([segment_id, shop_id], |r| r.get(0))?.collect()),
        })
    }

    fn changed(&self, limit: usize) -> CoreResult<Vec<(i64, i64)>> {
        sql(self
            .0
            .prepare_cached("SELECT shop_id, customer_id FROM segment_dirty LIMIT ?1")
            .and_then(|mut s| s.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn due(&self, swept_before: DateTime<Utc>, ranked_before: DateTime<Utc>, limit: usize) -> CoreResult<Vec<DueSweep>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT id, shop_id, swept_at FROM segments WHERE deleted_at IS NULL
                   AND (swept_at IS NULL OR (swept_at >= 0 AND swept_at <= ?1) OR (swept_at < 0 AND -swept_at <= ?3))
                 ORDER BY swept_at, id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![to_ms(swept_before), limit as i64, to_ms(ranked_before)], |r| {
                    let state: Option<i64> = r.get(2)?;
                    Ok(DueSweep { segment_id: r.get(0)?, shop_id: r.get(1)?, ranks_moved: state.is_some_and(|at| at < 0), state })
                })?
                .collect()
            }))
    }

    fn current(&self, shop_id: i64, segment_id: i64) -> CoreResult<Option<(i64, Value)>> {
        core(segments::current_definition(self.0, shop_id, segment_id))
    }

    fn version(&self, shop_id: i64, segment_id: i64, version: Option<i64>) -> CoreResult<Option<(i64, Value)>> {
        core(segments::version_row(self.0, shop_id, segment_id, version))
    }

    fn get(&self, shop_id: i64, segment_id: i64, at: Option<DateTime<Utc>>) -> CoreResult<Option<Segment>> {
        core(segments::find_segment(self.0, shop_id, segment_id, at))
    }

    fn list(&self, shop_id: i64) -> CoreResult<Vec<Segment>> {
        core(segments::list_segments(self.0, shop_id))
    }

    fn versions(&self, shop_id: i64, segment_id: i64) -> CoreResult<Vec<SegmentVersion>> {
        core(segments::segment_versions(self.0, shop_id, segment_id))
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
    ) -> CoreResult<(Option<i64>, Vec<Customer>)> {
        core(segments::audience(self.0, shop_id, node, segment, after, limit, with_count, now))
    }

    fn snapshot(&self, shop_id: i64, segment_id: i64, snapshot_id: i64) -> CoreResult<Option<Snapshot>> {
        core(segments::snapshot_row(self.0, shop_id, segment_id, snapshot_id))
    }

    fn snapshots(&self, shop_id: i64, segment_id: i64) -> CoreResult<Vec<Snapshot>> {
        core(segments::list_snapshots(self.0, shop_id, segment_id))
    }

    fn snapshot_members(&self, shop_id: i64, snapshot_id: i64, after: i64, limit: usize) -> CoreResult<Vec<Customer>> {
        core(segments::snapshot_members(self.0, shop_id, snapshot_id, after, limit))
    }

    fn counts(&self, shop_id: i64, segment_id: i64, to: NaiveDate) -> CoreResult<Vec<(NaiveDate, i64)>> {
        core(segments::segment_counts(self.0, shop_id, segment_id, to))
    }
}

impl SegmentsWrite for Sql<'_> {
    // The members' and counts' shop is their segment's: each statement reaches it.

    fn enter(&self, shop_id: i64, segment_id: i64, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO segment_members (segment_id, customer_id, entered_at)
                 SELECT s.id, ?2, ?3 FROM segments s WHERE s.id = ?1 AND s.shop_id = ?4",
            )
            .and_then(|mut s| s.execute(params![segment_id, customer_id, to_ms(at), shop_id]))
            .map(|_| ()))
    }

    fn exit(&self, shop_id: i64, segment_id: i64, customer_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "DELETE FROM segment_members WHERE segment_id = ?1 AND customer_id = ?2
                   AND EXISTS (SELECT 1 FROM segments s WHERE s.id = ?1 AND s.shop_id = ?3)",
            )
            .and_then(|mut s| s.execute(params![segment_id, customer_id, shop_id]))
            .map(|_| ()))
    }

    fn record_count(&self, shop_id: i64, segment_id: i64, day: NaiveDate, change: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO segment_counts (segment_id, day, members)
                 SELECT s.id, ?2, (SELECT COUNT(*) FROM segment_members m WHERE m.segment_id = s.id) FROM segments s
                 WHERE s.id = ?1 AND s.shop_id = ?4
                 ON CONFLICT (segment_id, day) DO UPDATE SET members = members + ?3",
            )
            .and_then(|mut s| s.execute(params![segment_id, day.to_string(), change, shop_id]))
            .map(|_| ()))
    }

    fn clear_changed(&self, shop_id: i64, customer_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("DELETE FROM segment_dirty WHERE shop_id = ?1 AND customer_id = ?2")
            .and_then(|mut s| s.execute([shop_id, customer_id]))
            .map(|_| ()))
    }

    fn swept(&self, shop_id: i64, segment_id: i64, state: Option<i64>, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE segments SET swept_at = CASE WHEN swept_at IS ?3 THEN ?2 ELSE -?2 - 1 END WHERE id = ?1 AND shop_id = ?4",
            )
            .and_then(|mut s| s.execute(params![segment_id, to_ms(at), state, shop_id]))
            .map(|_| ()))
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
    ) -> CoreResult<i64> {
        core(segments::insert_segment(self.0, shop_id, name, description, timed, definition, at, created_by))
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
    ) -> CoreResult<()> {
        core(segments::update_segment(self.0, shop_id, segment_id, name, description, version, timed, at))
    }

    fn add_version(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> CoreResult<()> {
        core(segments::add_version(self.0, shop_id, segment_id, version, definition, at, created_by))
    }

    fn set_timed(&self, shop_id: i64, segment_id: i64, timed: bool) -> CoreResult<()> {
        core(segments::set_timed(self.0, shop_id, segment_id, timed))
    }

    fn delete(&self, shop_id: i64, segment_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        core(segments::delete_segment(self.0, shop_id, segment_id, at))
    }

    fn take_snapshot(
        &self,
        shop_id: i64,
        segment_id: i64,
        version: i64,
        node: &Node,
        taken_at: DateTime<Utc>,
        taken_by: &str,
    ) -> CoreResult<(i64, i64)> {
        core(segments::take_snapshot(self.0, shop_id, segment_id, version, node, taken_at, taken_by))
    }
}
