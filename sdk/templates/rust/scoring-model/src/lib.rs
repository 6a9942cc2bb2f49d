//! {{id}}: each customer's total spent as a multiple of the shop's average spend per customer,
//! labelled `high` from 1x and `low` below.

use kith_sdk::{Customer, Decision, Error, ScoringModel, ShopContext};

const MODEL: &str = "{{id}}";

/// The plugin: its kind's trait, exported below.
pub struct Model;

impl ScoringModel for Model {
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let average = ctx.monetary.average;
        Ok(batch
            .iter()
            .map(|c| {
                let ratio = if average > 0.0 { c.stats.total_spent as f64 / average } else { 0.0 };
                let label = if ratio >= 1.0 { "high" } else { "low" };
                Decision::set_score(c.id, MODEL, ratio, Some(label), &format!("{ratio:.2}x the shop's average spend"))
            })
            .collect())
    }
}

kith_sdk::export_scoring_model!(Model);
