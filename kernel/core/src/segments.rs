//! Segments' tracked membership: who is in a segment as events tell it.
//!
//! A segment's definition is evaluated by the backend (on SQLite, compiled to one SQL
//! expression); the core decides when and for whom. Two passes keep tracked membership
//! in line with the definitions:
//!
//! - [`refresh`] re-evaluates the customers whose data changed against every live segment
//!   of their shop, and appends `segment.entered` / `segment.exited` for each customer who
//!   entered or left (reason `change`);
//! - [`sweep`] re-evaluates whole the segments that can change with time alone (windows,
//!   days since, relative dates; reason `time`) or whose ranks moved with other customers'
//!   scores (reason `ranking`), and records every swept segment's daily count.
//!
//! A segment created or redefined is reconciled whole by [`reconcile`] (a new segment's
//! first membership is its baseline, without events; a new version's changes have reason
//! `redefined`). Daily counts are kept per day of the shop's zone.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::ports::{LiveSegment, Storage, StorageExt, WriteTx};
use crate::{Error, Result, isolation};

/// The least time between two sweeps of a segment that ranks by a model whose scores keep
/// changing (a plugin's run writing them batch after batch): re-evaluating a rank reads and
/// sorts every value of the model, about 0.1 s for 200,000 customers on SQLite.
pub const RANK_SWEEP_GAP: Duration = Duration::milliseconds(60_000);

/// Why tracked membership changed, as the events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The customer's data changed.
    Change,
    /// Time passed (the sweep).
    Time,
    /// The definition changed.
    Redefined,
    /// Other customers' scores moved the threshold of a rank (`top_percent`, `bottom_percent`).
    Ranking,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Change => "change",
            Cause::Time => "time",
            Cause::Redefined => "redefined",
            Cause::Ranking => "ranking",
        }
    }
}

/// What a pass did: how many customers (refresh) or segments (sweep) it took, and the
/// segments that could not be re-evaluated (a reference gone bad, a failed query), each
/// left as it was while the others went on.
#[derive(Debug, Default)]
pub struct Pass {
    pub processed: usize,
    pub failed: Vec<(i64, Error)>,
}

/// Bring the tracked membership of `segment` in line with its definition at `now` for
/// `only` (every customer of the shop when `None`), appending an event per entry and exit
/// when `cause` is given, and record the day's count. How many entered and left.
pub fn reconcile(
    tx: &dyn WriteTx,
    shop_id: i64,
    segment: &LiveSegment,
    only: Option<&[i64]>,
    cause: Option<Cause>,
    now: DateTime<Utc>,
) -> Result<(usize, usize)> {
    let matched = tx.segments().members(shop_id, &segment.node, Some(segment.id), only, now)?;
    let current = tx.segments().tracked(segment.id, only)?;
    let entered: Vec<i64> = matched.difference(&current).copied().collect();
    let exited: Vec<i64> = current.difference(&matched).copied().collect();
    let payload =
        |cause: Cause| json!({"segment_id": segment.id, "segment": segment.name, "version": segment.version, "reason": cause.as_str()});
    for id in &entered {
        tx.segments_writer().enter(segment.id, *id, now)?;
        if let Some(cause) = cause {
            tx.event_log().append(shop_id, "segment.entered", Some(*id), &payload(cause), now, None)?;
        }
    }
    for id in &exited {
        tx.segments_writer().exit(segment.id, *id)?;
        if let Some(cause) = cause {
            tx.event_log().append(shop_id, "segment.exited", Some(*id), &payload(cause), now, None)?;
        }
    }
    record_count(tx, shop_id, segment.id, now, entered.len() as i64 - exited.len() as i64)?;
    Ok((entered.len(), exited.len()))
}

/// Record the segment's tracked size as today's count, today in the shop's zone: the
/// day's first record counts the members, later ones add what changed since.
fn record_count(tx: &dyn WriteTx, shop_id: i64, segment_id: i64, now: DateTime<Utc>, change: i64) -> Result<()> {
    let zone: Tz = tx.settings().time_zone(shop_id)?.parse().unwrap_or(Tz::UTC);
    tx.segments_writer().record_count(segment_id, now.with_timezone(&zone).date_naive(), change)
}

/// Run one segment's re-evaluation in a savepoint: when it fails, what it wrote is undone
/// and its error handed back, so that the others go on. A failure of the savepoint itself,
/// of the machine or of the whole transaction fails the caller (see [`isolation::isolated`]).
fn isolated(tx: &dyn WriteTx, f: impl FnOnce() -> Result<()>) -> Result<Option<Error>> {
    Ok(isolation::isolated(tx, f)?.err())
}

