//! Consents across merges: the survivor takes the stricter answer of both sides,
//! and an unmerge gives back what the survivor had, unless it changed since.

use chrono::Utc;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::messaging::{ConsentInput, ConsentStatus};
use kith_domain::model::NewShop;
use kith_sqlite::{Store, StoreOptions};
use serde_json::json;

fn consents(store: &Store, shop: i64, customer: i64) -> Vec<(String, &'static str, String)> {
    store
        .consents(shop, customer)
        .unwrap()
        .into_iter()
        .map(|c| (c.channel, if c.status == ConsentStatus::OptedOut { "out" } else { "in" }, c.source))
        .collect()
}

fn say(store: &Store, shop: i64, customer: i64, channel: &str, status: ConsentStatus, source: &str) {
    let input = ConsentInput { status, source: source.into() };
    store.put_consent(shop, customer, channel, &input, &Actor::cli("test"), Utc::now()).unwrap();
}

#[test]
fn the_survivor_takes_the_stricter_consent_and_an_unmerge_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    let cli = Actor::cli("test");
    let shop = NewShop { name: "A".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = store.create_shop(&shop, &cli).unwrap().id;
    let upsert = |id: &str, identities: serde_json::Value| {
        let report = store.ingest(shop, vec![json!({"id": id, "type": "customer.upsert", "identities": identities})], &cli).unwrap();
        report.outcomes[0].customer_id.unwrap()
    };
    let phone = json!({"kind": "phone", "value": "13800000001"});
    let email = json!({"kind": "email", "value": "ann@example.com"});
    let ann = upsert("a", json!([phone]));
    let other = upsert("b", json!([email]));
    say(&store, shop, ann, "email", ConsentStatus::OptedIn, "checkout");
    say(&store, shop, ann, "wechat", ConsentStatus::OptedOut, "wechat-menu");
    say(&store, shop, other, "sms", ConsentStatus::OptedOut, "sms-reply");
    say(&store, shop, other, "email", ConsentStatus::OptedOut, "unsubscribe-link");
    say(&store, shop, other, "wechat", ConsentStatus::OptedIn, "wechat-menu");

    // One event names both: the newer customer merges into Ann.
    assert_eq!(upsert("c", json!([phone, email])), ann);
    assert_eq!(
        consents(&store, shop, ann),
        vec![
            ("email".into(), "out", "unsubscribe-link".into()),
            ("sms".into(), "out", "sms-reply".into()),
            ("wechat".into(), "out", "wechat-menu".into()),
        ],
        "the opt-outs of both sides hold; an opt-in does not undo an opt-out"
    );

    // Ann opts back in to SMS after the merge: that answer is hers and stays.
    say(&store, shop, ann, "sms", ConsentStatus::OptedIn, "member-centre");
    let merge = store.list_merges(shop, ann).unwrap()[0].id;
    store.unmerge(shop, merge, &cli).unwrap();
    assert_eq!(
        consents(&store, shop, ann),
        vec![
            ("email".into(), "in", "checkout".into()),
            ("sms".into(), "in", "member-centre".into()),
            ("wechat".into(), "out", "wechat-menu".into()),
        ]
    );
    assert_eq!(
        consents(&store, shop, other),
        vec![
            ("email".into(), "out", "unsubscribe-link".into()),
            ("sms".into(), "out", "sms-reply".into()),
            ("wechat".into(), "in", "wechat-menu".into()),
        ]
    );
}
