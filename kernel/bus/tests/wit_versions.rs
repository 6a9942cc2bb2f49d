//! The WIT's versions side by side: 0.1 builds of every kind (Rust with
//! bindings straight from the frozen wit/v0.1 — a tag rule, a scoring model,
//! a loyalty scheme, a channel connector — and the Python tag rule) run
//! unchanged through the bus beside 0.2 builds doing the same (the SDK's
//! vip-tag, the first-party rfm, tiered-points and sms-http), with the same
//! tags, scores, ledger entries, tiers, messages sent and receipts applied;
//! each such test fails when the 0.1 shim of its kind (kernel/host/src/v0_1.rs)
//! converts a field or a case wrongly. A 0.2 plugin reads the shop's buyer summaries, whose figures are
//! checked against a plain computation over the orders the test wrote, and is
//! refused them without `customers:read`.

mod support;

use kith_core::prelude::*;
use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kith_bus::{Clock, EnableRequest, Package};
use kith_domain::loyalty::LedgerKind;
use kith_domain::messaging::{Message, MessageStatus, SendRequest};
use kith_domain::model::NewShop;
use kith_domain::plugin::{Capability, Grant, InboundRequest};
use kith_provider::{Answer, Provider};
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

/// Enable `package` in `shop` without scheduled runs: the test starts the runs, so that
/// the builds compared are called at the same times.
fn unscheduled(w: &World, shop: i64, package: &plugins::Package, config: Value, grant: Option<Grant>) {
    let package = Package::from_tar_gz(&package.tar_gz()).unwrap();
    w.bus.install(&package, &actor()).unwrap();
    let request = EnableRequest { config: Some(config), grant, run_every_hours: Some(0), ..Default::default() };
    w.bus.enable(shop, &package.manifest.id, &request, &actor()).unwrap();
}

/// One kernel serving two shops alike: `new` runs a 0.2 build, `old` the 0.1
/// build of the same kind, and every event or message goes to both.
struct Twins {
    w: World,
    new: i64,
    old: i64,
}

fn twins() -> Twins {
    let w = world();
    let shop = NewShop { name: "B".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let old = w.store.create_shop(&shop, &actor()).unwrap().id;
    let new = w.shop;
    Twins { w, new, old }
}

impl Twins {
    fn enable(&self, shop: i64, package: &plugins::Package, config: Value, grant: Option<Grant>) {
        unscheduled(&self.w, shop, package, config, grant);
    }

    /// The same event in both shops, then the bus drained.
    fn ingest(&self, event: Value) {
        for shop in [self.new, self.old] {
            let report = self.w.store.ingest_at(shop, vec![event.clone()], &actor(), self.w.clock.now()).unwrap();
            assert_eq!(report.accepted, 1, "{report:?}");
        }
        self.w.bus.drain().unwrap();
    }

    fn order(&self, id: &str, phone: &str, amount: i64) {
        self.ingest(json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
            "order": {"id": id, "amount": amount, "paid_at": self.w.clock.now()}}));
    }

    fn refund(&self, order: &str, amount: i64) {
        self.ingest(json!({"id": format!("r-{order}-{amount}"), "type": "order.refunded",
            "refund": {"order_id": order, "amount": amount, "refunded_at": self.w.clock.now()}}));
    }

    /// A run of `plugin` over every customer of `shop`.
    fn run(&self, shop: i64, plugin: &str) {
        self.w.bus.start_run(shop, plugin, &actor()).unwrap();
        self.w.bus.drain().unwrap();
    }

    /// The customer of `shop` with this phone number.
    fn customer(&self, shop: i64, phone: &str) -> kith_domain::model::Customer {
        let phone = format!("+86{phone}");
        self.w
            .store
            .list_customers(shop, &Default::default(), 0, 1000)
            .unwrap()
            .into_iter()
            .find(|c| c.identities.iter().any(|i| i.value == phone))
            .unwrap_or_else(|| panic!("no customer {phone} in shop {shop}"))
    }

    fn message(&self, shop: i64, id: &str) -> Message {
        self.w.store.message(shop, id).unwrap()
    }

    /// `plugin` in `shop` ran without a failure and is caught up.
    fn healthy(&self, shop: i64, plugin: &str) -> kith_bus::PluginStatus {
        let status = self.w.bus.status(shop, plugin).unwrap();
        assert_eq!((status.calls.failures, status.lag), (0, 0), "{plugin}: {:?}", status.calls.last_errors);
        status
    }
}

