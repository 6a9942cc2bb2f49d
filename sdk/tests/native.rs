//! Plugin logic is plain Rust: a plugin author tests it natively, with
//! snapshots built by hand, without a kernel.

use kith_sdk::{Customer, Decision, Distribution, Error, Profile, ScoringModel, ShopContext, Stats, Subject, TagChange, TagRule};

struct Vip;

impl TagRule for Vip {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        Ok(batch
            .iter()
            .filter(|s| s.customer.stats.total_spent >= 100_000)
            .map(|s| Decision::add_tag(s.customer.id, "vip", "spent 1,000 or more"))
            .collect())
    }
}

struct Relative;

impl ScoringModel for Relative {
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        Ok(batch
            .iter()
            .map(|c| Decision::set_score(c.id, "relative", c.stats.total_spent as f64 / ctx.monetary.average, None, ""))
            .collect())
    }
}

fn customer(id: i64, total_spent: i64) -> Customer {
    Customer {
        id,
        profile: Profile { name: None, gender: None, birthday: None, province: None, city: None, attributes: "{}".into() },
        stats: Stats {
            total_spent,
            order_count: 1,
            average_order_value: Some(total_spent),
            first_order_at: None,
            last_order_at: None,
            refund_count: 0,
            refund_amount: 0,
        },
        tags: vec![],
        scores: vec![],
        points: 0,
        tier: None,
        created_at: 0,
    }
}

fn context(average: f64) -> ShopContext {
    let distribution = Distribution { average, quintiles: vec![] };
    ShopContext {
        shop_id: 1,
        now: 0,
        window_days: None,
        time_zone: "Asia/Shanghai".into(),
        currency: "CNY".into(),
        customer_count: 2,
        buyer_count: 2,
        recency_days: distribution.clone(),
        frequency: distribution.clone(),
        monetary: distribution,
        average_order_value: average,
    }
}

#[test]
fn a_tag_rule_is_tested_natively() {
    let batch = vec![
        Subject { customer: customer(1, 150_000), event: None, order: None },
        Subject { customer: customer(2, 10), event: None, order: None },
    ];
    let decisions = Vip::evaluate(&context(1.0), batch).unwrap();
    assert_eq!(decisions.len(), 1);
    assert!(matches!(&decisions[0], Decision::AddTag(TagChange { customer_id: 1, tag, .. }) if tag == "vip"));
}

#[test]
fn a_scoring_model_is_tested_natively() {
    let decisions = Relative::score(&context(50_000.0), vec![customer(1, 150_000)]).unwrap();
    assert!(matches!(&decisions[0], Decision::SetScore(s) if s.value == 3.0 && s.model == "relative"));
}
