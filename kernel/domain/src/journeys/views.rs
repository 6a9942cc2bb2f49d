//! Journeys as the API shows them: journeys, versions, runs and their steps, dry runs, test sends and statistics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::FieldError;
use crate::personal::{Personal, mask_free_text};

use super::*;

/// A journey as the API shows it, with the definition of its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Journey {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub status: JourneyStatus,
    /// Starts at 1; each change of the definition adds one. New runs take this version.
    pub version: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Runs in progress, over all versions.
    pub in_progress: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
}

/// What a client sends to create or replace a journey.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The journey graph (see the API description).
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// Validate a journey's name, description and definition.
pub fn check_input(input: &JourneyInput) -> Result<Definition, FieldError> {
    crate::check_name(&input.name, input.description.as_deref())?;
    let definition = parse(&input.definition)?;
    // Checked on save rather than in `parse`, so versions stored before keep loading (their
    // object placeholders render nothing).
    for (id, step) in &definition.steps {
        let StepKind::Send(send) = &step.kind else { continue };
        for (name, text) in &send.variables {
            for p in placeholders(text) {
                if p.rsplit('.').next().map(str::trim).is_some_and(|last| OBJECT_KEYS.contains(&last)) {
                    return Err(err(
                        format!("definition.steps.{id}.send.variables.{name}"),
                        format!("placeholder `{{{{{p}}}}}` names an object; name one of its fields, e.g. `{{{{{p}.id}}}}`"),
                    ));
                }
            }
        }
    }
    Ok(definition)
}

/// One version of a journey's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JourneyVersion {
    pub version: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// One step a run went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JourneyRunStep {
    pub step: String,
    /// `send`, `coupon`, `tag`, `points`, `wait`, `branch`, `split`, `exit`.
    pub kind: String,
    /// `done`, `skipped`, `waiting`, `waited`, `yes`, `no`, or the variant chosen.
    pub outcome: String,
    /// What was done, or why the step was skipped.
    pub detail: String,
    /// The message a send step queued.
    pub message_id: Option<String>,
    pub coupon_id: Option<i64>,
    pub at: DateTime<Utc>,
}

/// A customer's run of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JourneyRun {
    pub id: i64,
    pub journey_id: i64,
    pub journey: String,
    /// The version the run follows from entry to end.
    pub version: i64,
    pub customer_id: i64,
    pub status: JourneyRunStatus,
    /// In the holdout: goes through the journey without actions.
    pub holdout: bool,
    /// The A/B variants chosen, `step:variant`, comma-separated.
    pub variant: Option<String>,
    /// The step the run is at (while active).
    pub step: Option<String>,
    /// When the step runs (the end of a wait).
    pub due_at: Option<DateTime<Utc>>,
    /// When the engine entered the customer.
    pub entered_at: DateTime<Utc>,
    /// When what started the run happened: its trigger event's own time (an order's payment, a
    /// behaviour), else the entry. A goal converts the run when it happened no earlier.
    pub triggered_at: DateTime<Utc>,
    pub converted_at: Option<DateTime<Utc>>,
    /// The goal event's `amount`, attributed to the journey.
    pub revenue: Option<i64>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub history: Vec<JourneyRunStep>,
}

/// Who would enter a journey now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DryRun {
    /// Customers who would enter now, after the entry rules.
    pub count: i64,
    /// Of those, how many would fall in the holdout.
    pub holdout: i64,
    /// Up to 20 of their ids, in id order.
    pub sample: Vec<i64>,
    /// What "now" means for this trigger.
    pub basis: String,
}

/// A test send's result: the messages queued for the one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestSend {
    pub customer_id: i64,
    pub messages: Vec<crate::messaging::Message>,
}

/// Conversions of one group of runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct Arm {
    pub entered: i64,
    pub converted: i64,
    /// converted / entered.
    pub rate: Option<f64>,
    pub revenue: i64,
}

