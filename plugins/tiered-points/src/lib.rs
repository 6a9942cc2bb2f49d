//! Tiered points: the definitions are in this plugin's README.
//!
//! Everything here is a function of the customer's order history and the
//! clock, so a call can be repeated and a review can run any day: the
//! kernel ignores points whose source key it has seen, and tier changes are
//! only decided when the tier differs from what the rules give.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use kith_sdk::{Customer, Decision, Error, History, LoyaltyScheme, Order, ShopContext, Subject};

const DAY_MS: i64 = 86_400_000;
/// The rolling window of qualifying spend.
pub const YEAR_MS: i64 = 365 * DAY_MS;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    /// Qualifying spend over 12 months, minor units.
    pub threshold: i64,
    #[serde(default = "one")]
    pub multiplier: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "one")]
    pub points_per_unit: f64,
    #[serde(default)]
    pub tiers: Vec<Tier>,
    #[serde(default = "expiry_days")]
    pub expiry_days: u32,
    #[serde(default = "review_months")]
    pub review_months: Vec<u32>,
    #[serde(default)]
    pub birthday_bonus: i64,
    #[serde(default = "birthday_window_days")]
    pub birthday_window_days: u32,
}

fn expiry_days() -> u32 {
    365
}
fn review_months() -> Vec<u32> {
    vec![1]
}
fn birthday_window_days() -> u32 {
    7
}

impl Default for Config {
    fn default() -> Self {
        Config {
            points_per_unit: 1.0,
            tiers: Vec::new(),
            expiry_days: expiry_days(),
            review_months: review_months(),
            birthday_bonus: 0,
            birthday_window_days: birthday_window_days(),
        }
    }
}

impl Config {
    /// The tiers, lowest threshold first.
    fn ladder(&self) -> Vec<&Tier> {
        let mut tiers: Vec<&Tier> = self.tiers.iter().collect();
        tiers.sort_by_key(|t| t.threshold);
        tiers
    }

    /// Rank of a tier name in the ladder (0 = lowest); `None` for no tier or an unknown one.
    fn rank(&self, name: Option<&str>) -> Option<usize> {
        let name = name?;
        self.ladder().iter().position(|t| t.name == name)
    }

    /// The highest tier whose threshold the spend reaches.
    fn earned(&self, spend: i64) -> Option<usize> {
        self.ladder().iter().rposition(|t| spend >= t.threshold)
    }

    fn multiplier(&self, tier: Option<&str>) -> f64 {
        self.rank(tier).map_or(1.0, |r| self.ladder()[r].multiplier)
    }
}

/// Amount paid less refunds of the orders paid in `(at - 12 months, at]`.
pub fn qualifying_spend(orders: &[Order], at: i64) -> i64 {
    orders.iter().filter(|o| o.paid_at > at - YEAR_MS && o.paid_at <= at).map(|o| o.amount - o.refunded_amount).sum()
}

/// The latest review date at or before `now`: the first day (UTC) of a review month.
pub fn last_review(config: &Config, now: i64) -> i64 {
    let Some(today) = DateTime::<Utc>::from_timestamp_millis(now) else { return 0 };
    let mut year = today.year();
    let mut month = today.month();
    for _ in 0..24 {
        if config.review_months.contains(&month) {
            let first = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().map_or(0, |d| d.timestamp_millis());
            if first <= now {
                return first;
            }
        }
        if month == 1 {
            month = 12;
            year -= 1;
        } else {
            month -= 1;
        }
    }
    0
}

/// The tier rank a customer holds by the rules at `now`: what the spend
/// earned at the last review, raised by any order since that reached a
/// higher tier. A customer who once held a tier keeps at least the first;
/// one who never bought holds none.
pub fn deserved(config: &Config, orders: &[Order], current: Option<&str>, now: i64) -> Option<usize> {
    // Tiers are for buyers: without a paid order (in the history read) a customer gets none.
    if current.is_none() && orders.iter().all(|o| o.amount <= o.refunded_amount) {
        return None;
    }
    let review = last_review(config, now);
    let at_review = config.earned(qualifying_spend(orders, review));
    let since = orders
        .iter()
        .filter(|o| o.paid_at > review && o.paid_at <= now)
        .filter_map(|o| config.earned(qualifying_spend(orders, o.paid_at)))
        .max();
    let rank = at_review.max(since);
    match (rank, config.rank(current)) {
        (None, Some(_)) => Some(0),
        (rank, _) => rank,
    }
}

