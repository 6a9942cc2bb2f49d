//! Journeys through the core's engine, end to end on the test clock: an order-triggered
//! journey that waits in the shop's zone, branches on a customer condition and acts
//! (a coupon within its budget, a tag, points, a message into the outbox) until its goal;
//! a `tag.added` trigger; a birthday; holdout and A/B buckets that stay with the customer;
//! a run whose step fails failing alone; passes taken again acting once.

use chrono::{DateTime, Utc};
use kith_core::journeys;
use kith_core::ports::{MessageKey, RunPlace, StepRecord};
use kith_core::tags::{self, Source, TagWrite};
use kith_core::{Error, Storage, StorageExt};
use kith_domain::coupons::CouponTemplateInput;
use kith_domain::journeys::{JourneyRun, JourneyRunStatus, JourneyStatus};
use kith_domain::messaging::Message;
use kith_domain::model::OutcomeStatus;
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

/// A fresh backend with one shop in Shanghai (UTC+8).
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Journey shop", "Asia/Shanghai");
    (backend, shop)
}

/// Ingest one event at `at`; the customer it resolved to.
fn ingest(backend: &dyn Backend, shop: i64, event: Value, at: DateTime<Utc>) -> i64 {
    let report = backend.ingest(shop, vec![event], at);
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// An order of the buyer with this phone, paid and ingested at `at`; the buyer.
fn order(backend: &dyn Backend, shop: i64, phone: &str, id: &str, amount: i64, at: DateTime<Utc>) -> i64 {
    let event = json!({"id": format!("paid-{id}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": id, "amount": amount, "paid_at": at.to_rfc3339()}});
    ingest(backend, shop, event, at)
}

/// A customer with this phone and profile.
fn customer(backend: &dyn Backend, shop: i64, phone: &str, profile: Value, at: DateTime<Utc>) -> i64 {
    let event = json!({"id": format!("upsert-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}],
        "profile": profile});
    ingest(backend, shop, event, at)
}

/// One pass of the engine at `now`.
fn pass(s: &dyn Storage, now: DateTime<Utc>) -> usize {
    journeys::advance(s, now, 1000).expect("a pass of the engine")
}

/// The journey's run of a customer; panics unless there is exactly one.
fn run_of(backend: &dyn Backend, shop: i64, journey: i64, customer: i64) -> JourneyRun {
    let mut runs: Vec<JourneyRun> = backend.journey_runs(shop, journey).into_iter().filter(|r| r.customer_id == customer).collect();
    assert_eq!(runs.len(), 1, "one run of customer {customer}: {runs:?}");
    runs.remove(0)
}

/// The steps a run took, with their outcomes, in order.
fn history(run: &JourneyRun) -> Vec<(String, String)> {
    run.history.iter().map(|h| (h.step.clone(), h.outcome.clone())).collect()
}

fn steps(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(s, o)| (s.to_string(), o.to_string())).collect()
}

/// The message a run's send step put in the outbox.
fn message(s: &dyn Storage, shop: i64, run: i64, step: &str) -> Option<Message> {
    let key = format!("journey:{run}:{step}");
    s.read(|tx| tx.outbox().message(shop, MessageKey::Idempotency(&key))).unwrap()
}

fn count(backend: &dyn Backend, shop: i64, kind: &str) -> usize {
    backend.events(shop).iter().filter(|(k, _)| k == kind).count()
}

pub fn journeys_an_order_journey_waits_in_the_shops_zone_branches_acts_and_exits_on_its_goal(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(
        shop,
        &CouponTemplateInput {
            name: "500 off".into(),
            face_value: 500,
            threshold: 0,
            valid_days: Some(30),
            valid_until: None,
            per_customer_limit: 1,
            budget_count: None,
            budget_money: None,
            active: true,
        },
    );
    let j = backend.create_journey(
        shop,
        json!({
            "trigger": {"event": "order.paid"},
            "goal": {"event": "order.paid", "within_days": 30},
            "budget": {"coupons": 1},
            "start": "wait",
            "steps": {
                "wait": {"wait": {"days": 2, "until": "09:00"}, "next": "big"},
                "big": {"branch": {"customer": {"stat": "total_spent", "op": "gte", "value": 10_000}}, "yes": "gift", "no": "tag"},
                "gift": {"coupon": {"template_id": template}, "next": "tag"},
                "tag": {"tag": {"add": "followed-up"}, "next": "points"},
                "points": {"points": {"award": 50}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "THANKS", "variables": {"code": "{{coupon.code}}"}}, "next": "later"},
                "later": {"wait": {"days": 10}, "next": "again"},
                "again": {"send": {"channel": "sms", "template": "AGAIN"}}
            }
        }),
        day(0, 0),
    );
    // Paid at 10:00 in Shanghai (02:00 UTC) on 1 March.
    let ann = order(&*backend, shop, "13800000001", "a1", 20_000, day(0, 2));
    let bob = order(&*backend, shop, "13800000002", "b1", 30_000, day(0, 2));
    let cat = order(&*backend, shop, "13800000003", "c1", 5_000, day(0, 2));
    assert!(pass(s, day(0, 2)) > 0);
    for c in [ann, bob, cat] {
        let run = run_of(&*backend, shop, j, c);
        assert_eq!((run.status, run.step.as_deref()), (JourneyRunStatus::Active, Some("wait")), "{run:?}");
        // Two days on is 10:00 on 3 March in Shanghai; the next 09:00 there is on 4 March, 01:00 UTC.
        assert_eq!(run.due_at, Some(day(3, 1)), "{run:?}");
    }
    assert_eq!(pass(s, day(3, 0)), 0, "nothing is due before 09:00 in the shop's zone");
    pass(s, day(3, 1));

    let ann_run = run_of(&*backend, shop, j, ann);
    let bob_run = run_of(&*backend, shop, j, bob);
    let cat_run = run_of(&*backend, shop, j, cat);
    assert_eq!(
        history(&ann_run),
        steps(&[
            ("wait", "waited"),
            ("big", "yes"),
            ("gift", "done"),
            ("tag", "done"),
            ("points", "done"),
            ("tell", "done"),
            ("later", "waiting")
        ])
    );
    // Bob spent enough too, but the journey's one coupon went to the first run due.
    assert_eq!(
        history(&bob_run),
        steps(&[
            ("wait", "waited"),
            ("big", "yes"),
            ("gift", "skipped"),
            ("tag", "done"),
            ("points", "done"),
            ("tell", "done"),
            ("later", "waiting")
        ])
    );
    let skipped = bob_run.history.iter().find(|h| h.step == "gift").unwrap();
    assert_eq!(skipped.detail, "budget: the journey's 1 coupon(s) are issued");
    assert_eq!(
        history(&cat_run),
        steps(&[("wait", "waited"), ("big", "no"), ("tag", "done"), ("points", "done"), ("tell", "done"), ("later", "waiting")])
    );

    let source = format!("journey:{j}");
    let coupon = s.read(|tx| tx.coupons().by_source(shop, &source, &format!("run:{}:gift", ann_run.id))).unwrap().expect("Ann's coupon");
    assert_eq!((coupon.customer_id, coupon.template_id), (ann, template));
    let coupons = s.read(|tx| tx.coupons().template(shop, template)).unwrap().unwrap();
    assert_eq!(coupons.issued, 1);
    let thanks = message(s, shop, ann_run.id, "tell").expect("Ann's message is in the outbox");
    assert_eq!((thanks.customer_id, thanks.channel.as_str(), thanks.template.as_str()), (ann, "sms", "THANKS"));
    let code = s.read(|tx| tx.coupons().coupon(shop, coupon.id, day(3, 1))).unwrap().unwrap().code;
    assert_eq!(thanks.variables.get("code"), Some(&code), "the message names the coupon the run issued");
    assert_eq!(message(s, shop, cat_run.id, "tell").unwrap().variables.get("code").map(String::as_str), Some(""));
    for c in [ann, bob, cat] {
        assert!(s.read(|tx| tx.tags().held_by(shop, c, "followed-up", &source)).unwrap());
        assert_eq!(s.read(|tx| tx.ledger().balance(shop, c)).unwrap(), 50);
    }

    // Ann buys again within the goal's window: her run ends converted, and is not re-entered.
    order(&*backend, shop, "13800000001", "a2", 8_000, day(5, 0));
    pass(s, day(5, 0));
    let ann_run = run_of(&*backend, shop, j, ann);
    assert_eq!(ann_run.status, JourneyRunStatus::Converted, "{ann_run:?}");
    assert_eq!((ann_run.revenue, ann_run.converted_at), (Some(8_000), Some(day(5, 0))));
    pass(s, day(14, 0));
    assert!(message(s, shop, ann_run.id, "again").is_none(), "a converted run takes no more steps");
    for c in [bob, cat] {
        let run = run_of(&*backend, shop, j, c);
        assert_eq!(run.status, JourneyRunStatus::Completed, "{run:?}");
        assert_eq!(message(s, shop, run.id, "again").unwrap().template, "AGAIN");
    }
    // Passes taken again act no more.
    let tagged = count(&*backend, shop, "tag.added");
    assert_eq!(pass(s, day(14, 0)), 0);
    pass(s, day(40, 0));
    assert_eq!(count(&*backend, shop, "tag.added"), tagged);
    assert_eq!(count(&*backend, shop, "coupon.issued"), 1);
    for c in [ann, bob, cat] {
        assert_eq!(s.read(|tx| tx.ledger().balance(shop, c)).unwrap(), 50);
    }
}

