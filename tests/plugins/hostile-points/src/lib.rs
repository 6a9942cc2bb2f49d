//! Points without measure: `awards` awards of `points` each to every
//! customer of a batch, expiring at `expires_at` (ms) when configured.

use kith_sdk::{Customer, Decision, Error, LoyaltyScheme, ShopContext, Subject};

#[derive(serde::Deserialize)]
struct Config {
    awards: u32,
    points: i64,
    #[serde(default)]
    expires_at: Option<i64>,
}

struct Hostile;

impl LoyaltyScheme for Hostile {
    fn on_events(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config = kith_sdk::config::get::<Config>()?;
        let mut out = Vec::new();
        for subject in &batch {
            let id = subject.customer.id;
            out.extend(
                (0..config.awards).map(|i| Decision::award_points(id, config.points, &format!("k{id}-{i}"), "hostile", config.expires_at)),
            );
        }
        Ok(out)
    }

    fn review(_ctx: &ShopContext, _batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        Ok(Vec::new())
    }
}

kith_sdk::export_loyalty_scheme!(Hostile);
