//! The bus over a real SQLite store and real components: decisions apply
//! with the cursor, failures retry, dead-letter and trip the breaker, and a
//! hostile plugin fails only its own deliveries.

use kith_core::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use kith_bus::{Bus, BusConfig, BusError, Clock, EnableRequest, Package, TestClock};
use kith_core::Actor;
use kith_core::customers::{CustomerFilter, CustomerRead};
use kith_core::delivery::{Attempt, Effects, FailurePolicy};
use kith_domain::model::NewShop;
use kith_domain::plugin::{Capability, Grant, PluginRunStatus, SubscriptionStatus};
use kith_host::{Host, HostConfig};
use kith_sqlite::Store;
use kith_test_plugins as plugins;
use serde_json::{Value, json};

fn host() -> Arc<Host> {
    static HOST: OnceLock<Arc<Host>> = OnceLock::new();
    HOST.get_or_init(|| Arc::new(Host::new(HostConfig { default_timeout: Duration::from_millis(300), ..HostConfig::default() }).unwrap()))
        .clone()
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    bus: Arc<Bus>,
    clock: Arc<TestClock>,
    shop: i64,
    other_shop: i64,
}

fn actor() -> Actor {
    Actor::cli("test")
}

fn world(batch_size: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
    let new = |name: &str| NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = store.create_shop(&new("A"), &actor()).unwrap().id;
    let other_shop = store.create_shop(&new("B"), &actor()).unwrap().id;
    let clock = Arc::new(TestClock::new(Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()));
    let policy = FailurePolicy { max_attempts: 3, breaker_threshold: 5, ..FailurePolicy::default() };
    let bus = Bus::new(store.clone(), host(), clock.clone(), BusConfig { batch_size, policy, ..BusConfig::default() });
    World { _dir: dir, store, bus, clock, shop, other_shop }
}

impl World {
    fn install(&self, package: &plugins::Package) {
        let package = Package::from_tar_gz(&package.tar_gz()).unwrap();
        self.bus.install(&package, &actor()).unwrap();
    }

    fn enable(&self, shop: i64, plugin: &str, config: Value) -> Result<kith_domain::plugin::Subscription, BusError> {
        self.bus.enable(shop, plugin, &EnableRequest { config: Some(config), ..Default::default() }, &actor()).map(|(s, _)| s)
    }

    fn order(&self, shop: i64, event: &str, phone: &str, amount: i64) {
        let order = json!({"id": event, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}], "order": {"id": event, "amount": amount}});
        let report = self.store.ingest(shop, vec![order], &actor()).unwrap();
        assert_eq!(report.accepted, 1, "{report:?}");
    }

    fn customer(&self, shop: i64, phone: &str) -> kith_domain::model::Customer {
        use kith_domain::identity::{IdentityKind, normalise};
        let value = normalise(&IdentityKind::Phone, phone, "CN").unwrap();
        let filter =
            CustomerFilter { identity: Some(kith_domain::ingest::Identifier { kind: IdentityKind::Phone, value }), ..Default::default() };
        self.store.list_customers(shop, &filter, 0, 1).unwrap().remove(0)
    }

    fn tags(&self, shop: i64, phone: &str) -> Vec<(String, String)> {
        self.customer(shop, phone).tags.into_iter().map(|t| (t.tag, t.source)).collect()
    }
}

