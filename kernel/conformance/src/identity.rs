//! Ingest, identity resolution, merges and unmerges through the core: the identity
//! table cases (no match, one match, several, caps per kind), what a merge moves and an
//! unmerge restores (identifiers, orders, behaviours, stats, ledger entries, tags,
//! scores, consents, profile fields), duplicates by event id, an event failing after it
//! wrote, and shops kept apart.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use kith_core::ingest::{self, IdentityCaps};
use kith_core::ledger::{self, SchemePoints};
use kith_core::merge;
use kith_core::ports::{ConsentRow, MovedScore, MovedTag};
use kith_core::{Actor, Error, Storage, StorageExt};
use kith_domain::model::{IngestReport, OutcomeStatus};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

use OutcomeStatus::{Accepted, Duplicate, Rejected};

fn actor() -> Actor {
    Actor::cli("conformance")
}

/// A fresh backend with one shop.
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Identity shop", "Asia/Shanghai");
    (backend, shop)
}

/// Ingest through the core under `caps`.
fn ingest_with(s: &dyn Storage, shop: i64, caps: &IdentityCaps, events: Vec<Value>, at: DateTime<Utc>) -> IngestReport {
    ingest::ingest(s, shop, events, caps, &actor(), at).expect("the batch is ingested")
}

fn ids(identities: &[(&str, &str)]) -> Vec<Value> {
    identities.iter().map(|(k, v)| json!({"kind": k, "value": v})).collect()
}

fn upsert(id: &str, identities: &[(&str, &str)]) -> Value {
    json!({"id": id, "type": "customer.upsert", "identities": ids(identities)})
}

fn order(id: &str, identities: &[(&str, &str)], order_id: &str, amount: i64, paid_at: DateTime<Utc>) -> Value {
    json!({"id": id, "type": "order.paid", "identities": ids(identities),
           "order": {"id": order_id, "amount": amount, "paid_at": paid_at.to_rfc3339()}})
}