/// Re-evaluate up to `limit` customers whose data changed against their shops' live
/// segments, appending entry and exit events (reason `change`).
pub fn refresh(storage: &dyn Storage, limit: usize, now: DateTime<Utc>) -> Result<Pass> {
    // Most passes find nothing: look without taking the writer.
    if storage.read(|tx| tx.segments().changed(1))?.is_empty() {
        return Ok(Pass::default());
    }
    storage.write(|tx| {
        let changed = tx.segments().changed(limit)?;
        let mut by_shop: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (shop, customer) in &changed {
            by_shop.entry(*shop).or_default().push(*customer);
        }
        let mut failed = Vec::new();
        for (shop_id, customers) in &by_shop {
            for segment in tx.segments().live(*shop_id)? {
                let outcome = isolated(tx, || reconcile(tx, *shop_id, &segment, Some(customers), Some(Cause::Change), now).map(|_| ()))?;
                if let Some(e) = outcome {
                    failed.push((segment.id, e));
                }
            }
        }
        for (shop, customer) in &changed {
            tx.segments_writer().clear_changed(*shop, *customer)?;
        }
        Ok(Pass { processed: changed.len(), failed })
    })
}

/// Sweep up to `limit` segments not swept for `every`, or whose ranks moved and not swept
/// for [`RANK_SWEEP_GAP`]: re-evaluate time-based and ranking ones whole (entry and exit
/// events with reason `time`, or `ranking` when other customers' scores moved a rank's
/// threshold) and record every one's daily count. `processed` counts the segments swept.
///
/// The whole-shop evaluation runs in a read; the write then re-checks only the customers
/// whose membership it would change, with the data as it is by then (anyone changed in
/// between is left to [`refresh`] anyway, and a segment whose ranks moved in between stays
/// due: its state changed since the read).
pub fn sweep(storage: &dyn Storage, every: Duration, limit: usize, now: DateTime<Utc>) -> Result<Pass> {
    let due = storage.read(|tx| tx.segments().due(now - every, now - RANK_SWEEP_GAP, limit))?;
    let mut failed = Vec::new();
    for d in &due {
        let (id, shop_id) = (d.segment_id, d.shop_id);
        // Customers whose membership time or ranks alone would change; none for a definition
        // without either.
        let candidates: Result<Vec<i64>> = storage.read(|tx| {
            let Some(segment) = tx.segments().live(shop_id)?.into_iter().find(|s| s.id == id) else { return Ok(Vec::new()) };
            let dependence = tx.segments().dependence(shop_id, &segment.node, Some(id))?;
            if !dependence.timed && dependence.ranked.is_empty() {
                return Ok(Vec::new());
            }
            let matched = tx.segments().members(shop_id, &segment.node, Some(id), None, now)?;
            let current = tx.segments().tracked(id, None)?;
            Ok(matched.symmetric_difference(&current).copied().collect())
        });
        let outcome = storage.write(|tx| {
            let segment = tx.segments().live(shop_id)?.into_iter().find(|s| s.id == id);
            let outcome = match (segment, candidates) {
                (Some(segment), Ok(changed)) => isolated(tx, || {
                    if changed.is_empty() {
                        return record_count(tx, shop_id, id, now, 0);
                    }
                    let dependence = tx.segments().dependence(shop_id, &segment.node, Some(id))?;
                    let cause = if dependence.timed && !d.ranks_moved { Cause::Time } else { Cause::Ranking };
                    reconcile(tx, shop_id, &segment, Some(&changed), Some(cause), now).map(|_| ())
                })?,
                (Some(_), Err(e)) => Some(e),
                (None, _) => None,
            };
            // Marked again since the read: it stays marked, but the gap counts from this
            // sweep, so a run writing scores all along costs a sweep a minute, not a pass.
            tx.segments_writer().swept(id, d.state, now)?;
            Ok(outcome)
        })?;
        if let Some(e) = outcome {
            failed.push((id, e));
        }
    }
    Ok(Pass { processed: due.len(), failed })
}

/// Ids of the shop's active customers that match `node` at `now` (a segment's definition
/// or an ad-hoc one).
pub fn members(storage: &dyn Storage, shop_id: i64, node: &kith_domain::segments::Node, now: DateTime<Utc>) -> Result<BTreeSet<i64>> {
    storage.read(|tx| tx.segments().members(shop_id, node, None, None, now))
}
