//! Identity resolution through the store: what only the SQLite store shows (a file
//! reopened, concurrent batches on its one writer, SQLite's integer sums) and the
//! `Store` API's own answers. The table of identity cases (each event's outcome and which
//! identifiers end up on one customer) is the conformance suite's (`identity_table_cases`),
//! which runs on this store in `tests/conformance.rs`.

use kith_core::prelude::*;
use std::collections::BTreeSet;

use kith_core::Actor;
use kith_core::customers::CustomerFilter;
use kith_core::ingest::IdentityCaps;
use kith_domain::model::{NewShop, OutcomeStatus};
use kith_sqlite::{Store, StoreOptions};
use serde_json::{Value, json};

use OutcomeStatus::{Accepted, Duplicate, Rejected};

fn upsert(id: &str, identities: &[(&str, &str)]) -> Value {
    let identities: Vec<Value> = identities.iter().map(|(k, v)| json!({"kind": k, "value": v})).collect();
    json!({"id": id, "type": "customer.upsert", "identities": identities})
}

fn open(caps: &[(&str, u32)]) -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut identity_caps = IdentityCaps::default();
    for (kind, cap) in caps {
        identity_caps.per_kind.insert((*kind).to_owned(), *cap);
    }
    let store = Store::open(dir.path().join("kith.db"), StoreOptions { identity_caps }).unwrap();
    let shop = store
        .create_shop(
            &NewShop { name: "Test".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() },
            &Actor::cli("test"),
        )
        .unwrap();
    (dir, store, shop.id)
}

fn identity_sets(store: &Store, shop: i64) -> BTreeSet<Vec<String>> {
    store
        .list_customers(shop, &CustomerFilter::default(), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|c| {
            let mut ids: Vec<String> = c.identities.iter().map(|i| format!("{}:{}", i.kind, i.value)).collect();
            ids.sort();
            ids
        })
        .collect()
}

fn order(id: &str, identities: &[(&str, &str)], order_id: &str, amount: i64, paid_at: &str) -> Value {
    let identities: Vec<Value> = identities.iter().map(|(k, v)| json!({"kind": k, "value": v})).collect();
    json!({"id": id, "type": "order.paid", "identities": identities,
           "order": {"id": order_id, "paid_at": paid_at, "items": [{"sku": "SKU-1", "category": "beauty", "quantity": 1, "unit_price": amount}]}})
}

