//! Panics.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        panic!("hostile plugin panicked on purpose")
    }
}

kith_sdk::export_tag_rule!(Hostile);