/// Points for an order: per major unit paid, times the tier's multiplier.
pub fn order_points(config: &Config, amount: i64, tier: Option<&str>) -> i64 {
    (amount as f64 / 100.0 * config.points_per_unit * config.multiplier(tier)).floor() as i64
}

/// Decisions for a paid order of a customer who holds `tier`: its points,
/// and an upgrade if its spend reached a higher tier. `orders` is the
/// customer's history as known when the order is handled; money in reasons
/// is printed in major units of `currency`.
pub fn on_order(
    config: &Config,
    customer_id: i64,
    tier: Option<&str>,
    order: &Order,
    orders: &[Order],
    now: i64,
    currency: &str,
) -> Vec<Decision> {
    let money = |minor: i64| explain::money(minor as f64, currency);
    let mut decisions = Vec::new();
    let points = order_points(config, order.amount, tier);
    if points > 0 {
        let expires = (config.expiry_days > 0).then(|| order.paid_at + i64::from(config.expiry_days) * DAY_MS);
        let reason = format!("order {} paid {}", order.id, money(order.amount));
        decisions.push(Decision::award_points(customer_id, points, &format!("order:{}", order.id), &reason, expires));
    }
    let current = config.rank(tier);
    if let Some(rank) = deserved(config, orders, tier, now)
        && current.is_none_or(|c| rank > c)
    {
        let tier = config.ladder()[rank];
        let reason = format!(
            "qualifying spend {} in 12 months reached {} ({})",
            money(qualifying_spend(orders, now)),
            tier.name,
            money(tier.threshold)
        );
        decisions.push(Decision::change_tier(customer_id, &tier.name, &reason));
    }
    decisions
}

/// Decisions for the paid orders of one delivery, in the order of their
/// events, exactly as if each had come in a batch of its own: an order
/// earns with the tier that the batch's earlier orders of its customer
/// reached (the snapshots are all read before the batch), and does not yet
/// count the orders that later events of the batch bring.
pub fn on_paid(config: &Config, paid: &[(&Customer, &Order)], histories: &[History], now: i64, currency: &str) -> Vec<Decision> {
    let mut reached: Vec<(i64, String)> = Vec::new();
    let mut decisions = Vec::new();
    for (i, (customer, order)) in paid.iter().enumerate() {
        let later: Vec<&str> =
            paid[i + 1..].iter().filter(|(c, _)| c.id == customer.id).map(|(_, o)| o.id.as_str()).filter(|id| *id != order.id).collect();
        let known: Vec<Order> = orders_of(histories, customer.id).iter().filter(|o| !later.contains(&o.id.as_str())).cloned().collect();
        let tier = reached.iter().rev().find(|(id, _)| *id == customer.id).map(|(_, t)| t.as_str()).or(customer.tier.as_deref());
        let decided = on_order(config, customer.id, tier, order, &known, now, currency);
        for decision in &decided {
            if let Decision::ChangeTier(change) = decision {
                reached.push((customer.id, change.tier.clone()));
            }
        }
        decisions.extend(decided);
    }
    decisions
}

/// The date of this year's birthday (28 February for 29 February in other years).
fn birthday_in(year: i32, birthday: &str) -> Option<NaiveDate> {
    let date = NaiveDate::parse_from_str(birthday, "%Y-%m-%d").ok()?;
    NaiveDate::from_ymd_opt(year, date.month(), date.day()).or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
}

/// Decisions of the periodic review: the tier the rules give, and the
/// birthday bonus; money in reasons is in major units of `currency`.
pub fn review(config: &Config, customer: &Customer, orders: &[Order], now: i64, currency: &str) -> Vec<Decision> {
    let money = |minor: i64| explain::money(minor as f64, currency);
    let mut decisions = Vec::new();
    let current = config.rank(customer.tier.as_deref());
    let rank = deserved(config, orders, customer.tier.as_deref(), now);
    if let Some(rank) = rank
        && Some(rank) != current
    {
        let tier = config.ladder()[rank];
        let direction = if current.is_some_and(|c| c > rank) { "review" } else { "qualifying spend" };
        let reason = format!(
            "{direction}: {} in the 12 months before {}",
            money(qualifying_spend(orders, last_review(config, now))),
            DateTime::<Utc>::from_timestamp_millis(last_review(config, now)).map_or_else(String::new, |d| d.date_naive().to_string())
        );
        decisions.push(Decision::change_tier(customer.id, &tier.name, &reason));
    }
    if config.birthday_bonus > 0
        && let (Some(birthday), Some(today)) = (customer.profile.birthday.as_deref(), DateTime::<Utc>::from_timestamp_millis(now))
        && let Some(this_year) = birthday_in(today.year(), birthday)
    {
        let days = (today.date_naive() - this_year).num_days();
        if (0..i64::from(config.birthday_window_days)).contains(&days) {
            let key = format!("birthday:{}", today.year());
            decisions.push(Decision::award_points(customer.id, config.birthday_bonus, &key, "birthday bonus", None));
        }
    }
    decisions
}

