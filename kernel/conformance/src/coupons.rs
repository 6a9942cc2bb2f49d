//! Coupons and rewards through the core: issuance within a template's count and money
//! budgets, its dates and the limit per customer, idempotent by key; redemption by the
//! order that names a code, once, with the reasons of a refusal; issuance from many
//! threads at once staying within the budget; and rewards bought with points, which
//! spend the points, the stock and issue the coupon together or not at all.

use chrono::{DateTime, Utc};
use kith_core::coupons::{self, Redeemed};
use kith_core::ports::{PaidOrder, TemplateUsage};
use kith_core::{Actor, Error, Storage, StorageExt, ledger, rewards};
use kith_domain::coupons::{Coupon, CouponStatus, CouponTemplateInput, IssueRequest};
use kith_domain::loyalty::{PointsAdjustment, RedeemRequest, RewardInput};
use kith_domain::model::OutcomeStatus;
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

/// A fresh backend with one shop.
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Coupon shop", "Asia/Shanghai");
    (backend, shop)
}

/// A template worth `face_value`, valid 30 days, one per customer, without budgets.
pub(crate) fn terms(face_value: i64) -> CouponTemplateInput {
    CouponTemplateInput {
        name: format!("{face_value} off"),
        face_value,
        threshold: 0,
        valid_days: Some(30),
        valid_until: None,
        per_customer_limit: 1,
        budget_count: None,
        budget_money: None,
        active: true,
    }
}

