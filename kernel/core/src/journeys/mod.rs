//! Journeys: the engine that moves customers through them (`engine`: intake of
//! events and date triggers, runs executed step by step, actions within budgets),
//! and [`JourneyService`], journeys as the shop edits and reads them: versioned
//! definitions, their lifecycle, the runs of customers through them as listings and
//! statistics, dry runs and test sends.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use kith_domain::FieldError;
use kith_domain::journeys::{
    self, Arm, Definition, DryRun, Journey, JourneyInput, JourneyRun, JourneyRunStatus, JourneyStats, JourneyStatus, JourneyVersion, Lift,
    MessageFigures, StepKind, StepStats, TestSend, TriggerKind, VariantStats,
};
use kith_domain::messaging::SendRequest;
use serde_json::{Value, json};

use crate::ports::{JourneyRow, StepMessages, StepOutcomes};
use crate::{Actor, Error, ReadTx, Result, Storage, StorageExt, outbox};

mod engine;

use engine::millis;
pub use engine::{Definitions, RunState, advance, coupon_budget, days_due, message_context, refused_entry, source, started_at, zone};

pub use crate::ports::RunFilter;

/// A journey's row, in the shop.
fn load_row(tx: &dyn ReadTx, shop_id: i64, id: i64) -> Result<JourneyRow> {
    tx.journeys().journey_in_shop(shop_id, id)?.ok_or_else(|| Error::NotFound(format!("journey {id}")))
}

fn definition_value(tx: &dyn ReadTx, shop_id: i64, journey_id: i64, version: i64) -> Result<Value> {
    tx.journeys()
        .definition(shop_id, journey_id, version)?
        .ok_or_else(|| Error::NotFound(format!("version {version} of journey {journey_id}")))
}

fn load_journey(tx: &dyn ReadTx, shop_id: i64, id: i64) -> Result<Journey> {
    tx.journeys().view(shop_id, id)?.ok_or_else(|| Error::NotFound(format!("journey {id}")))
}