fn score(customer: &kith_domain::model::Customer, model: &str) -> Option<kith_domain::model::Score> {
    customer.scores.iter().find(|s| s.model == model).cloned()
}

#[test]
fn a_0_1_scoring_model_scores_as_the_0_2_rfm_does() {
    let w = world();
    unscheduled(&w, w.shop, &plugins::RFM, json!({}), None);
    unscheduled(&w, w.shop, &plugins::LEGACY_SCORE, json!({}), None);
    assert!(plugins::LEGACY_SCORE.manifest().contains("api-version = \"0.1.0\""));

    // Eight buyers over 30 days, who buy more often and more the later they come in the list;
    // every order is kept: (phone, amount, refunded).
    let mut written: Vec<(String, i64, i64)> = Vec::new();
    for day in 0..30i64 {
        for i in 0..8i64 {
            if (day + i) % (9 - i) != 0 {
                continue;
            }
            let phone = format!("1380000000{i}");
            let id = format!("o{day}-{i}");
            let amount = 1_000 + 750 * i + 31 * day;
            order(&w, &id, &phone, amount);
            // Some refunded in full (no longer counted), some by a third.
            let refunded = match (day + 2 * i) % 7 {
                0 => amount,
                3 => amount / 3,
                _ => 0,
            };
            if refunded > 0 {
                w.ingest(json!({"id": format!("r-{id}"), "type": "order.refunded",
                    "refund": {"order_id": id, "amount": refunded, "refunded_at": w.clock.now()}}));
            }
            written.push((phone, amount, refunded));
        }
        w.clock.advance(Duration::hours(20));
    }
    w.ingest(json!({"id": "u1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13900000000"}]}));
    w.bus.drain().unwrap();

    let compare = |everyone: bool| {
        let customers = w.store.list_customers(w.shop, &Default::default(), 0, 1000).unwrap();
        let mut groups = BTreeSet::new();
        let mut compared = 0;
        for customer in &customers {
            let phone = customer.identities[0].value.trim_start_matches("+86").to_owned();
            let (Some(new), Some(old)) = (score(customer, "rfm"), score(customer, "legacy-score")) else {
                // Only the customer without orders, whom no event of theirs brought to the models.
                assert!(!everyone && phone == "13900000000", "{phone} not scored by both: {:?}", customer.scores);
                continue;
            };
            compared += 1;
            assert_eq!((old.value, &old.label), (new.value, &new.label), "{phone}: the 0.1 build scores as rfm does");
            let orders: Vec<_> = written.iter().filter(|(p, amount, refunded)| *p == phone && refunded < amount).collect();
            let explanation = if orders.is_empty() {
                "no order in the last 365 days".to_owned()
            } else {
                let spent: i64 = orders.iter().map(|(_, amount, refunded)| amount - refunded).sum();
                let facet = |f: &str| score(customer, &format!("rfm.{f}")).unwrap().value;
                format!(
                    "R {} F {} M {}: {} orders, CNY {}.{:02} spent in 365 days",
                    facet("r"),
                    facet("f"),
                    facet("m"),
                    orders.len(),
                    spent / 100,
                    spent % 100
                )
            };
            assert_eq!(old.explanation.as_deref(), Some(explanation.as_str()), "{phone}");
            groups.extend(new.label);
        }
        (compared, groups)
    };
    let (compared, _) = compare(false);
    assert_eq!(compared, 8, "every buyer was scored by both on their events");

    // A run a month later scores every customer, the one without orders too, with the shop's context then.
    w.clock.advance(Duration::days(30));
    for id in ["rfm", "legacy-score"] {
        w.bus.start_run(w.shop, id, &actor()).unwrap();
    }
    w.bus.drain().unwrap();
    let (compared, groups) = compare(true);
    assert_eq!(compared, 9);
    assert!(groups.len() >= 3, "the buyers fall in several groups: {groups:?}");
    let status = w.bus.status(w.shop, "legacy-score").unwrap();
    assert_eq!((status.calls.failures, status.lag), (0, 0), "{:?}", status.calls.last_errors);
    assert!(status.logs.iter().any(|l| l.message.starts_with("scoring 9 customers of ")), "{:?}", status.logs);
    assert!(kv(&w, "legacy-score", "scored").and_then(|v| v.as_u64()) > Some(9), "key-value writes through the 0.1 shim");
}

