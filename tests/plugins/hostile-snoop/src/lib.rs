//! Reads and tags a customer of another shop.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        #[derive(serde::Deserialize)]
        struct Config {
            target: i64,
        }
        let target = kith_sdk::config::get::<Config>()?.target;
        match kith_sdk::read_customer(target) {
            Ok(c) => kith_sdk::log(kith_sdk::LogLevel::Warn, &format!("read customer {} of another shop", c.id)),
            Err(e) => kith_sdk::log(kith_sdk::LogLevel::Info, &format!("read of {target}: {e:?}")),
        }
        Ok(vec![Decision::add_tag(target, "pwned", "reached across shops")])
    }
}

kith_sdk::export_tag_rule!(Hostile);
