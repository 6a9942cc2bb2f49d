//! The `high-value` tag; the definitions are in this plugin's README.

use kith_sdk::{Customer, Decision};

pub const TAG: &str = "high-value";

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "aov_multiple")]
    pub aov_multiple: f64,
    #[serde(default = "min_orders")]
    pub min_orders: u32,
}

fn aov_multiple() -> f64 {
    2.0
}
fn min_orders() -> u32 {
    3
}

/// Why the customer is high-value at the shop's average order value, if they are.
pub fn reason(customer: &Customer, average_order_value: f64, config: &Config) -> Option<String> {
    let spent = customer.stats.total_spent as f64;
    let threshold = config.aov_multiple * average_order_value;
    if average_order_value > 0.0 && spent > threshold {
        Some(format!("spent {spent} > {} × average order value {average_order_value:.0}", config.aov_multiple))
    } else if customer.stats.order_count > config.min_orders {
        Some(format!("{} orders > {}", customer.stats.order_count, config.min_orders))
    } else {
        None
    }
}

pub fn decide(customer: &Customer, average_order_value: f64, config: &Config) -> Option<Decision> {
    let held = customer.tags.iter().any(|t| t.name == TAG && t.source == "high-value");
    match reason(customer, average_order_value, config) {
        Some(why) if !held => Some(Decision::add_tag(customer.id, TAG, &why)),
        None if held => Some(Decision::remove_tag(customer.id, TAG, "no longer above the thresholds")),
        _ => None,
    }
}

/// The component: `evaluate` over a batch with the shop's configuration.
#[cfg(feature = "component")]
mod component {
    use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

    use super::{Config, decide};

    struct HighValue;

    impl TagRule for HighValue {
        fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
            let config: Config = kith_sdk::config::get()?;
            Ok(batch.iter().filter_map(|s| decide(&s.customer, ctx.average_order_value, &config)).collect())
        }
    }

    kith_sdk::export_tag_rule!(HighValue);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_sdk::{Profile, Stats, Tag};

    fn customer(spent: i64, orders: u32, tagged: bool) -> Customer {
        Customer {
            id: 1,
            profile: Profile { name: None, gender: None, birthday: None, province: None, city: None, attributes: "{}".into() },
            stats: Stats {
                total_spent: spent,
                order_count: orders,
                average_order_value: None,
                first_order_at: None,
                last_order_at: None,
                refund_count: 0,
                refund_amount: 0,
            },
            tags: if tagged { vec![Tag { name: TAG.into(), source: "high-value".into() }] } else { vec![] },
            scores: vec![],
            points: 0,
            tier: None,
            created_at: 0,
        }
    }

    #[test]
    fn either_threshold_tags_and_falling_below_both_untags() {
        let config = Config { aov_multiple: 2.0, min_orders: 3 };
        assert!(matches!(decide(&customer(20_001, 1, false), 10_000.0, &config), Some(Decision::AddTag(_))));
        assert!(decide(&customer(20_000, 1, false), 10_000.0, &config).is_none(), "exactly twice is not above");
        assert!(matches!(decide(&customer(100, 4, false), 10_000.0, &config), Some(Decision::AddTag(_))));
        assert!(decide(&customer(100, 4, true), 10_000.0, &config).is_none(), "already tagged");
        assert!(matches!(decide(&customer(100, 3, true), 10_000.0, &config), Some(Decision::RemoveTag(_))));
    }
}
