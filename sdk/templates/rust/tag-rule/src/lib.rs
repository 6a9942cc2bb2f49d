//! {{id}}: tags customers who spent at least `min_spent` (minor units), and removes the tag from
//! those who no longer have (after a refund).

use kith_sdk::{Decision, Error, LogLevel, ShopContext, Subject, TagRule};

const TAG: &str = "{{id}}";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_min_spent")]
    min_spent: i64,
}

fn default_min_spent() -> i64 {
    100_000
}

/// The plugin: its kind's trait, exported below.
pub struct Rule;

impl TagRule for Rule {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let min = kith_sdk::config::get::<Config>()?.min_spent;
        let mut decisions = Vec::new();
        for subject in &batch {
            let customer = &subject.customer;
            let total = customer.stats.total_spent;
            let tagged = customer.tags.iter().any(|t| t.name == TAG);
            if total >= min && !tagged {
                decisions.push(Decision::add_tag(customer.id, TAG, &format!("spent {total} (at least {min})")));
            } else if total < min && tagged {
                decisions.push(Decision::remove_tag(customer.id, TAG, &format!("spent {total} (less than {min})")));
            }
        }
        kith_sdk::log(LogLevel::Info, &format!("evaluated {} customers", batch.len()));
        Ok(decisions)
    }
}

kith_sdk::export_tag_rule!(Rule);
