//! `vip-tag`'s rule built against the released `kith:plugin@0.1.0`, with
//! `wit-bindgen` straight from `wit/v0.1`: the kernel serves 0.1 builds
//! unchanged beside 0.2 ones (kernel/bus/tests/wit_versions.rs).

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    features: ["clocks-timezone"],
    world: "tag-rule",
});

use kith::plugin::types::{EmittedEvent, TagChange};
use kith::plugin::{clock, config, kv, log};

const ID: &str = "legacy-vip-tag";

struct Vip;

impl Guest for Vip {
    fn evaluate(ctx: ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: serde_json::Value = serde_json::from_str(&config::get()?).map_err(|e| Error::Invalid(format!("config: {e}")))?;
        let threshold = config["threshold"].as_i64().ok_or_else(|| Error::Invalid("config.threshold: expected an integer".into()))?;
        if config["fail"].as_bool() == Some(true) {
            return Err(Error::Failed("configured to fail".into()));
        }
        let seen: u64 = kv::get("evaluations")?.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or(0);
        kv::set("evaluations", &serde_json::to_vec(&(seen + batch.len() as u64)).expect("a number serialises"))?;
        let now = clock::now()?;
        let _ = log::write(log::Level::Info, &format!("evaluating {} customers of shop {} at {now}", batch.len(), ctx.shop_id));
        let mut decisions = Vec::new();
        for subject in &batch {
            let customer = &subject.customer;
            let has = customer.tags.iter().any(|t| t.name == "vip" && t.source == ID);
            if customer.stats.total_spent >= threshold {
                if !has {
                    decisions.push(Decision::AddTag(TagChange {
                        customer_id: customer.id,
                        tag: "vip".into(),
                        reason: format!("spent {} ≥ {threshold}", customer.stats.total_spent),
                    }));
                    decisions.push(Decision::EmitEvent(EmittedEvent {
                        customer_id: Some(customer.id),
                        event_type: format!("plugin.{ID}.promoted"),
                        payload: serde_json::json!({"total_spent": customer.stats.total_spent}).to_string(),
                    }));
                }
            } else if has {
                decisions.push(Decision::RemoveTag(TagChange {
                    customer_id: customer.id,
                    tag: "vip".into(),
                    reason: "below the threshold".into(),
                }));
            }
        }
        Ok(decisions)
    }
}

export!(Vip);
