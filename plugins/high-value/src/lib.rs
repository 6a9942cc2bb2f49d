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

/// Why the customer is high-value at the shop's average order value, if
/// they are; money is printed in major units of `currency` (the number
/// alone when it is empty).
pub fn reason(customer: &Customer, average_order_value: f64, currency: &str, config: &Config) -> Option<String> {
    let spent = customer.stats.total_spent as f64;
    let threshold = config.aov_multiple * average_order_value;
    if average_order_value > 0.0 && spent > threshold {
        let (spent, threshold, average) = explain::money_triple(spent, threshold, average_order_value, currency);
        let multiple = explain::number(config.aov_multiple);
        Some(format!("spent {spent} > {threshold} ({multiple} × average order value {average})"))
    } else if customer.stats.order_count > config.min_orders {
        Some(format!("{} orders > {}", customer.stats.order_count, config.min_orders))
    } else {
        None
    }
}

/// The tag decision for one customer, with reasons in the shop's currency.
pub fn decide_in(customer: &Customer, average_order_value: f64, currency: &str, config: &Config) -> Option<Decision> {
    let held = customer.tags.iter().any(|t| t.name == TAG && t.source == "high-value");
    match reason(customer, average_order_value, currency, config) {
        Some(why) if !held => Some(Decision::add_tag(customer.id, TAG, &why)),
        None if held => Some(Decision::remove_tag(customer.id, TAG, "no longer above the thresholds")),
        _ => None,
    }
}

/// `decide_in` without a currency: amounts in reasons are major units
/// alone. The benchmarks' native and Extism baselines call this one.
pub fn decide(customer: &Customer, average_order_value: f64, config: &Config) -> Option<Decision> {
    decide_in(customer, average_order_value, "", config)
}

/// The component: `evaluate` over a batch with the shop's configuration.
#[cfg(feature = "component")]
mod component {
    use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

    use super::{Config, decide_in};

    struct HighValue;

    impl TagRule for HighValue {
        fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
            let config: Config = kith_sdk::config::get()?;
            Ok(batch.iter().filter_map(|s| decide_in(&s.customer, ctx.average_order_value, &ctx.currency, &config)).collect())
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

    #[test]
    fn reasons_print_money_in_the_shops_currency() {
        let config = Config { aov_multiple: 2.0, min_orders: 3 };
        let why = |spent: i64, average: f64, currency: &str| reason(&customer(spent, 1, false), average, currency, &config);
        assert_eq!(why(25_000, 10_000.0, "USD").as_deref(), Some("spent USD 250.00 > USD 200.00 (2 × average order value USD 100.00)"));
        assert_eq!(
            why(20_001, 10_000.4, "CNY").as_deref(),
            Some("spent CNY 200.010 > CNY 200.008 (2 × average order value CNY 100.004)"),
            "just above: more decimals rather than `200.01 > 200.01`"
        );
        assert_eq!(why(20_001, 10_000.4, "").as_deref(), Some("spent 200.010 > 200.008 (2 × average order value 100.004)"));
    }
}
