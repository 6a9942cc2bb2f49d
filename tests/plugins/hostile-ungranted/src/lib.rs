//! Writes to kv and awards points without the grants.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        kith_sdk::kv::set("stolen", b"x")?;
        Ok(batch.iter().map(|s| Decision::award_points(s.customer.id, 1_000, "free", "unearned", None)).collect())
    }
}

kith_sdk::export_tag_rule!(Hostile);
