//! The journey engine's port on SQLite: the statements `journeys.rs` ran before the
//! engine moved into the core.

use chrono::{DateTime, NaiveDate, Utc};
use kith_core::ports::{
    GoalCandidate, JourneyRow, JourneysRead, JourneysWrite, LoggedEvent, NewRun, RunCounts, RunFilter, RunPlace, RunRow, StepMessages,
    StepOutcomes, StepRecord,
};
use kith_domain::journeys::{CouponFigures, DateField, Journey, JourneyRun, JourneyRunStatus, JourneyStatus, JourneyVersion, VersionStats};
use kith_domain::segments::Node;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{CoreResult, Sql, core, sql};
use crate::journeys as views;
use crate::segments::{anniversaries, check_node, customer_matches};
use crate::{events, from_ms, json_text, parse_json, to_ms};

/// A journey's columns, as the engine needs them.
pub(crate) const ROW_COLUMNS: &str = "j.id, j.shop_id, j.name, j.status, j.version, j.cursor, j.date_through";

pub(crate) fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<JourneyRow> {
    Ok(JourneyRow {
        id: r.get(0)?,
        shop_id: r.get(1)?,
        name: r.get(2)?,
        status: JourneyStatus::parse(&r.get::<_, String>(3)?).unwrap_or(JourneyStatus::Paused),
        version: r.get(4)?,
        cursor: r.get(5)?,
        date_through: r.get::<_, Option<String>>(6)?.and_then(|d| d.parse::<NaiveDate>().ok()),
    })
}

/// The customer's id (`?1`) and its merged ids, in the shop (`?{shop}`): events of either
/// are the customer's.
pub(crate) fn same_customer(shop: u8) -> String {
    format!("SELECT id FROM customers WHERE shop_id = ?{shop} AND (id = ?1 OR merged_into = ?1)")
}

/// Not found: the shop has no such row.
fn found<T>(row: Option<T>, what: &str, id: i64) -> CoreResult<T> {
    row.ok_or_else(|| kith_core::Error::NotFound(format!("{what} {id}")))
}