pub fn journeys_a_tag_added_trigger_enters_the_tagged_customer_once(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let ann = customer(&*backend, shop, "13800000001", json!({"name": "Ann"}), day(0, 0));
    let bob = customer(&*backend, shop, "13800000002", json!({"name": "Bob"}), day(0, 0));
    let j = backend.create_journey(
        shop,
        json!({
            "trigger": {"event": "tag.added", "where": [{"field": "tag", "op": "eq", "value": "vip"}]},
            "start": "hello",
            "steps": {
                "hello": {"send": {"channel": "sms", "template": "VIP_WELCOME", "variables": {"name": "{{customer.name}}"}}, "next": "mark"},
                "mark": {"tag": {"add": "vip-welcomed"}}
            }
        }),
        day(0, 1),
    );
    let tag = |customer: i64, name: &str, at: DateTime<Utc>| {
        let write = TagWrite { shop_id: shop, customer_id: customer, tag: name, source: Source::Manual, reason: None, at, chain: 1 };
        s.write(|tx| tags::add(tx, &write)).unwrap();
    };
    tag(ann, "vip", day(0, 2));
    tag(bob, "regular", day(0, 2));
    pass(s, day(0, 2));
    let run = run_of(&*backend, shop, j, ann);
    assert_eq!(run.status, JourneyRunStatus::Completed, "{run:?}");
    assert_eq!(history(&run), steps(&[("hello", "done"), ("mark", "done")]));
    let hello = message(s, shop, run.id, "hello").unwrap();
    assert_eq!((hello.template.as_str(), hello.variables.get("name").map(String::as_str)), ("VIP_WELCOME", Some("Ann")));
    assert!(backend.journey_runs(shop, j).iter().all(|r| r.customer_id == ann), "another tag enters nobody");
    // The journey's own tag is logged, and is no trigger of its own.
    pass(s, day(0, 3));
    assert_eq!(backend.journey_runs(shop, j).len(), 1);
    assert!(s.read(|tx| tx.tags().held_by(shop, ann, "vip-welcomed", &format!("journey:{j}"))).unwrap());
}