/// The one event's customer, which must have been accepted.
fn accepted(backend: &dyn Backend, shop: i64, event: Value, at: DateTime<Utc>) -> i64 {
    let report = backend.ingest(shop, vec![event], at);
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// A customer's identifiers as `kind:value`, sorted.
fn identities(s: &dyn Storage, shop: i64, customer: i64) -> Vec<String> {
    s.read(|tx| tx.identities().of_customer(shop, customer)).unwrap().into_iter().map(|i| format!("{}:{}", i.kind, i.value)).collect()
}

fn owner(s: &dyn Storage, shop: i64, kind: &str, value: &str) -> Option<i64> {
    s.read(|tx| tx.identities().owner(shop, kind, value)).unwrap()
}

fn active(s: &dyn Storage, shop: i64, customer: i64) -> Option<i64> {
    s.read(|tx| tx.customers().active(shop, customer)).unwrap()
}

fn total_spent(s: &dyn Storage, shop: i64, customer: i64) -> (i64, i64) {
    let stats = s.read(|tx| tx.ingest().stats(shop, customer)).unwrap();
    (stats.total_spent, stats.order_count)
}

fn order_owner(s: &dyn Storage, shop: i64, order: &str) -> i64 {
    s.read(|tx| tx.ingest().order(shop, order)).unwrap().expect("the order is recorded").customer_id
}

fn tags(s: &dyn Storage, shop: i64, customer: i64) -> Vec<String> {
    let mut tags: Vec<String> =
        s.read(|tx| tx.merges().tags(shop, customer)).unwrap().into_iter().map(|t| format!("{}/{}", t.source, t.tag)).collect();
    tags.sort();
    tags
}

fn scores(s: &dyn Storage, shop: i64, customer: i64) -> Vec<(String, f64)> {
    let mut scores: Vec<(String, f64)> =
        s.read(|tx| tx.merges().scores(shop, customer)).unwrap().into_iter().map(|s| (s.model, s.value)).collect();
    scores.sort_by(|a, b| a.0.cmp(&b.0));
    scores
}

fn tag(s: &dyn Storage, shop: i64, customer: i64, source: &str, name: &str, at: DateTime<Utc>) {
    let tag = MovedTag { tag: name.into(), source: source.into(), reason: None, created_at: at, added_to_survivor: false };
    assert!(s.write(|tx| tx.merge_writer().add_tag(shop, customer, &tag)).unwrap());
}

fn score(s: &dyn Storage, shop: i64, customer: i64, model: &str, value: f64, at: DateTime<Utc>) {
    let score = MovedScore { model: model.into(), value, label: None, explanation: None, scored_at: at, added_to_survivor: false };
    assert!(s.write(|tx| tx.merge_writer().add_score(shop, customer, &score)).unwrap());
}

fn consent(s: &dyn Storage, shop: i64, customer: i64, channel: &str) -> Option<String> {
    s.read(|tx| tx.merges().consent(shop, customer, channel)).unwrap().map(|c| c.status)
}

fn set_consent(s: &dyn Storage, shop: i64, customer: i64, channel: &str, status: &str, at: DateTime<Utc>) {
    let row = ConsentRow { status: status.into(), source: "conformance".into(), updated_at: at };
    s.write(|tx| tx.merge_writer().set_consent(shop, customer, channel, Some(&row))).unwrap();
}

fn award(s: &dyn Storage, shop: i64, customer: i64, points: i64, key: &str, at: DateTime<Utc>) {
    let p = SchemePoints { shop_id: shop, customer_id: customer, points, source: "tiered-points", source_key: key, reason: "test", at };
    assert!(s.write(|tx| ledger::award(tx, &p, None)).unwrap().is_some());
}

fn balance(s: &dyn Storage, shop: i64, customer: i64) -> i64 {
    s.read(|tx| tx.ledger().balance(shop, customer)).unwrap()
}

fn ledger_ids(s: &dyn Storage, shop: i64, customer: i64) -> Vec<i64> {
    s.read(|tx| tx.merges().ledger_ids(shop, customer)).unwrap()
}

/// The one merge a customer took part in as the merged side.
fn merge_of(s: &dyn Storage, shop: i64, merged: i64) -> i64 {
    // Merge ids are handed out in order; a shop's merges are few in these cases.
    (1..100)
        .find(|id| s.read(|tx| tx.merges().merge(shop, *id)).unwrap().is_some_and(|(m, _)| m.merged_id == merged))
        .expect("a merge of that customer")
}

struct Case {
    name: &'static str,
    caps: &'static [(&'static str, u32)],
    /// (event, expected status, substring of `field: reason`)
    events: Vec<(Value, OutcomeStatus, &'static str)>,
    /// Identifier sets, one per active customer, as `kind:value`.
    customers: Vec<Vec<&'static str>>,
    /// Customers handed out by accepted events that were merged away.
    merged: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "new identifiers create a customer",
            caps: &[],
            events: vec![(upsert("e1", &[("phone", "13812345678"), ("nick", "xiaoming")]), Accepted, "")],
            customers: vec![vec!["nick:xiaoming", "phone:+8613812345678"]],
            merged: 0,
        },
        Case {
            name: "a known identifier resolves and a new one attaches",
            caps: &[],
            events: vec![
                (upsert("e1", &[("phone", "138 1234 5678")]), Accepted, ""),
                (upsert("e2", &[("phone", "+86 13812345678"), ("email", "Ming@Example.com ")]), Accepted, ""),
            ],
            customers: vec![vec!["email:ming@example.com", "phone:+8613812345678"]],
            merged: 0,
        },
        Case {
            name: "identifiers of several customers merge them",
            caps: &[],
            events: vec![
                (upsert("e1", &[("phone", "13812345678")]), Accepted, ""),
                (upsert("e2", &[("email", "ming@example.com")]), Accepted, ""),
                (upsert("e3", &[("unionid", "oU1")]), Accepted, ""),
                (upsert("e4", &[("email", "ming@example.com"), ("phone", "13812345678"), ("unionid", "oU1")]), Accepted, ""),
            ],
            customers: vec![vec!["email:ming@example.com", "phone:+8613812345678", "unionid:oU1"]],
            merged: 2,
        },
        Case {
            name: "junk identifiers are rejected with the field",
            caps: &[],
            events: vec![
                (upsert("e1", &[("phone", "null")]), Rejected, "identities[0].value: is a placeholder value"),
                (upsert("e2", &[("nick", "ok"), ("phone", "00000000000")]), Rejected, "identities[1].value: is all zeros"),
                (upsert("e3", &[("email", "")]), Rejected, "identities[0].value: is empty"),
                (upsert("e4", &[("phone", "12")]), Rejected, "not a valid phone number"),
                (upsert("e5", &[("wechat", "x")]), Rejected, "identities[0].kind: unknown identifier kind"),
            ],
            customers: vec![],
            merged: 0,
        },
        Case {
            name: "attaching beyond the cap is refused",
            caps: &[("phone", 1)],
            events: vec![
                (upsert("e1", &[("phone", "13812345678")]), Accepted, ""),
                (
                    upsert("e2", &[("phone", "13812345678"), ("phone", "13912345678")]),
                    Rejected,
                    "identities: customer 1 would hold 2 phone identifiers; the cap is 1",
                ),
            ],
            customers: vec![vec!["phone:+8613812345678"]],
            merged: 0,
        },
        Case {
            name: "a new customer beyond the cap is refused",
            caps: &[("nick", 1)],
            events: vec![(
                upsert("e1", &[("nick", "a"), ("nick", "b")]),
                Rejected,
                "identities: a new customer would hold 2 nick identifiers; the cap is 1",
            )],
            customers: vec![],
            merged: 0,
        },
        Case {
            name: "a merge beyond the cap is refused and nothing moves",
            caps: &[("phone", 1)],
            events: vec![
                (upsert("e1", &[("phone", "13812345678"), ("nick", "a")]), Accepted, ""),
                (upsert("e2", &[("phone", "13912345678"), ("nick", "b")]), Accepted, ""),
                (
                    upsert("e3", &[("nick", "a"), ("nick", "b")]),
                    Rejected,
                    "merging customers 1, 2 would hold 2 phone identifiers; the cap is 1",
                ),
            ],
            customers: vec![vec!["nick:a", "phone:+8613812345678"], vec!["nick:b", "phone:+8613912345678"]],
            merged: 0,
        },
        Case {
            name: "a kind without a cap of its own takes the default",
            caps: &[("phone", 5)],
            events: vec![
                (
                    upsert("e1", &[("phone", "13812345678"), ("phone", "13912345678"), ("phone", "13712345678"), ("phone", "13612345678")]),
                    Accepted,
                    "",
                ),
                (
                    upsert("e2", &[("nick", "a"), ("nick", "b"), ("nick", "c"), ("nick", "d")]),
                    Rejected,
                    "would hold 4 nick identifiers; the cap is 3",
                ),
            ],
            customers: vec![vec!["phone:+8613612345678", "phone:+8613712345678", "phone:+8613812345678", "phone:+8613912345678"]],
            merged: 0,
        },
        Case {
            name: "a customer named by id resolves to it, and a merged id to its survivor",
            caps: &[],
            events: vec![
                (upsert("e1", &[("phone", "13812345678")]), Accepted, ""),
                (upsert("e2", &[("nick", "b")]), Accepted, ""),
                (
                    json!({"id": "e3", "type": "customer.upsert", "customer_id": 2, "identities": ids(&[("email", "b@example.com")])}),
                    Accepted,
                    "",
                ),
                (upsert("e4", &[("phone", "13812345678"), ("nick", "b")]), Accepted, ""),
                (json!({"id": "e5", "type": "customer.upsert", "customer_id": 2, "identities": ids(&[("unionid", "oU2")])}), Accepted, ""),
                (json!({"id": "e6", "type": "customer.upsert", "customer_id": 99}), Rejected, "customer_id: no customer 99 in this shop"),
            ],
            customers: vec![vec!["email:b@example.com", "nick:b", "phone:+8613812345678", "unionid:oU2"]],
            merged: 1,
        },
        Case {
            name: "a resent event id is a duplicate and applies nothing",
            caps: &[],
            events: vec![
                (upsert("e1", &[("phone", "13812345678")]), Accepted, ""),
                (upsert("e1", &[("phone", "13912345678")]), Duplicate, ""),
            ],
            customers: vec![vec!["phone:+8613812345678"]],
            merged: 0,
        },
    ]
}

