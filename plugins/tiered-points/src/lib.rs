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

/// What earned a customer their tier: the qualifying spend at the last
/// review date, or at the payment of an order since it.
#[derive(Debug, Clone, Copy)]
pub enum Earned<'a> {
    /// The spend in the 12 months before the review date `at`.
    Review { at: i64, spend: i64 },
    /// The spend in the 12 months up to the payment of `order`.
    Order { order: &'a Order, spend: i64 },
}

impl Earned<'_> {
    /// The spend and the window it was counted in, money in major units of
    /// `currency`; an order named `this` (the one being handled) is not named again.
    fn describe(&self, currency: &str, this: Option<&str>) -> String {
        let money = |minor: i64| explain::money(minor as f64, currency);
        let date = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(String::new, |d| d.date_naive().to_string());
        match self {
            Earned::Review { at, spend } => format!("{} in the 12 months before {}", money(*spend), date(*at)),
            Earned::Order { order, spend } if this == Some(order.id.as_str()) => format!("{} in 12 months", money(*spend)),
            Earned::Order { order, spend } => {
                format!("{} in the 12 months to {} (order {})", money(*spend), date(order.paid_at), order.id)
            }
        }
    }
}

/// The tier rank a customer holds by the rules at `now` and what earned it:
/// what the spend earned at the last review, raised by any order since that
/// reached a higher tier. A customer who once held a tier keeps at least the
/// first (earned by nothing: `Review` with the spend that fell short); one
/// who never bought holds none. Of equal ranks the review, then the
/// earliest order, is named.
pub fn deserved_by<'a>(config: &Config, orders: &'a [Order], current: Option<&str>, now: i64) -> Option<(usize, Earned<'a>)> {
    // Tiers are for buyers: without a paid order (in the history read) a customer gets none.
    if current.is_none() && orders.iter().all(|o| o.amount <= o.refunded_amount) {
        return None;
    }
    let review = last_review(config, now);
    let spend = qualifying_spend(orders, review);
    let at_review = config.earned(spend).map(|rank| (rank, Earned::Review { at: review, spend }));
    let since = orders
        .iter()
        .filter(|o| o.paid_at > review && o.paid_at <= now)
        .filter_map(|o| {
            let spend = qualifying_spend(orders, o.paid_at);
            config.earned(spend).map(|rank| (rank, o, spend))
        })
        .min_by_key(|(rank, o, _)| (std::cmp::Reverse(*rank), o.paid_at))
        .map(|(rank, order, spend)| (rank, Earned::Order { order, spend }));
    let best = match (at_review, since) {
        (Some(r), Some(o)) => Some(if o.0 > r.0 { o } else { r }),
        (r, o) => r.or(o),
    };
    match (best, config.rank(current)) {
        (None, Some(_)) => Some((0, Earned::Review { at: review, spend })),
        (best, _) => best,
    }
}

/// The tier rank a customer holds by the rules at `now` (see [`deserved_by`]).
pub fn deserved(config: &Config, orders: &[Order], current: Option<&str>, now: i64) -> Option<usize> {
    deserved_by(config, orders, current, now).map(|(rank, _)| rank)
}

/// The most points the kernel takes in one decision.
pub const MAX_POINTS: i64 = 1_000_000_000;

/// Points for an order: per major unit paid, times the tier's multiplier, at most [`MAX_POINTS`]
/// (the kernel refuses more in one decision, which would fail the whole delivery; orders of
/// up to 10,000,000,000.00 are accepted).
pub fn order_points(config: &Config, amount: i64, tier: Option<&str>) -> i64 {
    ((amount as f64 / 100.0 * config.points_per_unit * config.multiplier(tier)).floor() as i64).min(MAX_POINTS)
}

/// An upgrade for a customer who holds `tier`, if `orders` (their history as
/// known now) earn a higher one; its reason names the spend that earned it,
/// and the order unless it is `this`, the order being handled.
pub fn upgrade(
    config: &Config,
    customer_id: i64,
    tier: Option<&str>,
    this: Option<&str>,
    orders: &[Order],
    now: i64,
    currency: &str,
) -> Option<Decision> {
    let current = config.rank(tier);
    let (rank, earned) = deserved_by(config, orders, tier, now)?;
    if current.is_some_and(|c| rank <= c) {
        return None;
    }
    let tier = config.ladder()[rank];
    let reason = format!(
        "qualifying spend {} reached {} ({})",
        earned.describe(currency, this),
        tier.name,
        explain::money(tier.threshold as f64, currency)
    );
    Some(Decision::change_tier(customer_id, &tier.name, &reason))
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
    let mut decisions = Vec::new();
    let points = order_points(config, order.amount, tier);
    if points > 0 {
        let expires = (config.expiry_days > 0).then(|| order.paid_at + i64::from(config.expiry_days) * DAY_MS);
        let reason = format!("order {} paid {}", order.id, explain::money(order.amount as f64, currency));
        decisions.push(Decision::award_points(customer_id, points, &format!("order:{}", order.id), &reason, expires));
    }
    decisions.extend(upgrade(config, customer_id, tier, Some(&order.id), orders, now, currency));
    decisions
}

