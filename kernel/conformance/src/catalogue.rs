//! The catalogue ports the feature cases do not reach, through the core's services: shops
//! (created trimmed and audited, read, listed by id, found by exact name), API keys (a
//! token authenticates as its key until revoked, at once, even when remembered; keys are
//! listed and revoked within their shop), the audit log (recorded entries read back
//! newest first, paged, by shop), the settings sections (export, loyalty, messaging:
//! defaults, round trips, audited, kept apart) and the event log's positions (each shop's
//! own 1, 2, 3 … beside the global sequence numbers, paged, never another shop's).

use chrono::{DateTime, Utc};
use kith_core::audit::NewAudit;
use kith_core::prelude::*;
use kith_core::{Actor, Error, Storage};
use kith_domain::auth::{Role, Scope};
use kith_domain::loyalty::{LoyaltySettings, RefundPolicy};
use kith_domain::messaging::{ChannelPolicy, MessagingSettings};
use kith_domain::model::{AuditEntry, ExportPolicy, NewKey, NewShop};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

fn actor() -> Actor {
    Actor::cli("conformance")
}

/// A shop to create in Shanghai's zone, in yuan.
fn new_shop(name: &str) -> NewShop {
    NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() }
}

/// A shop's whole audit log, newest first.
fn audit_log(s: &dyn Storage, shop: i64) -> Vec<AuditEntry> {
    s.list_audit(shop, None, 100_000).unwrap()
}

/// A shop's audit log as (action, target, detail), newest first.
fn actions(s: &dyn Storage, shop: i64) -> Vec<(String, Option<String>, Value)> {
    audit_log(s, shop).into_iter().map(|e| (e.action, e.target, e.detail)).collect()
}

fn not_found<T: std::fmt::Debug>(result: kith_core::Result<T>) {
    assert!(matches!(result, Err(Error::NotFound(_))), "expected not found, got {result:?}");
}

fn invalid<T: std::fmt::Debug>(result: kith_core::Result<T>, field: &str) {
    match result {
        Err(Error::Invalid(e)) => assert_eq!(e.field, field, "{e:?}"),
        other => panic!("expected an invalid {field}, got {other:?}"),
    }
}

/// A shop is created with its name trimmed and the rest as given, audited in its own log;
/// it reads back the same by id, in the list (by id) and by its exact name (the first of
/// that name); an unknown id is not found and an invalid shop is refused with its field.
pub fn shops_are_created_trimmed_audited_and_read_back(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    assert_eq!(s.list_shops().unwrap(), vec![]);
    assert_eq!(s.find_shop_by_name("Tea House").unwrap(), None);

    let before = Utc::now() - chrono::Duration::seconds(1);
    let tea = s.create_shop(&new_shop("  Tea House \t"), &actor()).unwrap();
    let mut zone = new_shop("Berlin Bakery");
    zone.time_zone = "Europe/Berlin".into();
    zone.currency = "EUR".into();
    zone.region = "DE".into();
    let bakery = s.create_shop(&zone, &actor()).unwrap();
    // Names need not be unique: finding by name answers the first.
    let tea_again = s.create_shop(&new_shop("Tea House"), &actor()).unwrap();
    let after = Utc::now() + chrono::Duration::seconds(1);

    assert_eq!(tea.name, "Tea House");
    assert_eq!((tea.time_zone.as_str(), tea.currency.as_str(), tea.region.as_str()), ("Asia/Shanghai", "CNY", "CN"));
    assert_eq!((bakery.name.as_str(), bakery.time_zone.as_str()), ("Berlin Bakery", "Europe/Berlin"));
    assert_eq!((bakery.currency.as_str(), bakery.region.as_str()), ("EUR", "DE"));
    for shop in [&tea, &bakery, &tea_again] {
        assert!(before <= shop.created_at && shop.created_at <= after, "{shop:?} created at the time of its creation");
    }
    assert!(tea.id < bakery.id && bakery.id < tea_again.id, "ids grow in the order of creation");

    assert_eq!(s.get_shop(tea.id).unwrap(), tea);
    assert_eq!(s.get_shop(bakery.id).unwrap(), bakery);
    assert_eq!(s.list_shops().unwrap(), vec![tea.clone(), bakery.clone(), tea_again.clone()]);
    assert_eq!(s.find_shop_by_name("Tea House").unwrap(), Some(tea.clone()));
    assert_eq!(s.find_shop_by_name("Berlin Bakery").unwrap(), Some(bakery.clone()));
    assert_eq!(s.find_shop_by_name("tea house").unwrap(), None, "the name is matched exactly");
    assert_eq!(s.find_shop_by_name("  Tea House \t").unwrap(), None, "the stored name is the trimmed one");
    assert_eq!(s.find_shop_by_name("Tea").unwrap(), None);

    let unknown = tea.id.max(bakery.id).max(tea_again.id) + 1;
    not_found(s.get_shop(unknown));

    // Each creation is in the new shop's own log, once.
    assert_eq!(actions(s, tea.id), vec![("shop.create".into(), Some(format!("shop:{}", tea.id)), json!({"name": "Tea House"}))]);
    assert_eq!(actions(s, bakery.id), vec![("shop.create".into(), Some(format!("shop:{}", bakery.id)), json!({"name": "Berlin Bakery"}))]);
    assert_eq!(audit_log(s, tea.id)[0].key_id, None, "a CLI write has no key");

    invalid(s.create_shop(&new_shop("   "), &actor()), "name");
    let mut bad_zone = new_shop("Nowhere");
    bad_zone.time_zone = "Mars/Olympus".into();
    invalid(s.create_shop(&bad_zone, &actor()), "time_zone");
    assert_eq!(s.list_shops().unwrap().len(), 3, "a refused shop is not stored");
}

