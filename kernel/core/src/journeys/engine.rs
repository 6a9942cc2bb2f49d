//! The journey engine: what moves customers through journeys.
//!
//! Everything a run does happens in the write transaction that records it: entering,
//! each step's outcome, and its action (a message put in the outbox, a coupon issued, a
//! tag, points). A crash before the commit leaves no trace of the step, and the step
//! runs again after the restart; a crash after it leaves the step done. Each action also
//! carries a key made of its run and step (`journey:<run>:<step>` for messages,
//! `run:<run>:<step>` for coupons and points), and a run's record of a step is one, so
//! no action is ever taken twice. Messages then go out through the outbox, which
//! applies the shop's consent, frequency caps and quiet hours.
//!
//! [`advance`] is one pass of the engine: new events are matched against triggers and
//! goals (each journey has its own cursor on the shop's event log), date triggers enter
//! the day's customers, and due runs are claimed in batches and executed until they
//! wait or end. The language of journeys (definitions, waits, buckets, templates) is
//! `kith_domain::journeys`; this module decides with it.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use kith_domain::journeys::{self, Definition, JourneyRunStatus, JourneyStatus, Step, StepKind, TriggerKind};
use kith_domain::loyalty::LedgerKind;
use kith_domain::messaging::SendRequest;
use serde_json::{Value, json};

use crate::isolation::isolated;
use crate::ports::{JourneyRow, NewRun, RunPlace, RunRow, StepRecord};
use crate::tags::{self, Added, Removable, Source, TagRemoval, TagWrite};
use crate::{Actor, Error, ReadTx, Result, Storage, StorageExt, WriteTx, coupons, ledger, outbox};

/// Events read per journey per pass.
const INTAKE_BATCH: usize = 1000;
/// Steps one run may take in one go (the graph is acyclic and has at most 100).
const MAX_HOPS: usize = journeys::MAX_STEPS + 1;
/// How many missed days a date trigger catches up after downtime.
const DATE_CATCH_UP_DAYS: i64 = 7;

/// The source a journey's coupons, points and messages are recorded under.
pub fn source(journey_id: i64) -> String {
    format!("journey:{journey_id}")
}

/// The shop's time zone (UTC when the stored name is not one).
pub fn zone(tx: &dyn ReadTx, shop_id: i64) -> Result<Tz> {
    Ok(tx.settings().time_zone(shop_id)?.parse().unwrap_or(Tz::UTC))
}

/// Parsed definitions by (journey, version), for one pass of the engine.
#[derive(Default)]
pub struct Definitions(HashMap<(i64, i64), Rc<Definition>>);

impl Definitions {
    pub fn get(&mut self, tx: &dyn ReadTx, shop_id: i64, journey_id: i64, version: i64) -> Result<Rc<Definition>> {
        if let Some(d) = self.0.get(&(journey_id, version)) {
            return Ok(d.clone());
        }
        let value = tx
            .journeys()
            .definition(shop_id, journey_id, version)?
            .ok_or_else(|| Error::NotFound(format!("version {version} of journey {journey_id}")))?;
        let parsed = journeys::parse(&value).map_err(|e| anyhow::anyhow!("journey {journey_id} version {version}: {e}"))?;
        let d = Rc::new(parsed);
        self.0.insert((journey_id, version), d.clone());
        Ok(d)
    }
}

/// Why a customer may not enter now, or `None` when they may: re-entry, runs at once,
/// the interval between entries, and the trigger's customer condition.
pub fn refused_entry(tx: &dyn ReadTx, row: &JourneyRow, d: &Definition, customer_id: i64, now: DateTime<Utc>) -> Result<Option<String>> {
    let counts = tx.journeys().runs_of(row.shop_id, row.id, customer_id)?;
    if counts.runs > 0 && !d.entry.reentry {
        return Ok(Some("already entered; the journey allows no re-entry".into()));
    }
    if counts.active >= i64::from(d.entry.max_concurrent.max(1)) {
        return Ok(Some(format!("{} run(s) in progress, the most at once", counts.active)));
    }
    if let Some(last) = counts.last_entered
        && millis(now) - millis(last) < i64::from(d.entry.min_interval_days) * 86_400_000
    {
        return Ok(Some(format!("entered less than {} day(s) ago", d.entry.min_interval_days)));
    }
    if let Some(node) = &d.audience
        && !tx.journeys().customer_matches(row.shop_id, node, customer_id, now)?
    {
        return Ok(Some("does not meet the trigger's customer condition".into()));
    }
    Ok(None)
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// An instant to the millisecond, as runs keep their times.
fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis(at)).unwrap_or(at)
}

