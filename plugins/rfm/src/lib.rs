//! RFM scoring; the definitions are in this plugin's README.

use kith_sdk::{Customer, Decision, Distribution, Error, History, ScoringModel, ShopContext};

const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_window")]
    pub window_days: u32,
}

fn default_window() -> u32 {
    365
}

/// One customer's measures over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    /// Days since the last order in the window.
    pub recency_days: f64,
    pub frequency: f64,
    pub monetary: f64,
}

/// Orders paid in the window and not fully refunded; `None` without any.
pub fn measures(history: &History, now: i64) -> Option<Measures> {
    let orders: Vec<_> = history.orders.iter().filter(|o| o.status != "refunded").collect();
    let last = orders.iter().map(|o| o.paid_at).max()?;
    Some(Measures {
        recency_days: (now - last).max(0) as f64 / DAY_MS,
        frequency: orders.len() as f64,
        monetary: orders.iter().map(|o| (o.amount - o.refunded_amount) as f64).sum(),
    })
}

/// 1 to 5 by the shop's quintile cut points: one more for each cut point the
/// value is above. A value equal to a cut point stays in the lower quintile.
pub fn quintile_score(value: f64, quintiles: &[f64]) -> u8 {
    1 + quintiles.iter().filter(|q| value > **q).count() as u8
}

/// Recency scores the other way round: fewer days, higher score.
pub fn recency_score(days: f64, quintiles: &[f64]) -> u8 {
    1 + quintiles.iter().filter(|q| days < **q).count() as u8
}

/// The 8 groups: (code, 中文, English), indexed by (high R, high F, high M).
pub fn group(high_r: bool, high_f: bool, high_m: bool) -> (&'static str, &'static str, &'static str) {
    match (high_r, high_f, high_m) {
        (true, true, true) => ("important-value", "重要价值", "Important value"),
        (true, false, true) => ("important-development", "重要发展", "Important development"),
        (false, true, true) => ("important-retention", "重要保持", "Important retention"),
        (false, false, true) => ("important-winback", "重要挽留", "Important win-back"),
        (true, true, false) => ("general-value", "一般价值", "General value"),
        (true, false, false) => ("general-development", "一般发展", "General development"),
        (false, true, false) => ("general-retention", "一般保持", "General retention"),
        (false, false, false) => ("general-winback", "一般挽留", "General win-back"),
    }
}

/// `value ≥ average (high)` or `value < average (low)`, the two printed by `pair`.
fn compare((value, average): (String, String), high: bool) -> String {
    let (word, sign) = if high { ("high", "≥") } else { ("low", "<") };
    format!("{value} {sign} average {average} ({word})")
}

/// The decisions for one customer: the group under `rfm`, the scores under `rfm.r`, `rfm.f`, `rfm.m`.
pub fn score(customer_id: i64, measures: Option<Measures>, ctx: &ShopContext) -> Vec<Decision> {
    let Some(m) = measures else {
        return vec![Decision::set_score(customer_id, "rfm", 0.0, None, "no order in the window: no RFM group")];
    };
    let (r, f, mo): (&Distribution, &Distribution, &Distribution) = (&ctx.recency_days, &ctx.frequency, &ctx.monetary);
    let high_r = m.recency_days <= r.average;
    let high_f = m.frequency >= f.average;
    let high_m = m.monetary >= mo.average;
    let (code, zh, en) = group(high_r, high_f, high_m);
    let (rs, fs, ms) =
        (recency_score(m.recency_days, &r.quintiles), quintile_score(m.frequency, &f.quintiles), quintile_score(m.monetary, &mo.quintiles));
    let recency = {
        let (word, sign) = if high_r { ("high", "≤") } else { ("low", ">") };
        let (days, average) = explain::days_pair(m.recency_days, r.average);
        format!("R {days} days {sign} average {average} days ({word})")
    };
    let frequency = compare(explain::numbers(m.frequency, f.average), high_f);
    let monetary = compare(explain::money_pair(m.monetary, mo.average, &ctx.currency), high_m);
    let explanation = format!("{recency}; F {frequency}; M {monetary}");
    let label = format!("{code}|{zh}|{en}");
    let orders = if m.frequency == 1.0 { "1 order".to_owned() } else { format!("{} orders", explain::number(m.frequency)) };
    vec![
        Decision::set_score(customer_id, "rfm", f64::from(rs) * 100.0 + f64::from(fs) * 10.0 + f64::from(ms), Some(&label), &explanation),
        Decision::set_score(
            customer_id,
            "rfm.r",
            f64::from(rs),
            None,
            &format!("{} days since the last order", explain::days(m.recency_days)),
        ),
        Decision::set_score(customer_id, "rfm.f", f64::from(fs), None, &orders),
        Decision::set_score(customer_id, "rfm.m", f64::from(ms), None, &format!("{} spent", explain::money(m.monetary, &ctx.currency))),
    ]
}

