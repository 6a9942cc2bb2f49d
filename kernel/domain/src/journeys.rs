//! Journeys: automated marketing as a versioned JSON graph.
//!
//! A definition names a **trigger** (an event with filters, entry into a
//! segment, or a date field with an offset), **entry rules**, a **holdout**
//! share, an optional **goal** and **budget**, and **steps** by id starting at
//! `start`. A step is a wait, a branch, an A/B split, an action (send a
//! message, issue a coupon, add or remove a tag, award points) or an exit;
//! `next` (or `yes` / `no`, or each variant's `next`) names the step after it,
//! and a step without one ends the run. The graph must be acyclic, so every
//! step runs at most once per run and `(run, step)` identifies an action.
//!
//! [`parse`] validates a definition and names the faulty node
//! (`definition.steps.remind.branch.event`). The rest of this module is the
//! arithmetic of the engine that needs no I/O: when a wait ends, which arm of
//! a split or the holdout a customer falls in, how message variables are
//! filled, and the significance of a difference in conversion rates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::FieldError;
use crate::personal::{Personal, mask_free_text};
use crate::segments::{self, Node};

/// Steps in one definition.
pub const MAX_STEPS: usize = 100;
/// Longest wait, in days.
pub const MAX_WAIT_DAYS: u32 = 3660;
/// Where message variables may read from: `{{customer.name}}`, `{{coupon.code}}` …
pub const VARIABLE_ROOTS: [&str; 4] = ["customer", "trigger", "coupon", "journey"];

/// Keys of payloads that hold objects or lists (an order, its items, identifiers, a profile):
/// a placeholder must name a scalar, so one ending at such a key is refused when a journey is
/// saved ([`check_input`]), for every author. Any other path resolving to an object or a list
/// renders nothing ([`render`]).
const OBJECT_KEYS: [&str; 6] = ["order", "items", "identities", "profile", "customer", "attributes"];

/// A journey's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JourneyStatus {
    /// Being written: no entries, no runs.
    Draft,
    /// Customers enter and runs advance.
    Active,
    /// No entries; runs hold where they are and resume when the journey is activated again.
    Paused,
    /// Ended for good: running customers exit.
    Archived,
}

impl JourneyStatus {
    pub const ALL: [JourneyStatus; 4] = [JourneyStatus::Draft, JourneyStatus::Active, JourneyStatus::Paused, JourneyStatus::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStatus::Draft => "draft",
            JourneyStatus::Active => "active",
            JourneyStatus::Paused => "paused",
            JourneyStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<JourneyStatus> {
        Self::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// Whether a journey in this state may move to `to`; the reason when not.
    pub fn transition(self, to: JourneyStatus) -> Result<(), String> {
        use JourneyStatus::*;
        match (self, to) {
            (Draft | Paused, Active) | (Active, Paused) | (Draft | Active | Paused, Archived) => Ok(()),
            (from, to) if from == to => Err(format!("the journey is already {}", to.as_str())),
            (from, to) => Err(format!("a journey that is {} cannot become {}", from.as_str(), to.as_str())),
        }
    }
}

/// Where a customer's run of a journey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JourneyRunStatus {
    /// In progress: at a step, or waiting for its time.
    Active,
    /// Went through the last step.
    Completed,
    /// Left at an exit step, or because the journey was archived or the customer is gone.
    Exited,
    /// Reached the goal while in progress (a conversion after the run ended keeps its status).
    Converted,
    /// A step failed in a way the engine could not record as skipped; see `end_reason`.
    Failed,
}

impl JourneyRunStatus {
    pub const ALL: [JourneyRunStatus; 5] = [
        JourneyRunStatus::Active,
        JourneyRunStatus::Completed,
        JourneyRunStatus::Exited,
        JourneyRunStatus::Converted,
        JourneyRunStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JourneyRunStatus::Active => "active",
            JourneyRunStatus::Completed => "completed",
            JourneyRunStatus::Exited => "exited",
            JourneyRunStatus::Converted => "converted",
            JourneyRunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JourneyRunStatus> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A test on a field of an event's payload; a path through an array matches when any element does
/// (`items.category` matches an order with one item in the category).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldTest {
    /// A dotted path into the payload, e.g. `amount`, `kind`, `items.sku`.
    pub field: String,
    pub op: FieldOp,
    /// Not needed for `exists`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: Value,
}

impl FieldTest {
    /// Whether the test could narrow a phone or e-mail address written in free text, by the
    /// segment language's rule ([`segments::narrows_free_text`]).
    pub fn narrows_free_text(&self) -> bool {
        use segments::{Scalar, Test};
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(Scalar::Text(s.clone())),
            Value::Number(n) => n.as_i64().map(Scalar::Integer).or_else(|| n.as_f64().map(Scalar::Real)),
            _ => None,
        };
        let one = |v: &Value| scalar(v).unwrap_or(Scalar::Bool(false));
        let test = match self.op {
            FieldOp::Eq => Test::Eq(one(&self.value)),
            FieldOp::Ne => Test::Ne(one(&self.value)),
            FieldOp::Lt => Test::Lt(one(&self.value)),
            FieldOp::Lte => Test::Lte(one(&self.value)),
            FieldOp::Gt => Test::Gt(one(&self.value)),
            FieldOp::Gte => Test::Gte(one(&self.value)),
            FieldOp::Contains => Test::Contains(one(&self.value)),
            FieldOp::In => Test::In(self.value.as_array().into_iter().flatten().filter_map(scalar).collect()),
            FieldOp::Exists => Test::Exists(true),
        };
        segments::narrows_free_text(&test)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldOp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Contains,
    Exists,
}

/// What starts a run: exactly one of `event`, `segment`, `date`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// An event type of the log, e.g. `order.paid`, `behaviour.recorded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Tests on the event's payload, all of which must hold (`event` triggers only).
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FieldTest>,
    /// Entry into this segment (its `segment.entered` events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<i64>,
    /// A date of the customer's, each year, with an offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTrigger>,
    /// A condition in the segment language the customer must meet when entering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub customer: Option<Value>,
}

/// "Birthday − 7 days at 10:00": customers enter on the day `offset_days` from the anniversary of `field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateTrigger {
    /// `birthday`, or `attributes.<name>` holding a date `YYYY-MM-DD`.
    pub field: String,
    /// Days from the anniversary: −7 enters a week before.
    #[serde(default)]
    pub offset_days: i32,
    /// Time of day in the shop's zone at which customers enter (`HH:MM`, default 09:00).
    #[serde(default)]
    pub at: Option<String>,
}