/// The identity table: each case ingests its events one batch each and states each
/// outcome, which identifiers end up on one customer, and how many were merged away.
pub fn identity_table_cases(factory: &dyn Factory) {
    for case in cases() {
        let (b, shop) = shop(factory);
        let s = b.storage();
        let mut caps = IdentityCaps::default();
        for (kind, cap) in case.caps {
            caps.per_kind.insert((*kind).to_owned(), *cap);
        }
        let mut handed_out = BTreeSet::new();
        for (i, (event, status, reason)) in case.events.iter().enumerate() {
            let report = ingest_with(s, shop, &caps, vec![event.clone()], day(0, i as i64));
            let outcome = &report.outcomes[0];
            assert_eq!(outcome.status, *status, "{}: {event} -> {outcome:?}", case.name);
            let text = format!("{}: {}", outcome.field.clone().unwrap_or_default(), outcome.reason.clone().unwrap_or_default());
            assert!(text.contains(reason), "{}: reason {text:?} lacks {reason:?}", case.name);
            handed_out.extend(outcome.customer_id);
        }
        let customers: BTreeSet<i64> = handed_out.iter().filter_map(|&c| active(s, shop, c)).collect();
        let found: BTreeSet<Vec<String>> = customers.iter().map(|&c| identities(s, shop, c)).collect();
        let expected: BTreeSet<Vec<String>> = case.customers.iter().map(|ids| ids.iter().map(|s| s.to_string()).collect()).collect();
        assert_eq!(found, expected, "{}", case.name);
        let merged = handed_out.iter().filter(|&&c| active(s, shop, c) != Some(c)).count();
        assert_eq!(merged, case.merged, "{}", case.name);
        for ids in &case.customers {
            for id in ids {
                let (kind, value) = id.split_once(':').unwrap();
                let held = owner(s, shop, kind, value).expect("the identifier is held");
                assert!(customers.contains(&held), "{}: {id} is held by an active customer", case.name);
            }
        }
    }
}