/// Enter a customer; `None` when the rules refuse or the entry key was used.
#[allow(clippy::too_many_arguments)]
fn enter(
    tx: &dyn WriteTx,
    row: &JourneyRow,
    d: &Definition,
    customer_id: i64,
    entry_key: &str,
    entry_seq: i64,
    trigger: Value,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let Some(customer_id) = tx.customers().active(row.shop_id, customer_id)? else { return Ok(None) };
    if refused_entry(tx, row, d, customer_id, now)?.is_some() {
        return Ok(None);
    }
    let at = to_millis(now);
    let context = json!({"trigger": trigger});
    tx.journeys_writer().insert_run(&NewRun {
        shop_id: row.shop_id,
        journey_id: row.id,
        version: row.version,
        customer_id,
        entry_key,
        entry_seq,
        holdout: journeys::in_holdout(row.id, customer_id, d.holdout_percent),
        step: &d.start,
        at,
        context: &context,
        goal_until: d.goal.as_ref().map(|g| at + Duration::days(i64::from(g.within_days))),
    })
}

/// The amount a goal event brings (its `amount`, else 0).
fn revenue_of(payload: &Value) -> i64 {
    payload.get("amount").and_then(Value::as_i64).unwrap_or(0)
}

/// When a goal event happened in the business's terms: an order's `paid_at`, a behaviour's
/// `occurred_at`, else when it was logged. An order imported today but paid last year
/// happened last year.
fn happened_at(payload: &Value, logged_at: DateTime<Utc>) -> DateTime<Utc> {
    ["paid_at", "occurred_at"]
        .iter()
        .find_map(|field| payload.get(*field).and_then(Value::as_str))
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map_or(logged_at, |at| to_millis(at.with_timezone(&Utc)))
}

/// When what started a run happened: its trigger event's own time (from the run's
/// context), else its entry.
pub fn started_at(context: &Value, entered_at: DateTime<Utc>) -> DateTime<Utc> {
    context.get("trigger").map_or(entered_at, |trigger| happened_at(trigger, entered_at))
}

/// A goal event of a customer, which happened at `at`, converts their runs that were entered
/// before it — in the log, and in time: the goal happened no earlier than what started the run
/// (the trigger event's own time, else the entry), so an order paid before the customer entered
/// converts nothing however late it is imported, while an order paid after a cart converts the
/// cart's run even when both arrive in one late sync — and whose goal window it falls in.
#[allow(clippy::too_many_arguments)]
fn convert(
    tx: &dyn WriteTx,
    shop_id: i64,
    journey_id: i64,
    customer_id: i64,
    seq: i64,
    payload: &Value,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut converted = 0;
    for candidate in tx.journeys().goal_candidates(shop_id, journey_id, customer_id, seq, at)? {
        if started_at(&candidate.context, candidate.entered_at) > at {
            continue;
        }
        converted += tx.journeys_writer().convert(shop_id, candidate.run_id, at, revenue_of(payload), now)?;
    }
    Ok(converted)
}

