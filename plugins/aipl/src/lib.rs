//! AIPL staging; the definitions are in this plugin's README.

use kith_sdk::{BehaviourKind, Customer, Decision, Error, History, ScoringModel, ShopContext};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "awareness")]
    pub awareness_days: u32,
    #[serde(default = "interest")]
    pub interest_days: u32,
    #[serde(default = "purchase")]
    pub purchase_days: u32,
}

fn awareness() -> u32 {
    90
}
fn interest() -> u32 {
    30
}
fn purchase() -> u32 {
    365
}

impl Default for Config {
    fn default() -> Self {
        Config { awareness_days: awareness(), interest_days: interest(), purchase_days: purchase() }
    }
}

impl Config {
    /// How far back the history must reach.
    pub fn longest_days(&self) -> u32 {
        self.awareness_days.max(self.interest_days).max(self.purchase_days)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Awareness = 1,
    Interest = 2,
    Purchase = 3,
    Loyalty = 4,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Awareness => "A|认知|Awareness",
            Stage::Interest => "I|兴趣|Interest",
            Stage::Purchase => "P|购买|Purchase",
            Stage::Loyalty => "L|忠诚|Loyalty",
        }
    }
}

/// The stage at `now`, and why; `None` without any qualifying activity.
pub fn stage(history: &History, tier: Option<&str>, config: &Config, now: i64) -> Option<(Stage, String)> {
    let within = |at: i64, days: u32| at >= now - i64::from(days) * DAY_MS;
    let orders = history.orders.iter().filter(|o| o.status != "refunded" && within(o.paid_at, config.purchase_days)).count();
    if orders >= 2 {
        return Some((Stage::Loyalty, format!("{orders} orders in {} days", config.purchase_days)));
    }
    if let Some(tier) = tier {
        return Some((Stage::Loyalty, format!("member tier {tier}")));
    }
    if orders == 1 {
        return Some((Stage::Purchase, format!("1 order in {} days", config.purchase_days)));
    }
    let recent =
        |kind: BehaviourKind, days: u32| history.behaviours.iter().filter(|b| b.kind == kind && within(b.occurred_at, days)).count();
    let engaged = recent(BehaviourKind::Favorite, config.interest_days) + recent(BehaviourKind::Cart, config.interest_days);
    let views = recent(BehaviourKind::View, config.interest_days);
    if engaged > 0 || views >= 2 {
        return Some((Stage::Interest, format!("{engaged} favourites or carts and {views} views in {} days", config.interest_days)));
    }
    let views = recent(BehaviourKind::View, config.awareness_days);
    (views > 0).then(|| (Stage::Awareness, format!("{views} views in {} days", config.awareness_days)))
}

pub fn decide(customer_id: i64, staged: Option<(Stage, String)>) -> Decision {
    match staged {
        Some((stage, why)) => Decision::set_score(customer_id, "aipl", f64::from(stage as u8), Some(stage.label()), &why),
        None => Decision::set_score(customer_id, "aipl", 0.0, None, "no qualifying activity: no AIPL stage"),
    }
}

struct Aipl;

impl ScoringModel for Aipl {
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
        let histories = kith_sdk::histories(&ids, ctx.now - i64::from(config.longest_days()) * DAY_MS)?;
        Ok(histories
            .iter()
            .map(|h| {
                let tier = batch.iter().find(|c| c.id == h.customer_id).and_then(|c| c.tier.as_deref());
                decide(h.customer_id, stage(h, tier, &config, ctx.now))
            })
            .collect())
    }
}

kith_sdk::export_scoring_model!(Aipl);

#[cfg(test)]
mod tests {
    use super::*;
    use kith_sdk::{Behaviour, Order};

    const NOW: i64 = 1_800_000_000_000;

    fn history(views: &[i64], carts: &[i64], orders: &[i64]) -> History {
        let behaviour = |kind, days: &i64| Behaviour { kind, sku: None, category: None, occurred_at: NOW - days * DAY_MS };
        History {
            customer_id: 1,
            orders: orders
                .iter()
                .map(|days| Order {
                    id: format!("o{days}"),
                    customer_id: 1,
                    amount: 100,
                    refunded_amount: 0,
                    status: "paid".into(),
                    coupon_code: None,
                    paid_at: NOW - days * DAY_MS,
                    items: vec![],
                })
                .collect(),
            behaviours: views
                .iter()
                .map(|d| behaviour(BehaviourKind::View, d))
                .chain(carts.iter().map(|d| behaviour(BehaviourKind::Cart, d)))
                .collect(),
            truncated: false,
        }
    }

    fn at(h: History, tier: Option<&str>) -> Option<Stage> {
        stage(&h, tier, &Config::default(), NOW).map(|(s, _)| s)
    }

    #[test]
    fn stages_follow_the_strongest_recent_activity() {
        assert_eq!(at(history(&[], &[], &[]), None), None);
        assert_eq!(at(history(&[60], &[], &[]), None), Some(Stage::Awareness));
        assert_eq!(at(history(&[100], &[], &[]), None), None, "a view older than the awareness window");
        assert_eq!(at(history(&[3, 10], &[], &[]), None), Some(Stage::Interest), "repeated views");
        assert_eq!(at(history(&[3, 40], &[], &[]), None), Some(Stage::Awareness), "one view in the interest window");
        assert_eq!(at(history(&[], &[5], &[]), None), Some(Stage::Interest));
        assert_eq!(at(history(&[], &[], &[100]), None), Some(Stage::Purchase));
        assert_eq!(at(history(&[], &[], &[100, 200]), None), Some(Stage::Loyalty));
        assert_eq!(at(history(&[], &[], &[100, 400]), None), Some(Stage::Purchase), "the second order left the window");
        assert_eq!(at(history(&[], &[], &[]), Some("gold")), Some(Stage::Loyalty), "a member tier");
    }
}