/// When identifiers of several customers meet, the customer first seen earliest
/// survives, whichever arrived first: first seen is the earliest of its events' times.
pub fn merge_survivor_is_the_customer_first_seen_earliest(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    // Arrives first, but with an order of day 5.
    let late = accepted(&*b, shop, order("o1", &[("phone", "13800000001")], "T1", 100, day(5, 0)), day(6, 0));
    // Arrives second, with history imported from day 1.
    let early = accepted(&*b, shop, order("o2", &[("email", "early@example.com")], "T2", 200, day(1, 0)), day(6, 1));
    assert!(late < early, "the later-seen customer has the lower id");
    let survivor = accepted(&*b, shop, upsert("m", &[("phone", "13800000001"), ("email", "early@example.com")]), day(7, 0));
    assert_eq!(survivor, early, "the customer first seen earliest survives");
    assert_eq!(active(s, shop, late), Some(early));
    assert_eq!(s.read(|tx| tx.ingest().created_at(shop, early)).unwrap(), day(1, 0));
    assert_eq!(total_spent(s, shop, early), (300, 2));
}

/// A merge moves everything of the merged side to the survivor; its unmerge puts back
/// exactly that (identifiers, orders, behaviours, stats, ledger entries, tags, scores,
/// consents and the profile fields the survivor took), and leaves on the survivor what
/// arrived after the merge.
pub fn merge_then_unmerge_restores_everything(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let phone = [("phone", "13812345678")];
    let email = [("email", "ming@example.com")];
    let a = accepted(&*b, shop, order("o1", &phone, "T1", 10_000, day(0, 0)), day(0, 0));
    let m = accepted(&*b, shop, order("o2", &email, "T2", 5_000, day(1, 0)), day(1, 0));
    let behaviour = json!({"id": "b1", "type": "behaviour", "identities": ids(&email), "behaviour": {"kind": "view", "sku": "SKU-9"}});
    accepted(&*b, shop, behaviour, day(1, 1));
    let profile = json!({"id": "p2", "type": "customer.upsert", "identities": ids(&email),
                         "profile": {"city": "Hangzhou", "attributes": {"vip": true}}});
    accepted(&*b, shop, profile, day(1, 2));
    award(s, shop, a, 40, "a1", day(1, 3));
    award(s, shop, m, 60, "m1", day(1, 4));
    tag(s, shop, a, "manual", "shared", day(1, 5));
    tag(s, shop, m, "manual", "shared", day(1, 5));
    tag(s, shop, m, "manual", "likes-red", day(1, 5));
    score(s, shop, a, "rfm", 1.0, day(1, 6));
    score(s, shop, m, "rfm", 2.0, day(1, 6));
    score(s, shop, m, "churn", 0.5, day(1, 6));
    set_consent(s, shop, a, "sms", "opted_in", day(1, 7));
    set_consent(s, shop, m, "sms", "opted_out", day(1, 7));
    set_consent(s, shop, m, "email", "opted_in", day(1, 7));
    let before = (identities(s, shop, a), identities(s, shop, m), ledger_ids(s, shop, a), ledger_ids(s, shop, m));
    let m_behaviours = s.read(|tx| tx.merges().behaviour_ids(shop, m)).unwrap();
    assert_eq!(m_behaviours.len(), 1);

    let survivor = accepted(&*b, shop, upsert("m", &[("phone", "13812345678"), ("email", "ming@example.com")]), day(2, 0));
    assert_eq!(survivor, a, "the older customer survives");
    assert_eq!(active(s, shop, m), Some(a), "the merged side is found as its survivor");
    assert_eq!(identities(s, shop, a), ["email:ming@example.com", "phone:+8613812345678"]);
    assert!(identities(s, shop, m).is_empty());
    assert_eq!((order_owner(s, shop, "T1"), order_owner(s, shop, "T2")), (a, a));
    assert_eq!(s.read(|tx| tx.merges().behaviour_ids(shop, a)).unwrap(), m_behaviours);
    assert_eq!((total_spent(s, shop, a), total_spent(s, shop, m)), ((15_000, 2), (0, 0)), "stats recomputed on both sides");
    assert_eq!((balance(s, shop, a), balance(s, shop, m)), (100, 0), "one ledger");
    assert_eq!(tags(s, shop, a), ["manual/likes-red", "manual/shared"]);
    assert!(tags(s, shop, m).is_empty());
    assert_eq!(scores(s, shop, a), [("churn".to_owned(), 0.5), ("rfm".to_owned(), 1.0)], "the survivor keeps its own score of a model");
    assert_eq!(consent(s, shop, a, "sms").as_deref(), Some("opted_out"), "the stricter answer wins");
    assert_eq!(consent(s, shop, a, "email").as_deref(), Some("opted_in"), "a consent the survivor lacked is taken");
    let profile = s.read(|tx| tx.ingest().profile(shop, a)).unwrap();
    assert_eq!(profile.city.as_deref(), Some("Hangzhou"));
    assert!(profile.attributes.contains("vip"), "{}", profile.attributes);

    // An order naming the merged side's identifier after the merge lands on the survivor, and stays there.
    assert_eq!(accepted(&*b, shop, order("o3", &email, "T3", 700, day(3, 0)), day(3, 0)), a);

    let merge_id = merge_of(s, shop, m);
    let undone = merge::unmerge(s, shop, merge_id, &actor(), day(4, 0)).unwrap();
    assert_eq!((undone.survivor_id, undone.merged_id, undone.unmerged_at), (a, m, Some(day(4, 0))));
    assert_eq!(undone.identities.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), ["ming@example.com"]);
    assert_eq!(active(s, shop, m), Some(m), "the merged customer is active again");
    assert_eq!((identities(s, shop, a), identities(s, shop, m), ledger_ids(s, shop, a), ledger_ids(s, shop, m)), before);
    assert_eq!((order_owner(s, shop, "T1"), order_owner(s, shop, "T2"), order_owner(s, shop, "T3")), (a, m, a));
    assert_eq!(s.read(|tx| tx.merges().behaviour_ids(shop, m)).unwrap(), m_behaviours);
    assert_eq!((total_spent(s, shop, a), total_spent(s, shop, m)), ((10_700, 2), (5_000, 1)));
    assert_eq!((balance(s, shop, a), balance(s, shop, m)), (40, 60));
    assert_eq!(tags(s, shop, a), ["manual/shared"], "a tag the survivor held itself stays");
    assert_eq!(tags(s, shop, m), ["manual/likes-red", "manual/shared"]);
    assert_eq!(scores(s, shop, a), [("rfm".to_owned(), 1.0)]);
    assert_eq!(scores(s, shop, m), [("churn".to_owned(), 0.5), ("rfm".to_owned(), 2.0)]);
    assert_eq!((consent(s, shop, a, "sms").as_deref(), consent(s, shop, a, "email")), (Some("opted_in"), None));
    assert_eq!(consent(s, shop, m, "sms").as_deref(), Some("opted_out"));
    let (ours, theirs) = s.read(|tx| Ok((tx.ingest().profile(shop, a)?, tx.ingest().profile(shop, m)?))).unwrap();
    assert_eq!((ours.city, ours.attributes.as_str()), (None, "{}"), "fields filled by the merge are emptied again");
    assert_eq!(theirs.city.as_deref(), Some("Hangzhou"));

    let again = merge::unmerge(s, shop, merge_id, &actor(), day(5, 0)).unwrap_err();
    assert!(matches!(&again, Error::Conflict(why) if why.contains("already undone")), "{again:?}");
}

