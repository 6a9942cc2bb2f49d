//! The read and CRUD views of the core's records: journeys (definitions and their
//! versions, the lifecycle, runs, dry runs and statistics), customers (profiles, pages
//! and filters, counts, manual tags, the stats check), the commerce views (coupon
//! templates and their figures, rewards and redemptions, points accounts and ledgers,
//! loyalty settings) and the outbox's views (messages, consents, routes, backlogs).
//! Each answer is compared with what the case itself drove, and another shop's id is
//! not found.

use chrono::{DateTime, Utc};
use kith_core::journeys::RunFilter;
use kith_core::prelude::*;
use kith_core::{Actor, Error};
use kith_domain::journeys::{JourneyInput, JourneyRun, JourneyRunStatus, JourneyStatus};
use kith_domain::model::OutcomeStatus;
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

fn actor() -> Actor {
    Actor::cli("conformance")
}

/// A fresh backend with two shops, the second only to be kept apart from the first.
fn shops(factory: &dyn Factory) -> (Box<dyn Backend>, i64, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Records shop", "Asia/Shanghai");
    let other = backend.create_shop("Other shop", "Europe/Paris");
    (backend, shop, other)
}

/// Ingest one event at `at`; the customer it resolved to.
fn ingest(backend: &dyn Backend, shop: i64, event: Value, at: DateTime<Utc>) -> i64 {
    let report = backend.ingest(shop, vec![event], at);
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// A customer of the shop with this phone; its id.
fn customer(backend: &dyn Backend, shop: i64, phone: &str, at: DateTime<Utc>) -> i64 {
    let event = json!({"id": format!("upsert-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
    ingest(backend, shop, event, at)
}

/// An order of the buyer with this phone, paid and ingested at `at`; the buyer.
fn order(backend: &dyn Backend, shop: i64, phone: &str, id: &str, amount: i64, at: DateTime<Utc>) -> i64 {
    let event = json!({"id": format!("paid-{id}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": id, "amount": amount, "paid_at": at.to_rfc3339()}});
    ingest(backend, shop, event, at)
}

fn not_found<T: std::fmt::Debug>(out: Result<T, Error>, what: &str) {
    assert!(matches!(out, Err(Error::NotFound(_))), "{what}: expected not found, got {out:?}");
}

fn conflict<T: std::fmt::Debug>(out: Result<T, Error>) -> String {
    match out {
        Err(Error::Conflict(reason)) => reason,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn invalid_field<T: std::fmt::Debug>(out: Result<T, Error>) -> String {
    match out {
        Err(Error::Invalid(e)) => e.field,
        other => panic!("expected a refused field, got {other:?}"),
    }
}

fn journey_input(name: &str, definition: Value) -> JourneyInput {
    JourneyInput { name: name.into(), description: Some(format!("{name}, described")), definition }
}

/// A journey entering buyers, tagging them after `days`.
fn tagging(tag: &str, days: i64) -> Value {
    json!({
        "trigger": {"event": "order.paid"},
        "start": "wait",
        "steps": {
            "wait": {"wait": {"days": days}, "next": "tag"},
            "tag": {"tag": {"add": tag}}
        }
    })
}

pub fn journeys_definitions_keep_versions_and_move_through_their_lifecycle(factory: &dyn Factory) {
    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    let first = s.create_journey(shop, &journey_input("Thanks", tagging("thanked", 2)), &actor(), day(0, 0)).unwrap();
    assert_eq!((first.name.as_str(), first.status, first.version, first.in_progress), ("Thanks", JourneyStatus::Draft, 1, 0));
    assert_eq!((first.description.as_deref(), first.activated_at, first.created_at), (Some("Thanks, described"), None, day(0, 0)));
    assert_eq!(first.definition, tagging("thanked", 2));

    // A definition naming a coupon template the shop lacks is refused, naming the step.
    let bad = json!({"trigger": {"event": "order.paid"}, "start": "gift",
        "steps": {"gift": {"coupon": {"template_id": 987_654}}}});
    assert_eq!(
        invalid_field(s.create_journey(shop, &journey_input("Bad", bad.clone()), &actor(), day(0, 0))),
        "definition.steps.gift.coupon"
    );
    assert_eq!(
        invalid_field(s.update_journey(shop, first.id, &journey_input("Thanks", bad), &actor(), day(0, 1))),
        "definition.steps.gift.coupon"
    );
    let template = backend.create_coupon_template(shop, &template_terms("gift", 300));
    let elsewhere = json!({"trigger": {"event": "order.paid"}, "start": "gift", "steps": {"gift": {"coupon": {"template_id": template}}}});
    assert_eq!(
        invalid_field(s.create_journey(other, &journey_input("Elsewhere", elsewhere), &actor(), day(0, 0))),
        "definition.steps.gift.coupon",
        "another shop's template is not this shop's"
    );

    // A rename keeps the version; a new definition is a new version.
    let renamed = s.update_journey(shop, first.id, &journey_input("Thank you", tagging("thanked", 2)), &actor(), day(0, 2)).unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version, renamed.updated_at), ("Thank you", 1, day(0, 2)));
    let second = s.update_journey(shop, first.id, &journey_input("Thank you", tagging("thanked", 3)), &actor(), day(0, 3)).unwrap();
    assert_eq!((second.version, &second.definition), (2, &tagging("thanked", 3)));
    let versions = s.journey_versions(shop, first.id).unwrap();
    let listed: Vec<(i64, Value, DateTime<Utc>, String)> =
        versions.into_iter().map(|v| (v.version, v.definition, v.created_at, v.created_by)).collect();
    assert_eq!(listed, vec![(1, tagging("thanked", 2), day(0, 0), actor().label), (2, tagging("thanked", 3), day(0, 3), actor().label)]);

    // The lifecycle: draft → active → paused → active → archived, refusing the rest.
    let draft = s.create_journey(shop, &journey_input("Draft", tagging("drafted", 1)), &actor(), day(0, 4)).unwrap();
    let reason = conflict(s.set_journey_status(shop, first.id, JourneyStatus::Paused, &actor(), day(1, 0)));
    assert!(reason.contains("draft cannot become paused"), "{reason}");
    let active = s.set_journey_status(shop, first.id, JourneyStatus::Active, &actor(), day(1, 0)).unwrap();
    assert_eq!((active.status, active.activated_at), (JourneyStatus::Active, Some(day(1, 0))));
    let reason = conflict(s.set_journey_status(shop, first.id, JourneyStatus::Active, &actor(), day(1, 1)));
    assert!(reason.contains("already active"), "{reason}");
    let reason = conflict(s.delete_journey(shop, first.id, &actor(), day(1, 1)));
    assert!(reason.contains("only a draft can be deleted"), "{reason}");
    assert_eq!(s.set_journey_status(shop, first.id, JourneyStatus::Paused, &actor(), day(1, 2)).unwrap().status, JourneyStatus::Paused);
    let again = s.set_journey_status(shop, first.id, JourneyStatus::Active, &actor(), day(1, 3)).unwrap();
    assert_eq!((again.status, again.activated_at), (JourneyStatus::Active, Some(day(1, 0))), "resuming keeps the first activation");

    // A run in progress is ended by archiving.
    let buyer = order(&*backend, shop, "13900000001", "j1", 1_000, day(1, 4));
    s.advance_journeys(day(1, 4), 1000).unwrap();
    assert_eq!(s.journey(shop, first.id).unwrap().in_progress, 1);
    let archived = s.set_journey_status(shop, first.id, JourneyStatus::Archived, &actor(), day(1, 5)).unwrap();
    assert_eq!((archived.status, archived.in_progress), (JourneyStatus::Archived, 0));
    let runs = s.customer_runs(shop, buyer).unwrap();
    assert_eq!(runs.iter().map(|r| (r.journey_id, r.status)).collect::<Vec<_>>(), vec![(first.id, JourneyRunStatus::Exited)]);
    let reason = conflict(s.set_journey_status(shop, first.id, JourneyStatus::Active, &actor(), day(1, 6)));
    assert!(reason.contains("archived cannot become active"), "{reason}");
    let reason = conflict(s.update_journey(shop, first.id, &journey_input("Again", tagging("x", 1)), &actor(), day(1, 6)));
    assert!(reason.contains("archived"), "{reason}");

    // A draft is deleted; the list is the rest in id order.
    let kept = s.create_journey(shop, &journey_input("Kept", tagging("kept", 1)), &actor(), day(2, 0)).unwrap();
    s.delete_journey(shop, draft.id, &actor(), day(2, 1)).unwrap();
    not_found(s.journey(shop, draft.id), "a deleted journey");
    not_found(s.delete_journey(shop, draft.id, &actor(), day(2, 1)), "a deleted journey deleted again");
    let list: Vec<(i64, String, JourneyStatus, i64)> =
        s.journeys(shop).unwrap().into_iter().map(|j| (j.id, j.name, j.status, j.version)).collect();
    assert_eq!(list, vec![(first.id, "Thank you".into(), JourneyStatus::Archived, 2), (kept.id, "Kept".into(), JourneyStatus::Draft, 1)]);
    assert!(s.journeys(other).unwrap().is_empty());

    // The audit log tells each change.
    let actions: Vec<(String, Option<String>)> = s
        .list_audit(shop, None, 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action.starts_with("journey."))
        .map(|a| (a.action, a.target))
        .rev()
        .collect();
    let t = |id: i64| Some(format!("journey:{id}"));
    let expected: Vec<(String, Option<String>)> = [
        ("journey.created", t(first.id)),
        ("journey.updated", t(first.id)),
        ("journey.updated", t(first.id)),
        ("journey.created", t(draft.id)),
        ("journey.active", t(first.id)),
        ("journey.paused", t(first.id)),
        ("journey.active", t(first.id)),
        ("journey.archived", t(first.id)),
        ("journey.created", t(kept.id)),
        ("journey.deleted", t(draft.id)),
    ]
    .into_iter()
    .map(|(a, t)| (a.to_owned(), t))
    .collect();
    assert_eq!(actions, expected);

    // Another shop's id is not found, for reading and writing alike.
    let id = kept.id;
    not_found(s.journey(other, id), "journey");
    not_found(s.journey_versions(other, id), "journey_versions");
    not_found(s.update_journey(other, id, &journey_input("Stolen", tagging("x", 1)), &actor(), day(3, 0)), "update_journey");
    not_found(s.set_journey_status(other, id, JourneyStatus::Active, &actor(), day(3, 0)), "set_journey_status");
    not_found(s.delete_journey(other, id, &actor(), day(3, 0)), "delete_journey");
    not_found(s.journey_runs(other, first.id, &RunFilter::default(), None, 10), "journey_runs");
    not_found(s.journey_stats(other, first.id), "journey_stats");
    not_found(s.dry_run_journey(other, first.id, day(3, 0)), "dry_run_journey");
    not_found(s.customer_runs(other, buyer), "customer_runs");
    assert_eq!(s.journey(shop, id).unwrap().status, JourneyStatus::Draft, "the other shop changed nothing");
}

/// The coupon cases' terms (`face_value`, valid 30 days, one per customer, no budgets) under `name`.
fn template_terms(name: &str, face_value: i64) -> kith_domain::coupons::CouponTemplateInput {
    kith_domain::coupons::CouponTemplateInput { name: name.into(), ..crate::coupons::terms(face_value) }
}

/// Runs as the case sees them: (customer, version, status).
fn shape(runs: &[JourneyRun]) -> Vec<(i64, i64, JourneyRunStatus)> {
    runs.iter().map(|r| (r.customer_id, r.version, r.status)).collect()
}

pub fn journeys_runs_page_and_filter_and_stats_count_what_ran(factory: &dyn Factory) {
    let (backend, shop, _other) = shops(factory);
    let s = backend.storage();
    let with_split = |days: i64| {
        json!({
            "trigger": {"event": "order.paid"},
            "goal": {"event": "order.paid", "within_days": 30},
            "start": "split",
            "steps": {
                "split": {"split": [{"variant": "A", "weight": 50, "next": "wait"}, {"variant": "B", "weight": 50, "next": "wait"}]},
                "wait": {"wait": {"days": days}, "next": "tag"},
                "tag": {"tag": {"add": "followed"}}
            }
        })
    };
    let j = s.create_journey(shop, &journey_input("Follow", with_split(10)), &actor(), day(0, 0)).unwrap().id;
    s.set_journey_status(shop, j, JourneyStatus::Active, &actor(), day(0, 0)).unwrap();
    // Six buyers enter version 1 on day 1.
    let phones: Vec<String> = (0..10).map(|i| format!("1360000{i:04}")).collect();
    let mut buyers = Vec::new();
    for (i, phone) in phones[..6].iter().enumerate() {
        buyers.push(order(&*backend, shop, phone, &format!("a{i}"), 1_000, day(1, 0)));
    }
    s.advance_journeys(day(1, 0), 1000).unwrap();
    // Version 2 waits 20 days; four buyers enter it on day 2.
    s.update_journey(shop, j, &journey_input("Follow", with_split(20)), &actor(), day(2, 0)).unwrap();
    for (i, phone) in phones[6..].iter().enumerate() {
        buyers.push(order(&*backend, shop, phone, &format!("b{i}"), 2_000, day(2, 0)));
    }
    s.advance_journeys(day(2, 0), 1000).unwrap();
    // Buyers 0, 1 (version 1) and 7 (version 2) buy again: converted with that order's amount.
    let converts = [(0usize, 3_000i64), (1, 4_500), (7, 6_000)];
    for (i, amount) in converts {
        order(&*backend, shop, &phones[i], &format!("c{i}"), amount, day(3, 0));
    }
    s.advance_journeys(day(3, 0), 1000).unwrap();
    // Version 1's wait ends on day 11: its unconverted runs complete.
    s.advance_journeys(day(11, 1), 1000).unwrap();

    let all = s.journey_runs(shop, j, &RunFilter::default(), None, 100).unwrap();
    assert_eq!(all.len(), 10);
    let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    let mut newest_first = ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first, "newest first");
    let converted = |i: usize| converts.iter().find(|(c, _)| *c == i).map(|(_, a)| *a);
    let mut expected: Vec<(i64, i64, JourneyRunStatus)> = (0..10)
        .map(|i| {
            let version = if i < 6 { 1 } else { 2 };
            let status = match (converted(i), version) {
                (Some(_), _) => JourneyRunStatus::Converted,
                (None, 1) => JourneyRunStatus::Completed,
                (None, _) => JourneyRunStatus::Active,
            };
            (buyers[i], version, status)
        })
        .collect();
    expected.reverse();
    assert_eq!(shape(&all), expected);
    // Each buyer's arm of the split, as the customer's bucket assigns it.
    let variants: Vec<kith_domain::journeys::Variant> = ["A", "B"]
        .into_iter()
        .map(|v| kith_domain::journeys::Variant { variant: v.into(), weight: 50, next: Some("wait".into()) })
        .collect();
    let arm_of = |customer: i64| kith_domain::journeys::choose_variant(j, "split", customer, &variants).variant.clone();
    for run in &all {
        let i = buyers.iter().position(|b| *b == run.customer_id).unwrap();
        assert_eq!(run.revenue, converted(i), "{run:?}");
        assert_eq!(run.variant, Some(format!("split:{}", arm_of(run.customer_id))), "{run:?}");
    }

    // Paging: pages of three, each after the last run of the one before, make the whole list.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.journey_runs(shop, j, &RunFilter::default(), before, 3).unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(paged, ids);
    // Filters: by status, by customer, both.
    let by_status = |status| s.journey_runs(shop, j, &RunFilter { customer_id: None, status: Some(status) }, None, 100).unwrap();
    for status in JourneyRunStatus::ALL {
        let want: Vec<_> = expected.iter().filter(|(_, _, st)| *st == status).cloned().collect();
        assert_eq!(shape(&by_status(status)), want, "{status:?}");
    }
    let of = RunFilter { customer_id: Some(buyers[7]), status: None };
    assert_eq!(shape(&s.journey_runs(shop, j, &of, None, 100).unwrap()), vec![(buyers[7], 2, JourneyRunStatus::Converted)]);
    let none = RunFilter { customer_id: Some(buyers[7]), status: Some(JourneyRunStatus::Active) };
    assert!(s.journey_runs(shop, j, &none, None, 100).unwrap().is_empty());
    let page = s.journey_runs(shop, j, &RunFilter { customer_id: None, status: Some(JourneyRunStatus::Completed) }, None, 2).unwrap();
    assert_eq!(shape(&page), expected.iter().filter(|r| r.2 == JourneyRunStatus::Completed).take(2).cloned().collect::<Vec<_>>());

    // A customer's runs, with their steps.
    let mine = s.customer_runs(shop, buyers[2]).unwrap();
    assert_eq!(shape(&mine), vec![(buyers[2], 1, JourneyRunStatus::Completed)]);
    let steps: Vec<(String, String)> = mine[0].history.iter().map(|h| (h.step.clone(), h.outcome.clone())).collect();
    assert_eq!(
        steps,
        vec![("split".into(), arm_of(buyers[2])), ("wait".into(), "waited".into()), ("tag".into(), "done".into())],
        "{mine:?}"
    );
    not_found(s.customer_runs(shop, 987_654), "an unknown customer's runs");

    // The statistics, from what this case drove.
    let stats = s.journey_stats(shop, j).unwrap();
    let revenue: i64 = converts.iter().map(|(_, a)| a).sum();
    assert_eq!((stats.journey_id, stats.entered, stats.converted, stats.attributed_revenue), (j, 10, 3, revenue));
    assert_eq!((stats.in_progress, stats.completed, stats.exited, stats.failed), (3, 4, 0, 0));
    assert_eq!((stats.treated.entered, stats.treated.converted, stats.holdout.entered), (10, 3, 0));
    let versions: Vec<(i64, i64, i64, i64, i64)> =
        stats.versions.iter().map(|v| (v.version, v.entered, v.in_progress, v.converted, v.revenue)).collect();
    assert_eq!(versions, vec![(1, 6, 0, 2, 3_000 + 4_500), (2, 4, 3, 1, 6_000)]);
    // Variants: each buyer's arm as the bucketing assigns it, with the case's conversions.
    let mut want: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for (i, buyer) in buyers.iter().enumerate() {
        let arm = want.entry(format!("split:{}", arm_of(*buyer))).or_default();
        arm.0 += 1;
        arm.1 += i64::from(converted(i).is_some());
        arm.2 += converted(i).unwrap_or(0);
    }
    let got: std::collections::BTreeMap<String, (i64, i64, i64)> =
        stats.variants.iter().map(|v| (v.variant.clone(), (v.arm.entered, v.arm.converted, v.arm.revenue))).collect();
    assert_eq!(got, want);
    assert_eq!(got.values().map(|a| a.0).sum::<i64>(), 10);
    let tag = stats.steps.iter().find(|st| st.version == 1 && st.step == "tag").expect("version 1's tag step");
    assert_eq!(tag.outcomes.get("done"), Some(&4), "{tag:?}");
}

pub fn journeys_dry_run_counts_who_would_enter_now(factory: &dyn Factory) {
    let (backend, shop, _other) = shops(factory);
    let s = backend.storage();
    let j = s
        .create_journey(
            shop,
            &journey_input(
                "Recent buyers",
                json!({"trigger": {"event": "order.paid", "where": [{"field": "amount", "op": "gte", "value": 1000}]},
                "start": "tag", "steps": {"tag": {"tag": {"add": "recent"}}}}),
            ),
            &actor(),
            day(0, 0),
        )
        .unwrap()
        .id;
    // Two buyers of enough within the last day, one too long ago, one of too little.
    let recent_a = order(&*backend, shop, "13500000001", "r1", 1_500, day(5, 0));
    let recent_b = order(&*backend, shop, "13500000002", "r2", 1_000, day(5, 10));
    order(&*backend, shop, "13500000003", "old", 5_000, day(3, 0));
    order(&*backend, shop, "13500000004", "small", 999, day(5, 12));
    let dry = s.dry_run_journey(shop, j, day(5, 20)).unwrap();
    let mut want = vec![recent_a, recent_b];
    want.sort_unstable();
    assert_eq!((dry.count, dry.holdout, &dry.sample), (2, 0, &want), "{dry:?}");
    // A day later only the second is within 24 hours.
    let dry = s.dry_run_journey(shop, j, day(6, 5)).unwrap();
    assert_eq!((dry.count, dry.sample), (1, vec![recent_b]));

    // A segment's trigger: its members now, with the holdout a plain bucketing gives.
    let mut vips: Vec<i64> = (0..12).map(|i| customer(&*backend, shop, &format!("1340000{i:04}"), day(1, 0))).collect();
    for c in &vips {
        s.add_tag(shop, *c, "vip", None, &actor()).unwrap();
    }
    let segment = backend.create_segment(shop, "vip", json!({"tag": "vip"}), day(6, 0));
    let definition = json!({"trigger": {"segment": segment}, "holdout_percent": 50, "start": "tag",
        "steps": {"tag": {"tag": {"add": "welcome"}}}});
    let k = s.create_journey(shop, &journey_input("Welcome vips", definition), &actor(), day(6, 0)).unwrap().id;
    let dry = s.dry_run_journey(shop, k, day(6, 1)).unwrap();
    vips.sort_unstable();
    let held = vips.iter().filter(|c| kith_domain::journeys::in_holdout(k, **c, 50)).count() as i64;
    assert_eq!((dry.count, dry.holdout, &dry.sample), (12, held, &vips), "{dry:?}");
    assert!(dry.basis.contains(&format!("segment {segment}")), "{}", dry.basis);
}

/// The ids of a page of customers.
fn ids(page: &[kith_domain::model::Customer]) -> Vec<i64> {
    page.iter().map(|c| c.id).collect()
}

fn found(read: kith_core::customers::CustomerRead) -> kith_domain::model::CustomerDetail {
    match read {
        kith_core::customers::CustomerRead::Found(detail) => *detail,
        other => panic!("expected the customer, got {other:?}"),
    }
}

pub fn customers_read_filter_page_count_and_tag(factory: &dyn Factory) {
    use kith_core::customers::{CustomerFilter, CustomerRead};
    use kith_core::delivery::{Attempt, Effects};
    use kith_domain::identity::IdentityKind;
    use kith_domain::ingest::Identifier;
    use kith_domain::plugin::Decision;

    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    let with = |id: &str, identities: Value, at: DateTime<Utc>| {
        ingest(&*backend, shop, json!({"id": id, "type": "customer.upsert", "identities": identities}), at)
    };
    let ann = with("ann", json!([{"kind": "email", "value": "ann@example.com"}]), day(0, 0));
    let bob = with("bob", json!([{"kind": "phone", "value": "13800000002"}]), day(0, 1));
    let cat = with("cat", json!([{"kind": "email", "value": "cat@example.com"}]), day(0, 2));
    let dan = order(&*backend, shop, "13800000004", "d1", 5_000, day(1, 0));
    order(&*backend, shop, "13800000004", "d2", 3_000, day(2, 0));
    // One event naming Ann's address and Bob's phone: Bob is merged into Ann, first seen earlier.
    assert_eq!(
        with("both", json!([{"kind": "email", "value": "Ann@Example.com"}, {"kind": "phone", "value": "13800000002"}]), day(3, 0)),
        ann
    );
    assert_eq!(s.get_customer(shop, bob, 10).unwrap(), CustomerRead::Merged { into: ann });

    let detail = found(s.get_customer(shop, ann, 100).unwrap());
    let mut identities: Vec<(String, String)> = detail.customer.identities.iter().map(|i| (i.kind.clone(), i.value.clone())).collect();
    identities.sort();
    assert_eq!(identities, vec![("email".into(), "ann@example.com".into()), ("phone".into(), "+8613800000002".into())]);
    assert_eq!(detail.customer.created_at, day(0, 0));
    // Her events and those of Bob, merged into her, newest first.
    let timeline: Vec<(&str, Option<i64>)> = detail.timeline.iter().map(|e| (e.kind.as_str(), e.customer_id)).collect();
    assert_eq!(timeline, vec![("customer.merged", Some(ann)), ("customer.created", Some(bob)), ("customer.created", Some(ann))]);
    let seqs: Vec<i64> = detail.timeline.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    assert_eq!(found(s.get_customer(shop, ann, 2).unwrap()).timeline.len(), 2, "the newest two");
    let dan_stats = found(s.get_customer(shop, dan, 0).unwrap()).customer.stats;
    assert_eq!(
        (dan_stats.total_spent, dan_stats.order_count, dan_stats.first_order_at, dan_stats.last_order_at, dan_stats.average_order_value),
        (8_000, 2, Some(day(1, 0)), Some(day(2, 0)), Some(4_000))
    );
    assert_eq!((dan_stats.refund_count, dan_stats.refund_amount), (0, 0));

    // Changed since: Cat last changed on day 0, Dan with his second order on day 2, Ann with the merge on day 3.
    let since = |at: DateTime<Utc>| {
        ids(&s.list_customers(shop, &CustomerFilter { updated_since: Some(at), ..Default::default() }, 0, 100).unwrap())
    };
    let mut three = vec![ann, cat, dan];
    three.sort_unstable();
    assert_eq!(since(day(0, 0)), three);
    let mut two = vec![ann, dan];
    two.sort_unstable();
    assert_eq!(since(day(1, 12)), two);
    assert_eq!(since(day(2, 0)), two, "at the instant itself");
    assert_eq!(since(day(2, 12)), vec![ann]);
    assert_eq!(since(day(3, 0)), vec![ann]);
    assert!(since(day(3, 1)).is_empty());

    // Scores as a plugin writes them: its decisions, committed by the core.
    let manifest = "id = \"scorer\"\nversion = \"1.0.0\"\nkind = \"scoring-model\"\napi-version = \"0.2.0\"\n\
                    description = \"Stands in for a model\"\nvendor = \"Kith\"\ncapabilities = [\"scores:write\"]\n";
    backend.enable_plugin(shop, manifest);
    let score = |customer_id: i64, model: &str, value: f64, label: Option<&str>| Decision::SetScore {
        customer_id,
        model: model.into(),
        value,
        label: label.map(Into::into),
        explanation: "case".into(),
    };
    let decisions = [
        score(ann, "rfm", 0.9, Some("important-value|Important value")),
        score(cat, "rfm", 0.2, Some("at-risk")),
        score(dan, "churn", 0.5, None),
    ];
    let cursor = s.subscription(shop, "scorer").unwrap().cursor;
    let attempt = Attempt { shop_id: shop, plugin_id: "scorer", logs: &[], duration: std::time::Duration::from_millis(1), now: day(4, 0) };
    s.commit_delivery(&attempt, cursor, cursor, &Effects { decisions: &decisions, kv_writes: &[], chain: None }).unwrap();
    let ann_scores: Vec<(String, f64, Option<String>)> =
        found(s.get_customer(shop, ann, 0).unwrap()).customer.scores.into_iter().map(|sc| (sc.model, sc.value, sc.label)).collect();
    assert_eq!(ann_scores, vec![("rfm".into(), 0.9, Some("important-value|Important value".into()))]);

    // Manual tags: the row, an event when it really changed, the audit entry each time.
    let vip = s.add_tag(shop, ann, " vip ", Some("big spender"), &actor()).unwrap();
    assert_eq!((vip.tag.as_str(), vip.source.as_str(), vip.reason.as_deref()), ("vip", "manual", Some("big spender")));
    s.add_tag(shop, ann, "vip", Some("big spender"), &actor()).unwrap();
    s.add_tag(shop, dan, "vip", None, &actor()).unwrap();
    s.add_tag(shop, cat, "lapsed", None, &actor()).unwrap();
    s.remove_tag(shop, cat, "lapsed", &actor()).unwrap();
    not_found(s.remove_tag(shop, cat, "lapsed", &actor()), "a tag removed already");
    assert_eq!(invalid_field(s.add_tag(shop, ann, "  ", None, &actor())), "tag");
    let tag_events: Vec<(String, Value)> =
        backend.events(shop).into_iter().filter(|(k, _)| k == "tag.added" || k == "tag.removed").collect();
    assert_eq!(
        tag_events,
        vec![
            ("tag.added".into(), json!({"tag": "vip", "source": "manual", "reason": "big spender"})),
            ("tag.added".into(), json!({"tag": "vip", "source": "manual"})),
            ("tag.added".into(), json!({"tag": "lapsed", "source": "manual"})),
            ("tag.removed".into(), json!({"tag": "lapsed", "source": "manual"})),
        ]
    );
    let tags: Vec<(String, String)> = s
        .list_audit(shop, None, 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action.starts_with("tag."))
        .map(|a| (a.action, a.target.unwrap_or_default()))
        .rev()
        .collect();
    let on = |c: i64| format!("customer:{c}");
    assert_eq!(
        tags,
        vec![
            ("tag.add".into(), on(ann)),
            ("tag.add".into(), on(ann)),
            ("tag.add".into(), on(dan)),
            ("tag.add".into(), on(cat)),
            ("tag.remove".into(), on(cat))
        ]
    );

    // Pages in id order, without the merged customer; filters.
    let all = CustomerFilter::default();
    let mut everyone = vec![ann, cat, dan];
    everyone.sort_unstable();
    assert_eq!(ids(&s.list_customers(shop, &all, 0, 100).unwrap()), everyone);
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = ids(&s.list_customers(shop, &all, after, 2).unwrap());
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = *last;
        paged.extend(page);
    }
    assert_eq!(paged, everyone);
    assert_eq!(s.count_customers(shop).unwrap(), 3);
    let filtered = |f: CustomerFilter| ids(&s.list_customers(shop, &f, 0, 100).unwrap());
    let sorted = |mut v: Vec<i64>| {
        v.sort_unstable();
        v
    };
    assert_eq!(filtered(CustomerFilter { tag: Some("vip".into()), ..Default::default() }), sorted(vec![ann, dan]));
    assert!(filtered(CustomerFilter { tag: Some("lapsed".into()), ..Default::default() }).is_empty());
    let email = |v: &str| Identifier { kind: IdentityKind::Email, value: v.into() };
    let phone = |v: &str| Identifier { kind: IdentityKind::Phone, value: v.into() };
    assert_eq!(filtered(CustomerFilter { identity: Some(email("ann@example.com")), ..Default::default() }), vec![ann]);
    assert_eq!(
        filtered(CustomerFilter { identity: Some(phone("+8613800000002")), ..Default::default() }),
        vec![ann],
        "Bob's phone is Ann's now"
    );
    assert_eq!(filtered(CustomerFilter { identity: Some(phone("+8613800000004")), ..Default::default() }), vec![dan]);
    assert!(filtered(CustomerFilter { identity: Some(email("nobody@example.com")), ..Default::default() }).is_empty());
    let both = CustomerFilter { identity: Some(email("cat@example.com")), tag: Some("vip".into()), ..Default::default() };
    assert!(filtered(both).is_empty(), "Cat is not a vip");
    assert!(
        ids(&s.list_customers(shop, &CustomerFilter { identity: Some(email("ann@example.com")), ..Default::default() }, ann, 10).unwrap())
            .is_empty()
    );
    let score_filter = |model: &str, code: Option<&str>| {
        filtered(CustomerFilter { score: Some((model.into(), code.map(Into::into))), ..Default::default() })
    };
    assert_eq!(score_filter("rfm", None), sorted(vec![ann, cat]));
    assert_eq!(score_filter("rfm", Some("important-value")), vec![ann]);
    assert_eq!(score_filter("rfm", Some("important-value|Important value")), vec![ann]);
    assert_eq!(score_filter("rfm", Some("at-risk")), vec![cat]);
    assert!(score_filter("rfm", Some("important")).is_empty(), "a label code is matched whole");
    assert_eq!(score_filter("churn", None), vec![dan]);
    // Another shop's customers are not found, nor counted, nor listed.
    not_found(s.get_customer(other, ann, 10), "get_customer");
    not_found(s.get_customer(other, bob, 10), "get_customer of a merged id");
    not_found(s.add_tag(other, ann, "stolen", None, &actor()), "add_tag");
    not_found(s.remove_tag(other, ann, "vip", &actor()), "remove_tag");
    assert!(s.list_customers(other, &all, 0, 100).unwrap().is_empty());
    assert!(
        s.list_customers(other, &CustomerFilter { identity: Some(email("ann@example.com")), ..Default::default() }, 0, 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.count_customers(other).unwrap(), 0);
    assert!(found(s.get_customer(shop, ann, 0).unwrap()).customer.tags.iter().all(|t| t.tag != "stolen"));
}

pub fn customers_verify_stats_finds_only_a_real_mismatch(factory: &dyn Factory) {
    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    order(&*backend, shop, "13800000001", "a1", 5_000, day(1, 0));
    let bob = order(&*backend, shop, "13800000002", "b1", 2_000, day(1, 1));
    order(&*backend, shop, "13800000002", "b2", 1_000, day(2, 0));
    let refund = json!({"id": "refund-b1", "type": "order.refunded", "refund": {"order_id": "b1", "amount": 500}});
    ingest(&*backend, shop, refund, day(3, 0));
    assert_eq!(s.verify_stats(shop).unwrap(), vec![], "orders and a refund keep the stats");
    // A stored total the orders do not explain.
    s.write(|tx| tx.ingest_writer().add_order_to_stats(shop, bob, 777, day(4, 0), day(4, 0))).unwrap();
    let mismatches = s.verify_stats(shop).unwrap();
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    let m = &mismatches[0];
    assert_eq!(m.customer_id, bob);
    assert_eq!((m.stored.total_spent, m.recomputed.total_spent), (2_000 + 1_000 - 500 + 777, 2_000 + 1_000 - 500));
    assert_eq!((m.stored.order_count, m.recomputed.order_count), (3, 2));
    assert_eq!(m.recomputed.refund_amount, 500);
    assert!(s.verify_stats(other).unwrap().is_empty(), "the other shop has none");
    // Recomputed, the mismatch is gone.
    s.write(|tx| tx.ingest_writer().recompute_stats(shop, bob)).unwrap();
    assert_eq!(s.verify_stats(shop).unwrap(), vec![]);
}

/// An order of the buyer with this phone paid with `code`.
fn pay_with(backend: &dyn Backend, shop: i64, phone: &str, id: &str, amount: i64, code: &str, at: DateTime<Utc>) {
    let event = json!({"id": format!("paid-{id}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": id, "amount": amount, "paid_at": at.to_rfc3339(), "coupon_code": code}});
    ingest(backend, shop, event, at);
}

pub fn coupons_templates_and_their_figures_answer_what_was_issued_and_redeemed(factory: &dyn Factory) {
    use kith_domain::coupons::{CouponStatus, CouponTemplateInput, IssueRequest};

    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    let terms = CouponTemplateInput { per_customer_limit: 2, budget_count: Some(5), ..template_terms("500 off", 500) };
    let t = s.create_coupon_template(shop, &terms, &actor(), day(0, 0)).unwrap();
    assert_eq!((t.name.as_str(), t.face_value, t.per_customer_limit, t.budget_count, t.issued), ("500 off", 500, 2, Some(5), 0));
    let idle =
        s.create_coupon_template(shop, &CouponTemplateInput { active: false, ..template_terms("idle", 100) }, &actor(), day(0, 1)).unwrap();
    let ann = customer(&*backend, shop, "13800000001", day(0, 0));
    let bob = customer(&*backend, shop, "13800000002", day(0, 0));
    let issue = |customer_id: i64, key: &str| {
        let (c, new) = s.issue_coupon(shop, t.id, &IssueRequest { customer_id, idempotency_key: key.into() }, day(1, 0)).unwrap();
        assert!(new);
        c
    };
    let a1 = issue(ann, "a1");
    let a2 = issue(ann, "a2");
    let b1 = issue(bob, "b1");
    // New terms keep what was issued and the coupons' expiry.
    let renamed = CouponTemplateInput { name: "Five off".into(), threshold: 1_000, ..terms.clone() };
    let updated = s.update_coupon_template(shop, t.id, &renamed, &actor(), day(1, 2)).unwrap();
    assert_eq!((updated.name.as_str(), updated.threshold, updated.issued, updated.updated_at), ("Five off", 1_000, 3, day(1, 2)));
    let listed: Vec<(i64, String, bool, i64)> =
        s.coupon_templates(shop).unwrap().into_iter().map(|t| (t.id, t.name, t.active, t.issued)).collect();
    assert_eq!(listed, vec![(t.id, "Five off".into(), true, 3), (idle.id, "idle".into(), false, 0)]);

    // Bob pays with his code, Ann with her first; a part of Ann's order is refunded.
    pay_with(&*backend, shop, "13800000002", "bob-1", 8_000, &b1.code, day(2, 0));
    pay_with(&*backend, shop, "13800000001", "ann-1", 6_000, &a1.code.to_lowercase(), day(2, 1));
    ingest(
        &*backend,
        shop,
        json!({"id": "refund-ann-1", "type": "order.refunded", "refund": {"order_id": "ann-1", "amount": 1_000}}),
        day(2, 2),
    );
    let stats = s.coupon_template_stats(shop, t.id, day(3, 0)).unwrap();
    let (issued, redeemed) = (3, 2);
    assert_eq!((stats.template_id, stats.issued, stats.redeemed, stats.expired), (t.id, issued, redeemed, 0));
    assert_eq!(stats.redemption_rate, Some(redeemed as f64 / issued as f64));
    assert_eq!((stats.cost, stats.revenue), (redeemed * 500, 8_000 + 6_000 - 1_000));
    assert_eq!((stats.budget_count_left, stats.budget_money_left), (Some(5 - issued), None));
    // Past the 30 days, Ann's unused coupon counts as expired.
    let later = s.coupon_template_stats(shop, t.id, day(40, 0)).unwrap();
    assert_eq!((later.issued, later.redeemed, later.expired), (3, 2, 1));
    let idle_stats = s.coupon_template_stats(shop, idle.id, day(3, 0)).unwrap();
    assert_eq!((idle_stats.issued, idle_stats.redemption_rate, idle_stats.cost, idle_stats.revenue), (0, None, 0, 0));

    // A customer's coupons, newest first; a coupon by its code as typed.
    let held: Vec<(i64, CouponStatus, Option<String>)> =
        s.customer_coupons(shop, ann, day(3, 0)).unwrap().into_iter().map(|c| (c.id, c.status, c.order_id)).collect();
    assert_eq!(held, vec![(a2.id, CouponStatus::Issued, None), (a1.id, CouponStatus::Redeemed, Some("ann-1".into()))]);
    let by_code = s.coupon_by_code(shop, &format!(" {} ", b1.code.to_lowercase()), day(3, 0)).unwrap();
    assert_eq!(
        (by_code.id, by_code.customer_id, by_code.status, by_code.redeemed_at),
        (b1.id, bob, CouponStatus::Redeemed, Some(day(2, 0)))
    );
    assert_eq!(s.coupon_by_code(shop, &a2.code, day(40, 0)).unwrap().status, CouponStatus::Expired);
    assert_eq!(s.customer_coupons(shop, ann, day(40, 0)).unwrap()[0].status, CouponStatus::Expired);
    not_found(s.coupon_by_code(shop, "NOSUCHCODE", day(3, 0)), "an unknown code");

    // Another shop sees none of it.
    not_found(s.coupon_template(other, t.id), "coupon_template");
    not_found(s.update_coupon_template(other, t.id, &terms, &actor(), day(3, 0)), "update_coupon_template");
    not_found(s.coupon_template_stats(other, t.id, day(3, 0)), "coupon_template_stats");
    not_found(s.coupon_by_code(other, &a2.code, day(3, 0)), "coupon_by_code");
    not_found(s.customer_coupons(other, ann, day(3, 0)), "customer_coupons");
    assert!(s.coupon_templates(other).unwrap().is_empty());
    assert_eq!(s.coupon_template(shop, t.id).unwrap().name, "Five off");
}

pub fn loyalty_rewards_points_and_settings_read_back_what_was_written(factory: &dyn Factory) {
    use kith_domain::loyalty::{ExpiringPoints, LedgerKind, LoyaltySettings, PointsAdjustment, RedeemRequest, RefundPolicy, RewardInput};

    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(
        shop,
        &kith_domain::coupons::CouponTemplateInput { per_customer_limit: 10, ..template_terms("reward", 1_000) },
    );
    let reward = |name: &str, points_cost: i64, stock: Option<i64>, active: bool| {
        let input = RewardInput { name: name.into(), description: None, points_cost, coupon_template_id: template, stock, active };
        s.create_reward(shop, &input, &actor(), day(0, 0)).unwrap()
    };
    let gift = reward("Gift", 200, Some(1), true);
    let hidden = reward("Hidden", 50, None, false);
    let listed: Vec<(i64, String, i64, Option<i64>, bool)> =
        s.rewards(shop).unwrap().into_iter().map(|r| (r.id, r.name, r.points_cost, r.stock, r.active)).collect();
    assert_eq!(listed, vec![(gift.id, "Gift".into(), 200, Some(1), true), (hidden.id, "Hidden".into(), 50, None, false)]);

    let ann = customer(&*backend, shop, "13800000001", day(0, 0));
    let bob = customer(&*backend, shop, "13800000002", day(0, 0));
    let adjust = |points: i64, key: &str, expires_at: Option<DateTime<Utc>>, at: DateTime<Utc>| {
        let adj = PointsAdjustment { points, reason: format!("case {key}"), idempotency_key: key.into(), expires_at };
        s.adjust_points(shop, ann, &adj, &actor(), at).unwrap().0
    };
    let mut written = vec![adjust(500, "k1", Some(day(60, 0)), day(1, 0))];
    written.push(adjust(100, "k2", None, day(1, 1)));
    written.push(adjust(-50, "k3", None, day(1, 2)));

    // A redemption spends the points and the stock, issuing the reward's coupon.
    let (r, new) = s.redeem(shop, ann, &RedeemRequest { reward_id: gift.id, idempotency_key: "r1".into() }, day(2, 0)).unwrap();
    assert!(new);
    assert_eq!((r.customer_id, r.reward_id, r.points, r.balance_after), (ann, gift.id, 200, 500 + 100 - 50 - 200));
    assert_eq!((r.coupon.customer_id, r.coupon.template_id, r.coupon.face_value), (ann, template, 1_000));
    let (again, new) = s.redeem(shop, ann, &RedeemRequest { reward_id: gift.id, idempotency_key: "r1".into() }, day(2, 1)).unwrap();
    assert!(!new);
    assert_eq!(again.id, r.id);
    conflict(s.redeem(shop, ann, &RedeemRequest { reward_id: gift.id, idempotency_key: "r2".into() }, day(2, 1)));
    conflict(s.redeem(shop, bob, &RedeemRequest { reward_id: hidden.id, idempotency_key: "b1".into() }, day(2, 1)));
    assert_eq!(s.reward(shop, gift.id).unwrap().redeemed, 1);
    let redemptions: Vec<(i64, i64, i64)> =
        s.redemptions(shop, ann, day(2, 2)).unwrap().into_iter().map(|r| (r.id, r.points, r.coupon.id)).collect();
    assert_eq!(redemptions, vec![(r.id, 200, r.coupon.id)]);
    assert!(s.redemptions(shop, bob, day(2, 2)).unwrap().is_empty());

    // The account: the balance, and the batches left to expire (the oldest drawn first).
    let account = s.points_account(shop, ann).unwrap();
    assert_eq!((account.customer_id, account.balance, account.debt, account.available), (ann, 350, 0, 350));
    assert_eq!(account.expiring, vec![ExpiringPoints { points: 500 - 50 - 200, expires_at: day(60, 0) }]);
    let bob_account = s.points_account(shop, bob).unwrap();
    assert_eq!((bob_account.balance, bob_account.expiring.len()), (0, 0));

    // The ledger, newest first, in pages.
    let whole = s.points_ledger(shop, ann, None, 100).unwrap();
    let kinds: Vec<(LedgerKind, i64)> = whole.iter().map(|e| (e.kind, e.points)).collect();
    assert_eq!(kinds, vec![(LedgerKind::Redeem, -200), (LedgerKind::Adjust, -50), (LedgerKind::Earn, 100), (LedgerKind::Earn, 500)]);
    assert_eq!(whole[3].id, written[0].id);
    assert_eq!(whole.iter().map(|e| e.points).sum::<i64>(), account.balance);
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.points_ledger(shop, ann, before, 3).unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(paged, whole.iter().map(|e| e.id).collect::<Vec<_>>());

    // Loyalty settings round trip, per shop.
    assert_eq!(s.loyalty_settings(shop).unwrap(), LoyaltySettings::default());
    let forgive = LoyaltySettings { refund_policy: RefundPolicy::Forgive };
    s.put_loyalty_settings(shop, &forgive, &actor(), day(3, 0)).unwrap();
    assert_eq!(s.loyalty_settings(shop).unwrap(), forgive);
    assert_eq!(s.loyalty_settings(other).unwrap().refund_policy, RefundPolicy::Debt);

    // Another shop's records are not found.
    not_found(s.reward(other, gift.id), "reward");
    assert!(s.rewards(other).unwrap().is_empty());
    not_found(s.points_account(other, ann), "points_account");
    not_found(s.points_ledger(other, ann, None, 10), "points_ledger");
    not_found(s.redemptions(other, ann, day(3, 0)), "redemptions");
    let stolen = s.redeem(other, ann, &RedeemRequest { reward_id: gift.id, idempotency_key: "x".into() }, day(3, 0));
    assert!(matches!(stolen, Err(Error::NotFound(_)) | Err(Error::Invalid(_))), "{stolen:?}");
    assert_eq!(s.points_account(shop, ann).unwrap().balance, 350);
}

pub fn outbox_views_list_filter_and_count_messages_consents_and_routes(factory: &dyn Factory) {
    use kith_core::outbox::{OutboxPolicy, SendOutcome};
    use kith_domain::messaging::{ConsentInput, ConsentStatus, Message, MessageStatus, SendRequest};
    use kith_domain::plugin::Delivery;

    let (backend, shop, other) = shops(factory);
    let s = backend.storage();
    assert!(s.connector_routes(shop).unwrap().is_empty());
    backend.enable_connector(shop, "sms-gateway", "sms");
    let routes: Vec<(String, String)> = s.connector_routes(shop).unwrap().into_iter().map(|r| (r.channel, r.plugin_id)).collect();
    assert_eq!(routes, vec![("sms".into(), "sms-gateway".into())]);
    assert!(s.connector_routes(other).unwrap().is_empty());

    let ann = customer(&*backend, shop, "13800000001", day(0, 0));
    let bob = customer(&*backend, shop, "13800000002", day(0, 0));
    // Consents: none until said; the latest answer per channel.
    assert!(s.consents(shop, bob).unwrap().is_empty());
    let say = |customer: i64, channel: &str, status: ConsentStatus, source: &str, at: DateTime<Utc>| {
        s.put_consent(shop, customer, channel, &ConsentInput { status, source: source.into() }, &actor(), at).unwrap()
    };
    say(bob, "sms", ConsentStatus::OptedIn, "checkout", day(0, 1));
    let out = say(bob, "sms", ConsentStatus::OptedOut, "sms-reply", day(0, 2));
    assert_eq!((out.channel.as_str(), out.status, out.updated_at), ("sms", ConsentStatus::OptedOut, day(0, 2)));
    say(bob, "email", ConsentStatus::OptedIn, "signup", day(0, 3));
    let mut consents: Vec<(String, ConsentStatus, String, DateTime<Utc>)> =
        s.consents(shop, bob).unwrap().into_iter().map(|c| (c.channel, c.status, c.source, c.updated_at)).collect();
    consents.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        consents,
        vec![
            ("email".into(), ConsentStatus::OptedIn, "signup".into(), day(0, 3)),
            ("sms".into(), ConsentStatus::OptedOut, "sms-reply".into(), day(0, 2))
        ]
    );
    assert!(s.consents(shop, ann).unwrap().is_empty());
    assert_eq!(
        invalid_field(s.put_consent(
            shop,
            ann,
            "SMS!",
            &ConsentInput { status: ConsentStatus::OptedIn, source: "x".into() },
            &actor(),
            day(0, 4)
        )),
        "channel"
    );

    // Five messages: three SMS to Ann, one to Bob (who opted out), an e-mail to Ann.
    let queue = |customer_id: i64, channel: &str, key: &str, at: DateTime<Utc>| -> Message {
        let req = SendRequest {
            customer_id,
            channel: channel.into(),
            template: format!("T-{key}"),
            variables: [("k".to_string(), key.to_string())].into(),
            idempotency_key: key.into(),
        };
        let (m, new) = s.enqueue_message(shop, &req, "api", at).unwrap();
        assert!(new);
        m
    };
    let m1 = queue(ann, "sms", "m1", day(1, 0));
    let m2 = queue(bob, "sms", "m2", day(1, 1));
    let m3 = queue(ann, "sms", "m3", day(1, 2));
    let m4 = queue(ann, "email", "m4", day(1, 3));
    let m5 = queue(ann, "sms", "m5", day(1, 4));
    assert_eq!(s.outbox_backlog(shop, "sms-gateway").unwrap(), 4, "four SMS wait");
    assert_eq!(s.outbox_backlog(shop, "no-such-plugin").unwrap(), 0);
    assert_eq!(s.outbox_backlog(other, "sms-gateway").unwrap(), 0);

    // The SMS go out: Bob's is suppressed at the claim, Ann's first is accepted, the others are being sent.
    let claims = s
        .claim_messages(day(2, 0), &OutboxPolicy::default(), (shop, "sms"), Some(("sms-gateway", std::time::Duration::from_secs(10))), 50)
        .unwrap();
    let claimed: Vec<&str> = claims.iter().map(|c| c.message.id.as_str()).collect();
    assert_eq!(claimed, vec![m1.id.as_str(), m3.id.as_str(), m5.id.as_str()]);
    let outcome = SendOutcome::Answered(Delivery::Accepted { provider_id: Some("p-1".into()) });
    let call = kith_core::delivery::Attempt {
        shop_id: shop,
        plugin_id: "sms-gateway",
        logs: &[],
        duration: std::time::Duration::from_millis(7),
        now: day(2, 0),
    };
    s.record_send(&claims[0], &outcome, &call, &OutboxPolicy::default()).unwrap();
    let calls = s.call_stats(shop, "sms-gateway").unwrap();
    assert_eq!((calls.calls, calls.failures, calls.p50_ms), (1, 0, Some(7.0)), "the call is recorded with the answer");
    assert_eq!(s.outbox_backlog(shop, "sms-gateway").unwrap(), 2, "two SMS are being sent; the sent and the suppressed are out");

    let expect = [
        (&m5, ann, MessageStatus::Sending),
        (&m4, ann, MessageStatus::Queued),
        (&m3, ann, MessageStatus::Sending),
        (&m2, bob, MessageStatus::Suppressed),
        (&m1, ann, MessageStatus::Sent),
    ];
    let view =
        |customer: Option<i64>, status: Option<MessageStatus>, before: Option<i64>, limit: usize| -> Vec<(String, i64, MessageStatus)> {
            s.messages(shop, customer, status, before, limit).unwrap().into_iter().map(|(_, m)| (m.id, m.customer_id, m.status)).collect()
        };
    let want = |keep: &dyn Fn(i64, MessageStatus) -> bool| -> Vec<(String, i64, MessageStatus)> {
        expect.iter().filter(|(_, c, st)| keep(*c, *st)).map(|(m, c, st)| (m.id.clone(), *c, *st)).collect()
    };
    assert_eq!(view(None, None, None, 100), want(&|_, _| true), "newest first");
    assert_eq!(view(Some(ann), None, None, 100), want(&|c, _| c == ann));
    assert_eq!(view(Some(bob), None, None, 100), want(&|c, _| c == bob));
    for status in [MessageStatus::Queued, MessageStatus::Sending, MessageStatus::Sent, MessageStatus::Suppressed, MessageStatus::Delivered]
    {
        assert_eq!(view(None, Some(status), None, 100), want(&|_, st| st == status), "{status:?}");
    }
    assert_eq!(view(Some(ann), Some(MessageStatus::Sending), None, 100), want(&|c, st| c == ann && st == MessageStatus::Sending));
    // Pages of two, each before the last row of the one before.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.messages(shop, None, None, before, 2).unwrap();
        assert!(page.len() <= 2);
        let Some((row, _)) = page.last() else { break };
        before = Some(*row);
        paged.extend(page.into_iter().map(|(_, m)| m.id));
    }
    assert_eq!(paged, expect.iter().map(|(m, _, _)| m.id.clone()).collect::<Vec<_>>());

    // One message by id, as it stands.
    let sent = s.message(shop, &m1.id).unwrap();
    assert_eq!((sent.customer_id, sent.channel.as_str(), sent.template.as_str(), sent.status), (ann, "sms", "T-m1", MessageStatus::Sent));
    assert_eq!(
        (sent.plugin_id.as_deref(), sent.provider_id.as_deref(), sent.sent_at, sent.attempts),
        (Some("sms-gateway"), Some("p-1"), Some(day(2, 0)), 1)
    );
    assert_eq!((sent.recipient.as_deref(), sent.variables.get("k").map(String::as_str)), (Some("+8613800000001"), Some("m1")));
    let suppressed = s.message(shop, &m2.id).unwrap();
    assert_eq!(suppressed.reason.as_deref(), Some("the customer opted out of sms (sms-reply)"));
    not_found(s.message(shop, "no-such-message"), "an unknown message");

    // Another shop sees none of it.
    not_found(s.message(other, &m1.id), "message");
    assert!(s.messages(other, None, None, None, 100).unwrap().is_empty());
    assert!(s.messages(other, Some(ann), None, None, 100).unwrap().is_empty());
    not_found(s.consents(other, bob), "consents");
    let stolen =
        s.put_consent(other, ann, "sms", &ConsentInput { status: ConsentStatus::OptedOut, source: "x".into() }, &actor(), day(3, 0));
    not_found(stolen, "put_consent");
    assert!(s.consents(shop, ann).unwrap().is_empty());
}