/// A ledger entry as both shops can compare it: the scheme's own entries name
/// the scheme, the kernel's refund entries are keyed by the shop's row ids.
#[derive(Debug, PartialEq)]
struct Entry {
    kind: LedgerKind,
    points: i64,
    source: &'static str,
    source_key: Option<String>,
    reason: String,
    order_id: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[test]
fn a_0_1_loyalty_scheme_awards_and_tiers_as_the_0_2_tiered_points_does() {
    let t = twins();
    let tiers = json!([{"name": "silver", "threshold": 50_000}, {"name": "gold", "threshold": 100_000, "multiplier": 2}]);
    t.enable(t.new, &plugins::TIERED_POINTS, json!({"expiry_days": 365, "tiers": tiers}), None);
    t.enable(t.old, &plugins::LEGACY_POINTS, json!({"expiry_days": 365, "tiers": tiers, "forfeit_after_days": 90}), None);
    assert!(plugins::LEGACY_POINTS.manifest().contains("api-version = \"0.1.0\""));
    let (ann, bob) = ("13800000001", "13800000002");

    // 2 November 2026.
    t.order("o1", ann, 60_000);
    t.order("o2", bob, 200_000);
    t.w.clock.advance(Duration::days(1));
    t.order("o3", ann, 50_000);
    t.w.clock.advance(Duration::days(1));
    t.order("o4", ann, 10_000);
    t.w.clock.advance(Duration::days(1));
    t.refund("o3", 50_000);
    // The review of 1 January: Ann's spend is CNY 700.00 without o3.
    t.w.clock.set(Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap());
    t.run(t.new, "tiered-points");
    t.run(t.old, "legacy-points");
    t.w.clock.set(Utc.with_ymd_and_hms(2027, 1, 20, 0, 0, 0).unwrap());
    t.order("o5", bob, 10_000);

    let entries = |shop: i64, phone: &str| -> Vec<Entry> {
        let customer = t.customer(shop, phone).id;
        let mut ledger = t.w.store.points_ledger(shop, customer, None, 100).unwrap();
        ledger.reverse();
        ledger
            .into_iter()
            .map(|e| {
                let source = match e.source.as_str() {
                    "kernel" => "kernel",
                    "tiered-points" | "legacy-points" => "scheme",
                    other => panic!("an entry of {other}"),
                };
                Entry {
                    kind: e.kind,
                    points: e.points,
                    source,
                    source_key: (source == "scheme").then_some(e.source_key),
                    reason: e.reason,
                    order_id: e.order_id,
                    expires_at: e.expires_at,
                    created_at: e.created_at,
                }
            })
            .collect()
    };
    let tiers_of = |shop: i64, phone: &str| -> Vec<(Option<String>, String, DateTime<Utc>)> {
        let account = t.w.store.points_account(shop, t.customer(shop, phone).id).unwrap();
        account.tier_history.into_iter().rev().map(|c| (c.from, c.to, c.at)).collect()
    };
    let compare = || {
        for phone in [ann, bob] {
            assert_eq!(entries(t.old, phone), entries(t.new, phone), "{phone}: the 0.1 build's ledger is the 0.2 build's");
            assert_eq!(tiers_of(t.old, phone), tiers_of(t.new, phone), "{phone}: the same tiers at the same times");
        }
    };
    compare();
    let ann_entries: Vec<(LedgerKind, i64, Option<String>)> =
        entries(t.old, ann).into_iter().map(|e| (e.kind, e.points, e.source_key)).collect();
    let key = |order: &str| Some(format!("order:{order}"));
    assert_eq!(
        ann_entries,
        vec![
            (LedgerKind::Earn, 600, key("o1")),
            (LedgerKind::Earn, 500, key("o3")),
            (LedgerKind::Earn, 200, key("o4")),
            (LedgerKind::Clawback, -500, None)
        ],
        "o4 earned double in gold; the kernel took o3's points back with its refund"
    );
    let first = &entries(t.old, ann)[0];
    assert_eq!(first.reason, "order o1 paid CNY 600.00");
    assert_eq!(first.expires_at, Some(first.created_at + Duration::days(365)));
    let tiers: Vec<(Option<String>, String)> = tiers_of(t.old, ann).into_iter().map(|(from, to, _)| (from, to)).collect();
    let name = |s: &str| Some(s.to_owned());
    assert_eq!(tiers, vec![(None, "silver".into()), (name("silver"), "gold".into()), (name("gold"), "silver".into())]);
    let account = t.w.store.points_account(t.old, t.customer(t.old, ann).id).unwrap();
    let reasons: Vec<&str> = account.tier_history.iter().rev().map(|c| c.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "qualifying spend CNY 600.00 in 12 months reached silver (CNY 500.00)",
            "qualifying spend CNY 1100.00 in 12 months reached gold (CNY 1000.00)",
            "review: CNY 700.00 in the 12 months to the review"
        ]
    );
    let upgrades = |shop: i64| -> Vec<String> {
        let account = t.w.store.points_account(shop, t.customer(shop, ann).id).unwrap();
        account.tier_history.into_iter().filter(|c| !c.reason.starts_with("review")).map(|c| c.reason).collect()
    };
    assert_eq!(upgrades(t.old), upgrades(t.new), "upgrades give tiered-points' reasons");
    assert_eq!(t.customer(t.old, bob).points, 2_200, "o5 earned double in gold");

