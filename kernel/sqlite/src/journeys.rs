//! Journeys as the shop edits and reads them, on SQLite: the statements behind the
//! journeys port's views (a journey, its versions, its runs with their histories) and
//! its statistics, which `ports/journeys.rs` answers with.
//!
//! The rules — saving definitions (checked against the shop), moving a journey through
//! its lifecycle, dry runs, test sends, the statistics' arithmetic — and the engine that
//! moves runs on are the core's (`kith_core::journeys`).

use kith_core::journeys::started_at;
use kith_core::ports::{RunFilter, StepMessages, StepOutcomes};
use kith_domain::journeys::{
    CouponFigures, Journey, JourneyRun, JourneyRunStatus, JourneyRunStep, JourneyStatus, JourneyVersion, VersionStats,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{from_ms, parse_json};

/// The customer's id and its merged ids, in the shop (`?2`): runs of either are the customer's.
/// (`+shop_id`: the shop is a filter, never the index; the id and `merged_into` find the rows.)
const SAME_CUSTOMER: &str = "SELECT id FROM customers WHERE +shop_id = ?2 AND (id = ?1 OR merged_into = ?1)";

pub(crate) fn load_journey(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Option<Journey>> {
    conn.prepare_cached(
        "SELECT j.id, j.name, j.description, j.status, j.version, v.definition, j.created_at, j.updated_at, j.activated_at,
           (SELECT COUNT(*) FROM journey_runs r WHERE r.shop_id = j.shop_id AND r.journey_id = j.id AND r.status = 'active')
         FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version
         WHERE j.id = ?1 AND j.shop_id = ?2",
    )?
    .query_row(params![id, shop_id], |r| {
        Ok(Journey {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            status: JourneyStatus::parse(&r.get::<_, String>(3)?).unwrap_or(JourneyStatus::Paused),
            version: r.get(4)?,
            definition: parse_json(&r.get::<_, String>(5)?),
            created_at: from_ms(r.get(6)?),
            updated_at: from_ms(r.get(7)?),
            activated_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
            in_progress: r.get(9)?,
        })
    })
    .optional()
}

pub(crate) fn journey_ids(conn: &Connection, shop_id: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT id FROM journeys WHERE shop_id = ?1 ORDER BY id")?.query_map([shop_id], |r| r.get(0))?.collect()
}

pub(crate) fn versions(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<JourneyVersion>> {
    // The versions' shop is their journey's.
    conn.prepare_cached(
        "SELECT v.version, v.definition, v.created_at, v.created_by FROM journey_versions v JOIN journeys j ON j.id = v.journey_id
         WHERE v.journey_id = ?1 AND j.shop_id = ?2 ORDER BY v.version",
    )?
    .query_map([id, shop_id], |r| {
        Ok(JourneyVersion {
            version: r.get(0)?,
            definition: parse_json(&r.get::<_, String>(1)?),
            created_at: from_ms(r.get(2)?),
            created_by: r.get(3)?,
        })
    })?
    .collect()
}

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<JourneyRun> {
    Ok(JourneyRun {
        id: r.get(0)?,
        journey_id: r.get(1)?,
        journey: r.get(2)?,
        version: r.get(3)?,
        customer_id: r.get(4)?,
        status: JourneyRunStatus::parse(&r.get::<_, String>(5)?).unwrap_or(JourneyRunStatus::Failed),
        holdout: r.get(6)?,
        variant: r.get(7)?,
        step: r.get(8)?,
        due_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
        entered_at: from_ms(r.get(10)?),
        triggered_at: started_at(&parse_json(&r.get::<_, String>(15)?), from_ms(r.get(10)?)),
        converted_at: r.get::<_, Option<i64>>(11)?.map(from_ms),
        revenue: r.get(12)?,
        ended_at: r.get::<_, Option<i64>>(13)?.map(from_ms),
        end_reason: r.get(14)?,
        history: Vec::new(),
    })
}

const RUN_COLUMNS: &str = "r.id, r.journey_id, j.name, r.version, r.customer_id, r.status, r.holdout, r.variant,
    CASE WHEN r.status = 'active' THEN r.step END, r.due_at, r.entered_at, r.converted_at, r.revenue, r.ended_at, r.end_reason,
    r.context";

fn with_history(conn: &Connection, shop_id: i64, mut runs: Vec<JourneyRun>) -> rusqlite::Result<Vec<JourneyRun>> {
    // The steps' shop is their run's.
    let mut stmt = conn.prepare_cached(
        "SELECT s.step, s.kind, s.outcome, s.detail, s.message_id, s.coupon_id, s.at FROM journey_steps s
           JOIN journey_runs r ON r.id = s.run_id
         WHERE s.run_id = ?1 AND r.shop_id = ?2 ORDER BY s.at, s.id",
    )?;
    for run in &mut runs {
        run.history = stmt
            .query_map([run.id, shop_id], |r| {
                Ok(JourneyRunStep {
                    step: r.get(0)?,
                    kind: r.get(1)?,
                    outcome: r.get(2)?,
                    detail: r.get(3)?,
                    message_id: r.get(4)?,
                    coupon_id: r.get(5)?,
                    at: from_ms(r.get(6)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(runs)
}

/// A journey's runs, newest first, after run id `before` when given.
pub(crate) fn journey_runs(
    conn: &Connection,
    shop_id: i64,
    id: i64,
    filter: &RunFilter,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<JourneyRun>> {
    let runs = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.id = r.journey_id AND j.shop_id = r.shop_id
                     WHERE r.journey_id = ?1 AND r.shop_id = ?2 AND (?3 IS NULL OR r.customer_id = ?3) AND (?4 IS NULL OR r.status = ?4)
                       AND (?5 IS NULL OR r.id < ?5)
                     ORDER BY r.id DESC LIMIT ?6"
        ))?
        .query_map(params![id, shop_id, filter.customer_id, filter.status.map(JourneyRunStatus::as_str), before, limit as i64], row_to_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_history(conn, shop_id, runs)
}

/// A customer's runs of every journey, newest first, with what happened at each step.
pub(crate) fn customer_runs(conn: &Connection, shop_id: i64, customer_id: i64) -> rusqlite::Result<Vec<JourneyRun>> {
    let runs = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.id = r.journey_id AND j.shop_id = r.shop_id
                     WHERE r.shop_id = ?2 AND r.customer_id IN ({SAME_CUSTOMER}) ORDER BY r.id DESC LIMIT 200"
        ))?
        .query_map(params![customer_id, shop_id], row_to_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_history(conn, shop_id, runs)
}

// A journey's statistics: those of the shop's journey (`?2`).

pub(crate) fn count_runs(conn: &Connection, shop_id: i64, id: i64, status: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM journey_runs WHERE journey_id = ?1 AND shop_id = ?2 AND status = ?3")?
        .query_row(params![id, shop_id, status], |r| r.get(0))
}

pub(crate) fn arm(conn: &Connection, shop_id: i64, id: i64, holdout: bool) -> rusqlite::Result<(i64, i64, i64)> {
    conn.prepare_cached(
        "SELECT COUNT(*), COUNT(converted_at), COALESCE(SUM(revenue), 0) FROM journey_runs
         WHERE journey_id = ?1 AND shop_id = ?2 AND holdout = ?3",
    )?
    .query_row(params![id, shop_id, holdout], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

pub(crate) fn messages_by_status(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<(String, String, i64)>> {
    conn.prepare_cached(
        "SELECT m.channel, m.status, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
                       JOIN messages m ON m.shop_id = r.shop_id AND m.public_id = s.message_id
                     WHERE r.journey_id = ?1 AND r.shop_id = ?2 GROUP BY m.channel, m.status",
    )?
    .query_map([id, shop_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

pub(crate) fn coupon_figures(conn: &Connection, shop_id: i64, source: &str) -> rusqlite::Result<CouponFigures> {
    conn.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0), COUNT(c.redeemed_at),
                       COALESCE(SUM(CASE WHEN c.redeemed_at IS NOT NULL THEN t.face_value END), 0)
                     FROM coupons c JOIN coupon_templates t ON t.id = c.template_id WHERE c.shop_id = ?1 AND c.source = ?2",
    )?
    .query_row(params![shop_id, source], |r| {
        Ok(CouponFigures { issued: r.get(0)?, issued_value: r.get(1)?, redeemed: r.get(2)?, redeemed_value: r.get(3)? })
    })
}

pub(crate) fn version_stats(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<VersionStats>> {
    conn.prepare_cached(
        "SELECT version, COUNT(*), COALESCE(SUM(status = 'active'), 0), COUNT(converted_at),
                       COALESCE(SUM(CASE WHEN holdout = 0 THEN revenue END), 0)
                     FROM journey_runs WHERE journey_id = ?1 AND shop_id = ?2 GROUP BY version ORDER BY version",
    )?
    .query_map([id, shop_id], |r| {
        Ok(VersionStats { version: r.get(0)?, entered: r.get(1)?, in_progress: r.get(2)?, converted: r.get(3)?, revenue: r.get(4)? })
    })?
    .collect()
}

pub(crate) fn step_outcomes(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<StepOutcomes>> {
    conn.prepare_cached(
        // A wait whose run ended before it did (a goal reached, an exit) is no longer
        // waiting: it counts under how the run ended.
        "SELECT r.version, s.step, s.kind,
                            CASE WHEN s.outcome = 'waiting' AND r.status <> 'active' THEN r.status ELSE s.outcome END AS outcome,
                            CASE WHEN s.outcome = 'skipped' THEN s.detail ELSE '' END, COUNT(*)
                     FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id WHERE r.journey_id = ?1 AND r.shop_id = ?2
                     GROUP BY r.version, s.step, s.kind, 4, 5",
    )?
    .query_map([id, shop_id], |r| {
        Ok(StepOutcomes { version: r.get(0)?, step: r.get(1)?, kind: r.get(2)?, outcome: r.get(3)?, reason: r.get(4)?, count: r.get(5)? })
    })?
    .collect()
}

pub(crate) fn step_messages(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<StepMessages>> {
    conn.prepare_cached(
        "SELECT r.version, s.step, m.channel, m.status, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
                       JOIN messages m ON m.shop_id = r.shop_id AND m.public_id = s.message_id
                     WHERE r.journey_id = ?1 AND r.shop_id = ?2 GROUP BY 1, 2, 3, 4",
    )?
    .query_map([id, shop_id], |r| {
        Ok(StepMessages { version: r.get(0)?, step: r.get(1)?, channel: r.get(2)?, status: r.get(3)?, count: r.get(4)? })
    })?
    .collect()
}

pub(crate) fn variant_runs(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Vec<(String, bool, i64)>> {
    conn.prepare_cached(
        "SELECT variant, converted_at IS NOT NULL, COALESCE(revenue, 0) FROM journey_runs
                     WHERE journey_id = ?1 AND shop_id = ?2 AND holdout = 0 AND variant IS NOT NULL",
    )?
    .query_map([id, shop_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}
