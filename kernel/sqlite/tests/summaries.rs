//! Per-buyer summaries (`summaries.buyers` of `kith:plugin@0.2.0`): days in the
//! shop's time zone, orders as customer stats count them, pages by customer id,
//! one shop only.

use chrono::{DateTime, TimeZone, Utc};
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::model::NewShop;
use kith_domain::plugin::BuyerSummary;
use kith_sqlite::{Store, StoreOptions};
use serde_json::{Value, json};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn order(phone: &str, id: &str, amount: i64, paid_at: &str) -> Value {
    json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": id, "amount": amount, "paid_at": paid_at}})
}

fn refund(order: &str, amount: i64, at: &str) -> Value {
    json!({"id": format!("r-{order}"), "type": "order.refunded", "refund": {"order_id": order, "amount": amount, "refunded_at": at}})
}

#[test]
fn buyers_are_summarised_by_shop_day_with_stats_counting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    let cli = Actor::cli("test");
    let shop = |name: &str, zone: &str| {
        let new = NewShop { name: name.into(), time_zone: zone.into(), currency: "CNY".into(), region: "CN".into() };
        store.create_shop(&new, &cli).unwrap().id
    };
    let (a, b) = (shop("A", "Asia/Shanghai"), shop("B", "UTC"));
    let events = vec![
        // Buyer 1: 2026-03-01 (Shanghai) twice, then 16:30 UTC on 03-01 which is 00:30 on 03-02 in Shanghai,
        // then 03-11; the 03-11 order is partly refunded.
        order("13800000001", "a1", 10_000, "2026-03-01T02:00:00Z"),
        order("13800000001", "a2", 5_000, "2026-03-01T09:00:00Z"),
        order("13800000001", "a3", 3_000, "2026-03-01T16:30:00Z"),
        order("13800000001", "a4", 8_000, "2026-03-11T04:00:00Z"),
        refund("a4", 2_000, "2026-03-12T04:00:00Z"),
        // Buyer 2: one order kept, one fully refunded (neither a purchase day nor an order).
        order("13800000002", "b1", 7_000, "2026-03-05T04:00:00Z"),
        order("13800000002", "b2", 9_000, "2026-03-20T04:00:00Z"),
        refund("b2", 9_000, "2026-03-21T04:00:00Z"),
        // Not a buyer: their only order was fully refunded.
        order("13800000003", "c1", 4_000, "2026-03-06T04:00:00Z"),
        refund("c1", 4_000, "2026-03-07T04:00:00Z"),
        // Buyer 4.
        order("13800000004", "d1", 1_000, "2026-03-10T04:00:00Z"),
    ];
    assert_eq!(store.ingest(a, events, &cli).unwrap().accepted, 11);
    // Another shop's buyer with the same phone is not in shop A's pages.
    store.ingest(b, vec![order("13800000001", "x1", 99_000, "2026-03-02T04:00:00Z")], &cli).unwrap();

    let now = Utc.with_ymd_and_hms(2026, 3, 31, 20, 0, 0).unwrap(); // 04-01 04:00 in Shanghai
    let all = store.buyer_summaries(a, None, 1000, now).unwrap();
    let id = |phone: &str| {
        store
            .list_customers(a, &Default::default(), 0, 100)
            .unwrap()
            .into_iter()
            .find(|c| c.identities.iter().any(|i| i.value.ends_with(phone)))
            .unwrap()
            .id
    };
    let (one, two, four) = (id("13800000001"), id("13800000002"), id("13800000004"));
    let expected = vec![
        BuyerSummary {
            customer_id: one,
            first_order_at_ms: at("2026-03-01T02:00:00Z").timestamp_millis(),
            last_order_at_ms: at("2026-03-11T04:00:00Z").timestamp_millis(),
            purchase_days: 3,
            order_count: 4,
            total_spent: 10_000 + 5_000 + 3_000 + 6_000,
            repeat_spent: 3_000 + 6_000,
            span_days: 10,
            age_days: 31,
        },
        BuyerSummary {
            customer_id: two,
            first_order_at_ms: at("2026-03-05T04:00:00Z").timestamp_millis(),
            last_order_at_ms: at("2026-03-05T04:00:00Z").timestamp_millis(),
            purchase_days: 1,
            order_count: 1,
            total_spent: 7_000,
            repeat_spent: 0,
            span_days: 0,
            age_days: 27,
        },
        BuyerSummary {
            customer_id: four,
            first_order_at_ms: at("2026-03-10T04:00:00Z").timestamp_millis(),
            last_order_at_ms: at("2026-03-10T04:00:00Z").timestamp_millis(),
            purchase_days: 1,
            order_count: 1,
            total_spent: 1_000,
            repeat_spent: 0,
            span_days: 0,
            age_days: 22,
        },
    ];
    assert_eq!(all, expected);
    // The same figures as the customer's stats.
    for s in &all {
        let kith_core::customers::CustomerRead::Found(detail) = store.get_customer(a, s.customer_id, 1).unwrap() else { panic!("merged") };
        assert_eq!((s.total_spent, i64::from(s.order_count)), (detail.customer.stats.total_spent, detail.customer.stats.order_count));
    }

    // Pages of one resume after the last id and end with an empty page.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.buyer_summaries(a, after, 1, now).unwrap();
        assert!(page.len() <= 1);
        let Some(last) = page.last() else { break };
        after = Some(last.customer_id);
        paged.extend(page);
    }
    assert_eq!(paged, expected);
    assert_eq!(store.buyer_summaries(a, Some(one), 2, now).unwrap(), expected[1..]);
    // The page size is bounded by the store whatever is asked.
    assert_eq!(store.buyer_summaries(a, None, usize::MAX, now).unwrap(), expected);

    let other = store.buyer_summaries(b, None, 1000, now).unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!((other[0].total_spent, other[0].age_days), (99_000, 29));
}