fn histories(ids: Vec<i64>, since: i64) -> Result<Vec<History>, Error> {
    let mut ids = ids;
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        out.extend(kith_sdk::histories(chunk, since)?);
    }
    Ok(out)
}

fn orders_of(histories: &[History], customer: i64) -> &[Order] {
    histories.iter().find(|h| h.customer_id == customer).map_or(&[], |h| &h.orders)
}

struct TieredPoints;

impl LoyaltyScheme for TieredPoints {
    fn on_events(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        let since = last_review(&config, ctx.now) - YEAR_MS;
        let paid: Vec<&Subject> =
            batch.iter().filter(|s| s.event.as_ref().is_some_and(|e| e.event_type == "order.paid") && s.order.is_some()).collect();
        let histories = histories(paid.iter().map(|s| s.customer.id).collect(), since)?;
        let paid: Vec<(&Customer, &Order)> = paid.iter().filter_map(|s| Some((&s.customer, s.order.as_ref()?))).collect();
        Ok(on_paid(&config, &paid, &histories, ctx.now, &ctx.currency))
    }

    fn review(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        let since = last_review(&config, ctx.now) - YEAR_MS;
        let histories = histories(batch.iter().map(|c| c.id).collect(), since)?;
        Ok(batch.iter().flat_map(|c| review(&config, c, orders_of(&histories, c.id), ctx.now, &ctx.currency)).collect())
    }
}

kith_sdk::export_loyalty_scheme!(TieredPoints);

#[cfg(test)]
mod tests {
    use super::*;
    use kith_sdk::{Profile, Stats};

    fn at(date: &str) -> i64 {
        NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis()
    }

    fn order(id: &str, date: &str, amount: i64) -> Order {
        Order {
            id: id.into(),
            customer_id: 1,
            amount,
            refunded_amount: 0,
            status: "paid".into(),
            coupon_code: None,
            paid_at: at(date),
            items: vec![],
        }
    }

    fn customer(tier: Option<&str>, birthday: Option<&str>) -> Customer {
        Customer {
            id: 1,
            profile: Profile {
                name: None,
                gender: None,
                birthday: birthday.map(Into::into),
                province: None,
                city: None,
                attributes: "{}".into(),
            },
            stats: Stats {
                total_spent: 0,
                order_count: 0,
                average_order_value: None,
                first_order_at: None,
                last_order_at: None,
                refund_count: 0,
                refund_amount: 0,
            },
            tags: vec![],
            scores: vec![],
            points: 0,
            tier: tier.map(Into::into),
            created_at: 0,
        }
    }

    fn config() -> Config {
        Config {
            tiers: vec![
                Tier { name: "silver".into(), threshold: 0, multiplier: 1.0 },
                Tier { name: "gold".into(), threshold: 100_000, multiplier: 1.5 },
                Tier { name: "platinum".into(), threshold: 500_000, multiplier: 2.0 },
            ],
            birthday_bonus: 200,
            ..Config::default()
        }
    }

    fn tier_of(decisions: &[Decision]) -> Option<String> {
        decisions.iter().find_map(|d| match d {
            Decision::ChangeTier(t) => Some(t.tier.clone()),
            _ => None,
        })
    }

    #[test]
    fn points_use_the_tier_multiplier_and_expire_after_the_configured_days() {
        let c = config();
        let o = order("A1", "2026-03-10", 12_345);
        let d = on_order(&c, 1, Some("gold"), &o, std::slice::from_ref(&o), at("2026-03-10"), "CNY");
        let Decision::AwardPoints(p) = &d[0] else { panic!("{d:?}") };
        assert_eq!(p.points, 185, "123.45 yuan x 1.5");
        assert_eq!(p.reason, "order A1 paid CNY 123.45");
        assert_eq!(p.source_key, "order:A1");
        assert_eq!(p.expires_at, Some(o.paid_at + 365 * DAY_MS));
    }

