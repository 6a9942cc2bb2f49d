//! The journey language: a definition's trigger, entry rules, goal, budget and steps, parsed and checked with the faulty node named.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::FieldError;
use crate::segments::{self, Node};

/// Steps in one definition.
pub const MAX_STEPS: usize = 100;
/// Longest wait, in days.
pub const MAX_WAIT_DAYS: u32 = 3660;
/// Where message variables may read from: `{{customer.name}}`, `{{coupon.code}}` …
pub const VARIABLE_ROOTS: [&str; 4] = ["customer", "trigger", "coupon", "journey"];

/// Keys of payloads that hold objects or lists (an order, its items, identifiers, a profile):
/// a placeholder must name a scalar, so one ending at such a key is refused when a journey is
/// saved ([`super::check_input`]), for every author. Any other path resolving to an object or a list
/// renders nothing ([`super::render`]).
pub(super) const OBJECT_KEYS: [&str; 6] = ["order", "items", "identities", "profile", "customer", "attributes"];

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

pub(super) fn err(path: impl Into<String>, reason: impl Into<String>) -> FieldError {
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
pub(super) fn placeholders(text: &str) -> Vec<&str> {
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