pub fn journeys_a_birthday_enters_its_customers_on_their_day_at_the_shops_hour(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let eve = customer(&*backend, shop, "13800000005", json!({"name": "Eve", "birthday": "1990-03-03"}), day(0, 0));
    let fay = customer(&*backend, shop, "13800000006", json!({"name": "Fay", "birthday": "1992-03-04"}), day(0, 0));
    let gus = customer(&*backend, shop, "13800000007", json!({"name": "Gus", "birthday": "1985-07-01"}), day(0, 0));
    let j = backend.create_journey(
        shop,
        json!({
            "trigger": {"date": {"field": "birthday", "offset_days": 0, "at": "10:00"}},
            "start": "gift",
            "steps": {
                "gift": {"points": {"award": 100, "reason": "birthday"}, "next": "greet"},
                "greet": {"send": {"channel": "sms", "template": "BIRTHDAY", "variables": {"name": "{{customer.name}}"}}}
            }
        }),
        day(0, 0),
    );
    // 3 March, 09:59 in Shanghai: not yet.
    pass(s, day(2, 1) + chrono::Duration::minutes(59));
    assert!(backend.journey_runs(shop, j).is_empty());
    // 10:00 there (02:00 UTC): Eve's day.
    pass(s, day(2, 2));
    let run = run_of(&*backend, shop, j, eve);
    assert_eq!(run.status, JourneyRunStatus::Completed, "{run:?}");
    assert_eq!(message(s, shop, run.id, "greet").unwrap().variables.get("name").map(String::as_str), Some("Eve"));
    assert_eq!(s.read(|tx| tx.ledger().balance(shop, eve)).unwrap(), 100);
    assert_eq!(backend.journey_runs(shop, j).len(), 1);
    // Downtime over Fay's day: the next pass catches it up, once.
    pass(s, day(5, 3));
    pass(s, day(5, 4));
    assert_eq!(run_of(&*backend, shop, j, fay).status, JourneyRunStatus::Completed);
    assert_eq!(backend.journey_runs(shop, j).len(), 2, "Eve once, Fay once, Gus not");
    assert_eq!(s.read(|tx| tx.ledger().balance(shop, eve)).unwrap(), 100);
    assert_eq!(s.read(|tx| tx.ledger().balance(shop, gus)).unwrap(), 0);
}