    #[test]
    fn spend_upgrades_at_once_and_downgrades_only_at_a_review() {
        let c = config();
        let big = order("A1", "2026-02-01", 120_000);
        let d = on_order(&c, 1, Some("silver"), &big, std::slice::from_ref(&big), at("2026-02-01"), "CNY");
        assert_eq!(tier_of(&d).as_deref(), Some("gold"), "{d:?}");
        // Through the year the spend stays in the window: no change before the next review.
        let gold = customer(Some("gold"), None);
        assert_eq!(tier_of(&review(&c, &gold, std::slice::from_ref(&big), at("2026-12-31"), "CNY")), None);
        // On 2027-01-01 the 12 months before hold 1200 yuan still: gold stays.
        assert_eq!(tier_of(&review(&c, &gold, std::slice::from_ref(&big), at("2027-01-02"), "CNY")), None);
        // On 2028-01-01 the order is out of the window: down to silver, the first tier.
        assert_eq!(tier_of(&review(&c, &gold, std::slice::from_ref(&big), at("2028-01-02"), "CNY")).as_deref(), Some("silver"));
        // Refunds do not qualify.
        let refunded = Order { refunded_amount: 30_000, ..big };
        let d = on_order(&c, 1, Some("silver"), &refunded, std::slice::from_ref(&refunded), at("2026-02-01"), "CNY");
        assert_eq!(tier_of(&d), None, "900 yuan does not reach gold");
    }

    #[test]
    fn a_tier_reached_earlier_in_a_batch_multiplies_the_next_order() {
        let c = config();
        let silver = customer(Some("silver"), None);
        let (big, small) = (order("A1", "2026-02-01", 120_000), order("A2", "2026-02-02", 10_000));
        let now = at("2026-02-03");
        let both = vec![big.clone(), small.clone()];
        let history = |orders: &[Order]| vec![History { customer_id: 1, orders: orders.to_vec(), behaviours: vec![], truncated: false }];
        let batch = on_paid(&c, &[(&silver, &big), (&silver, &small)], &history(&both), now, "CNY");
        // The same orders, each in a batch of its own: the second sees the tier the first reached.
        let mut apart = on_paid(&c, &[(&silver, &big)], &history(std::slice::from_ref(&big)), now, "CNY");
        let gold = customer(tier_of(&apart).as_deref(), None);
        apart.extend(on_paid(&c, &[(&gold, &small)], &history(&both), now, "CNY"));
        let points = |d: &[Decision]| {
            d.iter()
                .filter_map(|d| match d {
                    Decision::AwardPoints(p) => Some((p.source_key.clone(), p.points)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(points(&batch), vec![("order:A1".to_owned(), 1200), ("order:A2".to_owned(), 150)], "{batch:?}");
        assert_eq!(points(&batch), points(&apart));
        assert_eq!(batch.iter().filter(|d| matches!(d, Decision::ChangeTier(_))).count(), 1, "one upgrade, by the first order: {batch:?}");
        let Some(Decision::ChangeTier(up)) = batch.iter().find(|d| matches!(d, Decision::ChangeTier(_))) else { unreachable!() };
        assert_eq!(up.reason, "qualifying spend CNY 1200.00 in 12 months reached gold (CNY 1000.00)");
        // An order that itself reaches gold earns at the tier held before it, as it would alone.
        let (first, second) = (order("B1", "2026-02-01", 10_000), order("B2", "2026-02-02", 95_000));
        let batch = on_paid(&c, &[(&silver, &first), (&silver, &second)], &history(&[first.clone(), second.clone()]), now, "CNY");
        assert_eq!(points(&batch), vec![("order:B1".to_owned(), 100), ("order:B2".to_owned(), 950)], "{batch:?}");
        assert_eq!(tier_of(&batch).as_deref(), Some("gold"));
    }

    #[test]
    fn the_birthday_bonus_comes_once_in_its_window() {
        let c = config();
        let someone = customer(None, Some("1992-02-29"));
        let d = review(&c, &someone, &[], at("2027-03-01"), "CNY");
        assert!(matches!(&d[..], [Decision::AwardPoints(p)] if p.source_key == "birthday:2027" && p.points == 200), "{d:?}");
        assert!(review(&c, &someone, &[], at("2027-03-08"), "CNY").is_empty(), "past the 7-day window");
        assert!(review(&c, &someone, &[], at("2027-02-27"), "CNY").is_empty(), "before the birthday");
    }
}
