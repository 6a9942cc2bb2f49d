//! A tag rule: `vip` for customers who spent at least the configured amount.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    /// Minor units, e.g. 100000 for 1,000.00.
    threshold: i64,
}

struct Vip;

impl TagRule for Vip {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let threshold = kith_sdk::config::get::<Config>()?.threshold;
        Ok(batch.iter().map(|s| decide(&s.customer, threshold)).collect())
    }
}

fn decide(customer: &kith_sdk::Customer, threshold: i64) -> Decision {
    if customer.stats.total_spent >= threshold {
        Decision::add_tag(customer.id, "vip", &format!("spent {} ≥ {threshold}", customer.stats.total_spent))
    } else {
        Decision::remove_tag(customer.id, "vip", "below the threshold")
    }
}

kith_sdk::export_tag_rule!(Vip);
