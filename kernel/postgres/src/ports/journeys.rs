//! The journeys ports on PostgreSQL: the journey engine's statements (journeys as the
//! engine moves them, runs and their steps) and journeys as the shop edits and reads
//! them (a journey, its versions, its runs with their histories, its statistics).
//!
//! The rules — saving definitions, the lifecycle, the engine, the statistics'
//! arithmetic — are the core's (`kith_core::journeys`).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kith_core::journeys::started_at;
use kith_core::ports::*;
use kith_domain::FieldError;
use kith_domain::journeys::{
    CouponFigures, DateField, Journey, JourneyRun, JourneyRunStatus, JourneyRunStep, JourneyStatus, JourneyVersion, VersionStats,
};
use kith_domain::segments::Node;
use serde_json::Value;
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

/// A journey's columns, as the engine needs them.
const ROW_COLUMNS: &str = "j.id, j.shop_id, j.name, j.status, j.version, j.cursor, j.date_through";

fn row_of(r: &Row) -> Result<JourneyRow> {
    Ok(JourneyRow {
        id: get(r, 0)?,
        shop_id: get(r, 1)?,
        name: get(r, 2)?,
        status: JourneyStatus::parse(&get::<String>(r, 3)?).unwrap_or(JourneyStatus::Paused),
        version: get(r, 4)?,
        cursor: get(r, 5)?,
        date_through: get::<Option<String>>(r, 6)?.and_then(|d| d.parse::<NaiveDate>().ok()),
    })
}

/// The customer's id (`$1`) and its merged ids, in the shop (`$2`): events and runs of
/// either are the customer's.
const SAME_CUSTOMER: &str = "SELECT id FROM customers WHERE shop_id = $2 AND (id = $1 OR merged_into = $1)";

/// Not found: the shop has no such row.
fn found<T>(row: Option<T>, what: &str, id: i64) -> Result<T> {
    row.ok_or_else(|| kith_core::Error::NotFound(format!("{what} {id}")))
}

/// Stored JSON as a value; text that no longer parses reads as null.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The `MM-DD` of `days`, with 29 February on a 28 February of a year that has none.
fn anniversaries(days: &[NaiveDate]) -> Vec<String> {
    let mut out: Vec<String> = days.iter().map(|d| d.format("%m-%d").to_string()).collect();
    for d in days {
        let leap = NaiveDate::from_ymd_opt(d.year(), 2, 29).is_some();
        if !leap && d.month() == 2 && d.day() == 28 {
            out.push("02-29".into());
        }
    }
    out
}

fn ids_of(rows: &[Row]) -> Result<Vec<i64>> {
    rows.iter().map(|r| get(r, 0)).collect()
}

fn run_of(r: &Row) -> Result<JourneyRun> {
    let entered_at = time(get(r, 10)?)?;
    Ok(JourneyRun {
        id: get(r, 0)?,
        journey_id: get(r, 1)?,
        journey: get(r, 2)?,
        version: get(r, 3)?,
        customer_id: get(r, 4)?,
        status: JourneyRunStatus::parse(&get::<String>(r, 5)?).unwrap_or(JourneyRunStatus::Failed),
        holdout: get::<i64>(r, 6)? != 0,
        variant: get(r, 7)?,
        step: get(r, 8)?,
        due_at: get::<Option<i64>>(r, 9)?.map(time).transpose()?,
        entered_at,
        triggered_at: started_at(&parse_json(&get::<String>(r, 15)?), entered_at),
        converted_at: get::<Option<i64>>(r, 11)?.map(time).transpose()?,
        revenue: get(r, 12)?,
        ended_at: get::<Option<i64>>(r, 13)?.map(time).transpose()?,
        end_reason: get(r, 14)?,
        history: Vec::new(),
    })
}

const RUN_COLUMNS: &str = "r.id, r.journey_id, j.name, r.version, r.customer_id, r.status, r.holdout, r.variant,
    CASE WHEN r.status = 'active' THEN r.step END, r.due_at, r.entered_at, r.converted_at, r.revenue, r.ended_at, r.end_reason,
    r.context";

