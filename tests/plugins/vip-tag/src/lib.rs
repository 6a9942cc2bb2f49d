//! `vip` for customers whose total spent reaches the configured threshold.

use kith_sdk::{Decision, Error, LogLevel, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    threshold: i64,
    /// Fail every call, so tests can drive retries, dead letters and the breaker.
    #[serde(default)]
    fail: bool,
}

struct Vip;

impl TagRule for Vip {
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        if config.fail {
            return Err(Error::Failed("configured to fail".into()));
        }
        let seen: u64 = kith_sdk::kv::get_json("evaluations")?.unwrap_or(0);
        kith_sdk::kv::set_json("evaluations", &(seen + batch.len() as u64))?;
        let now = kith_sdk::now()?;
        kith_sdk::log(LogLevel::Info, &format!("evaluating {} customers of shop {} at {now}", batch.len(), ctx.shop_id));
        let mut decisions = Vec::new();
        for subject in &batch {
            let customer = &subject.customer;
            let has = customer.tags.iter().any(|t| t.name == "vip" && t.source == "vip-tag");
            if customer.stats.total_spent >= config.threshold {
                if !has {
                    decisions.push(Decision::add_tag(
                        customer.id,
                        "vip",
                        &format!("spent {} ≥ {}", customer.stats.total_spent, config.threshold),
                    ));
                    decisions.push(Decision::emit_event(
                        Some(customer.id),
                        "plugin.vip-tag.promoted",
                        &serde_json::json!({"total_spent": customer.stats.total_spent}),
                    ));
                }
            } else if has {
                decisions.push(Decision::remove_tag(customer.id, "vip", "below the threshold"));
            }
        }
        Ok(decisions)
    }
}

kith_sdk::export_tag_rule!(Vip);