/// Who may enter, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EntryRules {
    /// Whether a customer who has been through the journey may enter again.
    pub reentry: bool,
    /// Days between two entries of one customer (with `reentry`).
    pub min_interval_days: u32,
    /// Runs of one customer in progress at once (with `reentry`).
    pub max_concurrent: u32,
}

impl Default for EntryRules {
    fn default() -> Self {
        EntryRules { reentry: false, min_interval_days: 0, max_concurrent: 1 }
    }
}

/// The event that counts as a conversion, within `within_days` of entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    pub event: String,
    pub within_days: u32,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FieldTest>,
}

/// Limits on what the journey spends; an action past a limit is skipped with the reason.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Coupons issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub coupons: Option<i64>,
    /// Face value of coupons issued, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1e17)]
    pub coupon_value: Option<i64>,
    /// Messages sent (suppressed and failed ones do not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub messages: Option<i64>,
    /// Cost of messages sent, by each channel's `cost_per_message`, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1e17)]
    pub message_cost: Option<i64>,
}

/// Send a message through the shop's connector for `channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendAction {
    pub channel: String,
    pub template: String,
    /// Values may hold placeholders: `{{customer.name}}`, `{{trigger.amount}}`, `{{coupon.code}}`,
    /// `{{coupon.expires_at}}`, `{{journey.name}}`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl SendAction {
    /// The variables whose text reads personal data through a placeholder (`{{customer.name}}`,
    /// `{{trigger.value}}`); their rendered values are masked without `pii:read`.
    pub fn personal_variables(&self) -> Vec<String> {
        self.variables
            .iter()
            .filter(|(_, text)| placeholders(text).into_iter().any(crate::personal::is_personal_placeholder))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Issue a coupon; `by_trigger_amount` sizes it from the triggering event's `amount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponAction {
    pub template_id: i64,
    /// The template of the highest `at_least` the trigger's amount reaches (else `template_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_trigger_amount: Vec<CouponTier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponTier {
    pub at_least: i64,
    pub template_id: i64,
}

impl CouponAction {
    /// The template for a trigger amount.
    pub fn template_for(&self, amount: Option<i64>) -> i64 {
        let amount = amount.unwrap_or(0);
        self.by_trigger_amount
            .iter()
            .filter(|t| amount >= t.at_least)
            .max_by_key(|t| t.at_least)
            .map_or(self.template_id, |t| t.template_id)
    }

    pub fn templates(&self) -> Vec<i64> {
        std::iter::once(self.template_id).chain(self.by_trigger_amount.iter().map(|t| t.template_id)).collect()
    }
}

/// Add or remove a tag (exactly one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    /// Removes the tag whatever set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsAction {
    pub award: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Wait a duration, then (with `until`) to the next time of day in the shop's zone;
/// or until `before_coupon_expires_days` before the run's coupon expires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Wait {
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    /// `HH:MM` in the shop's zone: after the duration, wait on to the next such time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Days before the expiry of the coupon this run issued last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_coupon_expires_days: Option<u32>,
}

/// A branch: `customer` (the segment language, now) or `event` (did it happen since entry).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub customer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FieldTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub variant: String,
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A step as written: exactly one of the kinds, and where to go next.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<CouponAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<PointsAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Branch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<Variant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// After a branch that holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yes: Option<String>,
    /// After a branch that does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no: Option<String>,
}

/// A definition as written (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionInput {
    pub trigger: Trigger,
    #[serde(default)]
    pub entry: EntryRules,
    /// Share of entering customers (0–90 %) who receive no actions, to measure lift.
    #[serde(default)]
    pub holdout_percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    #[serde(default)]
    pub budget: Budget,
    pub start: String,
    pub steps: BTreeMap<String, StepInput>,
}

/// What a validated step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Send(SendAction),
    Coupon(CouponAction),
    Tag(TagAction),
    Points(PointsAction),
    Wait(Wait),
    BranchCustomer(Node),
    BranchEvent(String, Vec<FieldTest>),
    Split(Vec<Variant>),
    Exit,
}

impl StepKind {
    /// The kind's name, as statistics and run histories show it.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Send(_) => "send",
            StepKind::Coupon(_) => "coupon",
            StepKind::Tag(_) => "tag",
            StepKind::Points(_) => "points",
            StepKind::Wait(_) => "wait",
            StepKind::BranchCustomer(_) | StepKind::BranchEvent(..) => "branch",
            StepKind::Split(_) => "split",
            StepKind::Exit => "exit",
        }
    }

    /// Whether this step acts on the customer (and is skipped for the holdout).
    pub fn is_action(&self) -> bool {
        matches!(self, StepKind::Send(_) | StepKind::Coupon(_) | StepKind::Tag(_) | StepKind::Points(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub next: Option<String>,
    pub yes: Option<String>,
    pub no: Option<String>,
}

/// What starts a run, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    Event { event: String, filters: Vec<FieldTest> },
    Segment(i64),
    Date { field: DateField, offset_days: i32, at: NaiveTime },
}

/// The customer date a date trigger reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateField {
    Birthday,
    Attribute(String),
}

/// A validated definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub trigger: TriggerKind,
    /// The trigger's condition on the customer.
    pub audience: Option<Node>,
    pub entry: EntryRules,
    pub holdout_percent: u8,
    pub goal: Option<Goal>,
    pub budget: Budget,
    pub start: String,
    pub steps: BTreeMap<String, Step>,
}