/// Match new events of a journey's shop against its trigger and goal; move its cursor.
fn intake(tx: &dyn WriteTx, row: &JourneyRow, defs: &mut Definitions, now: DateTime<Utc>) -> Result<usize> {
    let d = defs.get(tx, row.shop_id, row.id, row.version)?;
    let events = tx.journeys().events_after(row.shop_id, row.cursor, INTAKE_BATCH)?;
    let Some(last) = events.last().map(|e| e.seq) else { return Ok(0) };
    let mut entered = 0;
    for event in &events {
        let Some(customer) = event.customer_id else { continue };
        let kind = &event.kind;
        let goal = d.goal.as_ref().filter(|g| &g.event == kind);
        let trigger = match &d.trigger {
            TriggerKind::Event { event, .. } => event == kind,
            TriggerKind::Segment(_) => kind == "segment.entered",
            TriggerKind::Date { .. } => false,
        };
        if goal.is_none() && !trigger {
            continue;
        }
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
        if let Some(goal) = goal
            && journeys::all_hold(&goal.filters, &payload)
        {
            // An event logged before a merge names the merged customer; their runs are the survivor's now.
            let survivor = tx.customers().active(row.shop_id, customer)?.unwrap_or(customer);
            convert(tx, row.shop_id, row.id, survivor, event.seq, &payload, happened_at(&payload, event.logged_at), now)?;
        }
        if !trigger || row.status != JourneyStatus::Active {
            continue;
        }
        let fits = match &d.trigger {
            TriggerKind::Event { filters, .. } => journeys::all_hold(filters, &payload),
            TriggerKind::Segment(id) => payload.get("segment_id").and_then(Value::as_i64) == Some(*id),
            TriggerKind::Date { .. } => false,
        };
        if fits && enter(tx, row, &d, customer, &format!("event:{}", event.seq), event.seq, payload, now)?.is_some() {
            entered += 1;
        }
    }
    tx.journeys_writer().set_cursor(row.shop_id, row.id, last)?;
    Ok(entered.max(1))
}

/// The shop days a date trigger has yet to enter, up to today (today only once its time has come).
pub fn days_due(row: &JourneyRow, zone: Tz, at: NaiveTime, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let local = now.with_timezone(&zone);
    let today = local.date_naive();
    let first = row.date_through.map_or(today, |d| d + Duration::days(1)).max(today - Duration::days(DATE_CATCH_UP_DAYS));
    let mut days = Vec::new();
    let mut day = first;
    while day < today || (day == today && local.time() >= at) {
        days.push(day);
        day += Duration::days(1);
    }
    days
}

/// Enter the customers of a date trigger for the days due.
fn date_entries(tx: &dyn WriteTx, row: &JourneyRow, defs: &mut Definitions, now: DateTime<Utc>) -> Result<usize> {
    let d = defs.get(tx, row.shop_id, row.id, row.version)?;
    let TriggerKind::Date { field, offset_days, at } = &d.trigger else { return Ok(0) };
    let days = days_due(row, zone(tx, row.shop_id)?, *at, now);
    let Some(last) = days.last() else { return Ok(0) };
    let head = tx.journeys().head(row.shop_id)?;
    let mut entered = 0;
    for day in &days {
        let anniversary = journeys::entry_anniversary(*day, *offset_days);
        for customer in tx.journeys().dated_customers(row.shop_id, field, &[anniversary])? {
            let trigger = json!({"date": anniversary.format("%m-%d").to_string(), "day": day.to_string()});
            if enter(tx, row, &d, customer, &format!("date:{day}"), head, trigger, now)?.is_some() {
                entered += 1;
            }
        }
    }
    tx.journeys_writer().set_date_through(row.shop_id, row.id, *last)?;
    Ok(entered.max(1))
}

/// A run being executed.
#[derive(Debug, Clone)]
pub struct RunState {
    pub id: i64,
    pub shop_id: i64,
    pub journey_id: i64,
    pub journey: String,
    pub version: i64,
    pub customer_id: i64,
    /// The run's customer as stored; `customer_id` differs once they were merged into another.
    pub stored_customer_id: i64,
    pub entry_seq: i64,
    pub holdout: bool,
    pub variant: Option<String>,
    pub step: String,
    pub context: Value,
}

impl From<RunRow> for RunState {
    fn from(r: RunRow) -> Self {
        RunState {
            id: r.id,
            shop_id: r.shop_id,
            journey_id: r.journey_id,
            journey: r.journey,
            version: r.version,
            customer_id: r.customer_id,
            stored_customer_id: r.customer_id,
            entry_seq: r.entry_seq,
            holdout: r.holdout,
            variant: r.variant,
            step: r.step,
            context: r.context,
        }
    }
}

impl RunState {
    fn place(&self) -> RunPlace<'_> {
        RunPlace { step: &self.step, variant: self.variant.as_deref(), context: &self.context }
    }
}

/// What a step leads to.
enum Next {
    Step(Option<String>),
    Wait(DateTime<Utc>),
    Exit(String),
}

