//! A scoring model: total spent relative to the shop's average, labelled high or low.

use kith_sdk::{Customer, Decision, Error, ScoringModel, ShopContext};

struct Spend;

impl ScoringModel for Spend {
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let average = ctx.monetary.average.max(1.0);
        Ok(batch
            .iter()
            .map(|c| {
                let ratio = c.stats.total_spent as f64 / average;
                let label = if ratio >= 1.0 { "high" } else { "low" };
                Decision::set_score(c.id, "spend-score", ratio, Some(label), &format!("{:.2}× the shop's average", ratio))
            })
            .collect())
    }
}

kith_sdk::export_scoring_model!(Spend);