/// Validate a definition for saving in this shop: its segments and coupon templates exist here.
fn check(tx: &dyn ReadTx, shop_id: i64, input: &JourneyInput, now: DateTime<Utc>) -> Result<Definition> {
    let d = journeys::check_input(input)?;
    if let TriggerKind::Segment(id) = d.trigger
        && !tx.journeys().segment_live(shop_id, id)?
    {
        return Err(FieldError::new("definition.trigger.segment", format!("no segment {id} in this shop")).into());
    }
    if let Some(node) = &d.audience {
        tx.journeys().check_condition(shop_id, node, "definition.trigger.customer", now)?;
    }
    for (id, step) in &d.steps {
        if let StepKind::BranchCustomer(node) = &step.kind {
            tx.journeys().check_condition(shop_id, node, &format!("definition.steps.{id}.branch.customer"), now)?;
        }
    }
    for (step, template) in d.coupon_templates() {
        // Only a template known to be missing refuses the definition (a failed read does not).
        if let Ok(None) = tx.coupons().template(shop_id, template) {
            return Err(
                FieldError::new(format!("definition.steps.{step}.coupon"), format!("no coupon template {template} in this shop")).into()
            );
        }
    }
    Ok(d)
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

/// Journeys: saving definitions (checked against the shop), moving a journey through
/// its lifecycle, reading runs back, dry runs, test sends, statistics, and the engine's pass.
pub trait JourneyService: Storage {
    fn create_journey(&self, shop_id: i64, input: &JourneyInput, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            check(tx, shop_id, input, now)?;
            let id = tx.journeys_writer().insert_journey(shop_id, input.name.trim(), input.description.as_deref(), now)?;
            tx.journeys_writer().insert_version(shop_id, id, 1, &input.definition, now, &actor.label)?;
            tx.audit().record(Some(shop_id), actor, "journey.created", Some(&format!("journey:{id}")), json!({"version": 1}), now)?;
            load_journey(tx, shop_id, id)
        })
    }

    /// Replace a journey's name, description and definition. A changed
    /// definition is a new version: new entries follow it, running customers
    /// stay on the version they entered.
    fn update_journey(&self, shop_id: i64, id: i64, input: &JourneyInput, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            if row.status == JourneyStatus::Archived {
                return Err(Error::Conflict(format!("journey {id} is archived; copy it into a new journey instead")));
            }
            check(tx, shop_id, input, now)?;
            let current = definition_value(tx, shop_id, id, row.version)?;
            let mut version = row.version;
            if current != input.definition {
                version += 1;
                tx.journeys_writer().insert_version(shop_id, id, version, &input.definition, now, &actor.label)?;
            }
            tx.journeys_writer().update_journey(shop_id, id, input.name.trim(), input.description.as_deref(), version, now)?;
            tx.audit().record(Some(shop_id), actor, "journey.updated", Some(&format!("journey:{id}")), json!({"version": version}), now)?;
            load_journey(tx, shop_id, id)
        })
    }

    /// Delete a draft (it has no runs); a journey that ran is archived instead, so its statistics stay.
    fn delete_journey(&self, shop_id: i64, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            if row.status != JourneyStatus::Draft {
                return Err(Error::Conflict(format!(
                    "journey {id} is {}; only a draft can be deleted, archive it instead",
                    row.status.as_str()
                )));
            }
            tx.journeys_writer().delete_journey(shop_id, id)?;
            tx.audit().record(Some(shop_id), actor, "journey.deleted", Some(&format!("journey:{id}")), json!({"name": row.name}), now)?;
            Ok(())
        })
    }

    fn journey(&self, shop_id: i64, id: i64) -> Result<Journey> {
        self.read(|tx| load_journey(tx, shop_id, id))
    }

    fn journeys(&self, shop_id: i64) -> Result<Vec<Journey>> {
        self.read(|tx| tx.journeys().ids(shop_id)?.into_iter().map(|id| load_journey(tx, shop_id, id)).collect())
    }

    fn journey_versions(&self, shop_id: i64, id: i64) -> Result<Vec<JourneyVersion>> {
        self.read(|tx| {
            load_row(tx, shop_id, id)?;
            tx.journeys().versions(shop_id, id)
        })
    }

    /// Move a journey through its lifecycle. Activating a draft starts at the
    /// head of the event log (no entries for the past); archiving ends the
    /// runs in progress.
    fn set_journey_status(&self, shop_id: i64, id: i64, to: JourneyStatus, actor: &Actor, now: DateTime<Utc>) -> Result<Journey> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            row.status.transition(to).map_err(Error::Conflict)?;
            if to == JourneyStatus::Active {
                // The definition must still hold in the shop (a segment or template may be gone).
                let definition = definition_value(tx, shop_id, id, row.version)?;
                let input = JourneyInput { name: row.name.clone(), description: None, definition };
                check(tx, shop_id, &input, now)?;
            }
            if row.status == JourneyStatus::Draft && to == JourneyStatus::Active {
                tx.journeys_writer().activate(shop_id, id, tx.journeys().head(shop_id)?, now)?;
            }
            if to == JourneyStatus::Archived {
                tx.journeys_writer().exit_runs(shop_id, id, now)?;
            }
            tx.journeys_writer().set_status(shop_id, id, to, now)?;
            tx.audit().record(
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
    fn advance_journeys(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        advance(self.storage(), now, limit)
    }

    /// A journey's runs, newest first, after run id `before` when given.
    fn journey_runs(&self, shop_id: i64, id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> Result<Vec<JourneyRun>> {
        self.read(|tx| {
            load_row(tx, shop_id, id)?;
            tx.journeys().runs(shop_id, id, filter, before, limit)
        })
    }

    /// A customer's runs of every journey, newest first, with what happened at each step.
    fn customer_runs(&self, shop_id: i64, customer_id: i64) -> Result<Vec<JourneyRun>> {
        self.read(|tx| {
            if !tx.merges().customer_exists(shop_id, customer_id)? {
                return Err(Error::NotFound(format!("customer {customer_id}")));
            }
            tx.journeys().customer_runs(shop_id, customer_id)
        })
    }

    /// Who would enter the journey now: a segment trigger's current members, a
    /// date trigger's customers of today, an event trigger's customers with
    /// such an event in the last 24 hours; after the entry rules.
    fn dry_run_journey(&self, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<DryRun> {
        self.read(|tx| {
            let row = load_row(tx, shop_id, id)?;
            let d = Definitions::default().get(tx, shop_id, id, row.version)?;
            let (candidates, basis): (Vec<i64>, String) = match &d.trigger {
                TriggerKind::Segment(segment) => {
                    (tx.journeys().segment_members(shop_id, *segment)?, format!("members of segment {segment} now"))
                }
                TriggerKind::Date { field, offset_days, .. } => {
                    let today = now.with_timezone(&zone(tx, shop_id)?).date_naive();
                    let anniversary = journeys::entry_anniversary(today, *offset_days);
                    (
                        tx.journeys().dated_customers(shop_id, field, &[anniversary])?,
                        format!("customers whose date falls on {}", anniversary.format("%m-%d")),
                    )
                }
                TriggerKind::Event { event, filters } => {
                    let rows = tx.journeys().recent_events(shop_id, event, now - Duration::milliseconds(86_400_000))?;
                    let mut ids: Vec<i64> = rows.into_iter().filter(|(_, p)| journeys::all_hold(filters, p)).map(|(c, _)| c).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    (ids, format!("customers with a matching {event} in the last 24 hours"))
                }
            };
            let mut count = 0;
            let mut holdout = 0;
            let mut sample = Vec::new();
            for customer in candidates {
                let Some(customer) = tx.customers().active(shop_id, customer)? else { continue };
                if refused_entry(tx, &row, &d, customer, now)?.is_some() {
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
    fn test_send_journey(&self, shop_id: i64, id: i64, customer_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<TestSend> {
        self.write(|tx| {
            let row = load_row(tx, shop_id, id)?;
            let d = Definitions::default().get(tx, shop_id, id, row.version)?;
            let customer = tx
                .customers()
                .active(shop_id, customer_id)?
                .ok_or_else(|| Error::Invalid(FieldError::new("customer_id", "no such customer in this shop")))?;
            let zone = zone(tx, shop_id)?;
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
                    "expires_at_ms": millis(now + Duration::days(7))}}),
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
                messages.push(outbox::enqueue(tx, shop_id, &request, &send.personal_variables(), &format!("journey-test:{id}"), now)?.0);
            }
            if messages.is_empty() {
                return Err(Error::Conflict(format!("journey {id} has no send step to test")));
            }
            tx.audit().record(
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
    fn journey_stats(&self, shop_id: i64, id: i64) -> Result<JourneyStats> {
        self.read(|tx| {
            load_row(tx, shop_id, id)?;
            let count = |status: JourneyRunStatus| tx.journeys().count_runs(shop_id, id, status);
            let arm = |holdout: bool| -> Result<Arm> {
                let (entered, converted, revenue) = tx.journeys().arm(shop_id, id, holdout)?;
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
            let settings = tx.settings().messaging(shop_id)?;
            let mut messages = MessageFigures::default();
            for (channel, status, n) in tx.journeys().messages_by_status(shop_id, id)? {
                messages.add(&status, n, settings.policy(&channel).cost_per_message);
            }
            let coupons = tx.journeys().coupon_figures(shop_id, &source(id))?;
            let cost = messages.cost + coupons.redeemed_value;
            let versions = tx.journeys().version_stats(shop_id, id)?;
            let mut steps: BTreeMap<(i64, String), StepStats> = BTreeMap::new();
            for StepOutcomes { version, step, kind, outcome, reason, count: n } in tx.journeys().step_outcomes(shop_id, id)? {
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
            for StepMessages { version, step, channel, status, count: n } in tx.journeys().step_messages(shop_id, id)? {
                if let Some(entry) = steps.get_mut(&(version, step)) {
                    entry.messages.get_or_insert_with(MessageFigures::default).add(&status, n, settings.policy(&channel).cost_per_message);
                }
            }
            // Variants: each run's `step:variant` labels, treated runs only.
            let mut arms: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
            for (labels, converted, revenue) in tx.journeys().variant_runs(shop_id, id)? {
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
                in_progress: count(JourneyRunStatus::Active)?,
                completed: count(JourneyRunStatus::Completed)?,
                exited: count(JourneyRunStatus::Exited)?,
                failed: count(JourneyRunStatus::Failed)?,
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

impl<S: Storage + ?Sized> JourneyService for S {}