struct Rfm;

impl ScoringModel for Rfm {
    fn score(_ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        let ctx = kith_sdk::shop_context(Some(config.window_days))?;
        let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
        let since = ctx.now - i64::from(config.window_days) * DAY_MS as i64;
        let histories = kith_sdk::histories(&ids, since)?;
        Ok(histories.iter().flat_map(|h| score(h.customer_id, measures(h, ctx.now), &ctx)).collect())
    }
}

kith_sdk::export_scoring_model!(Rfm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintile_scores_put_ties_in_the_lower_quintile() {
        let q = [10.0, 20.0, 30.0, 40.0];
        assert_eq!([5.0, 10.0, 10.5, 40.0, 41.0].map(|v| quintile_score(v, &q)), [1, 1, 2, 4, 5]);
        assert_eq!([5.0, 10.0, 10.5, 40.0, 41.0].map(|d| recency_score(d, &q)), [5, 4, 4, 1, 1]);
        assert_eq!(quintile_score(3.0, &[]), 1, "a shop without buyers scores everyone 1");
    }

    fn context(currency: &str, recency: f64, frequency: f64, monetary: f64) -> ShopContext {
        let spread = |average: f64| Distribution { average, quintiles: vec![average / 2.0, average, average, average * 2.0] };
        ShopContext {
            shop_id: 1,
            now: 0,
            window_days: Some(365),
            time_zone: "America/New_York".into(),
            currency: currency.into(),
            customer_count: 10,
            buyer_count: 10,
            recency_days: spread(recency),
            frequency: spread(frequency),
            monetary: spread(monetary),
            average_order_value: 0.0,
        }
    }

    fn explanations(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .map(|d| match d {
                Decision::SetScore(s) => s.explanation.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn explanations_print_money_with_the_currency_and_never_round_a_low_value_up() {
        let ctx = context("USD", 55.26, 2.955, 10608.0);
        let m = Measures { recency_days: 12.0, frequency: 2.0, monetary: 1177.0 };
        assert_eq!(
            explanations(&score(7, Some(m), &ctx)),
            [
                "R 12 days ≤ average 55.3 days (high); F 2 < average 2.96 (low); M USD 11.77 < average USD 106.08 (low)",
                "12 days since the last order",
                "2 orders",
                "USD 11.77 spent"
            ]
        );
        // Below the average by less than the usual precision: printed with what it takes to tell them apart.
        let ctx = context("CNY", 30.02, 3.004, 10608.4);
        let m = Measures { recency_days: 30.04, frequency: 3.0, monetary: 10608.0 };
        assert_eq!(
            explanations(&score(7, Some(m), &ctx))[0],
            "R 30.04 days > average 30.02 days (low); F 3 < average 3.004 (low); M CNY 106.080 < average CNY 106.084 (low)"
        );
        let m = Measures { recency_days: 1.5, frequency: 1.0, monetary: 150_000.0 };
        assert_eq!(explanations(&score(7, Some(m), &context("JPY", 2.0, 1.0, 1000.0)))[2..], ["1 order", "JPY 150000 spent"]);
    }

    #[test]
    fn the_eight_groups_are_distinct() {
        let mut codes: Vec<_> = (0..8).map(|i| group(i & 4 != 0, i & 2 != 0, i & 1 != 0).0).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 8);
        assert_eq!(group(true, false, true).1, "重要发展");
        assert_eq!(group(false, true, false).1, "一般保持");
    }
}
