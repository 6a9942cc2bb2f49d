//! Journeys: versioned definitions, the runs of customers through them, and
//! the engine that moves runs on.
//!
//! Everything a run does happens in the store's write transaction that
//! records it: entering, each step's outcome, and its action (a message put
//! in the outbox, a coupon issued, a tag, points). A crash before the commit
//! leaves no trace of the step, and the step runs again after the restart; a
//! crash after it leaves the step done. Each action also carries a key made
//! of its run and step (`journey:<run>:<step>` for messages, `run:<run>:<step>`
//! for coupons and points), and `(run, step)` is unique in `journey_steps`,
//! so no action is ever taken twice. Messages then go out through the outbox,
//! which applies the shop's consent, frequency caps and quiet hours.
//!
//! [`Store::advance_journeys`] is one pass of the engine: new events are
//! matched against triggers and goals (each journey has its own cursor on the
//! shop's event log), date triggers enter the day's customers, and due runs
//! are claimed in batches and executed until they wait or end.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use kith_domain::FieldError;
use kith_domain::journeys::{
    self, Arm, CouponFigures, DateField, Definition, DryRun, Journey, JourneyInput, JourneyRun, JourneyRunStatus, JourneyRunStep,
    JourneyStats, JourneyStatus, JourneyVersion, Lift, MessageFigures, Step, StepKind, StepStats, TestSend, TriggerKind, VariantStats,
    VersionStats,
};
use kith_domain::loyalty::LedgerKind;
use kith_domain::messaging::{MessagingSettings, SendRequest};
use kith_core::tags::{self, Added, Removable, Source, TagRemoval, TagWrite};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use crate::coupons::load_template;
use crate::customers::active_customer;
use crate::messages::enqueue_personal;
use crate::ports::Sql;
use crate::segments::{anniversaries, check_node, customer_matches};
use crate::{Actor, Result, Store, StoreError, audit, events, from_ms, json_text, loyalty, parse_json, savepoint, settings, shops, to_ms};

/// Events read per journey per pass.
const INTAKE_BATCH: usize = 1000;
/// Steps one run may take in one go (the graph is acyclic and has at most 100).
const MAX_HOPS: usize = journeys::MAX_STEPS + 1;
/// How many missed days a date trigger catches up after downtime.
const DATE_CATCH_UP_DAYS: i64 = 7;

fn source(journey_id: i64) -> String {
    format!("journey:{journey_id}")
}

/// A journey's row, as the engine needs it.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    shop_id: i64,
    name: String,
    status: JourneyStatus,
    version: i64,
    cursor: i64,
    date_through: Option<String>,
}

const ROW_COLUMNS: &str = "j.id, j.shop_id, j.name, j.status, j.version, j.cursor, j.date_through";

fn load_row(conn: &Connection, shop_id: i64, id: i64) -> Result<Row> {
    conn.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM journeys j WHERE j.id = ?1 AND j.shop_id = ?2"))?
        .query_row(params![id, shop_id], row_of)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("journey {id}")))
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        shop_id: r.get(1)?,
        name: r.get(2)?,
        status: JourneyStatus::parse(&r.get::<_, String>(3)?).unwrap_or(JourneyStatus::Paused),
        version: r.get(4)?,
        cursor: r.get(5)?,
        date_through: r.get(6)?,
    })
}

fn definition_value(conn: &Connection, journey_id: i64, version: i64) -> Result<Value> {
    let text: String = conn
        .prepare_cached("SELECT definition FROM journey_versions WHERE journey_id = ?1 AND version = ?2")?
        .query_row(params![journey_id, version], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("version {version} of journey {journey_id}")))?;
    Ok(parse_json(&text))
}

/// Parsed definitions by (journey, version), for one pass of the engine.
#[derive(Default)]
struct Definitions(HashMap<(i64, i64), std::rc::Rc<Definition>>);

impl Definitions {
    fn get(&mut self, conn: &Connection, journey_id: i64, version: i64) -> Result<std::rc::Rc<Definition>> {
        if let Some(d) = self.0.get(&(journey_id, version)) {
            return Ok(d.clone());
        }
        let value = definition_value(conn, journey_id, version)?;
        let parsed = journeys::parse(&value).map_err(|e| anyhow::anyhow!("journey {journey_id} version {version}: {e}"))?;
        let d = std::rc::Rc::new(parsed);
        self.0.insert((journey_id, version), d.clone());
        Ok(d)
    }
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

/// The customer's id and its merged ids: events of either are the customer's.
const SAME_CUSTOMER: &str = "SELECT id FROM customers WHERE id = ?1 OR merged_into = ?1";

/// Runs of a customer (and of the customers merged into them) in a journey.
fn runs_of(tx: &Connection, journey_id: i64, customer_id: i64) -> Result<(i64, i64, Option<i64>)> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT COUNT(*), COALESCE(SUM(status = 'active'), 0), MAX(entered_at) FROM journey_runs
             WHERE journey_id = ?2 AND customer_id IN ({SAME_CUSTOMER})"
        ))?
        .query_row(params![customer_id, journey_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)
}