impl Definition {
    /// Segments the definition names (trigger, conditions), for checks at save.
    pub fn segments(&self) -> Vec<i64> {
        let mut out: BTreeSet<i64> = BTreeSet::new();
        if let TriggerKind::Segment(id) = self.trigger {
            out.insert(id);
        }
        out.extend(self.audience.iter().flat_map(Node::segments));
        for step in self.steps.values() {
            if let StepKind::BranchCustomer(node) = &step.kind {
                out.extend(node.segments());
            }
        }
        out.into_iter().collect()
    }

    /// Where the definition reads personal data (see [`crate::personal`]): placeholders of
    /// message variables and payload tests through a personal key, by node path. A key
    /// without `pii:read` may not write such a definition; the recipient a connector fills
    /// is not a placeholder and needs none.
    pub fn personal_references(&self) -> Vec<String> {
        use crate::personal::{PERSONAL_KEYS, is_personal_attribute};
        let mut out = Vec::new();
        let mut filters: Vec<(String, &[FieldTest])> = Vec::new();
        if let TriggerKind::Event { filters: f, .. } = &self.trigger {
            filters.push(("definition.trigger.where".into(), f));
        }
        if let Some(goal) = &self.goal {
            filters.push(("definition.goal.where".into(), &goal.filters));
        }
        for (id, step) in &self.steps {
            match &step.kind {
                StepKind::BranchEvent(_, f) => filters.push((format!("definition.steps.{id}.branch.where"), f)),
                StepKind::Send(send) => {
                    out.extend(send.personal_variables().into_iter().map(|name| format!("definition.steps.{id}.send.variables.{name}")));
                }
                _ => {}
            }
        }
        for (path, tests) in filters {
            for (i, t) in tests.iter().enumerate() {
                if t.field.split('.').any(|p| PERSONAL_KEYS.contains(&p) || is_personal_attribute(p)) {
                    out.push(format!("{path}[{i}].field"));
                } else if t.narrows_free_text() {
                    out.push(format!("{path}[{i}].value"));
                }
            }
        }
        if let Some(audience) = &self.audience {
            out.extend(audience.personal_references("definition.trigger.customer"));
        }
        for (id, step) in &self.steps {
            if let StepKind::BranchCustomer(node) = &step.kind {
                out.extend(node.personal_references(&format!("definition.steps.{id}.branch.customer")));
            }
        }
        out
    }

    /// Coupon templates the definition issues, with the step that issues each.
    pub fn coupon_templates(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for (id, step) in &self.steps {
            if let StepKind::Coupon(c) = &step.kind {
                out.extend(c.templates().into_iter().map(|t| (id.clone(), t)));
            }
        }
        out
    }
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError::new(path, reason)
}

/// Re-root a segment-language error (`definition.and[0]`) at `path`.
fn segment_node(value: &Value, path: &str) -> Result<Node, FieldError> {
    segments::parse(value).map_err(|e| {
        let rest = e.field.strip_prefix("definition").unwrap_or(&e.field);
        FieldError::new(format!("{path}{rest}"), e.reason)
    })
}

fn time_of_day(text: &str, path: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| err(path, format!("`{text}` is not a time of day HH:MM")))
}

fn event_type(text: &str, path: &str) -> Result<(), FieldError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.contains('.')
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(err(path, format!("`{text}` is not an event type like `order.paid`"))) }
}

fn field_tests(tests: &[FieldTest], path: &str) -> Result<(), FieldError> {
    use crate::text::{MAX_FILTERS, MAX_ITEMS, MAX_TEXT};
    if tests.len() > MAX_FILTERS {
        return Err(err(path, format!("must hold at most {MAX_FILTERS} tests")));
    }
    for (i, t) in tests.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if t.field.is_empty() || t.field.len() > 200 || t.field.split('.').any(str::is_empty) {
            return Err(err(format!("{at}.field"), "must be a dotted path such as `amount` or `items.sku`"));
        }
        crate::text::check(&format!("{at}.field"), &t.field)?;
        let values: Vec<&Value> = match &t.value {
            Value::Array(items) if items.len() > MAX_ITEMS => {
                return Err(err(format!("{at}.value"), format!("must hold at most {MAX_ITEMS} values")));
            }
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for v in values {
            match v {
                Value::String(text) => crate::text::check_free(&format!("{at}.value"), text, MAX_TEXT)?,
                Value::Object(_) | Value::Array(_) => return Err(err(format!("{at}.value"), "must be a string, a number or a boolean")),
                _ => {}
            }
        }
        let fits = match t.op {
            FieldOp::Exists => t.value.is_boolean() || t.value.is_null(),
            FieldOp::In => t.value.as_array().is_some_and(|a| !a.is_empty()),
            FieldOp::Lt | FieldOp::Lte | FieldOp::Gt | FieldOp::Gte => t.value.is_number() || t.value.is_string(),
            FieldOp::Eq | FieldOp::Ne | FieldOp::Contains => !t.value.is_null(),
        };
        if !fits {
            return Err(err(format!("{at}.value"), format!("does not fit operator {:?}", t.op).to_lowercase()));
        }
    }
    Ok(())
}

