//! `evaluate`: the `high-value` rule over a batch of customers, JSON in and
//! out (Extism's usual encoding). The rule is plugins/high-value's own
//! `decide`, compiled without its component export.

use extism_pdk::{FnResult, Json, plugin_fn};
use high_value::{Config, decide};
use kith_sdk::{Customer, Decision, Profile, Stats, Tag};
use serde::{Deserialize, Serialize};

/// A batch: the shop's average order value and its customers.
#[derive(Deserialize)]
pub struct Batch {
    pub average_order_value: f64,
    pub customers: Vec<Input>,
}

/// What the rule reads of a customer.
#[derive(Deserialize)]
pub struct Input {
    pub id: i64,
    pub total_spent: i64,
    pub order_count: u32,
    /// (name, source) pairs.
    pub tags: Vec<(String, String)>,
}

/// A tag decision.
#[derive(Serialize)]
pub struct Output {
    pub customer_id: i64,
    pub add: bool,
    pub tag: String,
    pub reason: String,
}

#[plugin_fn]
pub fn evaluate(Json(batch): Json<Batch>) -> FnResult<Json<Vec<Output>>> {
    let config = Config { aov_multiple: 2.0, min_orders: 3 };
    let decided = batch.customers.into_iter().filter_map(|c| decide(&customer(c), batch.average_order_value, &config));
    Ok(Json(
        decided
            .filter_map(|d| match d {
                Decision::AddTag(t) => Some(Output { customer_id: t.customer_id, add: true, tag: t.tag, reason: t.reason }),
                Decision::RemoveTag(t) => Some(Output { customer_id: t.customer_id, add: false, tag: t.tag, reason: t.reason }),
                _ => None,
            })
            .collect(),
    ))
}

fn customer(c: Input) -> Customer {
    Customer {
        id: c.id,
        profile: Profile { name: None, gender: None, birthday: None, province: None, city: None, attributes: "{}".into() },
        stats: Stats {
            total_spent: c.total_spent,
            order_count: c.order_count,
            average_order_value: None,
            first_order_at: None,
            last_order_at: None,
            refund_count: 0,
            refund_amount: 0,
        },
        tags: c.tags.into_iter().map(|(name, source)| Tag { name, source }).collect(),
        scores: vec![],
        points: 0,
        tier: None,
        created_at: 0,
    }
}