    // Six weeks later the 0.1 scheme's review claws back the points of a customer who stopped buying;
    // the 0.2 scheme has no such rule, and neither changes a tier.
    t.w.clock.set(Utc.with_ymd_and_hms(2027, 2, 15, 0, 0, 0).unwrap());
    t.run(t.new, "tiered-points");
    t.run(t.old, "legacy-points");
    let mut forfeited = entries(t.old, ann);
    let last = forfeited.pop().unwrap();
    assert_eq!(forfeited, entries(t.new, ann));
    assert_eq!(entries(t.old, bob), entries(t.new, bob), "Bob bought in January");
    let last_order = t.customer(t.old, ann).stats.last_order_at.unwrap();
    assert_eq!(
        last,
        Entry {
            kind: LedgerKind::Clawback,
            points: -800,
            source: "scheme",
            source_key: Some(format!("forfeit:{}", last_order.timestamp_millis())),
            reason: "no order in 90 days: 800 points forfeited".into(),
            order_id: None,
            expires_at: None,
            created_at: t.w.clock.now(),
        }
    );
    assert_eq!((t.customer(t.old, ann).points, t.customer(t.new, ann).points), (0, 800));
    for phone in [ann, bob] {
        assert_eq!(tiers_of(t.old, phone), tiers_of(t.new, phone));
    }
    t.healthy(t.new, "tiered-points");
    let status = t.healthy(t.old, "legacy-points");
    assert!(status.logs.iter().any(|l| l.message == "reviewed 2 customers, 1 decisions"), "{:?}", status.logs);
    let orders = t.w.store.plugin_kv_get(t.old, "legacy-points", "orders").unwrap();
    assert_eq!(orders.map(|v| serde_json::from_slice::<Value>(&v).unwrap()), Some(json!(5)), "key-value writes through the 0.1 shim");
    assert!(t.w.store.points_mismatches(t.old).unwrap().is_empty());
}

