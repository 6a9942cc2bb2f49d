//! Reads the shop's buyer summaries (`summaries.buyers`, new in
//! `kith:plugin@0.2.0`) page by page, `page` buyers at a time, and writes them
//! to kv `buyers` as JSON, with the pages' sizes in `pages`; a refused read
//! writes its error to kv `error` instead. Decides nothing.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    /// Buyers per page; asked as is, so that a test can see the host refuse 0 or more than 1,000.
    page: u32,
}

struct Probe;

impl TagRule for Probe {
    fn evaluate(_ctx: &ShopContext, _batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config: Config = kith_sdk::config::get()?;
        let (mut buyers, mut pages, mut after) = (Vec::new(), Vec::new(), None);
        loop {
            match kith_sdk::summaries::buyers(after, config.page) {
                Ok(page) => {
                    pages.push(page.len());
                    let Some(last) = page.last() else { break };
                    after = Some(last.customer_id);
                    let short = page.len() < config.page as usize;
                    buyers.extend(page.into_iter().map(|b| {
                        serde_json::json!({
                            "customer_id": b.customer_id, "first_order_at": b.first_order_at, "last_order_at": b.last_order_at,
                            "purchase_days": b.purchase_days, "order_count": b.order_count, "total_spent": b.total_spent,
                            "repeat_spent": b.repeat_spent, "span_days": b.span_days, "age_days": b.age_days,
                        })
                    }));
                    if short {
                        break;
                    }
                }
                Err(e) => {
                    kith_sdk::kv::set_json("error", &format!("{e:?}"))?;
                    return Ok(Vec::new());
                }
            }
        }
        // The iterator over all pages reads the same buyers.
        let iterated = kith_sdk::summaries::all(config.page.max(1)).map(|b| b.map(|b| b.customer_id)).collect::<Result<Vec<_>, _>>()?;
        kith_sdk::kv::set_json("iterated", &iterated)?;
        kith_sdk::kv::set_json("buyers", &buyers)?;
        kith_sdk::kv::set_json("pages", &pages)?;
        Ok(Vec::new())
    }
}

kith_sdk::export_tag_rule!(Probe);