#[test]
fn merge_moves_records_and_unmerge_restores_them() {
    let (_dir, store, shop) = open(&[]);
    let actor = Actor::cli("test");
    let phone = [("phone", "13812345678")];
    let email = [("email", "ming@example.com")];
    let r = store
        .ingest(
            shop,
            vec![
                order("o1", &phone, "T1", 10000, "2026-01-01T10:00:00Z"),
                order("o2", &email, "T2", 5000, "2026-02-01T10:00:00Z"),
                json!({"id": "b1", "type": "behaviour", "identities": [{"kind": "email", "value": "ming@example.com"}], "behaviour": {"kind": "view", "sku": "SKU-9"}}),
                json!({"id": "p2", "type": "customer.upsert", "identities": [{"kind": "email", "value": "ming@example.com"}], "profile": {"city": "Hangzhou", "attributes": {"vip": true}}}),
            ],
            &actor,
        )
        .unwrap();
    assert_eq!(r.accepted, 4);
    let (a, b) = (r.outcomes[0].customer_id.unwrap(), r.outcomes[1].customer_id.unwrap());
    store.add_tag(shop, b, "likes-red", Some("said so"), &actor).unwrap();

    let r = store.ingest(shop, vec![upsert("m", &[("phone", "13812345678"), ("email", "ming@example.com")])], &actor).unwrap();
    assert_eq!(r.outcomes[0].customer_id, Some(a), "the older customer survives");
    let kith_core::customers::CustomerRead::Found(merged) = store.get_customer(shop, a, 50).unwrap() else { panic!("survivor readable") };
    assert_eq!(merged.customer.stats.total_spent, 15000);
    assert_eq!(merged.customer.stats.order_count, 2);
    assert_eq!(merged.customer.profile.city.as_deref(), Some("Hangzhou"));
    assert!(merged.customer.tags.iter().any(|t| t.tag == "likes-red"));
    assert!(merged.timeline.iter().any(|e| e.kind == "behaviour.recorded"), "the timeline includes the merged side's events");
    assert_eq!(store.get_customer(shop, b, 5).unwrap(), kith_core::customers::CustomerRead::Merged { into: a });
    assert!(store.verify_stats(shop).unwrap().is_empty());

    // An order naming the merged side's identifier lands on the survivor.
    let r = store.ingest(shop, vec![order("o3", &email, "T3", 700, "2026-03-01T10:00:00Z")], &actor).unwrap();
    assert_eq!(r.outcomes[0].customer_id, Some(a));

    let merges = store.list_merges(shop, a).unwrap();
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].identities.len(), 1);
    let undone = store.unmerge(shop, merges[0].id, &actor).unwrap();
    assert!(undone.unmerged_at.is_some());

    let kith_core::customers::CustomerRead::Found(a_view) = store.get_customer(shop, a, 0).unwrap() else { panic!() };
    let kith_core::customers::CustomerRead::Found(b_view) = store.get_customer(shop, b, 0).unwrap() else { panic!() };
    assert_eq!(a_view.customer.identities.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), vec!["+8613812345678"]);
    assert_eq!(b_view.customer.identities.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), vec!["ming@example.com"]);
    // T3 arrived after the merge, on the survivor; it stays there.
    assert_eq!(a_view.customer.stats.total_spent, 10700);
    assert_eq!(b_view.customer.stats.total_spent, 5000);
    assert_eq!(a_view.customer.profile.city, None, "a field filled by the merge is emptied again");
    assert!(a_view.customer.tags.is_empty());
    assert_eq!(b_view.customer.tags.len(), 1);
    assert_eq!(b_view.customer.profile.city.as_deref(), Some("Hangzhou"));
    // Apart again, each timeline holds the customer's own events, newest first.
    let timeline = |id, n| match store.get_customer(shop, id, n).unwrap() {
        kith_core::customers::CustomerRead::Found(d) => d.timeline,
        other => panic!("{other:?}"),
    };
    let (a_events, b_events) = (timeline(a, 50), timeline(b, 50));
    assert!(!a_events.iter().any(|e| e.kind == "behaviour.recorded"), "{a_events:?}");
    assert!(b_events.iter().any(|e| e.kind == "behaviour.recorded"), "{b_events:?}");
    assert!(a_events.iter().all(|e| e.customer_id == Some(a)) && b_events.iter().all(|e| e.customer_id == Some(b)));
    assert!(a_events.windows(2).all(|w| w[0].seq > w[1].seq), "{a_events:?}");
    assert_eq!(timeline(a, 1), a_events[..1]);
    assert!(store.verify_stats(shop).unwrap().is_empty());

    let again = store.unmerge(shop, merges[0].id, &actor).unwrap_err();
    assert!(again.to_string().contains("already undone"), "{again}");
}

#[test]
fn stats_follow_orders_and_refunds() {
    let (_dir, store, shop) = open(&[]);
    let actor = Actor::cli("test");
    let phone = [("phone", "13812345678")];
    let events = vec![
        order("o1", &phone, "T1", 10000, "2026-01-01T10:00:00Z"),
        order("o2", &phone, "T2", 4000, "2026-03-01T10:00:00Z"),
        json!({"id": "r1", "type": "order.refunded", "refund": {"order_id": "T1", "amount": 2500}}),
        json!({"id": "r2", "type": "order.refunded", "refund": {"order_id": "T2", "amount": 4000}}),
        json!({"id": "r3", "type": "order.refunded", "refund": {"order_id": "T2", "amount": 1}}),
        json!({"id": "r4", "type": "order.refunded", "refund": {"order_id": "T9", "amount": 1}}),
        order("o1-again", &phone, "T1", 10000, "2026-01-01T10:00:00Z"),
    ];
    let r = store.ingest(shop, events, &actor).unwrap();
    let statuses: Vec<_> = r.outcomes.iter().map(|o| (o.status, o.field.clone())).collect();
    assert_eq!(
        statuses,
        vec![
            (Accepted, None),
            (Accepted, None),
            (Accepted, None),
            (Accepted, None),
            (Rejected, Some("refund.amount".into())),
            (Rejected, Some("refund.order_id".into())),
            (Rejected, Some("order.id".into())),
        ]
    );
    let kith_core::customers::CustomerRead::Found(c) = store.get_customer(shop, r.outcomes[0].customer_id.unwrap(), 0).unwrap() else {
        panic!()
    };
    let s = &c.customer.stats;
    assert_eq!((s.total_spent, s.order_count, s.refund_count, s.refund_amount, s.average_order_value), (7500, 1, 2, 6500, Some(7500)));
    assert_eq!(s.first_order_at.unwrap().to_rfc3339(), "2026-01-01T10:00:00+00:00");
    // T2 of 03-01 was refunded in full: it no longer counts, as the last order or at all.
    assert_eq!(s.last_order_at.unwrap().to_rfc3339(), "2026-01-01T10:00:00+00:00");
    assert!(store.verify_stats(shop).unwrap().is_empty());

    // A customer whose only order is refunded in full has no first or last order.
    let other = [("phone", "13812345679")];
    let events = vec![
        order("o3", &other, "T3", 500, "2026-02-01T10:00:00Z"),
        json!({"id": "r5", "type": "order.refunded", "refund": {"order_id": "T3", "amount": 500}}),
    ];
    let r = store.ingest(shop, events, &actor).unwrap();
    let kith_core::customers::CustomerRead::Found(c) = store.get_customer(shop, r.outcomes[0].customer_id.unwrap(), 0).unwrap() else {
        panic!()
    };
    let s = &c.customer.stats;
    assert_eq!((s.order_count, s.first_order_at, s.last_order_at, s.average_order_value), (0, None, None, None));
    assert!(store.verify_stats(shop).unwrap().is_empty());
}