/// A merged side that had itself absorbed a customer comes back with it; the inner
/// merge cannot be undone while its survivor is merged away.
pub fn merge_nested_unmerges_outer_first(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let a = accepted(&*b, shop, order("a", &[("nick", "a")], "TA", 100, day(0, 0)), day(0, 0));
    let bb = accepted(&*b, shop, order("b", &[("nick", "b")], "TB", 200, day(1, 0)), day(1, 0));
    let c = accepted(&*b, shop, order("c", &[("nick", "c")], "TC", 400, day(2, 0)), day(2, 0));
    accepted(&*b, shop, upsert("bc", &[("nick", "b"), ("nick", "c")]), day(3, 0));
    accepted(&*b, shop, upsert("ab", &[("nick", "a"), ("nick", "b")]), day(4, 0));
    assert_eq!(active(s, shop, c), Some(a), "the chain of merges is followed");
    assert_eq!(total_spent(s, shop, a).0, 700);
    let (inner, outer) = (merge_of(s, shop, c), merge_of(s, shop, bb));
    let refused = merge::unmerge(s, shop, inner, &actor(), day(5, 0)).unwrap_err();
    assert!(matches!(&refused, Error::Conflict(why) if why.contains("undo that merge first")), "{refused:?}");
    merge::unmerge(s, shop, outer, &actor(), day(5, 0)).unwrap();
    assert_eq!((total_spent(s, shop, a).0, total_spent(s, shop, bb).0), (100, 600), "b comes back with c's order too");
    assert_eq!(active(s, shop, c), Some(bb));
    merge::unmerge(s, shop, inner, &actor(), day(6, 0)).unwrap();
    assert_eq!((total_spent(s, shop, a).0, total_spent(s, shop, bb).0, total_spent(s, shop, c).0), (100, 200, 400));
    assert_eq!(
        (identities(s, shop, a), identities(s, shop, bb), identities(s, shop, c)),
        (vec!["nick:a".into()], vec!["nick:b".into()], vec!["nick:c".into()])
    );
}