/// A key's token authenticates as the key (its role, scopes and shop) until the key is
/// revoked, and not a moment after, even when it authenticated just before; a wrong
/// secret, an unknown id or a malformed token authenticates as nobody. Keys are listed by
/// shop, and a shop cannot see or revoke another shop's key.
pub fn keys_authenticate_until_revoked_within_their_shop(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let a = backend.create_shop("Key shop A", "Asia/Shanghai");
    let b = backend.create_shop("Key shop B", "Asia/Shanghai");
    let key = |shop: Option<i64>, name: &str, role: Role, scopes: Option<Vec<Scope>>| {
        s.create_key(&NewKey { shop_id: shop, name: name.into(), role, scopes }, &actor()).unwrap()
    };

    let owner = key(Some(a), " Owner of A ", Role::Owner, None);
    let asked = vec![Scope::EventsWrite, Scope::CustomersRead, Scope::EventsWrite];
    let app = key(Some(a), "App of A", Role::App, Some(asked.clone()));
    let other = key(Some(b), "Operator of B", Role::Operator, None);
    let admin = key(None, "Admin", Role::Admin, None);

    // As created: the name trimmed, the role's scopes, or those asked for once each in order.
    let mut app_scopes = asked;
    app_scopes.sort();
    app_scopes.dedup();
    assert_eq!((owner.key.name.as_str(), owner.key.shop_id, owner.key.role), ("Owner of A", Some(a), Role::Owner));
    assert_eq!(owner.key.scopes, Role::Owner.default_scopes());
    assert_eq!(app.key.scopes, app_scopes);
    assert_eq!((admin.key.shop_id, admin.key.scopes.clone()), (None, vec![]));
    for created in [&owner, &app, &other, &admin] {
        assert_eq!(created.key.revoked_at, None);
        assert_eq!(created.token, format!("kith_{}_{}", created.key.id, created.token.rsplit('_').next().unwrap()));
    }

    // Each token authenticates as its key; twice (the second may be remembered) the same.
    for created in [&owner, &app, &other, &admin] {
        let k = &created.key;
        let expected = kith_domain::model::Principal { key_id: k.id.clone(), shop_id: k.shop_id, role: k.role, scopes: k.scopes.clone() };
        assert_eq!(s.authenticate(&created.token).unwrap(), Some(expected.clone()), "{}", k.name);
        assert_eq!(s.authenticate(&created.token).unwrap(), Some(expected.clone()), "{} again", k.name);
        if s.key_memory().is_some() {
            assert_eq!(s.remembered_principal(&created.token), Some(expected), "{} remembered", k.name);
        }
    }

    // A wrong secret, also for a key just remembered; an unknown id; malformed tokens.
    let secret = owner.token.rsplit('_').next().unwrap().to_owned();
    let wrong = if secret.starts_with('0') { secret.replacen('0', "1", 1) } else { format!("0{}", &secret[1..]) };
    assert_eq!(s.authenticate(&format!("kith_{}_{wrong}", owner.key.id)).unwrap(), None);
    assert_eq!(s.remembered_principal(&format!("kith_{}_{wrong}", owner.key.id)), None);
    assert_eq!(s.authenticate(&format!("kith_{}_{secret}", app.key.id)).unwrap(), None, "another key's secret");
    let unknown_id = if owner.key.id == "ffffffffffff" { "000000000000" } else { "ffffffffffff" };
    assert_eq!(s.authenticate(&format!("kith_{unknown_id}_{secret}")).unwrap(), None);
    for malformed in ["", "kith", "kith_", &owner.key.id, &format!("kith_{}", owner.key.id), &format!("kith-{}-{secret}", owner.key.id)] {
        assert_eq!(s.authenticate(malformed).unwrap(), None, "{malformed:?}");
    }

    // Keys listed by shop, by creation; every key without a shop.
    let ids = |shop: Option<i64>| {
        let mut ids: Vec<String> = s.list_keys(shop).unwrap().into_iter().map(|k| k.id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(ids(Some(a)), sorted(vec![&owner.key.id, &app.key.id]));
    assert_eq!(ids(Some(b)), sorted(vec![&other.key.id]));
    assert_eq!(ids(None), sorted(vec![&owner.key.id, &app.key.id, &other.key.id, &admin.key.id]));
    assert_eq!(ids(Some(a.max(b) + 1)), Vec::<String>::new(), "a shop without keys lists none");
    let listed = s.list_keys(Some(a)).unwrap();
    let mut by_creation = listed.clone();
    by_creation.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
    assert_eq!(listed, by_creation, "keys are listed by creation time, then id");
    assert_eq!(listed.iter().find(|k| k.id == owner.key.id), Some(&owner.key), "a key lists as created");

    // Another shop's key is not found there, and stays valid.
    not_found(s.revoke_key(Some(b), &owner.key.id, &actor()));
    not_found(s.revoke_key(Some(a), "000000000000", &actor()));
    assert!(s.authenticate(&owner.token).unwrap().is_some(), "a refused revocation revokes nothing");

    // Revoked: no longer authenticates, though it did a moment ago; the others still do.
    let revoked = s.revoke_key(Some(a), &owner.key.id, &actor()).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(s.remembered_principal(&owner.token), None, "a revoked key is forgotten at once");
    assert_eq!(s.authenticate(&owner.token).unwrap(), None, "a revoked key no longer authenticates");
    assert!(matches!(s.revoke_key(Some(a), &owner.key.id, &actor()), Err(Error::Conflict(_))));
    assert_eq!(s.authenticate(&app.token).unwrap().map(|p| p.key_id), Some(app.key.id.clone()));
    // An admin revokes any shop's key.
    s.revoke_key(None, &other.key.id, &actor()).unwrap();
    assert_eq!(s.authenticate(&other.token).unwrap(), None);

    let listed = s.list_keys(Some(a)).unwrap();
    let owner_listed = listed.iter().find(|k| k.id == owner.key.id).expect("a revoked key is still listed");
    assert_eq!(owner_listed.revoked_at.map(|t| t.timestamp_millis()), revoked.revoked_at.map(|t| t.timestamp_millis()));
    assert_eq!(listed.iter().find(|k| k.id == app.key.id).unwrap().revoked_at, None);

    // Audited in the key's shop: creations and the revocation, never the secret.
    let log = actions(s, a);
    let key_entries: Vec<(String, Option<String>)> =
        log.iter().filter(|(action, ..)| action.starts_with("key.")).map(|(action, target, _)| (action.clone(), target.clone())).collect();
    assert_eq!(
        key_entries,
        vec![
            ("key.revoke".into(), Some(format!("key:{}", owner.key.id))),
            ("key.create".into(), Some(format!("key:{}", app.key.id))),
            ("key.create".into(), Some(format!("key:{}", owner.key.id))),
        ]
    );
    let created = log.iter().find(|(action, target, _)| action == "key.create" && *target == Some(format!("key:{}", app.key.id))).unwrap();
    assert_eq!(created.2, json!({"role": "app", "scopes": app_scopes, "name": "App of A"}));
    assert!(!serde_json::to_string(&log).unwrap().contains(&secret), "no secret in the log");
    assert_eq!(
        actions(s, b).iter().filter(|(action, ..)| action.starts_with("key.")).count(),
        2,
        "B's log has its key's creation and revocation"
    );

    // A shop key needs an existing shop; an admin key none.
    invalid(
        s.create_key(&NewKey { shop_id: Some(b + a + 100), name: "Lost".into(), role: Role::Owner, scopes: None }, &actor()),
        "shop_id",
    );
    invalid(s.create_key(&NewKey { shop_id: Some(a), name: "Admin".into(), role: Role::Admin, scopes: None }, &actor()), "shop_id");
    assert_eq!(ids(None).len(), 4, "a refused key is not stored");
}

/// Recorded audit entries read back as recorded, newest first, in pages that join up to
/// the whole log; each shop sees only its own, and entries of no shop appear in none.
pub fn audit_log_lists_a_shops_entries_newest_first_in_pages(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let a = backend.create_shop("Audit shop A", "Asia/Shanghai");
    let b = backend.create_shop("Audit shop B", "Asia/Shanghai");
    let entry = |shop: Option<i64>, actor: Actor, n: i64, at: DateTime<Utc>| NewAudit {
        shop_id: shop,
        actor,
        action: format!("test.action{}", n % 3),
        target: (n % 2 == 0).then(|| format!("thing:{n}")),
        detail: json!({"n": n, "list": [n, n + 1]}),
        at,
    };
    // Interleaved across shops, in two transactions.
    let mut first = Vec::new();
    for n in 0..7 {
        first.push(entry(Some(a), Actor::key("k-operator"), n, day(1, n)));
        if n % 3 == 0 {
            first.push(entry(Some(b), Actor::cli("cli"), 100 + n, day(1, n)));
        }
    }
    first.push(entry(None, Actor::key("k-admin"), 999, day(1, 9)));
    s.record_audits(&first).unwrap();
    let second: Vec<NewAudit> = (7..12).map(|n| entry(Some(a), Actor::cli("cli"), n, day(2, n))).collect();
    s.record_audits(&second).unwrap();
    s.record_audits(&[]).unwrap();

    // What shop A's log should read, newest first: the recorded entries then its creation.
    let expected: Vec<&NewAudit> = first.iter().chain(&second).filter(|e| e.shop_id == Some(a)).rev().collect();
    let log = audit_log(s, a);
    assert_eq!(log.len(), expected.len() + 1);
    assert_eq!(log.last().unwrap().action, "shop.create");
    for (got, want) in log.iter().zip(&expected) {
        assert_eq!(got.shop_id, Some(a));
        assert_eq!(got.key_id, want.actor.key_id);
        assert_eq!((&got.action, &got.target, &got.detail), (&want.action, &want.target, &want.detail));
        assert_eq!(got.created_at, want.at);
    }
    assert!(log.windows(2).all(|w| w[0].id > w[1].id), "newest first, by id");

    // Pages of 3 before the last id seen join up to the whole log, and end empty.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.list_audit(a, before, 3).unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, log);
    let middle = &log[4];
    assert_eq!(s.list_audit(a, Some(middle.id), 2).unwrap(), log[5..7].to_vec(), "strictly before the id given");
    assert_eq!(s.list_audit(a, Some(log.last().unwrap().id), 10).unwrap(), vec![]);
    assert_eq!(s.list_audit(a, None, 0).unwrap(), vec![]);

    // Shop B sees its own entries only; an entry of no shop is in no shop's log.
    let b_expected: Vec<Value> = first.iter().filter(|e| e.shop_id == Some(b)).rev().map(|e| e.detail.clone()).collect();
    let b_log = audit_log(s, b);
    let b_details: Vec<Value> = b_log.iter().filter(|e| e.action != "shop.create").map(|e| e.detail.clone()).collect();
    assert_eq!(b_details, b_expected);
    assert!(b_log.iter().all(|e| e.shop_id == Some(b) && e.key_id.is_none()));
    for shop in [a, b] {
        assert!(audit_log(s, shop).iter().all(|e| e.detail != json!({"n": 999, "list": [999, 1000]})));
    }
    let unknown = a.max(b) + 1;
    assert_eq!(s.list_audit(unknown, None, 100).unwrap(), vec![]);

    // One entry on its own, stamped now.
    let before_now = Utc::now() - chrono::Duration::seconds(1);
    s.audit(Some(b), &Actor::key("k-export"), "segment.export", Some("segment:7"), json!({"rows": 3})).unwrap();
    let newest = &audit_log(s, b)[0];
    assert_eq!((newest.action.as_str(), newest.target.as_deref()), ("segment.export", Some("segment:7")));
    assert_eq!((newest.key_id.as_deref(), &newest.detail), (Some("k-export"), &json!({"rows": 3})));
    assert!(newest.created_at >= before_now && newest.created_at <= Utc::now() + chrono::Duration::seconds(1));
    assert_eq!(audit_log(s, a), log, "A's log is unchanged by B's entry");
}

/// Settings sections start at their defaults, read back what was put, per shop and per
/// section, and every replacement is audited as `settings.<section>` with the new value.
pub fn settings_round_trip_per_shop_and_section_audited(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let a = backend.create_shop("Settings shop A", "Asia/Shanghai");
    let b = backend.create_shop("Settings shop B", "Asia/Shanghai");
    assert_eq!(s.export_policy(a).unwrap(), ExportPolicy { personal_columns: false });
    assert_eq!(s.loyalty_settings(a).unwrap(), LoyaltySettings::default());

    let allow = ExportPolicy { personal_columns: true };
    s.put_export_policy(a, &allow, &Actor::key("k-owner"), day(1, 0)).unwrap();
    assert_eq!(s.export_policy(a).unwrap(), allow);
    assert_eq!(s.export_policy(b).unwrap(), ExportPolicy::default(), "another shop keeps its own");
    assert_eq!(s.loyalty_settings(a).unwrap(), LoyaltySettings::default(), "another section keeps its own");

    let forgive = LoyaltySettings { refund_policy: RefundPolicy::Forgive };
    assert_ne!(forgive, LoyaltySettings::default());
    s.put_loyalty_settings(a, &forgive, &Actor::key("k-owner"), day(2, 0)).unwrap();
    assert_eq!(s.loyalty_settings(a).unwrap(), forgive);
    assert_eq!(s.export_policy(a).unwrap(), allow);
    assert_eq!(s.loyalty_settings(b).unwrap(), LoyaltySettings::default());

    let mut messaging = MessagingSettings::default();
    assert_eq!(s.messaging_settings(a).unwrap(), messaging);
    for (channel, cost) in [("sms", 5), ("email", 1)] {
        messaging.channels.insert(channel.into(), ChannelPolicy { cost_per_message: cost, ..ChannelPolicy::default() });
    }
    s.put_messaging_settings(a, &messaging, &Actor::key("k-owner"), day(2, 1)).unwrap();
    assert_eq!(s.messaging_settings(a).unwrap(), messaging);
    assert_eq!(s.messaging_settings(b).unwrap(), Default::default());
    assert_eq!((s.export_policy(a).unwrap(), s.loyalty_settings(a).unwrap()), (allow, forgive.clone()));

    // Replaced again: the last value wins.
    s.put_export_policy(a, &ExportPolicy::default(), &Actor::key("k-owner"), day(3, 0)).unwrap();
    assert_eq!(s.export_policy(a).unwrap(), ExportPolicy::default());
    s.put_export_policy(b, &allow, &actor(), day(3, 0)).unwrap();
    assert_eq!((s.export_policy(a).unwrap(), s.export_policy(b).unwrap()), (ExportPolicy::default(), allow));

    let log: Vec<(String, Value, DateTime<Utc>, Option<String>)> =
        audit_log(s, a).into_iter().map(|e| (e.action, e.detail, e.created_at, e.key_id)).collect();
    let owner = Some("k-owner".to_owned());
    assert_eq!(
        log[..4].to_vec(),
        vec![
            ("settings.export".into(), json!({"personal_columns": false}), day(3, 0), owner.clone()),
            ("settings.messaging".into(), serde_json::to_value(&messaging).unwrap(), day(2, 1), owner.clone()),
            ("settings.loyalty".into(), serde_json::to_value(&forgive).unwrap(), day(2, 0), owner.clone()),
            ("settings.export".into(), json!({"personal_columns": true}), day(1, 0), owner),
        ]
    );
    assert_eq!(log[4].0, "shop.create");
    assert_eq!(log.len(), 5);
    let b_actions: Vec<String> = audit_log(s, b).into_iter().map(|e| e.action).collect();
    assert_eq!(b_actions, vec!["settings.export", "shop.create"]);
}

/// A new customer of the shop, each event creating one: the batch's customers in order.
fn new_customers(backend: &dyn Backend, shop: i64, tag: &str, n: usize, at: DateTime<Utc>) -> Vec<i64> {
    let events = (0..n)
        .map(|i| json!({"id": format!("{tag}-{i}"), "type": "customer.upsert", "identities": [{"kind": "email", "value": format!("{tag}{i}@example.com")}]}))
        .collect();
    let report = backend.ingest(shop, events, at);
    assert_eq!(report.accepted, n, "{report:?}");
    report.outcomes.into_iter().map(|o| o.customer_id.expect("an accepted event names its customer")).collect()
}

/// Each shop numbers its own events 1, 2, 3 … without gaps however the shops' batches
/// interleave; the global sequence numbers (heads) convert to a shop's positions and to
/// how many of its events come after; pages of events join up in order; and a shop's
/// log never shows another shop's events.
pub fn events_positions_per_shop_heads_and_pages(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let a = backend.create_shop("Events shop A", "Asia/Shanghai");
    let b = backend.create_shop("Events shop B", "Asia/Shanghai");
    let c = backend.create_shop("Events shop C", "Asia/Shanghai");
    for shop in [a, b, c] {
        assert_eq!((s.event_head(shop).unwrap(), s.shop_position(shop, i64::MAX).unwrap()), (0, 0));
        assert_eq!(s.events_past(shop, 0).unwrap(), 0);
        assert_eq!(s.events_after(shop, 0, 10).unwrap().len(), 0);
    }

    // A: 3, then B: 2, then A: 4 (each event creates one customer, one `customer.created`).
    let a1 = new_customers(&*backend, a, "a1", 3, day(1, 0));
    let head_a1 = s.event_head(a).unwrap();
    let b1 = new_customers(&*backend, b, "b1", 2, day(1, 1));
    let head_b1 = s.event_head(b).unwrap();
    let a2 = new_customers(&*backend, a, "a2", 4, day(1, 2));
    let head_a2 = s.event_head(a).unwrap();
    assert!(0 < head_a1 && head_a1 < head_b1 && head_b1 < head_a2, "global sequence numbers grow in commit order");
    assert_eq!(s.event_head(b).unwrap(), head_b1);
    assert_eq!(s.event_head(c).unwrap(), 0, "a shop without events has no head");

    // The logs as written: positions from 1, without gaps, in the order sent.
    let expected = |customers: &[(Vec<i64>, DateTime<Utc>)]| -> Vec<(i64, String, Option<i64>, DateTime<Utc>)> {
        let all = customers.iter().flat_map(|(ids, at)| ids.iter().map(move |id| (*id, *at)));
        all.enumerate().map(|(i, (id, at))| (i as i64 + 1, "customer.created".to_owned(), Some(id), at)).collect()
    };
    let read = |shop: i64, after: i64, limit: usize| -> Vec<(i64, String, Option<i64>, DateTime<Utc>)> {
        s.events_after(shop, after, limit).unwrap().into_iter().map(|e| (e.seq, e.kind, e.customer_id, e.created_at)).collect()
    };
    let a_log = expected(&[(a1.clone(), day(1, 0)), (a2.clone(), day(1, 2))]);
    let b_log = expected(&[(b1.clone(), day(1, 1))]);
    assert_eq!(read(a, 0, 100), a_log);
    assert_eq!(read(b, 0, 100), b_log);
    assert_eq!(read(c, 0, 100), vec![]);
    let payload = s.events_after(a, 0, 1).unwrap()[0].payload.value();
    assert_eq!(payload, json!({"identities": [{"kind": "email", "value": "a10@example.com"}]}));

    // Pages of 3 join up to the whole log in order; past the end, nothing.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = read(a, after, 3);
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.0;
        paged.extend(page);
    }
    assert_eq!(paged, a_log);
    assert_eq!(read(a, 2, 2), a_log[2..4].to_vec());
    assert_eq!(read(a, a_log.len() as i64, 10), vec![]);
    assert_eq!(read(a, 0, 0), vec![]);

    // Global sequence numbers as each shop's positions, and what comes after them.
    let (n_a1, n_a, n_b) = (a1.len() as i64, a_log.len() as i64, b_log.len() as i64);
    for (seq, a_at, b_at) in [(0, 0, 0), (head_a1, n_a1, 0), (head_b1, n_a1, n_b), (head_a2, n_a, n_b), (i64::MAX, n_a, n_b)] {
        assert_eq!(s.shop_position(a, seq).unwrap(), a_at, "A's position at {seq}");
        assert_eq!(s.shop_position(b, seq).unwrap(), b_at, "B's position at {seq}");
        assert_eq!(s.events_past(a, seq).unwrap(), n_a - a_at, "A's events past {seq}");
        assert_eq!(s.events_past(b, seq).unwrap(), n_b - b_at, "B's events past {seq}");
        assert_eq!((s.shop_position(c, seq).unwrap(), s.events_past(c, seq).unwrap()), (0, 0));
    }
    assert_eq!(s.shop_position(a, head_a1 - 1).unwrap(), n_a1 - 1, "just before A's first head");

    // No shop's log holds another's customers.
    let customers = |shop: i64| -> Vec<i64> { read(shop, 0, 1000).into_iter().filter_map(|e| e.2).collect() };
    assert!(customers(a).iter().all(|id| a1.contains(id) || a2.contains(id)));
    assert!(customers(b).iter().all(|id| b1.contains(id)));

    // C's first event is its position 1, whatever the others wrote.
    let c1 = new_customers(&*backend, c, "c1", 1, day(1, 3));
    assert_eq!(read(c, 0, 10), expected(&[(c1, day(1, 3))]));
    let head_c = s.event_head(c).unwrap();
    assert!(head_c > head_a2);
    assert_eq!((s.shop_position(c, head_c).unwrap(), s.shop_position(c, head_c - 1).unwrap()), (1, 0));
    assert_eq!((s.shop_position(a, head_c).unwrap(), s.events_past(a, head_c).unwrap()), (n_a, 0));
}
