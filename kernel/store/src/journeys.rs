//! Journeys: versioned definitions, their lifecycle, the runs of customers through
//! them as listings and statistics, dry runs and test sends.
//!
//! The engine that moves runs on — intake of events against triggers and goals, date
//! entries, steps and their actions, budgets, the savepoint per run — is the core's
//! (`kith_core::journeys`), over the journeys port that `ports/journeys.rs` implements;
//! [`Store::advance_journeys`] delegates to it. What stays here decides nothing the
//! engine decides: saving definitions (checked against the shop), moving a journey
//! through its lifecycle, and reading runs back.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use kith_core::journeys::{Definitions, RunState, message_context, refused_entry, started_at};
use kith_core::ports::{JourneyRow, JourneysRead};
use kith_domain::FieldError;
use kith_domain::journeys::{
    self, Arm, CouponFigures, Definition, DryRun, Journey, JourneyInput, JourneyRun, JourneyRunStatus, JourneyRunStep, JourneyStats,
    JourneyStatus, JourneyVersion, Lift, MessageFigures, StepKind, StepStats, TestSend, TriggerKind, VariantStats, VersionStats,
};
use kith_domain::messaging::{MessagingSettings, SendRequest};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::coupons::load_template;
use crate::customers::active_customer;
use crate::messages::enqueue_personal;
use crate::segments::check_node;
use crate::sql::Sql;
use crate::{Actor, Result, Store, StoreError, audit, events, from_ms, json_text, parse_json, settings, to_ms};

/// The customer's id and its merged ids: events of either are the customer's.
const SAME_CUSTOMER: &str = "SELECT id FROM customers WHERE id = ?1 OR merged_into = ?1";

fn source(journey_id: i64) -> String {
    kith_core::journeys::source(journey_id)
}

/// A journey's row, in the shop.
fn load_row(conn: &Connection, shop_id: i64, id: i64) -> Result<JourneyRow> {
    Sql(conn).journey_in_shop(shop_id, id)?.ok_or_else(|| StoreError::NotFound(format!("journey {id}")))
}

fn definition_value(conn: &Connection, journey_id: i64, version: i64) -> Result<Value> {
    let text: String = conn
        .prepare_cached("SELECT definition FROM journey_versions WHERE journey_id = ?1 AND version = ?2")?
        .query_row(params![journey_id, version], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("version {version} of journey {journey_id}")))?;
    Ok(parse_json(&text))
}

fn load_journey(conn: &Connection, shop_id: i64, id: i64) -> Result<Journey> {
    conn.prepare_cached(
        "SELECT j.id, j.name, j.description, j.status, j.version, v.definition, j.created_at, j.updated_at, j.activated_at,
           (SELECT COUNT(*) FROM journey_runs r WHERE r.journey_id = j.id AND r.status = 'active')
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
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("journey {id}")))
}

