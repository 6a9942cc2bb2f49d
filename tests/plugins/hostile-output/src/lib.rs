//! Returns far more decisions than any batch needs.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let id = batch.first().map_or(1, |s| s.customer.id);
        Ok((0..200_000).map(|i| Decision::add_tag(id, &format!("t{i}"), "flood")).collect())
    }
}

kith_sdk::export_tag_rule!(Hostile);
