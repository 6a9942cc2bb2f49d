//! The WIT's versions side by side: 0.1 builds (a Rust tag rule with bindings
//! straight from the frozen wit/v0.1, the Python tag rule) run unchanged
//! through the bus beside 0.2 builds of the SDK in one shop, with the same
//! results; a 0.2 plugin reads the shop's buyer summaries, whose figures are
//! checked against a plain computation over the orders the test wrote, and is
//! refused them without `customers:read`.

mod support;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use kith_bus::{Clock, Package};
use kith_domain::plugin::{Capability, Grant};
use kith_test_plugins as plugins;
use serde_json::{Value, json};
use support::{World, actor, world};

fn order(w: &World, id: &str, phone: &str, amount: i64) {
    w.ingest(json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": id, "amount": amount, "paid_at": w.clock.now()}}));
}

fn refund(w: &World, order: &str, amount: i64) {
    w.ingest(json!({"id": format!("r-{order}"), "type": "order.refunded",
        "refund": {"order_id": order, "amount": amount, "refunded_at": w.clock.now()}}));
}

/// Customers carrying `tag` set by `source`.
fn tagged(w: &World, tag: &str, source: &str) -> BTreeSet<i64> {
    w.store
        .list_customers(w.shop, &Default::default(), 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|c| c.tags.iter().any(|t| t.tag == tag && t.source == source))
        .map(|c| c.id)
        .collect()
}

fn kv(w: &World, plugin: &str, key: &str) -> Option<Value> {
    w.store.plugin_kv_get(w.shop, plugin, key).unwrap().map(|v| serde_json::from_slice(&v).unwrap())
}

#[test]
fn a_0_1_build_and_a_0_2_build_run_side_by_side_with_the_same_results() {
    let w = world();
    let threshold = json!({"threshold": 10_000});
    w.enable(&plugins::VIP_TAG, threshold.clone(), None);
    w.enable(&plugins::LEGACY_VIP_TAG, threshold, None);
    w.enable(&plugins::BIG_SPENDER, json!({}), None);
    for (package, version) in [(&plugins::VIP_TAG, "0.2.0"), (&plugins::LEGACY_VIP_TAG, "0.1.0"), (&plugins::BIG_SPENDER, "0.1.0")] {
        assert!(package.manifest().contains(&format!("api-version = \"{version}\"")), "{}", package.name);
    }

    order(&w, "o1", "13800000001", 20_000);
    order(&w, "o2", "13800000002", 500);
    order(&w, "o3", "13800000003", 150_000);
    order(&w, "o4", "13800000002", 9_600);
    refund(&w, "o1", 20_000);
    w.later(Duration::days(1));

    let new = tagged(&w, "vip", "vip-tag");
    let old = tagged(&w, "vip", "legacy-vip-tag");
    assert_eq!(new.len(), 2, "o3's buyer, and o2 + o4's; o1's buyer lost the tag with the refund");
    assert_eq!(new, old, "the 0.1 build decides as the 0.2 build does");
    let big: BTreeSet<i64> = tagged(&w, "big-spender", "big-spender");
    assert_eq!(big.len(), 1, "the Python 0.1 build ran too");
    assert!(big.is_subset(&new));

    let events = w.store.events_after(w.shop, 0, 1000).unwrap();
    let emitted = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(emitted("plugin.vip-tag.promoted"), 3);
    assert_eq!(emitted("plugin.legacy-vip-tag.promoted"), 3, "decisions of a 0.1 build convert up");
    for id in ["vip-tag", "legacy-vip-tag"] {
        assert_eq!(kv(&w, id, "evaluations"), Some(json!(5)), "{id}: key-value writes through the 0.1 shim");
        let status = w.bus.status(w.shop, id).unwrap();
        assert_eq!((status.calls.failures, status.lag), (0, 0), "{id}: {:?}", status.calls.last_errors);
        assert!(status.logs.iter().any(|l| l.message.starts_with("evaluating 1 customers")), "{id}: {:?}", status.logs);
    }

    // A full run goes through the same shim.
    for id in ["vip-tag", "legacy-vip-tag"] {
        w.bus.start_run(w.shop, id, &actor()).unwrap();
    }
    w.bus.drain().unwrap();
    assert_eq!(kv(&w, "vip-tag", "evaluations"), Some(json!(8)));
    assert_eq!(kv(&w, "legacy-vip-tag", "evaluations"), Some(json!(8)));
    assert_eq!(tagged(&w, "vip", "vip-tag"), tagged(&w, "vip", "legacy-vip-tag"));
}

#[test]
fn the_component_not_the_manifest_says_which_version_it_is() {
    let w = world();
    let refused = |package: &plugins::Package, from: &str, to: &str| {
        let manifest = package.manifest().replace(&format!("api-version = \"{from}\""), &format!("api-version = \"{to}\""));
        let err = w.bus.install(&Package::from_tar_gz(&package.tar_gz_with(&manifest)).unwrap(), &actor()).unwrap_err();
        let kith_bus::BusError::Invalid(err) = err else { panic!("{err:?}") };
        assert_eq!(err.field, "plugin.toml.api-version");
        err.reason
    };
    let reason = refused(&plugins::LEGACY_VIP_TAG, "0.1.0", "0.2.0");
    assert_eq!(reason, "plugin.toml says api-version 0.2.0, but the component is built against kith:plugin@0.1.0");
    let reason = refused(&plugins::SUMMARIES_PROBE, "0.2.0", "0.1.0");
    assert_eq!(reason, "plugin.toml says api-version 0.1.0, but the component is built against kith:plugin@0.2.0");
}

/// One order the test wrote: buyer, amount, refunded amount, when paid.
struct Written {
    phone: &'static str,
    amount: i64,
    refunded: i64,
    paid_at: DateTime<Utc>,
}

#[test]
fn a_0_2_plugin_reads_the_shops_buyer_summaries() {
    let w = world();
    // Three a page, so that the nine buyers below take pages of 3, 3, 3 and an empty one.
    w.enable(&plugins::SUMMARIES_PROBE, json!({"page": 3}), None);
    let mut written: Vec<Written> = Vec::new();
    let phones = [
        "13900000001",
        "13900000002",
        "13900000003",
        "13900000004",
        "13900000005",
        "13900000006",
        "13900000007",
        "13900000008",
        "13900000009",
        "13900000010",
    ];
    // Over 40 days, at hours that put some orders on the next day in Shanghai (UTC+8) but not in UTC.
    let start = w.clock.now();
    for day in 0..40i64 {
        let mut today: Vec<(i64, i64, &str)> = phones
            .iter()
            .enumerate()
            .map(|(i, phone)| (i as i64, phone))
            .filter(|(i, _)| (day * 7 + i * 3) % (i + 2) == 0)
            .map(|(i, phone)| ((day + i) % 24, i, *phone))
            .collect();
        today.sort();
        for (hour, i, phone) in today {
            // The clock moves forward only: to this order's hour of the day.
            w.clock.advance(start + Duration::days(day) + Duration::hours(hour) - w.clock.now());
            let id = format!("o{day}-{i}");
            let amount = 1_000 + 137 * i + 11 * day;
            w.store
                .ingest_at(
                    w.shop,
                    vec![json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
                    "order": {"id": id, "amount": amount, "paid_at": w.clock.now()}})],
                    &actor(),
                    w.clock.now(),
                )
                .unwrap();
            let mut refunded = 0;
            if (day + i) % 5 == 0 {
                // Every fifth order refunded, fully or by a third.
                refunded = if day % 2 == 0 { amount } else { amount / 3 };
                w.store
                    .ingest_at(
                        w.shop,
                        vec![json!({"id": format!("r-{id}"), "type": "order.refunded",
                        "refund": {"order_id": id, "amount": refunded, "refunded_at": w.clock.now()}})],
                        &actor(),
                        w.clock.now(),
                    )
                    .unwrap();
            }
            written.push(Written { phone, amount, refunded, paid_at: w.clock.now() });
        }
    }
    w.clock.advance(start + Duration::days(40) - w.clock.now());
    w.bus.drain().unwrap();

    // The plain computation: per buyer, over orders not fully refunded, days in UTC+8.
    let now = w.clock.now();
    let day = |t: DateTime<Utc>| (t.timestamp_millis() + 8 * 3_600_000).div_euclid(86_400_000);
    let id_of = |phone: &str| {
        w.store
            .list_customers(w.shop, &Default::default(), 0, 1000)
            .unwrap()
            .into_iter()
            .find(|c| c.identities.iter().any(|i| i.value == format!("+86{phone}")))
            .map(|c| c.id)
    };
    let mut expected = Vec::new();
    for phone in phones {
        let counted: Vec<&Written> = written.iter().filter(|o| o.phone == phone && o.refunded < o.amount).collect();
        if counted.is_empty() {
            continue;
        }
        let first = counted.iter().map(|o| o.paid_at).min().unwrap();
        let last = counted.iter().map(|o| o.paid_at).max().unwrap();
        let days: BTreeSet<i64> = counted.iter().map(|o| day(o.paid_at)).collect();
        let net = |o: &&&Written| o.amount - o.refunded;
        expected.push(json!({
            "customer_id": id_of(phone).unwrap(),
            "first_order_at": first.timestamp_millis(),
            "last_order_at": last.timestamp_millis(),
            "purchase_days": days.len(),
            "order_count": counted.len(),
            "total_spent": counted.iter().map(|o| net(&o)).sum::<i64>(),
            "repeat_spent": counted.iter().filter(|o| day(o.paid_at) != day(first)).map(|o| net(&o)).sum::<i64>(),
            "span_days": day(last) - day(first),
            "age_days": day(now) - day(first),
        }));
    }
    expected.sort_by_key(|b| b["customer_id"].as_i64());
    assert!(expected.len() >= 7, "most of the ten are buyers: {}", expected.len());
    assert!(expected.iter().any(|b| b["purchase_days"].as_u64() > Some(3)), "some buy again and again");
    assert!(
        written.iter().any(|o| day(o.paid_at) != o.paid_at.timestamp_millis().div_euclid(86_400_000)),
        "some orders fall on another day in Shanghai than in UTC"
    );
    assert_eq!(kv(&w, "summaries-probe", "error"), None);
    let buyers = kv(&w, "summaries-probe", "buyers").expect("the probe wrote the buyers");
    assert_eq!(buyers, Value::Array(expected.clone()));
    let pages: Vec<usize> = serde_json::from_value(kv(&w, "summaries-probe", "pages").unwrap()).unwrap();
    let full = expected.len() / 3;
    assert_eq!(pages.iter().filter(|&&n| n == 3).count(), full, "{pages:?}");
    assert_eq!(pages.iter().sum::<usize>(), expected.len());
    let ids: Vec<i64> = expected.iter().map(|b| b["customer_id"].as_i64().unwrap()).collect();
    assert_eq!(kv(&w, "summaries-probe", "iterated"), Some(json!(ids)), "the SDK's iterator reads every page");
}

#[test]
fn buyer_summaries_need_customers_read_and_a_page_of_1_to_1000() {
    for (config, grant, error) in [
        (
            json!({"page": 100}),
            Some(Grant { capabilities: [Capability::Config, Capability::Kv].into(), allowed_hosts: vec![] }),
            "Error::AccessDenied(\"capability `customers:read` is not granted\")",
        ),
        (json!({"page": 0}), None, "Error::Invalid(\"limit 0; a page holds 1 to 1000 buyers\")"),
        (json!({"page": 1001}), None, "Error::Invalid(\"limit 1001; a page holds 1 to 1000 buyers\")"),
    ] {
        let w = world();
        w.enable(&plugins::SUMMARIES_PROBE, config, grant);
        order(&w, "o1", "13800000001", 20_000);
        assert_eq!(kv(&w, "summaries-probe", "error"), Some(json!(error)));
        assert_eq!(kv(&w, "summaries-probe", "buyers"), None);
    }
}