pub fn journeys_holdout_and_ab_buckets_stay_with_the_customer(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let j = backend.create_journey(
        shop,
        json!({
            "trigger": {"event": "order.paid"},
            "entry": {"reentry": true},
            "holdout_percent": 30,
            "start": "split",
            "steps": {
                "split": {"split": [{"variant": "A", "weight": 50, "next": "a"}, {"variant": "B", "weight": 50, "next": "b"}]},
                "a": {"tag": {"add": "variant-a"}},
                "b": {"tag": {"add": "variant-b"}}
            }
        }),
        day(0, 0),
    );
    let buyers: Vec<i64> = (0..40).map(|i| order(&*backend, shop, &format!("1370000{i:04}"), &format!("o{i}"), 1_000, day(0, 1))).collect();
    pass(s, day(0, 1));
    let first = backend.journey_runs(shop, j);
    assert_eq!(first.len(), 40);
    let held = first.iter().filter(|r| r.holdout).count();
    assert!((4..=20).contains(&held), "about 30% held out: {held}");
    for run in &first {
        assert_eq!(run.holdout, kith_domain::journeys::in_holdout(j, run.customer_id, 30), "{run:?}");
        let tagged = run.history.iter().find(|h| h.step == "a" || h.step == "b").unwrap();
        assert_eq!(tagged.outcome, if run.holdout { "skipped" } else { "done" }, "{run:?}");
    }
    let variants = |runs: &[JourneyRun]| -> Vec<(i64, bool, Option<String>)> {
        let mut v: Vec<_> = runs.iter().map(|r| (r.customer_id, r.holdout, r.variant.clone())).collect();
        v.sort();
        v
    };
    let a = first.iter().filter(|r| r.variant.as_deref() == Some("split:A")).count();
    assert!(a > 5 && a < 35, "both variants are taken: {a} of 40 in A");
    // The same customers again: each lands in the bucket and variant of their first run.
    for (i, _) in buyers.iter().enumerate() {
        order(&*backend, shop, &format!("1370000{i:04}"), &format!("p{i}"), 1_000, day(1, 0));
    }
    pass(s, day(1, 0));
    let all = backend.journey_runs(shop, j);
    assert_eq!(all.len(), 80);
    let (again, first_ids): (Vec<JourneyRun>, Vec<i64>) =
        (all.iter().filter(|r| !first.iter().any(|f| f.id == r.id)).cloned().collect(), first.iter().map(|r| r.id).collect());
    assert_eq!(first_ids.len(), 40);
    assert_eq!(variants(&again), variants(&first));
}

