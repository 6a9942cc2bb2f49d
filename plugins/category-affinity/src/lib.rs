//! `prefers:<category>` tags; the definitions are in this plugin's README.

use std::collections::BTreeMap;

use kith_sdk::{Customer, Decision, Error, History, ShopContext, Subject, TagRule};

pub const PREFIX: &str = "prefers:";
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "min_orders")]
    pub min_orders: u32,
    #[serde(default = "window_days")]
    pub window_days: u32,
}

fn min_orders() -> u32 {
    2
}
fn window_days() -> u32 {
    365
}

/// Orders (not fully refunded) with at least one item of each category.
pub fn orders_by_category(history: &History) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for order in history.orders.iter().filter(|o| o.status != "refunded") {
        let mut categories: Vec<&str> = order.items.iter().filter_map(|i| i.category.as_deref()).collect();
        categories.sort_unstable();
        categories.dedup();
        for category in categories {
            *counts.entry(category.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

pub fn decide(customer: &Customer, history: &History, config: &Config) -> Vec<Decision> {
    let wanted: BTreeMap<String, u32> = orders_by_category(history)
        .into_iter()
        .filter(|(_, n)| *n >= config.min_orders)
        .map(|(c, n)| (format!("{PREFIX}{c}"), n))
        .collect();
    let held: Vec<&str> =
        customer.tags.iter().filter(|t| t.source == "category-affinity" && t.name.starts_with(PREFIX)).map(|t| t.name.as_str()).collect();
    let mut decisions: Vec<Decision> = held
        .iter()
        .filter(|t| !wanted.contains_key(**t))
        .map(|t| Decision::remove_tag(customer.id, t, &format!("fewer than {} orders in {} days", config.min_orders, config.window_days)))
        .collect();
    for (tag, n) in &wanted {
        if !held.contains(&tag.as_str()) {
            decisions.push(Decision::add_tag(customer.id, tag, &format!("{n} orders in {} days", config.window_days)));
        }
    }
    decisions
}

struct CategoryAffinity;

impl TagRule for CategoryAffinity {
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        // Each customer once, however many of their orders the batch holds.
        let mut ids: Vec<i64> = batch.iter().map(|s| s.customer.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let histories = kith_sdk::histories(&ids, ctx.now - i64::from(config.window_days) * DAY_MS)?;
        Ok(histories
            .iter()
            .filter_map(|h| batch.iter().find(|s| s.customer.id == h.customer_id).map(|s| decide(&s.customer, h, &config)))
            .flatten()
            .collect())
    }
}

kith_sdk::export_tag_rule!(CategoryAffinity);

#[cfg(test)]
mod tests {
    use super::*;
    use kith_sdk::{Order, OrderItem, Profile, Stats, Tag};

    fn order(id: &str, status: &str, categories: &[&str]) -> Order {
        let item =
            |c: &&str| OrderItem { sku: "s".into(), name: None, category: Some((*c).into()), quantity: 1, unit_price: 1, discount: 0 };
        Order {
            id: id.into(),
            customer_id: 1,
            amount: 1,
            refunded_amount: 0,
            status: status.into(),
            coupon_code: None,
            paid_at: 0,
            items: categories.iter().map(item).collect(),
        }
    }

    #[test]
    fn categories_count_orders_and_stale_tags_go() {
        let history = History {
            customer_id: 1,
            orders: vec![
                order("1", "paid", &["beauty", "beauty", "food"]),
                order("2", "partially_refunded", &["beauty"]),
                order("3", "refunded", &["food"]),
            ],
            behaviours: vec![],
            truncated: false,
        };
        assert_eq!(orders_by_category(&history), BTreeMap::from([("beauty".into(), 2), ("food".into(), 1)]));
        let customer = Customer {
            id: 1,
            profile: Profile { name: None, gender: None, birthday: None, province: None, city: None, attributes: "{}".into() },
            stats: Stats {
                total_spent: 0,
                order_count: 0,
                average_order_value: None,
                first_order_at: None,
                last_order_at: None,
                refund_count: 0,
                refund_amount: 0,
            },
            tags: vec![Tag { name: "prefers:food".into(), source: "category-affinity".into() }],
            scores: vec![],
            points: 0,
            tier: None,
            created_at: 0,
        };
        let decisions = decide(&customer, &history, &Config { min_orders: 2, window_days: 365 });
        assert!(matches!(&decisions[0], Decision::RemoveTag(t) if t.tag == "prefers:food"));
        assert!(matches!(&decisions[1], Decision::AddTag(t) if t.tag == "prefers:beauty"));
        assert_eq!(decisions.len(), 2);
    }
}
