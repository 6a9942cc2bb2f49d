//! {{id}}: a point per `unit` (minor units) of each paid order; the order id is the source key,
//! so an event delivered twice awards once.

use kith_sdk::{Customer, Decision, Error, LoyaltyScheme, ShopContext, Subject};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_unit")]
    unit: i64,
}

fn default_unit() -> i64 {
    100
}

/// The plugin: its kind's trait, exported below.
pub struct Scheme;

impl LoyaltyScheme for Scheme {
    fn on_events(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let unit = kith_sdk::config::get::<Config>()?.unit.max(1);
        Ok(batch
            .iter()
            .filter(|s| s.event.as_ref().is_some_and(|e| e.event_type == "order.paid"))
            .filter_map(|s| {
                let order = s.order.as_ref()?;
                let points = order.amount / unit;
                (points > 0).then(|| {
                    Decision::award_points(s.customer.id, points, &format!("order:{}", order.id), &format!("order {} paid", order.id), None)
                })
            })
            .collect())
    }

    fn review(_ctx: &ShopContext, _batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        Ok(Vec::new())
    }
}

kith_sdk::export_loyalty_scheme!(Scheme);