pub fn journeys_a_run_whose_step_fails_fails_alone(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let vip = backend.create_segment(shop, "vip", json!({"tag": "vip"}), day(0, 0));
    let broken = backend.create_journey(
        shop,
        json!({
            "trigger": {"event": "order.paid"}, "start": "wait",
            "steps": {"wait": {"wait": {"days": 1}, "next": "tag"},
                      "tag": {"tag": {"add": "tried"}, "next": "vip"},
                      "vip": {"branch": {"customer": {"segment": vip}}, "yes": "gold", "no": "plain"},
                      "gold": {"tag": {"add": "gold"}}, "plain": {"tag": {"add": "plain"}}}
        }),
        day(0, 0),
    );
    let healthy = backend.create_journey(
        shop,
        json!({
            "trigger": {"event": "order.paid"}, "start": "wait",
            "steps": {"wait": {"wait": {"days": 1}, "next": "tag"}, "tag": {"tag": {"add": "followed-up"}}}
        }),
        day(0, 0),
    );
    let buyers: Vec<i64> = (1..=3).map(|i| order(&*backend, shop, &format!("1380000000{i}"), &format!("o{i}"), 1_000, day(0, 1))).collect();
    pass(s, day(0, 1));
    // The branch's segment goes away while the runs wait: their branch step errors.
    backend.delete_segment(shop, vip, day(0, 2));
    pass(s, day(2, 0));
    for c in buyers {
        let failed = run_of(&*backend, shop, broken, c);
        assert_eq!(failed.status, JourneyRunStatus::Failed, "{failed:?}");
        assert!(failed.end_reason.as_deref().unwrap_or_default().starts_with("step failed"), "{failed:?}");
        // What the failing run did in the pass is undone with it: its tag too.
        assert_eq!(history(&failed), steps(&[("wait", "waiting")]));
        assert!(!s.read(|tx| tx.tags().held_by(shop, c, "tried", &format!("journey:{broken}"))).unwrap());
        let ok = run_of(&*backend, shop, healthy, c);
        assert_eq!(ok.status, JourneyRunStatus::Completed, "{ok:?}");
        assert!(s.read(|tx| tx.tags().held_by(shop, c, "followed-up", &format!("journey:{healthy}"))).unwrap());
    }
    assert_eq!(count(&*backend, shop, "tag.added"), 3, "only the healthy journey's tags are logged");
}

