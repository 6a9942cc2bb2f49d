//! Lifecycle tags; the definitions are in this plugin's README.

use kith_sdk::{Customer, Decision, Error, ShopContext, Subject, TagRule};

const DAY_MS: i64 = 86_400_000;
pub const TAGS: [&str; 4] = ["lifecycle:new", "lifecycle:active", "lifecycle:sleeping", "lifecycle:churned"];

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "new_days")]
    pub new_days: u32,
    #[serde(default = "sleeping_days")]
    pub sleeping_days: u32,
    #[serde(default = "churned_days")]
    pub churned_days: u32,
}

fn new_days() -> u32 {
    30
}
fn sleeping_days() -> u32 {
    90
}
fn churned_days() -> u32 {
    180
}

impl Default for Config {
    fn default() -> Self {
        Config { new_days: new_days(), sleeping_days: sleeping_days(), churned_days: churned_days() }
    }
}

/// The tag a customer should hold at `now`, and why; `None` without orders.
pub fn stage(customer: &Customer, config: &Config, now: i64) -> Option<(&'static str, String)> {
    let (first, last) = (customer.stats.first_order_at?, customer.stats.last_order_at?);
    let idle_days = (now - last) / DAY_MS;
    Some(if now - first < i64::from(config.new_days) * DAY_MS {
        (TAGS[0], format!("first order {} days ago", (now - first) / DAY_MS))
    } else if idle_days < i64::from(config.sleeping_days) {
        (TAGS[1], format!("last order {idle_days} days ago"))
    } else if idle_days < i64::from(config.churned_days) {
        (TAGS[2], format!("no order for {idle_days} days"))
    } else {
        (TAGS[3], format!("no order for {idle_days} days"))
    })
}

/// Add the current tag if missing and remove this plugin's other lifecycle tags: one tag at a time.
pub fn decide(customer: &Customer, config: &Config, now: i64) -> Vec<Decision> {
    let current = stage(customer, config, now);
    let held: Vec<&str> = customer.tags.iter().filter(|t| t.source == "lifecycle").map(|t| t.name.as_str()).collect();
    let mut decisions = Vec::new();
    for tag in held.iter().filter(|t| TAGS.contains(t) && current.as_ref().is_none_or(|(c, _)| c != *t)) {
        decisions.push(Decision::remove_tag(customer.id, tag, "replaced"));
    }
    if let Some((tag, why)) = current
        && !held.contains(&tag)
    {
        decisions.push(Decision::add_tag(customer.id, tag, &why));
    }
    decisions
}

struct Lifecycle;

impl TagRule for Lifecycle {
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        Ok(batch.iter().flat_map(|s| decide(&s.customer, &config, ctx.now)).collect())
    }
}

kith_sdk::export_tag_rule!(Lifecycle);

#[cfg(test)]
mod tests {
    use super::*;
    use kith_sdk::{Profile, Stats, Tag};

    const NOW: i64 = 1_800_000_000_000;

    fn customer(first_days: i64, last_days: i64, tags: &[&str]) -> Customer {
        Customer {
            id: 1,
            profile: Profile { name: None, gender: None, birthday: None, province: None, city: None, attributes: "{}".into() },
            stats: Stats {
                total_spent: 100,
                order_count: 1,
                average_order_value: Some(100),
                first_order_at: Some(NOW - first_days * DAY_MS),
                last_order_at: Some(NOW - last_days * DAY_MS),
                refund_count: 0,
                refund_amount: 0,
            },
            tags: tags.iter().map(|t| Tag { name: (*t).into(), source: "lifecycle".into() }).collect(),
            scores: vec![],
            points: 0,
            tier: None,
            created_at: 0,
        }
    }

    fn tag(first: i64, last: i64) -> &'static str {
        stage(&customer(first, last, &[]), &Config::default(), NOW).unwrap().0
    }

    #[test]
    fn stages_by_the_thresholds() {
        assert_eq!(tag(10, 10), "lifecycle:new");
        assert_eq!(tag(30, 30), "lifecycle:active", "exactly 30 days is no longer new");
        assert_eq!(tag(200, 89), "lifecycle:active");
        assert_eq!(tag(200, 90), "lifecycle:sleeping");
        assert_eq!(tag(200, 179), "lifecycle:sleeping");
        assert_eq!(tag(400, 180), "lifecycle:churned");
    }

    #[test]
    fn tags_are_replaced_not_piled_up() {
        let c = customer(200, 100, &["lifecycle:active"]);
        let decisions = decide(&c, &Config::default(), NOW);
        assert_eq!(decisions.len(), 2);
        assert!(matches!(&decisions[0], Decision::RemoveTag(t) if t.tag == "lifecycle:active"));
        assert!(matches!(&decisions[1], Decision::AddTag(t) if t.tag == "lifecycle:sleeping"));
        let settled = customer(200, 100, &["lifecycle:sleeping"]);
        assert!(decide(&settled, &Config::default(), NOW).is_empty(), "nothing to do when the tag is current");
    }
}
