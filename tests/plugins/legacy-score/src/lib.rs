//! `rfm`'s group and R/F/M scores built against the released
//! `kith:plugin@0.1.0`, with `wit-bindgen` straight from `wit/v0.1`: the
//! kernel serves 0.1 scoring models unchanged beside 0.2 ones
//! (kernel/bus/tests/wit_versions.rs compares it with the first-party `rfm`).
//!
//! One model, `legacy-score`: the value is `R * 100 + F * 10 + M` (each 1-5
//! by the shop's quintiles over the window), the label the group
//! `code|中文|English` by comparison with the shop's averages, as `rfm` does;
//! a customer without an order in the window scores 0 without a label.

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    features: ["clocks-timezone"],
    world: "scoring-model",
});

use kith::plugin::types::{History, ScoreChange};
use kith::plugin::{config, customers, kv, log, shop};

const ID: &str = "legacy-score";
const DAY_MS: i64 = 86_400_000;

/// 1 to 5: one more for each cut point the value is above.
fn quintile_score(value: f64, quintiles: &[f64]) -> u8 {
    1 + quintiles.iter().filter(|q| value > **q).count() as u8
}

/// Fewer days, higher score.
fn recency_score(days: f64, quintiles: &[f64]) -> u8 {
    1 + quintiles.iter().filter(|q| days < **q).count() as u8
}

fn group(high_r: bool, high_f: bool, high_m: bool) -> &'static str {
    match (high_r, high_f, high_m) {
        (true, true, true) => "important-value|重要价值|Important value",
        (true, false, true) => "important-development|重要发展|Important development",
        (false, true, true) => "important-retention|重要保持|Important retention",
        (false, false, true) => "important-winback|重要挽留|Important win-back",
        (true, true, false) => "general-value|一般价值|General value",
        (true, false, false) => "general-development|一般发展|General development",
        (false, true, false) => "general-retention|一般保持|General retention",
        (false, false, false) => "general-winback|一般挽留|General win-back",
    }
}

fn score(history: &History, ctx: &ShopContext, window: u32) -> ScoreChange {
    let orders: Vec<_> = history.orders.iter().filter(|o| o.status != "refunded").collect();
    let Some(last) = orders.iter().map(|o| o.paid_at).max() else {
        return ScoreChange {
            customer_id: history.customer_id,
            model: ID.into(),
            value: 0.0,
            label: None,
            explanation: format!("no order in the last {window} days"),
        };
    };
    let recency = (ctx.now - last).max(0) as f64 / DAY_MS as f64;
    let frequency = orders.len() as f64;
    let spent: i64 = orders.iter().map(|o| o.amount - o.refunded_amount).sum();
    let monetary = spent as f64;
    let (r, f, m) = (&ctx.recency_days, &ctx.frequency, &ctx.monetary);
    let (rs, fs, ms) =
        (recency_score(recency, &r.quintiles), quintile_score(frequency, &f.quintiles), quintile_score(monetary, &m.quintiles));
    let label = group(recency <= r.average, frequency >= f.average, monetary >= m.average);
    ScoreChange {
        customer_id: history.customer_id,
        model: ID.into(),
        value: f64::from(rs) * 100.0 + f64::from(fs) * 10.0 + f64::from(ms),
        label: Some(label.into()),
        explanation: format!(
            "R {rs} F {fs} M {ms}: {} orders, {} {}.{:02} spent in {window} days",
            orders.len(),
            ctx.currency,
            spent / 100,
            spent % 100
        ),
    }
}

struct Model;

impl Guest for Model {
    fn score(_ctx: ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config: serde_json::Value = serde_json::from_str(&config::get()?).map_err(|e| Error::Invalid(format!("config: {e}")))?;
        let window = config["window_days"].as_u64().map_or(365, |d| d as u32);
        let ctx = shop::context(Some(window))?;
        let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
        let histories = customers::histories(&ids, ctx.now - i64::from(window) * DAY_MS)?;
        let scored: u64 = kv::get("scored")?.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or(0);
        kv::set("scored", &serde_json::to_vec(&(scored + histories.len() as u64)).expect("a number serialises"))?;
        let _ = log::write(log::Level::Info, &format!("scoring {} customers of {} buyers", histories.len(), ctx.buyer_count));
        Ok(histories.iter().map(|h| Decision::SetScore(score(h, &ctx, window))).collect())
    }
}

export!(Model);
