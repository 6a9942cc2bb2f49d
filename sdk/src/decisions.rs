//! Constructors for decisions, so plugin code reads as what it decides.

use crate::{Decision, EmittedEvent, PointsChange, ScoreChange, TagChange, TierChange};

impl Decision {
    /// Add a tag (its source is the plugin). Capability `tags:write`.
    pub fn add_tag(customer_id: i64, tag: &str, reason: &str) -> Decision {
        Decision::AddTag(TagChange { customer_id, tag: tag.into(), reason: reason.into() })
    }

    /// Remove a tag this plugin set. Capability `tags:write`.
    pub fn remove_tag(customer_id: i64, tag: &str, reason: &str) -> Decision {
        Decision::RemoveTag(TagChange { customer_id, tag: tag.into(), reason: reason.into() })
    }

    /// Set a score under `model`: the plugin id, or `<plugin id>.<facet>`. Capability `scores:write`.
    pub fn set_score(customer_id: i64, model: &str, value: f64, label: Option<&str>, explanation: &str) -> Decision {
        Decision::SetScore(ScoreChange {
            customer_id,
            model: model.into(),
            value,
            label: label.map(Into::into),
            explanation: explanation.into(),
        })
    }

    /// Award points once per `source_key`. Capability `points:write`.
    pub fn award_points(customer_id: i64, points: i64, source_key: &str, reason: &str, expires_at: Option<i64>) -> Decision {
        Decision::AwardPoints(PointsChange { customer_id, points, source_key: source_key.into(), reason: reason.into(), expires_at })
    }

    /// Claw back points once per `source_key`. Capability `points:write`.
    pub fn claw_back_points(customer_id: i64, points: i64, source_key: &str, reason: &str) -> Decision {
        Decision::ClawBackPoints(PointsChange {
            customer_id,
            points,
            source_key: source_key.into(),
            reason: reason.into(),
            expires_at: None,
        })
    }

    /// Move a customer to a tier. Capability `tiers:write`.
    pub fn change_tier(customer_id: i64, tier: &str, reason: &str) -> Decision {
        Decision::ChangeTier(TierChange { customer_id, tier: tier.into(), reason: reason.into() })
    }

    /// Emit a `plugin.*` event with a JSON object payload. Capability `events:emit`.
    pub fn emit_event(customer_id: Option<i64>, event_type: &str, payload: &serde_json::Value) -> Decision {
        Decision::EmitEvent(EmittedEvent { customer_id, event_type: event_type.into(), payload: payload.to_string() })
    }
}