impl Pg<'_> {
    /// The shop's runs with what happened at each step.
    fn with_history(&self, shop_id: i64, rows: &[Row]) -> Result<Vec<JourneyRun>> {
        let mut runs = rows.iter().map(run_of).collect::<Result<Vec<_>>>()?;
        for run in &mut runs {
            let steps = self.query(
                "SELECT step, kind, outcome, detail, message_id, coupon_id, at FROM journey_steps
                 WHERE shop_id = $2 AND run_id = $1 ORDER BY at, id",
                &[&run.id, &shop_id],
            )?;
            run.history = steps
                .iter()
                .map(|r| {
                    Ok(JourneyRunStep {
                        step: get(r, 0)?,
                        kind: get(r, 1)?,
                        outcome: get(r, 2)?,
                        detail: get(r, 3)?,
                        message_id: get(r, 4)?,
                        coupon_id: get(r, 5)?,
                        at: time(get(r, 6)?)?,
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(runs)
    }
}

impl JourneysRead for Pg<'_> {
    fn journey(&self, shop_id: i64, journey_id: i64) -> Result<JourneyRow> {
        found(self.journey_in_shop(shop_id, journey_id)?, "journey", journey_id)
    }

    fn journey_in_shop(&self, shop_id: i64, journey_id: i64) -> Result<Option<JourneyRow>> {
        self.query_opt(&format!("SELECT {ROW_COLUMNS} FROM journeys j WHERE j.id = $1 AND j.shop_id = $2"), &[&journey_id, &shop_id])?
            .map(|r| row_of(&r))
            .transpose()
    }

    fn definition(&self, shop_id: i64, journey_id: i64, version: i64) -> Result<Option<Value>> {
        let row = self.query_opt(
            "SELECT definition FROM journey_versions WHERE shop_id = $3 AND journey_id = $1 AND version = $2",
            &[&journey_id, &version, &shop_id],
        )?;
        row.map(|r| Ok(parse_json(&get::<String>(&r, 0)?))).transpose()
    }

    fn behind(&self) -> Result<Vec<(i64, i64)>> {
        self.query(
            "SELECT j.shop_id, j.id FROM journeys j WHERE j.status IN ('active', 'paused')
               AND j.cursor < (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.shop_id = j.shop_id)
             ORDER BY j.id",
            &[],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn dated(&self) -> Result<Vec<JourneyRow>> {
        // `#>>` is NULL for a JSON null too, as SQLite's json_extract.
        let rows = self.query(
            &format!(
                "SELECT {ROW_COLUMNS} FROM journeys j
                   JOIN journey_versions v ON v.shop_id = j.shop_id AND v.journey_id = j.id AND v.version = j.version
                 WHERE j.status = 'active' AND (CASE WHEN strpos(v.definition, '\\u0000') = 0 THEN v.definition::jsonb END #>> '{{trigger,date}}') IS NOT NULL
                 ORDER BY j.id"
            ),
            &[],
        )?;
        rows.iter().map(row_of).collect()
    }

    fn events_after(&self, shop_id: i64, seq: i64, limit: usize) -> Result<Vec<LoggedEvent>> {
        let rows = self.query(
            "SELECT seq, type, customer_id, payload, created_at FROM events WHERE shop_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&shop_id, &seq, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(LoggedEvent {
                    seq: get(r, 0)?,
                    kind: get(r, 1)?,
                    customer_id: get(r, 2)?,
                    payload: get(r, 3)?,
                    logged_at: time(get(r, 4)?)?,
                })
            })
            .collect()
    }

    fn head(&self, shop_id: i64) -> Result<i64> {
        get(&self.query_one("SELECT COALESCE(MAX(seq), 0) FROM events WHERE shop_id = $1", &[&shop_id])?, 0)
    }

    fn runs_of(&self, shop_id: i64, journey_id: i64, customer_id: i64) -> Result<RunCounts> {
        let r = self.query_one(
            &format!(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'active'), MAX(entered_at) FROM journey_runs
                 WHERE shop_id = $2 AND journey_id = $3 AND customer_id IN ({SAME_CUSTOMER})"
            ),
            &[&customer_id, &shop_id, &journey_id],
        )?;
        Ok(RunCounts { runs: get(&r, 0)?, active: get(&r, 1)?, last_entered: get::<Option<i64>>(&r, 2)?.map(time).transpose()? })
    }

    fn goal_candidates(&self, shop_id: i64, journey_id: i64, customer_id: i64, seq: i64, at: DateTime<Utc>) -> Result<Vec<GoalCandidate>> {
        let rows = self.query(
            &format!(
                "SELECT id, context, entered_at FROM journey_runs
                 WHERE shop_id = $2 AND journey_id = $5 AND customer_id IN ({SAME_CUSTOMER}) AND converted_at IS NULL AND entry_seq < $3
                   AND goal_until >= $4 AND status <> 'failed'
                 ORDER BY id"
            ),
            &[&customer_id, &shop_id, &seq, &millis(at), &journey_id],
        )?;
        rows.iter()
            .map(|r| Ok(GoalCandidate { run_id: get(r, 0)?, context: parse_json(&get::<String>(r, 1)?), entered_at: time(get(r, 2)?)? }))
            .collect()
    }

    fn dated_customers(&self, shop_id: i64, field: &DateField, days: &[NaiveDate]) -> Result<Vec<i64>> {
        // The attribute's key is a bound value like everything else; `->>` reads a value as
        // text as SQLite's json_extract did, NULL when the attributes hold no such key.
        let key: Option<&str> = match field {
            DateField::Birthday => None,
            DateField::Attribute(name) => Some(name),
        };
        let list = anniversaries(days);
        ids_of(&self.query(
            "SELECT c.id FROM customers c WHERE c.shop_id = $1 AND c.merged_into IS NULL
               AND substr(CASE WHEN $3::TEXT IS NULL THEN c.birthday ELSE CASE WHEN strpos(c.attributes, '\\u0000') = 0 THEN c.attributes::jsonb END ->> $3::TEXT END, 6, 5) = ANY($2::TEXT[])
             ORDER BY c.id",
            &[&shop_id, &list, &key],
        )?)
    }

    fn due_journey_runs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(i64, i64)>> {
        self.query(
            "SELECT r.shop_id, r.id FROM journey_runs r JOIN journeys j ON j.shop_id = r.shop_id AND j.id = r.journey_id
             WHERE r.status = 'active' AND r.due_at <= $1 AND j.status = 'active' ORDER BY r.due_at, r.id LIMIT $2",
            &[&millis(now), &(limit as i64)],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn run(&self, shop_id: i64, run_id: i64) -> Result<RunRow> {
        let r = found(
            self.query_opt(
                "SELECT r.id, r.shop_id, r.journey_id, j.name, r.version, r.customer_id, r.entry_seq, r.holdout, r.variant, r.step, r.context
                 FROM journey_runs r JOIN journeys j ON j.shop_id = r.shop_id AND j.id = r.journey_id WHERE r.shop_id = $2 AND r.id = $1",
                &[&run_id, &shop_id],
            )?,
            "journey run",
            run_id,
        )?;
        Ok(RunRow {
            id: get(&r, 0)?,
            shop_id: get(&r, 1)?,
            journey_id: get(&r, 2)?,
            journey: get(&r, 3)?,
            version: get(&r, 4)?,
            customer_id: get(&r, 5)?,
            entry_seq: get(&r, 6)?,
            holdout: get::<i64>(&r, 7)? != 0,
            variant: get(&r, 8)?,
            step: get::<Option<String>>(&r, 9)?.unwrap_or_default(),
            context: parse_json(&get::<String>(&r, 10)?),
        })
    }

    fn messages_spent(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, i64)>> {
        let rows = self.query(
            "SELECT m.channel, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.shop_id = s.shop_id AND r.id = s.run_id
               JOIN messages m ON m.shop_id = s.shop_id AND m.public_id = s.message_id
             WHERE s.shop_id = $2 AND r.shop_id = $2 AND m.shop_id = $2 AND r.journey_id = $1 AND m.status IN ('queued', 'sending', 'sent', 'delivered') GROUP BY m.channel ORDER BY m.channel",
            &[&journey_id, &shop_id],
        )?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
    }

    fn coupons_issued(&self, shop_id: i64, source: &str) -> Result<(i64, i64)> {
        let r = self.query_one(
            "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0)::BIGINT FROM coupons c
               JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
             WHERE c.shop_id = $1 AND c.source = $2",
            &[&shop_id, &source],
        )?;
        Ok((get(&r, 0)?, get(&r, 1)?))
    }

    fn customer_name(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>> {
        let row = self.query_opt("SELECT name FROM customers WHERE shop_id = $2 AND id = $1", &[&customer_id, &shop_id])?;
        Ok(row.map(|r| get::<Option<String>>(&r, 0)).transpose()?.flatten())
    }

    fn events_since(&self, shop_id: i64, customer_id: i64, kind: &str, seq: i64) -> Result<Vec<Value>> {
        let rows = self.query(
            &format!(
                "SELECT payload FROM events WHERE shop_id = $2 AND customer_id IN ({SAME_CUSTOMER}) AND type = $3 AND seq > $4
                 ORDER BY seq LIMIT 1000"
            ),
            &[&customer_id, &shop_id, &kind, &seq],
        )?;
        rows.iter().map(|r| Ok(parse_json(&get::<String>(r, 0)?))).collect()
    }

    fn customer_matches(&self, shop_id: i64, node: &Node, customer_id: i64, now: DateTime<Utc>) -> Result<bool> {
        // The segments port compiles the condition for this one customer.
        let members: BTreeSet<i64> = SegmentsRead::members(self, shop_id, node, None, Some(&[customer_id]), now)?;
        Ok(!members.is_empty())
    }

    fn view(&self, shop_id: i64, journey_id: i64) -> Result<Option<Journey>> {
        let row = self.query_opt(
            "SELECT j.id, j.name, j.description, j.status, j.version, v.definition, j.created_at, j.updated_at, j.activated_at,
               (SELECT COUNT(*) FROM journey_runs r WHERE r.shop_id = j.shop_id AND r.journey_id = j.id AND r.status = 'active')
             FROM journeys j JOIN journey_versions v ON v.shop_id = j.shop_id AND v.journey_id = j.id AND v.version = j.version
             WHERE j.id = $1 AND j.shop_id = $2",
            &[&journey_id, &shop_id],
        )?;
        row.map(|r| {
            Ok(Journey {
                id: get(&r, 0)?,
                name: get(&r, 1)?,
                description: get(&r, 2)?,
                status: JourneyStatus::parse(&get::<String>(&r, 3)?).unwrap_or(JourneyStatus::Paused),
                version: get(&r, 4)?,
                definition: parse_json(&get::<String>(&r, 5)?),
                created_at: time(get(&r, 6)?)?,
                updated_at: time(get(&r, 7)?)?,
                activated_at: get::<Option<i64>>(&r, 8)?.map(time).transpose()?,
                in_progress: get(&r, 9)?,
            })
        })
        .transpose()
    }

    fn ids(&self, shop_id: i64) -> Result<Vec<i64>> {
        ids_of(&self.query("SELECT id FROM journeys WHERE shop_id = $1 ORDER BY id", &[&shop_id])?)
    }

    fn versions(&self, shop_id: i64, journey_id: i64) -> Result<Vec<JourneyVersion>> {
        let rows = self.query(
            "SELECT version, definition, created_at, created_by FROM journey_versions WHERE shop_id = $2 AND journey_id = $1
             ORDER BY version",
            &[&journey_id, &shop_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(JourneyVersion {
                    version: get(r, 0)?,
                    definition: parse_json(&get::<String>(r, 1)?),
                    created_at: time(get(r, 2)?)?,
                    created_by: get(r, 3)?,
                })
            })
            .collect()
    }

    fn runs(&self, shop_id: i64, journey_id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> Result<Vec<JourneyRun>> {
        let status = filter.status.map(JourneyRunStatus::as_str);
        let rows = self.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.shop_id = r.shop_id AND j.id = r.journey_id
                 WHERE r.journey_id = $1 AND r.shop_id = $2 AND ($3::BIGINT IS NULL OR r.customer_id = $3)
                   AND ($4::TEXT IS NULL OR r.status = $4) AND ($5::BIGINT IS NULL OR r.id < $5)
                 ORDER BY r.id DESC LIMIT $6"
            ),
            &[&journey_id, &shop_id, &filter.customer_id, &status, &before, &(limit as i64)],
        )?;
        self.with_history(shop_id, &rows)
    }

    fn customer_runs(&self, shop_id: i64, customer_id: i64) -> Result<Vec<JourneyRun>> {
        let rows = self.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.shop_id = r.shop_id AND j.id = r.journey_id
                 WHERE r.shop_id = $2 AND r.customer_id IN ({SAME_CUSTOMER}) ORDER BY r.id DESC LIMIT 200"
            ),
            &[&customer_id, &shop_id],
        )?;
        self.with_history(shop_id, &rows)
    }

    fn segment_live(&self, shop_id: i64, segment_id: i64) -> Result<bool> {
        let row =
            self.query_opt("SELECT id FROM segments WHERE id = $1 AND shop_id = $2 AND deleted_at IS NULL", &[&segment_id, &shop_id])?;
        Ok(row.is_some())
    }

    fn check_condition(&self, shop_id: i64, node: &Node, field: &str, _now: DateTime<Utc>) -> Result<()> {
        // Compiling the condition (what `dependence` does) is the check: its segments exist,
        // no cycle, not too deep. Those errors do not depend on the time.
        match SegmentsRead::dependence(self, shop_id, node, None) {
            Ok(_) => Ok(()),
            Err(kith_core::Error::Invalid(e)) => Err(kith_core::Error::Invalid(FieldError::new(field, e.reason))),
            Err(other) => Err(other),
        }
    }

    fn segment_members(&self, shop_id: i64, segment_id: i64) -> Result<Vec<i64>> {
        ids_of(&self.query(
            "SELECT m.customer_id FROM segment_members m JOIN segments s ON s.shop_id = m.shop_id AND s.id = m.segment_id
             WHERE m.shop_id = $2 AND m.segment_id = $1 AND s.shop_id = $2 ORDER BY m.customer_id",
            &[&segment_id, &shop_id],
        )?)
    }

    fn recent_events(&self, shop_id: i64, kind: &str, since: DateTime<Utc>) -> Result<Vec<(i64, Value)>> {
        let rows = self.query(
            "SELECT customer_id, payload FROM events WHERE shop_id = $1 AND type = $2 AND created_at >= $3
               AND customer_id IS NOT NULL ORDER BY seq DESC LIMIT 100000",
            &[&shop_id, &kind, &millis(since)],
        )?;
        rows.iter().map(|r| Ok((get(r, 0)?, parse_json(&get::<String>(r, 1)?)))).collect()
    }

    fn count_runs(&self, shop_id: i64, journey_id: i64, status: JourneyRunStatus) -> Result<i64> {
        get(
            &self.query_one(
                "SELECT COUNT(*) FROM journey_runs WHERE shop_id = $3 AND journey_id = $1 AND status = $2",
                &[&journey_id, &status.as_str(), &shop_id],
            )?,
            0,
        )
    }

    fn arm(&self, shop_id: i64, journey_id: i64, holdout: bool) -> Result<(i64, i64, i64)> {
        let r = self.query_one(
            "SELECT COUNT(*), COUNT(converted_at), COALESCE(SUM(revenue), 0)::BIGINT FROM journey_runs
             WHERE shop_id = $3 AND journey_id = $1 AND holdout = $2",
            &[&journey_id, &i64::from(holdout), &shop_id],
        )?;
        Ok((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?))
    }

    fn messages_by_status(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, String, i64)>> {
        let rows = self.query(
            "SELECT m.channel, m.status, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.shop_id = s.shop_id AND r.id = s.run_id
               JOIN messages m ON m.shop_id = s.shop_id AND m.public_id = s.message_id
             WHERE s.shop_id = $2 AND r.shop_id = $2 AND m.shop_id = $2 AND r.journey_id = $1
             GROUP BY m.channel, m.status ORDER BY m.channel, m.status",
            &[&journey_id, &shop_id],
        )?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?))).collect()
    }

    fn coupon_figures(&self, shop_id: i64, source: &str) -> Result<CouponFigures> {
        let r = self.query_one(
            "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0)::BIGINT, COUNT(c.redeemed_at),
               COALESCE(SUM(CASE WHEN c.redeemed_at IS NOT NULL THEN t.face_value END), 0)::BIGINT
             FROM coupons c JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
             WHERE c.shop_id = $1 AND c.source = $2",
            &[&shop_id, &source],
        )?;
        Ok(CouponFigures { issued: get(&r, 0)?, issued_value: get(&r, 1)?, redeemed: get(&r, 2)?, redeemed_value: get(&r, 3)? })
    }

    fn version_stats(&self, shop_id: i64, journey_id: i64) -> Result<Vec<VersionStats>> {
        let rows = self.query(
            "SELECT version, COUNT(*), COUNT(*) FILTER (WHERE status = 'active'), COUNT(converted_at),
               COALESCE(SUM(CASE WHEN holdout = 0 THEN revenue END), 0)::BIGINT
             FROM journey_runs WHERE shop_id = $2 AND journey_id = $1 GROUP BY version ORDER BY version",
            &[&journey_id, &shop_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(VersionStats {
                    version: get(r, 0)?,
                    entered: get(r, 1)?,
                    in_progress: get(r, 2)?,
                    converted: get(r, 3)?,
                    revenue: get(r, 4)?,
                })
            })
            .collect()
    }

    fn step_outcomes(&self, shop_id: i64, journey_id: i64) -> Result<Vec<StepOutcomes>> {
        let rows = self.query(
            // A wait whose run ended before it did (a goal reached, an exit) is no longer
            // waiting: it counts under how the run ended.
            "SELECT r.version, s.step, s.kind,
               CASE WHEN s.outcome = 'waiting' AND r.status <> 'active' THEN r.status ELSE s.outcome END AS outcome,
               CASE WHEN s.outcome = 'skipped' THEN s.detail ELSE '' END, COUNT(*)
             FROM journey_steps s JOIN journey_runs r ON r.shop_id = s.shop_id AND r.id = s.run_id
             WHERE s.shop_id = $2 AND r.shop_id = $2 AND r.journey_id = $1
             GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
            &[&journey_id, &shop_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StepOutcomes {
                    version: get(r, 0)?,
                    step: get(r, 1)?,
                    kind: get(r, 2)?,
                    outcome: get(r, 3)?,
                    reason: get(r, 4)?,
                    count: get(r, 5)?,
                })
            })
            .collect()
    }

    fn step_messages(&self, shop_id: i64, journey_id: i64) -> Result<Vec<StepMessages>> {
        let rows = self.query(
            "SELECT r.version, s.step, m.channel, m.status, COUNT(*)
             FROM journey_steps s JOIN journey_runs r ON r.shop_id = s.shop_id AND r.id = s.run_id
               JOIN messages m ON m.shop_id = s.shop_id AND m.public_id = s.message_id
             WHERE s.shop_id = $2 AND r.shop_id = $2 AND m.shop_id = $2 AND r.journey_id = $1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            &[&journey_id, &shop_id],
        )?;
        rows.iter()
            .map(|r| Ok(StepMessages { version: get(r, 0)?, step: get(r, 1)?, channel: get(r, 2)?, status: get(r, 3)?, count: get(r, 4)? }))
            .collect()
    }

    fn variant_runs(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, bool, i64)>> {
        let rows = self.query(
            "SELECT variant, converted_at IS NOT NULL, COALESCE(revenue, 0) FROM journey_runs
             WHERE shop_id = $2 AND journey_id = $1 AND holdout = 0 AND variant IS NOT NULL ORDER BY id",
            &[&journey_id, &shop_id],
        )?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?))).collect()
    }
}

