//! Plugin deliveries through the core: a plugin is a plain list of decisions here (what its
//! call returned), committed with the cursor's compare-and-set so its effects happen once;
//! one tag writer for merchants, journeys and plugins; the failure policy's retries, dead
//! letters, breaker and re-drives.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_core::delivery::{self, Attempt, Chain, Effects, FailureOutcome, FailurePolicy};
use kith_core::tags::{self, Added, Removable, Source, TagRemoval, TagWrite};
use kith_core::{Error, Storage, StorageExt};
use kith_domain::model::OutcomeStatus;
use kith_domain::plugin::{Decision, EventSnapshot, SubscriptionStatus};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

/// A tag rule's manifest, with a tag namespace when `prefix` is given.
fn manifest(id: &str, prefix: Option<&str>) -> String {
    let prefix = prefix.map(|p| format!("tag-prefix = \"{p}\"\n")).unwrap_or_default();
    format!(
        "id = \"{id}\"\nversion = \"1.0.0\"\nkind = \"tag-rule\"\napi-version = \"0.2.0\"\ndescription = \"Stands in for a tag rule\"\n\
         vendor = \"Kith\"\ncapabilities = [\"tags:write\"]\nevents = [\"order.paid\"]\n{prefix}"
    )
}

/// A fresh backend with one shop, one customer and the plugin `rule` enabled.
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64, i64) {
    let b = factory.fresh();
    let shop = b.create_shop("Delivery shop", "Asia/Shanghai");
    b.enable_plugin(shop, &manifest("rule", None));
    let customer = customer(&*b, shop, "13800000001");
    (b, shop, customer)
}