/// An event id is received once per shop: a resend, in a later batch or the same one,
/// is a duplicate naming the first one's customer and applies nothing.
pub fn identity_duplicates_by_event_id(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let first = order("o1", &[("phone", "13800000001")], "T1", 1_000, day(0, 0));
    let c = accepted(&*b, shop, first.clone(), day(0, 0));
    let resend = order("o1", &[("phone", "13800000002")], "T2", 2_000, day(1, 0));
    let report = b.ingest(shop, vec![resend.clone(), upsert("u1", &[("phone", "13800000003")]), resend], day(1, 0));
    let statuses: Vec<_> = report.outcomes.iter().map(|o| (o.status, o.customer_id == Some(c))).collect();
    assert_eq!(statuses, [(Duplicate, true), (Accepted, false), (Duplicate, true)]);
    assert_eq!((report.accepted, report.duplicates, report.rejected), (1, 2, 0));
    assert_eq!(owner(s, shop, "phone", "+8613800000002"), None, "a duplicate attaches nothing");
    assert!(s.read(|tx| tx.ingest().order(shop, "T2")).unwrap().is_none(), "nor records its order");
    assert_eq!(total_spent(s, shop, c), (1_000, 1));
    // Within one batch too: the second of two events with one id is a duplicate.
    let twice = b.ingest(shop, vec![upsert("u2", &[("nick", "x")]), upsert("u2", &[("nick", "y")])], day(2, 0));
    assert_eq!(twice.outcomes.iter().map(|o| o.status).collect::<Vec<_>>(), [Accepted, Duplicate]);
    assert_eq!(owner(s, shop, "nick", "y"), None);
}

/// An event refused after it wrote (a new customer made before its order id is found
/// taken) leaves nothing, and the rest of its batch applies; refused events were not
/// received, so a resend is refused again rather than a duplicate.
pub fn identity_an_event_failing_after_writing_leaves_nothing(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let report = b.ingest(
        shop,
        vec![
            order("o1", &[("phone", "13800000001")], "T1", 1_000, day(0, 0)),
            order("o2", &[("phone", "13800000002")], "T1", 2_000, day(0, 1)),
            order("o3", &[("phone", "13800000003")], "T3", 3_000, day(0, 2)),
        ],
        day(1, 0),
    );
    let statuses: Vec<_> = report.outcomes.iter().map(|o| (o.status, o.field.clone())).collect();
    assert_eq!(statuses, [(Accepted, None), (Rejected, Some("order.id".into())), (Accepted, None)]);
    assert_eq!(owner(s, shop, "phone", "+8613800000002"), None, "no customer for the refused order's phone");
    let third = report.outcomes[2].customer_id.unwrap();
    assert_eq!(total_spent(s, shop, third), (3_000, 1));
    let again = b.ingest(shop, vec![order("o2", &[("phone", "13800000002")], "T1", 2_000, day(0, 1))], day(2, 0));
    assert_eq!((again.outcomes[0].status, again.outcomes[0].field.as_deref()), (Rejected, Some("order.id")));
}

/// Orders and refunds keep a customer's stats: a full refund takes the order out of the
/// count, a refund beyond what remains paid or of an unknown order is refused.
pub fn identity_orders_and_refunds_keep_stats(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let phone = [("phone", "13812345678")];
    let refund =
        |id: &str, order: &str, amount: i64| json!({"id": id, "type": "order.refunded", "refund": {"order_id": order, "amount": amount}});
    let r = b.ingest(
        shop,
        vec![
            order("o1", &phone, "T1", 10_000, day(0, 0)),
            order("o2", &phone, "T2", 4_000, day(5, 0)),
            refund("r1", "T1", 2_500),
            refund("r2", "T2", 4_000),
            refund("r3", "T2", 1),
            refund("r4", "T9", 1),
        ],
        day(6, 0),
    );
    let fields: Vec<_> = r.outcomes.iter().map(|o| (o.status, o.field.clone())).collect();
    assert_eq!(
        fields,
        [
            (Accepted, None),
            (Accepted, None),
            (Accepted, None),
            (Accepted, None),
            (Rejected, Some("refund.amount".into())),
            (Rejected, Some("refund.order_id".into()))
        ]
    );
    let c = r.outcomes[0].customer_id.unwrap();
    let stats = s.read(|tx| tx.ingest().stats(shop, c)).unwrap();
    assert_eq!((stats.total_spent, stats.order_count, stats.refund_count, stats.refund_amount), (7_500, 1, 2, 6_500));
    assert_eq!((stats.first_order_at, stats.last_order_at), (Some(day(0, 0)), Some(day(0, 0))), "a fully refunded order no longer counts");
}