/// Decisions for the events of one delivery, in their order, exactly as if
/// each had come in a batch of its own: a paid order (`Some`) earns points
/// and may upgrade; any other event of a customer (`None`: a merge, which
/// brings the merged side's orders) may upgrade. An event is handled with
/// the tier that the batch's earlier events of its customer reached (the
/// snapshots are all read before the batch), and does not yet count the
/// orders that later events of the batch bring.
pub fn on_delivery(
    config: &Config,
    paid: &[(&Customer, Option<&Order>)],
    histories: &[History],
    now: i64,
    currency: &str,
) -> Vec<Decision> {
    let mut reached: Vec<(i64, String)> = Vec::new();
    let mut decisions = Vec::new();
    for (i, (customer, order)) in paid.iter().enumerate() {
        let this = order.map(|o| o.id.as_str());
        let later: Vec<&str> = paid[i + 1..]
            .iter()
            .filter(|(c, _)| c.id == customer.id)
            .filter_map(|(_, o)| o.map(|o| o.id.as_str()))
            .filter(|id| Some(*id) != this)
            .collect();
        let known: Vec<Order> = orders_of(histories, customer.id).iter().filter(|o| !later.contains(&o.id.as_str())).cloned().collect();
        let tier = reached.iter().rev().find(|(id, _)| *id == customer.id).map(|(_, t)| t.as_str()).or(customer.tier.as_deref());
        let decided = match order {
            Some(order) => on_order(config, customer.id, tier, order, &known, now, currency),
            None => upgrade(config, customer.id, tier, None, &known, now, currency).into_iter().collect(),
        };
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
    let mut decisions = Vec::new();
    let current = config.rank(customer.tier.as_deref());
    if let Some((rank, earned)) = deserved_by(config, orders, customer.tier.as_deref(), now)
        && Some(rank) != current
    {
        let tier = config.ladder()[rank];
        let direction = if current.is_some_and(|c| c > rank) { "review" } else { "qualifying spend" };
        // The spend that earned the tier: at the review date, or at the payment of an order since.
        let reason = format!("{direction}: {}", earned.describe(currency, None));
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
        // A paid order earns and may upgrade; a merge (should the manifest take `customer.merged`)
        // may upgrade the survivor, whose history now holds the merged side's orders.
        let events: Vec<(&Customer, Option<&Order>)> = batch
            .iter()
            .filter_map(|s| match s.event.as_ref()?.event_type.as_str() {
                "order.paid" => Some((&s.customer, Some(s.order.as_ref()?))),
                "customer.merged" => Some((&s.customer, None)),
                _ => None,
            })
            .collect();
        let histories = histories(events.iter().map(|(c, _)| c.id).collect(), since)?;
        Ok(on_delivery(&config, &events, &histories, ctx.now, &ctx.currency))
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

    #[test]
    fn the_largest_order_earns_no_more_points_than_one_decision_may_carry() {
        // An order of 1,000,000,000,000 minor units at 1.5 points per unit would be 1.5e10 points.
        assert_eq!(order_points(&config(), 1_000_000_000_000, Some("gold")), MAX_POINTS);
        assert_eq!(order_points(&config(), 29_900, Some("gold")), 448);
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
        let batch = on_delivery(&c, &[(&silver, Some(&big)), (&silver, Some(&small))], &history(&both), now, "CNY");
        // The same orders, each in a batch of its own: the second sees the tier the first reached.
        let mut apart = on_delivery(&c, &[(&silver, Some(&big))], &history(std::slice::from_ref(&big)), now, "CNY");
        let gold = customer(tier_of(&apart).as_deref(), None);
        apart.extend(on_delivery(&c, &[(&gold, Some(&small))], &history(&both), now, "CNY"));
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
        let batch =
            on_delivery(&c, &[(&silver, Some(&first)), (&silver, Some(&second))], &history(&[first.clone(), second.clone()]), now, "CNY");
        assert_eq!(points(&batch), vec![("order:B1".to_owned(), 100), ("order:B2".to_owned(), 950)], "{batch:?}");
        assert_eq!(tier_of(&batch).as_deref(), Some("gold"));
    }

    /// The living shop's ladder: silver 500, gold 2000, platinum 6000 yuan.
    fn shop_config() -> Config {
        Config {
            tiers: vec![
                Tier { name: "silver".into(), threshold: 50_000, multiplier: 1.0 },
                Tier { name: "gold".into(), threshold: 200_000, multiplier: 1.5 },
                Tier { name: "platinum".into(), threshold: 600_000, multiplier: 2.0 },
            ],
            ..Config::default()
        }
    }

    fn refunded(id: &str, date: &str, amount: i64) -> Order {
        Order { refunded_amount: amount, status: "refunded".into(), ..order(id, date, amount) }
    }

    #[test]
    fn a_review_names_the_order_that_earned_the_tier() {
        // A counted order after the review date, then three fully refunded ones; no tier held
        // (the survivor of a merge that brought these orders).
        let c = shop_config();
        let orders = vec![
            order("T6", "2026-09-07", 87_600),
            refunded("T7", "2026-09-17", 6_900),
            refunded("T8", "2026-10-16", 29_700),
            refunded("T9", "2026-11-19", 8_900),
        ];
        let d = review(&c, &customer(None, None), &orders, at("2026-12-07"), "CNY");
        let [Decision::ChangeTier(up)] = &d[..] else { panic!("{d:?}") };
        assert_eq!(up.tier, "silver");
        assert_eq!(
            up.reason, "qualifying spend: CNY 876.00 in the 12 months to 2026-09-07 (order T6)",
            "not the CNY 0.00 before 2026-01-01"
        );
        // The same order handled alone upgrades at once, with the spend at its payment.
        let d = on_order(&c, 1, None, &orders[0], &orders[..1], at("2026-12-06"), "CNY");
        assert_eq!(tier_of(&d).as_deref(), Some("silver"), "{d:?}");
        // A tier earned at the review date is named with the spend before it.
        let old = vec![order("T1", "2025-06-01", 250_000)];
        let d = review(&c, &customer(Some("silver"), None), &old, at("2026-03-01"), "CNY");
        let [Decision::ChangeTier(up)] = &d[..] else { panic!("{d:?}") };
        assert_eq!((up.tier.as_str(), up.reason.as_str()), ("gold", "qualifying spend: CNY 2500.00 in the 12 months before 2026-01-01"));
        // And a downgrade at a review as before.
        let d = review(&c, &customer(Some("gold"), None), &old, at("2027-01-02"), "CNY");
        let [Decision::ChangeTier(down)] = &d[..] else { panic!("{d:?}") };
        assert_eq!((down.tier.as_str(), down.reason.as_str()), ("silver", "review: CNY 0.00 in the 12 months before 2027-01-01"));
    }

    #[test]
    fn an_upgrade_names_the_spend_that_earned_it_not_the_spend_today() {
        let c = shop_config();
        // Gold by the spend before 2026-01-01; today (December 2026) those orders are out of the window.
        let history = vec![order("T1", "2025-06-01", 150_000), order("T2", "2025-11-01", 60_000), order("T3", "2026-12-01", 1_000)];
        let d = on_order(&c, 1, None, &history[2], &history, at("2026-12-06"), "CNY");
        let Some(Decision::ChangeTier(up)) = d.iter().find(|d| matches!(d, Decision::ChangeTier(_))) else { panic!("{d:?}") };
        assert_eq!(up.tier, "gold");
        assert_eq!(up.reason, "qualifying spend CNY 2100.00 in the 12 months before 2026-01-01 reached gold (CNY 2000.00)");
        // Earned first by an earlier order since the review (a tier lost to a merge): that order is named.
        let history = vec![order("T1", "2026-02-01", 150_000), order("T2", "2026-03-01", 60_000), order("T3", "2026-12-06", 1_000)];
        let d = on_order(&c, 1, Some("silver"), &history[2], &history, at("2026-12-06"), "CNY");
        let Some(Decision::ChangeTier(up)) = d.iter().find(|d| matches!(d, Decision::ChangeTier(_))) else { panic!("{d:?}") };
        assert_eq!(up.reason, "qualifying spend CNY 2100.00 in the 12 months to 2026-03-01 (order T2) reached gold (CNY 2000.00)");
    }

    #[test]
    fn a_merge_upgrades_the_survivor_and_the_batchs_later_orders_earn_with_it() {
        let c = shop_config();
        let survivor = customer(None, None);
        // The merged side's order is in the survivor's history; the merge event brings no order.
        let (moved, next) = (order("T6", "2026-09-07", 87_600), order("T10", "2026-12-06", 10_000));
        let history = vec![History { customer_id: 1, orders: vec![moved.clone(), next.clone()], behaviours: vec![], truncated: false }];
        let d = on_delivery(&c, &[(&survivor, None), (&survivor, Some(&next))], &history, at("2026-12-06"), "CNY");
        let [Decision::ChangeTier(up), Decision::AwardPoints(points)] = &d[..] else { panic!("{d:?}") };
        assert_eq!(
            (up.tier.as_str(), up.reason.as_str()),
            ("silver", "qualifying spend CNY 876.00 in the 12 months to 2026-09-07 (order T6) reached silver (CNY 500.00)")
        );
        assert_eq!((points.source_key.as_str(), points.points), ("order:T10", 100));
        // A merge that brings nothing new decides nothing; nor one of a customer who never bought.
        let silver = customer(Some("silver"), None);
        assert!(on_delivery(&c, &[(&silver, None)], &history, at("2026-12-06"), "CNY").is_empty());
        assert!(on_delivery(&c, &[(&survivor, None)], &[], at("2026-12-06"), "CNY").is_empty());
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