fn valid_step_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// The placeholders in a variable's text: `{{ root.path }}`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Validate a definition; errors name the faulty node under `definition`.
pub fn parse(value: &Value) -> Result<Definition, FieldError> {
    let input: DefinitionInput = serde_path_to_error::deserialize(value)
        .map_err(|e| FieldError::from_serde(&e.path().to_string(), e.inner().to_string()).within("definition"))?;
    let d = "definition";
    let t = &input.trigger;
    let kinds = [t.event.is_some(), t.segment.is_some(), t.date.is_some()].iter().filter(|b| **b).count();
    if kinds != 1 {
        return Err(err(format!("{d}.trigger"), "name exactly one of `event`, `segment`, `date`"));
    }
    if !t.filters.is_empty() && t.event.is_none() {
        return Err(err(format!("{d}.trigger.where"), "applies to `event` triggers only"));
    }
    let trigger = if let Some(event) = &t.event {
        event_type(event, &format!("{d}.trigger.event"))?;
        field_tests(&t.filters, &format!("{d}.trigger.where"))?;
        TriggerKind::Event { event: event.clone(), filters: t.filters.clone() }
    } else if let Some(segment) = t.segment {
        TriggerKind::Segment(segment)
    } else {
        let date = t.date.as_ref().expect("one trigger kind");
        let field = match date.field.as_str() {
            "birthday" => DateField::Birthday,
            other => match other.strip_prefix("attributes.") {
                Some(name) if !name.is_empty() && !name.contains(['"', '\'', '$']) => DateField::Attribute(name.to_owned()),
                _ => return Err(err(format!("{d}.trigger.date.field"), "must be `birthday` or `attributes.<name>`")),
            },
        };
        if date.offset_days.unsigned_abs() > 366 {
            return Err(err(format!("{d}.trigger.date.offset_days"), "must be within a year (−366 to 366)"));
        }
        let at = match &date.at {
            Some(at) => time_of_day(at, &format!("{d}.trigger.date.at"))?,
            None => NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"),
        };
        TriggerKind::Date { field, offset_days: date.offset_days, at }
    };
    let audience = t.customer.as_ref().map(|c| segment_node(c, &format!("{d}.trigger.customer"))).transpose()?;
    if input.entry.reentry && input.entry.max_concurrent == 0 {
        return Err(err(format!("{d}.entry.max_concurrent"), "must be at least 1"));
    }
    if input.holdout_percent > 90 {
        return Err(err(format!("{d}.holdout_percent"), "must be from 0 to 90"));
    }
    if let Some(goal) = &input.goal {
        event_type(&goal.event, &format!("{d}.goal.event"))?;
        if goal.within_days == 0 || goal.within_days > MAX_WAIT_DAYS {
            return Err(err(format!("{d}.goal.within_days"), format!("must be from 1 to {MAX_WAIT_DAYS}")));
        }
        field_tests(&goal.filters, &format!("{d}.goal.where"))?;
    }
    for (name, limit, max) in [
        ("coupons", input.budget.coupons, crate::money::MAX_COUNT),
        ("coupon_value", input.budget.coupon_value, crate::money::MAX_TOTAL),
        ("messages", input.budget.messages, crate::money::MAX_COUNT),
        ("message_cost", input.budget.message_cost, crate::money::MAX_TOTAL),
    ] {
        if let Some(limit) = limit {
            crate::money::check_range(&format!("{d}.budget.{name}"), limit, 0, max)?;
        }
    }
    if input.steps.is_empty() {
        return Err(err(format!("{d}.steps"), "must hold at least one step"));
    }
    if input.steps.len() > MAX_STEPS {
        return Err(err(format!("{d}.steps"), format!("a journey holds at most {MAX_STEPS} steps")));
    }
    let mut steps = BTreeMap::new();
    for (id, raw) in &input.steps {
        let at = format!("{d}.steps.{id}");
        if !valid_step_id(id) {
            return Err(err(at, "a step id is 1 to 40 letters, digits, `_` or `-`"));
        }
        steps.insert(id.clone(), step(raw, &at)?);
    }
    if !steps.contains_key(&input.start) {
        return Err(err(format!("{d}.start"), format!("names no step: `{}`", input.start)));
    }
    for (id, step) in &steps {
        for (field, target) in step.targets() {
            if !steps.contains_key(target) {
                return Err(err(format!("{d}.steps.{id}.{field}"), format!("names no step: `{target}`")));
            }
        }
    }
    check_graph(&input.start, &steps)?;
    Ok(Definition {
        trigger,
        audience,
        entry: input.entry,
        holdout_percent: input.holdout_percent,
        goal: input.goal,
        budget: input.budget,
        start: input.start,
        steps,
    })
}

impl Step {
    /// The steps this one leads to, with the field that names each.
    fn targets(&self) -> Vec<(String, &String)> {
        let mut out: Vec<(String, &String)> = Vec::new();
        for (field, target) in [("next", &self.next), ("yes", &self.yes), ("no", &self.no)] {
            if let Some(t) = target {
                out.push((field.into(), t));
            }
        }
        if let StepKind::Split(variants) = &self.kind {
            for (i, v) in variants.iter().enumerate() {
                if let Some(t) = &v.next {
                    out.push((format!("split[{i}].next"), t));
                }
            }
        }
        out
    }
}