/// Record a step's outcome (a wait's `waiting` is replaced by `waited`).
#[allow(clippy::too_many_arguments)]
fn log_step(
    tx: &dyn WriteTx,
    run: &RunState,
    kind: &str,
    outcome: &str,
    detail: &str,
    message_id: Option<&str>,
    coupon_id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.journeys_writer()
        .log_step(run.shop_id, &StepRecord { run_id: run.id, step: &run.step, kind, outcome, detail, message_id, coupon_id, at })
}

/// Why the journey's budget refuses one more message on `channel`, if it does.
fn message_budget(tx: &dyn ReadTx, run: &RunState, d: &Definition, channel: &str) -> Result<Option<String>> {
    if d.budget.messages.is_none() && d.budget.message_cost.is_none() {
        return Ok(None);
    }
    let spent = tx.journeys().messages_spent(run.shop_id, run.journey_id)?;
    let count: i64 = spent.iter().map(|(_, n)| n).sum();
    if let Some(max) = d.budget.messages
        && count >= max
    {
        return Ok(Some(format!("budget: the journey's {max} message(s) are spent")));
    }
    if let Some(max) = d.budget.message_cost {
        let settings = tx.settings().messaging(run.shop_id)?;
        let cost: i64 = spent.iter().map(|(channel, n)| n * settings.policy(channel).cost_per_message).sum();
        let next = settings.policy(channel).cost_per_message;
        if cost + next > max {
            return Ok(Some(format!("budget: message cost {cost} + {next} would pass the journey's {max}")));
        }
    }
    Ok(None)
}