/// The journeys' ports asked with another shop's id about a journey, run or customer of
/// this shop: reads find nothing, writes change nothing, and the rows read back with their
/// own shop are as they were.
pub fn journeys_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let other = backend.create_shop("Other shop", "Asia/Shanghai");
    let s = backend.storage();
    let definition = json!({
        "trigger": {"event": "order.paid"},
        "goal": {"event": "order.paid", "within_days": 30},
        "start": "wait",
        "steps": {"wait": {"wait": {"days": 5}, "next": "tag"}, "tag": {"tag": {"add": "followed-up"}}}
    });
    let j = backend.create_journey(shop, definition.clone(), day(0, 0));
    let theirs = backend.create_journey(other, definition, day(0, 0));
    let ann = customer(&*backend, shop, "13800000001", json!({"name": "Ann"}), day(0, 1));
    order(&*backend, shop, "13800000001", "a1", 1_000, day(0, 1));
    // The other shop has a customer and a run of its own.
    let bea = customer(&*backend, other, "13800000001", json!({"name": "Bea"}), day(0, 1));
    order(&*backend, other, "13800000001", "b1", 1_000, day(0, 1));
    pass(s, day(0, 2));
    let run = run_of(&*backend, shop, j, ann);
    assert_eq!(history(&run), steps(&[("wait", "waiting")]));
    assert_eq!(run_of(&*backend, other, theirs, bea).status, JourneyRunStatus::Active);
    let journey_before = s.read(|tx| tx.journeys().journey(shop, j)).unwrap();
    let view_before = s.read(|tx| tx.journeys().view(shop, j)).unwrap();
    let run_before = s.read(|tx| tx.journeys().run(shop, run.id)).unwrap();

    // Asked with their own shop, the ports see the journey, its run and its customer.
    s.read(|tx| {
        let r = tx.journeys();
        assert!(r.definition(shop, j, 1)?.is_some());
        assert_eq!(r.versions(shop, j)?.len(), 1);
        assert_eq!(r.runs_of(shop, j, ann)?.runs, 1);
        assert_eq!(r.goal_candidates(shop, j, ann, i64::MAX, day(0, 3))?.len(), 1);
        assert_eq!(r.customer_name(shop, ann)?.as_deref(), Some("Ann"));
        assert_eq!(r.events_since(shop, ann, "order.paid", 0)?.len(), 1);
        assert_eq!(r.count_runs(shop, j, JourneyRunStatus::Active)?, 1);
        assert_eq!(r.arm(shop, j, false)?.0, 1);
        assert_eq!(r.version_stats(shop, j)?.len(), 1);
        assert!(!r.step_outcomes(shop, j)?.is_empty());
        Ok(())
    })
    .unwrap();

    // Asked with the other shop, they find nothing.
    s.read(|tx| {
        let r = tx.journeys();
        assert!(matches!(r.journey(other, j), Err(Error::NotFound(_))), "journey");
        assert!(matches!(r.run(other, run.id), Err(Error::NotFound(_))), "run");
        assert_eq!(r.definition(other, j, 1)?, None, "definition");
        assert!(r.versions(other, j)?.is_empty(), "versions");
        assert_eq!(r.runs_of(other, j, ann)?.runs, 0, "runs_of");
        assert!(r.goal_candidates(other, j, ann, i64::MAX, day(0, 3))?.is_empty(), "goal_candidates");
        assert_eq!(r.customer_name(other, ann)?, None, "customer_name");
        assert!(r.events_since(other, ann, "order.paid", 0)?.is_empty(), "events_since");
        assert_eq!(r.count_runs(other, j, JourneyRunStatus::Active)?, 0, "count_runs");
        assert_eq!(r.arm(other, j, false)?, (0, 0, 0), "arm");
        assert!(r.version_stats(other, j)?.is_empty(), "version_stats");
        assert!(r.step_outcomes(other, j)?.is_empty(), "step_outcomes");
        assert!(r.variant_runs(other, j)?.is_empty(), "variant_runs");
        Ok(())
    })
    .unwrap();

    // Writes with the other shop change nothing of this one's.
    let context = json!({"stolen": true});
    let place = RunPlace { step: "tag", variant: Some("tag:stolen"), context: &context };
    let late = day(9, 0);
    s.write(|tx| {
        let w = tx.journeys_writer();
        assert_eq!(w.convert(other, run.id, late, 999, late)?, 0, "convert");
        assert!(!w.end_wait(other, run.id, "wait", "stolen", late)?, "end_wait");
        w.set_cursor(other, j, 0)?;
        w.set_date_through(other, j, late.date_naive())?;
        w.pause(other, j, late)?;
        w.wait(other, run.id, &place, late)?;
        w.move_run(other, run.id, bea)?;
        w.update_journey(other, j, "Stolen", Some("stolen"), 7, late)?;
        w.activate(other, j, 0, late)?;
        w.exit_runs(other, j, late)?;
        w.end_run(other, run.id, JourneyRunStatus::Exited, "stolen", late, &place)?;
        w.fail_run(other, run.id, "stolen", late)?;
        w.set_status(other, j, JourneyStatus::Archived, late)?;
        w.delete_journey(other, j)?;
        Ok(())
    })
    .unwrap();
    let step = StepRecord {
        run_id: run.id,
        step: "wait",
        kind: "wait",
        outcome: "stolen",
        detail: "",
        message_id: None,
        coupon_id: None,
        at: late,
    };
    assert!(s.write(|tx| tx.journeys_writer().log_step(other, &step)).is_err(), "a step of another shop's run");
    assert!(
        s.write(|tx| tx.journeys_writer().insert_version(other, j, 2, &json!({}), late, "thief")).is_err(),
        "a version of another shop's journey"
    );

    assert_eq!(s.read(|tx| tx.journeys().journey(shop, j)).unwrap(), journey_before);
    assert_eq!(s.read(|tx| tx.journeys().view(shop, j)).unwrap(), view_before);
    assert_eq!(s.read(|tx| tx.journeys().run(shop, run.id)).unwrap(), run_before);
    assert_eq!(run_of(&*backend, shop, j, ann), run, "the run and its history are as they were");
    assert_eq!(s.read(|tx| tx.journeys().versions(shop, j)).unwrap().len(), 1);
}