/// Shops are apart: one identifier in two shops is two customers, an event id of one
/// shop is new in another, a customer id or a merge of one shop is not found in another.
pub fn identity_shops_are_kept_apart(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let other = b.create_shop("Another shop", "Asia/Shanghai");
    let ours = accepted(&*b, shop, upsert("e1", &[("phone", "13800000001")]), day(0, 0));
    let theirs = accepted(&*b, other, upsert("e1", &[("phone", "13800000001")]), day(0, 0));
    assert_ne!(ours, theirs, "the same event id and identifier in another shop make another customer");
    assert_eq!((owner(s, shop, "phone", "+8613800000001"), owner(s, other, "phone", "+8613800000001")), (Some(ours), Some(theirs)));
    let named = b.ingest(other, vec![json!({"id": "e2", "type": "customer.upsert", "customer_id": ours})], day(1, 0));
    assert_eq!(named.outcomes[0].status, Rejected, "a customer id of another shop is unknown");
    assert_eq!(active(s, other, ours), None);
    accepted(&*b, shop, upsert("e3", &[("email", "x@example.com")]), day(1, 0));
    accepted(&*b, shop, upsert("e4", &[("phone", "13800000001"), ("email", "x@example.com")]), day(2, 0));
    let merge_id = (1..100).find(|id| s.read(|tx| tx.merges().merge(shop, *id)).unwrap().is_some()).expect("a merge");
    assert!(s.read(|tx| tx.merges().merge(other, merge_id)).unwrap().is_none());
    let err = merge::unmerge(s, other, merge_id, &actor(), day(3, 0)).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(identities(s, other, theirs), ["phone:+8613800000001"], "the other shop's customer took no part");
}

