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

/// A rule that uses the host: its threshold from the configuration, a count kept in kv, a log line.
struct Counting;

impl TagRule for Counting {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        #[derive(serde::Deserialize)]
        struct Config {
            threshold: i64,
        }
        let threshold = kith_sdk::config::get::<Config>()?.threshold;
        let seen: i64 = kith_sdk::kv::get_json("seen")?.unwrap_or(0);
        kith_sdk::kv::set_json("seen", &(seen + batch.len() as i64))?;
        kith_sdk::log(kith_sdk::LogLevel::Info, &format!("at {}", kith_sdk::now()?));
        let first = kith_sdk::read_customer(2)?;
        Ok(batch
            .iter()
            .filter(|s| s.customer.stats.total_spent >= threshold && s.customer.tags.iter().all(|t| t.name != "vip"))
            .map(|s| {
                Decision::add_tag(
                    s.customer.id,
                    "vip",
                    &format!("spent {} (customer 2 spent {})", s.customer.stats.total_spent, first.stats.total_spent),
                )
            })
            .collect())
    }
}

#[test]
fn a_fixture_of_kith_plugin_test_runs_natively_on_the_fake_host() {
    let fixture = kith_sdk::testing::Fixture::parse(
        r#"{
        "now": "2026-03-01T09:30:00.123Z",
        "config": {"threshold": 50000},
        "kv": {"seen": 40},
        "customers": [
            {"id": 1, "stats": {"total_spent": 60000, "order_count": 2, "last_order_at": "2026-02-01T00:00:00Z"}},
            {"id": 2, "stats": {"total_spent": 70000}, "tags": [{"tag": "vip", "source": "vip"}]},
            {"id": 3, "stats": {"total_spent": 100}}
        ],
        "batch": [{"customer": 1, "event": {"type": "order.paid"}, "order": {"id": "T1", "amount": 30000}}, {"customer": 2}, {"customer": 3}],
        "expect": {"decisions": [{"type": "add-tag", "customer_id": 1, "tag": "vip", "reason": "spent 60000 (customer 2 spent 70000)"}]}
    }"#,
    )
    .unwrap();
    let subjects = fixture.subjects();
    assert_eq!(subjects[0].order.as_ref().map(|o| o.amount), Some(30000));
    assert_eq!(subjects[0].customer.stats.last_order_at, Some(1_769_904_000_000));
    let decisions = Counting::evaluate(&fixture.context(), subjects).unwrap();
    fixture.assert_decisions(&decisions);
    let host = kith_sdk::testing::host();
    assert_eq!(host.kv["seen"], b"43");
    assert_eq!(host.logs.len(), 1);
    assert_eq!(host.logs[0].1, "at 1772357400123");
    // A customer the fixture lacks is not found, as another shop's would be.
    assert!(matches!(kith_sdk::read_customer(9), Err(Error::NotFound(_))));
}