/// Why a customer may not enter now, or `None` when they may.
fn refused_entry(tx: &Connection, row: &Row, d: &Definition, customer_id: i64, now: DateTime<Utc>) -> Result<Option<String>> {
    let (runs, active, last) = runs_of(tx, row.id, customer_id)?;
    if runs > 0 && !d.entry.reentry {
        return Ok(Some("already entered; the journey allows no re-entry".into()));
    }
    if active >= i64::from(d.entry.max_concurrent.max(1)) {
        return Ok(Some(format!("{active} run(s) in progress, the most at once")));
    }
    if let Some(last) = last
        && to_ms(now) - last < i64::from(d.entry.min_interval_days) * 86_400_000
    {
        return Ok(Some(format!("entered less than {} day(s) ago", d.entry.min_interval_days)));
    }
    if let Some(node) = &d.audience
        && !customer_matches(tx, row.shop_id, node, customer_id, now)?
    {
        return Ok(Some("does not meet the trigger's customer condition".into()));
    }
    Ok(None)
}

/// Enter a customer; `None` when the rules refuse or the entry key was used.
#[allow(clippy::too_many_arguments)]
fn enter(
    tx: &Connection,
    row: &Row,
    d: &Definition,
    customer_id: i64,
    entry_key: &str,
    entry_seq: i64,
    trigger: Value,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let Some(customer_id) = active_customer(tx, row.shop_id, customer_id)? else { return Ok(None) };
    if refused_entry(tx, row, d, customer_id, now)?.is_some() {
        return Ok(None);
    }
    let at = to_ms(now);
    let holdout = journeys::in_holdout(row.id, customer_id, d.holdout_percent);
    let goal_until = d.goal.as_ref().map(|g| at + i64::from(g.within_days) * 86_400_000);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO journey_runs (shop_id, journey_id, version, customer_id, entry_key, entry_seq, status, holdout, step, due_at,
               context, entered_at, goal_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9, ?10, ?9, ?11)
             ON CONFLICT (journey_id, customer_id, entry_key) DO NOTHING",
        )?
        .execute(params![
            row.shop_id,
            row.id,
            row.version,
            customer_id,
            entry_key,
            entry_seq,
            holdout,
            d.start,
            at,
            json_text(&json!({"trigger": trigger})),
            goal_until
        ])?;
    Ok((inserted == 1).then(|| tx.last_insert_rowid()))
}

/// The amount a goal event brings (its `amount`, else 0).
fn revenue_of(payload: &Value) -> i64 {
    payload.get("amount").and_then(Value::as_i64).unwrap_or(0)
}

/// When a goal event happened in the business's terms: an order's `paid_at`, a behaviour's
/// `occurred_at`, else when it was logged. An order imported today but paid last year
/// happened last year.
fn happened_at(payload: &Value, logged_at: i64) -> i64 {
    ["paid_at", "occurred_at"]
        .iter()
        .find_map(|field| payload.get(*field).and_then(Value::as_str))
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map_or(logged_at, |at| at.timestamp_millis())
}

/// When what started a run happened: its trigger event's own time (from the run's context),
/// else its entry.
fn started_at(context: &str, entered_at: i64) -> i64 {
    parse_json(context).get("trigger").map_or(entered_at, |trigger| happened_at(trigger, entered_at))
}