impl JourneysRead for Sql<'_> {
    fn journey(&self, shop_id: i64, journey_id: i64) -> CoreResult<JourneyRow> {
        found(self.journey_in_shop(shop_id, journey_id)?, "journey", journey_id)
    }

    fn journey_in_shop(&self, shop_id: i64, journey_id: i64) -> CoreResult<Option<JourneyRow>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM journeys j WHERE j.id = ?1 AND j.shop_id = ?2"))
            .and_then(|mut s| s.query_row(params![journey_id, shop_id], row_of).optional()))
    }

    fn definition(&self, shop_id: i64, journey_id: i64, version: i64) -> CoreResult<Option<Value>> {
        // The version's shop is its journey's.
        let text: Option<String> = sql(self
            .0
            .prepare_cached(
                "SELECT v.definition FROM journey_versions v JOIN journeys j ON j.id = v.journey_id
                 WHERE v.journey_id = ?1 AND v.version = ?2 AND j.shop_id = ?3",
            )
            .and_then(|mut s| s.query_row(params![journey_id, version, shop_id], |r| r.get(0)).optional()))?;
        Ok(text.map(|t| parse_json(&t)))
    }

    fn behind(&self) -> CoreResult<Vec<(i64, i64)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT j.shop_id, j.id FROM journeys j WHERE j.status IN ('active', 'paused')
                   AND j.cursor < (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.shop_id = j.shop_id)",
            )
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn dated(&self) -> CoreResult<Vec<JourneyRow>> {
        sql(self
            .0
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version
                     WHERE j.status = 'active' AND json_extract(v.definition, '$.trigger.date') IS NOT NULL"
            ))
            .and_then(|mut s| s.query_map([], row_of)?.collect()))
    }

    fn events_after(&self, shop_id: i64, seq: i64, limit: usize) -> CoreResult<Vec<LoggedEvent>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT seq, type, customer_id, payload, created_at FROM events WHERE shop_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![shop_id, seq, limit as i64], |r| {
                    Ok(LoggedEvent {
                        seq: r.get(0)?,
                        kind: r.get(1)?,
                        customer_id: r.get(2)?,
                        payload: r.get(3)?,
                        logged_at: from_ms(r.get(4)?),
                    })
                })?
                .collect()
            }))
    }

    fn head(&self, shop_id: i64) -> CoreResult<i64> {
        core(events::head(self.0, shop_id))
    }

    fn runs_of(&self, shop_id: i64, journey_id: i64, customer_id: i64) -> CoreResult<RunCounts> {
        sql(self
            .0
            .prepare_cached(&format!(
                "SELECT COUNT(*), COALESCE(SUM(status = 'active'), 0), MAX(entered_at) FROM journey_runs
                 WHERE shop_id = ?3 AND journey_id = ?2 AND customer_id IN ({})",
                same_customer(3)
            ))
            .and_then(|mut s| {
                s.query_row(params![customer_id, journey_id, shop_id], |r| {
                    Ok(RunCounts { runs: r.get(0)?, active: r.get(1)?, last_entered: r.get::<_, Option<i64>>(2)?.map(from_ms) })
                })
            }))
    }

    fn goal_candidates(
        &self,
        shop_id: i64,
        journey_id: i64,
        customer_id: i64,
        seq: i64,
        at: DateTime<Utc>,
    ) -> CoreResult<Vec<GoalCandidate>> {
        sql(self
            .0
            .prepare_cached(&format!(
                "SELECT id, context, entered_at FROM journey_runs
                 WHERE shop_id = ?5 AND journey_id = ?2 AND customer_id IN ({}) AND converted_at IS NULL AND entry_seq < ?3
                   AND goal_until >= ?4 AND status != 'failed'",
                same_customer(5)
            ))
            .and_then(|mut s| {
                s.query_map(params![customer_id, journey_id, seq, to_ms(at), shop_id], |r| {
                    Ok(GoalCandidate { run_id: r.get(0)?, context: parse_json(&r.get::<_, String>(1)?), entered_at: from_ms(r.get(2)?) })
                })?
                .collect()
            }))
    }

    fn dated_customers(&self, shop_id: i64, field: &DateField, days: &[NaiveDate]) -> CoreResult<Vec<i64>> {
        // The attribute's JSON path is a bound value like everything else.
        let path = match field {
            DateField::Birthday => None,
            DateField::Attribute(name) => Some(format!("$.\"{name}\"")),
        };
        let list = serde_json::to_string(&anniversaries(days)).map_err(anyhow::Error::from)?;
        sql(self
            .0
            .prepare_cached(
                "SELECT c.id FROM customers c WHERE c.shop_id = ?1 AND c.merged_into IS NULL
                   AND substr(CASE WHEN ?3 IS NULL THEN c.birthday ELSE json_extract(c.attributes, ?3) END, 6, 5)
                       IN (SELECT value FROM json_each(?2))
                 ORDER BY c.id",
            )
            .and_then(|mut s| s.query_map(params![shop_id, list, path], |r| r.get(0))?.collect()))
    }

    fn due_journey_runs(&self, now: DateTime<Utc>, limit: usize) -> CoreResult<Vec<(i64, i64)>> {
        sql(self
            .0
            .prepare_cached(
                // Runs first, through the due index in its order, so LIMIT stops the walk early: joined
                // from the journeys (the bundled SQLite's choice with one active journey) it read and
                // sorted every active run of the journey, 250 ms a pass at a million runs.
                "SELECT r.shop_id, r.id FROM journey_runs r CROSS JOIN journeys j ON j.id = r.journey_id AND j.shop_id = r.shop_id
                 WHERE r.status = 'active' AND r.due_at <= ?1 AND j.status = 'active' ORDER BY r.due_at, r.id LIMIT ?2",
            )
            .and_then(|mut s| s.query_map(params![to_ms(now), limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn run(&self, shop_id: i64, run_id: i64) -> CoreResult<RunRow> {
        let row = sql(self
            .0
            .prepare_cached(
                "SELECT r.id, r.shop_id, r.journey_id, j.name, r.version, r.customer_id, r.entry_seq, r.holdout, r.variant, r.step, r.context
                 FROM journey_runs r JOIN journeys j ON j.id = r.journey_id AND j.shop_id = r.shop_id WHERE r.id = ?1 AND r.shop_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row([run_id, shop_id], |r| {
                    Ok(RunRow {
                        id: r.get(0)?,
                        shop_id: r.get(1)?,
                        journey_id: r.get(2)?,
                        journey: r.get(3)?,
                        version: r.get(4)?,
                        customer_id: r.get(5)?,
                        entry_seq: r.get(6)?,
                        holdout: r.get(7)?,
                        variant: r.get(8)?,
                        step: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        context: parse_json(&r.get::<_, String>(10)?),
                    })
                })
                .optional()
            }))?;
        found(row, "journey run", run_id)
    }

    fn messages_spent(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<(String, i64)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT m.channel, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
                   JOIN messages m ON m.shop_id = r.shop_id AND m.public_id = s.message_id
                 WHERE r.journey_id = ?1 AND r.shop_id = ?2 AND m.status IN ('queued', 'sending', 'sent', 'delivered') GROUP BY m.channel",
            )
            .and_then(|mut s| s.query_map([journey_id, shop_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn coupons_issued(&self, shop_id: i64, source: &str) -> CoreResult<(i64, i64)> {
        sql(self
            .0
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0) FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
                 WHERE c.shop_id = ?1 AND c.source = ?2",
            )
            .and_then(|mut s| s.query_row(params![shop_id, source], |r| Ok((r.get(0)?, r.get(1)?)))))
    }

    fn customer_name(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<String>> {
        let name: Option<Option<String>> = sql(self
            .0
            .prepare_cached("SELECT name FROM customers WHERE id = ?1 AND shop_id = ?2")
            .and_then(|mut s| s.query_row([customer_id, shop_id], |r| r.get(0)).optional()))?;
        Ok(name.flatten())
    }

    fn events_since(&self, shop_id: i64, customer_id: i64, kind: &str, seq: i64) -> CoreResult<Vec<Value>> {
        let payloads: Vec<String> = sql(self
            .0
            .prepare_cached(&format!(
                "SELECT payload FROM events WHERE shop_id = ?4 AND customer_id IN ({}) AND type = ?2 AND seq > ?3 ORDER BY seq LIMIT 1000",
                same_customer(4)
            ))
            .and_then(|mut s| s.query_map(params![customer_id, kind, seq, shop_id], |r| r.get(0))?.collect()))?;
        Ok(payloads.iter().map(|p| parse_json(p)).collect())
    }

    fn customer_matches(&self, shop_id: i64, node: &Node, customer_id: i64, now: DateTime<Utc>) -> CoreResult<bool> {
        core(customer_matches(self.0, shop_id, node, customer_id, now))
    }

    fn view(&self, shop_id: i64, journey_id: i64) -> CoreResult<Option<Journey>> {
        sql(views::load_journey(self.0, shop_id, journey_id))
    }

    fn ids(&self, shop_id: i64) -> CoreResult<Vec<i64>> {
        sql(views::journey_ids(self.0, shop_id))
    }

    fn versions(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<JourneyVersion>> {
        sql(views::versions(self.0, shop_id, journey_id))
    }

    fn runs(&self, shop_id: i64, journey_id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> CoreResult<Vec<JourneyRun>> {
        sql(views::journey_runs(self.0, shop_id, journey_id, filter, before, limit))
    }

    fn customer_runs(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<JourneyRun>> {
        sql(views::customer_runs(self.0, shop_id, customer_id))
    }

    fn segment_live(&self, shop_id: i64, segment_id: i64) -> CoreResult<bool> {
        let live: Option<i64> = sql(self
            .0
            .prepare_cached("SELECT id FROM segments WHERE id = ?1 AND shop_id = ?2 AND deleted_at IS NULL")
            .and_then(|mut s| s.query_row(params![segment_id, shop_id], |r| r.get(0)).optional()))?;
        Ok(live.is_some())
    }

    fn check_condition(&self, shop_id: i64, node: &Node, field: &str, now: DateTime<Utc>) -> CoreResult<()> {
        core(check_node(self.0, shop_id, node, field, now))
    }

    fn segment_members(&self, shop_id: i64, segment_id: i64) -> CoreResult<Vec<i64>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT m.customer_id FROM segment_members m JOIN segments s ON s.id = m.segment_id
                         WHERE m.segment_id = ?1 AND s.shop_id = ?2 ORDER BY m.customer_id",
            )
            .and_then(|mut s| s.query_map(params![segment_id, shop_id], |r| r.get(0))?.collect()))
    }

    fn recent_events(&self, shop_id: i64, kind: &str, since: DateTime<Utc>) -> CoreResult<Vec<(i64, Value)>> {
        let rows: Vec<(i64, String)> = sql(self
            .0
            .prepare_cached(
                "SELECT customer_id, payload FROM events WHERE shop_id = ?1 AND type = ?2 AND created_at >= ?3
                               AND customer_id IS NOT NULL ORDER BY seq DESC LIMIT 100000",
            )
            .and_then(|mut s| s.query_map(params![shop_id, kind, to_ms(since)], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))?;
        Ok(rows.into_iter().map(|(c, p)| (c, parse_json(&p))).collect())
    }

    fn count_runs(&self, shop_id: i64, journey_id: i64, status: JourneyRunStatus) -> CoreResult<i64> {
        sql(views::count_runs(self.0, shop_id, journey_id, status.as_str()))
    }

    fn arm(&self, shop_id: i64, journey_id: i64, holdout: bool) -> CoreResult<(i64, i64, i64)> {
        sql(views::arm(self.0, shop_id, journey_id, holdout))
    }

    fn messages_by_status(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<(String, String, i64)>> {
        sql(views::messages_by_status(self.0, shop_id, journey_id))
    }

    fn coupon_figures(&self, shop_id: i64, source: &str) -> CoreResult<CouponFigures> {
        sql(views::coupon_figures(self.0, shop_id, source))
    }

    fn version_stats(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<VersionStats>> {
        sql(views::version_stats(self.0, shop_id, journey_id))
    }

    fn step_outcomes(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<StepOutcomes>> {
        sql(views::step_outcomes(self.0, shop_id, journey_id))
    }

    fn step_messages(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<StepMessages>> {
        sql(views::step_messages(self.0, shop_id, journey_id))
    }

    fn variant_runs(&self, shop_id: i64, journey_id: i64) -> CoreResult<Vec<(String, bool, i64)>> {
        sql(views::variant_runs(self.0, shop_id, journey_id))
    }
}

impl JourneysWrite for Sql<'_> {
    fn insert_run(&self, run: &NewRun<'_>) -> CoreResult<Option<i64>> {
        let inserted = sql(self
            .0
            .prepare_cached(
                "INSERT INTO journey_runs (shop_id, journey_id, version, customer_id, entry_key, entry_seq, status, holdout, step, due_at,
                   context, entered_at, goal_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9, ?10, ?9, ?11)
                 ON CONFLICT (journey_id, customer_id, entry_key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.shop_id,
                    run.journey_id,
                    run.version,
                    run.customer_id,
                    run.entry_key,
                    run.entry_seq,
                    run.holdout,
                    run.step,
                    to_ms(run.at),
                    json_text(run.context),
                    run.goal_until.map(to_ms)
                ])
            }))?;
        Ok((inserted == 1).then(|| self.0.last_insert_rowid()))
    }

    fn convert(&self, shop_id: i64, run_id: i64, at: DateTime<Utc>, revenue: i64, now: DateTime<Utc>) -> CoreResult<usize> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE journey_runs SET converted_at = ?2, revenue = ?3,
                   ended_at = CASE WHEN status = 'active' THEN ?4 ELSE ended_at END,
                   end_reason = CASE WHEN status = 'active' THEN 'goal reached' ELSE end_reason END,
                   due_at = CASE WHEN status = 'active' THEN NULL ELSE due_at END,
                   status = CASE WHEN status = 'active' THEN 'converted' ELSE status END
                 WHERE id = ?1 AND shop_id = ?5",
            )
            .and_then(|mut s| s.execute(params![run_id, to_ms(at), revenue, to_ms(now), shop_id])))
    }

    fn set_cursor(&self, shop_id: i64, journey_id: i64, seq: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE journeys SET cursor = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![journey_id, seq, shop_id])))?;
        Ok(())
    }

    fn set_date_through(&self, shop_id: i64, journey_id: i64, day: NaiveDate) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE journeys SET date_through = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![journey_id, day.to_string(), shop_id])))?;
        Ok(())
    }

    fn pause(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE journeys SET status = 'paused', updated_at = ?2 WHERE id = ?1 AND shop_id = ?3 AND status = 'active'")
            .and_then(|mut s| s.execute(params![journey_id, to_ms(at), shop_id])))?;
        Ok(())
    }

    fn log_step(&self, shop_id: i64, step: &StepRecord<'_>) -> CoreResult<()> {
        // The step's shop is its run's.
        let logged = sql(self
            .0
            .prepare_cached(
                "INSERT INTO journey_steps (run_id, step, kind, outcome, detail, message_id, coupon_id, at)
                 SELECT r.id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM journey_runs r WHERE r.id = ?1 AND r.shop_id = ?9
                 ON CONFLICT (run_id, step) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, at = excluded.at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    step.run_id,
                    step.step,
                    step.kind,
                    step.outcome,
                    step.detail,
                    step.message_id,
                    step.coupon_id,
                    to_ms(step.at),
                    shop_id
                ])
            }))?;
        if logged == 0 {
            // As the foreign key refuses a step of no run.
            return Err(kith_core::Error::Internal(anyhow::anyhow!(
                "a step of run {} of shop {shop_id}, which does not exist",
                step.run_id
            )));
        }
        Ok(())
    }

    fn end_wait(&self, shop_id: i64, run_id: i64, step: &str, detail: &str, at: DateTime<Utc>) -> CoreResult<bool> {
        // The step's shop is its run's.
        let ended = sql(self
            .0
            .prepare_cached(
                "UPDATE journey_steps SET outcome = 'waited', detail = ?3, at = ?4 WHERE run_id = ?1 AND step = ?2 AND outcome = 'waiting'
                   AND EXISTS (SELECT 1 FROM journey_runs r WHERE r.id = ?1 AND r.shop_id = ?5)",
            )
            .and_then(|mut s| s.execute(params![run_id, step, detail, to_ms(at), shop_id])))?;
        Ok(ended > 0)
    }

    fn wait(&self, shop_id: i64, run_id: i64, place: &RunPlace<'_>, until: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE journey_runs SET step = ?2, due_at = ?3, variant = ?4, context = ?5 WHERE id = ?1 AND shop_id = ?6")
            .and_then(|mut s| s.execute(params![run_id, place.step, to_ms(until), place.variant, json_text(place.context), shop_id])))?;
        Ok(())
    }

    fn end_run(
        &self,
        shop_id: i64,
        run_id: i64,
        status: JourneyRunStatus,
        reason: &str,
        at: DateTime<Utc>,
        place: &RunPlace<'_>,
    ) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE journey_runs SET status = ?2, end_reason = ?3, ended_at = ?4, due_at = NULL, step = ?5, variant = ?6, context = ?7
                 WHERE id = ?1 AND shop_id = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![run_id, status.as_str(), reason, to_ms(at), place.step, place.variant, json_text(place.context), shop_id])
            }))?;
        Ok(())
    }

    fn fail_run(&self, shop_id: i64, run_id: i64, reason: &str, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE journey_runs SET status = 'failed', end_reason = ?2, ended_at = ?3, due_at = NULL
                 WHERE id = ?1 AND shop_id = ?4 AND status = 'active'",
            )
            .and_then(|mut s| s.execute(params![run_id, reason, to_ms(at), shop_id])))?;
        Ok(())
    }

    fn move_run(&self, shop_id: i64, run_id: i64, customer_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE journey_runs SET customer_id = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![run_id, customer_id, shop_id])))?;
        Ok(())
    }

    fn insert_journey(&self, shop_id: i64, name: &str, description: Option<&str>, at: DateTime<Utc>) -> CoreResult<i64> {
        sql(self.0.execute(
            "INSERT INTO journeys (shop_id, name, description, status, version, created_at, updated_at) VALUES (?1, ?2, ?3, 'draft', 1, ?4, ?4)",
            params![shop_id, name, description, to_ms(at)],
        ))?;
        Ok(self.0.last_insert_rowid())
    }

    fn insert_version(
        &self,
        shop_id: i64,
        journey_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> CoreResult<()> {
        // The version's shop is its journey's.
        let inserted = sql(self.0.execute(
            "INSERT INTO journey_versions (journey_id, version, definition, created_at, created_by)
             SELECT j.id, ?2, ?3, ?4, ?5 FROM journeys j WHERE j.id = ?1 AND j.shop_id = ?6",
            params![journey_id, version, json_text(definition), to_ms(at), created_by, shop_id],
        ))?;
        if inserted == 0 {
            // As the foreign key refuses a version of no journey.
            return Err(kith_core::Error::Internal(anyhow::anyhow!(
                "a version of journey {journey_id} of shop {shop_id}, which does not exist"
            )));
        }
        Ok(())
    }

    fn update_journey(
        &self,
        shop_id: i64,
        journey_id: i64,
        name: &str,
        description: Option<&str>,
        version: i64,
        at: DateTime<Utc>,
    ) -> CoreResult<()> {
        sql(self.0.execute(
            "UPDATE journeys SET name = ?2, description = ?3, version = ?4, updated_at = ?5 WHERE id = ?1 AND shop_id = ?6",
            params![journey_id, name, description, version, to_ms(at), shop_id],
        ))?;
        Ok(())
    }

    fn delete_journey(&self, shop_id: i64, journey_id: i64) -> CoreResult<()> {
        // The versions' shop is their journey's.
        sql(self.0.execute(
            "DELETE FROM journey_versions WHERE journey_id = ?1 AND EXISTS (SELECT 1 FROM journeys j WHERE j.id = ?1 AND j.shop_id = ?2)",
            [journey_id, shop_id],
        ))?;
        sql(self.0.execute("DELETE FROM journeys WHERE id = ?1 AND shop_id = ?2", [journey_id, shop_id]))?;
        Ok(())
    }

    fn activate(&self, shop_id: i64, journey_id: i64, cursor: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self.0.execute(
            "UPDATE journeys SET cursor = ?2, activated_at = ?3 WHERE id = ?1 AND shop_id = ?4",
            params![journey_id, cursor, to_ms(at), shop_id],
        ))?;
        Ok(())
    }

    fn exit_runs(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self.0.execute(
            "UPDATE journey_runs SET status = 'exited', end_reason = 'the journey was archived', ended_at = ?2, due_at = NULL
                     WHERE journey_id = ?1 AND shop_id = ?3 AND status = 'active'",
            params![journey_id, to_ms(at), shop_id],
        ))?;
        Ok(())
    }

    fn set_status(&self, shop_id: i64, journey_id: i64, status: JourneyStatus, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self.0.execute(
            "UPDATE journeys SET status = ?2, updated_at = ?3 WHERE id = ?1 AND shop_id = ?4",
            params![journey_id, status.as_str(), to_ms(at), shop_id],
        ))?;
        Ok(())
    }
}