fn step(raw: &StepInput, at: &str) -> Result<Step, FieldError> {
    let present: Vec<&str> = [
        ("send", raw.send.is_some()),
        ("coupon", raw.coupon.is_some()),
        ("tag", raw.tag.is_some()),
        ("points", raw.points.is_some()),
        ("wait", raw.wait.is_some()),
        ("branch", raw.branch.is_some()),
        ("split", raw.split.is_some()),
        ("exit", raw.exit.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.then_some(k))
    .collect();
    let kind = match present.as_slice() {
        [one] => *one,
        [] => return Err(err(at, "expected one of send, coupon, tag, points, wait, branch, split, exit")),
        many => return Err(err(at, format!("holds {} at once; a step does one thing", many.join(" and ")))),
    };
    let branching = kind == "branch";
    if !branching && (raw.yes.is_some() || raw.no.is_some()) {
        return Err(err(format!("{at}.{}", if raw.yes.is_some() { "yes" } else { "no" }), "only a branch has `yes` and `no`"));
    }
    if (branching || kind == "split" || kind == "exit") && raw.next.is_some() {
        return Err(err(format!("{at}.next"), format!("a {kind} step has no `next`")));
    }
    let kind = match kind {
        "send" => {
            let s = raw.send.clone().expect("present");
            if !crate::messaging::valid_channel(&s.channel) {
                return Err(err(format!("{at}.send.channel"), "expected lower-case letters, digits or `-`, e.g. `sms`"));
            }
            if s.template.trim().is_empty() || s.template.len() > 200 {
                return Err(err(format!("{at}.send.template"), "must be 1 to 200 bytes"));
            }
            if s.variables.len() > crate::text::MAX_VARIABLES {
                return Err(err(format!("{at}.send.variables"), format!("must hold at most {} variables", crate::text::MAX_VARIABLES)));
            }
            for (name, text) in &s.variables {
                if name.is_empty() || name.len() > 64 {
                    return Err(err(format!("{at}.send.variables"), "variable names are 1 to 64 bytes"));
                }
                crate::text::check(&format!("{at}.send.variables"), name)?;
                crate::text::check_free(&format!("{at}.send.variables.{name}"), text, crate::text::MAX_TEXT)?;
                for p in placeholders(text) {
                    let root = p.split('.').next().unwrap_or_default();
                    if !VARIABLE_ROOTS.contains(&root) || !p.contains('.') {
                        return Err(err(
                            format!("{at}.send.variables.{name}"),
                            format!("placeholder `{{{{{p}}}}}` must start with one of {}", VARIABLE_ROOTS.join(", ")),
                        ));
                    }
                }
            }
            StepKind::Send(s)
        }
        "coupon" => {
            let c = raw.coupon.clone().expect("present");
            if let Some(i) = c.by_trigger_amount.iter().position(|t| t.at_least < 0) {
                return Err(err(format!("{at}.coupon.by_trigger_amount[{i}].at_least"), "must not be negative"));
            }
            StepKind::Coupon(c)
        }
        "tag" => {
            let t = raw.tag.clone().expect("present");
            let name = match (&t.add, &t.remove) {
                (Some(n), None) | (None, Some(n)) => n,
                _ => return Err(err(format!("{at}.tag"), "name exactly one of `add`, `remove`")),
            };
            if name.trim().is_empty() || name.len() > 64 {
                return Err(err(format!("{at}.tag"), "a tag is 1 to 64 bytes"));
            }
            crate::text::check(&format!("{at}.tag"), name)?;
            StepKind::Tag(t)
        }
        "points" => {
            let p = raw.points.clone().expect("present");
            if p.award <= 0 || p.award > 1_000_000 {
                return Err(err(format!("{at}.points.award"), "must be from 1 to 1000000"));
            }
            if p.expires_in_days.is_some_and(|d| d == 0 || d > MAX_WAIT_DAYS) {
                return Err(err(format!("{at}.points.expires_in_days"), format!("must be from 1 to {MAX_WAIT_DAYS}")));
            }
            StepKind::Points(p)
        }
        "wait" => {
            let w = raw.wait.clone().expect("present");
            if let Some(until) = &w.until {
                time_of_day(until, &format!("{at}.wait.until"))?;
            }
            let minutes = u64::from(w.days) * 1440 + u64::from(w.hours) * 60 + u64::from(w.minutes);
            if minutes > u64::from(MAX_WAIT_DAYS) * 1440 {
                return Err(err(format!("{at}.wait"), format!("waits at most {MAX_WAIT_DAYS} days")));
            }
            match w.before_coupon_expires_days {
                Some(_) if minutes > 0 || w.until.is_some() => {
                    return Err(err(format!("{at}.wait.before_coupon_expires_days"), "stands alone: no duration or `until` with it"));
                }
                None if minutes == 0 && w.until.is_none() => {
                    return Err(err(
                        format!("{at}.wait"),
                        "give a duration (days, hours, minutes), `until` or `before_coupon_expires_days`",
                    ));
                }
                _ => {}
            }
            StepKind::Wait(w)
        }
        "branch" => {
            let b = raw.branch.clone().expect("present");
            let kind = match (&b.customer, &b.event) {
                (Some(c), None) if b.filters.is_empty() => StepKind::BranchCustomer(segment_node(c, &format!("{at}.branch.customer"))?),
                (None, Some(e)) => {
                    event_type(e, &format!("{at}.branch.event"))?;
                    field_tests(&b.filters, &format!("{at}.branch.where"))?;
                    StepKind::BranchEvent(e.clone(), b.filters.clone())
                }
                (Some(_), None) => return Err(err(format!("{at}.branch.where"), "applies to `event` branches only")),
                _ => return Err(err(format!("{at}.branch"), "name exactly one of `customer`, `event`")),
            };
            if raw.yes.is_none() && raw.no.is_none() {
                return Err(err(format!("{at}.yes"), "a branch leads somewhere: give `yes`, `no` or both"));
            }
            kind
        }
        "split" => {
            let variants = raw.split.clone().expect("present");
            if variants.len() < 2 || variants.len() > 10 {
                return Err(err(format!("{at}.split"), "holds 2 to 10 variants"));
            }
            let mut names = BTreeSet::new();
            for (i, v) in variants.iter().enumerate() {
                if v.weight == 0 || v.weight > 10_000 {
                    return Err(err(format!("{at}.split[{i}].weight"), "must be from 1 to 10000"));
                }
                if v.variant.trim().is_empty() || v.variant.len() > 40 || v.variant.contains(',') || !names.insert(v.variant.clone()) {
                    return Err(err(format!("{at}.split[{i}].variant"), "names are 1 to 40 bytes without commas, each once"));
                }
            }
            StepKind::Split(variants)
        }
        _ => {
            if raw.exit != Some(true) {
                return Err(err(format!("{at}.exit"), "must be `true`"));
            }
            StepKind::Exit
        }
    };
    Ok(Step { kind, next: raw.next.clone(), yes: raw.yes.clone(), no: raw.no.clone() })
}

/// Every step reachable from `start`, and no cycle.
fn check_graph(start: &str, steps: &BTreeMap<String, Step>) -> Result<(), FieldError> {
    // Depth-first with colours: grey on the path, black done.
    fn visit<'a>(
        id: &'a str,
        steps: &'a BTreeMap<String, Step>,
        grey: &mut BTreeSet<&'a str>,
        black: &mut BTreeSet<&'a str>,
    ) -> Result<(), FieldError> {
        if black.contains(id) {
            return Ok(());
        }
        grey.insert(id);
        for (field, target) in steps[id].targets() {
            if grey.contains(target.as_str()) {
                return Err(err(
                    format!("definition.steps.{id}.{field}"),
                    format!("`{target}` leads back here: a journey's steps may not loop"),
                ));
            }
            visit(target, steps, grey, black)?;
        }
        grey.remove(id);
        black.insert(id);
        Ok(())
    }
    let mut black = BTreeSet::new();
    visit(start, steps, &mut BTreeSet::new(), &mut black)?;
    if let Some(lost) = steps.keys().find(|k| !black.contains(k.as_str())) {
        return Err(err(format!("definition.steps.{lost}"), "is not reachable from `start`"));
    }
    Ok(())
}