#[test]
fn deliveries_apply_decisions_and_move_the_cursor_together() {
    let w = world(100);
    w.install(&plugins::VIP_TAG);
    w.enable(w.shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    w.order(w.shop, "o1", "13800000001", 20_000);
    w.order(w.shop, "o2", "13800000002", 500);
    w.bus.drain().unwrap();

    assert_eq!(w.tags(w.shop, "13800000001"), vec![("vip".to_string(), "vip-tag".to_string())]);
    assert!(w.tags(w.shop, "13800000002").is_empty());
    let promoted: Vec<_> =
        w.store.events_after(w.shop, 0, 100).unwrap().into_iter().filter(|e| e.kind == "plugin.vip-tag.promoted").collect();
    assert_eq!(promoted.len(), 1, "emitted once, and not delivered back to its emitter");
    assert_eq!(promoted[0].payload.value()["plugin"], "vip-tag");
    assert_eq!(w.store.plugin_kv_get(w.shop, "vip-tag", "evaluations").unwrap(), Some(b"2".to_vec()));

    let status = w.bus.status(w.shop, "vip-tag").unwrap();
    assert_eq!(status.lag, 0);
    assert_eq!((status.calls.calls, status.calls.failures), (1, 0));
    assert!(status.logs[0].message.starts_with("evaluating 2 customers"), "{:?}", status.logs);

    // A second worker holding the same batch finds the cursor moved: nothing applies twice.
    let customer = w.customer(w.shop, "13800000002").id;
    let stale = w.store.commit_delivery(
        &Attempt { shop_id: w.shop, plugin_id: "vip-tag", logs: &[], duration: Duration::ZERO, now: Utc::now() },
        0,
        status.subscription.cursor,
        &Effects {
            decisions: &[kith_domain::plugin::Decision::AddTag { customer_id: customer, tag: "vip".into(), reason: String::new() }],
            kv_writes: &[],
            chain: None,
        },
    );
    assert!(matches!(stale, Err(kith_core::Error::Conflict(_))), "{stale:?}");
    assert!(w.tags(w.shop, "13800000002").is_empty());
}

#[test]
fn a_batch_holds_only_the_events_the_plugin_takes() {
    // Batches of two, orders among behaviours vip-tag does not subscribe to.
    let w = world(2);
    w.install(&plugins::VIP_TAG);
    w.enable(w.shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    let view = |id: &str, phone: &str| json!({"id": id, "type": "behaviour", "identities": [{"kind": "phone", "value": phone}], "behaviour": {"kind": "view", "sku": "X"}});
    for (i, phone) in ["13800000001", "13800000002", "13800000003"].into_iter().enumerate() {
        w.order(w.shop, &format!("o{i}"), phone, 500);
        let report = w.store.ingest(w.shop, vec![view(&format!("v{i}a"), phone), view(&format!("v{i}b"), phone)], &actor()).unwrap();
        assert_eq!(report.accepted, 2, "{report:?}");
    }
    w.bus.drain().unwrap();

    let status = w.bus.status(w.shop, "vip-tag").unwrap();
    assert_eq!(status.lag, 0, "the cursor passed the trailing behaviours too");
    assert_eq!(status.subscription.cursor, w.store.event_head(w.shop).unwrap());
    assert_eq!((status.calls.calls, status.calls.failures), (2, 0), "two orders, then one: behaviours fill no batch");
    assert_eq!(w.store.plugin_kv_get(w.shop, "vip-tag", "evaluations").unwrap(), Some(b"3".to_vec()));
}

#[test]
fn a_plugin_that_asks_for_smaller_batches_gets_them() {
    // The kernel's batch is 100; the manifest asks for 2, in deliveries and in runs.
    let w = world(100);
    let manifest = format!("{}\n[limits]\nbatch-size = 2\n", plugins::VIP_TAG.manifest());
    w.bus.install(&Package::from_tar_gz(&plugins::VIP_TAG.tar_gz_with(&manifest)).unwrap(), &actor()).unwrap();
    w.enable(w.shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    for i in 0..3 {
        w.order(w.shop, &format!("o{i}"), &format!("1380000000{i}"), 20_000);
    }
    w.bus.drain().unwrap();
    let status = w.bus.status(w.shop, "vip-tag").unwrap();
    assert_eq!((status.calls.calls, status.calls.failures, status.lag), (2, 0, 0), "three orders in batches of two");
    assert_eq!(w.store.plugin_kv_get(w.shop, "vip-tag", "evaluations").unwrap(), Some(b"3".to_vec()));

    let run = w.bus.start_run(w.shop, "vip-tag", &actor()).unwrap();
    w.bus.drain().unwrap();
    let run = w.store.run(w.shop, "vip-tag", run.id).unwrap();
    assert_eq!((run.status, run.done), (PluginRunStatus::Done, 3));
    let calls = w.bus.status(w.shop, "vip-tag").unwrap().calls.calls;
    assert_eq!(calls, 4, "three customers in batches of two");
    assert_eq!(w.store.plugin_kv_get(w.shop, "vip-tag", "evaluations").unwrap(), Some(b"6".to_vec()));
}

#[test]
fn a_scoring_models_batch_is_counted_in_customers() {
    // Batches of two: AIPL takes three customers' six events each in two calls, not six.
    let w = world(2);
    w.install(&plugins::AIPL);
    w.enable(w.shop, "aipl", json!({})).unwrap();
    w.bus.drain().unwrap(); // the first scheduled run, over no customers yet
    let before = w.bus.status(w.shop, "aipl").unwrap().calls.calls;
    let phones = ["13800000001", "13800000002", "13800000003"];
    for (i, phone) in phones.into_iter().enumerate() {
        let events = (0..6)
            .map(|k| {
                json!({"id": format!("v{i}-{k}"), "type": "behaviour", "occurred_at": w.clock.now().to_rfc3339(),
                "identities": [{"kind": "phone", "value": phone}], "behaviour": {"kind": "view", "sku": "X"}})
            })
            .collect();
        assert_eq!(w.store.ingest(w.shop, events, &actor()).unwrap().accepted, 6);
    }
    w.bus.drain().unwrap();

    let status = w.bus.status(w.shop, "aipl").unwrap();
    assert_eq!((status.calls.calls - before, status.calls.failures), (2, 0), "two customers, then one");
    assert_eq!((status.lag, status.subscription.cursor), (0, w.store.event_head(w.shop).unwrap()));
    for phone in phones {
        assert_eq!(score(&w, phone, "aipl").and_then(|s| s.label).as_deref(), Some("I|兴趣|Interest"), "{phone}");
    }
}

#[test]
fn failures_back_off_dead_letter_trip_the_breaker_and_re_drive() {
    let w = world(100);
    w.install(&plugins::VIP_TAG);
    w.enable(w.shop, "vip-tag", json!({"threshold": 10_000, "fail": true})).unwrap();
    w.enable(w.other_shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    w.order(w.shop, "o1", "13800000001", 20_000);
    w.order(w.other_shop, "o1", "13800000001", 20_000);

    assert_eq!(w.bus.run_pending().unwrap(), 2);
    assert_eq!(w.tags(w.other_shop, "13800000001").len(), 1, "the healthy shop's delivery went through beside the failing one");
    let sub = w.store.subscription(w.shop, "vip-tag").unwrap();
    assert_eq!((sub.attempts, sub.retry_at), (1, Some(w.clock.now() + chrono::Duration::seconds(1))));
    assert_eq!(sub.last_error.as_deref(), Some("the plugin returned an error: failed: configured to fail"));
    w.bus.run_pending().unwrap();
    assert_eq!(w.store.subscription(w.shop, "vip-tag").unwrap().attempts, 1, "nothing is due during the backoff");

    w.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(w.bus.run_pending().unwrap(), 1);
    w.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(w.bus.run_pending().unwrap(), 1);
    let letters = w.store.dead_letters(w.shop, "vip-tag").unwrap();
    assert_eq!(letters.len(), 1, "the third attempt dead-letters the batch");
    let sub = w.store.subscription(w.shop, "vip-tag").unwrap();
    assert_eq!((sub.cursor, sub.attempts, sub.consecutive_failures), (letters[0].last_seq, 0, 3));

    w.order(w.shop, "o2", "13800000003", 30_000);
    w.bus.run_pending().unwrap();
    w.clock.advance(chrono::Duration::seconds(1));
    w.bus.run_pending().unwrap();
    let sub = w.store.subscription(w.shop, "vip-tag").unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Tripped, "five failures in a row trip the breaker");
    assert!(w.store.events_after(w.shop, 0, 100).unwrap().iter().any(|e| e.kind == "plugin.tripped"));
    assert!(w.store.list_audit(w.shop, None, 10).unwrap().iter().any(|a| a.action == "plugin.trip"));
    w.clock.advance(chrono::Duration::hours(1));
    assert_eq!(w.bus.run_pending().unwrap(), 0, "a tripped plugin gets no deliveries");

    // Fixed and enabled again: the breaker resets, the held batch is delivered, the dead letter re-drives once.
    let sub = w.enable(w.shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    assert_eq!((sub.status, sub.consecutive_failures), (SubscriptionStatus::Enabled, 0));
    w.bus.drain().unwrap();
    assert_eq!(w.tags(w.shop, "13800000003").len(), 1);
    assert!(w.tags(w.shop, "13800000001").is_empty(), "the dead-lettered order waits for its re-drive");
    let letter = w.bus.redrive(w.shop, "vip-tag", letters[0].id).unwrap();
    assert!(letter.redriven_at.is_some());
    assert_eq!(w.tags(w.shop, "13800000001").len(), 1);
    assert!(matches!(w.bus.redrive(w.shop, "vip-tag", letters[0].id), Err(BusError::Store(kith_core::Error::Conflict(_)))));
}

#[test]
fn hostile_plugins_fail_their_own_deliveries_only() {
    let w = world(100);
    for package in
        [&plugins::VIP_TAG, &plugins::HOSTILE_LOOP, &plugins::HOSTILE_SNOOP, &plugins::HOSTILE_UNGRANTED, &plugins::HOSTILE_PANIC]
    {
        w.install(package);
    }
    w.order(w.other_shop, "o1", "13900000009", 100);
    let foreign = w.customer(w.other_shop, "13900000009").id;
    w.enable(w.shop, "vip-tag", json!({"threshold": 10_000})).unwrap();
    w.enable(w.shop, "hostile-loop", json!({})).unwrap();
    w.enable(w.shop, "hostile-panic", json!({})).unwrap();
    w.enable(w.shop, "hostile-snoop", json!({"target": foreign})).unwrap();
    let only_tags =
        EnableRequest { grant: Some(Grant { capabilities: [Capability::TagsWrite].into(), allowed_hosts: vec![] }), ..Default::default() };
    w.bus.enable(w.shop, "hostile-ungranted", &only_tags, &actor()).unwrap();

    w.order(w.shop, "o1", "13800000001", 20_000);
    w.bus.drain().unwrap();

    assert_eq!(w.tags(w.shop, "13800000001"), vec![("vip".to_string(), "vip-tag".to_string())]);
    let error = |plugin: &str| w.store.subscription(w.shop, plugin).unwrap().last_error.unwrap_or_default();
    assert_eq!(error("hostile-loop"), "the call ran past its deadline of 300ms");
    assert!(error("hostile-panic").starts_with("the plugin trapped"), "{}", error("hostile-panic"));
    assert_eq!(
        error("hostile-snoop"),
        format!("decision refused: decisions[0].customer_id: customer {foreign} is not a customer of this shop")
    );
    assert_eq!(error("hostile-ungranted"), "the plugin returned an error: access denied: capability `kv` is not granted");
    assert!(w.tags(w.other_shop, "13900000009").is_empty(), "nothing crossed into the other shop");
    let snoop_logs = w.store.plugin_logs(w.shop, "hostile-snoop", None, 10).unwrap();
    assert_eq!(snoop_logs[0].message, format!("read of {foreign}: Error::NotFound(\"customer {foreign}\")"));
}

#[test]
fn enabling_checks_version_config_and_grant() {
    let w = world(100);
    w.install(&plugins::VIP_TAG);
    fn field<T: std::fmt::Debug>(r: Result<T, BusError>) -> String {
        match r {
            Err(BusError::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(field(w.enable(w.shop, "vip-tag", json!({}))), "config.threshold");
    assert_eq!(field(w.enable(w.shop, "vip-tag", json!({"threshold": "high"}))), "config.threshold");
    assert_eq!(field(w.enable(w.shop, "vip-tag", json!({"threshold": 1, "colour": "red"}))), "config");
    let request = EnableRequest { version: Some("^2".into()), config: Some(json!({"threshold": 1})), ..Default::default() };
    assert_eq!(field(w.bus.enable(w.shop, "vip-tag", &request, &actor()).map(|_| ())), "version");
    let request = EnableRequest {
        config: Some(json!({"threshold": 1})),
        grant: Some(Grant { capabilities: [Capability::PointsWrite].into(), allowed_hosts: vec![] }),
        ..Default::default()
    };
    assert_eq!(field(w.bus.enable(w.shop, "vip-tag", &request, &actor()).map(|_| ())), "grant.capabilities");
    assert!(matches!(w.enable(w.shop, "nope", json!({})), Err(BusError::Store(kith_core::Error::NotFound(_)))));
    assert!(w.store.subscriptions(w.shop).unwrap().is_empty(), "nothing half-applied");
}

#[test]
fn install_refuses_bad_packages_and_upgrades_pick_the_newest_match() {
    let w = world(100);
    let install = |manifest: String| {
        let package = Package::from_tar_gz(&plugins::VIP_TAG.tar_gz_with(&manifest))?;
        w.bus.install(&package, &actor()).map(|_| ()).map_err(|e| match e {
            BusError::Invalid(e) => e,
            other => panic!("{other:?}"),
        })
    };
    let manifest = plugins::VIP_TAG.manifest();
    assert_eq!(install(manifest.replace("kind = \"tag-rule\"", "kind = \"loyalty-scheme\"")).unwrap_err().field, "plugin.wasm");
    assert_eq!(
        install(manifest.replace("api-version = \"0.2.0\"", "api-version = \"0.3.0\"")).unwrap_err().field,
        "plugin.toml.api-version"
    );
    // A served version the component is not built against: the component says which it is.
    let disagrees = install(manifest.replace("api-version = \"0.2.0\"", "api-version = \"0.1.0\"")).unwrap_err();
    assert_eq!(disagrees.field, "plugin.toml.api-version");
    assert!(disagrees.reason.contains("says api-version 0.1.0, but the component is built against kith:plugin@0.2.0"), "{disagrees}");
    let unknown = install(format!("homepage = \"x\"\n{manifest}")).unwrap_err();
    assert_eq!(unknown.field, "plugin.toml.homepage");
    assert!(unknown.reason.contains("unknown field `homepage`"), "{unknown}");
    assert_eq!(install(manifest.replace("type = \"object\"", "type = \"nonsense\"")).unwrap_err().field, "plugin.toml.config-schema");
    assert!(Package::from_tar_gz(b"not gzip").is_err());
    assert!(w.store.list_plugins().unwrap().is_empty());

    install(manifest.clone()).unwrap();
    install(manifest.clone()).unwrap();
    install(manifest.replace("version = \"1.0.0\"", "version = \"1.1.0\"")).unwrap();
    let other = kith_test_plugins::tar_gz(&[("plugin.toml", manifest.as_bytes()), ("plugin.wasm", &plugins::HOSTILE_PANIC.wasm())]);
    let conflict = w.bus.install(&Package::from_tar_gz(&other).unwrap(), &actor());
    assert!(matches!(conflict, Err(BusError::Invalid(_)) | Err(BusError::Store(kith_core::Error::Conflict(_)))), "{conflict:?}");
    assert_eq!(w.store.plugin_versions("vip-tag").unwrap().len(), 2);

    let pinned = EnableRequest { version: Some("=1.0.0".into()), config: Some(json!({"threshold": 1})), ..Default::default() };
    assert_eq!(w.bus.enable(w.shop, "vip-tag", &pinned, &actor()).unwrap().0.version, "1.0.0");
    let upgrade = EnableRequest { version: Some("^1".into()), ..pinned };
    assert_eq!(w.bus.enable(w.shop, "vip-tag", &upgrade, &actor()).unwrap().0.version, "1.1.0");
}

#[test]
fn a_run_covers_every_customer_in_batches() {
    let w = world(2);
    w.install(&plugins::VIP_TAG);
    for i in 0..5 {
        w.order(w.shop, &format!("o{i}"), &format!("1380000000{i}"), 5_000 * (i + 1));
    }
    w.enable(w.shop, "vip-tag", json!({"threshold": 15_000})).unwrap();
    let run = w.bus.start_run(w.shop, "vip-tag", &actor()).unwrap();
    assert_eq!((run.total, run.status), (5, PluginRunStatus::Running));
    assert!(matches!(w.bus.start_run(w.shop, "vip-tag", &actor()), Err(BusError::Store(kith_core::Error::Conflict(_)))));
    w.bus.drain().unwrap();
    let run = w.store.run(w.shop, "vip-tag", run.id).unwrap();
    assert_eq!((run.status, run.done), (PluginRunStatus::Done, 5));
    let vip: Vec<bool> = (0..5).map(|i| !w.tags(w.shop, &format!("1380000000{i}")).is_empty()).collect();
    assert_eq!(vip, [false, false, true, true, true]);
    let CustomerRead::Found(c) = w.store.get_customer(w.shop, w.customer(w.shop, "13800000004").id, 0).unwrap() else { panic!() };
    assert_eq!(c.customer.tags[0].reason.as_deref(), Some("spent 25000 ≥ 15000"));
}

#[test]
fn plugins_read_histories_and_windowed_contexts() {
    let w = world(100);
    w.install(&plugins::HISTORY_PROBE);
    w.enable(w.shop, "history-probe", json!({"window_days": 30})).unwrap();
    let now = w.clock.now();
    let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let who = json!([{"kind": "phone", "value": "13500000001"}]);
    let events = vec![
        json!({"id": "old", "type": "order.paid", "identities": who, "order": {"id": "old", "paid_at": at(90), "amount": 90_000,
               "items": [{"sku": "A", "category": "apparel", "quantity": 1, "unit_price": 90_000}]}}),
        json!({"id": "new", "type": "order.paid", "identities": who, "order": {"id": "new", "paid_at": at(3), "amount": 30_000,
               "items": [{"sku": "B", "category": "beauty", "quantity": 1, "unit_price": 30_000}]}}),
        json!({"id": "v1", "type": "behaviour", "occurred_at": at(2), "identities": who, "behaviour": {"kind": "view", "sku": "B"}}),
        json!({"id": "v2", "type": "behaviour", "occurred_at": at(40), "identities": who, "behaviour": {"kind": "view", "sku": "C"}}),
        json!({"id": "other", "type": "order.paid", "identities": [{"kind": "phone", "value": "13500000002"}],
               "order": {"id": "other", "paid_at": at(1), "amount": 10_000}}),
    ];
    let report = w.store.ingest(w.shop, events, &actor()).unwrap();
    assert_eq!(report.accepted, 5, "{report:?}");
    w.bus.drain().unwrap();

    let mut tags: Vec<String> = w.tags(w.shop, "13500000001").into_iter().map(|(t, _)| t).collect();
    tags.sort();
    assert_eq!(tags, ["categories:beauty", "orders:1", "views:1"], "only what happened in the last 30 days");
    let logs = w.store.plugin_logs(w.shop, "history-probe", None, 10).unwrap();
    assert_eq!(logs[0].message, "window Some(30): 2 buyers, monetary average 20000, frequency average 1");

    // One history per id asked, in that order, a repeated id included (it is read once).
    let (a, b) = (w.customer(w.shop, "13500000001").id, w.customer(w.shop, "13500000002").id);
    let histories = w.store.histories(w.shop, &[a, b, a], 0).unwrap();
    assert_eq!(histories.iter().map(|h| h.customer_id).collect::<Vec<_>>(), [a, b, a]);
    assert_eq!((histories[0].orders.len(), histories[0].behaviours.len()), (2, 2));
    assert_eq!(histories[0], histories[2]);
}

#[test]
fn a_batch_carries_only_the_parts_of_a_customer_the_plugin_reads() {
    // reads-probe's manifest says `reads = ["stats"]`; it logs its subject's event and order,
    // what its batch carried and what the `customers` import returned for the same customer.
    let w = world(100);
    w.install(&plugins::READS_PROBE);
    w.enable(w.shop, "reads-probe", json!({})).unwrap();
    let who = json!([{"kind": "phone", "value": "13500000009"}]);
    let profile = json!({"name": "Ann", "city": "Hangzhou", "attributes": {"channel": "tmall"}});
    let upsert = json!({"id": "u", "type": "customer.upsert", "identities": who, "profile": profile});
    w.store.ingest(w.shop, vec![upsert], &actor()).unwrap();
    let id = w.customer(w.shop, "13500000009").id;
    w.store.add_tag(w.shop, id, "vip", None, &actor()).unwrap();
    let points = kith_domain::loyalty::PointsAdjustment {
        points: 70,
        reason: "welcome".into(),
        idempotency_key: "welcome".into(),
        expires_at: None,
    };
    w.store.adjust_points(w.shop, id, &points, &actor(), w.clock.now()).unwrap();
    let order = json!({"id": "o1", "type": "order.paid", "identities": who,
                       "order": {"id": "o1", "amount": 12_000, "paid_at": "2026-11-01T08:00:00Z"}});
    w.store.ingest(w.shop, vec![order], &actor()).unwrap();
    w.bus.drain().unwrap();

    let logs = w.store.plugin_logs(w.shop, "reads-probe", None, 10).unwrap();
    let mut lines: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "batch: name=None city=None attributes={} spent=12000 orders=1 tags=0 points=0 tier=None",
            r#"event: order.paid {"amount":12000,"coupon_code":null,"first_order":true,"items":[],"order_id":"o1","paid_at":"2026-11-01T08:00:00Z"} order=Some(("o1", 12000, 0))"#,
            r#"read: name=Some("Ann") city=Some("Hangzhou") attributes={"channel":"tmall"} spent=12000 orders=1 tags=1 points=70 tier=None"#,
        ],
        "the batch has the stats alone; the import reads the whole customer"
    );
}

// First-party plugins (plugins/) through their real components.

/// An order paid `days` before the clock, for a customer known by phone.
fn paid(id: &str, phone: &str, days: f64, amount: i64, category: &str, now: chrono::DateTime<Utc>) -> Value {
    let at = now - chrono::Duration::milliseconds((days * 86_400_000.0) as i64);
    json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
           "order": {"id": id, "paid_at": at.to_rfc3339(), "amount": amount,
                     "items": [{"sku": format!("{category}-1"), "category": category, "quantity": 1, "unit_price": amount}]}})
}

fn score(w: &World, phone: &str, model: &str) -> Option<kith_domain::model::Score> {
    w.customer(w.shop, phone).scores.into_iter().find(|s| s.model == model)
}

fn run(w: &World, plugin: &str) {
    w.bus.start_run(w.shop, plugin, &actor()).unwrap();
    w.bus.drain().unwrap();
}

#[test]
fn rfm_places_a_hand_computed_shop_in_all_eight_groups() {
    let w = world(4);
    let now = w.clock.now();
    // (phone, days since last order, orders, total spent): averages over the 9 buyers are
    // R 55 days, F 2, M 2000; the last buyer sits exactly on all three averages.
    let buyers: [(&str, f64, usize, i64, &str); 9] = [
        ("13900000001", 10.0, 3, 3000, "important-value|重要价值|Important value"),
        ("13900000002", 10.0, 1, 3000, "important-development|重要发展|Important development"),
        ("13900000003", 100.0, 3, 3000, "important-retention|重要保持|Important retention"),
        ("13900000004", 100.0, 1, 3000, "important-winback|重要挽留|Important win-back"),
        ("13900000005", 10.0, 3, 1000, "general-value|一般价值|General value"),
        ("13900000006", 10.0, 1, 1000, "general-development|一般发展|General development"),
        ("13900000007", 100.0, 3, 1000, "general-retention|一般保持|General retention"),
        ("13900000008", 100.0, 1, 1000, "general-winback|一般挽留|General win-back"),
        ("13900000009", 55.0, 2, 2000, "important-value|重要价值|Important value"),
    ];
    let mut events = Vec::new();
    for (phone, days, orders, spent, _) in buyers {
        for i in 0..orders {
            let amount = spent / orders as i64 + if i == 0 { spent % orders as i64 } else { 0 };
            events.push(paid(&format!("{phone}-{i}"), phone, days + i as f64, amount, "beauty", now));
        }
    }
    // Outside the 365-day window: it changes neither this buyer's group nor the averages.
    events.push(paid("old", "13900000008", 400.0, 1_000_000, "beauty", now));
    events.push(json!({"id": "nobody", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13900000010"}]}));
    assert_eq!(w.store.ingest(w.shop, events, &actor()).unwrap().rejected, 0);

    w.install(&plugins::RFM);
    w.enable(w.shop, "rfm", json!({"window_days": 365})).unwrap();
    run(&w, "rfm");

    for (phone, _, _, _, label) in buyers {
        assert_eq!(score(&w, phone, "rfm").unwrap().label.as_deref(), Some(label), "{phone}");
    }
    let average = score(&w, "13900000009", "rfm").unwrap();
    assert_eq!(
        average.explanation.as_deref(),
        Some("R 55 days ≤ average 55 days (high); F 2 ≥ average 2 (high); M CNY 20.00 ≥ average CNY 20.00 (high)"),
        "exactly average counts as high"
    );
    // R cut points 10, 10, 100, 100: 10 days scores 3; F cut points 1, 1, 3, 3; M 1000, 1000, 3000, 3000.
    let best = score(&w, "13900000001", "rfm").unwrap();
    assert_eq!(best.value, 333.0);
    assert_eq!(score(&w, "13900000001", "rfm.r").unwrap().value, 3.0);
    assert_eq!(score(&w, "13900000008", "rfm.m").unwrap().value, 1.0, "the order outside the window does not count");
    let nobody = score(&w, "13900000010", "rfm").unwrap();
    assert_eq!((nobody.value, nobody.label), (0.0, None), "no order, no group");
}

#[test]
fn a_customers_second_order_in_a_shop_with_segments_moves_every_plugin_on() {
    // Issue 25: with a segment in the shop, the second score of a customer already marked as
    // changed failed its write (UNIQUE on segment_dirty) and the bus retried it for ever.
    let w = world(100);
    w.install(&plugins::RFM);
    w.install(&plugins::VIP_TAG);
    w.enable(w.shop, "rfm", json!({"window_days": 365})).unwrap();
    w.enable(w.shop, "vip-tag", json!({"threshold": 1_000})).unwrap();
    let segment = kith_domain::segments::SegmentInput {
        name: "important value".into(),
        description: None,
        definition: json!({"score": "rfm", "label": "important-value"}),
    };
    w.store.create_segment(w.shop, &segment, &actor(), w.clock.now()).unwrap();
    let now = w.clock.now();
    for (i, days) in [(1, 30.0), (2, 3.0)] {
        assert_eq!(
            w.store.ingest(w.shop, vec![paid(&format!("o{i}"), "13900000001", days, 5000, "beauty", now)], &actor()).unwrap().accepted,
            1
        );
        w.bus.drain().unwrap();
    }
    for plugin in ["rfm", "vip-tag"] {
        let status = w.bus.status(w.shop, plugin).unwrap();
        assert_eq!((status.lag, status.subscription.last_error.as_deref()), (0, None), "{plugin}");
        assert_eq!(status.calls.failures, 0, "{plugin}");
    }
    let rfm = score(&w, "13900000001", "rfm").unwrap();
    assert!(rfm.explanation.as_deref().is_some_and(|e| e.contains("F 2")), "scored after both orders: {rfm:?}");
}

#[test]
fn a_shop_context_is_not_served_after_the_clock_moved_on() {
    // The living shop on a loaded machine: a context computed before the test clock moved
    // half a day was served after it for the rest of a minute, and RFM placed customers by
    // yesterday's average days since the last order.
    let w = world(100);
    w.install(&plugins::RFM);
    w.enable(w.shop, "rfm", json!({"window_days": 365})).unwrap();
    let now = w.clock.now();
    // Average days since the last order: 1.5. The second buyer (1 day) is high on R.
    let events = vec![paid("x", "13900000001", 2.0, 1000, "beauty", now), paid("y", "13900000002", 1.0, 3000, "beauty", now)];
    assert_eq!(w.store.ingest(w.shop, events, &actor()).unwrap().accepted, 2);
    w.bus.drain().unwrap();
    let label = |w: &World| score(w, "13900000002", "rfm").unwrap().label.unwrap();
    assert!(label(&w).starts_with("important-value|"), "{}", label(&w));

    // 23 hours on (the daily run is not due yet): 2.96 and 1.96 days, averaging 2.46, so the
    // second buyer is still high on R; by the context of 23 hours ago (1.5) it would be low.
    w.clock.advance(chrono::Duration::hours(23));
    let refund = json!({"id": "r-y", "type": "order.refunded",
        "refund": {"order_id": "y", "amount": 100, "refunded_at": w.clock.now()}});
    assert_eq!(w.store.ingest(w.shop, vec![refund], &actor()).unwrap().accepted, 1);
    w.bus.drain().unwrap();
    let rfm = score(&w, "13900000002", "rfm").unwrap();
    assert!(rfm.explanation.as_deref().is_some_and(|e| e.starts_with("R 2 days ≤ average 2.5 days (high)")), "{rfm:?}");
    assert!(label(&w).starts_with("important-value|"), "{}", label(&w));
}

#[test]
fn a_full_disk_holds_deliveries_back_without_counting_against_the_plugin() {
    // Review of issue 25: a delivery that failed because the machine's storage did (a full disk,
    // a lock held by `kith import`) counted towards its dead letter and breaker.
    let w = world(500);
    w.install(&plugins::VIP_TAG);
    w.enable(w.shop, "vip-tag", json!({"threshold": 1_000})).unwrap();
    let now = w.clock.now();
    let orders: Vec<Value> = (0..400).map(|i| paid(&format!("o{i}"), &format!("1390000{i:04}"), 1.0, 5_000, "beauty", now)).collect();
    assert_eq!(w.store.ingest(w.shop, orders, &actor()).unwrap().accepted, 400);
    // No page more than the file holds now: 400 tags cannot be written, nor anything else.
    w.store.limit_pages_for_tests(1).unwrap();
    for _ in 0..8 {
        w.bus.run_pending().expect("a pass goes on through a full disk");
    }
    let held = w.bus.status(w.shop, "vip-tag").unwrap();
    assert!(held.lag > 0, "nothing was delivered");
    w.store.limit_pages_for_tests(1 << 30).unwrap();
    w.bus.drain().unwrap();
    let status = w.bus.status(w.shop, "vip-tag").unwrap();
    assert_eq!((status.lag, status.open_dead_letters), (0, 0), "{:?}", status.subscription);
    let sub = &status.subscription;
    assert_eq!((sub.status, sub.attempts, sub.consecutive_failures), (SubscriptionStatus::Enabled, 0, 0), "{sub:?}");
    assert_eq!(w.tags(w.shop, "13900000399"), vec![("vip".to_owned(), "vip-tag".to_owned())]);
}

#[test]
fn a_tier_change_reaches_aipl_at_once() {
    // Found by the living-shop test: AIPL (a tier makes Loyalty) scored an order before the loyalty
    // scheme gave the customer a tier for it, and stayed a stage behind until its next daily run.
    let w = world(100);
    w.install(&plugins::AIPL);
    w.install(&plugins::TIERED_POINTS);
    w.enable(w.shop, "aipl", json!({})).unwrap();
    let now = w.clock.now();
    assert_eq!(w.store.ingest(w.shop, vec![paid("o1", "13900000001", 1.0, 5000, "beauty", now)], &actor()).unwrap().accepted, 1);
    w.bus.drain().unwrap();
    assert_eq!(score(&w, "13900000001", "aipl").unwrap().label.as_deref(), Some("P|购买|Purchase"));
    // The scheme arrives later; its first review gives the buyer a tier, with no order to deliver.
    w.enable(w.shop, "tiered-points", json!({"tiers": [{"name": "silver", "threshold": 0}]})).unwrap();
    run(&w, "tiered-points");
    assert_eq!(w.customer(w.shop, "13900000001").tier.as_deref(), Some("silver"));
    let changes: Vec<Value> =
        w.store.events_after(w.shop, 0, 100).unwrap().into_iter().filter(|e| e.kind == "tier.changed").map(|e| e.payload.value()).collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0]["from"].clone(), changes[0]["to"].clone()), (Value::Null, json!("silver")));
    let stage = score(&w, "13900000001", "aipl").unwrap();
    assert_eq!(stage.label.as_deref(), Some("L|忠诚|Loyalty"), "{stage:?}");
}

#[test]
fn aipl_moves_forward_with_activity_and_back_when_it_lapses() {
    let w = world(100);
    w.install(&plugins::AIPL);
    w.enable(w.shop, "aipl", json!({})).unwrap();
    let phone = "13800000042";
    let who = json!([{"kind": "phone", "value": phone}]);
    let stage = |w: &World| score(w, phone, "aipl").and_then(|s| s.label).map(|l| l.split('|').next().unwrap().to_owned());
    let behaviour = |id: &str, kind: &str, w: &World| json!({"id": id, "type": "behaviour", "occurred_at": w.clock.now().to_rfc3339(), "identities": who, "behaviour": {"kind": kind, "sku": "X"}});

    w.store.ingest(w.shop, vec![behaviour("v1", "view", &w)], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(stage(&w).as_deref(), Some("A"));
    w.store.ingest(w.shop, vec![behaviour("c1", "cart", &w)], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(stage(&w).as_deref(), Some("I"));
    w.store.ingest(w.shop, vec![paid("o1", phone, 0.0, 100, "food", w.clock.now())], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(stage(&w).as_deref(), Some("P"));
    w.store.ingest(w.shop, vec![paid("o2", phone, 0.0, 100, "food", w.clock.now())], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(stage(&w).as_deref(), Some("L"));

    // Nothing happens for 400 days: the daily run finds no order in the window and no recent view.
    w.clock.advance(chrono::Duration::days(400));
    w.bus.drain().unwrap();
    assert_eq!(score(&w, phone, "aipl").unwrap().label, None, "the scheduled run moved the stage back");
    w.store.ingest(w.shop, vec![behaviour("v2", "view", &w)], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(stage(&w).as_deref(), Some("A"));
}

#[test]
fn lifecycle_tags_follow_time_one_at_a_time() {
    let w = world(100);
    w.install(&plugins::LIFECYCLE);
    w.enable(w.shop, "lifecycle", json!({})).unwrap();
    let phone = "13800000077";
    let lifecycle =
        |w: &World| -> Vec<String> { w.tags(w.shop, phone).into_iter().filter(|(_, s)| s == "lifecycle").map(|(t, _)| t).collect() };
    w.store.ingest(w.shop, vec![paid("o1", phone, 0.0, 100, "food", w.clock.now())], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(lifecycle(&w), ["lifecycle:new"]);
    for (days, expected) in [(40, "lifecycle:active"), (60, "lifecycle:sleeping"), (100, "lifecycle:churned")] {
        w.clock.advance(chrono::Duration::days(days));
        w.bus.drain().unwrap();
        assert_eq!(lifecycle(&w), [expected], "after {days} more days");
    }
    w.store.ingest(w.shop, vec![paid("o2", phone, 0.0, 100, "food", w.clock.now())], &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(lifecycle(&w), ["lifecycle:active"], "a new order brings the customer back");
}

#[test]
fn high_value_and_category_affinity_tag_from_stats_and_history() {
    let w = world(100);
    w.install(&plugins::HIGH_VALUE);
    w.install(&plugins::CATEGORY_AFFINITY);
    w.enable(w.shop, "high-value", json!({"aov_multiple": 2.0, "min_orders": 3})).unwrap();
    w.enable(w.shop, "category-affinity", json!({"min_orders": 2})).unwrap();
    let now = w.clock.now();
    let events = vec![
        paid("a1", "13700000001", 5.0, 1_000, "beauty", now),
        paid("a2", "13700000001", 4.0, 1_000, "beauty", now),
        paid("a3", "13700000001", 3.0, 1_000, "food", now),
        paid("b1", "13700000002", 2.0, 10_000, "tech", now),
        paid("c1", "13700000003", 1.0, 1_000, "food", now),
    ];
    w.store.ingest(w.shop, events, &actor()).unwrap();
    w.bus.refresh_contexts();
    run(&w, "high-value");
    run(&w, "category-affinity");
    // Average order value: 14,000 / 5 = 2,800; twice that is 5,600.
    let tags = |phone| -> Vec<String> {
        let mut t: Vec<String> = w.tags(w.shop, phone).into_iter().map(|(t, _)| t).collect();
        t.sort();
        t
    };
    assert_eq!(tags("13700000001"), ["prefers:beauty"]);
    assert_eq!(tags("13700000002"), ["high-value"]);
    assert!(tags("13700000003").is_empty());
}