#[test]
fn a_customers_total_spent_stays_within_its_range() {
    // Issue 25: an overflowing total became a float that every later read refused with a 500.
    let (dir, store, shop) = open(&[]);
    let actor = Actor::cli("test");
    let phone = [("phone", "13812345678")];
    let first = store.ingest(shop, vec![order("o1", &phone, "T1", 100, "2026-01-01T10:00:00Z")], &actor).unwrap();
    let customer = first.outcomes[0].customer_id.unwrap();
    // A customer near the ceiling (reached over years of orders, set here directly).
    let near = kith_domain::money::MAX_TOTAL - 50;
    let conn = rusqlite::Connection::open(dir.path().join("kith.db")).unwrap();
    conn.execute("UPDATE customers SET total_spent = ?1 WHERE id = ?2", rusqlite::params![near, customer]).unwrap();
    drop(conn);
    let r = store
        .ingest(
            shop,
            vec![order("o2", &phone, "T2", 51, "2026-01-02T10:00:00Z"), order("o3", &phone, "T3", 50, "2026-01-03T10:00:00Z")],
            &actor,
        )
        .unwrap();
    let outcomes: Vec<_> = r.outcomes.iter().map(|o| (o.status, o.field.clone())).collect();
    assert_eq!(outcomes, vec![(Rejected, Some("order.amount".into())), (Accepted, None)]);
    let kith_core::customers::CustomerRead::Found(c) = store.get_customer(shop, customer, 0).unwrap() else { panic!() };
    assert_eq!((c.customer.stats.total_spent, c.customer.stats.order_count), (kith_domain::money::MAX_TOTAL, 2));
}

#[test]
fn an_event_that_fails_after_writing_leaves_nothing_and_the_rest_of_its_batch_applies() {
    let (_dir, store, shop) = open(&[]);
    let actor = Actor::cli("test");
    let report = store
        .ingest(
            shop,
            vec![
                order("o1", &[("phone", "13800000001")], "T1", 1000, "2026-01-01T10:00:00Z"),
                // Too many of a kind: refused before anything is written.
                upsert("u1", &[("phone", "13800000011"), ("phone", "13800000012"), ("phone", "13800000013"), ("phone", "13800000014")]),
                // A new customer is created for the phone before the order id is found taken.
                order("o2", &[("phone", "13800000002")], "T1", 2000, "2026-01-02T10:00:00Z"),
                order("o3", &[("phone", "13800000003")], "T3", 3000, "2026-01-03T10:00:00Z"),
            ],
            &actor,
        )
        .unwrap();
    let statuses: Vec<_> = report.outcomes.iter().map(|o| (o.status, o.field.clone())).collect();
    assert_eq!(
        statuses,
        vec![(Accepted, None), (Rejected, Some("identities".into())), (Rejected, Some("order.id".into())), (Accepted, None)]
    );
    assert_eq!((report.accepted, report.rejected), (2, 2));
    let expected: BTreeSet<Vec<String>> = [vec!["phone:+8613800000001".to_owned()], vec!["phone:+8613800000003".to_owned()]].into();
    assert_eq!(identity_sets(&store, shop), expected, "no customer for the rejected order's phone");
    let kinds: Vec<String> = store.events_after(shop, 0, 100).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["customer.created", "order.paid", "customer.created", "order.paid"]);
    assert!(store.verify_stats(shop).unwrap().is_empty());
    // The rejected events were not received: sent again, they are rejected again, not duplicates.
    let again = store.ingest(shop, vec![order("o2", &[("phone", "13800000002")], "T1", 2000, "2026-01-02T10:00:00Z")], &actor).unwrap();
    assert_eq!((again.outcomes[0].status, again.outcomes[0].field.as_deref()), (Rejected, Some("order.id")));
}

