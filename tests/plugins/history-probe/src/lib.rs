//! Tags each customer with what `histories` reports over the configured
//! window (`orders:N`, `views:N`, `categories:a+b`) and logs what
//! `shop_context` reports over it.

use kith_sdk::{BehaviourKind, Decision, Error, LogLevel, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    window_days: u32,
}

struct Probe;

impl TagRule for Probe {
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let window = kith_sdk::config::get::<Config>()?.window_days;
        let shop = kith_sdk::shop_context(Some(window))?;
        kith_sdk::log(
            LogLevel::Info,
            &format!(
                "window {:?}: {} buyers, monetary average {}, frequency average {}",
                shop.window_days, shop.buyer_count, shop.monetary.average, shop.frequency.average
            ),
        );
        let ids: Vec<i64> = batch.iter().map(|s| s.customer.id).collect();
        let since = ctx.now - i64::from(window) * 86_400_000;
        let mut decisions = Vec::new();
        for history in kith_sdk::histories(&ids, since)? {
            let views = history.behaviours.iter().filter(|b| b.kind == BehaviourKind::View).count();
            let mut categories: Vec<String> =
                history.orders.iter().flat_map(|o| o.items.iter().filter_map(|i| i.category.clone())).collect();
            categories.sort();
            categories.dedup();
            let id = history.customer_id;
            decisions.push(Decision::add_tag(id, &format!("orders:{}", history.orders.len()), "history"));
            decisions.push(Decision::add_tag(id, &format!("views:{views}"), "history"));
            decisions.push(Decision::add_tag(id, &format!("categories:{}", categories.join("+")), "history"));
        }
        Ok(decisions)
    }
}

kith_sdk::export_tag_rule!(Probe);