#[test]
fn a_0_1_connector_sends_and_applies_receipts_as_the_0_2_sms_http_does() {
    let t = twins();
    // One gateway stand-in per shop, so that both hand out the same ids.
    let new = Provider::start().unwrap();
    let old = Provider::start().unwrap();
    let config = |p: &Provider| json!({"endpoint": p.url("/sms"), "api_key": "k", "sign_name": "【Kith】"});
    let grant = Grant { capabilities: [Capability::Config, Capability::Http, Capability::Log].into(), allowed_hosts: vec![new.host()] };
    t.enable(t.new, &plugins::SMS_HTTP, config(&new), Some(grant));
    t.enable(t.old, &plugins::LEGACY_CONNECTOR, config(&old), None);
    assert!(plugins::LEGACY_CONNECTOR.manifest().contains("api-version = \"0.1.0\""));
    t.ingest(json!({"id": "c1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13800000001"}]}));

    let send = |key: &str| -> [Message; 2] {
        let ids = [t.new, t.old].map(|shop| {
            let request = SendRequest {
                customer_id: t.customer(shop, "13800000001").id,
                channel: "sms".into(),
                template: "SMS_1".into(),
                variables: [("name".to_string(), "Ann".to_string())].into(),
                idempotency_key: key.into(),
            };
            t.w.store.enqueue_message(shop, &request, "api", t.w.clock.now()).unwrap().0.id
        });
        t.w.bus.drain().unwrap();
        [t.message(t.new, &ids[0]), t.message(t.old, &ids[1])]
    };
    let script = |answer: Answer| {
        new.script([answer.clone()]);
        old.script([answer]);
    };
    let sent = send("k1");
    script(Answer::Status { status: 429, body: "busy".into(), retry_after: Some(120) });
    let busy = send("k2");
    assert_eq!((busy[1].status, busy[1].next_attempt_at), (MessageStatus::Queued, Some(t.w.clock.now() + Duration::seconds(120))));
    t.w.later(Duration::seconds(121));
    let busy = [t.message(t.new, &busy[0].id), t.message(t.old, &busy[1].id)];
    script(Answer::Status { status: 200, body: r#"{"code": "INVALID_PHONE", "message": "no such number"}"#.into(), retry_after: None });
    let invalid = send("k3");
    script(Answer::Status { status: 400, body: "bad request".into(), retry_after: None });
    let refused = send("k4");
    assert_eq!(
        [&sent[1], &busy[1], &invalid[1], &refused[1]].map(|m| (m.status, m.attempts, m.provider_id.clone(), m.reason.clone())),
        [
            (MessageStatus::Sent, 1, Some("biz-1".into()), None),
            (MessageStatus::Sent, 2, Some("biz-3".into()), None),
            (MessageStatus::Failed, 1, None, Some("rejected by the provider: INVALID_PHONE: no such number".into())),
            (MessageStatus::Failed, 1, None, Some("rejected by the provider: provider answered 400: bad request".into())),
        ]
    );

    // The gateway's reports: the first message delivered (named by its id), the second failed (named
    // by the gateway's), one of no message of the shop's.
    let report = |shop: usize, messages: &[Message; 2]| {
        let body = json!([
            {"out_id": messages[shop].id, "biz_id": "biz-1", "status": "DELIVERED", "report_time": 1_793_606_400_000i64},
            {"biz_id": "biz-3", "status": "FAILED", "err_code": "UNDELIV", "report_time": 1_793_606_460_000i64},
            {"out_id": "nobody", "status": "DELIVERED"},
        ]);
        let shop = [t.new, t.old][shop];
        let token = t.w.store.connector_routes(shop).unwrap().into_iter().find(|r| r.channel == "sms").unwrap().receipt_token;
        let request =
            InboundRequest { method: "POST".into(), path: "/v1/receipts/x".into(), headers: vec![], body: body.to_string().into() };
        let applied = t.w.bus.receive_receipts(&token, request).unwrap();
        (applied.matched, applied.unknown)
    };
    assert_eq!(report(0, &sent), (2, 1));
    assert_eq!(report(1, &sent), (2, 1), "the 0.1 build's receipts are applied as the 0.2 build's");

    // Every message ends alike in both shops, and the gateways received the same requests.
    let view = |shop: i64, m: &Message| {
        let m = t.message(shop, &m.id);
        (m.status, m.reason, m.recipient, m.provider_id, m.attempts, m.next_attempt_at, m.sent_at, m.delivered_at)
    };
    for messages in [&sent, &busy, &invalid, &refused] {
        assert_eq!(view(t.old, &messages[1]), view(t.new, &messages[0]), "{}", messages[0].idempotency_key);
    }
    let delivered = t.message(t.old, &sent[1].id);
    assert_eq!((delivered.status, delivered.delivered_at), (MessageStatus::Delivered, DateTime::from_timestamp_millis(1_793_606_400_000)));
    let failed = t.message(t.old, &busy[1].id);
    assert_eq!(failed.status, MessageStatus::Failed);
    assert!(failed.reason.as_deref().is_some_and(|r| r.contains("UNDELIV")), "{failed:?}");
    let requests = |p: &Provider| -> Vec<(String, Option<String>, Option<String>, Value)> {
        p.received()
            .into_iter()
            .map(|r| {
                let mut body = r.json();
                // The message id, the shop's own: it must be the idempotency key.
                let id = body["out_id"].take();
                assert_eq!(id.as_str(), r.header("idempotency-key"), "{body}");
                (r.path.clone(), r.header("authorization").map(Into::into), r.header("content-type").map(Into::into), body)
            })
            .collect()
    };
    let posted = requests(&old);
    assert_eq!(posted.len(), 5, "k1, k2 twice, k3 and k4");
    assert_eq!(posted, requests(&new));
    assert_eq!(
        posted[0].3,
        json!({"phone": "+8613800000001", "template_code": "SMS_1", "params": {"name": "Ann"}, "sign_name": "【Kith】", "out_id": null})
    );
    let status = t.healthy(t.old, "legacy-connector");
    assert!(status.logs.iter().any(|l| l.message.ends_with("to the gateway: 429")), "{:?}", status.logs);

    // The 0.1 world's `wasi:http` goes through the same allow-list: configured for a host
    // the shop did not grant, both builds are refused before anything leaves.
    let elsewhere = |p: &Provider| json!({"endpoint": p.url("/sms").replace("127.0.0.1", "localhost"), "api_key": "k"});
    let grant = Grant { capabilities: [Capability::Config, Capability::Http, Capability::Log].into(), allowed_hosts: vec![new.host()] };
    t.enable(t.new, &plugins::SMS_HTTP, elsewhere(&new), Some(grant));
    t.enable(t.old, &plugins::LEGACY_CONNECTOR, elsewhere(&old), None);
    let denied = send("k5");
    assert_eq!(view(t.old, &denied[1]), view(t.new, &denied[0]));
    assert_ne!(denied[1].status, MessageStatus::Sent);
    assert!(denied[1].reason.as_deref().is_some_and(|r| r.contains("host not granted")), "{:?}", denied[1]);
    assert_eq!((old.received().len(), new.received().len()), (5, 5));
}