/// A goal event of a customer, which happened at `at`, converts their runs that were entered
/// before it — in the log, and in time: the goal happened no earlier than what started the run
/// (the trigger event's own time, else the entry), so an order paid before the customer entered
/// converts nothing however late it is imported, while an order paid after a cart converts the
/// cart's run even when both arrive in one late sync — and whose goal window it falls in.
fn convert(tx: &Connection, journey_id: i64, customer_id: i64, seq: i64, payload: &Value, at: i64, now: DateTime<Utc>) -> Result<usize> {
    let candidates: Vec<(i64, String, i64)> = tx
        .prepare_cached(&format!(
            "SELECT id, context, entered_at FROM journey_runs
             WHERE journey_id = ?2 AND customer_id IN ({SAME_CUSTOMER}) AND converted_at IS NULL AND entry_seq < ?3
               AND goal_until >= ?4 AND status != 'failed'"
        ))?
        .query_map(params![customer_id, journey_id, seq, at], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut converted = 0;
    for (run, context, entered_at) in candidates {
        if started_at(&context, entered_at) > at {
            continue;
        }
        converted += tx
            .prepare_cached(
                "UPDATE journey_runs SET converted_at = ?2, revenue = ?3,
                   ended_at = CASE WHEN status = 'active' THEN ?4 ELSE ended_at END,
                   end_reason = CASE WHEN status = 'active' THEN 'goal reached' ELSE end_reason END,
                   due_at = CASE WHEN status = 'active' THEN NULL ELSE due_at END,
                   status = CASE WHEN status = 'active' THEN 'converted' ELSE status END
                 WHERE id = ?1",
            )?
            .execute(params![run, at, revenue_of(payload), to_ms(now)])?;
    }
    Ok(converted)
}

/// Match new events of a journey's shop against its trigger and goal; move its cursor.
fn intake(tx: &Connection, row: &Row, defs: &mut Definitions, now: DateTime<Utc>) -> Result<usize> {
    let d = defs.get(tx, row.id, row.version)?;
    let events: Vec<(i64, String, Option<i64>, String, i64)> = tx
        .prepare_cached(
            "SELECT seq, type, customer_id, payload, created_at FROM events WHERE shop_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![row.shop_id, row.cursor, INTAKE_BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let Some(last) = events.last().map(|e| e.0) else { return Ok(0) };
    let mut entered = 0;
    for (seq, kind, customer, payload, logged_at) in &events {
        let Some(customer) = *customer else { continue };
        let goal = d.goal.as_ref().filter(|g| &g.event == kind);
        let trigger = match &d.trigger {
            TriggerKind::Event { event, .. } => event == kind,
            TriggerKind::Segment(_) => kind == "segment.entered",
            TriggerKind::Date { .. } => false,
        };
        if goal.is_none() && !trigger {
            continue;
        }
        let payload = parse_json(payload);
        if let Some(goal) = goal
            && journeys::all_hold(&goal.filters, &payload)
        {
            // An event logged before a merge names the merged customer; their runs are the survivor's now.
            let survivor = active_customer(tx, row.shop_id, customer)?.unwrap_or(customer);
            convert(tx, row.id, survivor, *seq, &payload, happened_at(&payload, *logged_at), now)?;
        }
        if !trigger || row.status != JourneyStatus::Active {
            continue;
        }
        let fits = match &d.trigger {
            TriggerKind::Event { filters, .. } => journeys::all_hold(filters, &payload),
            TriggerKind::Segment(id) => payload.get("segment_id").and_then(Value::as_i64) == Some(*id),
            TriggerKind::Date { .. } => false,
        };
        if fits && enter(tx, row, &d, customer, &format!("event:{seq}"), *seq, payload, now)?.is_some() {
            entered += 1;
        }
    }
    tx.prepare_cached("UPDATE journeys SET cursor = ?2 WHERE id = ?1")?.execute(params![row.id, last])?;
    Ok(entered.max(1))
}

/// The customers whose date field falls on one of `days` (as anniversaries).
fn dated_customers(conn: &Connection, shop_id: i64, field: &DateField, days: &[NaiveDate]) -> Result<Vec<i64>> {
    // The attribute's JSON path is a bound value like everything else.
    let path = match field {
        DateField::Birthday => None,
        DateField::Attribute(name) => Some(format!("$.\"{name}\"")),
    };
    let list = serde_json::to_string(&anniversaries(days)).map_err(anyhow::Error::from)?;
    Ok(conn
        .prepare_cached(
            "SELECT c.id FROM customers c WHERE c.shop_id = ?1 AND c.merged_into IS NULL
               AND substr(CASE WHEN ?3 IS NULL THEN c.birthday ELSE json_extract(c.attributes, ?3) END, 6, 5)
                   IN (SELECT value FROM json_each(?2))
             ORDER BY c.id",
        )?
        .query_map(params![shop_id, list, path], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// The shop days a date trigger has yet to enter, up to today (today only once its time has come).
fn days_due(row: &Row, zone: Tz, at: chrono::NaiveTime, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let local = now.with_timezone(&zone);
    let today = local.date_naive();
    let first = row
        .date_through
        .as_deref()
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .map_or(today, |d| d + Duration::days(1))
        .max(today - Duration::days(DATE_CATCH_UP_DAYS));
    let mut days = Vec::new();
    let mut day = first;
    while day < today || (day == today && local.time() >= at) {
        days.push(day);
        day += Duration::days(1);
    }
    days
}

/// Enter the customers of a date trigger for the days due.
fn date_entries(tx: &Connection, row: &Row, defs: &mut Definitions, now: DateTime<Utc>) -> Result<usize> {
    let d = defs.get(tx, row.id, row.version)?;
    let TriggerKind::Date { field, offset_days, at } = &d.trigger else { return Ok(0) };
    let zone = shops::zone(tx, row.shop_id)?;
    let days = days_due(row, zone, *at, now);
    let Some(last) = days.last() else { return Ok(0) };
    let head = events::head(tx, row.shop_id)?;
    let mut entered = 0;
    for day in &days {
        let anniversary = journeys::entry_anniversary(*day, *offset_days);
        for customer in dated_customers(tx, row.shop_id, field, &[anniversary])? {
            let trigger = json!({"date": anniversary.format("%m-%d").to_string(), "day": day.to_string()});
            if enter(tx, row, &d, customer, &format!("date:{day}"), head, trigger, now)?.is_some() {
                entered += 1;
            }
        }
    }
    tx.prepare_cached("UPDATE journeys SET date_through = ?2 WHERE id = ?1")?.execute(params![row.id, last.to_string()])?;
    Ok(entered.max(1))
}

/// Runs of active journeys whose time has come, the most overdue first.
fn due_journey_runs(conn: &Connection, now: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached(
            // Runs first, through the due index in its order, so LIMIT stops the walk early: joined
            // from the journeys (the bundled SQLite's choice with one active journey) it read and
            // sorted every active run of the journey, 250 ms a pass at a million runs.
            "SELECT r.id FROM journey_runs r CROSS JOIN journeys j ON j.id = r.journey_id
             WHERE r.status = 'active' AND r.due_at <= ?1 AND j.status = 'active' ORDER BY r.due_at, r.id LIMIT ?2",
        )?
        .query_map(params![to_ms(now), limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// A run being executed.
struct RunState {
    id: i64,
    shop_id: i64,
    journey_id: i64,
    journey: String,
    version: i64,
    customer_id: i64,
    /// The run's customer in the database; `customer_id` differs once they were merged into another.
    stored_customer_id: i64,
    entry_seq: i64,
    holdout: bool,
    variant: Option<String>,
    step: String,
    context: Value,
}

/// What a step leads to.
enum Next {
    Step(Option<String>),
    Wait(i64),
    Exit(String),
}

/// Record a step's outcome (a wait's `waiting` is replaced by `waited`).
#[allow(clippy::too_many_arguments)]
fn log_step(
    tx: &Connection,
    run: &RunState,
    kind: &str,
    outcome: &str,
    detail: &str,
    message_id: Option<&str>,
    coupon_id: Option<i64>,
    at: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO journey_steps (run_id, step, kind, outcome, detail, message_id, coupon_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (run_id, step) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, at = excluded.at",
    )?
    .execute(params![run.id, run.step, kind, outcome, detail, message_id, coupon_id, at])?;
    Ok(())
}

/// End the run's wait at its current step if it was waiting there; false if it was not.
fn end_wait(tx: &Connection, run: &RunState, now: DateTime<Utc>) -> Result<bool> {
    let ended = tx
        .prepare_cached(
            "UPDATE journey_steps SET outcome = 'waited', detail = ?3, at = ?4 WHERE run_id = ?1 AND step = ?2 AND outcome = 'waiting'",
        )?
        .execute(params![run.id, run.step, format!("until {}", now.to_rfc3339()), to_ms(now)])?;
    Ok(ended > 0)
}

/// The journey's messages that cost or may cost (not suppressed, not failed), with their channels.
fn messages_spent(tx: &Connection, journey_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(tx
        .prepare_cached(
            "SELECT m.channel, COUNT(*) FROM journey_steps s JOIN journey_runs r ON r.id = s.run_id
               JOIN messages m ON m.public_id = s.message_id
             WHERE r.journey_id = ?1 AND m.status IN ('queued', 'sending', 'sent', 'delivered') GROUP BY m.channel",
        )?
        .query_map([journey_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

fn message_cost(settings: &MessagingSettings, spent: &[(String, i64)]) -> i64 {
    spent.iter().map(|(channel, n)| n * settings.policy(channel).cost_per_message).sum()
}

/// Why the journey's budget refuses one more message on `channel`, if it does.
fn message_budget(tx: &Connection, run: &RunState, d: &Definition, channel: &str) -> Result<Option<String>> {
    if d.budget.messages.is_none() && d.budget.message_cost.is_none() {
        return Ok(None);
    }
    let spent = messages_spent(tx, run.journey_id)?;
    let count: i64 = spent.iter().map(|(_, n)| n).sum();
    if let Some(max) = d.budget.messages
        && count >= max
    {
        return Ok(Some(format!("budget: the journey's {max} message(s) are spent")));
    }
    if let Some(max) = d.budget.message_cost {
        let settings: MessagingSettings = settings::load(tx, run.shop_id, settings::MESSAGING)?;
        let cost = message_cost(&settings, &spent);
        let next = settings.policy(channel).cost_per_message;
        if cost + next > max {
            return Ok(Some(format!("budget: message cost {cost} + {next} would pass the journey's {max}")));
        }
    }
    Ok(None)
}

/// Why the journey's budget refuses a coupon of `face_value`, if it does.
fn coupon_budget(tx: &Connection, run: &RunState, d: &Definition, face_value: i64) -> Result<Option<String>> {
    if d.budget.coupons.is_none() && d.budget.coupon_value.is_none() {
        return Ok(None);
    }
    let (count, value): (i64, i64) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(t.face_value), 0) FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
             WHERE c.shop_id = ?1 AND c.source = ?2",
        )?
        .query_row(params![run.shop_id, source(run.journey_id)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if let Some(max) = d.budget.coupons
        && count >= max
    {
        return Ok(Some(format!("budget: the journey's {max} coupon(s) are issued")));
    }
    if let Some(max) = d.budget.coupon_value
        && value + face_value > max
    {
        return Ok(Some(format!("budget: coupon value {value} + {face_value} would pass the journey's {max}")));
    }
    Ok(None)
}

/// The values a message's placeholders read.
fn message_context(tx: &Connection, run: &RunState, zone: Tz) -> Result<Value> {
    let name: Option<String> =
        tx.prepare_cached("SELECT name FROM customers WHERE id = ?1")?.query_row([run.customer_id], |r| r.get(0)).optional()?.flatten();
    let mut ctx = run.context.clone();
    if let Some(expires) = ctx.pointer("/coupon/expires_at_ms").and_then(Value::as_i64) {
        let local = from_ms(expires).with_timezone(&zone).format("%Y-%m-%d").to_string();
        ctx["coupon"]["expires_at"] = Value::String(local);
    }
    ctx["customer"] = json!({"id": run.customer_id, "name": name});
    ctx["journey"] = json!({"id": run.journey_id, "name": run.journey});
    Ok(ctx)
}

/// Outcome of an action: done with what it made, or skipped with the reason.
enum Acted {
    Done { detail: String, message: Option<String>, coupon: Option<i64> },
    Skipped(String),
}

/// Refusals the shop's rules give (a limit, a bad value) skip the action; other errors fail the run.
fn refused(err: StoreError) -> Result<Acted> {
    match err {
        StoreError::Conflict(reason) => Ok(Acted::Skipped(reason)),
        StoreError::Invalid(e) => Ok(Acted::Skipped(e.to_string())),
        StoreError::NotFound(what) => Ok(Acted::Skipped(format!("not found: {what}"))),
        other => Err(other),
    }
}

fn act(tx: &Connection, run: &mut RunState, d: &Definition, kind: &StepKind, zone: Tz, now: DateTime<Utc>) -> Result<Acted> {
    let at = to_ms(now);
    let src = source(run.journey_id);
    let key = format!("run:{}:{}", run.id, run.step);
    match kind {
        StepKind::Send(send) => {
            if let Some(reason) = message_budget(tx, run, d, &send.channel)? {
                return Ok(Acted::Skipped(reason));
            }
            let ctx = message_context(tx, run, zone)?;
            let request = SendRequest {
                customer_id: run.customer_id,
                channel: send.channel.clone(),
                template: send.template.clone(),
                variables: send.variables.iter().map(|(k, v)| (k.clone(), journeys::render(v, &ctx))).collect(),
                idempotency_key: format!("journey:{}:{}", run.id, run.step),
            };
            if let Err(e) = request.validate() {
                return Ok(Acted::Skipped(e.to_string()));
            }
            match enqueue_personal(tx, run.shop_id, &request, &send.personal_variables(), &src, now) {
                Ok((message, _)) => Ok(Acted::Done {
                    detail: format!("queued {} {} for the outbox", send.channel, send.template),
                    message: Some(message.id),
                    coupon: None,
                }),
                Err(e) => refused(e),
            }
        }
        StepKind::Coupon(coupon) => {
            let amount = run.context.pointer("/trigger/amount").and_then(Value::as_i64);
            let template_id = coupon.template_for(amount);
            let template = match load_template(tx, run.shop_id, template_id) {
                Ok(t) => t,
                Err(e) => return refused(e),
            };
            if let Some(reason) = coupon_budget(tx, run, d, template.face_value)? {
                return Ok(Acted::Skipped(reason));
            }
            match kith_core::coupons::issue(&crate::ports::Sql(tx), run.shop_id, template_id, run.customer_id, &src, &key, now)
                .map_err(StoreError::from)
            {
                Ok((c, _)) => {
                    run.context["coupon"] = json!({"id": c.id, "code": c.code, "face_value": c.face_value,
                        "expires_at_ms": to_ms(c.expires_at), "template_id": template_id});
                    Ok(Acted::Done {
                        detail: format!("issued coupon {} of template {template_id} ({})", c.code, c.face_value),
                        message: None,
                        coupon: Some(c.id),
                    })
                }
                Err(e) => refused(e),
            }
        }
        StepKind::Tag(tag) => {
            if let Some(name) = &tag.add {
                let reason = format!("journey {}", run.journey);
                let write = TagWrite {
                    shop_id: run.shop_id,
                    customer_id: run.customer_id,
                    tag: name,
                    source: Source::Journey(run.journey_id),
                    reason: Some(&reason),
                    at: now,
                    chain: 1,
                };
                // A tag this journey set before (an earlier run) is what the step wants: done, without a second event.
                let detail = match tags::add(&Sql(tx), &write)? {
                    Added::New => format!("added tag {name}"),
                    Added::Reworded | Added::Unchanged => format!("tag {name} was already set by this journey"),
                };
                Ok(Acted::Done { detail, message: None, coupon: None })
            } else {
                let name = tag.remove.clone().unwrap_or_default();
                let reason = format!("journey {}", run.journey);
                let removal = TagRemoval {
                    shop_id: run.shop_id,
                    customer_id: run.customer_id,
                    tag: &name,
                    which: Removable::ManualOrJourney,
                    reason: Some(&reason),
                    at: now,
                    chain: 1,
                };
                if tags::remove(&Sql(tx), &removal)? == 0 {
                    return Ok(Acted::Skipped(format!("the customer has no tag {name} set by hand or by a journey")));
                }
                Ok(Acted::Done { detail: format!("removed tag {name}"), message: None, coupon: None })
            }
        }
        StepKind::Points(points) => {
            let reason = points.reason.clone().unwrap_or_else(|| format!("journey {}", run.journey));
            let posted = loyalty::post(
                tx,
                &loyalty::Post {
                    shop_id: run.shop_id,
                    customer_id: run.customer_id,
                    kind: LedgerKind::Earn,
                    points: points.award,
                    source: &src,
                    source_key: &key,
                    reason: &reason,
                    order_id: None,
                    expires_at: points.expires_in_days.map(|d| at + i64::from(d) * 86_400_000),
                    at,
                },
            )?;
            Ok(match posted {
                Some(_) => Acted::Done { detail: format!("awarded {} points", points.award), message: None, coupon: None },
                None => Acted::Skipped("these points were already awarded".into()),
            })
        }
        _ => Ok(Acted::Skipped("not an action".into())),
    }
}

/// Whether the customer had an event of `kind` (passing `filters`) since entering.
fn happened_since_entry(tx: &Connection, run: &RunState, kind: &str, filters: &[journeys::FieldTest]) -> Result<bool> {
    let payloads: Vec<String> = tx
        .prepare_cached(&format!(
            "SELECT payload FROM events WHERE customer_id IN ({SAME_CUSTOMER}) AND type = ?2 AND seq > ?3 ORDER BY seq LIMIT 1000"
        ))?
        .query_map(params![run.customer_id, kind, run.entry_seq], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(payloads.iter().any(|p| journeys::all_hold(filters, &parse_json(p))))
}

/// Execute the run's current step.
fn execute(tx: &Connection, run: &mut RunState, d: &Definition, step: &Step, zone: Tz, now: DateTime<Utc>) -> Result<Next> {
    let at = to_ms(now);
    let kind = step.kind.name();
    match &step.kind {
        StepKind::Wait(wait) => {
            if end_wait(tx, run, now)? {
                return Ok(Next::Step(step.next.clone()));
            }
            let expires = run.context.pointer("/coupon/expires_at_ms").and_then(Value::as_i64).map(from_ms);
            match wait.ends(zone, now, expires) {
                None => {
                    log_step(tx, run, kind, "skipped", "no coupon issued in this run to wait for", None, None, at)?;
                    Ok(Next::Step(step.next.clone()))
                }
                Some(end) if end <= now => {
                    log_step(tx, run, kind, "waited", "the time had already come", None, None, at)?;
                    Ok(Next::Step(step.next.clone()))
                }
                Some(end) => {
                    log_step(tx, run, kind, "waiting", &format!("until {}", end.to_rfc3339()), None, None, at)?;
                    Ok(Next::Wait(to_ms(end)))
                }
            }
        }
        StepKind::BranchCustomer(node) => {
            let yes = customer_matches(tx, run.shop_id, node, run.customer_id, now)?;
            log_step(tx, run, kind, if yes { "yes" } else { "no" }, "customer condition", None, None, at)?;
            Ok(Next::Step(if yes { step.yes.clone() } else { step.no.clone() }))
        }
        StepKind::BranchEvent(event, filters) => {
            let yes = happened_since_entry(tx, run, event, filters)?;
            log_step(tx, run, kind, if yes { "yes" } else { "no" }, &format!("{event} since entry"), None, None, at)?;
            Ok(Next::Step(if yes { step.yes.clone() } else { step.no.clone() }))
        }
        StepKind::Split(variants) => {
            let chosen = journeys::choose_variant(run.journey_id, &run.step, run.customer_id, variants);
            let label = format!("{}:{}", run.step, chosen.variant);
            run.variant = Some(match run.variant.take() {
                Some(v) => format!("{v},{label}"),
                None => label,
            });
            log_step(tx, run, kind, &chosen.variant, "assigned by the customer's bucket", None, None, at)?;
            Ok(Next::Step(chosen.next.clone()))
        }
        StepKind::Exit => {
            log_step(tx, run, kind, "done", "exit", None, None, at)?;
            Ok(Next::Exit(format!("exit step `{}`", run.step)))
        }
        action => {
            let acted = if run.holdout { Acted::Skipped("holdout".into()) } else { act(tx, run, d, action, zone, now)? };
            match acted {
                Acted::Done { detail, message, coupon } => log_step(tx, run, kind, "done", &detail, message.as_deref(), coupon, at)?,
                Acted::Skipped(reason) => log_step(tx, run, kind, "skipped", &reason, None, None, at)?,
            }
            Ok(Next::Step(step.next.clone()))
        }
    }
}

/// Move a run on from its current step until it waits or ends.
fn advance(tx: &Connection, run: &mut RunState, d: &Definition, zone: Tz, now: DateTime<Utc>) -> Result<()> {
    let at = to_ms(now);
    let Some(customer) = active_customer(tx, run.shop_id, run.customer_id)? else {
        return end(tx, run, JourneyRunStatus::Exited, "the customer is no longer in the shop", at);
    };
    run.customer_id = customer;
    for _ in 0..MAX_HOPS {
        let Some(step) = d.steps.get(&run.step) else {
            return end(tx, run, JourneyRunStatus::Failed, &format!("step `{}` is not in version {}", run.step, run.version), at);
        };
        match execute(tx, run, d, step, zone, now)? {
            Next::Step(Some(next)) => run.step = next,
            Next::Step(None) => return end(tx, run, JourneyRunStatus::Completed, "went through the last step", at),
            Next::Exit(reason) => return end(tx, run, JourneyRunStatus::Exited, &reason, at),
            Next::Wait(until) => {
                tx.prepare_cached("UPDATE journey_runs SET step = ?2, due_at = ?3, variant = ?4, context = ?5 WHERE id = ?1")?
                    .execute(params![run.id, run.step, until, run.variant, json_text(&run.context)])?;
                return move_to_survivor(tx, run);
            }
        }
    }
    end(tx, run, JourneyRunStatus::Failed, "took more steps than the journey has", at)
}

fn end(tx: &Connection, run: &RunState, status: JourneyRunStatus, reason: &str, at: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE journey_runs SET status = ?2, end_reason = ?3, ended_at = ?4, due_at = NULL, step = ?5, variant = ?6, context = ?7
         WHERE id = ?1",
    )?
    .execute(params![run.id, status.as_str(), reason, at, run.step, run.variant, json_text(&run.context)])?;
    move_to_survivor(tx, run)
}

/// Give the run to the customer its own was merged into, if it was. Only then: setting
/// `customer_id`, even to the value it holds, rewrites two indexes and checks its foreign key.
fn move_to_survivor(tx: &Connection, run: &RunState) -> Result<()> {
    if run.customer_id != run.stored_customer_id {
        tx.prepare_cached("UPDATE journey_runs SET customer_id = ?2 WHERE id = ?1")?.execute(params![run.id, run.customer_id])?;
    }
    Ok(())
}

fn load_run_state(tx: &Connection, run_id: i64) -> Result<RunState> {
    Ok(tx
        .prepare_cached(
            "SELECT r.id, r.shop_id, r.journey_id, j.name, r.version, r.customer_id, r.entry_seq, r.holdout, r.variant, r.step, r.context
             FROM journey_runs r JOIN journeys j ON j.id = r.journey_id WHERE r.id = ?1",
        )?
        .query_row([run_id], |r| {
            Ok(RunState {
                id: r.get(0)?,
                shop_id: r.get(1)?,
                journey_id: r.get(2)?,
                journey: r.get(3)?,
                version: r.get(4)?,
                customer_id: r.get(5)?,
                stored_customer_id: r.get(5)?,
                entry_seq: r.get(6)?,
                holdout: r.get(7)?,
                variant: r.get(8)?,
                step: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                context: parse_json(&r.get::<_, String>(10)?),
            })
        })?)
}

/// Run a journey's intake or date entries in a savepoint: on error (a segment its
/// condition names was deleted, say), undo them and pause the journey with the
/// reason in the audit log, so that one broken journey never stops the others.
fn isolated_journey(tx: &Transaction<'_>, row: &Row, now: DateTime<Utc>, f: impl FnOnce() -> Result<usize>) -> Result<usize> {
    let err = match savepoint(tx, f)? {
        Ok(n) => return Ok(n),
        Err(err) => err,
    };
    tracing::error!(journey = row.id, error = %err, "a journey failed to take entries; pausing it");
    tx.prepare_cached("UPDATE journeys SET status = 'paused', updated_at = ?2 WHERE id = ?1 AND status = 'active'")?
        .execute(params![row.id, to_ms(now)])?;
    audit::record(
        tx,
        Some(row.shop_id),
        &Actor::cli("journeys"),
        "journey.paused",
        Some(&format!("journey:{}", row.id)),
        json!({"reason": err.to_string(), "version": row.version}),
        now,
    )?;
    // A paused journey still attributes goals; move past these events so that the next pass does not fail again.
    if row.status == JourneyStatus::Paused {
        tx.prepare_cached("UPDATE journeys SET cursor = ?2 WHERE id = ?1")?.execute(params![row.id, events::head(tx, row.shop_id)?])?;
    }
    Ok(1)
}

/// A run failed in a pass taken without savepoints: the pass is taken again with them.
#[derive(Debug, thiserror::Error)]
#[error("a journey run failed; the pass is taken again with a savepoint per run")]
struct RunFailed;

/// Run `f` in a savepoint: on error, undo what it did and fail the run with the error.
fn isolated_run(tx: &Transaction<'_>, run_id: i64, at: i64, f: impl FnOnce() -> Result<()>) -> Result<()> {
    if let Err(err) = savepoint(tx, f)? {
        tracing::error!(run = run_id, error = %err, "a journey run failed");
        tx.prepare_cached(
            "UPDATE journey_runs SET status = 'failed', end_reason = ?2, ended_at = ?3, due_at = NULL WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![run_id, format!("step failed: {err}"), at])?;
    }
    Ok(())
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
        triggered_at: from_ms(started_at(&r.get::<_, String>(15)?, r.get(10)?)),
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
        // Look on a reader first: most passes have nothing to do and should not take the writer.
        let (behind, dated, due) = self.read(|conn| {
            let behind: Vec<i64> = conn
                .prepare_cached(
                    "SELECT j.id FROM journeys j WHERE j.status IN ('active', 'paused')
                       AND j.cursor < (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.shop_id = j.shop_id)",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let dated: Vec<Row> = conn
                .prepare_cached(&format!(
                    "SELECT {ROW_COLUMNS} FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version
                         WHERE j.status = 'active' AND json_extract(v.definition, '$.trigger.date') IS NOT NULL"
                ))?
                .query_map([], row_of)?
                .collect::<rusqlite::Result<_>>()?;
            let mut zones = HashMap::new();
            let mut dated_due = Vec::new();
            for row in dated {
                let zone = match zones.get(&row.shop_id) {
                    Some(z) => *z,
                    None => *zones.entry(row.shop_id).or_insert(shops::zone(conn, row.shop_id)?),
                };
                let at = definition_value(conn, row.id, row.version)?
                    .pointer("/trigger/date/at")
                    .and_then(Value::as_str)
                    .and_then(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok())
                    .unwrap_or_else(|| chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"));
                if !days_due(&row, zone, at, now).is_empty() {
                    dated_due.push(row.id);
                }
            }
            Ok((behind, dated_due, due_journey_runs(conn, now, 1)?))
        })?;
        if behind.is_empty() && dated.is_empty() && due.is_empty() {
            return Ok(0);
        }
        // Most passes have no run that fails: their runs go without a savepoint each (a
        // savepoint copies every page a run changes first into a statement journal). A pass
        // in which one fails is rolled back whole and taken again with one savepoint per run,
        // so that the failing run fails alone.
        let pass = |savepoints: bool| {
            self.write(|tx| {
                let mut defs = Definitions::default();
                let mut done = 0;
                for (id, dated) in behind.iter().map(|id| (*id, false)).chain(dated.iter().map(|id| (*id, true))) {
                    let row =
                        tx.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM journeys j WHERE j.id = ?1"))?.query_row([id], row_of)?;
                    done += isolated_journey(tx, &row, now, || {
                        if dated { date_entries(tx, &row, &mut defs, now) } else { intake(tx, &row, &mut defs, now) }
                    })?;
                }
                // Runs entered just now are due at once; take them in this pass too.
                let due = due_journey_runs(tx, now, limit)?;
                let mut zones: HashMap<i64, Tz> = HashMap::new();
                let at = to_ms(now);
                for run_id in due {
                    let mut run = load_run_state(tx, run_id)?;
                    let zone = match zones.get(&run.shop_id) {
                        Some(z) => *z,
                        None => *zones.entry(run.shop_id).or_insert(shops::zone(tx, run.shop_id)?),
                    };
                    let mut step = || {
                        let d = defs.get(tx, run.journey_id, run.version)?;
                        advance(tx, &mut run, &d, zone, now)
                    };
                    if savepoints {
                        isolated_run(tx, run_id, at, step)?;
                    } else if step().is_err() {
                        return Err(anyhow::Error::new(RunFailed).into());
                    }
                    done += 1;
                }
                Ok(done)
            })
        };
        match pass(false) {
            Err(StoreError::Internal(err)) if err.is::<RunFailed>() => pass(true),
            done => done,
        }
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
            let mut defs = Definitions::default();
            let d = defs.get(conn, id, row.version)?;
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
                    let today = now.with_timezone(&shops::zone(conn, shop_id)?).date_naive();
                    let anniversary = journeys::entry_anniversary(today, *offset_days);
                    (
                        dated_customers(conn, shop_id, field, &[anniversary])?,
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
                if refused_entry(conn, &row, &d, customer, now)?.is_some() {
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
            let d = Definitions::default().get(tx, id, row.version)?;
            let customer = active_customer(tx, shop_id, customer_id)?
                .ok_or_else(|| StoreError::Invalid(FieldError::new("customer_id", "no such customer in this shop")))?;
            let zone = shops::zone(tx, shop_id)?;
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
            let ctx = message_context(tx, &run, zone)?;
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
