//! A points scheme built against the released `kith:plugin@0.1.0`, with
//! `wit-bindgen` straight from `wit/v0.1`: the kernel serves 0.1 loyalty
//! schemes unchanged beside 0.2 ones (kernel/bus/tests/wit_versions.rs runs it
//! beside the first-party `tiered-points`).
//!
//! - A paid order earns `floor(amount in major units × points_per_unit × the
//!   tier's multiplier)` points under the source key `order:<id>`, expiring
//!   `expiry_days` after payment (0: never), and raises the tier at once to
//!   the highest one its qualifying spend reaches: paid less refunded over
//!   the 12 months to its payment. These are `tiered-points`' rules, with the
//!   same reasons.
//! - A review sets the tier to what the 12 months to now earn (a customer who
//!   held a tier keeps at least the first) and, with `forfeit_after_days`,
//!   claws back the points of a customer whose last order is older than that.

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    features: ["clocks-timezone"],
    world: "loyalty-scheme",
});

use kith::plugin::types::{Order, PointsChange, TierChange};
use kith::plugin::{config, customers, kv, log};

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;

#[derive(serde::Deserialize)]
struct Tier {
    name: String,
    threshold: i64,
    #[serde(default = "one")]
    multiplier: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "one")]
    points_per_unit: f64,
    #[serde(default)]
    tiers: Vec<Tier>,
    #[serde(default = "year")]
    expiry_days: u32,
    #[serde(default)]
    forfeit_after_days: Option<u32>,
}

fn year() -> u32 {
    365
}

impl Config {
    fn read() -> Result<Config, Error> {
        let mut config: Config = serde_json::from_str(&config::get()?).map_err(|e| Error::Invalid(format!("config: {e}")))?;
        config.tiers.sort_by_key(|t| t.threshold);
        Ok(config)
    }

    fn rank(&self, tier: Option<&str>) -> Option<usize> {
        self.tiers.iter().position(|t| Some(t.name.as_str()) == tier)
    }

    fn earned(&self, spend: i64) -> Option<usize> {
        self.tiers.iter().rposition(|t| spend >= t.threshold)
    }
}

/// `CNY 600.00`: minor units in major ones.
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{currency} {sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// Paid less refunded over the orders paid in `(at - 12 months, at]`.
fn spend(orders: &[Order], at: i64) -> i64 {
    orders.iter().filter(|o| o.paid_at > at - YEAR_MS && o.paid_at <= at).map(|o| o.amount - o.refunded_amount).sum()
}

struct Scheme;

impl Guest for Scheme {
    fn on_events(ctx: ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config = Config::read()?;
        let paid: Vec<(&Customer, &Order)> = batch
            .iter()
            .filter(|s| s.event.as_ref().is_some_and(|e| e.event_type == "order.paid"))
            .filter_map(|s| Some((&s.customer, s.order.as_ref()?)))
            .collect();
        let mut ids: Vec<i64> = paid.iter().map(|(c, _)| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let histories = customers::histories(&ids, ctx.now - 2 * YEAR_MS)?;
        let mut reached: Vec<(i64, String)> = Vec::new();
        let mut decisions = Vec::new();
        for (customer, order) in paid {
            let tier = reached.iter().rev().find(|(id, _)| *id == customer.id).map(|(_, t)| t.clone()).or(customer.tier.clone());
            let current = config.rank(tier.as_deref());
            let multiplier = current.map_or(1.0, |r| config.tiers[r].multiplier);
            let points = ((order.amount as f64 / 100.0 * config.points_per_unit * multiplier).floor() as i64).min(1_000_000_000);
            if points > 0 {
                decisions.push(Decision::AwardPoints(PointsChange {
                    customer_id: customer.id,
                    points,
                    source_key: format!("order:{}", order.id),
                    reason: format!("order {} paid {}", order.id, money(order.amount, &ctx.currency)),
                    expires_at: (config.expiry_days > 0).then(|| order.paid_at + i64::from(config.expiry_days) * DAY_MS),
                }));
            }
            let orders = histories.iter().find(|h| h.customer_id == customer.id).map_or(&[][..], |h| &h.orders[..]);
            let spent = spend(orders, order.paid_at);
            if let Some(rank) = config.earned(spent)
                && current.is_none_or(|c| rank > c)
            {
                let to = &config.tiers[rank];
                let reason = format!(
                    "qualifying spend {} in 12 months reached {} ({})",
                    money(spent, &ctx.currency),
                    to.name,
                    money(to.threshold, &ctx.currency)
                );
                decisions.push(Decision::ChangeTier(TierChange { customer_id: customer.id, tier: to.name.clone(), reason }));
                reached.push((customer.id, to.name.clone()));
            }
        }
        let seen: u64 = kv::get("orders")?.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or(0);
        kv::set("orders", &serde_json::to_vec(&(seen + batch.len() as u64)).expect("a number serialises"))?;
        Ok(decisions)
    }

    fn review(ctx: ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config = Config::read()?;
        let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
        let histories = customers::histories(&ids, ctx.now - YEAR_MS)?;
        let mut decisions = Vec::new();
        for customer in &batch {
            let orders = histories.iter().find(|h| h.customer_id == customer.id).map_or(&[][..], |h| &h.orders[..]);
            let spent = spend(orders, ctx.now);
            let current = config.rank(customer.tier.as_deref());
            let deserved = match (config.earned(spent), current) {
                (None, Some(_)) => Some(0),
                (earned, _) => earned,
            };
            if let Some(rank) = deserved
                && Some(rank) != current
            {
                let direction = if current.is_some_and(|c| c > rank) { "review" } else { "qualifying spend" };
                decisions.push(Decision::ChangeTier(TierChange {
                    customer_id: customer.id,
                    tier: config.tiers[rank].name.clone(),
                    reason: format!("{direction}: {} in the 12 months to the review", money(spent, &ctx.currency)),
                }));
            }
            if let (Some(days), Some(last)) = (config.forfeit_after_days, customer.stats.last_order_at)
                && customer.points > 0
                && ctx.now - last > i64::from(days) * DAY_MS
            {
                decisions.push(Decision::ClawBackPoints(PointsChange {
                    customer_id: customer.id,
                    points: customer.points,
                    source_key: format!("forfeit:{last}"),
                    reason: format!("no order in {days} days: {} points forfeited", customer.points),
                    expires_at: None,
                }));
            }
        }
        let _ = log::write(log::Level::Info, &format!("reviewed {} customers, {} decisions", batch.len(), decisions.len()));
        Ok(decisions)
    }
}

export!(Scheme);
