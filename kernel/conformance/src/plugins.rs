//! Plugins through the core's `PluginService`: the catalogue (versions installed once, a
//! component kept by its hash), shops' subscriptions (enabled, changed, disabled, due),
//! runs over every customer in batches with a checkpoint (stale batches refused, failures
//! retried then failing the run, a failed run resumed, schedules by `run_every_hours`),
//! what a plugin keeps (key-value space, logs, call records) and what it reads of a shop
//! (customer and order snapshots, histories, the shop's context) against a plain
//! computation from the orders the case ingested. A plugin is plain Rust here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_core::delivery::{Attempt, Effects, FailurePolicy, PluginRunStep};
use kith_core::plugins::{Due, PutSubscription};
use kith_core::ports::{NewDeadLetter, ScoreWrite, TagSources, TierChange};
use kith_core::prelude::*;
use kith_core::{Actor, Error, Storage};
use kith_domain::model::OutcomeStatus;
use kith_domain::plugin::{Decision, Grant, LogLevel, LogLine, Manifest, PluginRunStatus, Reads, SubscriptionStatus};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

const DAY_MS: f64 = 86_400_000.0;

fn manifest_text(id: &str, version: &str, kind: &str, capability: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"{version}\"\nkind = \"{kind}\"\napi-version = \"0.2.0\"\n\
         description = \"Stands in for a plugin\"\nvendor = \"Kith\"\ncapabilities = [\"{capability}\"]\nevents = [\"order.paid\"]\n"
    )
}

fn manifest(id: &str, version: &str) -> Manifest {
    Manifest::parse(&manifest_text(id, version, "tag-rule", "tags:write")).unwrap()
}

fn cli() -> Actor {
    Actor::cli("conformance")
}

/// A stand-in component hash.
fn sha(tag: &str) -> String {
    format!("{tag:0>64}")
}

