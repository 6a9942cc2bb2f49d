//! A score out of any sane range: `f64::MAX`, or the configured `value`.

use kith_sdk::{Customer, Decision, Error, ScoringModel, ShopContext};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "max")]
    value: f64,
}

fn max() -> f64 {
    f64::MAX
}

struct Hostile;

impl ScoringModel for Hostile {
    fn score(_ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config = kith_sdk::config::get::<Config>()?;
        Ok(batch.iter().map(|c| Decision::set_score(c.id, "hostile-score", config.value, None, "hostile")).collect())
    }
}

kith_sdk::export_scoring_model!(Hostile);