fn customer(b: &dyn Backend, shop: i64, phone: &str) -> i64 {
    let event = json!({"id": format!("u-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
    let report = b.ingest(shop, vec![event], day(0, 0));
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    report.outcomes[0].customer_id.unwrap()
}

fn attempt<'a>(shop: i64, plugin: &'a str, now: DateTime<Utc>) -> Attempt<'a> {
    Attempt { shop_id: shop, plugin_id: plugin, logs: &[], duration: Duration::from_millis(3), now }
}

fn add_tag(customer: i64, tag: &str) -> Decision {
    Decision::AddTag { customer_id: customer, tag: tag.into(), reason: format!("{tag} because") }
}

/// Commit `decisions` of `plugin` as the delivery of the events after `from` up to `to`.
fn commit(
    s: &dyn Storage,
    shop: i64,
    plugin: &str,
    from: i64,
    to: i64,
    decisions: &[Decision],
    now: DateTime<Utc>,
) -> kith_core::Result<()> {
    let effects = Effects { decisions, kv_writes: &[], chain: None };
    delivery::commit_delivery(s, &attempt(shop, plugin, now), from, to, &effects)
}

/// The shop's events of these types, as (type, payload).
fn events_of(b: &dyn Backend, shop: i64, types: &[&str]) -> Vec<(String, Value)> {
    b.events(shop).into_iter().filter(|(t, _)| types.contains(&t.as_str())).collect()
}

fn cursor(s: &dyn Storage, shop: i64, plugin: &str) -> i64 {
    s.read(|tx| tx.plugins().subscription(shop, plugin)).unwrap().cursor
}

pub fn delivery_commits_once_and_applies_every_kind_of_decision(factory: &dyn Factory) {
    let (b, shop, c) = shop(factory);
    let s = b.storage();
    b.ingest(
        shop,
        vec![json!({"id": "o1", "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
                    "order": {"id": "T1", "amount": 10_000, "paid_at": day(0, 1).to_rfc3339()}})],
        day(0, 1),
    );
    let decisions = [
        add_tag(c, "vip"),
        Decision::SetScore { customer_id: c, model: "rule".into(), value: 0.75, label: Some("high".into()), explanation: "because".into() },
        Decision::AwardPoints {
            customer_id: c,
            points: 100,
            source_key: "order:T1".into(),
            reason: "order T1".into(),
            expires_at_ms: None,
        },
        Decision::ChangeTier { customer_id: c, tier: "gold".into(), reason: "spent enough".into() },
        Decision::EmitEvent { customer_id: Some(c), event_type: "plugin.rule.noticed".into(), payload: r#"{"why": "test"}"#.into() },
    ];
    let kv = [("seen".to_owned(), Some(b"1".to_vec()))];
    let effects = Effects { decisions: &decisions, kv_writes: &kv, chain: None };
    delivery::commit_delivery(s, &attempt(shop, "rule", day(1, 0)), 0, 7, &effects).unwrap();
    assert_eq!(cursor(s, shop, "rule"), 7, "the cursor moved with the effects");
    assert!(s.read(|tx| tx.tags().held_by(shop, c, "vip", "rule")).unwrap());
    assert_eq!(s.write(|tx| tx.scores_writer().value(shop, c, "rule")).unwrap(), Some(0.75));
    assert_eq!(s.read(|tx| tx.ledger().balance(shop, c)).unwrap(), 100);
    assert_eq!(s.write(|tx| tx.tiers_writer().tier(shop, c)).unwrap().as_deref(), Some("gold"));
    assert_eq!(s.read(|tx| tx.plugins().kv(shop, "rule", "seen")).unwrap().as_deref(), Some(&b"1"[..]));
    let logged = events_of(&*b, shop, &["tag.added", "tier.changed", "plugin.rule.noticed"]);
    assert_eq!(
        logged,
        [
            ("tag.added".to_owned(), json!({"tag": "vip", "source": "rule", "reason": "vip because"})),
            ("tier.changed".to_owned(), json!({"from": null, "to": "gold", "reason": "spent enough"})),
            ("plugin.rule.noticed".to_owned(), json!({"why": "test", "plugin": "rule"})),
        ]
    );
    // The same delivery again (a worker that lost its claim) is stale and applies nothing.
    let again = delivery::commit_delivery(s, &attempt(shop, "rule", day(1, 1)), 0, 7, &effects).unwrap_err();
    assert!(matches!(again, Error::Conflict(_)), "{again:?}");
    assert_eq!(s.read(|tx| tx.ledger().balance(shop, c)).unwrap(), 100, "no points twice");
    assert_eq!(events_of(&*b, shop, &["tag.added", "tier.changed", "plugin.rule.noticed"]).len(), 3, "no events twice");
    // The next batch: the same tier is no change, and a deleted key is gone.
    let same = [Decision::ChangeTier { customer_id: c, tier: "gold".into(), reason: "still".into() }];
    let kv = [("seen".to_owned(), None)];
    delivery::commit_delivery(s, &attempt(shop, "rule", day(2, 0)), 7, 9, &Effects { decisions: &same, kv_writes: &kv, chain: None })
        .unwrap();
    assert_eq!(events_of(&*b, shop, &["tier.changed"]).len(), 1, "the same tier logs nothing");
    assert_eq!(s.read(|tx| tx.plugins().kv(shop, "rule", "seen")).unwrap(), None);
}

pub fn delivery_refuses_another_shops_customer_and_applies_nothing(factory: &dyn Factory) {
    let (b, shop, c) = shop(factory);
    let s = b.storage();
    let other = b.create_shop("Other", "Asia/Shanghai");
    let theirs = customer(&*b, other, "13800000009");
    let err = commit(s, shop, "rule", 0, 3, &[add_tag(c, "ok"), add_tag(theirs, "leak")], day(1, 0)).unwrap_err();
    assert!(matches!(&err, Error::Invalid(f) if f.field == "decisions[1].customer_id"), "{err:?}");
    assert_eq!(cursor(s, shop, "rule"), 0, "a refused delivery leaves the cursor");
    assert!(!s.read(|tx| tx.tags().held_by(shop, c, "ok", "rule")).unwrap(), "nor any of its decisions");
    assert!(events_of(&*b, shop, &["tag.added"]).is_empty());
}

pub fn delivery_keeps_tag_namespaces_and_caps(factory: &dyn Factory) {
    let (b, shop, c) = shop(factory);
    let s = b.storage();
    b.enable_plugin(shop, &manifest("owner", Some("owner:")));
    let err = commit(s, shop, "rule", 0, 1, &[add_tag(c, "owner:vip")], day(1, 0)).unwrap_err();
    assert!(matches!(&err, Error::Invalid(f) if f.field == "decisions[0].tag"), "another plugin's namespace: {err:?}");
    // A new subscription starts at the end of the shop's log.
    let from = cursor(s, shop, "owner");
    commit(s, shop, "owner", from, from + 1, &[add_tag(c, "owner:vip")], day(1, 0)).unwrap();
    // At most 256 tags of one plugin on a customer: the rest of the call commits.
    let many: Vec<Decision> = (0..260).map(|i| add_tag(c, &format!("t{i}"))).collect();
    commit(s, shop, "rule", 0, 1, &many, day(1, 0)).unwrap();
    assert_eq!(s.read(|tx| tx.tags().count_by(shop, c, "rule")).unwrap(), 256);
    assert_eq!(cursor(s, shop, "rule"), 1);
    // A tag the plugin holds already is no new tag, and passes at the cap.
    commit(s, shop, "rule", 1, 2, &[add_tag(c, "t0")], day(1, 1)).unwrap();
}

pub fn tags_every_writer_has_the_same_effects(factory: &dyn Factory) {
    let (b, shop, c) = shop(factory);
    let s = b.storage();
    let write = |source: Source<'_>, tag: &str, reason: &str| {
        let w = TagWrite { shop_id: shop, customer_id: c, tag, source, reason: Some(reason), at: day(1, 0), chain: 1 };
        s.write(|tx| tags::add(tx, &w)).unwrap()
    };
    assert_eq!(write(Source::Manual, "a", "by hand"), Added::New);
    assert_eq!(write(Source::Manual, "a", "by hand"), Added::Unchanged);
    assert_eq!(write(Source::Manual, "a", "reworded"), Added::Reworded);
    assert_eq!(write(Source::Journey(7), "b", "journey 7"), Added::New);
    assert_eq!(write(Source::Journey(7), "b", "journey 7"), Added::Unchanged);
    commit(s, shop, "rule", 0, 1, &[add_tag(c, "c")], day(1, 0)).unwrap();
    commit(s, shop, "rule", 1, 2, &[add_tag(c, "c")], day(1, 1)).unwrap();
    assert_eq!(
        events_of(&*b, shop, &["tag.added", "tag.removed"]),
        [
            ("tag.added".to_owned(), json!({"tag": "a", "source": "manual", "reason": "by hand"})),
            ("tag.added".to_owned(), json!({"tag": "b", "source": "journey:7", "reason": "journey 7"})),
            ("tag.added".to_owned(), json!({"tag": "c", "source": "rule", "reason": "c because"})),
        ],
        "one event per tag really added, whoever added it"
    );
    let remove = |which: Removable<'_>, tag: &str| {
        let r = TagRemoval { shop_id: shop, customer_id: c, tag, which, reason: Some("gone"), at: day(2, 0), chain: 1 };
        s.write(|tx| tags::remove(tx, &r)).unwrap()
    };
    // A journey removes tags set by hand or by journeys, never a plugin's.
    write(Source::Manual, "c", "by hand too");
    assert_eq!(remove(Removable::ManualOrJourney, "c"), 1);
    assert!(s.read(|tx| tx.tags().held_by(shop, c, "c", "rule")).unwrap(), "the plugin's row stays");
    assert_eq!(remove(Removable::ManualOrJourney, "c"), 0, "nothing left to remove logs nothing");
    let removal = [Decision::RemoveTag { customer_id: c, tag: "c".into(), reason: "no longer".into() }];
    commit(s, shop, "rule", 2, 3, &removal, day(2, 1)).unwrap();
    commit(s, shop, "rule", 3, 4, &removal, day(2, 2)).unwrap();
    let removed: Vec<Value> = events_of(&*b, shop, &["tag.removed"]).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        removed,
        [json!({"tag": "c", "source": "manual", "reason": "gone"}), json!({"tag": "c", "source": "rule", "reason": "no longer"})]
    );
}

