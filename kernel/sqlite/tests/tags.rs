//! One tag writer: a merchant's tag (`Store::add_tag`), a plugin's tag decision (a committed
//! delivery) and a journey's tag step have the same effects. A new tag logs one `tag.added`
//! (payload `{tag, source}` plus `reason`), setting it again logs nothing, a reason-only
//! change rewords the tag without an event, a removal logs one `tag.removed`, and the
//! customer counts as updated for `updated_since`. A journey on "tag added" therefore enters
//! when a plugin tags the customer, once.

use kith_core::prelude::*;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kith_core::Actor;
use kith_core::customers::{CustomerFilter, CustomerRead};
use kith_core::delivery::{Attempt, Effects};
use kith_core::journeys::RunFilter;
use kith_core::plugins::PutSubscription;
use kith_domain::journeys::{JourneyInput, JourneyStatus};
use kith_domain::model::{NewShop, Tag};
use kith_domain::plugin::{Decision, Grant, Manifest};
use kith_sqlite::{Store, StoreOptions};
use serde_json::{Value, json};

/// The shop's clock at the start of each test (the engine and plugins run on it; a merchant's
/// edit takes the real time, later than this).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

fn cli() -> Actor {
    Actor::cli("test")
}

struct Shop {
    store: Store,
    shop_id: i64,
    _dir: tempfile::TempDir,
}

