//! Harmless code behind a hostile manifest: its configuration schema is
//! `allOf: [{"$ref": "#"}]`, which a validator follows forever.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    fn evaluate(_ctx: &ShopContext, _batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        Ok(Vec::new())
    }
}

kith_sdk::export_tag_rule!(Hostile);