/// A stable number for a customer in a journey (and a salt such as a split's step id):
/// holdouts and variants depend on nothing else, so a customer always lands in the same arm.
pub fn bucket(journey_id: i64, salt: &str, customer_id: i64) -> u64 {
    // FNV-1a over the inputs, then the splitmix64 finaliser to spread the bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in journey_id.to_le_bytes().iter().chain(salt.as_bytes()).chain(customer_id.to_le_bytes().iter()) {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Whether a customer is in the journey's holdout.
pub fn in_holdout(journey_id: i64, customer_id: i64, percent: u8) -> bool {
    bucket(journey_id, "holdout", customer_id) % 10_000 < u64::from(percent) * 100
}

/// The variant of a split a customer falls in, by weight.
pub fn choose_variant<'a>(journey_id: i64, step_id: &str, customer_id: i64, variants: &'a [Variant]) -> &'a Variant {
    let total: u64 = variants.iter().map(|v| u64::from(v.weight)).sum::<u64>().max(1);
    let mut point = bucket(journey_id, step_id, customer_id) % total;
    for v in variants {
        if point < u64::from(v.weight) {
            return v;
        }
        point -= u64::from(v.weight);
    }
    &variants[variants.len() - 1]
}

/// The next `at` in `zone` at or after `from`.
pub fn next_time_of_day(zone: Tz, from: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let local = from.with_timezone(&zone).date_naive();
    for day in 0..3 {
        let date = local + Duration::days(day);
        // A time skipped by a DST jump is taken an hour later.
        let candidate = zone
            .from_local_datetime(&date.and_time(at))
            .earliest()
            .or_else(|| zone.from_local_datetime(&(date.and_time(at) + Duration::hours(1))).earliest());
        if let Some(c) = candidate.map(|c| c.with_timezone(&Utc))
            && c >= from
        {
            return c;
        }
    }
    from
}

impl Wait {
    /// When a wait that starts at `from` ends. `None` for a coupon-relative wait without a coupon.
    pub fn ends(&self, zone: Tz, from: DateTime<Utc>, coupon_expires: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        if let Some(days) = self.before_coupon_expires_days {
            return coupon_expires.map(|e| e - Duration::days(i64::from(days)));
        }
        let mut end = from
            + Duration::days(i64::from(self.days))
            + Duration::hours(i64::from(self.hours))
            + Duration::minutes(i64::from(self.minutes));
        if let Some(until) = &self.until
            && let Ok(at) = NaiveTime::parse_from_str(until, "%H:%M")
        {
            end = next_time_of_day(zone, end, at);
        }
        Some(end)
    }
}

/// The shop date on which customers whose date falls on `anniversary` enter: the date `offset_days` away.
pub fn entry_anniversary(today: NaiveDate, offset_days: i32) -> NaiveDate {
    // Entering `offset_days` from the anniversary means the anniversary is `-offset_days` from today.
    today - Duration::days(i64::from(offset_days))
}

/// Values along a dotted path; arrays on the way fan out.
fn values_at<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| values_at(i, path, out)),
        (_, None) => out.push(value),
        (Value::Object(map), Some((head, rest))) => {
            if let Some(v) = map.get(*head) {
                values_at(v, rest, out);
            }
        }
        _ => {}
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl FieldTest {
    /// Whether `payload` passes: any value at the path passes the operator (`ne`: none equals).
    pub fn holds(&self, payload: &Value) -> bool {
        use std::cmp::Ordering::*;
        let path: Vec<&str> = self.field.split('.').collect();
        let mut found = Vec::new();
        values_at(payload, &path, &mut found);
        found.retain(|v| !v.is_null());
        let any = |f: &dyn Fn(&Value) -> bool| found.iter().any(|v| f(v));
        match self.op {
            FieldOp::Exists => found.is_empty() != self.value.as_bool().unwrap_or(true),
            FieldOp::Eq => any(&|v| v == &self.value || compare(v, &self.value) == Some(Equal)),
            FieldOp::Ne => !any(&|v| v == &self.value || compare(v, &self.value) == Some(Equal)),
            FieldOp::Lt => any(&|v| compare(v, &self.value) == Some(Less)),
            FieldOp::Lte => any(&|v| matches!(compare(v, &self.value), Some(Less | Equal))),
            FieldOp::Gt => any(&|v| compare(v, &self.value) == Some(Greater)),
            FieldOp::Gte => any(&|v| matches!(compare(v, &self.value), Some(Greater | Equal))),
            FieldOp::In => {
                let list = self.value.as_array().cloned().unwrap_or_default();
                any(&|v| list.iter().any(|x| x == v || compare(v, x) == Some(Equal)))
            }
            FieldOp::Contains => any(&|v| match (v, &self.value) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), needle) => items.contains(needle),
                _ => false,
            }),
        }
    }
}

/// Whether every test holds.
pub fn all_hold(tests: &[FieldTest], payload: &Value) -> bool {
    tests.iter().all(|t| t.holds(payload))
}

