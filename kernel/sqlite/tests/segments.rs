//! The segment language against a fixed synthetic shop: every condition type
//! and window has a hand-checked member set. Then versions, snapshots, daily
//! counts and entry/exit events on data change and on time passing, with the
//! clock passed explicitly.
//!
//! The shop (Asia/Shanghai), evaluated at NOW = 2026-06-15 12:00 local:
//!
//! | name | city | birthday | orders (paid, items) | behaviours | tags, scores, tier, points |
//! |------|------|----------|----------------------|------------|----------------------------|
//! | Ann | 杭州 | 1990-06-18 | 05-20 C snack 3000; 06-01 A tea 2×5000 | view A 06-10, 06-12, 06-14 | vip (manual); rfm important-value 555; aipl L; gold; 300 points |
//! | Bob | 上海 | 1985-06-10 | 06-10 B tea 8000; 06-12 A tea 5000 | — | lapsed (lifecycle); rfm important-keep 355 |
//! | Cai | 杭州 | — | 03-01 A tea 10000; 04-01 D snack 2000, refunded 04-05 | cart A tea 06-14; favorite T tea 06-13 | — |
//! | Dan | 北京 | 2000-02-29 | — | view A 05-01; view B 06-14 | vip (high-value) |
//! | Eve | — | — | 06-14 A tea 5000 + B tea 2000 | — | aipl P |

use kith_core::prelude::*;
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use kith_core::Actor;
use kith_core::segments::Audience;
use kith_domain::loyalty::PointsAdjustment;
use kith_domain::model::NewShop;
use kith_domain::segments::SegmentInput;
use kith_sqlite::{Store, StoreError, StoreOptions};
use serde_json::{Value, json};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2026-06-15T04:00:00Z")
}

struct Shop {
    store: Store,
    shop_id: i64,
    /// name → customer id
    ids: BTreeMap<&'static str, i64>,
    dir: tempfile::TempDir,
}