impl Arm {
    pub fn new(entered: i64, converted: i64, revenue: i64) -> Arm {
        Arm { entered, converted, rate: (entered > 0).then(|| converted as f64 / entered as f64), revenue }
    }
}

/// Treated runs against the holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lift {
    /// Treated rate − holdout rate.
    pub absolute: f64,
    /// (Treated rate − holdout rate) / holdout rate; `None` when the holdout converted none.
    pub relative: Option<f64>,
    /// Two-proportion z-test, two-sided.
    pub p_value: Option<f64>,
}

/// An A/B variant's conversions, tested against the first variant of its split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VariantStats {
    /// `step:variant`.
    pub variant: String,
    #[serde(flatten)]
    pub arm: Arm,
    /// Against the split's first variant (none for the first itself).
    pub p_value: Option<f64>,
}

/// Outcomes of one step of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepStats {
    pub version: i64,
    pub step: String,
    pub kind: String,
    /// Runs by outcome (`done`, `skipped`, `yes`, `waiting`, …); a wait its run left before the
    /// wait ended counts under how the run ended (`converted`, `exited`, `failed`).
    pub outcomes: BTreeMap<String, i64>,
    /// Skipped runs by reason.
    pub skipped: BTreeMap<String, i64>,
    /// For send steps: the messages queued, by their status now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageFigures>,
}

/// Runs of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionStats {
    pub version: i64,
    pub entered: i64,
    pub in_progress: i64,
    pub converted: i64,
    pub revenue: i64,
}

/// Messages the journey queued, by their status now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct MessageFigures {
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub suppressed: i64,
    /// Sent and delivered messages × their channel's `cost_per_message`.
    pub cost: i64,
}

impl MessageFigures {
    /// Count `n` messages in `status`; sent and delivered ones cost `cost_each`.
    pub fn add(&mut self, status: &str, n: i64, cost_each: i64) {
        match status {
            "queued" | "sending" => self.queued += n,
            "sent" => self.sent += n,
            "delivered" => self.delivered += n,
            "failed" => self.failed += n,
            _ => self.suppressed += n,
        }
        if matches!(status, "sent" | "delivered") {
            self.cost += n * cost_each;
        }
    }
}

/// Coupons the journey issued, and those redeemed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = JourneyCouponFigures)]
pub struct CouponFigures {
    pub issued: i64,
    pub issued_value: i64,
    pub redeemed: i64,
    /// Face value of the redeemed coupons.
    pub redeemed_value: i64,
}

/// A journey's statistics. Revenue and conversions are the goal's; cost is
/// the redeemed coupons' face value plus the messages' cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JourneyStats {
    pub journey_id: i64,
    pub entered: i64,
    pub in_progress: i64,
    pub completed: i64,
    pub exited: i64,
    pub failed: i64,
    /// Runs that reached the goal (treated and holdout).
    pub converted: i64,
    /// Goal revenue of treated runs.
    pub attributed_revenue: i64,
    pub treated: Arm,
    pub holdout: Arm,
    pub lift: Option<Lift>,
    pub messages: MessageFigures,
    pub coupons: CouponFigures,
    pub cost: i64,
    /// attributed_revenue / cost; `None` without cost.
    pub roi: Option<f64>,
    pub versions: Vec<VersionStats>,
    pub steps: Vec<StepStats>,
    pub variants: Vec<VariantStats>,
}

impl Personal for TestSend {
    fn mask_personal(&mut self) {
        self.messages.iter_mut().for_each(Personal::mask_personal);
    }
}

/// A run's history and end reason are free text a plugin, a connector or the engine wrote.
impl Personal for JourneyRun {
    fn mask_personal(&mut self) {
        for step in &mut self.history {
            step.detail = mask_free_text(&step.detail);
        }
        if let Some(reason) = self.end_reason.as_mut() {
            *reason = mask_free_text(reason);
        }
    }
}
