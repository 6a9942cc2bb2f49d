//! A loyalty scheme: one point per whole currency unit of each paid order.

use kith_sdk::{Customer, Decision, Error, LoyaltyScheme, ShopContext, Subject};

struct PointsPerYuan;

impl LoyaltyScheme for PointsPerYuan {
    fn on_events(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        Ok(batch
            .iter()
            .filter_map(|s| {
                let order = s.order.as_ref()?;
                let points = order.amount / 100;
                (points > 0).then(|| Decision::award_points(s.customer.id, points, &format!("order:{}", order.id), "order paid", None))
            })
            .collect())
    }

    fn review(_ctx: &ShopContext, _batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        Ok(Vec::new())
    }
}

kith_sdk::export_loyalty_scheme!(PointsPerYuan);