/// The ports of ingest and merges answer only within the shop they are given: asked with
/// another shop's id for this shop's customer, order or merge, they read nothing and
/// write nothing, and the rows read back with their own shop are as they were.
pub fn identity_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let other = b.create_shop("Another shop", "Asia/Shanghai");
    let phone = [("phone", "13812345678")];
    let email = [("email", "ming@example.com")];
    let a = accepted(&*b, shop, order("o1", &phone, "T1", 10_000, day(0, 0)), day(1, 0));
    let m = accepted(&*b, shop, order("o2", &email, "T2", 5_000, day(1, 0)), day(1, 0));
    let profile = json!({"id": "p1", "type": "customer.upsert", "identities": ids(&phone), "profile": {"city": "Hangzhou"}});
    accepted(&*b, shop, profile, day(1, 1));
    let behaviour = json!({"id": "b1", "type": "behaviour", "identities": ids(&phone), "behaviour": {"kind": "view", "sku": "SKU-9"}});
    accepted(&*b, shop, behaviour, day(1, 2));
    award(s, shop, a, 40, "a1", day(1, 3));
    tag(s, shop, a, "manual", "vip", day(1, 4));
    score(s, shop, a, "rfm", 1.0, day(1, 4));
    set_consent(s, shop, a, "sms", "opted_in", day(1, 4));
    // The other shop has data of its own, the same identifier included.
    let theirs = accepted(&*b, other, order("o1", &phone, "T1", 300, day(0, 0)), day(0, 0));
    let order_id = s.read(|tx| tx.orders().by_external_id(shop, "T1")).unwrap().expect("the order exists");

    // Reads with the other shop see nothing of this shop's customer.
    s.read(|tx| {
        assert!(tx.identities().counts(other, a)?.is_empty());
        assert!(tx.identities().of_customer(other, a)?.is_empty());
        assert!(tx.ingest().created_at(other, a).is_err(), "another shop's customer is not found");
        assert!(tx.ingest().profile(other, a).is_err());
        assert!(tx.ingest().stats(other, a).is_err());
        assert_eq!(tx.ingest().order_count(other, a)?, 0);
        assert!(tx.orders().refund_state(other, order_id).is_err(), "another shop's order is not found");
        let merges = tx.merges();
        assert!(merges.order_ids(other, a)?.is_empty());
        assert!(merges.behaviour_ids(other, a)?.is_empty());
        assert!(merges.ledger_ids(other, a)?.is_empty());
        assert!(merges.tags(other, a)?.is_empty());
        assert!(merges.scores(other, a)?.is_empty());
        assert!(merges.consents(other, a)?.is_empty());
        assert_eq!(merges.consent(other, a, "sms")?, None);
        assert!(merges.merged_into(other, a).is_err());
        Ok(())
    })
    .unwrap();

    // Writes with the other shop change nothing of this shop's rows.
    let before = |s: &dyn Storage| {
        let rows = s
            .read(|tx| {
                Ok((
                    tx.identities().of_customer(shop, a)?,
                    tx.ingest().created_at(shop, a)?,
                    tx.ingest().profile(shop, a)?,
                    tx.ingest().stats(shop, a)?,
                    tx.ingest().order(shop, "T1")?,
                    tx.merges().order_ids(shop, a)?,
                    tx.merges().behaviour_ids(shop, a)?,
                    tx.merges().ledger_ids(shop, a)?,
                    tx.customers().active(shop, a)?,
                ))
            })
            .unwrap();
        (rows, tags(s, shop, a), scores(s, shop, a), consent(s, shop, a, "sms"))
    };
    let kept = before(s);
    s.write(|tx| {
        let w = tx.ingest_writer();
        w.seen_at(other, a, day(0, 0) - chrono::Duration::days(30))?;
        w.set_profile(other, a, &kith_core::ports::ProfileRow { city: Some("Elsewhere".into()), ..tx.ingest().profile(shop, a)? })?;
        w.add_order_to_stats(other, a, 777, day(2, 0), day(2, 0))?;
        w.refund_order(other, order_id, 10_000, true)?;
        w.insert_refund(other, order_id, 10_000, None, day(2, 0))?;
        w.subtract_refund(other, a, 10_000, true, day(2, 0))?;
        let mw = tx.merge_writer();
        mw.move_identities(other, a, theirs)?;
        mw.move_orders(other, a, theirs)?;
        mw.move_behaviours(other, a, theirs)?;
        mw.move_ledger(other, a, theirs)?;
        mw.remove_tag(other, a, "vip", "manual")?;
        mw.clear_tags(other, a)?;
        mw.remove_score(other, a, "rfm")?;
        mw.clear_scores(other, a)?;
        mw.set_consent(other, a, "sms", None)?;
        mw.set_merged_into(other, a, Some(theirs), day(2, 0))?;
        Ok(())
    })
    .unwrap();
    // A recomputation in the shop counts no refund written through the other shop.
    s.write(|tx| tx.ingest_writer().recompute_stats(shop, a)).unwrap();
    assert_eq!(before(s), kept, "writes with another shop's id left this shop's rows as they were");
    assert_eq!(s.read(|tx| tx.ingest().stats(shop, a)).unwrap().refund_count, 0);
    assert_eq!(s.read(|tx| tx.ingest().stats(other, theirs)).unwrap().total_spent, 300, "nor did they write the other shop's");

    // A merge of this shop: giving it back, or marking it undone, through the other shop does nothing.
    let survivor = accepted(&*b, shop, upsert("m", &[("phone", "13812345678"), ("email", "ming@example.com")]), day(3, 0));
    let merged = if survivor == a { m } else { a };
    let merge_id = merge_of(s, shop, merged);
    let (_, record) = s.read(|tx| tx.merges().merge(shop, merge_id)).unwrap().expect("the merge is the shop's");
    let kept = (identities(s, shop, survivor), s.read(|tx| tx.merges().order_ids(shop, survivor)).unwrap());
    s.write(|tx| {
        let mw = tx.merge_writer();
        mw.return_orders(other, &record.orders, survivor, merged)?;
        mw.return_behaviours(other, &record.behaviours, survivor, merged)?;
        mw.return_ledger(other, &record.points, survivor, merged)?;
        mw.set_merged_into(other, merged, None, day(3, 1))?;
        mw.mark_unmerged(other, merge_id, "thief", day(3, 1))
    })
    .unwrap();
    assert_eq!((identities(s, shop, survivor), s.read(|tx| tx.merges().order_ids(shop, survivor)).unwrap()), kept);
    assert_eq!(s.read(|tx| tx.merges().merged_into(shop, merged)).unwrap(), Some(survivor));
    let (merge, _) = s.read(|tx| tx.merges().merge(shop, merge_id)).unwrap().unwrap();
    assert_eq!((merge.unmerged_at, merge.unmerged_by), (None, None), "the merge is not marked undone");
}