pub fn delivery_failures_retry_then_dead_letter_then_trip_the_breaker(factory: &dyn Factory) {
    let (b, shop, _) = shop(factory);
    let s = b.storage();
    let policy = FailurePolicy { max_attempts: 2, breaker_threshold: 3, ..FailurePolicy::default() };
    let fail =
        |from: i64, to: i64, at: DateTime<Utc>| delivery::record_failure(s, &attempt(shop, "rule", at), from, to, "boom", &policy).unwrap();
    assert_eq!(fail(0, 5, day(1, 0)), FailureOutcome::Retry { at: day(1, 0) + Duration::from_secs(1) });
    let sub = s.read(|tx| tx.plugins().subscription(shop, "rule")).unwrap();
    assert_eq!((sub.cursor, sub.attempts, sub.consecutive_failures, sub.last_error.as_deref()), (0, 1, 1, Some("boom")));
    let FailureOutcome::DeadLettered { dead_letter } = fail(0, 5, day(1, 1)) else { panic!("the second attempt gives the batch up") };
    assert_eq!(cursor(s, shop, "rule"), 5, "the cursor moved past the dead letter");
    let letter = s.read(|tx| tx.plugins().dead_letter(shop, "rule", dead_letter)).unwrap();
    assert_eq!((letter.first_seq, letter.last_seq, letter.attempts), (1, 5, 2));
    // A failure of a batch the subscription is no longer at is stale.
    let stale = delivery::record_failure(s, &attempt(shop, "rule", day(1, 2)), 0, 5, "late", &policy).unwrap_err();
    assert!(matches!(stale, Error::Conflict(_)));
    assert!(matches!(fail(5, 8, day(1, 3)), FailureOutcome::Tripped { dead_letter: None }), "the third failure in a row trips");
    let sub = s.read(|tx| tx.plugins().subscription(shop, "rule")).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Tripped);
    assert_eq!(events_of(&*b, shop, &["plugin.tripped"]).len(), 1);
    // A tripped plugin's delivery is refused.
    assert!(matches!(commit(s, shop, "rule", 5, 8, &[], day(1, 4)), Err(Error::Conflict(_))));
    // The dead letter re-driven applies once.
    let c = customer(&*b, shop, "13800000002");
    let decisions = [add_tag(c, "late")];
    let effects = Effects { decisions: &decisions, kv_writes: &[], chain: None };
    let redriven = delivery::commit_redrive(s, &attempt(shop, "rule", day(2, 0)), dead_letter, &effects).unwrap();
    assert_eq!(redriven.redriven_at, Some(day(2, 0)));
    let again = delivery::commit_redrive(s, &attempt(shop, "rule", day(2, 1)), dead_letter, &effects).unwrap_err();
    assert!(matches!(again, Error::Conflict(_)), "a dead letter is re-driven once");
    assert_eq!(events_of(&*b, shop, &["tag.added"]).len(), 1);
}

