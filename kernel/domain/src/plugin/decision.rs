//! What a plugin returns: decisions, their bounds, and the checks of one call's output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

/// What a plugin asks the kernel to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Decision {
    AddTag { customer_id: i64, tag: String, reason: String },
    RemoveTag { customer_id: i64, tag: String, reason: String },
    SetScore { customer_id: i64, model: String, value: f64, label: Option<String>, explanation: String },
    AwardPoints { customer_id: i64, points: i64, source_key: String, reason: String, expires_at_ms: Option<i64> },
    ClawBackPoints { customer_id: i64, points: i64, source_key: String, reason: String },
    ChangeTier { customer_id: i64, tier: String, reason: String },
    EmitEvent { customer_id: Option<i64>, event_type: String, payload: String },
}

pub const MAX_TAG_LEN: usize = 64;
pub const MAX_REASON_LEN: usize = 1024;
pub const MAX_EMITTED_PAYLOAD: usize = 16 * 1024;
/// Scores are finite and at most this large either way.
pub const MAX_SCORE: f64 = 1e12;
/// Points expire between 2000-01-01 and 9999-12-31 (UTC), in ms.
pub const EXPIRES_AT_RANGE: std::ops::RangeInclusive<i64> = 946_684_800_000..=253_402_300_799_999;
/// Tags one plugin may hold on one customer; a decision past it is refused.
pub const MAX_TAGS_PER_CUSTOMER: usize = 256;
/// Points one call may award one customer, all decisions together.
pub const MAX_POINTS_PER_CUSTOMER_PER_CALL: i64 = 1_000_000_000;
/// Events one call may emit per subject it was handed (on average over the call).
pub const MAX_EVENTS_PER_SUBJECT: usize = 4;
/// How many plugins an emitted event may have passed through: an event a plugin emits
/// because of another plugin's event is one deeper. Past this the chain is refused.
pub const MAX_EVENT_CHAIN: u32 = 4;
/// The payload key carrying an emitted event's chain depth when it is 2 or more.
pub const CHAIN_KEY: &str = "chain";

impl Decision {
    pub fn customer_id(&self) -> Option<i64> {
        match self {
            Decision::AddTag { customer_id, .. }
            | Decision::RemoveTag { customer_id, .. }
            | Decision::SetScore { customer_id, .. }
            | Decision::AwardPoints { customer_id, .. }
            | Decision::ClawBackPoints { customer_id, .. }
            | Decision::ChangeTier { customer_id, .. } => Some(*customer_id),
            Decision::EmitEvent { customer_id, .. } => *customer_id,
        }
    }

    /// The capability the decision needs.
    pub fn capability(&self) -> Capability {
        match self {
            Decision::AddTag { .. } | Decision::RemoveTag { .. } => Capability::TagsWrite,
            Decision::SetScore { .. } => Capability::ScoresWrite,
            Decision::AwardPoints { .. } | Decision::ClawBackPoints { .. } => Capability::PointsWrite,
            Decision::ChangeTier { .. } => Capability::TiersWrite,
            Decision::EmitEvent { .. } => Capability::EventsEmit,
        }
    }