/// Validate a definition for saving in this shop: its segments and coupon templates exist here.
fn check(conn: &Connection, shop_id: i64, input: &JourneyInput, now: DateTime<Utc>) -> Result<Definition> {
    let d = journeys::check_input(input)?;
    if let TriggerKind::Segment(id) = d.trigger {
        let live: Option<i64> = conn
            .prepare_cached("SELECT id FROM segments WHERE id = ?1 AND shop_id = ?2 AND deleted_at IS NULL")?
            .query_row(params![id, shop_id], |r| r.get(0))
            .optional()?;
        if live.is_none() {
            return Err(FieldError::new("definition.trigger.segment", format!("no segment {id} in this shop")).into());
        }
    }
    if let Some(node) = &d.audience {
        check_node(conn, shop_id, node, "definition.trigger.customer", now)?;
    }
    for (id, step) in &d.steps {
        if let StepKind::BranchCustomer(node) = &step.kind {
            check_node(conn, shop_id, node, &format!("definition.steps.{id}.branch.customer"), now)?;
        }
    }
    for (step, template) in d.coupon_templates() {
        if let Err(StoreError::NotFound(_)) = load_template(conn, shop_id, template) {
            return Err(
                FieldError::new(format!("definition.steps.{step}.coupon"), format!("no coupon template {template} in this shop")).into()
            );
        }
    }
    Ok(d)
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

fn with_history(conn: &Connection, mut runs: Vec<JourneyRun>) -> Result<Vec<JourneyRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT step, kind, outcome, detail, message_id, coupon_id, at FROM journey_steps WHERE run_id = ?1 ORDER BY at, id",
    )?;
    for run in &mut runs {
        run.history = stmt
            .query_map([run.id], |r| {
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

/// A filter on the runs of a journey.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub customer_id: Option<i64>,
    pub status: Option<JourneyRunStatus>,
}

impl Store {
    pub fn create_journey(&self, shop_id: i64, input: &JourneyInput, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            check(tx, shop_id, input, now)?;
            let at = to_ms(now);
            tx.execute(
                "INSERT INTO journeys (shop_id, name, description, status, version, created_at, updated_at) VALUES (?1, ?2, ?3, 'draft', 1, ?4, ?4)",
                params![shop_id, input.name.trim(), input.description, at],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO journey_versions (journey_id, version, definition, created_at, created_by) VALUES (?1, 1, ?2, ?3, ?4)",
                params![id, json_text(&input.definition), at, actor.label],
            )?;
            audit::record(tx, Some(shop_id), actor, "journey.created", Some(&format!("journey:{id}")), json!({"version": 1}), now)?;
            load_journey(tx, shop_id, id)
        })
    }

    /// Replace a journey's name, description and definition. A changed
    /// definition is a new version: new entries follow it, running customers
    /// stay on the version they entered.
    pub fn update_journey(&self, shop_id: i64, id: i64, input: &JourneyInput, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            if row.status == JourneyStatus::Archived {
                return Err(StoreError::Conflict(format!("journey {id} is archived; copy it into a new journey instead")));
            }
            check(tx, shop_id, input, now)?;
            let at = to_ms(now);
            let current = definition_value(tx, id, row.version)?;
            let mut version = row.version;
            if current != input.definition {
                version += 1;
                tx.execute(
                    "INSERT INTO journey_versions (journey_id, version, definition, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, version, json_text(&input.definition), at, actor.label],
                )?;
            }
            tx.execute(
                "UPDATE journeys SET name = ?2, description = ?3, version = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, input.name.trim(), input.description, version, at],
            )?;
            audit::record(tx, Some(shop_id), actor, "journey.updated", Some(&format!("journey:{id}")), json!({"version": version}), now)?;
            load_journey(tx, shop_id, id)
        })
    }

    /// Delete a draft (it has no runs); a journey that ran is archived instead, so its statistics stay.
    pub fn delete_journey(&self, shop_id: i64, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            if row.status != JourneyStatus::Draft {
                return Err(StoreError::Conflict(format!(
                    "journey {id} is {}; only a draft can be deleted, archive it instead",
                    row.status.as_str()
                )));
            }
            tx.execute("DELETE FROM journey_versions WHERE journey_id = ?1", [id])?;
            tx.execute("DELETE FROM journeys WHERE id = ?1", [id])?;
            audit::record(tx, Some(shop_id), actor, "journey.deleted", Some(&format!("journey:{id}")), json!({"name": row.name}), now)?;
            Ok(())
        })
    }

    pub fn journey(&self, shop_id: i64, id: i64) -> Result<Journey> {
        self.read(|conn| load_journey(conn, shop_id, id))
    }

    pub fn journeys(&self, shop_id: i64) -> Result<Vec<Journey>> {
        self.read(|conn| {
            let ids: Vec<i64> = conn
                .prepare_cached("SELECT id FROM journeys WHERE shop_id = ?1 ORDER BY id")?
                .query_map([shop_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter().map(|id| load_journey(conn, shop_id, id)).collect()
        })
    }

    pub fn journey_versions(&self, shop_id: i64, id: i64) -> Result<Vec<JourneyVersion>> {
        self.read(|conn| {
            load_row(conn, shop_id, id)?;
            Ok(conn
                .prepare_cached(
                    "SELECT version, definition, created_at, created_by FROM journey_versions WHERE journey_id = ?1 ORDER BY version",
                )?
                .query_map([id], |r| {
                    Ok(JourneyVersion {
                        version: r.get(0)?,
                        definition: parse_json(&r.get::<_, String>(1)?),
                        created_at: from_ms(r.get(2)?),
                        created_by: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Move a journey through its lifecycle. Activating a draft starts at the
    /// head of the event log (no entries for the past); archiving ends the
    /// runs in progress.
    pub fn set_journey_status(&self, shop_id: i64, id: i64, to: JourneyStatus, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            row.status.transition(to).map_err(StoreError::Conflict)?;
            let at = to_ms(now);
            if to == JourneyStatus::Active {
                // The definition must still hold in the shop (a segment or template may be gone).
                let definition = definition_value(tx, id, row.version)?;
                let input = JourneyInput { name: row.name.clone(), description: None, definition };
                check(tx, shop_id, &input, now)?;
            }
            if row.status == JourneyStatus::Draft && to == JourneyStatus::Active {
                tx.execute(
                    "UPDATE journeys SET cursor = ?2, activated_at = ?3 WHERE id = ?1",
                    params![id, events::head(tx, shop_id)?, at],
                )?;
            }
            if to == JourneyStatus::Archived {
                tx.execute(
                    "UPDATE journey_runs SET status = 'exited', end_reason = 'the journey was archived', ended_at = ?2, due_at = NULL
                     WHERE journey_id = ?1 AND status = 'active'",
                    params![id, at],
                )?;
            }
            tx.execute("UPDATE journeys SET status = ?2, updated_at = ?3 WHERE id = ?1", params![id, to.as_str(), at])?;
            audit::record(
                tx,
                Some(shop_id),
                actor,
                &format!("journey.{}", to.as_str()),
                Some(&format!("journey:{id}")),
                json!({"from": row.status.as_str(), "version": row.version}),
                now,
            )?;
            load_journey(tx, shop_id, id)
        })
    }

    /// One pass of the journey engine: triggers and goals for new events, date
    /// entries, then up to `limit` due runs. Returns how much it did (0: idle).
    pub fn advance_journeys(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        Ok(kith_core::journeys::advance(self, now, limit)?)
    }

    /// A journey's runs, newest first, after run id `before` when given.
    pub fn journey_runs(&self, shop_id: i64, id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> Result<Vec<JourneyRun>> {
        self.read(|conn| {
            load_row(conn, shop_id, id)?;
            let runs = conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.id = r.journey_id
                     WHERE r.journey_id = ?1 AND r.shop_id = ?2 AND (?3 IS NULL OR r.customer_id = ?3) AND (?4 IS NULL OR r.status = ?4)
                       AND (?5 IS NULL OR r.id < ?5)
                     ORDER BY r.id DESC LIMIT ?6"
                ))?
                .query_map(
                    params![id, shop_id, filter.customer_id, filter.status.map(JourneyRunStatus::as_str), before, limit as i64],
                    row_to_run,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            with_history(conn, runs)
        })
    }

    /// A customer's runs of every journey, newest first, with what happened at each step.
    pub fn customer_runs(&self, shop_id: i64, customer_id: i64) -> Result<Vec<JourneyRun>> {
        self.read(|conn| {
            let exists: Option<i64> = conn
                .prepare_cached("SELECT id FROM customers WHERE id = ?1 AND shop_id = ?2")?
                .query_row(params![customer_id, shop_id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("customer {customer_id}")));
            }
            let runs = conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs r JOIN journeys j ON j.id = r.journey_id
                     WHERE r.shop_id = ?2 AND r.customer_id IN ({SAME_CUSTOMER}) ORDER BY r.id DESC LIMIT 200"
                ))?
                .query_map(params![customer_id, shop_id], row_to_run)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            with_history(conn, runs)
        })
    }

    /// Who would enter the journey now: a segment trigger's current members, a
    /// date trigger's customers of today, an event trigger's customers with
    /// such an event in the last 24 hours; after the entry rules.
    pub fn dry_run_journey(&self, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<DryRun> {
        self.read(|conn| {
            let row = load_row(conn, shop_id, id)?;
            let d = Definitions::default().get(&Sql(conn), id, row.version)?;
            let (candidates, basis): (Vec<i64>, String) = match &d.trigger {
                TriggerKind::Segment(segment) => (
                    conn.prepare_cached(
                        "SELECT m.customer_id FROM segment_members m JOIN segments s ON s.id = m.segment_id
                         WHERE m.segment_id = ?1 AND s.shop_id = ?2 ORDER BY m.customer_id",
                    )?
                    .query_map(params![segment, shop_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
                    format!("members of segment {segment} now"),
                ),
                TriggerKind::Date { field, offset_days, .. } => {
                    let today = now.with_timezone(&kith_core::journeys::zone(&Sql(conn), shop_id)?).date_naive();
                    let anniversary = journeys::entry_anniversary(today, *offset_days);
                    (
                        Sql(conn).dated_customers(shop_id, field, &[anniversary])?,
                        format!("customers whose date falls on {}", anniversary.format("%m-%d")),
                    )
                }
                TriggerKind::Event { event, filters } => {
                    let since = to_ms(now) - 86_400_000;
                    let rows: Vec<(i64, String)> = conn
                        .prepare_cached(
                            "SELECT customer_id, payload FROM events WHERE shop_id = ?1 AND type = ?2 AND created_at >= ?3
                               AND customer_id IS NOT NULL ORDER BY seq DESC LIMIT 100000",
                        )?
                        .query_map(params![shop_id, event, since], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    let mut ids: Vec<i64> =
                        rows.into_iter().filter(|(_, p)| journeys::all_hold(filters, &parse_json(p))).map(|(c, _)| c).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    (ids, format!("customers with a matching {event} in the last 24 hours"))
                }
            };
            let mut count = 0;
            let mut holdout = 0;
            let mut sample = Vec::new();
            for customer in candidates {
                let Some(customer) = active_customer(conn, shop_id, customer)? else { continue };
                if refused_entry(&Sql(conn), &row, &d, customer, now)?.is_some() {
                    continue;
                }
                count += 1;
                if journeys::in_holdout(id, customer, d.holdout_percent) {
                    holdout += 1;
                }
                if sample.len() < 20 {
                    sample.push(customer);
                }
            }
            Ok(DryRun { count, holdout, sample, basis })
        })
    }

    /// Queue the journey's messages for one customer now (a proof): every send
    /// step, with its variables filled and a sample coupon; no waits, no
    /// coupons, not counted in the statistics.
    pub fn test_send_journey(&self, shop_id: i64, id: i64, customer_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<TestSend> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            let d = Definitions::default().get(&Sql(tx), id, row.version)?;
            let customer = active_customer(tx, shop_id, customer_id)?
                .ok_or_else(|| StoreError::Invalid(FieldError::new("customer_id", "no such customer in this shop")))?;
            let zone = kith_core::journeys::zone(&Sql(tx), shop_id)?;
            let run = RunState {
                id: 0,
                shop_id,
                journey_id: id,
                journey: row.name.clone(),
                version: row.version,
                customer_id: customer,
                stored_customer_id: customer,
                entry_seq: 0,
                holdout: false,
                variant: None,
                step: String::new(),
                context: json!({"trigger": {}, "coupon": {"code": "TESTCOUPON0", "face_value": 0,
                    "expires_at_ms": to_ms(now + Duration::days(7))}}),
            };
            let ctx = message_context(&Sql(tx), &run, zone)?;
            let test = uuid::Uuid::new_v4();
            let mut messages = Vec::new();
            for (step_id, step) in &d.steps {
                let StepKind::Send(send) = &step.kind else { continue };
                let request = SendRequest {
                    customer_id: customer,
                    channel: send.channel.clone(),
                    template: send.template.clone(),
                    variables: send.variables.iter().map(|(k, v)| (k.clone(), journeys::render(v, &ctx))).collect(),
                    idempotency_key: format!("journey-test:{test}:{step_id}"),
                };
                request.validate().map_err(|e| e.within(&format!("definition.steps.{step_id}.send")))?;
                messages.push(enqueue_personal(tx, shop_id, &request, &send.personal_variables(), &format!("journey-test:{id}"), now)?.0);
            }
            if messages.is_empty() {
                return Err(StoreError::Conflict(format!("journey {id} has no send step to test")));
            }
            audit::record(
                tx,
                Some(shop_id),
                actor,
                "journey.test_send",
                Some(&format!("journey:{id}")),
                json!({"customer_id": customer, "messages": messages.len()}),
                now,
            )?;
            Ok(TestSend { customer_id: customer, messages })
        })
    }

    /// A journey's statistics (see [`JourneyStats`]).
    pub fn journey_stats(&self, shop_id: i64, id: i64) -> Result<JourneyStats> {
        self.read(|conn| {
            load_row(conn, shop_id, id)?;
            let count = |status: &str| -> Result<i64> {
                Ok(conn
                    .prepare_cached("SELECT COUNT(*) FROM journey_runs WHERE journey_id = ?1 AND status = ?2")?
                    .query_row(params![id, status], |r| r.get(0))?)
            };
            let arm = |holdout: bool| -> Result<Arm> {
                let (entered, converted, revenue) = conn
                    .prepare_cached(
                        "SELECT COUNT(*), COUNT(converted_at), COALESCE(SUM(revenue), 0) FROM journey_runs WHERE journey_id = ?1 AND holdout = ?2",
                    )?
                    .query_row(params![id, holdout], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(Arm::new(entered, converted, revenue))
            };
            let treated = arm(false)?;
            let holdout = arm(true)?;
            let lift = match (treated.rate, holdout.rate) {
                (Some(t), Some(h)) => Some(Lift {
                    absolute: t - h,
                    relative: (h > 0.0).then(|| (t - h) / h),
                    p_value: journeys::two_proportion_p_value(treated.converted, treated.entered, holdout.converted, holdout.entered),
                }),
                _ => None,
            };
            let settings: MessagingSettings = settings::load(conn, shop_id, settings::MESSAGING)?;
            let mut messages = MessageFigures::default();
            let by_status: Vec<(String, String, i64)> = conn
                .prepare_cached(
                    "SELECT m.channel, m.status, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
                       JOIN messages m ON m.public_id = s.message_id WHERE r.journey_id = ?1 GROUP BY m.channel, m.status",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (channel, status, n) in by_status {
                messages.add(&status, n, settings.policy(&channel).cost_per_message);
            }
            let coupons = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0), COUNT(c.redeemed_at),
                       COALESCE(SUM(CASE WHEN c.redeemed_at IS NOT NULL THEN t.face_value END), 0)
                     FROM coupons c JOIN coupon_templates t ON t.id = c.template_id WHERE c.shop_id = ?1 AND c.source = ?2",
                )?
                .query_row(params![shop_id, source(id)], |r| {
                    Ok(CouponFigures { issued: r.get(0)?, issued_value: r.get(1)?, redeemed: r.get(2)?, redeemed_value: r.get(3)? })
                })?;
            let cost = messages.cost + coupons.redeemed_value;
            let versions = conn
                .prepare_cached(
                    "SELECT version, COUNT(*), COALESCE(SUM(status = 'active'), 0), COUNT(converted_at),
                       COALESCE(SUM(CASE WHEN holdout = 0 THEN revenue END), 0)
                     FROM journey_runs WHERE journey_id = ?1 GROUP BY version ORDER BY version",
                )?
                .query_map([id], |r| {
                    Ok(VersionStats { version: r.get(0)?, entered: r.get(1)?, in_progress: r.get(2)?, converted: r.get(3)?, revenue: r.get(4)? })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut steps: BTreeMap<(i64, String), StepStats> = BTreeMap::new();
            let rows: Vec<(i64, String, String, String, String, i64)> = conn
                .prepare_cached(
                    // A wait whose run ended before it did (a goal reached, an exit) is no longer
                    // waiting: it counts under how the run ended.
                    "SELECT r.version, s.step, s.kind,
                            CASE WHEN s.outcome = 'waiting' AND r.status <> 'active' THEN r.status ELSE s.outcome END AS outcome,
                            CASE WHEN s.outcome = 'skipped' THEN s.detail ELSE '' END, COUNT(*)
                     FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id WHERE r.journey_id = ?1
                     GROUP BY r.version, s.step, s.kind, 4, 5",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (version, step, kind, outcome, reason, n) in rows {
                let entry = steps.entry((version, step.clone())).or_insert_with(|| StepStats {
                    version,
                    step,
                    kind,
                    outcomes: BTreeMap::new(),
                    skipped: BTreeMap::new(),
                    messages: None,
                });
                *entry.outcomes.entry(outcome.clone()).or_default() += n;
                if outcome == "skipped" {
                    *entry.skipped.entry(reason).or_default() += n;
                }
            }
            let sent: Vec<(i64, String, String, String, i64)> = conn
                .prepare_cached(
                    "SELECT r.version, s.step, m.channel, m.status, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
                       JOIN messages m ON m.public_id = s.message_id WHERE r.journey_id = ?1 GROUP BY 1, 2, 3, 4",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (version, step, channel, status, n) in sent {
                if let Some(entry) = steps.get_mut(&(version, step)) {
                    entry.messages.get_or_insert_with(MessageFigures::default).add(&status, n, settings.policy(&channel).cost_per_message);
                }
            }
            // Variants: each run's `step:variant` labels, treated runs only.
            let labelled: Vec<(String, bool, i64)> = conn
                .prepare_cached(
                    "SELECT variant, converted_at IS NOT NULL, COALESCE(revenue, 0) FROM journey_runs
                     WHERE journey_id = ?1 AND holdout = 0 AND variant IS NOT NULL",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut arms: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
            for (labels, converted, revenue) in labelled {
                for label in labels.split(',') {
                    let a = arms.entry(label.to_owned()).or_default();
                    a.0 += 1;
                    a.1 += i64::from(converted);
                    a.2 += if converted { revenue } else { 0 };
                }
            }
            let variants = variant_stats(&arms);
            Ok(JourneyStats {
                journey_id: id,
                entered: treated.entered + holdout.entered,
                in_progress: count("active")?,
                completed: count("completed")?,
                exited: count("exited")?,
                failed: count("failed")?,
                converted: treated.converted + holdout.converted,
                attributed_revenue: treated.revenue,
                roi: (cost > 0).then(|| treated.revenue as f64 / cost as f64),
                treated,
                holdout,
                lift,
                messages,
                coupons,
                cost,
                versions,
                steps: steps.into_values().collect(),
                variants,
            })
        })
    }
}

/// Each variant against the first variant (by name order) of the same split step.
fn variant_stats(arms: &BTreeMap<String, (i64, i64, i64)>) -> Vec<VariantStats> {
    let mut out = Vec::new();
    let mut control: Option<(String, i64, i64)> = None;
    for (label, (entered, converted, revenue)) in arms {
        let step = label.split(':').next().unwrap_or_default().to_owned();
        let p_value = match &control {
            Some((s, n, x)) if *s == step => journeys::two_proportion_p_value(*converted, *entered, *x, *n),
            _ => {
                control = Some((step, *entered, *converted));
                None
            }
        };
        out.push(VariantStats { variant: label.clone(), arm: Arm::new(*entered, *converted, *revenue), p_value });
    }
    out
}