#[test]
fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let shop = {
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let shop = store
            .create_shop(
                &NewShop { name: "S".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() },
                &Actor::cli("t"),
            )
            .unwrap();
        store.ingest(shop.id, vec![upsert("e1", &[("nick", "a")])], &Actor::cli("t")).unwrap();
        shop.id
    };
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.count_customers(shop).unwrap(), 1);
    let r = store.ingest(shop, vec![upsert("e1", &[("nick", "a")])], &Actor::cli("t")).unwrap();
    assert_eq!(r.outcomes[0].status, Duplicate);
}

#[test]
fn unmerging_a_nested_merge_restores_what_the_merged_side_had_absorbed() {
    let (_dir, store, shop) = open(&[]);
    let actor = Actor::cli("test");
    // a (oldest), b and c, each with an order.
    let r = store
        .ingest(
            shop,
            vec![
                order("a", &[("nick", "a")], "TA", 100, "2026-01-01T00:00:00Z"),
                order("b", &[("nick", "b")], "TB", 200, "2026-01-02T00:00:00Z"),
                order("c", &[("nick", "c")], "TC", 400, "2026-01-03T00:00:00Z"),
            ],
            &actor,
        )
        .unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| r.outcomes[i].customer_id.unwrap());
    // c merges into b, then b (holding c's records) merges into a.
    store.ingest(shop, vec![upsert("bc", &[("nick", "b"), ("nick", "c")])], &actor).unwrap();
    store.ingest(shop, vec![upsert("ab", &[("nick", "a"), ("nick", "b")])], &actor).unwrap();
    assert_eq!(store.get_customer(shop, c, 0).unwrap(), kith_core::customers::CustomerRead::Merged { into: a }, "reads follow the chain");
    let total = |id| match store.get_customer(shop, id, 0).unwrap() {
        kith_core::customers::CustomerRead::Found(d) => d.customer.stats.total_spent,
        other => panic!("{other:?}"),
    };
    assert_eq!(total(a), 700);

    // Undoing the inner merge first is refused: b has since been merged away.
    let inner = store.list_merges(shop, c).unwrap()[0].id;
    let err = store.unmerge(shop, inner, &actor).unwrap_err();
    assert!(err.to_string().contains("undo that merge first"), "{err}");

    let outer = store.list_merges(shop, b).unwrap().into_iter().find(|m| m.survivor_id == a).unwrap().id;
    store.unmerge(shop, outer, &actor).unwrap();
    assert_eq!((total(a), total(b)), (100, 600), "b comes back with c's order too");
    assert_eq!(store.get_customer(shop, c, 0).unwrap(), kith_core::customers::CustomerRead::Merged { into: b });
    store.unmerge(shop, inner, &actor).unwrap();
    assert_eq!((total(a), total(b), total(c)), (100, 200, 400));
    assert_eq!(identity_sets(&store, shop).len(), 3);
    assert!(store.verify_stats(shop).unwrap().is_empty());
}

#[test]
fn concurrent_batches_naming_one_new_identifier_make_one_customer() {
    let (_dir, store, shop) = open(&[]);
    let store = std::sync::Arc::new(store);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let events = (0..25)
                    .map(|i| order(&format!("t{t}-{i}"), &[("phone", "13812345678")], &format!("T{t}-{i}"), 100, "2026-01-01T00:00:00Z"))
                    .collect();
                store.ingest(shop, events, &Actor::cli("test")).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().accepted, 25);
    }
    let customers = store.list_customers(shop, &CustomerFilter::default(), 0, 10).unwrap();
    assert_eq!(customers.len(), 1);
    assert_eq!((customers[0].stats.order_count, customers[0].stats.total_spent), (100, 10_000));
}