impl JourneysWrite for Pg<'_> {
    fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<i64>> {
        let context = run.context.to_string();
        let row = self.query_opt(
            "INSERT INTO journey_runs (shop_id, journey_id, version, customer_id, entry_key, entry_seq, status, holdout, step, due_at,
               context, entered_at, goal_until)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, $9, $11)
             ON CONFLICT (shop_id, journey_id, customer_id, entry_key) DO NOTHING
             RETURNING id",
            &[
                &run.shop_id,
                &run.journey_id,
                &run.version,
                &run.customer_id,
                &run.entry_key,
                &run.entry_seq,
                &i64::from(run.holdout),
                &run.step,
                &millis(run.at),
                &context,
                &run.goal_until.map(millis),
            ],
        )?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn convert(&self, shop_id: i64, run_id: i64, at: DateTime<Utc>, revenue: i64, now: DateTime<Utc>) -> Result<usize> {
        let changed = self.execute(
            "UPDATE journey_runs SET converted_at = $2, revenue = $3,
               ended_at = CASE WHEN status = 'active' THEN $4 ELSE ended_at END,
               end_reason = CASE WHEN status = 'active' THEN 'goal reached' ELSE end_reason END,
               due_at = CASE WHEN status = 'active' THEN NULL ELSE due_at END,
               status = CASE WHEN status = 'active' THEN 'converted' ELSE status END
             WHERE shop_id = $5 AND id = $1",
            &[&run_id, &millis(at), &revenue, &millis(now), &shop_id],
        )?;
        Ok(changed as usize)
    }

    fn set_cursor(&self, shop_id: i64, journey_id: i64, seq: i64) -> Result<()> {
        self.execute("UPDATE journeys SET cursor = $2 WHERE shop_id = $3 AND id = $1", &[&journey_id, &seq, &shop_id])?;
        Ok(())
    }

    fn set_date_through(&self, shop_id: i64, journey_id: i64, day: NaiveDate) -> Result<()> {
        self.execute("UPDATE journeys SET date_through = $2 WHERE shop_id = $3 AND id = $1", &[&journey_id, &day.to_string(), &shop_id])?;
        Ok(())
    }

    fn pause(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journeys SET status = 'paused', updated_at = $2 WHERE shop_id = $3 AND id = $1 AND status = 'active'",
            &[&journey_id, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn log_step(&self, shop_id: i64, step: &StepRecord<'_>) -> Result<()> {
        // The step's shop is its run's.
        let logged = self.execute(
            "INSERT INTO journey_steps (shop_id, run_id, step, kind, outcome, detail, message_id, coupon_id, at)
             SELECT r.shop_id, r.id, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT, $6::TEXT, $7::BIGINT, $8::BIGINT FROM journey_runs r
             WHERE r.shop_id = $9 AND r.id = $1
             ON CONFLICT (shop_id, run_id, step) DO UPDATE SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail, at = EXCLUDED.at",
            &[
                &step.run_id,
                &step.step,
                &step.kind,
                &step.outcome,
                &step.detail,
                &step.message_id,
                &step.coupon_id,
                &millis(step.at),
                &shop_id,
            ],
        )?;
        if logged == 0 {
            // SQLite's foreign key refuses a step of no run.
            return Err(kith_core::Error::Internal(anyhow::anyhow!(
                "a step of run {} of shop {shop_id}, which does not exist",
                step.run_id
            )));
        }
        Ok(())
    }

    fn end_wait(&self, shop_id: i64, run_id: i64, step: &str, detail: &str, at: DateTime<Utc>) -> Result<bool> {
        let ended = self.execute(
            "UPDATE journey_steps SET outcome = 'waited', detail = $3, at = $4
             WHERE shop_id = $5 AND run_id = $1 AND step = $2 AND outcome = 'waiting'",
            &[&run_id, &step, &detail, &millis(at), &shop_id],
        )?;
        Ok(ended > 0)
    }

    fn wait(&self, shop_id: i64, run_id: i64, place: &RunPlace<'_>, until: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journey_runs SET step = $2, due_at = $3, variant = $4, context = $5 WHERE shop_id = $6 AND id = $1",
            &[&run_id, &place.step, &millis(until), &place.variant, &place.context.to_string(), &shop_id],
        )?;
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
    ) -> Result<()> {
        self.execute(
            "UPDATE journey_runs SET status = $2, end_reason = $3, ended_at = $4, due_at = NULL, step = $5, variant = $6, context = $7
             WHERE shop_id = $8 AND id = $1",
            &[&run_id, &status.as_str(), &reason, &millis(at), &place.step, &place.variant, &place.context.to_string(), &shop_id],
        )?;
        Ok(())
    }

    fn fail_run(&self, shop_id: i64, run_id: i64, reason: &str, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journey_runs SET status = 'failed', end_reason = $2, ended_at = $3, due_at = NULL
             WHERE shop_id = $4 AND id = $1 AND status = 'active'",
            &[&run_id, &reason, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn move_run(&self, shop_id: i64, run_id: i64, customer_id: i64) -> Result<()> {
        self.execute("UPDATE journey_runs SET customer_id = $2 WHERE shop_id = $3 AND id = $1", &[&run_id, &customer_id, &shop_id])?;
        Ok(())
    }

    fn insert_journey(&self, shop_id: i64, name: &str, description: Option<&str>, at: DateTime<Utc>) -> Result<i64> {
        get(
            &self.query_one(
                "INSERT INTO journeys (shop_id, name, description, status, version, created_at, updated_at)
                 VALUES ($1, $2, $3, 'draft', 1, $4, $4) RETURNING id",
                &[&shop_id, &name, &description, &millis(at)],
            )?,
            0,
        )
    }

    fn insert_version(
        &self,
        shop_id: i64,
        journey_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<()> {
        // The version's shop is its journey's.
        let inserted = self.execute(
            "INSERT INTO journey_versions (shop_id, journey_id, version, definition, created_at, created_by)
             SELECT j.shop_id, j.id, $2::BIGINT, $3::TEXT, $4::BIGINT, $5::TEXT FROM journeys j WHERE j.shop_id = $6 AND j.id = $1",
            &[&journey_id, &version, &definition.to_string(), &millis(at), &created_by, &shop_id],
        )?;
        if inserted == 0 {
            // SQLite's foreign key refuses a version of no journey.
            return Err(kith_core::Error::Internal(anyhow::anyhow!("a version of journey {journey_id}, which does not exist")));
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
    ) -> Result<()> {
        self.execute(
            "UPDATE journeys SET name = $2, description = $3, version = $4, updated_at = $5 WHERE shop_id = $6 AND id = $1",
            &[&journey_id, &name, &description, &version, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn delete_journey(&self, shop_id: i64, journey_id: i64) -> Result<()> {
        self.execute("DELETE FROM journey_versions WHERE shop_id = $2 AND journey_id = $1", &[&journey_id, &shop_id])?;
        self.execute("DELETE FROM journeys WHERE shop_id = $2 AND id = $1", &[&journey_id, &shop_id])?;
        Ok(())
    }

    fn activate(&self, shop_id: i64, journey_id: i64, cursor: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journeys SET cursor = $2, activated_at = $3 WHERE shop_id = $4 AND id = $1",
            &[&journey_id, &cursor, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn exit_runs(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journey_runs SET status = 'exited', end_reason = 'the journey was archived', ended_at = $2, due_at = NULL
             WHERE shop_id = $3 AND journey_id = $1 AND status = 'active'",
            &[&journey_id, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn set_status(&self, shop_id: i64, journey_id: i64, status: JourneyStatus, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE journeys SET status = $2, updated_at = $3 WHERE shop_id = $4 AND id = $1",
            &[&journey_id, &status.as_str(), &millis(at), &shop_id],
        )?;
        Ok(())
    }
}
