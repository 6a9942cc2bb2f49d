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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use kith_domain::FieldError;
use kith_domain::model::Customer;
use kith_domain::segments::{self, DailyCount, Node, Segment, SegmentInput, SegmentVersion, Snapshot};
use serde_json::{Value, json};

use crate::ports::{Dependence, LiveSegment, ReadTx, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, isolation};

/// The least time between two sweeps of a segment that ranks by a model whose scores keep
/// changing (a plugin's run writing them batch after batch): re-evaluating a rank reads and
/// sorts every value of the model, about 0.1 s for 200,000 customers on SQLite.
pub const RANK_SWEEP_GAP: Duration = Duration::milliseconds(60_000);

/// How long a sweep holds a segment at most (its whole-shop evaluation and its write): a
/// sweeper that died holding one leaves it to another after this long.
pub const SWEEP_LEASE: Duration = Duration::milliseconds(600_000);

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
    let current = tx.segments().tracked(shop_id, segment.id, only)?;
    let entered: Vec<i64> = matched.difference(&current).copied().collect();
    let exited: Vec<i64> = current.difference(&matched).copied().collect();
    let payload =
        |cause: Cause| json!({"segment_id": segment.id, "segment": segment.name, "version": segment.version, "reason": cause.as_str()});
    for id in &entered {
        tx.segments_writer().enter(shop_id, segment.id, *id, now)?;
        if let Some(cause) = cause {
            tx.event_log().append(shop_id, "segment.entered", Some(*id), &payload(cause), now, None)?;
        }
    }
    for id in &exited {
        tx.segments_writer().exit(shop_id, segment.id, *id)?;
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
    tx.segments_writer().record_count(shop_id, segment_id, now.with_timezone(&zone).date_naive(), change)
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
///
/// Several workers, of one process or of several sharing the database, sweep a segment one
/// at a time: each segment is leased (`segment-sweep:<id>` in its shop, [`SWEEP_LEASE`])
/// in a write that also finds it still due, before its evaluation, and released by the
/// write that records the sweep. A segment another sweeper holds, or swept since this
/// pass's list was read, is passed over: evaluated once, its sweep recorded once (a second
/// record would take the first for a mark of moved ranks).
pub fn sweep(storage: &dyn Storage, every: Duration, limit: usize, now: DateTime<Utc>) -> Result<Pass> {
    let due = storage.read(|tx| tx.segments().due(now - every, now - RANK_SWEEP_GAP, limit))?;
    let holder = format!("sweep/{}", uuid::Uuid::new_v4());
    let mut failed = Vec::new();
    let mut swept = 0;
    for d in &due {
        let (id, shop_id) = (d.segment_id, d.shop_id);
        let work = format!("segment-sweep:{id}");
        let held = storage.write(|tx| {
            // Still due as read: no sweep recorded since (the list of a busy pass comes first
            // in the same order, or later, when others became due before it).
            let due_now = tx.segments().due(now - every, now - RANK_SWEEP_GAP, limit)?;
            if !due_now.iter().any(|other| other.segment_id == id && other.state == d.state) {
                return Ok(false);
            }
            // Real time, not the kernel's clock (a test clock may stand still or run ahead):
            // leases are compared across processes, each pass taking its own reading.
            let real = chrono::Utc::now();
            tx.leases().take(shop_id, &work, &holder, real + SWEEP_LEASE, real)
        })?;
        if !held {
            continue;
        }
        swept += 1;
        // Customers whose membership time or ranks alone would change; none for a definition
        // without either.
        let candidates: Result<Vec<i64>> = storage.read(|tx| {
            let Some(segment) = tx.segments().live(shop_id)?.into_iter().find(|s| s.id == id) else { return Ok(Vec::new()) };
            let dependence = tx.segments().dependence(shop_id, &segment.node, Some(id))?;
            if !dependence.timed && dependence.ranked.is_empty() {
                return Ok(Vec::new());
            }
            let matched = tx.segments().members(shop_id, &segment.node, Some(id), None, now)?;
            let current = tx.segments().tracked(shop_id, id, None)?;
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
            tx.segments_writer().swept(shop_id, id, d.state, now)?;
            tx.leases().release(shop_id, &work, &holder)?;
            Ok(outcome)
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                // Nothing recorded: the segment stays due, free for the next pass.
                if let Err(release) = storage.write(|tx| tx.leases().release(shop_id, &work, &holder)) {
                    tracing::warn!(segment = id, error = %release, "releasing a sweep's lease failed; it runs out by itself");
                }
                return Err(err);
            }
        };
        if let Some(e) = outcome {
            failed.push((id, e));
        }
    }
    Ok(Pass { processed: swept, failed })
}

/// Ids of the shop's active customers that match `node` at `now` (a segment's definition
/// or an ad-hoc one).
pub fn members(storage: &dyn Storage, shop_id: i64, node: &kith_domain::segments::Node, now: DateTime<Utc>) -> Result<BTreeSet<i64>> {
    storage.read(|tx| tx.segments().members(shop_id, node, None, None, now))
}

/// What a segment export or member page evaluates: a version of a segment, or a definition.
#[derive(Debug, Clone)]
pub enum Audience {
    Segment { id: i64, version: Option<i64> },
    Definition(Value),
}

/// A live segment of the shop with its current definition, or the one in force at `at`.
fn load(tx: &dyn ReadTx, shop_id: i64, id: i64, at: Option<DateTime<Utc>>) -> Result<Segment> {
    tx.segments().get(shop_id, id, at)?.ok_or_else(|| Error::NotFound(format!("segment {id}")))
}

/// The current version and definition of a live segment of the shop, or not found.
fn current(tx: &dyn ReadTx, shop_id: i64, id: i64) -> Result<(i64, Value)> {
    tx.segments().current(shop_id, id)?.ok_or_else(|| Error::NotFound(format!("segment {id}")))
}

/// The definition of `version` of a live segment (its current one when `None`).
fn version_definition(tx: &dyn ReadTx, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<(i64, Node)> {
    let (version, definition) =
        tx.segments().version(shop_id, segment_id, version)?.ok_or_else(|| Error::NotFound(format!("segment {segment_id}")))?;
    let node = segments::parse(&definition).map_err(|e| anyhow::anyhow!("stored segment {segment_id} is invalid: {e}"))?;
    Ok((version, node))
}

/// Check a definition for saving: valid, its references resolve, no cycle; what its
/// membership depends on.
fn check(tx: &dyn ReadTx, shop_id: i64, input: &SegmentInput, segment: Option<i64>) -> Result<(Node, Dependence)> {
    let node = segments::check_input(input)?;
    // A segment being created counts as a level of its own chain, as it will when it is read
    // (no segment has the id 0): a chain one level too deep is refused now, not unreadable later.
    let dependence = tx.segments().dependence(shop_id, &node, Some(segment.unwrap_or(0)))?;
    Ok((node, dependence))
}

/// A pass's count, its failed segments logged: each was left as it was.
fn logged(pass: Pass) -> usize {
    for (segment, error) in &pass.failed {
        tracing::error!(segment, error = %error, "segment could not be re-evaluated; left as it was");
    }
    pass.processed
}

/// Segments: versioned definitions, members, snapshots, daily counts, and the passes that
/// keep tracked membership in line.
pub trait SegmentService: Storage {
    fn create_segment(&self, shop_id: i64, input: &SegmentInput, actor: &Actor, now: DateTime<Utc>) -> Result<Segment> {
        self.write(|tx| {
            let (node, dependence) = check(tx, shop_id, input, None)?;
            let name = input.name.trim();
            let id = tx.segments_writer().insert(
                shop_id,
                name,
                input.description.as_deref(),
                dependence.timed,
                &input.definition,
                now,
                &actor.label,
            )?;
            // The first membership is the baseline: no entry events for customers who already match.
            let live = LiveSegment { id, name: name.to_owned(), version: 1, node };
            reconcile(tx, shop_id, &live, None, None, now)?;
            tx.audit().record(Some(shop_id), actor, "segment.created", Some(&format!("segment:{id}")), json!({"version": 1}), now)?;
            load(tx, shop_id, id, None)
        })
    }

    /// Replace a segment's name, description and definition; a changed definition
    /// is a new version, and members who enter or leave because of it get events.
    fn update_segment(&self, shop_id: i64, id: i64, input: &SegmentInput, actor: &Actor, now: DateTime<Utc>) -> Result<Segment> {
        self.write(|tx| {
            let (version, current) = current(tx, shop_id, id)?;
            let (node, dependence) = check(tx, shop_id, input, Some(id))?;
            let redefined = current != input.definition;
            let mut readable_before = HashSet::new();
            for other in tx.segments().live(shop_id)?.into_iter().filter(|s| s.id != id) {
                if tx.segments().dependence(shop_id, &other.node, Some(other.id)).is_ok() {
                    readable_before.insert(other.id);
                }
            }
            let version = if redefined { version + 1 } else { version };
            let name = input.name.trim();
            tx.segments_writer().update(shop_id, id, name, input.description.as_deref(), version, dependence.timed, now)?;
            let mut detail = json!({"version": version});
            if redefined {
                tx.segments_writer().add_version(shop_id, id, version, &input.definition, now, &actor.label)?;
                let live = LiveSegment { id, name: name.to_owned(), version, node };
                let (entered, exited) = reconcile(tx, shop_id, &live, None, Some(Cause::Redefined), now)?;
                detail = json!({"version": version, "entered": entered, "exited": exited});
            }
            // Segments that refer to this one may have started or stopped depending on time.
            // What they depend on reads nothing of the shop. A change that would leave one of
            // them unreadable (a chain through this one grown too deep) is refused whole.
            for other in tx.segments().live(shop_id)?.into_iter().filter(|s| s.id != id) {
                match tx.segments().dependence(shop_id, &other.node, Some(other.id)) {
                    Ok(d) => tx.segments_writer().set_timed(shop_id, other.id, d.timed)?,
                    Err(Error::Invalid(e)) if readable_before.contains(&other.id) => {
                        return Err(Error::Invalid(FieldError::new(
                            "definition",
                            format!("segment {} ({}) refers to this one and could no longer be read: {}", other.id, other.name, e.reason),
                        )));
                    }
                    // Unreadable already, for a reason of its own: not this change's to refuse.
                    Err(Error::Invalid(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            tx.audit().record(Some(shop_id), actor, "segment.updated", Some(&format!("segment:{id}")), detail, now)?;
            load(tx, shop_id, id, None)
        })
    }

    /// Delete a segment; refused while another segment refers to it. Its versions stay for the record.
    fn delete_segment(&self, shop_id: i64, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            current(tx, shop_id, id)?;
            if let Some(user) = tx.segments().live(shop_id)?.into_iter().find(|s| s.node.segments().contains(&id)) {
                return Err(Error::Conflict(format!("segment {} ({}) refers to segment {id}; change it first", user.id, user.name)));
            }
            tx.segments_writer().delete(shop_id, id, now)?;
            tx.audit().record(Some(shop_id), actor, "segment.deleted", Some(&format!("segment:{id}")), json!({}), now)?;
            Ok(())
        })
    }

    fn list_segments(&self, shop_id: i64) -> Result<Vec<Segment>> {
        self.read(|tx| tx.segments().list(shop_id))
    }

    /// A segment with its current definition, or the one in force at `at`.
    fn get_segment(&self, shop_id: i64, id: i64, at: Option<DateTime<Utc>>) -> Result<Segment> {
        self.read(|tx| load(tx, shop_id, id, at))
    }

    fn segment_versions(&self, shop_id: i64, id: i64) -> Result<Vec<SegmentVersion>> {
        self.read(|tx| {
            load(tx, shop_id, id, None)?;
            tx.segments().versions(shop_id, id)
        })
    }

    /// Count the customers an audience holds now and return the first `limit` (by id) after `after`.
    /// A segment answers with the version evaluated.
    fn audience_page(
        &self,
        shop_id: i64,
        audience: &Audience,
        after: i64,
        limit: usize,
        with_count: bool,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<i64>, Vec<Customer>)> {
        self.read(|tx| {
            let (version, node, segment) = match audience {
                Audience::Segment { id, version } => {
                    let (version, node) = version_definition(tx, shop_id, *id, *version)?;
                    (Some(version), node, Some(*id))
                }
                Audience::Definition(definition) => (None, segments::parse(definition)?, None),
            };
            let (total, customers) = tx.segments().page(shop_id, &node, segment, after, limit, with_count, now)?;
            Ok((version.unwrap_or_default(), total, customers))
        })
    }

    /// Freeze the segment's membership now.
    fn snapshot_segment(&self, shop_id: i64, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Snapshot> {
        self.write(|tx| {
            let (version, node) = version_definition(tx, shop_id, id, None)?;
            let (snapshot, size) = tx.segments_writer().take_snapshot(shop_id, id, version, &node, now, &actor.label)?;
            tx.audit().record(
                Some(shop_id),
                actor,
                "segment.snapshot",
                Some(&format!("segment:{id}")),
                json!({"snapshot": snapshot, "version": version, "size": size}),
                now,
            )?;
            tx.segments().snapshot(shop_id, id, snapshot)?.ok_or_else(|| Error::NotFound(format!("snapshot {snapshot}")))
        })
    }

    fn list_snapshots(&self, shop_id: i64, id: i64) -> Result<Vec<Snapshot>> {
        self.read(|tx| {
            load(tx, shop_id, id, None)?;
            tx.segments().snapshots(shop_id, id)
        })
    }

    /// A page of a snapshot's members with their data as it is now (a member merged
    /// since shows the record that was merged away).
    fn snapshot_members(&self, shop_id: i64, id: i64, snapshot: i64, after: i64, limit: usize) -> Result<(Snapshot, Vec<Customer>)> {
        self.read(|tx| {
            load(tx, shop_id, id, None)?;
            let snap = tx.segments().snapshot(shop_id, id, snapshot)?.ok_or_else(|| Error::NotFound(format!("snapshot {snapshot}")))?;
            Ok((snap, tx.segments().snapshot_members(shop_id, snapshot, after, limit)?))
        })
    }

    /// Daily member counts from `from` to `to` (shop dates, inclusive); a day without a
    /// record carries the previous day's count.
    fn segment_counts(&self, shop_id: i64, id: i64, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyCount>> {
        self.read(|tx| {
            load(tx, shop_id, id, None)?;
            let recorded: BTreeMap<NaiveDate, i64> = tx.segments().counts(shop_id, id, to)?.into_iter().collect();
            let mut last = recorded.range(..from).next_back().map(|(_, n)| *n);
            let mut out = Vec::new();
            for day in from.iter_days().take_while(|d| *d <= to) {
                if let Some(n) = recorded.get(&day) {
                    last = Some(*n);
                }
                if let Some(members) = last {
                    out.push(DailyCount { day, members });
                }
            }
            Ok(out)
        })
    }

    /// Re-evaluate up to `limit` customers whose data changed against their shops'
    /// segments, appending entry and exit events; returns how many were processed
    /// ([`refresh`]).
    fn refresh_segments(&self, limit: usize, now: DateTime<Utc>) -> Result<usize> {
        Ok(logged(refresh(self.storage(), limit, now)?))
    }

    /// Sweep up to `limit` segments not swept for `every`, or whose ranks moved and not
    /// swept for [`RANK_SWEEP_GAP`]: re-evaluate time-based and ranking ones whole and
    /// record every one's daily count ([`sweep`]). Returns the segments swept.
    fn sweep_segments(&self, every: Duration, limit: usize, now: DateTime<Utc>) -> Result<usize> {
        Ok(logged(sweep(self.storage(), every, limit, now)?))
    }
}

impl<S: Storage + ?Sized> SegmentService for S {}