/// Fill `{{root.path}}` placeholders from `context`; a missing value is left empty.
///
/// Only scalars are written (strings, numbers, booleans): a placeholder resolving to an object or
/// an array renders nothing. Whether a placeholder reads personal data is decided by its path
/// ([`crate::personal::is_personal_placeholder`]), and a path that stops at an object holding a
/// personal field (`{{trigger}}`, `{{trigger.order}}`, a payload shaped unlike the one its author
/// expected) would otherwise copy that field unmarked: names, nicks and union ids are masked in
/// messages only when their variable is marked personal.
pub fn render(text: &str, context: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let path: Vec<&str> = after[..end].trim().split('.').collect();
        match value_at(context, &path) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(Value::Null | Value::Object(_) | Value::Array(_)) | None => {}
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The first value at `path`, through lists on the way (`trigger.order.items.sku` is the first
/// item's); a path ending at a list gives the list itself, which [`render`] leaves empty.
fn value_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    match (value, path.split_first()) {
        (_, None) => Some(value),
        (Value::Array(items), Some(_)) => items.iter().find_map(|i| value_at(i, path)),
        (Value::Object(map), Some((head, rest))) => map.get(*head).and_then(|v| value_at(v, rest)),
        _ => None,
    }
}

/// The two-sided p-value of a two-proportion z-test (pooled): `x1` of `n1` against `x2` of `n2`.
/// `None` when a group is empty or the pooled rate is 0 or 1 (no variance to test).
pub fn two_proportion_p_value(x1: i64, n1: i64, x2: i64, n2: i64) -> Option<f64> {
    if n1 <= 0 || n2 <= 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if variance <= 0.0 {
        return None;
    }
    let z = (x1 / n1 - x2 / n2) / variance.sqrt();
    Some(libm::erfc(z.abs() / std::f64::consts::SQRT_2))
}

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn first_order() -> Value {
        json!({
            "trigger": {"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]},
            "goal": {"event": "order.paid", "within_days": 30},
            "start": "card",
            "steps": {
                "card": {"send": {"channel": "sms", "template": "CARD", "variables": {"name": "{{customer.name}}"}}, "next": "wait15"},
                "wait15": {"wait": {"days": 15}, "next": "coupon"},
                "coupon": {"coupon": {"template_id": 1, "by_trigger_amount": [{"at_least": 20000, "template_id": 2}]}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "COUPON", "variables": {"code": "{{coupon.code}}"}}, "next": "before"},
                "before": {"wait": {"before_coupon_expires_days": 3}, "next": "bought"},
                "bought": {"branch": {"event": "order.paid"}, "no": "remind"},
                "remind": {"send": {"channel": "sms", "template": "REMIND"}}
            }
        })
    }

    #[test]
    fn the_seed_journey_parses() {
        let d = parse(&first_order()).unwrap();
        assert_eq!(d.steps.len(), 7);
        assert!(matches!(d.trigger, TriggerKind::Event { ref event, .. } if event == "order.paid"));
        assert_eq!(d.coupon_templates(), vec![("coupon".to_string(), 1), ("coupon".to_string(), 2)]);
        let StepKind::Coupon(c) = &d.steps["coupon"].kind else { panic!() };
        assert_eq!((c.template_for(Some(9_000)), c.template_for(Some(20_000)), c.template_for(None)), (1, 2, 1));
    }

    #[test]
    fn errors_point_at_the_faulty_node() {
        let with = |pointer: &str, value: Value| {
            let mut d = first_order();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match d.pointer_mut(parent).unwrap() {
                Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
                parent => _ = parent.as_object_mut().unwrap().insert(key.to_owned(), value),
            }
            d
        };
        let cases = [
            (with("/start", json!("nowhere")), "definition.start", "names no step"),
            (with("/steps/card/next", json!("ghost")), "definition.steps.card.next", "names no step"),
            (with("/steps/remind/next", json!("card")), "definition.steps.remind.next", "may not loop"),
            (with("/steps/bought/branch", json!({"event": "paid"})), "definition.steps.bought.branch.event", "event type"),
            (
                with("/steps/bought/branch", json!({"customer": {"stat": "spend", "op": "gt", "value": 1}})),
                "definition.steps.bought.branch.customer.stat",
                "unknown stat",
            ),
            (with("/steps/wait15/wait", json!({"days": 1, "until": "25:00"})), "definition.steps.wait15.wait.until", "HH:MM"),
            (with("/steps/wait15/wait", json!({})), "definition.steps.wait15.wait", "give a duration"),
            (with("/steps/wait15/wait", json!({"weeks": 2})), "definition.steps.wait15.wait.weeks", "unknown field"),
            (with("/steps/card/send/variables/name", json!("{{order.id}}")), "definition.steps.card.send.variables.name", "placeholder"),
            (with("/steps/card/coupon", json!({"template_id": 1})), "definition.steps.card", "at once"),
            (with("/trigger/segment", json!(3)), "definition.trigger", "exactly one"),
            (with("/holdout_percent", json!(95)), "definition.holdout_percent", "0 to 90"),
            (with("/goal/within_days", json!(0)), "definition.goal.within_days", "from 1"),
            (with("/steps/lost", json!({"exit": true})), "definition.steps.lost", "not reachable"),
            (with("/trigger/where/0/op", json!("like")), "definition.trigger.where[0].op", "unknown variant"),
        ];
        for (definition, field, reason) in cases {
            let e = parse(&definition).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(reason), "{field}: {e}");
        }
    }

    #[test]
    fn splits_and_holdouts_are_stable_and_weighted() {
        let variants =
            vec![Variant { variant: "A".into(), weight: 30, next: None }, Variant { variant: "B".into(), weight: 70, next: None }];
        let a = (0..20_000).filter(|c| choose_variant(7, "split", *c, &variants).variant == "A").count();
        assert!((5_700..6_300).contains(&a), "30% of 20,000 ± 5σ: {a}");
        assert_eq!(choose_variant(7, "split", 42, &variants), choose_variant(7, "split", 42, &variants));
        let held = (0..20_000).filter(|c| in_holdout(7, *c, 10)).count();
        assert!((1_800..2_200).contains(&held), "{held}");
        assert_eq!((0..1000).filter(|c| in_holdout(7, *c, 0)).count(), 0);
    }

    #[test]
    fn waits_end_at_the_right_moment() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let from = Utc.with_ymd_and_hms(2026, 6, 1, 4, 0, 0).unwrap(); // 12:00 in Shanghai
        let w = |v: Value| serde_json::from_value::<Wait>(v).unwrap();
        assert_eq!(w(json!({"days": 2})).ends(zone, from, None), Some(from + Duration::days(2)));
        // 10:00 has passed today: tomorrow at 10:00 Shanghai = 02:00 UTC.
        assert_eq!(w(json!({"until": "10:00"})).ends(zone, from, None), Some(Utc.with_ymd_and_hms(2026, 6, 2, 2, 0, 0).unwrap()));
        assert_eq!(
            w(json!({"hours": 1, "until": "20:00"})).ends(zone, from, None),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap())
        );
        let expiry = from + Duration::days(10);
        assert_eq!(w(json!({"before_coupon_expires_days": 3})).ends(zone, from, Some(expiry)), Some(from + Duration::days(7)));
        assert_eq!(w(json!({"before_coupon_expires_days": 3})).ends(zone, from, None), None);
    }

    #[test]
    fn payload_tests_and_placeholders() {
        let order =
            json!({"amount": 12000, "first_order": true, "items": [{"sku": "A", "category": "serum"}, {"sku": "B", "category": "cream"}]});
        let t = |v: Value| serde_json::from_value::<FieldTest>(v).unwrap().holds(&order);
        assert!(t(json!({"field": "items.category", "op": "eq", "value": "cream"})));
        assert!(!t(json!({"field": "items.category", "op": "eq", "value": "toner"})));
        assert!(t(json!({"field": "amount", "op": "gte", "value": 12000})));
        assert!(t(json!({"field": "items.sku", "op": "in", "value": ["Z", "B"]})));
        assert!(t(json!({"field": "coupon", "op": "exists", "value": false})));
        assert!(t(json!({"field": "first_order", "op": "eq", "value": true})));
        let ctx = json!({"customer": {"name": "Ann"}, "coupon": {"code": "X1", "face_value": 500}});
        assert_eq!(
            render("Hi {{ customer.name }}, use {{coupon.code}} ({{coupon.face_value}}){{trigger.x}}", &ctx),
            "Hi Ann, use X1 (500)"
        );
    }

    #[test]
    fn two_proportions() {
        // 120/1000 against 100/1000: z ≈ 1.43, p ≈ 0.153.
        let p = two_proportion_p_value(120, 1000, 100, 1000).unwrap();
        assert!((p - 0.153).abs() < 0.002, "{p}");
        assert!(two_proportion_p_value(500, 1000, 400, 1000).unwrap() < 1e-5);
        assert_eq!(two_proportion_p_value(0, 10, 0, 10), None);
        assert_eq!(two_proportion_p_value(1, 0, 0, 10), None);
    }

    #[test]
    fn lifecycle_transitions() {
        use JourneyStatus::*;
        assert!(Draft.transition(Active).is_ok());
        assert!(Paused.transition(Active).is_ok());
        assert!(Archived.transition(Active).unwrap_err().contains("archived"));
        assert!(Draft.transition(Paused).is_err());
        assert!(Active.transition(Active).unwrap_err().contains("already"));
    }

    #[test]
    fn personal_references_and_size_limits() {
        let def = |variables: Value, filters: Value| {
            json!({"trigger": {"event": "identity.attached", "where": filters}, "start": "s",
                   "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": variables}}}})
        };
        let d =
            parse(&def(json!({"p": "{{trigger.value}}", "n": "Hi {{customer.name}}", "c": "{{coupon.code}} {{customer.id}}"}), json!([])))
                .unwrap();
        assert_eq!(d.personal_references(), vec!["definition.steps.s.send.variables.n", "definition.steps.s.send.variables.p"]);
        let d = parse(&def(json!({}), json!([{"field": "value", "op": "eq", "value": "+8613812345678"}]))).unwrap();
        assert_eq!(d.personal_references(), vec!["definition.trigger.where[0].field"]);
        let d = parse(&def(
            json!({}),
            json!([{"field": "order.receiver_name", "op": "eq", "value": "x"}, {"field": "收货人", "op": "eq", "value": "x"}]),
        ))
        .unwrap();
        assert_eq!(d.personal_references(), vec!["definition.trigger.where[0].field", "definition.trigger.where[1].field"]);
        let d = parse(&def(json!({"a": "{{trigger.amount}}"}), json!([{"field": "amount", "op": "gt", "value": 1}]))).unwrap();
        assert!(d.personal_references().is_empty());
        let many: Vec<Value> = (0..51).map(|_| json!({"field": "amount", "op": "gt", "value": 1})).collect();
        assert_eq!(parse(&def(json!({}), Value::Array(many))).unwrap_err().field, "definition.trigger.where");
        let big = json!([{"field": "sku", "op": "in", "value": vec!["x"; 1001]}]);
        assert_eq!(parse(&def(json!({}), big)).unwrap_err().field, "definition.trigger.where[0].value");
        assert_eq!(parse(&def(json!({"v": "x".repeat(1001)}), json!([]))).unwrap_err().field, "definition.steps.s.send.variables.v");
    }

    /// A journey's customer conditions follow the segment language's rule, and a payload test
    /// may not step through the digits of free text.
    #[test]
    fn personal_references_in_customer_conditions_and_free_text() {
        let d = parse(&json!({
            "trigger": {"event": "order.paid", "where": [
                {"field": "note", "op": "contains", "value": "13812"},
                {"field": "note", "op": "contains", "value": "gift"},
                {"field": "amount", "op": "gte", "value": 10000}
            ], "customer": {"profile": "name", "op": "eq", "value": "Li Ming"}},
            "start": "b",
            "steps": {"b": {"branch": {"customer": {"or": [{"tag": "vip"}, {"attribute": "receiver_mobile", "op": "exists", "value": true},
                                                          {"attribute": "remark", "op": "in", "value": ["13812345678"]}]}}, "yes": "x"},
                      "x": {"exit": true}}
        }))
        .unwrap();
        assert_eq!(
            d.personal_references(),
            vec![
                "definition.trigger.where[0].value",
                "definition.trigger.where[1].value",
                "definition.trigger.customer.profile",
                "definition.steps.b.branch.customer.or[2].value"
            ]
        );
    }
}