pub fn delivery_plugin_tags_continue_a_chain_and_are_stopped_past_its_limit(factory: &dyn Factory) {
    let (b, shop, c) = shop(factory);
    let s = b.storage();
    b.enable_plugin(shop, &manifest("answer", None));
    // Two plugins answer each other's tag events: `rule` adds a tag, `answer` adds one in
    // answer, and so on, each seeing only the other's last event.
    let mut last: Option<(String, Value)> = None;
    let mut depths = Vec::new();
    for round in 0..6 {
        let plugin = if round % 2 == 0 { "rule" } else { "answer" };
        let snapshot = last.as_ref().map(|(kind, payload)| EventSnapshot {
            seq: 0,
            kind: kind.clone(),
            customer_id: Some(c),
            payload: payload.to_string(),
            order_id: None,
            created_at_ms: 0,
        });
        let chain = Chain::of(snapshot.iter().map(|e| (c, e)));
        let decisions = vec![add_tag(c, &format!("round-{round}"))];
        let from = cursor(s, shop, plugin);
        let effects = Effects { decisions: &decisions, kv_writes: &[], chain: Some(&chain) };
        if let Err(refused) = delivery::commit_delivery(s, &attempt(shop, plugin, day(1, round)), from, from + 1, &effects) {
            assert!(matches!(&refused, Error::Invalid(f) if f.field == "decisions[0].tag" && f.reason.contains("5th")), "{refused:?}");
            assert_eq!(cursor(s, shop, plugin), from, "a refused call moves nothing");
            // The same plugin re-setting a tag it holds writes nothing, and is not refused.
            let held = [add_tag(c, &format!("round-{}", round - 2))];
            let effects = Effects { decisions: &held, kv_writes: &[], chain: Some(&chain) };
            delivery::commit_delivery(s, &attempt(shop, plugin, day(1, round)), from, from + 1, &effects).unwrap();
            break;
        }
        last = events_of(&*b, shop, &["tag.added"]).pop();
        depths.push(last.as_ref().unwrap().1.get("chain").and_then(Value::as_u64).unwrap_or(1));
    }
    assert_eq!(depths, [1, 2, 3, 4], "each answer one deeper, the fifth refused");
    // A tag set by hand starts no chain: a plugin's answer to it is 1 deep.
    let w = TagWrite { shop_id: shop, customer_id: c, tag: "by-hand", source: Source::Manual, reason: None, at: day(2, 0), chain: 1 };
    s.write(|tx| tags::add(tx, &w)).unwrap();
    let (kind, payload) = events_of(&*b, shop, &["tag.added"]).pop().unwrap();
    let manual = EventSnapshot { seq: 0, kind, customer_id: Some(c), payload: payload.to_string(), order_id: None, created_at_ms: 0 };
    assert_eq!(Chain::of([(c, &manual)].into_iter()).depth(Some(c)), 1);
}
