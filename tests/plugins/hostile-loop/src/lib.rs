//! Never returns.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

kith_sdk::export_tag_rule!(Hostile);