/// Why the journey's budget refuses a coupon of `face_value`, if it does.
pub fn coupon_budget(tx: &dyn ReadTx, shop_id: i64, journey_id: i64, d: &Definition, face_value: i64) -> Result<Option<String>> {
    if d.budget.coupons.is_none() && d.budget.coupon_value.is_none() {
        return Ok(None);
    }
    let (count, value) = tx.journeys().coupons_issued(shop_id, &source(journey_id))?;
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
pub fn message_context(tx: &dyn ReadTx, run: &RunState, zone: Tz) -> Result<Value> {
    let name = tx.journeys().customer_name(run.shop_id, run.customer_id)?;
    let mut ctx = run.context.clone();
    if let Some(expires) = ctx.pointer("/coupon/expires_at_ms").and_then(Value::as_i64) {
        let local = DateTime::from_timestamp_millis(expires).unwrap_or_default().with_timezone(&zone).format("%Y-%m-%d").to_string();
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
fn refused(err: Error) -> Result<Acted> {
    match err {
        Error::Conflict(reason) => Ok(Acted::Skipped(reason)),
        Error::Invalid(e) => Ok(Acted::Skipped(e.to_string())),
        Error::NotFound(what) => Ok(Acted::Skipped(format!("not found: {what}"))),
        other => Err(other),
    }
}

/// Take a step's action: a message, a coupon, a tag, points.
fn act(tx: &dyn WriteTx, run: &mut RunState, d: &Definition, kind: &StepKind, zone: Tz, now: DateTime<Utc>) -> Result<Acted> {
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
            match outbox::enqueue(tx, run.shop_id, &request, &send.personal_variables(), &src, now) {
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
            let Some(template) = tx.coupons().template(run.shop_id, template_id)? else {
                return refused(Error::NotFound(format!("coupon template {template_id}")));
            };
            if let Some(reason) = coupon_budget(tx, run.shop_id, run.journey_id, d, template.face_value)? {
                return Ok(Acted::Skipped(reason));
            }
            match coupons::issue(tx, run.shop_id, template_id, run.customer_id, &src, &key, now) {
                Ok((c, _)) => {
                    run.context["coupon"] = json!({"id": c.id, "code": c.code, "face_value": c.face_value,
                        "expires_at_ms": millis(c.expires_at), "template_id": template_id});
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
            let reason = format!("journey {}", run.journey);
            if let Some(name) = &tag.add {
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
                let detail = match tags::add(tx, &write)? {
                    Added::New => format!("added tag {name}"),
                    Added::Reworded | Added::Unchanged => format!("tag {name} was already set by this journey"),
                };
                Ok(Acted::Done { detail, message: None, coupon: None })
            } else {
                let name = tag.remove.clone().unwrap_or_default();
                let removal = TagRemoval {
                    shop_id: run.shop_id,
                    customer_id: run.customer_id,
                    tag: &name,
                    which: Removable::ManualOrJourney,
                    reason: Some(&reason),
                    at: now,
                    chain: 1,
                };
                if tags::remove(tx, &removal)? == 0 {
                    return Ok(Acted::Skipped(format!("the customer has no tag {name} set by hand or by a journey")));
                }
                Ok(Acted::Done { detail: format!("removed tag {name}"), message: None, coupon: None })
            }
        }
        StepKind::Points(points) => {
            let reason = points.reason.clone().unwrap_or_else(|| format!("journey {}", run.journey));
            let at = to_millis(now);
            let posted = ledger::post(
                tx,
                &ledger::Post {
                    shop_id: run.shop_id,
                    customer_id: run.customer_id,
                    kind: LedgerKind::Earn,
                    points: points.award,
                    source: &src,
                    source_key: &key,
                    reason: &reason,
                    order_id: None,
                    expires_at: points.expires_in_days.map(|d| at + Duration::days(i64::from(d))),
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
fn happened_since_entry(tx: &dyn ReadTx, run: &RunState, kind: &str, filters: &[journeys::FieldTest]) -> Result<bool> {
    let payloads = tx.journeys().events_since(run.shop_id, run.customer_id, kind, run.entry_seq)?;
    Ok(payloads.iter().any(|p| journeys::all_hold(filters, p)))
}

/// Execute the run's current step.
fn execute(tx: &dyn WriteTx, run: &mut RunState, d: &Definition, step: &Step, zone: Tz, now: DateTime<Utc>) -> Result<Next> {
    let kind = step.kind.name();
    match &step.kind {
        StepKind::Wait(wait) => {
            if tx.journeys_writer().end_wait(run.shop_id, run.id, &run.step, &format!("until {}", now.to_rfc3339()), now)? {
                return Ok(Next::Step(step.next.clone()));
            }
            let expires = run.context.pointer("/coupon/expires_at_ms").and_then(Value::as_i64).and_then(DateTime::from_timestamp_millis);
            match wait.ends(zone, now, expires) {
                None => {
                    log_step(tx, run, kind, "skipped", "no coupon issued in this run to wait for", None, None, now)?;
                    Ok(Next::Step(step.next.clone()))
                }
                Some(end) if end <= now => {
                    log_step(tx, run, kind, "waited", "the time had already come", None, None, now)?;
                    Ok(Next::Step(step.next.clone()))
                }
                Some(end) => {
                    log_step(tx, run, kind, "waiting", &format!("until {}", end.to_rfc3339()), None, None, now)?;
                    Ok(Next::Wait(end))
                }
            }
        }
        StepKind::BranchCustomer(node) => {
            let yes = tx.journeys().customer_matches(run.shop_id, node, run.customer_id, now)?;
            log_step(tx, run, kind, if yes { "yes" } else { "no" }, "customer condition", None, None, now)?;
            Ok(Next::Step(if yes { step.yes.clone() } else { step.no.clone() }))
        }
        StepKind::BranchEvent(event, filters) => {
            let yes = happened_since_entry(tx, run, event, filters)?;
            log_step(tx, run, kind, if yes { "yes" } else { "no" }, &format!("{event} since entry"), None, None, now)?;
            Ok(Next::Step(if yes { step.yes.clone() } else { step.no.clone() }))
        }
        StepKind::Split(variants) => {
            let chosen = journeys::choose_variant(run.journey_id, &run.step, run.customer_id, variants);
            let label = format!("{}:{}", run.step, chosen.variant);
            run.variant = Some(match run.variant.take() {
                Some(v) => format!("{v},{label}"),
                None => label,
            });
            log_step(tx, run, kind, &chosen.variant, "assigned by the customer's bucket", None, None, now)?;
            Ok(Next::Step(chosen.next.clone()))
        }
        StepKind::Exit => {
            log_step(tx, run, kind, "done", "exit", None, None, now)?;
            Ok(Next::Exit(format!("exit step `{}`", run.step)))
        }
        action => {
            let acted = if run.holdout { Acted::Skipped("holdout".into()) } else { act(tx, run, d, action, zone, now)? };
            match acted {
                Acted::Done { detail, message, coupon } => log_step(tx, run, kind, "done", &detail, message.as_deref(), coupon, now)?,
                Acted::Skipped(reason) => log_step(tx, run, kind, "skipped", &reason, None, None, now)?,
            }
            Ok(Next::Step(step.next.clone()))
        }
    }
}

/// Move a run on from its current step until it waits or ends.
fn advance_run(tx: &dyn WriteTx, run: &mut RunState, d: &Definition, zone: Tz, now: DateTime<Utc>) -> Result<()> {
    let Some(customer) = tx.customers().active(run.shop_id, run.customer_id)? else {
        return end(tx, run, JourneyRunStatus::Exited, "the customer is no longer in the shop", now);
    };
    run.customer_id = customer;
    for _ in 0..MAX_HOPS {
        let Some(step) = d.steps.get(&run.step) else {
            return end(tx, run, JourneyRunStatus::Failed, &format!("step `{}` is not in version {}", run.step, run.version), now);
        };
        match execute(tx, run, d, step, zone, now)? {
            Next::Step(Some(next)) => run.step = next,
            Next::Step(None) => return end(tx, run, JourneyRunStatus::Completed, "went through the last step", now),
            Next::Exit(reason) => return end(tx, run, JourneyRunStatus::Exited, &reason, now),
            Next::Wait(until) => {
                tx.journeys_writer().wait(run.shop_id, run.id, &run.place(), until)?;
                return move_to_survivor(tx, run);
            }
        }
    }
    end(tx, run, JourneyRunStatus::Failed, "took more steps than the journey has", now)
}

fn end(tx: &dyn WriteTx, run: &RunState, status: JourneyRunStatus, reason: &str, now: DateTime<Utc>) -> Result<()> {
    tx.journeys_writer().end_run(run.shop_id, run.id, status, reason, now, &run.place())?;
    move_to_survivor(tx, run)
}

/// Give the run to the customer its own was merged into, if it was (only then: a backend
/// may pay for rewriting the column even to the value it holds).
fn move_to_survivor(tx: &dyn WriteTx, run: &RunState) -> Result<()> {
    if run.customer_id != run.stored_customer_id {
        tx.journeys_writer().move_run(run.shop_id, run.id, run.customer_id)?;
    }
    Ok(())
}

/// Run a journey's intake or date entries in a savepoint: on error (a segment its
/// condition names was deleted, say), undo them and pause the journey with the
/// reason in the audit log, so that one broken journey never stops the others.
fn isolated_journey(tx: &dyn WriteTx, row: &JourneyRow, now: DateTime<Utc>, f: impl FnOnce() -> Result<usize>) -> Result<usize> {
    let err = match isolated(tx, f)? {
        Ok(n) => return Ok(n),
        Err(err) => err,
    };
    tracing::error!(journey = row.id, error = %err, "a journey failed to take entries; pausing it");
    tx.journeys_writer().pause(row.shop_id, row.id, now)?;
    tx.audit().record(
        Some(row.shop_id),
        &Actor::cli("journeys"),
        "journey.paused",
        Some(&format!("journey:{}", row.id)),
        json!({"reason": err.to_string(), "version": row.version}),
        now,
    )?;
    // A paused journey still attributes goals; move past these events so that the next pass does not fail again.
    if row.status == JourneyStatus::Paused {
        tx.journeys_writer().set_cursor(row.shop_id, row.id, tx.journeys().head(row.shop_id)?)?;
    }
    Ok(1)
}

/// A run failed in a pass taken without savepoints: the pass is taken again with them.
#[derive(Debug, thiserror::Error)]
#[error("a journey run failed; the pass is taken again with a savepoint per run")]
struct RunFailed;

/// Run `f` in a savepoint: on error, undo what it did and fail the run with the error.
fn isolated_run(tx: &dyn WriteTx, shop_id: i64, run_id: i64, now: DateTime<Utc>, f: impl FnOnce() -> Result<()>) -> Result<()> {
    if let Err(err) = isolated(tx, f)? {
        tracing::error!(run = run_id, error = %err, "a journey run failed");
        tx.journeys_writer().fail_run(shop_id, run_id, &format!("step failed: {err}"), now)?;
    }
    Ok(())
}

/// A journey of a shop: (shop, journey).
type ShopJourney = (i64, i64);

/// What a pass has to do, as seen on a reader: journeys behind their shop's log, date
/// triggers with days due, whether a run is due.
fn pending(tx: &dyn ReadTx, now: DateTime<Utc>) -> Result<(Vec<ShopJourney>, Vec<ShopJourney>, bool)> {
    let behind = tx.journeys().behind()?;
    let mut zones: HashMap<i64, Tz> = HashMap::new();
    let mut dated_due = Vec::new();
    for row in tx.journeys().dated()? {
        let zone = match zones.get(&row.shop_id) {
            Some(z) => *z,
            None => *zones.entry(row.shop_id).or_insert(zone(tx, row.shop_id)?),
        };
        // The definition's own time of day, read without parsing the whole definition: one
        // that no longer parses is found out by the pass, which pauses its journey.
        let at = tx
            .journeys()
            .definition(row.shop_id, row.id, row.version)?
            .as_ref()
            .and_then(|d| d.pointer("/trigger/date/at"))
            .and_then(Value::as_str)
            .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M").ok())
            .unwrap_or_else(|| NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"));
        if !days_due(&row, zone, at, now).is_empty() {
            dated_due.push((row.shop_id, row.id));
        }
    }
    Ok((behind, dated_due, !tx.journeys().due_journey_runs(now, 1)?.is_empty()))
}

/// One pass of the journey engine at `now`: triggers and goals for new events, date
/// entries, then up to `limit` due runs. Returns how much it did (0: idle).
pub fn advance(storage: &dyn Storage, now: DateTime<Utc>, limit: usize) -> Result<usize> {
    // Look on a reader first: most passes have nothing to do and should not take the writer.
    let (behind, dated, due) = storage.read(|tx| pending(tx, now))?;
    if behind.is_empty() && dated.is_empty() && !due {
        return Ok(0);
    }
    // Most passes have no run that fails: their runs go without a savepoint each (a
    // savepoint copies every page a run changes first into a statement journal). A pass
    // in which one fails is rolled back whole and taken again with one savepoint per run,
    // so that the failing run fails alone.
    let pass = |savepoints: bool| storage.write(|tx| run_pass(tx, &behind, &dated, now, limit, savepoints));
    match pass(false) {
        Err(Error::Internal(err)) if err.is::<RunFailed>() => pass(true),
        done => done,
    }
}

fn run_pass(
    tx: &dyn WriteTx,
    behind: &[ShopJourney],
    dated: &[ShopJourney],
    now: DateTime<Utc>,
    limit: usize,
    savepoints: bool,
) -> Result<usize> {
    let mut defs = Definitions::default();
    let mut done = 0;
    for ((shop_id, id), dated) in behind.iter().map(|j| (*j, false)).chain(dated.iter().map(|j| (*j, true))) {
        let row = tx.journeys().journey(shop_id, id)?;
        done +=
            isolated_journey(
                tx,
                &row,
                now,
                || {
                    if dated { date_entries(tx, &row, &mut defs, now) } else { intake(tx, &row, &mut defs, now) }
                },
            )?;
    }
    // Runs entered just now are due at once; take them in this pass too.
    let mut zones: HashMap<i64, Tz> = HashMap::new();
    for (shop_id, run_id) in tx.journeys().due_journey_runs(now, limit)? {
        let mut run = RunState::from(tx.journeys().run(shop_id, run_id)?);
        let zone = match zones.get(&run.shop_id) {
            Some(z) => *z,
            None => *zones.entry(run.shop_id).or_insert(zone(tx, run.shop_id)?),
        };
        let mut step = || {
            let d = defs.get(tx, run.shop_id, run.journey_id, run.version)?;
            advance_run(tx, &mut run, &d, zone, now)
        };
        if savepoints {
            isolated_run(tx, shop_id, run_id, now, step)?;
        } else if step().is_err() {
            return Err(anyhow::Error::new(RunFailed).into());
        }
        done += 1;
    }
    Ok(done)
}