impl Shop {
    fn name_of(&self, id: i64) -> &'static str {
        self.ids.iter().find(|(_, v)| **v == id).map(|(k, _)| *k).unwrap_or("?")
    }

    fn members_at(&self, definition: Value, when: DateTime<Utc>) -> Result<Vec<&'static str>, StoreError> {
        let (_, count, page) = self.store.audience_page(self.shop_id, &Audience::Definition(definition), 0, 100, true, when)?;
        let names: Vec<&'static str> = page.iter().map(|c| self.name_of(c.id)).collect();
        assert_eq!(count, Some(names.len() as i64), "count and page agree");
        Ok(names)
    }

    fn members(&self, definition: Value) -> Vec<&'static str> {
        self.members_at(definition.clone(), now()).unwrap_or_else(|e| panic!("{definition}: {e}"))
    }

    fn events(&self, kind: &str) -> Vec<(&'static str, String)> {
        self.store
            .events_after(self.shop_id, 0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| (self.name_of(e.customer_id.unwrap_or_default()), e.payload.value()["reason"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }
}

fn customer(id: &str, name: &str, profile: Value) -> Value {
    let mut profile = profile;
    profile["name"] = json!(name);
    json!({"id": id, "type": "customer.upsert", "identities": [{"kind": "external:erp", "value": name}], "profile": profile})
}

fn order(name: &str, order_id: &str, paid_at: &str, items: Value) -> Value {
    json!({"id": format!("e-{order_id}"), "type": "order.paid", "identities": [{"kind": "external:erp", "value": name}],
           "order": {"id": order_id, "paid_at": paid_at, "items": items}})
}

fn item(sku: &str, category: &str, quantity: i64, unit_price: i64) -> Value {
    json!({"sku": sku, "category": category, "quantity": quantity, "unit_price": unit_price})
}

fn behaviour(id: &str, name: &str, kind: &str, sku: &str, category: &str, occurred_at: &str) -> Value {
    json!({"id": id, "type": "behaviour", "identities": [{"kind": "external:erp", "value": name}], "occurred_at": occurred_at,
           "behaviour": {"kind": kind, "sku": sku, "category": category}})
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let cli = Actor::cli("test");
    let shop_id = store
        .create_shop(
            &NewShop { name: "Tea House".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() },
            &cli,
        )
        .unwrap()
        .id;
    let events = vec![
        customer(
            "c1",
            "Ann",
            json!({"city": "杭州", "province": "浙江", "gender": "female", "birthday": "1990-06-18",
            "attributes": {"vip_level": 3, "channels": ["tmall", "wechat"], "note": "likes tea", "newsletter": true}}),
        ),
        customer("c2", "Bob", json!({"city": "上海", "gender": "male", "birthday": "1985-06-10", "attributes": {"vip_level": 1}})),
        customer("c3", "Cai", json!({"city": "杭州"})),
        customer("c4", "Dan", json!({"city": "北京", "birthday": "2000-02-29", "attributes": {"channels": ["douyin"]}})),
        customer("c5", "Eve", json!({})),
        order("Ann", "o2", "2026-05-20T02:00:00Z", json!([item("C", "snack", 1, 3000)])),
        order("Ann", "o1", "2026-06-01T02:00:00Z", json!([item("A", "tea", 2, 5000)])),
        order("Bob", "o3", "2026-06-10T02:00:00Z", json!([item("B", "tea", 1, 8000)])),
        order("Bob", "o4", "2026-06-12T02:00:00Z", json!([item("A", "tea", 1, 5000)])),
        order("Cai", "o5", "2026-03-01T02:00:00Z", json!([item("A", "tea", 1, 10000)])),
        order("Cai", "o6", "2026-04-01T02:00:00Z", json!([item("D", "snack", 1, 2000)])),
        json!({"id": "r6", "type": "order.refunded",
               "refund": {"order_id": "o6", "amount": 2000, "refunded_at": "2026-04-05T02:00:00Z"}}),
        order("Eve", "o7", "2026-06-14T10:00:00Z", json!([item("A", "tea", 1, 5000), item("B", "tea", 1, 2000)])),
        behaviour("b1", "Ann", "view", "A", "tea", "2026-06-10T02:00:00Z"),
        behaviour("b2", "Ann", "view", "A", "tea", "2026-06-12T02:00:00Z"),
        behaviour("b3", "Ann", "view", "A", "tea", "2026-06-14T02:00:00Z"),
        behaviour("b4", "Cai", "cart", "A", "tea", "2026-06-14T02:00:00Z"),
        behaviour("b5", "Cai", "favorite", "T", "tea", "2026-06-13T02:00:00Z"),
        behaviour("b6", "Dan", "view", "A", "tea", "2026-05-01T02:00:00Z"),
        behaviour("b7", "Dan", "view", "B", "tea", "2026-06-14T02:00:00Z"),
    ];
    let report = store.ingest(shop_id, events, &cli).unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.outcomes.iter().filter(|o| o.reason.is_some()).collect::<Vec<_>>());
    let customers = store.list_customers(shop_id, &Default::default(), 0, 100).unwrap();
    let ids: BTreeMap<&'static str, i64> = ["Ann", "Bob", "Cai", "Dan", "Eve"]
        .into_iter()
        .map(|n| (n, customers.iter().find(|c| c.profile.name.as_deref() == Some(n)).unwrap().id))
        .collect();
    store.add_tag(shop_id, ids["Ann"], "vip", None, &cli).unwrap();
    store
        .adjust_points(
            shop_id,
            ids["Ann"],
            &PointsAdjustment { points: 300, reason: "welcome".into(), idempotency_key: "w1".into(), expires_at: None },
            &cli,
            now(),
        )
        .unwrap();
    // What plugins would write (a lifecycle tag, scores, a tier), written as a plugin's decisions land.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let ms = now().timestamp_millis();
    conn.execute("INSERT INTO tags VALUES (?1, 'lapsed', 'lifecycle', ?2, NULL, ?3)", rusqlite::params![ids["Bob"], shop_id, ms]).unwrap();
    conn.execute("INSERT INTO tags VALUES (?1, 'vip', 'high-value', ?2, NULL, ?3)", rusqlite::params![ids["Dan"], shop_id, ms]).unwrap();
    for (name, model, value, label) in [
        ("Ann", "rfm", 555.0, "important-value|重要价值|Important value"),
        ("Bob", "rfm", 355.0, "important-keep|重要保持|Important to keep"),
        ("Ann", "aipl", 4.0, "L|忠诚|Loyalty"),
        ("Eve", "aipl", 3.0, "P|购买|Purchase"),
    ] {
        conn.execute(
            "INSERT INTO scores (customer_id, model, shop_id, value, label, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![ids[name], model, shop_id, value, label, ms],
        )
        .unwrap();
    }
    conn.execute("UPDATE customers SET tier = 'gold' WHERE id = ?1", [ids["Ann"]]).unwrap();
    Shop { store, shop_id, ids, dir }
}

fn input(name: &str, definition: Value) -> SegmentInput {
    SegmentInput { name: name.into(), description: None, definition }
}

#[test]
fn every_condition_selects_its_hand_checked_members() {
    let shop = shop();
    let cli = Actor::cli("test");
    let tea_buyers = shop
        .store
        .create_segment(
            shop.shop_id,
            &input("tea buyers", json!({"purchase": {"category": "tea"}, "window": {"last_days": 30}})),
            &cli,
            now(),
        )
        .unwrap();
    let last30 = json!({"last_days": 30});
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        // Profile fields.
        ("city =", json!({"profile": "city", "op": "eq", "value": "杭州"}), vec!["Ann", "Cai"]),
        ("city ≠ (missing included)", json!({"profile": "city", "op": "ne", "value": "杭州"}), vec!["Bob", "Dan", "Eve"]),
        ("city in", json!({"profile": "city", "op": "in", "value": ["上海", "北京"]}), vec!["Bob", "Dan"]),
        ("city contains", json!({"profile": "city", "op": "contains", "value": "州"}), vec!["Ann", "Cai"]),
        ("city missing", json!({"profile": "city", "op": "exists", "value": false}), vec!["Eve"]),
        ("gender", json!({"profile": "gender", "op": "eq", "value": "female"}), vec!["Ann"]),
        ("birthday in the next 7 days", json!({"profile": "birthday", "op": "within_next_days", "value": 7}), vec!["Ann"]),
        ("birthday in the last 7 days", json!({"profile": "birthday", "op": "within_last_days", "value": 7}), vec!["Bob"]),
        ("birthday between", json!({"profile": "birthday", "op": "between", "value": ["1985-01-01", "1990-12-31"]}), vec!["Ann", "Bob"]),
        ("birthday before", json!({"profile": "birthday", "op": "lt", "value": "1990-01-01"}), vec!["Bob"]),
        ("no birthday", json!({"profile": "birthday", "op": "exists", "value": false}), vec!["Cai", "Eve"]),
        ("tier", json!({"profile": "tier", "op": "eq", "value": "gold"}), vec!["Ann"]),
        (
            "created since 2000",
            json!({"profile": "created_at", "op": "gte", "value": "2000-01-01"}),
            vec!["Ann", "Bob", "Cai", "Dan", "Eve"],
        ),
        ("created before 2000", json!({"profile": "created_at", "op": "lt", "value": "2000-01-01"}), vec![]),
        // Custom attributes.
        ("attribute ≥", json!({"attribute": "vip_level", "op": "gte", "value": 2}), vec!["Ann"]),
        ("attribute in", json!({"attribute": "vip_level", "op": "in", "value": [1, 3]}), vec!["Ann", "Bob"]),
        ("attribute exists", json!({"attribute": "vip_level", "op": "exists", "value": true}), vec!["Ann", "Bob"]),
        ("array attribute contains", json!({"attribute": "channels", "op": "contains", "value": "wechat"}), vec!["Ann"]),
        ("text attribute contains", json!({"attribute": "note", "op": "contains", "value": "tea"}), vec!["Ann"]),
        ("boolean attribute", json!({"attribute": "newsletter", "op": "eq", "value": true}), vec!["Ann"]),
        ("attribute ≠", json!({"attribute": "vip_level", "op": "ne", "value": 3}), vec!["Bob", "Cai", "Dan", "Eve"]),
        // Tags.
        ("has tag", json!({"tag": "vip"}), vec!["Ann", "Dan"]),
        ("has tag from a source", json!({"tag": "vip", "source": "manual"}), vec!["Ann"]),
        ("has not tag", json!({"tag": "vip", "has": false}), vec!["Bob", "Cai", "Eve"]),
        // Stats.
        ("total spent", json!({"stat": "total_spent", "op": "gte", "value": 13000}), vec!["Ann", "Bob"]),
        ("never ordered", json!({"stat": "order_count", "op": "eq", "value": 0}), vec!["Dan"]),
        ("aov between", json!({"stat": "aov", "op": "between", "value": [6000, 7000]}), vec!["Ann", "Bob", "Eve"]),
        ("refunds", json!({"stat": "refund_count", "op": "gt", "value": 0}), vec!["Cai"]),
        ("days since last order", json!({"stat": "days_since_last_order", "op": "lte", "value": 14}), vec!["Ann", "Bob", "Eve"]),
        ("days since first order", json!({"stat": "days_since_first_order", "op": "gt", "value": 90}), vec!["Cai"]),
        ("no last order", json!({"stat": "days_since_last_order", "op": "exists", "value": false}), vec!["Dan"]),
        ("points balance", json!({"stat": "points", "op": "gte", "value": 100}), vec!["Ann"]),
        // Scores.
        ("rfm group", json!({"score": "rfm", "label": "important-value"}), vec!["Ann"]),
        ("rfm groups", json!({"score": "rfm", "label": ["important-value", "important-keep"]}), vec!["Ann", "Bob"]),
        ("rfm value", json!({"score": "rfm", "op": "gte", "value": 500}), vec!["Ann"]),
        ("aipl stages", json!({"score": "aipl", "label": ["P", "L"]}), vec!["Ann", "Eve"]),
        ("any aipl", json!({"score": "aipl"}), vec!["Ann", "Eve"]),
        ("no rfm", json!({"not": {"score": "rfm"}}), vec!["Cai", "Dan", "Eve"]),
        // Two sets and more in one `and` go smallest first, their parameters with them.
        ("tag and any aipl", json!({"and": [{"tag": "vip"}, {"score": "aipl"}]}), vec!["Ann"]),
        (
            "city, tag and rfm group",
            json!({"and": [{"profile": "city", "op": "eq", "value": "杭州"}, {"tag": "vip"}, {"score": "rfm", "label": "important-value"}]}),
            vec!["Ann"],
        ),
        (
            "tag, aipl stage and not a tag",
            json!({"and": [{"tag": "vip"}, {"score": "aipl", "label": ["P", "L"]}, {"tag": "lapsed", "has": false}]}),
            vec!["Ann"],
        ),
        // Behaviour in a window.
        ("viewed 3 times in 7 days", json!({"behaviour": "view", "window": {"last_days": 7}, "at_least": 3}), vec!["Ann"]),
        ("viewed A in 7 days", json!({"behaviour": "view", "sku": "A", "window": {"last_days": 7}}), vec!["Ann"]),
        (
            "viewed at most once in 60 days",
            json!({"behaviour": "view", "window": {"last_days": 60}, "at_most": 1}),
            vec!["Bob", "Cai", "Eve"],
        ),
        (
            "carted or favourited tea in 7 days",
            json!({"or": [{"behaviour": "cart", "category": "tea", "window": {"last_days": 7}},
                          {"behaviour": "favorite", "category": "tea", "window": {"last_days": 7}}]}),
            vec!["Cai"],
        ),
        ("viewed on a date", json!({"behaviour": "view", "window": {"between": ["2026-05-01", "2026-05-01"]}}), vec!["Dan"]),
        // Purchases in a window.
        ("bought A in 30 days", json!({"purchase": {"sku": "A"}, "window": last30}), vec!["Ann", "Bob", "Eve"]),
        ("bought B in 30 days", json!({"purchase": {"sku": "B"}, "window": last30}), vec!["Bob", "Eve"]),
        (
            "bought A but not B in 30 days",
            json!({"and": [{"purchase": {"sku": "A"}, "window": last30}, {"not": {"purchase": {"sku": "B"}, "window": last30}}]}),
            vec!["Ann"],
        ),
        ("two orders in 30 days", json!({"purchase": {}, "window": last30, "at_least": 2}), vec!["Ann", "Bob"]),
        ("refunded orders do not count", json!({"purchase": {"category": "snack"}, "window": {"last_days": 120}}), vec!["Ann"]),
        ("bought in March", json!({"purchase": {}, "window": {"between": ["2026-03-01", "2026-03-31"]}}), vec!["Cai"]),
        (
            "spent 100 yuan on tea in 30 days",
            json!({"purchase": {"category": "tea"}, "window": last30, "spent_at_least": 10000}),
            vec!["Ann", "Bob"],
        ),
        ("spent 130 yuan in 30 days", json!({"purchase": {}, "window": last30, "spent_at_least": 13000}), vec!["Ann", "Bob"]),
        ("did not buy in 30 days", json!({"purchase": {}, "window": last30, "at_most": 0}), vec!["Cai", "Dan"]),
        // Other segments, nesting.
        ("member of a segment", json!({"segment": tea_buyers.id}), vec!["Ann", "Bob", "Eve"]),
        ("segment and city", json!({"and": [{"segment": tea_buyers.id}, {"profile": "city", "op": "eq", "value": "上海"}]}), vec!["Bob"]),
        (
            "nested and / or / not",
            json!({"or": [{"and": [{"tag": "vip"}, {"not": {"profile": "city", "op": "eq", "value": "杭州"}}]},
                          {"stat": "refund_count", "op": "gt", "value": 0}]}),
            vec!["Cai", "Dan"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, definition, expected) in &cases {
        let got = shop.members(definition.clone());
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A definition is compiled one way over the whole shop (the lists above, a saved
    // segment's first members) and another for a few customers (tracked membership
    // as data changes): saved, then every customer re-evaluated one by one, each
    // keeps its members, with no entry or exit.
    let mut saved = Vec::new();
    for (name, definition, expected) in &cases {
        let segment = shop.store.create_segment(shop.shop_id, &input(name, definition.clone()), &cli, now()).unwrap();
        assert_eq!(segment.members, expected.len() as i64, "{name}");
        saved.push(segment);
    }
    let conn = rusqlite::Connection::open(shop.dir.path().join("kith.db")).unwrap();
    let dirty = conn.execute("INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) SELECT shop_id, id FROM customers", []).unwrap();
    assert_eq!(dirty, 5);
    assert_eq!(shop.store.refresh_segments(100, now()).unwrap(), 5);
    assert_eq!(shop.events("segment.entered"), vec![]);
    assert_eq!(shop.events("segment.exited"), vec![]);
    for ((name, _, expected), segment) in cases.iter().zip(&saved) {
        assert_eq!(shop.store.get_segment(shop.shop_id, segment.id, None).unwrap().members, expected.len() as i64, "{name}");
    }
}

#[test]
fn windows_are_exact_at_query_time() {
    let shop = shop();
    let definition = json!({"purchase": {"sku": "A"}, "window": {"last_days": 30}});
    // Ann's order of 06-01 02:00 UTC leaves the 30-day window at 07-01 02:00 UTC.
    assert_eq!(shop.members_at(definition.clone(), at("2026-07-01T01:59:59Z")).unwrap(), vec!["Ann", "Bob", "Eve"]);
    assert_eq!(shop.members_at(definition, at("2026-07-01T02:00:01Z")).unwrap(), vec!["Bob", "Eve"]);
    // Dan's 29 February birthday is celebrated on the 28th in 2027 (not a leap year).
    let birthday = json!({"profile": "birthday", "op": "within_next_days", "value": 1});
    assert_eq!(shop.members_at(birthday.clone(), at("2027-02-27T04:00:00Z")).unwrap(), vec!["Dan"]);
    assert_eq!(shop.members_at(birthday, at("2028-02-27T04:00:00Z")).unwrap(), vec![] as Vec<&str>);
}

#[test]
fn a_chain_of_segments_is_refused_when_saved_if_it_could_not_be_read() {
    // Issue 25: a sixth level was saved (201) and then every read and sweep of it failed.
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let mut chain = vec![s.create_segment(shop.shop_id, &input("level 1", json!({"tag": "vip"})), &cli, now()).unwrap().id];
    for level in 2..=5 {
        let previous = *chain.last().unwrap();
        let segment = s.create_segment(shop.shop_id, &input(&format!("level {level}"), json!({"segment": previous})), &cli, now()).unwrap();
        chain.push(segment.id);
    }
    for &id in &chain {
        s.audience_page(shop.shop_id, &Audience::Segment { id, version: None }, 0, 10, true, now()).unwrap();
    }
    let too_deep = s.create_segment(shop.shop_id, &input("level 6", json!({"segment": chain[4]})), &cli, now());
    assert!(matches!(&too_deep, Err(kith_core::Error::Invalid(e)) if e.reason.contains("at most 5 levels deep")), "{too_deep:?}");
    // Lengthening the chain from below would leave the top unreadable: refused too, whole.
    let extra = s.create_segment(shop.shop_id, &input("extra", json!({"tag": "vip"})), &cli, now()).unwrap();
    let deeper = s.update_segment(shop.shop_id, chain[0], &input("level 1", json!({"segment": extra.id})), &cli, now());
    assert!(matches!(&deeper, Err(kith_core::Error::Invalid(e)) if e.reason.contains(&format!("segment {}", chain[4]))), "{deeper:?}");
    assert_eq!(s.get_segment(shop.shop_id, chain[0], None).unwrap().version, 1);
    let sweep = s.sweep_segments(chrono::Duration::zero(), 100, now() + Duration::hours(2));
    assert!(sweep.is_ok(), "{sweep:?}");
}

#[test]
fn references_are_checked_and_versions_kept() {
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let refused = |r: Result<_, kith_core::Error>| match r {
        Err(kith_core::Error::Invalid(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let e = refused(s.create_segment(shop.shop_id, &input("x", json!({"segment": 999})), &cli, now()));
    assert_eq!((e.field.as_str(), e.reason.as_str()), ("definition", "segment 999 does not exist in this shop"));
    let e = refused(s.create_segment(shop.shop_id, &input("x", json!({"and": [{"tag": "vip"}, {"stat": "spend"}]})), &cli, now()));
    assert_eq!(e.field, "definition.and[1].stat");

    let a = s.create_segment(shop.shop_id, &input("a", json!({"tag": "vip"})), &cli, now()).unwrap();
    let b = s.create_segment(shop.shop_id, &input("b", json!({"segment": a.id})), &cli, now()).unwrap();
    assert_eq!((a.members, b.members), (2, 2));
    let e = refused(s.update_segment(shop.shop_id, a.id, &input("a", json!({"not": {"segment": b.id}})), &cli, now()));
    assert!(e.reason.contains("refers back to itself"), "{e}");
    assert!(matches!(s.delete_segment(shop.shop_id, a.id, &cli, now()), Err(kith_core::Error::Conflict(m)) if m.contains("segment 2 (b)")));

    // A changed definition is a new version; the old one stays readable by time.
    let later = now() + Duration::hours(1);
    let a2 = s.update_segment(shop.shop_id, a.id, &input("a", json!({"tag": "vip", "source": "manual"})), &cli, later).unwrap();
    assert_eq!((a2.version, a2.members), (2, 1));
    let renamed =
        s.update_segment(shop.shop_id, a.id, &input("a renamed", json!({"tag": "vip", "source": "manual"})), &cli, later).unwrap();
    assert_eq!(renamed.version, 2, "a new name is not a new version");
    let versions = s.segment_versions(shop.shop_id, a.id).unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(s.get_segment(shop.shop_id, a.id, Some(now() + Duration::minutes(30))).unwrap().definition, json!({"tag": "vip"}));
    assert_eq!(s.get_segment(shop.shop_id, a.id, None).unwrap().definition, json!({"tag": "vip", "source": "manual"}));
    // The redefinition made Dan leave, with an event saying why.
    assert_eq!(shop.events("segment.exited"), vec![("Dan", "redefined".to_owned())]);

    // Another shop sees nothing.
    let other = s
        .create_shop(&NewShop { name: "Other".into(), time_zone: "UTC".into(), currency: "CNY".into(), region: "CN".into() }, &cli)
        .unwrap();
    assert!(matches!(s.get_segment(other.id, a.id, None), Err(kith_core::Error::NotFound(_))));
    let e = refused(s.create_segment(other.id, &input("x", json!({"segment": a.id})), &cli, now()));
    assert!(e.reason.contains("does not exist in this shop"));

    s.delete_segment(shop.shop_id, b.id, &cli, now()).unwrap();
    s.delete_segment(shop.shop_id, a.id, &cli, now()).unwrap();
    assert!(s.list_segments(shop.shop_id).unwrap().is_empty());
}

#[test]
fn snapshots_freeze_membership_and_counts_are_daily() {
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let vip = s.create_segment(shop.shop_id, &input("vip", json!({"tag": "vip"})), &cli, now()).unwrap();
    let snap = s.snapshot_segment(shop.shop_id, vip.id, &cli, now()).unwrap();
    assert_eq!((snap.size, snap.version), (2, 1));
    s.add_tag(shop.shop_id, shop.ids["Bob"], "vip", None, &cli).unwrap();
    s.refresh_segments(100, now() + Duration::days(1)).unwrap();
    let (_, frozen) = s.snapshot_members(shop.shop_id, vip.id, snap.id, 0, 10).unwrap();
    assert_eq!(frozen.iter().map(|c| shop.name_of(c.id)).collect::<Vec<_>>(), vec!["Ann", "Dan"]);
    s.sweep_segments(Duration::hours(1), 10, now() + Duration::days(3)).unwrap();
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let counts: Vec<(String, i64)> = s
        .segment_counts(shop.shop_id, vip.id, day("2026-06-14"), day("2026-06-19"))
        .unwrap()
        .into_iter()
        .map(|c| (c.day.to_string(), c.members))
        .collect();
    // Created on the 15th with 2, Bob entered on the 16th, swept on the 18th; the 17th carries the 16th.
    assert_eq!(
        counts,
        vec![
            ("2026-06-15".into(), 2),
            ("2026-06-16".into(), 3),
            ("2026-06-17".into(), 3),
            ("2026-06-18".into(), 3),
            ("2026-06-19".into(), 3)
        ]
    );
}

#[test]
fn entries_and_exits_follow_data_and_time() {
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let vip = s.create_segment(shop.shop_id, &input("vip", json!({"tag": "vip"})), &cli, now()).unwrap();
    let recent =
        s.create_segment(shop.shop_id, &input("recent buyers", json!({"purchase": {}, "window": {"last_days": 30}})), &cli, now()).unwrap();
    assert!(recent.depends_on_time);
    assert_eq!(recent.members, 3, "Ann, Bob and Eve; creation sets a baseline without events");
    assert!(shop.events("segment.entered").is_empty());

    // Data changes: Bob gains the tag, Ann loses hers, Dan buys.
    s.add_tag(shop.shop_id, shop.ids["Bob"], "vip", None, &cli).unwrap();
    s.remove_tag(shop.shop_id, shop.ids["Ann"], "vip", &cli).unwrap();
    s.ingest(shop.shop_id, vec![order("Dan", "o8", "2026-06-15T03:00:00Z", json!([item("B", "tea", 1, 2000)]))], &cli).unwrap();
    let processed = s.refresh_segments(100, now()).unwrap();
    assert!(processed >= 3, "{processed}");
    assert_eq!(shop.events("segment.entered"), vec![("Bob", "change".into()), ("Dan", "change".into())]);
    assert_eq!(shop.events("segment.exited"), vec![("Ann", "change".into())]);
    assert_eq!(s.refresh_segments(100, now()).unwrap(), 0, "nothing left to re-evaluate");
    // The day's count follows the changes: Bob in, Ann out.
    let today = now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let vip_counts = s.segment_counts(shop.shop_id, vip.id, today, today).unwrap();
    assert_eq!((vip_counts[0].members, s.get_segment(shop.shop_id, vip.id, None).unwrap().members), (2, 2));
    let recent_counts = s.segment_counts(shop.shop_id, recent.id, today, today).unwrap();
    assert_eq!(recent_counts[0].members, 4, "Dan's order brought him in");

    // Time passes: on 07-02 Ann's last order (06-01) is more than 30 days old.
    assert_eq!(s.sweep_segments(Duration::hours(1), 10, at("2026-07-02T04:00:00Z")).unwrap(), 2);
    assert_eq!(shop.events("segment.exited"), vec![("Ann", "change".into()), ("Ann", "time".into())]);
    assert_eq!(s.sweep_segments(Duration::hours(1), 10, at("2026-07-02T04:30:00Z")).unwrap(), 0, "swept within the hour");
    // On 07-15 at 10:00 local every order but Dan's (06-15 11:00 local) is out of the window.
    s.sweep_segments(Duration::hours(1), 10, at("2026-07-15T02:00:00Z")).unwrap();
    let recent = s.get_segment(shop.shop_id, recent.id, None).unwrap();
    assert_eq!(recent.members, 1);
    let exits: Vec<&str> = shop.events("segment.exited").into_iter().filter(|(_, why)| why == "time").map(|(n, _)| n).collect();
    assert_eq!(exits, vec!["Ann", "Bob", "Eve"]);
}

#[test]
fn a_broken_segment_does_not_stop_the_others() {
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let base = s.create_segment(shop.shop_id, &input("base", json!({"tag": "vip"})), &cli, now()).unwrap();
    let broken = s.create_segment(shop.shop_id, &input("broken", json!({"segment": base.id})), &cli, now()).unwrap();
    let vip = s.create_segment(shop.shop_id, &input("vip", json!({"tag": "vip"})), &cli, now()).unwrap();
    // The reference goes bad behind the API's back (the API refuses to delete a referenced segment).
    let conn = rusqlite::Connection::open(shop.dir.path().join("kith.db")).unwrap();
    conn.execute("UPDATE segments SET deleted_at = 1 WHERE id = ?1", [base.id]).unwrap();

    s.add_tag(shop.shop_id, shop.ids["Bob"], "vip", None, &cli).unwrap();
    assert_eq!(s.refresh_segments(100, now()).unwrap(), 1);
    let entered: Vec<(i64, &str)> = s
        .events_after(shop.shop_id, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "segment.entered")
        .map(|e| (e.payload.value()["segment_id"].as_i64().unwrap(), shop.name_of(e.customer_id.unwrap())))
        .collect();
    assert_eq!(entered, vec![(vip.id, "Bob")], "the broken segment is skipped, the others move on");
    assert_eq!(s.sweep_segments(Duration::hours(1), 10, now() + Duration::days(1)).unwrap(), 2);
    assert_eq!(s.get_segment(shop.shop_id, broken.id, None).unwrap().members, 2, "left as it was");
    assert_eq!(s.get_segment(shop.shop_id, vip.id, None).unwrap().members, 3);
}

#[test]
fn a_segment_depends_on_time_through_the_segments_it_names() {
    let shop = shop();
    let cli = Actor::cli("test");
    let s = &shop.store;
    let a = s.create_segment(shop.shop_id, &input("a", json!({"tag": "vip"})), &cli, now()).unwrap();
    let b = s.create_segment(shop.shop_id, &input("b", json!({"segment": a.id})), &cli, now()).unwrap();
    assert!(!b.depends_on_time);
    let timed = json!({"and": [{"tag": "vip"}, {"purchase": {}, "window": {"last_days": 365}}]});
    s.update_segment(shop.shop_id, a.id, &input("a", timed), &cli, now()).unwrap();
    assert!(s.get_segment(shop.shop_id, b.id, None).unwrap().depends_on_time, "b depends on time through a");
    s.update_segment(shop.shop_id, a.id, &input("a", json!({"tag": "vip"})), &cli, now()).unwrap();
    assert!(!s.get_segment(shop.shop_id, b.id, None).unwrap().depends_on_time);
}