fn customer(b: &dyn Backend, shop: i64, phone: &str) -> i64 {
    let event = json!({"id": format!("u-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
    let report = b.ingest(shop, vec![event], day(0, 0));
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    report.outcomes[0].customer_id.unwrap()
}

/// (external id, phone, paid at, items as (sku, category, quantity, unit price))
type Order = (&'static str, &'static str, DateTime<Utc>, Vec<(&'static str, &'static str, i64, i64)>);

fn amount(order: &Order) -> i64 {
    order.3.iter().map(|(_, _, q, p)| q * p).sum()
}

fn order(b: &dyn Backend, shop: i64, o: &Order) -> i64 {
    let items: Vec<Value> =
        o.3.iter().map(|(sku, category, q, price)| json!({"sku": sku, "category": category, "quantity": q, "unit_price": price})).collect();
    let event = json!({"id": format!("e-{}", o.0), "type": "order.paid", "identities": [{"kind": "phone", "value": o.1}],
                       "order": {"id": o.0, "amount": amount(o), "paid_at": o.2.to_rfc3339(), "items": items}});
    let report = b.ingest(shop, vec![event], o.2);
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    report.outcomes[0].customer_id.unwrap()
}

fn attempt<'a>(shop: i64, plugin: &'a str, logs: &'a [LogLine], millis: u64, now: DateTime<Utc>) -> Attempt<'a> {
    Attempt { shop_id: shop, plugin_id: plugin, logs, duration: Duration::from_millis(millis), now }
}

fn score(customer: i64, model: &str, value: f64) -> Decision {
    Decision::SetScore { customer_id: customer, model: model.into(), value, label: None, explanation: "stand-in".into() }
}

/// A customer's score of the model, as the customer's read shows it.
fn score_of(s: &dyn Storage, shop: i64, customer: i64, model: &str) -> Option<f64> {
    match s.get_customer(shop, customer, 0).unwrap() {
        kith_core::customers::CustomerRead::Found(detail) => detail.customer.scores.iter().find(|sc| sc.model == model).map(|sc| sc.value),
        other => panic!("customer {customer}: {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(r: kith_core::Result<T>) {
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

fn conflict<T: std::fmt::Debug>(r: kith_core::Result<T>) {
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
}

pub fn plugins_catalogue_installs_each_version_once(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let v1 = manifest("scorer", "1.0.0");
    let (first, new) = s.install_plugin(&v1, b"component one", &sha("a1"), &cli()).unwrap();
    assert!(new);
    assert_eq!(
        (first.manifest.id.as_str(), first.manifest.version.to_string(), first.sha256.as_str(), first.size),
        ("scorer", "1.0.0".to_owned(), sha("a1").as_str(), 13)
    );
    // The same component again is a no-op; another one under the same version a conflict.
    let (again, new) = s.install_plugin(&v1, b"component one", &sha("a1"), &cli()).unwrap();
    assert!(!new);
    assert_eq!((again.sha256.as_str(), again.installed_at), (first.sha256.as_str(), first.installed_at));
    conflict(s.install_plugin(&v1, b"component two", &sha("b2"), &cli()));
    assert_eq!(s.plugin_version("scorer", "1.0.0").unwrap().sha256, sha("a1"), "the first component stays");
    not_found(s.plugin_wasm(&sha("b2")));
    for (id, version, tag, bytes) in
        [("scorer", "1.10.0", "c3", &b"ten"[..]), ("scorer", "1.2.0", "d4", &b"two"[..]), ("alpha", "2.0.0", "e5", &b"alpha"[..])]
    {
        assert!(s.install_plugin(&manifest(id, version), bytes, &sha(tag), &cli()).unwrap().1);
    }
    let listed: Vec<(String, String)> =
        s.list_plugins().unwrap().into_iter().map(|p| (p.manifest.id, p.manifest.version.to_string())).collect();
    let want = [("alpha", "2.0.0"), ("scorer", "1.0.0"), ("scorer", "1.2.0"), ("scorer", "1.10.0")];
    assert_eq!(listed, want.map(|(i, v)| (i.to_owned(), v.to_owned())), "by id, then version");
    let versions: Vec<(String, String)> =
        s.plugin_versions("scorer").unwrap().into_iter().map(|p| (p.manifest.version.to_string(), p.sha256)).collect();
    assert_eq!(versions, [("1.0.0".to_owned(), sha("a1")), ("1.2.0".to_owned(), sha("d4")), ("1.10.0".to_owned(), sha("c3"))]);
    assert!(s.plugin_versions("nobody").unwrap().is_empty());
    let v12 = s.plugin_version("scorer", "1.2.0").unwrap();
    assert_eq!((v12.sha256.as_str(), v12.size, v12.manifest.description.as_str()), (sha("d4").as_str(), 3, "Stands in for a plugin"));
    not_found(s.plugin_version("scorer", "9.9.9"));
    not_found(s.plugin_version("nobody", "1.0.0"));
    assert_eq!(s.plugin_wasm(&sha("a1")).unwrap(), b"component one");
    assert_eq!(s.plugin_wasm(&sha("c3")).unwrap(), b"ten");
}

pub fn plugins_subscriptions_are_enabled_changed_disabled_and_kept_in_their_shop(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Plugins", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    customer(&*b, shop, "13800000001");
    let m = manifest("rule", "1.0.0");
    s.install_plugin(&m, b"rule", &sha("r1"), &cli()).unwrap();
    let grant = Grant::all_requested(&m);
    let config = json!({"threshold": 3});
    let put = PutSubscription {
        plugin_id: "rule",
        version_req: "^1",
        version: "1.0.0",
        config: &config,
        grant: &grant,
        run_every_hours: None,
        channel: None,
    };
    let (sub, created) = s.put_subscription(shop, &put, &cli()).unwrap();
    assert!(created);
    assert_eq!(
        (sub.shop_id, sub.plugin_id.as_str(), sub.status, sub.version_req.as_str(), sub.version.as_str(), &sub.config),
        (shop, "rule", SubscriptionStatus::Enabled, "^1", "1.0.0", &config)
    );
    assert_eq!((sub.run_every_hours, sub.attempts, sub.consecutive_failures, sub.last_error.as_deref()), (None, 0, 0, None));
    assert_eq!(s.subscription(shop, "rule").unwrap(), sub);
    // A first enable starts at the newest event: what came before is not due.
    let every = ["*".to_owned()];
    assert!(s.events_for(shop, "rule", &every, sub.cursor, None, 100).unwrap().0.is_empty());
    let due = Due { shop_id: shop, plugin_id: "rule".into() };
    assert!(!s.due_subscriptions(day(1, 0)).unwrap().contains(&due));
    customer(&*b, shop, "13800000002");
    assert!(!s.events_for(shop, "rule", &every, sub.cursor, None, 100).unwrap().0.is_empty());
    assert!(s.due_subscriptions(day(1, 0)).unwrap().contains(&due), "an event past the cursor makes it due");

    // A change keeps the cursor and the creation.
    let config2 = json!({"threshold": 5});
    let changed = PutSubscription { version_req: "^1.0", config: &config2, run_every_hours: Some(12), ..put };
    let (sub2, created) = s.put_subscription(shop, &changed, &cli()).unwrap();
    assert!(!created);
    assert_eq!((sub2.version_req.as_str(), &sub2.config, sub2.run_every_hours), ("^1.0", &config2, Some(12)));
    assert_eq!((sub2.cursor, sub2.created_at), (sub.cursor, sub.created_at));

    b.enable_plugin(shop, &manifest_text("alpha", "1.0.0", "tag-rule", "tags:write"));
    let ids: Vec<String> = s.subscriptions(shop).unwrap().into_iter().map(|s| s.plugin_id).collect();
    assert_eq!(ids, ["alpha", "rule"], "by plugin id");

    // Another shop sees none of them.
    assert!(s.subscriptions(other).unwrap().is_empty());
    not_found(s.subscription(other, "rule"));
    not_found(s.disable_subscription(other, "rule", &cli()));
    not_found(s.start_run(other, "rule", &cli(), day(1, 0)));
    assert_eq!(s.subscription(shop, "rule").unwrap().status, SubscriptionStatus::Enabled, "untouched by the other shop's calls");

    // Disabled: not due; enabled again: due from its cursor.
    let off = s.disable_subscription(shop, "rule", &cli()).unwrap();
    assert_eq!((off.status, off.cursor), (SubscriptionStatus::Disabled, sub.cursor));
    assert!(!s.due_subscriptions(day(1, 0)).unwrap().contains(&due));
    let (on, created) = s.put_subscription(shop, &changed, &cli()).unwrap();
    assert!(!created);
    assert_eq!((on.status, on.cursor), (SubscriptionStatus::Enabled, sub.cursor), "resumes from the cursor");
    assert!(s.due_subscriptions(day(1, 0)).unwrap().contains(&due));

    // Each change is audited in the shop, newest first; the other shop's calls left nothing.
    let audited = |shop: i64| -> Vec<(String, Option<String>)> {
        s.list_audit(shop, None, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("plugin."))
            .map(|e| (e.action, e.target))
            .collect()
    };
    let want = [
        ("plugin.update", "rule"),
        ("plugin.disable", "rule"),
        ("plugin.enable", "alpha"),
        ("plugin.update", "rule"),
        ("plugin.enable", "rule"),
    ];
    assert_eq!(audited(shop), want.map(|(a, t)| (a.to_owned(), Some(t.to_owned()))));
    assert!(audited(other).is_empty());
}

pub fn plugins_runs_cover_every_customer_in_batches_and_resume_after_failing(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Runs", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    customer(&*b, other, "13900000001");
    let mut ids: Vec<i64> = (1..=5).map(|i| customer(&*b, shop, &format!("1380000000{i}"))).collect();
    ids.sort_unstable();
    b.enable_plugin(shop, &manifest_text("scorer", "1.0.0", "scoring-model", "scores:write"));
    // A score written before the run, of a customer the run will not score again.
    let from = s.subscription(shop, "scorer").unwrap().cursor;
    let old = [score(ids[0], "scorer", 1.0)];
    s.commit_delivery(&attempt(shop, "scorer", &[], 1, day(0, 5)), from, from, &Effects { decisions: &old, kv_writes: &[], chain: None })
        .unwrap();
    assert_eq!(score_of(s, shop, ids[0], "scorer"), Some(1.0));

    let run = s.start_run(shop, "scorer", &cli(), day(1, 0)).unwrap();
    assert_eq!((run.plugin_id.as_str(), run.status, run.total, run.done, run.checkpoint), ("scorer", PluginRunStatus::Running, 5, 0, 0));
    assert_eq!((run.attempts, run.error.as_deref(), run.created_at, run.finished_at), (0, None, day(1, 0), None));
    conflict(s.start_run(shop, "scorer", &cli(), day(1, 0)));
    assert_eq!(s.due_plugin_runs(day(1, 0)).unwrap(), [(shop, "scorer".to_owned(), run.id)]);

    // The first batch: two customers by id; the plugin scores only the second.
    let batch: Vec<i64> = s.customer_batch(shop, 0, 2, Reads::ALL).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(batch, ids[..2]);
    let step = PluginRunStep { run_id: run.id, from: 0, to: ids[1], processed: 2, finished: false };
    let decisions = [score(ids[1], "scorer", 2.0)];
    let effects = Effects { decisions: &decisions, kv_writes: &[], chain: None };
    let at = day(1, 0) + chrono::Duration::minutes(1);
    let moved = s.commit_run_batch(&attempt(shop, "scorer", &[], 5, at), &step, &effects).unwrap();
    assert_eq!((moved.status, moved.done, moved.checkpoint), (PluginRunStatus::Running, 2, ids[1]));
    conflict(s.commit_run_batch(&attempt(shop, "scorer", &[], 5, at), &step, &effects));
    // Another shop's worker cannot move this shop's run, nor fail it.
    let next = PluginRunStep { from: ids[1], to: ids[2], processed: 1, ..step };
    not_found(s.commit_run_batch(&attempt(other, "scorer", &[], 5, at), &next, &Effects { decisions: &[], kv_writes: &[], chain: None }));
    let policy = FailurePolicy { max_attempts: 2, ..FailurePolicy::default() };
    not_found(s.record_run_failure(&attempt(other, "scorer", &[], 5, at), run.id, "not mine", &policy));
    let kept = s.run(shop, "scorer", run.id).unwrap();
    assert_eq!((kept.done, kept.checkpoint, kept.attempts, kept.error), (2, ids[1], 0, None), "untouched by the other shop");
    assert_eq!(s.run(shop, "scorer", run.id).unwrap().done, 2, "a stale batch moves nothing");
    assert_eq!(score_of(s, shop, ids[1], "scorer"), Some(2.0));

    // Failures: retried after a backoff, then the run fails; resumed, it goes on from its checkpoint.
    let failed = s.record_run_failure(&attempt(shop, "scorer", &[], 5, day(1, 1)), run.id, "boom", &policy).unwrap();
    assert_eq!((failed.status, failed.attempts, failed.error.as_deref()), (PluginRunStatus::Running, 1, Some("boom")));
    assert!(s.due_plugin_runs(day(1, 1)).unwrap().is_empty(), "backing off");
    assert_eq!(s.due_plugin_runs(day(1, 1) + chrono::Duration::seconds(2)).unwrap(), [(shop, "scorer".to_owned(), run.id)]);
    let failed = s.record_run_failure(&attempt(shop, "scorer", &[], 5, day(1, 2)), run.id, "boom again", &policy).unwrap();
    assert_eq!((failed.status, failed.attempts, failed.error.as_deref()), (PluginRunStatus::Failed, 2, Some("boom again")));
    assert!(s.due_plugin_runs(day(2, 0)).unwrap().is_empty(), "a failed run is not due");
    not_found(s.resume_run(other, "scorer", run.id));
    let resumed = s.resume_run(shop, "scorer", run.id).unwrap();
    assert_eq!((resumed.status, resumed.done, resumed.checkpoint), (PluginRunStatus::Running, 2, ids[1]));
    conflict(s.resume_run(shop, "scorer", run.id));

    let rest: Vec<i64> = s.customer_batch(shop, resumed.checkpoint, 100, Reads::ALL).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(rest, ids[2..]);
    let decisions: Vec<Decision> = rest.iter().map(|&c| score(c, "scorer", c as f64)).collect();
    let step = PluginRunStep { run_id: run.id, from: ids[1], to: ids[4], processed: 3, finished: true };
    let effects = Effects { decisions: &decisions, kv_writes: &[], chain: None };
    let done = s.commit_run_batch(&attempt(shop, "scorer", &[], 5, day(2, 1)), &step, &effects).unwrap();
    assert_eq!((done.status, done.done, done.checkpoint, done.finished_at), (PluginRunStatus::Done, 5, ids[4], Some(day(2, 1))));
    assert!(s.due_plugin_runs(day(3, 0)).unwrap().is_empty());
    // The finished run's scores stand; the score it did not write again is gone.
    assert_eq!(score_of(s, shop, ids[0], "scorer"), None);
    assert_eq!(score_of(s, shop, ids[1], "scorer"), Some(2.0));
    for &c in &ids[2..] {
        assert_eq!(score_of(s, shop, c, "scorer"), Some(c as f64));
    }

    let second = s.start_run(shop, "scorer", &cli(), day(3, 0)).unwrap();
    let listed: Vec<(i64, PluginRunStatus)> = s.runs(shop, "scorer").unwrap().into_iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(listed, [(second.id, PluginRunStatus::Running), (run.id, PluginRunStatus::Done)], "newest first");
    not_found(s.run(other, "scorer", run.id));
    assert!(s.runs(other, "scorer").unwrap().is_empty());
}

pub fn plugins_scheduled_runs_start_every_n_hours(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Schedules", "Asia/Shanghai");
    let ids: Vec<i64> = (1..=2).map(|i| customer(&*b, shop, &format!("1380000000{i}"))).collect();
    let last = *ids.iter().max().unwrap();
    let m = Manifest::parse(&manifest_text("nightly", "1.0.0", "scoring-model", "scores:write")).unwrap();
    s.install_plugin(&m, b"nightly", &sha("n1"), &cli()).unwrap();
    let grant = Grant::all_requested(&m);
    let put = PutSubscription {
        plugin_id: "nightly",
        version_req: "1.0.0",
        version: "1.0.0",
        config: &Value::Null,
        grant: &grant,
        run_every_hours: Some(6),
        channel: None,
    };
    s.put_subscription(shop, &put, &cli()).unwrap();
    b.enable_plugin(shop, &manifest_text("manual", "1.0.0", "scoring-model", "scores:write"));
    let finish = |run: i64, at: DateTime<Utc>| {
        let step = PluginRunStep { run_id: run, from: 0, to: last, processed: 2, finished: true };
        let done =
            s.commit_run_batch(&attempt(shop, "nightly", &[], 1, at), &step, &Effects { decisions: &[], kv_writes: &[], chain: None });
        assert_eq!(done.unwrap().status, PluginRunStatus::Done);
    };

    assert_eq!(s.start_scheduled_runs(day(1, 0)).unwrap(), 1, "never run: due");
    let runs = s.runs(shop, "nightly").unwrap();
    assert_eq!((runs.len(), runs[0].created_at, runs[0].total), (1, day(1, 0), 2));
    assert!(s.runs(shop, "manual").unwrap().is_empty(), "no schedule, no run");
    assert_eq!(s.start_scheduled_runs(day(1, 0)).unwrap(), 0, "one is running");
    finish(runs[0].id, day(1, 1));
    assert_eq!(s.start_scheduled_runs(day(1, 5)).unwrap(), 0, "started five hours ago");
    assert_eq!(s.start_scheduled_runs(day(1, 7)).unwrap(), 1);
    let runs = s.runs(shop, "nightly").unwrap();
    assert_eq!(runs.iter().map(|r| r.created_at).collect::<Vec<_>>(), [day(1, 7), day(1, 0)]);
    finish(runs[0].id, day(1, 8));
    assert_eq!(s.start_scheduled_runs(day(1, 14)).unwrap(), 1);
    let third = s.runs(shop, "nightly").unwrap()[0].id;
    assert_eq!(s.due_plugin_runs(day(1, 14)).unwrap(), [(shop, "nightly".to_owned(), third)]);
    s.disable_subscription(shop, "nightly", &cli()).unwrap();
    assert!(s.due_plugin_runs(day(1, 14)).unwrap().is_empty(), "a disabled plugin's run waits");
    finish(third, day(1, 15));
    assert_eq!(s.start_scheduled_runs(day(3, 0)).unwrap(), 0, "a disabled plugin is not run");
    assert_eq!(s.runs(shop, "nightly").unwrap().len(), 3);
}

pub fn plugins_keep_their_key_values_logs_and_call_records(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Kept", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    b.enable_plugin(shop, &manifest_text("rule", "1.0.0", "tag-rule", "tags:write"));
    b.enable_plugin(other, &manifest_text("rule", "1.0.0", "tag-rule", "tags:write"));
    let line = |level, message: &str| LogLine { level, message: message.into() };
    let from = s.subscription(shop, "rule").unwrap().cursor;
    let kv = [("a".to_owned(), Some(b"12345".to_vec())), ("bb".to_owned(), Some(b"xy".to_vec()))];
    let logs = [line(LogLevel::Info, "one"), line(LogLevel::Warn, "two")];
    let effects = Effects { decisions: &[], kv_writes: &kv, chain: None };
    s.commit_delivery(&attempt(shop, "rule", &logs, 10, day(1, 0)), from, from, &effects).unwrap();
    // Keys and bytes of keys and values together.
    assert_eq!(s.plugin_kv_usage(shop, "rule").unwrap(), (2, 1 + 5 + 2 + 2));
    assert_eq!(s.plugin_kv_get(shop, "rule", "a").unwrap().as_deref(), Some(&b"12345"[..]));
    let kv = [("a".to_owned(), None), ("ccc".to_owned(), Some(b"z".to_vec()))];
    let logs = [line(LogLevel::Error, "three")];
    let effects = Effects { decisions: &[], kv_writes: &kv, chain: None };
    s.commit_delivery(&attempt(shop, "rule", &logs, 30, day(1, 1)), from, from, &effects).unwrap();
    assert_eq!(s.plugin_kv_usage(shop, "rule").unwrap(), (2, 2 + 2 + 3 + 1));
    assert_eq!(s.plugin_kv_get(shop, "rule", "a").unwrap(), None);
    let kv = [("bb".to_owned(), Some(b"0123456789".to_vec()))];
    s.commit_delivery(&attempt(shop, "rule", &[], 10, day(1, 1)), from, from, &Effects { decisions: &[], kv_writes: &kv, chain: None })
        .unwrap();
    assert_eq!(s.plugin_kv_usage(shop, "rule").unwrap(), (2, 2 + 10 + 3 + 1), "an overwritten value counts once, at its new size");
    assert_eq!(s.plugin_kv_usage(other, "rule").unwrap(), (0, 0), "another shop's space is its own");
    assert_eq!(s.plugin_kv_get(other, "rule", "bb").unwrap(), None);

    let logs = [line(LogLevel::Info, "four")];
    s.record_call(&attempt(shop, "rule", &logs, 20, day(1, 2)), Some("first error")).unwrap();
    s.record_call(&attempt(shop, "rule", &[], 40, day(1, 3)), None).unwrap();
    s.record_call(&attempt(shop, "rule", &[], 50, day(1, 4)), Some("second error")).unwrap();

    let all: Vec<(LogLevel, String)> = s.plugin_logs(shop, "rule", None, 10).unwrap().into_iter().map(|l| (l.level, l.message)).collect();
    let want = [(LogLevel::Info, "four"), (LogLevel::Error, "three"), (LogLevel::Warn, "two"), (LogLevel::Info, "one")];
    assert_eq!(all, want.map(|(l, m)| (l, m.to_owned())), "newest first");
    let page = s.plugin_logs(shop, "rule", None, 2).unwrap();
    assert_eq!(page.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["four", "three"]);
    let next = s.plugin_logs(shop, "rule", Some(page[1].id), 2).unwrap();
    assert_eq!(next.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["two", "one"]);
    assert!(s.plugin_logs(other, "rule", None, 10).unwrap().is_empty());

    // Six calls of 10, 30, 10, 20, 40 and 50 ms: nearest-rank percentiles.
    let mut durations = [10.0, 30.0, 10.0, 20.0, 40.0, 50.0];
    durations.sort_by(f64::total_cmp);
    let rank = |p: f64| durations[((p * 6.0_f64).ceil() as usize).clamp(1, 6) - 1];
    let stats = s.call_stats(shop, "rule").unwrap();
    assert_eq!((stats.calls, stats.failures, stats.p50_ms, stats.p99_ms), (6, 2, Some(rank(0.5)), Some(rank(0.99))));
    assert_eq!(stats.last_errors, ["second error", "first error"]);
    let theirs = s.call_stats(other, "rule").unwrap();
    assert_eq!((theirs.calls, theirs.p50_ms), (0, None));
}

/// Nearest-rank quintiles and the average, as `ShopContext` describes them.
fn spread(mut values: Vec<f64>) -> (f64, Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let average = values.iter().sum::<f64>() / n as f64;
    let quintiles = [1, 2, 3, 4].map(|k| values[(k * n).div_ceil(5).max(1) - 1]).to_vec();
    (average, quintiles)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

pub fn plugins_read_snapshots_histories_and_the_shops_context_of_its_orders(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Reads", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    let orders: Vec<Order> = vec![
        ("T1", "13800000001", day(1, 2), vec![("A", "tea", 2, 5000)]),
        ("T3", "13800000002", day(10, 2), vec![("B", "tea", 1, 8000)]),
        ("T2", "13800000001", day(20, 2), vec![("C", "snack", 1, 3000), ("D", "snack", 2, 1500)]),
        ("T4", "13800000003", day(25, 2), vec![("A", "tea", 1, 5000)]),
    ];
    let mut who: BTreeMap<&str, i64> = BTreeMap::new();
    for o in &orders {
        who.insert(o.1, order(&*b, shop, o));
    }
    // Behaviours of the first buyer: (kind, sku, category, at).
    let done: [(&str, &str, &str, DateTime<Utc>); 3] =
        [("view", "C", "snack", day(2, 0)), ("view", "A", "tea", day(6, 0)), ("cart", "B", "tea", day(8, 0))];
    let events: Vec<Value> = done
        .iter()
        .enumerate()
        .map(|(i, (kind, sku, category, at))| {
            json!({"id": format!("b{i}"), "type": "behaviour", "identities": [{"kind": "phone", "value": "13800000001"}],
                   "occurred_at": at.to_rfc3339(), "behaviour": {"kind": kind, "sku": sku, "category": category}})
        })
        .collect();
    let report = b.ingest(shop, events, day(9, 0));
    assert!(report.outcomes.iter().all(|o| o.status == OutcomeStatus::Accepted), "{:?}", report.outcomes);
    let idle = customer(&*b, shop, "13800000009");
    let theirs = order(&*b, other, &("T-other", "13900000001", day(3, 0), vec![("A", "tea", 1, 5000)]));

    // Customer snapshots: the shop's own, with stats from their orders.
    let ids: Vec<i64> = who.values().copied().chain([idle, theirs]).collect();
    let found = s.snapshots(shop, &ids, Reads::ALL).unwrap();
    let keys: BTreeSet<i64> = found.keys().copied().collect();
    assert_eq!(keys, who.values().copied().chain([idle]).collect(), "another shop's customer is left out");
    for (phone, id) in &who {
        let mine: Vec<&Order> = orders.iter().filter(|o| o.1 == *phone).collect();
        let stats = &found[id].stats;
        assert_eq!(stats.order_count, mine.len() as i64, "{phone}");
        assert_eq!(stats.total_spent, mine.iter().map(|o| amount(o)).sum::<i64>(), "{phone}");
        assert_eq!(stats.last_order_at, mine.iter().map(|o| o.2).max(), "{phone}");
    }
    assert_eq!((found[&idle].stats.order_count, found[&idle].stats.total_spent), (0, 0));

    // Order snapshots by the shop's ids.
    let snaps = s.order_snapshots(shop, &["T1", "T2", "nope", "T-other"]).unwrap();
    assert_eq!(snaps.keys().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["T1", "T2"]));
    for o in orders.iter().filter(|o| snaps.contains_key(o.0)) {
        let snap = &snaps[o.0];
        assert_eq!(
            (snap.customer_id, snap.amount, snap.refunded_amount, snap.paid_at_ms),
            (who[o.1], amount(o), 0, o.2.timestamp_millis())
        );
        let items: Vec<(String, Option<String>, u32, i64)> =
            snap.items.iter().map(|i| (i.sku.clone(), i.category.clone(), i.quantity, i.unit_price)).collect();
        let want: Vec<(String, Option<String>, u32, i64)> =
            o.3.iter().map(|(sku, c, q, p)| (sku.to_string(), Some(c.to_string()), *q as u32, *p)).collect();
        assert_eq!(items, want, "{}", o.0);
    }

    // Histories, in the order asked, orders newest first since the given time.
    let a = who["13800000001"];
    let bb = who["13800000002"];
    let since = day(5, 0).timestamp_millis();
    let histories = s.histories(shop, &[bb, theirs, a, idle], since).unwrap();
    let got: Vec<(i64, Vec<String>)> =
        histories.iter().map(|h| (h.customer_id, h.orders.iter().map(|o| o.external_id.clone()).collect())).collect();
    let expect = |id: i64, since: DateTime<Utc>| {
        let mut mine: Vec<&Order> = orders.iter().filter(|o| who[o.1] == id && o.2 >= since).collect();
        mine.sort_by_key(|o| std::cmp::Reverse(o.2));
        (id, mine.iter().map(|o| o.0.to_owned()).collect::<Vec<_>>())
    };
    assert_eq!(got, [expect(bb, day(5, 0)), expect(a, day(5, 0)), (idle, vec![])]);
    let seen: Vec<(String, Option<String>, Option<String>, i64)> =
        histories[1].behaviours.iter().map(|x| (x.kind.clone(), x.sku.clone(), x.category.clone(), x.occurred_at_ms)).collect();
    let mut want: Vec<_> = done
        .iter()
        .filter(|d| d.3.timestamp_millis() >= since)
        .map(|(k, sku, c, at)| (k.to_string(), Some(sku.to_string()), Some(c.to_string()), at.timestamp_millis()))
        .collect();
    want.reverse();
    assert_eq!(seen, want, "behaviours since the time, newest first");
    assert!(histories[0].behaviours.is_empty() && !histories[0].truncated && !histories[1].truncated);
    let all = s.histories(shop, &[a], 0).unwrap();
    assert_eq!(all[0].orders.iter().map(|o| o.external_id.as_str()).collect::<Vec<_>>(), ["T2", "T1"]);

    // The shop's context: distributions over its buyers, all time and over a window.
    let now = day(30, 0);
    let check = |window: Option<u32>, owner: &dyn Fn(&str) -> i64, customers: u64| {
        let since = window.map(|d| now - chrono::Duration::days(i64::from(d)));
        let counted: Vec<&Order> = orders.iter().filter(|o| since.is_none_or(|since| o.2 >= since)).collect();
        let mut per: BTreeMap<i64, (f64, f64, DateTime<Utc>)> = BTreeMap::new();
        for o in &counted {
            let e = per.entry(owner(o.1)).or_insert((0.0, 0.0, o.2));
            e.0 += amount(o) as f64;
            e.1 += 1.0;
            e.2 = e.2.max(o.2);
        }
        let context = s.shop_context(shop, now, window).unwrap();
        assert_eq!((context.shop_id, context.now_ms, context.window_days), (shop, now.timestamp_millis(), window));
        assert_eq!(context.time_zone, "Asia/Shanghai");
        assert_eq!((context.customer_count, context.buyer_count), (customers, per.len() as u64), "{window:?}");
        let total: f64 = counted.iter().map(|o| amount(o) as f64).sum();
        assert!(close(context.average_order_value, total / counted.len() as f64), "{window:?}: {}", context.average_order_value);
        for (got, values) in [
            (&context.monetary, per.values().map(|v| v.0).collect::<Vec<_>>()),
            (&context.frequency, per.values().map(|v| v.1).collect()),
            (&context.recency_days, per.values().map(|v| (now - v.2).num_milliseconds() as f64 / DAY_MS).collect()),
        ] {
            let (average, quintiles) = spread(values);
            assert!(close(got.average, average), "{window:?}: {got:?} against {average}");
            assert_eq!(got.quintiles.len(), 4);
            assert!(got.quintiles.iter().zip(&quintiles).all(|(g, w)| close(*g, *w)), "{window:?}: {got:?} against {quintiles:?}");
        }
    };
    check(None, &|phone| who[phone], 4);
    check(Some(15), &|phone| who[phone], 4);

    // The second buyer merged into the first: their id reads the survivor, their orders move.
    s.write(|tx| kith_core::merge::merge(tx, shop, a, bb, "same person", &cli(), day(26, 0))).unwrap();
    let merged = s.snapshots(shop, &[bb], Reads::ALL).unwrap();
    let survivor_orders = orders.iter().filter(|o| o.1 != "13800000003").count() as i64;
    assert_eq!((merged[&bb].id, merged[&bb].stats.order_count), (a, survivor_orders));
    let history = s.histories(shop, &[bb], 0).unwrap();
    assert_eq!(history[0].customer_id, bb, "the history is of the id asked for");
    assert_eq!(history[0].orders.iter().map(|o| o.external_id.as_str()).collect::<Vec<_>>(), ["T2", "T3", "T1"]);
    let owner = |phone: &str| if phone == "13800000002" { a } else { who[phone] };
    check(None, &owner, 3);
    check(Some(15), &owner, 3);
}

pub fn plugins_deliveries_take_their_event_types_after_the_cursor(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Events", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    for id in ["rule", "echo"] {
        b.enable_plugin(shop, &manifest_text(id, "1.0.0", "tag-rule", "tags:write"));
    }
    let start = s.subscription(shop, "rule").unwrap().cursor;
    let c1 = order(&*b, shop, &("T1", "13800000001", day(1, 0), vec![("A", "tea", 1, 5000)]));
    let seen = json!({"id": "b1", "type": "behaviour", "identities": [{"kind": "phone", "value": "13800000001"}],
                      "occurred_at": day(1, 1).to_rfc3339(), "behaviour": {"kind": "view", "sku": "B", "category": "tea"}});
    b.ingest(shop, vec![seen], day(1, 1));
    let theirs = order(&*b, other, &("T9", "13900000001", day(1, 1), vec![("A", "tea", 1, 5000)]));
    let c2 = order(&*b, shop, &("T2", "13800000002", day(1, 2), vec![("C", "snack", 1, 3000)]));

    // Every event after the cursor, in the order of the shop's log.
    let every = ["*".to_owned()];
    let (all, to) = s.events_for(shop, "rule", &every, start, None, 100).unwrap();
    let kinds: Vec<(&str, Option<i64>)> = all.iter().map(|e| (e.kind.as_str(), e.customer_id)).collect();
    let logged = [
        ("customer.created", Some(c1)),
        ("order.paid", Some(c1)),
        ("behaviour.recorded", Some(c1)),
        ("customer.created", Some(c2)),
        ("order.paid", Some(c2)),
    ];
    assert_eq!(kinds, logged, "what the case's ingests log, in their order");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq) && all[0].seq > start);
    assert!(all.iter().all(|e| e.customer_id.is_some() && e.customer_id != Some(theirs)), "{all:?}");
    assert_eq!(to, all.last().unwrap().seq, "the cursor may move to the end of what was looked at");
    let paid: Vec<&kith_domain::plugin::EventSnapshot> = all.iter().filter(|e| e.kind == "order.paid").collect();
    assert_eq!(paid.iter().map(|e| e.order_id.as_deref()).collect::<Vec<_>>(), [Some("T1"), Some("T2")]);
    assert_eq!(paid[0].customer_id, Some(c1));

    // By type, with a limit, up to a sequence.
    let types = ["order.paid".to_owned()];
    let (typed, _) = s.events_for(shop, "rule", &types, start, None, 100).unwrap();
    assert_eq!(typed.iter().map(|e| e.seq).collect::<Vec<_>>(), paid.iter().map(|e| e.seq).collect::<Vec<_>>());
    let (one, to) = s.events_for(shop, "rule", &types, start, None, 1).unwrap();
    assert_eq!((one.len(), to), (1, paid[0].seq), "a full page moves the cursor to its last event");
    let (upto, to) = s.events_for(shop, "rule", &every, start, Some(all[1].seq), 100).unwrap();
    assert_eq!((upto.iter().map(|e| e.seq).collect::<Vec<_>>(), to), (vec![all[0].seq, all[1].seq], all[1].seq));
    let (none, to) = s.events_for(shop, "rule", &["nothing.such".to_owned()], start, None, 100).unwrap();
    assert_eq!((none.len(), to), (0, all.last().unwrap().seq), "nothing taken: past all that was looked at");

    // A plugin does not take the events it emitted; another plugin does.
    let head = all.last().unwrap().seq;
    let echo_from = s.subscription(shop, "echo").unwrap().cursor;
    let emit = [Decision::EmitEvent { customer_id: Some(c1), event_type: "plugin.echo.saw".into(), payload: r#"{"n": 1}"#.into() }];
    let effects = Effects { decisions: &emit, kv_writes: &[], chain: None };
    s.commit_delivery(&attempt(shop, "echo", &[], 1, day(1, 3)), echo_from, head, &effects).unwrap();
    assert_eq!(s.subscription(shop, "echo").unwrap().cursor, head);
    assert!(s.events_for(shop, "echo", &every, head, None, 100).unwrap().0.is_empty());
    let (by_rule, _) = s.events_for(shop, "rule", &every, head, None, 100).unwrap();
    assert_eq!(by_rule.iter().map(|e| (e.kind.as_str(), e.customer_id)).collect::<Vec<_>>(), [("plugin.echo.saw", Some(c1))]);

    // Skipping moves the cursor from where it is only.
    s.advance_cursor(shop, "rule", start, head).unwrap();
    assert_eq!(s.subscription(shop, "rule").unwrap().cursor, head);
    s.advance_cursor(shop, "rule", start, head + 1).unwrap();
    assert_eq!(s.subscription(shop, "rule").unwrap().cursor, head, "not at `from`: nothing");
    // The other shop's log holds its own events only, none of this shop's.
    let (their_log, _) = s.events_for(other, "rule", &every, 0, None, 100).unwrap();
    let their_kinds: Vec<(&str, Option<i64>)> = their_log.iter().map(|e| (e.kind.as_str(), e.customer_id)).collect();
    assert_eq!(their_kinds, [("customer.created", Some(theirs)), ("order.paid", Some(theirs))]);
}

/// The plugins' ports (and the tags', scores' and tiers' they write through) answer within
/// the shop they are given: another shop's id with this shop's customer, run or dead letter
/// reads nothing and writes nothing, and each row reads back with its own shop unchanged.
pub fn plugins_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let b = factory.fresh();
    let s = b.storage();
    let shop = b.create_shop("Mine", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    let c = order(&*b, shop, &("T1", "13800000001", day(1, 2), vec![("A", "tea", 2, 5000)]));
    let behaviour = json!({"id": "b1", "type": "behaviour", "identities": [{"kind": "phone", "value": "13800000001"}],
                           "occurred_at": day(1, 3).to_rfc3339(), "behaviour": {"kind": "view", "sku": "A", "category": "tea"}});
    assert_eq!(b.ingest(shop, vec![behaviour], day(1, 3)).outcomes[0].status, OutcomeStatus::Accepted);
    order(&*b, other, &("T1", "13800000001", day(1, 2), vec![("B", "tea", 1, 100)]));
    b.enable_plugin(shop, &manifest_text("scorer", "1.0.0", "scoring-model", "scores:write"));
    let at = day(2, 0);
    let dead_letter = s
        .write(|tx| {
            let score = ScoreWrite { shop_id: shop, customer_id: c, model: "scorer", value: 0.5, label: None, explanation: "x", at };
            tx.scores_writer().upsert(&score)?;
            let tier = TierChange { shop_id: shop, customer_id: c, from: None, to: "gold", reason: "spent", source: "scorer", at };
            tx.tiers_writer().change(&tier)?;
            tx.tags_writer().insert(shop, c, "vip", "scorer", Some("why"), at)?;
            let letter = NewDeadLetter {
                shop_id: shop,
                plugin_id: "scorer",
                version: "1.0.0",
                first_seq: 1,
                last_seq: 2,
                attempts: 1,
                error: "boom",
                at,
            };
            tx.plugins_writer().add_dead_letter(&letter)
        })
        .unwrap();
    let run = s.start_run(shop, "scorer", &cli(), at).unwrap();
    let since = day(0, 0);

    // In its own shop, each read finds what the case wrote.
    s.write(|tx| {
        let (orders, truncated) = tx.plugins().recent_orders(shop, c, since)?;
        assert_eq!((orders.len(), orders[0].items.len(), truncated), (1, 1, false));
        assert_eq!(tx.plugins().recent_behaviours(shop, c, since, 10)?.len(), 1);
        assert_eq!(tx.scores_writer().value(shop, c, "scorer")?, Some(0.5));
        assert_eq!(tx.tiers_writer().tier(shop, c)?.as_deref(), Some("gold"));
        assert!(tx.tags().held_by(shop, c, "vip", "scorer")?);
        assert_eq!(tx.tags().count_by(shop, c, "scorer")?, 1);
        assert_eq!(tx.tags().get(shop, c, "vip", "scorer")?.reason.as_deref(), Some("why"));
        Ok(())
    })
    .unwrap();
    // Another shop's id with this shop's customer reads nothing.
    s.write(|tx| {
        assert_eq!(tx.plugins().recent_orders(other, c, since)?, (vec![], false));
        assert!(tx.plugins().recent_behaviours(other, c, since, 10)?.is_empty());
        assert_eq!(tx.scores_writer().value(other, c, "scorer")?, None);
        assert_eq!(tx.tiers_writer().tier(other, c)?, None);
        assert!(!tx.tags().held_by(other, c, "vip", "scorer")?);
        assert_eq!(tx.tags().count_by(other, c, "scorer")?, 0);
        not_found(tx.tags().get(other, c, "vip", "scorer"));
        Ok(())
    })
    .unwrap();

    // Nor does it write: the customer's tags and `updated_at`, the run, the dead letter.
    let updated = |s: &dyn Storage| match s.get_customer(shop, c, 0).unwrap() {
        kith_core::customers::CustomerRead::Found(detail) => detail.customer.updated_at,
        other => panic!("the shop's customer: {other:?}"),
    };
    let touched = updated(s);
    let letter = s.dead_letters(shop, "scorer").unwrap();
    let later = day(3, 0);
    let (reworded, deleted, advanced) = s
        .write(|tx| {
            let reworded = tx.tags_writer().reword(other, c, "vip", "scorer", Some("not mine"))?;
            let deleted = tx.tags_writer().delete(other, c, "vip", TagSources::One("scorer"))?;
            tx.customers_writer().touch(other, c, later)?;
            tx.plugins_writer().redrive_failed(other, dead_letter, "not mine")?;
            let advanced = tx.plugins_writer().advance_run(other, run.id, 0, 9, 1, false, later)?;
            tx.plugins_writer().run_failed(other, run.id, 5, "not mine", later, true, later)?;
            Ok((reworded, deleted, advanced))
        })
        .unwrap();
    assert!(!reworded && deleted.is_empty() && !advanced);
    assert_eq!(s.read(|tx| tx.tags().get(shop, c, "vip", "scorer")).unwrap().reason.as_deref(), Some("why"));
    assert_eq!(updated(s), touched, "the customer's updated_at did not move");
    assert_eq!(s.dead_letters(shop, "scorer").unwrap(), letter, "the dead letter is unchanged");
    assert_eq!(s.run(shop, "scorer", run.id).unwrap(), run, "the run is unchanged");
    // A failed run is not resumed through another shop's id.
    s.write(|tx| tx.plugins_writer().run_failed(shop, run.id, 1, "boom", later, true, later)).unwrap();
    let failed = s.run(shop, "scorer", run.id).unwrap();
    assert_eq!(failed.status, PluginRunStatus::Failed);
    s.write(|tx| tx.plugins_writer().resume_run(other, run.id)).unwrap();
    assert_eq!(s.run(shop, "scorer", run.id).unwrap(), failed, "still failed");
    // With their own shop, the writes do change them.
    s.write(|tx| {
        tx.plugins_writer().resume_run(shop, run.id)?;
        tx.plugins_writer().redrive_failed(shop, dead_letter, "again")?;
        tx.customers_writer().touch(shop, c, later)
    })
    .unwrap();
    assert_eq!(s.run(shop, "scorer", run.id).unwrap().status, PluginRunStatus::Running);
    assert_eq!(s.dead_letters(shop, "scorer").unwrap()[0].error, "again");
    assert_eq!(updated(s), later);
}