/// A tag rule that tags whatever the test decides; `events` are the types it subscribes to.
fn rule(id: &str, events: &[&str]) -> Manifest {
    let events: Vec<String> = events.iter().map(|e| format!("\"{e}\"")).collect();
    Manifest::parse(&format!(
        r#"id = "{id}"
version = "1.0.0"
kind = "tag-rule"
api-version = "0.2.0"
description = "Tags for the tag tests"
vendor = "Kith tests"
capabilities = ["customers:read", "tags:write"]
events = [{}]
"#,
        events.join(", ")
    ))
    .unwrap()
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    let new = NewShop { name: "Tags".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop_id = store.create_shop(&new, &cli()).unwrap().id;
    for (id, events) in [("ruler", &["order.paid"][..]), ("watcher", &["tag.added", "tag.removed"][..])] {
        let manifest = rule(id, events);
        store.install_plugin(&manifest, b"\0asm", &format!("{id}-test-blob"), &cli()).unwrap();
        let put = PutSubscription {
            plugin_id: id,
            version_req: "1.0.0",
            version: "1.0.0",
            config: &json!({}),
            grant: &Grant::all_requested(&manifest),
            run_every_hours: None,
            channel: None,
        };
        store.put_subscription(shop_id, &put, &cli()).unwrap();
    }
    Shop { store, shop_id, _dir: dir }
}

impl Shop {
    /// A customer known by this phone number, created at `t0`.
    fn customer(&self, phone: &str) -> i64 {
        let event = json!({"id": format!("c-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
        assert_eq!(self.store.ingest_at(self.shop_id, vec![event], &cli(), t0()).unwrap().rejected, 0);
        self.by_phone(phone)
    }

    fn by_phone(&self, phone: &str) -> i64 {
        let e164 = format!("+86{phone}");
        let all = self.store.list_customers(self.shop_id, &CustomerFilter::default(), 0, 1000).unwrap();
        all.into_iter().find(|c| c.identities.iter().any(|i| i.value == e164)).unwrap().id
    }

    /// Commit the decisions as a delivery of the plugin `ruler`, at `at`.
    fn ruler(&self, decisions: &[Decision], at: DateTime<Utc>) {
        let attempt = Attempt { shop_id: self.shop_id, plugin_id: "ruler", logs: &[], duration: StdDuration::ZERO, now: at };
        let cursor = self.store.subscription(self.shop_id, "ruler").unwrap().cursor;
        self.store.commit_delivery(&attempt, cursor, cursor, &Effects { decisions, kv_writes: &[], chain: None }).unwrap();
    }

    /// The shop's newest event position.
    fn head(&self) -> i64 {
        self.store.events_after(self.shop_id, 0, 100_000).unwrap().last().map_or(0, |e| e.seq)
    }

    /// The `tag.*` events after position `after`: (type, customer, payload).
    fn tag_log(&self, after: i64) -> Vec<(String, i64, Value)> {
        self.store
            .events_after(self.shop_id, after, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.starts_with("tag."))
            .map(|e| (e.kind, e.customer_id.unwrap(), e.payload.value().clone()))
            .collect()
    }

    fn tags(&self, customer: i64) -> Vec<Tag> {
        let CustomerRead::Found(detail) = self.store.get_customer(self.shop_id, customer, 0).unwrap() else {
            panic!("customer {customer}")
        };
        detail.customer.tags
    }

    /// (tag, source, reason) of the customer's tags, sorted.
    fn tag_rows(&self, customer: i64) -> Vec<(String, String, Option<String>)> {
        let mut rows: Vec<_> = self.tags(customer).into_iter().map(|t| (t.tag, t.source, t.reason)).collect();
        rows.sort();
        rows
    }

    fn journey(&self, name: &str, definition: Value) -> i64 {
        let input = JourneyInput { name: name.into(), description: None, definition };
        let j = self.store.create_journey(self.shop_id, &input, &cli(), t0()).unwrap();
        self.store.set_journey_status(self.shop_id, j.id, JourneyStatus::Active, &cli(), t0()).unwrap();
        j.id
    }

    /// Let the journey engine work until it is idle.
    fn advance(&self, at: DateTime<Utc>) {
        for _ in 0..20 {
            if self.store.advance_journeys(at, 1000).unwrap() == 0 {
                return;
            }
        }
        panic!("the journey engine did not settle");
    }

    fn order(&self, phone: &str, id: &str, at: DateTime<Utc>) {
        let event = json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
            "order": {"id": id, "amount": 1_000, "paid_at": at}});
        assert_eq!(self.store.ingest_at(self.shop_id, vec![event], &cli(), at).unwrap().rejected, 0);
    }

    /// Customers changed at or after `since`.
    fn updated_since(&self, since: DateTime<Utc>) -> Vec<i64> {
        let filter = CustomerFilter { updated_since: Some(since), ..Default::default() };
        self.store.list_customers(self.shop_id, &filter, 0, 1000).unwrap().into_iter().map(|c| c.id).collect()
    }
}

fn add(customer_id: i64, tag: &str, reason: &str) -> Decision {
    Decision::AddTag { customer_id, tag: tag.into(), reason: reason.into() }
}

fn remove(customer_id: i64, tag: &str, reason: &str) -> Decision {
    Decision::RemoveTag { customer_id, tag: tag.into(), reason: reason.into() }
}

fn added(customer: i64, payload: Value) -> (String, i64, Value) {
    ("tag.added".into(), customer, payload)
}

fn removed(customer: i64, payload: Value) -> (String, i64, Value) {
    ("tag.removed".into(), customer, payload)
}

#[test]
fn a_merchant_tag_is_logged_once_when_set_and_once_when_removed() {
    let s = shop();
    let ann = s.customer("13800000001");
    let before = s.head();
    s.store.add_tag(s.shop_id, ann, "gift", Some("asked at the till"), &cli()).unwrap();
    s.store.add_tag(s.shop_id, ann, "gift", Some("asked at the till"), &cli()).unwrap();
    assert_eq!(s.tag_log(before), vec![added(ann, json!({"tag": "gift", "source": "manual", "reason": "asked at the till"}))]);

    // Another reason rewords the tag; no tag was added, so nothing is logged.
    let tag = s.store.add_tag(s.shop_id, ann, "gift", Some("wrapped"), &cli()).unwrap();
    assert_eq!(tag.reason.as_deref(), Some("wrapped"));
    assert_eq!(s.tag_rows(ann), vec![("gift".into(), "manual".into(), Some("wrapped".into()))]);
    assert_eq!(s.tag_log(before).len(), 1, "a reason-only change logs nothing");

    let at = s.head();
    s.store.remove_tag(s.shop_id, ann, "gift", &cli()).unwrap();
    assert_eq!(s.tag_log(at), vec![removed(ann, json!({"tag": "gift", "source": "manual"}))]);
    assert!(matches!(s.store.remove_tag(s.shop_id, ann, "gift", &cli()), Err(kith_core::Error::NotFound(_))));
    assert_eq!(s.tag_log(at).len(), 1, "removing a tag nobody holds logs nothing");

    // Without a reason the payload has none.
    let at = s.head();
    s.store.add_tag(s.shop_id, ann, "called", None, &cli()).unwrap();
    assert_eq!(s.tag_log(at), vec![added(ann, json!({"tag": "called", "source": "manual"}))]);
}

#[test]
fn a_plugin_tag_is_logged_like_a_merchant_tag() {
    let s = shop();
    let ann = s.customer("13800000001");
    let bob = s.customer("13800000002");
    let before = s.head();
    let at = t0() + Duration::hours(1);
    s.ruler(&[add(ann, "high_value", "spent 25000"), add(bob, "high_value", "")], at);
    s.ruler(&[add(ann, "high_value", "spent 25000"), add(bob, "high_value", "")], at);
    assert_eq!(
        s.tag_log(before),
        vec![
            added(ann, json!({"tag": "high_value", "source": "ruler", "reason": "spent 25000"})),
            added(bob, json!({"tag": "high_value", "source": "ruler"})),
        ],
        "once each, an empty reason left out"
    );

    s.ruler(&[add(ann, "high_value", "spent 30000")], at);
    assert_eq!(s.tag_rows(ann), vec![("high_value".into(), "ruler".into(), Some("spent 30000".into()))]);
    assert_eq!(s.tag_log(before).len(), 2, "a reason-only change logs nothing");

    let mid = s.head();
    s.ruler(&[remove(ann, "high_value", "refunded"), remove(ann, "high_value", "refunded"), remove(ann, "never-set", "")], at);
    assert_eq!(s.tag_log(mid), vec![removed(ann, json!({"tag": "high_value", "source": "ruler", "reason": "refunded"}))]);
    assert!(s.tags(ann).is_empty());

    // The events go to plugins subscribed to them, not back to the plugin that tagged.
    let kinds = |plugin: &str, types: &[&str]| -> Vec<String> {
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        let (events, _) = s.store.events_for(s.shop_id, plugin, &types, 0, None, 1000).unwrap();
        events.into_iter().map(|e| e.kind).collect()
    };
    assert_eq!(kinds("watcher", &["tag.added", "tag.removed"]), ["tag.added", "tag.added", "tag.removed"]);
    assert!(kinds("ruler", &["*"]).iter().all(|k| !k.starts_with("tag.")), "{:?}", kinds("ruler", &["*"]));
}

#[test]
fn a_journey_tag_is_logged_like_a_merchant_tag() {
    let s = shop();
    let ann = s.customer("13800000001");
    let welcome = s.journey(
        "welcome",
        json!({"trigger": {"event": "order.paid"}, "entry": {"reentry": true}, "start": "tag", "steps": {"tag": {"tag": {"add": "welcomed"}}}}),
    );
    let before = s.head();
    let at = t0() + Duration::hours(1);
    s.order("13800000001", "o1", at);
    s.advance(at);
    let source = format!("journey:{welcome}");
    assert_eq!(s.tag_log(before), vec![added(ann, json!({"tag": "welcomed", "source": source, "reason": "journey welcome"}))]);

    // A second run finds the tag set: its step is done, and nothing more is logged.
    let later = at + Duration::days(1);
    s.order("13800000001", "o2", later);
    s.advance(later);
    let runs = s.store.journey_runs(s.shop_id, welcome, &RunFilter::default(), None, 10).unwrap();
    assert_eq!(runs.len(), 2);
    let details: Vec<(&str, &str)> = runs.iter().map(|r| (r.history[0].outcome.as_str(), r.history[0].detail.as_str())).collect();
    assert!(details.contains(&("done", "tag welcomed was already set by this journey")), "{details:?}");
    assert_eq!(s.tag_log(before).len(), 1, "the tag was added once");

    // A journey removes tags set by hand or by a journey, never a plugin's: the log names
    // the source whose tag went and the journey as the reason.
    s.store.add_tag(s.shop_id, ann, "gift", None, &cli()).unwrap();
    s.ruler(&[add(ann, "gift", "")], later);
    s.journey("ungift", json!({"trigger": {"event": "order.paid"}, "start": "untag", "steps": {"untag": {"tag": {"remove": "gift"}}}}));
    let mid = s.head();
    let last = later + Duration::days(1);
    s.order("13800000001", "o3", last);
    s.advance(last);
    assert_eq!(s.tag_log(mid), vec![removed(ann, json!({"tag": "gift", "source": "manual", "reason": "journey ungift"}))]);
    let sources: Vec<(String, String)> = s.tag_rows(ann).into_iter().map(|(tag, source, _)| (tag, source)).collect();
    assert_eq!(sources, vec![("gift".to_string(), "ruler".to_string()), ("welcomed".to_string(), source)]);
}

#[test]
fn a_journey_on_tag_added_enters_when_a_plugin_tags_the_customer() {
    let s = shop();
    let ann = s.customer("13800000001");
    let bob = s.customer("13800000002");
    let vip = s.journey(
        "vip welcome",
        json!({"trigger": {"event": "tag.added", "where": [{"field": "tag", "op": "eq", "value": "high_value"}]},
               "entry": {"reentry": true}, "start": "tag", "steps": {"tag": {"tag": {"add": "vip-welcomed"}}}}),
    );
    let at = t0() + Duration::hours(1);
    s.ruler(&[add(ann, "high_value", "spent 25000"), add(bob, "frequent", "")], at);
    s.advance(at);
    let entered = |journey| -> Vec<i64> {
        let runs = s.store.journey_runs(s.shop_id, journey, &RunFilter::default(), None, 10).unwrap();
        runs.into_iter().map(|r| r.customer_id).collect()
    };
    assert_eq!(entered(vip), vec![ann], "the plugin's tag entered the journey; another tag did not");
    assert!(s.tags(ann).iter().any(|t| t.tag == "vip-welcomed"), "{:?}", s.tags(ann));

    // The rule tagging the customer again (every order, every run) is no new tag: no new run.
    let later = at + Duration::days(1);
    s.ruler(&[add(ann, "high_value", "spent 25000")], later);
    s.advance(later);
    assert_eq!(entered(vip), vec![ann]);
}

#[test]
fn a_customer_tagged_or_untagged_by_any_writer_counts_as_updated() {
    let s = shop();
    let ann = s.customer("13800000001");
    let bob = s.customer("13800000002");
    s.journey("welcome", json!({"trigger": {"event": "order.paid"}, "start": "tag", "steps": {"tag": {"tag": {"add": "welcomed"}}}}));
    let step = |hours| t0() + Duration::hours(hours);
    assert!(s.updated_since(step(1)).is_empty(), "nobody changed since they were created");

    s.ruler(&[add(ann, "high_value", "")], step(2));
    assert_eq!(s.updated_since(step(2)), vec![ann], "a plugin's tag");
    s.ruler(&[add(ann, "high_value", "")], step(3));
    assert!(s.updated_since(step(3)).is_empty(), "setting it again changed nothing");
    s.ruler(&[add(ann, "high_value", "spent 25000")], step(4));
    assert_eq!(s.updated_since(step(4)), vec![ann], "a new reason shows on the customer");
    s.ruler(&[remove(ann, "high_value", "")], step(5));
    assert_eq!(s.updated_since(step(5)), vec![ann], "a plugin's removal");

    // The order itself updates Bob; his journey tag comes later on the shop's clock.
    s.order("13800000002", "o1", step(6));
    s.advance(step(7));
    assert_eq!(s.tag_rows(bob).len(), 1);
    assert_eq!(s.updated_since(step(7)), vec![bob], "a journey's tag");
}