/// A customer of the shop with this phone; its id.
fn customer(backend: &dyn Backend, shop: i64, phone: &str) -> i64 {
    let event = json!({"id": format!("upsert-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
    let report = backend.ingest(shop, vec![event], day(0, 0));
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// An order of the buyer with this phone paid with `code`, ingested at its payment.
fn pay_with(backend: &dyn Backend, shop: i64, phone: &str, order: &str, amount: i64, code: &str, at: DateTime<Utc>) {
    let event = json!({"id": format!("paid-{order}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": order, "amount": amount, "paid_at": at.to_rfc3339(), "coupon_code": code}});
    let report = backend.ingest(shop, vec![event], at);
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
}

/// Issue through the API's rules under `key`.
fn issue(s: &dyn Storage, shop: i64, template: i64, customer: i64, key: &str, at: DateTime<Utc>) -> Result<(Coupon, bool), Error> {
    coupons::issue_to(s, shop, template, &IssueRequest { customer_id: customer, idempotency_key: key.into() }, at)
}

/// The refusal's reason; panics when the issuance went through.
fn refusal(out: Result<(Coupon, bool), Error>) -> String {
    match out {
        Err(Error::Conflict(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn issued(s: &dyn Storage, shop: i64, template: i64) -> i64 {
    s.read(|tx| tx.coupons().template(shop, template)).unwrap().expect("the template is the shop's").issued
}

fn coupon(s: &dyn Storage, shop: i64, id: i64, at: DateTime<Utc>) -> Option<Coupon> {
    s.read(|tx| tx.coupons().coupon(shop, id, at)).unwrap()
}

/// The shop's events of type `kind`, their payloads in the order logged.
fn events(backend: &dyn Backend, shop: i64, kind: &str) -> Vec<Value> {
    backend.events(shop).into_iter().filter(|(k, _)| k == kind).map(|(_, payload)| payload).collect()
}

pub fn coupons_count_budget_caps_issuance(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { budget_count: Some(2), ..terms(500) });
    let buyers: Vec<i64> = ["13800000001", "13800000002", "13800000003"].iter().map(|p| customer(&*backend, shop, p)).collect();
    for (i, buyer) in buyers[..2].iter().enumerate() {
        let (c, new) = issue(s, shop, template, *buyer, &format!("k{i}"), day(1, 0)).unwrap();
        assert!(new);
        assert_eq!((c.customer_id, c.template_id, c.face_value, c.status), (*buyer, template, 500, CouponStatus::Issued));
        assert_eq!(c.expires_at, day(31, 0), "valid 30 days from issuance");
    }
    let reason = refusal(issue(s, shop, template, buyers[2], "k2", day(1, 0)));
    assert!(reason.contains("budget") && reason.contains("2 of 2"), "{reason}");
    assert_eq!(issued(s, shop, template), 2);
    assert_eq!(events(&*backend, shop, "coupon.issued").len(), 2, "a refusal issues nothing");
}

pub fn coupons_money_budget_caps_issuance(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    // 1000 a coupon within 2500: two coupons, not a third.
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { budget_money: Some(2500), ..terms(1000) });
    let buyers: Vec<i64> = ["13800000001", "13800000002", "13800000003"].iter().map(|p| customer(&*backend, shop, p)).collect();
    issue(s, shop, template, buyers[0], "k0", day(1, 0)).unwrap();
    issue(s, shop, template, buyers[1], "k1", day(1, 0)).unwrap();
    let reason = refusal(issue(s, shop, template, buyers[2], "k2", day(1, 0)));
    assert!(reason.contains("2000 of 2500 issued in face value"), "{reason}");
    assert_eq!(issued(s, shop, template), 2);
}

pub fn coupons_per_customer_limit_and_resends(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { per_customer_limit: 2, ..terms(300) });
    let other = backend.create_coupon_template(shop, &terms(100));
    let buyer = customer(&*backend, shop, "13800000001");
    let (first, new) = issue(s, shop, template, buyer, "a", day(1, 0)).unwrap();
    assert!(new);
    let (again, new) = issue(s, shop, template, buyer, "a", day(2, 0)).unwrap();
    assert!(!new, "a resend answers the first coupon");
    assert_eq!(again, first);
    issue(s, shop, template, buyer, "b", day(2, 0)).unwrap();
    let reason = refusal(issue(s, shop, template, buyer, "c", day(2, 0)));
    assert!(reason.contains("already holds 2 coupon(s)"), "{reason}");
    let reason = refusal(issue(s, shop, other, buyer, "a", day(2, 0)));
    assert!(reason.contains("idempotency key `a`"), "{reason}");
    assert_eq!(issued(s, shop, template), 2);
    // A customer the shop does not have is the request's fault, named by its field.
    match issue(s, shop, template, buyer + 1000, "d", day(2, 0)) {
        Err(Error::Invalid(e)) => assert_eq!(e.field, "customer_id"),
        other => panic!("expected customer_id refused, got {other:?}"),
    }
}

pub fn coupons_expiry_and_inactive_templates(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let until =
        backend.create_coupon_template(shop, &CouponTemplateInput { valid_days: None, valid_until: Some(day(10, 0)), ..terms(500) });
    let idle = backend.create_coupon_template(shop, &CouponTemplateInput { active: false, ..terms(500) });
    let week = backend.create_coupon_template(shop, &CouponTemplateInput { valid_days: Some(7), ..terms(500) });
    let a = customer(&*backend, shop, "13800000001");
    let b = customer(&*backend, shop, "13800000002");
    let (c, _) = issue(s, shop, until, a, "until-a", day(1, 0)).unwrap();
    assert_eq!(c.expires_at, day(10, 0), "a fixed end is every coupon's");
    let reason = refusal(issue(s, shop, until, b, "until-b", day(10, 0)));
    assert!(reason.contains("has expired"), "{reason}");
    let reason = refusal(issue(s, shop, idle, a, "idle", day(1, 0)));
    assert!(reason.contains("not active"), "{reason}");
    let (c, _) = issue(s, shop, week, a, "week", day(1, 0)).unwrap();
    assert_eq!(c.expires_at, day(8, 0));
    assert_eq!(coupon(s, shop, c.id, day(7, 23)).unwrap().status, CouponStatus::Issued);
    assert_eq!(coupon(s, shop, c.id, day(8, 0)).unwrap().status, CouponStatus::Expired);
    // An order paid at the expiry is too late.
    pay_with(&*backend, shop, "13800000001", "late", 5000, &c.code, day(8, 0));
    let refused = events(&*backend, shop, "coupon.refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["reason"], "the coupon had expired");
    assert_eq!(coupon(s, shop, c.id, day(9, 0)).unwrap().status, CouponStatus::Expired);
}

pub fn coupons_an_order_redeems_a_code_once(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { threshold: 10_000, ..terms(1000) });
    let a = customer(&*backend, shop, "13800000001");
    customer(&*backend, shop, "13800000002");
    let (c, _) = issue(s, shop, template, a, "a", day(1, 0)).unwrap();
    // Below the threshold: refused, the coupon stays usable.
    pay_with(&*backend, shop, "13800000001", "small", 9_999, &c.code, day(2, 0));
    // Another customer's order with the code.
    pay_with(&*backend, shop, "13800000002", "theirs", 20_000, &c.code, day(2, 1));
    assert_eq!(coupon(s, shop, c.id, day(2, 2)).unwrap().status, CouponStatus::Issued);
    // As a customer types it: lower case, in groups.
    let typed = format!("{}-{} {}", &c.code[..4], &c.code[4..8].to_lowercase(), &c.code[8..]);
    pay_with(&*backend, shop, "13800000001", "big", 10_000, &typed, day(3, 0));
    let redeemed = coupon(s, shop, c.id, day(4, 0)).unwrap();
    assert_eq!(redeemed.status, CouponStatus::Redeemed);
    assert_eq!(redeemed.order_id.as_deref(), Some("big"));
    assert_eq!(redeemed.redeemed_at, Some(day(3, 0)));
    // The same code again.
    pay_with(&*backend, shop, "13800000001", "again", 30_000, &c.code, day(4, 0));
    assert_eq!(coupon(s, shop, c.id, day(5, 0)).unwrap().order_id.as_deref(), Some("big"), "the first order keeps it");
    let ok = events(&*backend, shop, "coupon.redeemed");
    assert_eq!(ok, vec![json!({"coupon_id": c.id, "code": c.code, "order_id": "big"})]);
    let reasons: Vec<(Value, Value)> =
        events(&*backend, shop, "coupon.refused").iter().map(|e| (e["order_id"].clone(), e["reason"].clone())).collect();
    assert_eq!(
        reasons,
        vec![
            (json!("small"), json!("the order is below the coupon's threshold of 10000")),
            (json!("theirs"), json!("the coupon belongs to another customer")),
            (json!("again"), json!("the coupon was already redeemed")),
        ]
    );
    // Another shop does not know the code, and its customer's order stands.
    let other = backend.create_shop("Other shop", "Asia/Shanghai");
    pay_with(&*backend, other, "13800000001", "elsewhere", 50_000, &c.code, day(5, 0));
    let refused = events(&*backend, other, "coupon.refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["reason"], "no coupon has this code");
    assert!(s.read(|tx| tx.orders().by_external_id(other, "elsewhere")).unwrap().is_some());
    assert_eq!(coupon(s, other, c.id, day(5, 0)), None, "a shop never reads another's coupon");
    assert_eq!(s.read(|tx| tx.coupons().by_code(other, &c.code)).unwrap(), None);
    assert_eq!(s.read(|tx| tx.coupons().template(other, template)).unwrap(), None);
}

pub fn coupons_redemption_answers_its_outcome(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(shop, &terms(1000));
    let a = customer(&*backend, shop, "13800000001");
    let (c, _) = issue(s, shop, template, a, "a", day(1, 0)).unwrap();
    // Orders to redeem by, without codes.
    for order in ["o1", "o2"] {
        let event = json!({"id": format!("paid-{order}"), "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
            "order": {"id": order, "amount": 5000, "paid_at": day(2, 0).to_rfc3339()}});
        backend.ingest(shop, vec![event], day(2, 0));
    }
    let redeem = |order: &str| {
        s.write(|tx| {
            let id = tx.orders().by_external_id(shop, order)?.expect("the order was recorded");
            let paid = PaidOrder { id, external_id: order, customer_id: a, amount: 5000, paid_at: day(2, 0) };
            coupons::redeem_by_order(tx, shop, &paid, &c.code.to_lowercase(), day(2, 0))
        })
        .unwrap()
    };
    assert_eq!(redeem("o1"), Redeemed::Coupon(c.id));
    assert_eq!(redeem("o2"), Redeemed::Refused("the coupon was already redeemed".into()));
}

pub fn coupons_concurrent_issuance_stays_within_the_budget(factory: &dyn Factory) {
    const THREADS: usize = 8;
    const BUDGET: i64 = 5;
    let (backend, shop) = shop(factory);
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { budget_count: Some(BUDGET), ..terms(100) });
    let limited = backend.create_coupon_template(shop, &terms(100));
    let buyers: Vec<i64> = (0..THREADS).map(|i| customer(&*backend, shop, &format!("1380000{i:04}"))).collect();
    let s = backend.storage();
    // Every thread issues at once: to its own customer against the shared budget, then to the
    // first customer against the limit of one per customer.
    let start = std::sync::Barrier::new(THREADS);
    let outcomes: Vec<(bool, bool)> = std::thread::scope(|scope| {
        let threads: Vec<_> = buyers
            .iter()
            .enumerate()
            .map(|(i, buyer)| {
                let start = &start;
                let first = buyers[0];
                scope.spawn(move || {
                    start.wait();
                    let budgeted = issue(s, shop, template, *buyer, &format!("budget-{i}"), day(1, 0));
                    let per_customer = issue(s, shop, limited, first, &format!("limit-{i}"), day(1, 0));
                    for out in [&budgeted, &per_customer] {
                        assert!(matches!(out, Ok(_) | Err(Error::Conflict(_))), "{out:?}");
                    }
                    (budgeted.is_ok(), per_customer.is_ok())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("the thread finished")).collect()
    });
    assert_eq!(outcomes.iter().filter(|(budgeted, _)| *budgeted).count() as i64, BUDGET, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|(_, limited)| *limited).count(), 1, "{outcomes:?}");
    assert_eq!(issued(s, shop, template), BUDGET);
    let held: i64 = buyers.iter().map(|b| s.read(|tx| tx.coupons().held(shop, template, *b)).unwrap()).sum();
    assert_eq!(held, BUDGET);
    assert_eq!(s.read(|tx| tx.coupons().held(shop, limited, buyers[0])).unwrap(), 1);
}

pub fn coupons_rewards_spend_points_stock_and_issue_together(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { per_customer_limit: 5, ..terms(2000) });
    let scarce = backend.create_coupon_template(shop, &CouponTemplateInput { budget_count: Some(0), ..terms(2000) });
    let one_left = backend.create_reward(shop, &reward("Mug", 60, template, Some(1)));
    let plenty = backend.create_reward(shop, &reward("Tote", 50, template, None));
    let unissuable = backend.create_reward(shop, &reward("Gone", 10, scarce, None));
    let buyer = customer(&*backend, shop, "13800000001");
    let actor = Actor::cli("conformance");
    let adj = PointsAdjustment { points: 100, reason: "welcome".into(), idempotency_key: "welcome".into(), expires_at: None };
    ledger::adjust(s, shop, buyer, &adj, &actor, day(1, 0)).unwrap();
    let balance = || s.read(|tx| tx.ledger().balance(shop, buyer)).unwrap();
    let redeem = |reward: i64, key: &str| {
        rewards::redeem(s, shop, buyer, &RedeemRequest { reward_id: reward, idempotency_key: key.into() }, day(2, 0))
    };

    let (first, new) = redeem(one_left, "r1").unwrap();
    assert!(new);
    assert_eq!((first.points, first.balance_after, first.customer_id), (60, 40, buyer));
    assert_eq!((first.coupon.template_id, first.coupon.source.as_str()), (template, "reward"));
    assert_eq!(balance(), 40);
    let mug = s.read(|tx| tx.rewards().reward(shop, one_left)).unwrap().unwrap();
    assert_eq!((mug.stock, mug.redeemed), (Some(0), 1));
    // A resend answers the first redemption and spends nothing more.
    let (again, new) = redeem(one_left, "r1").unwrap();
    assert!(!new);
    assert_eq!(again, first);
    assert_eq!(balance(), 40);
    assert!(matches!(redeem(plenty, "r1"), Err(Error::Conflict(r)) if r.contains("idempotency_key `r1`")));
    // Out of stock, then not enough points: nothing changes.
    assert!(matches!(redeem(one_left, "r2"), Err(Error::Conflict(r)) if r.contains("out of stock")));
    assert!(
        matches!(redeem(plenty, "r3"), Err(Error::Conflict(r)) if r == format!("insufficient points: 40 available, reward {plenty} costs 50"))
    );
    // A coupon the template may not issue undoes the spending.
    assert!(matches!(redeem(unissuable, "r4"), Err(Error::Conflict(r)) if r.contains("budget")));
    assert_eq!(balance(), 40);
    assert_eq!(issued(s, shop, template), 1);
    assert_eq!(issued(s, shop, scarce), 0);
    let tote = s.read(|tx| tx.rewards().reward(shop, plenty)).unwrap().unwrap();
    assert_eq!((tote.stock, tote.redeemed), (None, 0));
    assert_eq!(s.read(|tx| tx.rewards().redemption_by_key(shop, "r3")).unwrap(), None);
    // Another shop's reward is not found.
    let other = backend.create_shop("Other shop", "Asia/Shanghai");
    assert_eq!(s.read(|tx| tx.rewards().reward(other, plenty)).unwrap(), None);
    assert_eq!(s.read(|tx| tx.rewards().redemption_by_key(other, "r1")).unwrap(), None);
}

fn reward(name: &str, points_cost: i64, coupon_template_id: i64, stock: Option<i64>) -> RewardInput {
    RewardInput { name: name.into(), description: None, points_cost, coupon_template_id, stock, active: true }
}

/// The ports of coupons and rewards answer only within the shop they are given: asked
/// with another shop's id for this shop's template, coupon, reward or customer, they read
/// nothing and write nothing, and the rows read back with their own shop are as they were.
pub fn coupons_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let other = backend.create_shop("Other shop", "Asia/Shanghai");
    let template = backend.create_coupon_template(shop, &CouponTemplateInput { per_customer_limit: 5, ..terms(1000) });
    let mug = backend.create_reward(shop, &reward("Mug", 60, template, Some(3)));
    let buyer = customer(&*backend, shop, "13800000001");
    let (paid_with, _) = issue(s, shop, template, buyer, "k1", day(1, 0)).unwrap();
    pay_with(&*backend, shop, "13800000001", "T1", 5_000, &paid_with.code, day(2, 0));
    let (unused, _) = issue(s, shop, template, buyer, "k2", day(2, 1)).unwrap();
    let adj = PointsAdjustment { points: 100, reason: "welcome".into(), idempotency_key: "welcome".into(), expires_at: None };
    ledger::adjust(s, shop, buyer, &adj, &Actor::cli("conformance"), day(2, 2)).unwrap();
    rewards::redeem(s, shop, buyer, &RedeemRequest { reward_id: mug, idempotency_key: "r1".into() }, day(2, 3)).unwrap();
    // The other shop has coupons and rewards of its own.
    let their_template = backend.create_coupon_template(other, &terms(500));
    backend.create_reward(other, &reward("Pen", 10, their_template, Some(9)));
    let theirs = customer(&*backend, other, "13800000001");
    issue(s, other, their_template, theirs, "k1", day(1, 0)).unwrap();
    let now = day(3, 0);
    let order_id = s.read(|tx| tx.orders().by_external_id(shop, "T1")).unwrap().expect("the order exists");

    let usage = s.read(|tx| tx.coupons().template_usage(shop, template, now)).unwrap();
    assert_eq!((usage.redeemed, usage.revenue), (1, 5_000));
    s.read(|tx| {
        assert_eq!(tx.coupons().held(other, template, buyer)?, 0);
        assert_eq!(tx.coupons().template_usage(other, template, now)?, TemplateUsage::default());
        assert!(tx.rewards().redemptions_of(other, buyer)?.is_empty());
        Ok(())
    })
    .unwrap();

    let read_back = || {
        s.read(|tx| {
            Ok((
                tx.coupons().template(shop, template)?,
                tx.coupons().coupon(shop, unused.id, now)?,
                tx.coupons().held(shop, template, buyer)?,
                tx.rewards().reward(shop, mug)?,
                tx.rewards().redemptions_of(shop, buyer)?,
            ))
        })
        .unwrap()
    };
    let kept = read_back();
    assert_eq!((kept.2, kept.4.len()), (3, 1), "two coupons issued, one bought with the reward");
    s.write(|tx| {
        tx.coupons_writer().count_issued(other, template)?;
        tx.coupons_writer().redeem(other, unused.id, order_id, day(3, 0))?;
        tx.rewards_writer().take_one(other, mug)
    })
    .unwrap();
    assert_eq!(read_back(), kept, "writes with another shop's id left this shop's rows as they were");
    assert_eq!(issued(s, other, their_template), 1, "nor did they write the other shop's");
}