    /// Check the decision of plugin `plugin_id` against its grant and the
    /// kernel's rules for values. Shop membership of the customer is the
    /// store's check, when it applies the decision.
    pub fn check(&self, plugin_id: &str, grant: &Grant) -> Result<(), String> {
        let cap = self.capability();
        if !grant.has(cap) {
            return Err(format!("capability `{cap}` is not granted"));
        }
        let text = |what: &str, value: &str, max: usize| -> Result<(), String> {
            if value.len() > max || value.chars().any(char::is_control) {
                return Err(format!("{what} must be at most {max} bytes without control characters"));
            }
            if has_invisible(value) {
                return Err(format!("{what} must not hold invisible characters (bidirectional controls, zero-width characters)"));
            }
            Ok(())
        };
        match self {
            Decision::AddTag { tag, reason, .. } | Decision::RemoveTag { tag, reason, .. } => {
                if tag.trim().is_empty() {
                    return Err("tag must not be empty".into());
                }
                text("tag", tag, MAX_TAG_LEN)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::SetScore { model, value, label, explanation, .. } => {
                if model != plugin_id && !model.strip_prefix(plugin_id).is_some_and(|rest| rest.starts_with('.') && rest.len() > 1) {
                    return Err(format!("score model `{model}` must be `{plugin_id}` or `{plugin_id}.<facet>`"));
                }
                text("model", model, MAX_ID_LEN * 2)?;
                if !value.is_finite() || value.abs() > MAX_SCORE {
                    return Err(format!("score value must be a finite number between -{MAX_SCORE:e} and {MAX_SCORE:e}"));
                }
                text("label", label.as_deref().unwrap_or(""), 256)?;
                text("explanation", explanation, MAX_REASON_LEN)
            }
            Decision::AwardPoints { points, source_key, reason, .. } | Decision::ClawBackPoints { points, source_key, reason, .. } => {
                if let Decision::AwardPoints { expires_at_ms: Some(at), .. } = self
                    && !EXPIRES_AT_RANGE.contains(at)
                {
                    return Err("points must expire between 2000-01-01 and 9999-12-31".into());
                }
                if !(1..=1_000_000_000).contains(points) {
                    return Err("points must be between 1 and 1000000000".into());
                }
                if source_key.is_empty() {
                    return Err("source key must not be empty".into());
                }
                text("source key", source_key, 256)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::ChangeTier { tier, reason, .. } => {
                if tier.trim().is_empty() {
                    return Err("tier must not be empty".into());
                }
                text("tier", tier, MAX_TAG_LEN)?;
                text("reason", reason, MAX_REASON_LEN)
            }
            Decision::EmitEvent { event_type, payload, .. } => {
                if !event_type.starts_with("plugin.") || event_type.len() <= "plugin.".len() {
                    return Err(format!("emitted event type `{event_type}` must start with `plugin.`"));
                }
                text("event type", event_type, MAX_ID_LEN)?;
                if payload.len() > MAX_EMITTED_PAYLOAD {
                    return Err(format!("event payload must be at most {MAX_EMITTED_PAYLOAD} bytes"));
                }
                match serde_json::from_str::<Value>(payload) {
                    Ok(value @ Value::Object(_)) => {
                        crate::text::check_json("payload", &value).map_err(|e| format!("event {}: {}", e.field, e.reason))
                    }
                    _ => Err("event payload must be a JSON object".into()),
                }
            }
        }
    }
}

/// Check what one call decided, taken together: tags per customer, points per
/// customer, events emitted for the `subjects` the call was handed. Each decision
/// is checked alone by [`Decision::check`].
pub fn check_call(decisions: &[Decision], subjects: usize) -> Result<(), String> {
    use std::collections::{HashMap, HashSet};
    let mut tags: HashMap<i64, HashSet<&str>> = HashMap::new();
    let mut points: HashMap<i64, i64> = HashMap::new();
    let mut emitted = 0usize;
    for decision in decisions {
        match decision {
            Decision::AddTag { customer_id, tag, .. } => {
                let held = tags.entry(*customer_id).or_default();
                held.insert(tag);
                if held.len() > MAX_TAGS_PER_CUSTOMER {
                    return Err(format!("more than {MAX_TAGS_PER_CUSTOMER} tags for customer {customer_id}"));
                }
            }
            Decision::AwardPoints { customer_id, points: n, .. } => {
                let total = points.entry(*customer_id).or_default();
                *total = total.saturating_add(*n);
                if *total > MAX_POINTS_PER_CUSTOMER_PER_CALL {
                    return Err(format!(
                        "more than {MAX_POINTS_PER_CUSTOMER_PER_CALL} points awarded to customer {customer_id} in one call"
                    ));
                }
            }
            Decision::EmitEvent { .. } => emitted += 1,
            _ => {}
        }
    }
    let most = MAX_EVENTS_PER_SUBJECT * subjects.max(1);
    if emitted > most {
        return Err(format!("{emitted} events emitted for {subjects} subjects: at most {MAX_EVENTS_PER_SUBJECT} per subject"));
    }
    Ok(())
}
