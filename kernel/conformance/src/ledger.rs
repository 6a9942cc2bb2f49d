//! The points ledger through the core: batches drawn oldest first, debt paid first,
//! claw-backs of refunded orders under both refund policies, expiry, idempotent
//! postings, operators' adjustments, merges, and shops kept apart.

use chrono::{DateTime, Utc};
use kith_core::ledger::{self, Post, SchemePoints};
use kith_core::ports::{Batch, OrderPoints};
use kith_core::{Actor, Error, Storage, StorageExt};
use kith_domain::loyalty::{LedgerKind, LoyaltySettings, PointsAdjustment, RefundPolicy};
use kith_domain::model::OutcomeStatus;
use serde_json::json;

use crate::{Backend, Factory, day};

/// A fresh backend with one shop.
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Ledger shop", "Asia/Shanghai");
    (backend, shop)
}

/// A paid order of the buyer with this phone; the buyer's id.
fn buy(backend: &dyn Backend, shop: i64, phone: &str, order: &str, amount: i64, at: DateTime<Utc>) -> i64 {
    let event = json!({"id": format!("paid-{order}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
        "order": {"id": order, "amount": amount, "paid_at": at.to_rfc3339()}});
    accepted(backend, shop, event, at)
}

fn refund(backend: &dyn Backend, shop: i64, order: &str, amount: i64, at: DateTime<Utc>) {
    let event = json!({"id": format!("refund-{order}-{amount}-{}", at.timestamp()), "type": "order.refunded",
        "refund": {"order_id": order, "amount": amount, "refunded_at": at.to_rfc3339()}});
    accepted(backend, shop, event, at);
}

fn accepted(backend: &dyn Backend, shop: i64, event: serde_json::Value, at: DateTime<Utc>) -> i64 {
    let report = backend.ingest(shop, vec![event], at);
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// Award `points` under `key` (a loyalty scheme's posting), expiring at `expires_at`.
fn award(
    s: &dyn Storage,
    shop: i64,
    customer: i64,
    points: i64,
    key: &str,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Option<i64> {
    let p =
        SchemePoints { shop_id: shop, customer_id: customer, points, source: "tiered-points", source_key: key, reason: "for the test", at };
    s.write(|tx| ledger::award(tx, &p, expires_at)).unwrap()
}

/// Spend `points` (a redemption's posting).
fn spend(s: &dyn Storage, shop: i64, customer: i64, points: i64, key: &str, at: DateTime<Utc>) {
    let post = Post {
        shop_id: shop,
        customer_id: customer,
        kind: LedgerKind::Redeem,
        points: -points,
        source: "reward",
        source_key: key,
        reason: "spent in the test",
        order_id: None,
        expires_at: None,
        at,
    };
    assert!(s.write(|tx| ledger::post(tx, &post)).unwrap().is_some(), "spending {points} under {key} was posted");
}

fn balance(s: &dyn Storage, shop: i64, customer: i64) -> i64 {
    s.read(|tx| tx.ledger().balance(shop, customer)).unwrap()
}

fn batches(s: &dyn Storage, shop: i64, customer: i64) -> Vec<i64> {
    s.read(|tx| tx.ledger().batches(shop, customer)).unwrap().iter().map(|b| b.remaining).collect()
}

fn kinds(s: &dyn Storage, shop: i64, customer: i64) -> Vec<(LedgerKind, i64)> {
    s.read(|tx| tx.ledger().entries(shop, customer)).unwrap().iter().map(|e| (e.kind, e.points)).collect()
}

/// The ledger's invariant: stored batches are what a replay says, and they sum to the balance.
fn consistent(s: &dyn Storage, shop: i64) {
    assert_eq!(ledger::mismatches(s, shop).unwrap(), Vec::<i64>::new(), "stored batches differ from a replay");
}

pub fn ledger_spending_draws_the_oldest_batches_first(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 100, "first", None, day(1, 0)).unwrap();
    award(s, shop, c, 50, "second", None, day(2, 0)).unwrap();
    award(s, shop, c, 20, "third", None, day(3, 0)).unwrap();
    spend(s, shop, c, 120, "r1", day(4, 0));
    assert_eq!(batches(s, shop, c), [0, 30, 20], "the oldest batch is drawn whole before the next");
    assert_eq!(balance(s, shop, c), 50);
    let open: Vec<Batch> = s.read(|tx| tx.ledger().open_batches(shop, c)).unwrap();
    assert_eq!(open.iter().map(|b| b.remaining).collect::<Vec<_>>(), [30, 20], "open batches are those with points left, oldest first");
    consistent(s, shop);
}

pub fn ledger_source_key_posts_once(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    let first = award(s, shop, c, 100, "order-bonus", None, day(1, 0));
    assert!(first.is_some());
    assert_eq!(award(s, shop, c, 100, "order-bonus", None, day(1, 1)), None, "a used key posts nothing");
    assert_eq!(award(s, shop, c, 70, "order-bonus", None, day(1, 2)), None, "nor with another amount");
    assert_eq!(award(s, shop, c, 0, "nothing", None, day(1, 3)), None, "zero points post nothing");
    assert_eq!(balance(s, shop, c), 100);
    let entry = s.read(|tx| tx.ledger().entry(shop, first.unwrap())).unwrap();
    assert_eq!((entry.kind, entry.points, entry.remaining, entry.source.as_str()), (LedgerKind::Earn, 100, Some(100), "tiered-points"));
    assert_eq!(entry.created_at, day(1, 0), "times cross the ports to the millisecond");
}

pub fn ledger_debt_is_paid_first_by_later_earnings(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 100, "order:T1", None, day(0, 1)).unwrap();
    spend(s, shop, c, 80, "r1", day(1, 0));
    refund(&*b, shop, "T1", 10_000, day(2, 0));
    assert_eq!(kinds(s, shop, c), [(LedgerKind::Earn, 100), (LedgerKind::Redeem, -80), (LedgerKind::Clawback, -100)]);
    assert_eq!(balance(s, shop, c), -80, "the claw-back beyond the balance is a debt (the default policy)");
    award(s, shop, c, 50, "later-1", None, day(3, 0)).unwrap();
    assert_eq!(balance(s, shop, c), -30);
    assert_eq!(batches(s, shop, c), [0, 0], "points earned in debt pay it and open an empty batch");
    award(s, shop, c, 40, "later-2", None, day(4, 0)).unwrap();
    assert_eq!(balance(s, shop, c), 10);
    assert_eq!(batches(s, shop, c), [0, 0, 10]);
    consistent(s, shop);
}

pub fn ledger_forgive_policy_writes_off_a_refunds_debt(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    b.put_loyalty_settings(shop, &LoyaltySettings { refund_policy: RefundPolicy::Forgive });
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 100, "order:T1", None, day(0, 1)).unwrap();
    spend(s, shop, c, 80, "r1", day(1, 0));
    refund(&*b, shop, "T1", 10_000, day(2, 0));
    assert_eq!(
        kinds(s, shop, c),
        [(LedgerKind::Earn, 100), (LedgerKind::Redeem, -80), (LedgerKind::Clawback, -100), (LedgerKind::Adjust, 80)],
        "the shortfall is written off at once"
    );
    assert_eq!(balance(s, shop, c), 0);
    consistent(s, shop);
}

pub fn ledger_partial_refunds_claw_back_the_refunded_share(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 99, "order:T1", None, day(0, 1)).unwrap();
    refund(&*b, shop, "T1", 2_500, day(1, 0));
    assert_eq!(balance(s, shop, c), 74, "a quarter refunded takes a quarter of the points, the points kept rounded down");
    refund(&*b, shop, "T1", 2_500, day(2, 0));
    assert_eq!(balance(s, shop, c), 49);
    s.write(|tx| ledger::settle_order(tx, shop, order(s, shop, "T1"), day(3, 0))).unwrap();
    assert_eq!(balance(s, shop, c), 49, "settling again takes nothing more");
    refund(&*b, shop, "T1", 5_000, day(4, 0));
    assert_eq!(balance(s, shop, c), 0, "a full refund takes every point the order earned");
    let clawed: Vec<i64> = kinds(s, shop, c).iter().filter(|(k, _)| *k == LedgerKind::Clawback).map(|(_, p)| *p).collect();
    assert_eq!(clawed, [-25, -25, -49]);
    consistent(s, shop);
}

fn order(s: &dyn Storage, shop: i64, external: &str) -> i64 {
    s.read(|tx| tx.orders().by_external_id(shop, external)).unwrap().expect("the order exists")
}

pub fn ledger_award_for_a_refunded_order_loses_the_share_at_once(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 8_000, day(0, 0));
    refund(&*b, shop, "T1", 2_000, day(0, 1));
    award(s, shop, c, 40, "order:T1", None, day(0, 2)).unwrap();
    assert_eq!(kinds(s, shop, c), [(LedgerKind::Earn, 40), (LedgerKind::Clawback, -10)]);
    let earned = s.read(|tx| tx.ledger().entries(shop, c)).unwrap()[0].id;
    assert_eq!(s.read(|tx| tx.ledger().entry(shop, earned)).unwrap().order_id.as_deref(), Some("T1"), "the award is tied to its order");
    // A key naming no order of the shop is an ordinary award.
    award(s, shop, c, 5, "order:T404", None, day(0, 3)).unwrap();
    assert_eq!(balance(s, shop, c), 35);
}

pub fn ledger_expiry_takes_what_remains_of_each_due_batch(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 100, "soon", Some(day(10, 0)), day(1, 0)).unwrap();
    award(s, shop, c, 50, "never", None, day(2, 0)).unwrap();
    award(s, shop, c, 30, "later", Some(day(40, 0)), day(3, 0)).unwrap();
    spend(s, shop, c, 30, "r1", day(4, 0));
    assert_eq!(ledger::expire(s, day(9, 23), 100).unwrap(), 0, "nothing is due before its expiry");
    assert_eq!(ledger::expire(s, day(10, 0), 100).unwrap(), 1, "a batch expires at its expiry");
    assert_eq!(balance(s, shop, c), 80, "the 70 left of the first batch expired");
    assert_eq!(batches(s, shop, c), [0, 50, 30]);
    assert_eq!(ledger::expire(s, day(11, 0), 100).unwrap(), 0, "an expired batch expires once");
    let expiry = s.read(|tx| tx.ledger().entries(shop, c)).unwrap().into_iter().find(|e| e.kind == LedgerKind::Expire).unwrap();
    assert_eq!(expiry.points, -70);
    assert!(expiry.batch_id.is_some(), "an expiry names its batch");
    consistent(s, shop);
    // At most `limit` batches a pass; the next pass takes the rest.
    let d = buy(&*b, shop, "13800000002", "T2", 10_000, day(0, 0));
    for i in 0..3 {
        award(s, shop, d, 10, &format!("batch-{i}"), Some(day(20, i)), day(5, 0)).unwrap();
    }
    assert_eq!(ledger::expire(s, day(50, 0), 2).unwrap(), 2);
    assert_eq!(ledger::expire(s, day(50, 0), 2).unwrap(), 2, "the third of d's and c's last batch");
    assert_eq!(ledger::expire(s, day(50, 0), 2).unwrap(), 0);
    assert_eq!((balance(s, shop, c), balance(s, shop, d)), (50, 0));
    consistent(s, shop);
}

pub fn ledger_adjustments_refuse_overdraws_and_answer_resends(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    let actor = Actor::cli("conformance");
    let adj =
        |points: i64, key: &str| PointsAdjustment { points, reason: "goodwill".into(), idempotency_key: key.into(), expires_at: None };
    let over = ledger::adjust(s, shop, c, &adj(-1, "take-1"), &actor, day(1, 0)).unwrap_err();
    assert!(matches!(&over, Error::Conflict(why) if why.contains("insufficient points")), "{over:?}");
    let (entry, created) = ledger::adjust(s, shop, c, &adj(30, "give-30"), &actor, day(1, 0)).unwrap();
    assert!(created);
    assert_eq!((entry.kind, entry.points, entry.source.as_str(), entry.source_key.as_str()), (LedgerKind::Earn, 30, "api", "give-30"));
    let (again, created) = ledger::adjust(s, shop, c, &adj(30, "give-30"), &actor, day(1, 1)).unwrap();
    assert!(!created, "a resend is not a new entry");
    assert_eq!(again.id, entry.id, "a resend answers the first entry");
    let reused = ledger::adjust(s, shop, c, &adj(31, "give-30"), &actor, day(1, 2)).unwrap_err();
    assert!(matches!(reused, Error::Conflict(_)), "the key reused for another amount is refused");
    let other = buy(&*b, shop, "13800000002", "T2", 10_000, day(0, 0));
    let reused = ledger::adjust(s, shop, other, &adj(30, "give-30"), &actor, day(1, 3)).unwrap_err();
    assert!(matches!(reused, Error::Conflict(_)), "the key reused for another customer is refused");
    let (taken, _) = ledger::adjust(s, shop, c, &adj(-30, "take-30"), &actor, day(2, 0)).unwrap();
    assert_eq!((taken.kind, taken.points, taken.remaining), (LedgerKind::Adjust, -30, None));
    assert_eq!(balance(s, shop, c), 0);
    let invalid = ledger::adjust(s, shop, c, &adj(0, "zero"), &actor, day(2, 0)).unwrap_err();
    assert!(matches!(&invalid, Error::Invalid(field) if field.field == "points"), "{invalid:?}");
    consistent(s, shop);
}

pub fn ledger_merge_joins_two_ledgers(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let phone = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, phone, 100, "order:T1", None, day(0, 1)).unwrap();
    spend(s, shop, phone, 100, "r1", day(1, 0));
    refund(&*b, shop, "T1", 10_000, day(2, 0));
    assert_eq!(balance(s, shop, phone), -100, "the phone's customer owes 100");
    let email = accepted(
        &*b,
        shop,
        json!({"id": "u1", "type": "customer.upsert", "identities": [{"kind": "email", "value": "ming@example.com"}]}),
        day(0, 0),
    );
    award(s, shop, email, 60, "e1", None, day(1, 0)).unwrap();
    award(s, shop, email, 70, "e2", None, day(3, 0)).unwrap();
    // One event names both: the two customers are one person.
    let survivor = accepted(
        &*b,
        shop,
        json!({"id": "u2", "type": "customer.upsert",
               "identities": [{"kind": "phone", "value": "13800000001"}, {"kind": "email", "value": "ming@example.com"}]}),
        day(4, 0),
    );
    assert!(survivor == phone || survivor == email);
    assert_eq!(balance(s, shop, survivor), 30, "one ledger: 130 earned by the e-mail's customer pay the phone's debt of 100");
    // Replayed in time order: the claw-back of day 2 takes the 60 of day 1 and leaves a debt
    // of 40, which the 70 of day 3 pays.
    assert_eq!(batches(s, shop, survivor), [0, 0, 30]);
    consistent(s, shop);
    assert_eq!(s.read(|tx| tx.customers().active(shop, phone)).unwrap(), Some(survivor));
    assert_eq!(s.read(|tx| tx.customers().active(shop, email)).unwrap(), Some(survivor), "a merged customer is found as its survivor");
}

pub fn ledger_is_scoped_by_shop(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let other_shop = b.create_shop("Another shop", "Asia/Shanghai");
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    let theirs = buy(&*b, other_shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 10, "same-key", None, day(1, 0)).unwrap();
    assert!(award(s, other_shop, theirs, 10, "same-key", None, day(1, 0)).is_some(), "source keys are per shop");
    let adj = PointsAdjustment { points: 5, reason: "goodwill".into(), idempotency_key: "k".into(), expires_at: None };
    let err = ledger::adjust(s, other_shop, c, &adj, &Actor::cli("conformance"), day(2, 0)).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "another shop's customer is not found: {err:?}");
    assert_eq!(s.read(|tx| tx.customers().active(other_shop, c)).unwrap(), None);
    assert_eq!(s.read(|tx| tx.orders().by_external_id(other_shop, "T404")).unwrap(), None);
    assert_ne!(order(s, shop, "T1"), order(s, other_shop, "T1"), "each shop's order T1 is its own");
    assert_eq!(s.read(|tx| tx.ledger().customers_with_entries(shop)).unwrap(), [c]);
    assert_eq!(s.read(|tx| tx.ledger().by_source(other_shop, "tiered-points", "same-key")).unwrap().map(|e| e.customer_id), Some(theirs));
}

/// The ledger's ports answer only within the shop they are given: asked with another
/// shop's id for this shop's customer, order, entry or batch, they read nothing and write
/// nothing, and the ledger read back with its own shop is as it was.
pub fn ledger_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let (b, shop) = shop(factory);
    let s = b.storage();
    let other = b.create_shop("Another shop", "Asia/Shanghai");
    let c = buy(&*b, shop, "13800000001", "T1", 10_000, day(0, 0));
    award(s, shop, c, 100, "order:T1", Some(day(30, 0)), day(0, 1)).unwrap();
    refund(&*b, shop, "T1", 5_000, day(1, 0));
    // The other shop has a ledger of its own.
    let theirs = buy(&*b, other, "13800000001", "T1", 10_000, day(0, 0));
    award(s, other, theirs, 7, "order:T1", None, day(0, 1)).unwrap();
    let order_id = order(s, shop, "T1");
    let entry = s.read(|tx| tx.ledger().entries(shop, c)).unwrap()[0].id;
    assert_eq!(balance(s, shop, c), 50, "the shop's ledger: 100 earned, half clawed back");

    s.read(|tx| {
        let l = tx.ledger();
        assert_eq!(l.balance(other, c)?, 0);
        assert!(l.open_batches(other, c)?.is_empty());
        assert!(l.batches(other, c)?.is_empty());
        assert!(l.entries(other, c)?.is_empty());
        assert_eq!(l.order_points(other, order_id)?, OrderPoints::default());
        assert!(l.entry(other, entry).is_err(), "another shop's entry is not found");
        assert!(l.page(other, c, None, 10)?.is_empty());
        assert!(l.expiring(other, c)?.is_empty());
        assert!(l.tier(other, c).is_err(), "another shop's customer is not found");
        assert!(l.tier_history(other, c)?.is_empty());
        assert!(tx.orders().refund_state(other, order_id).is_err(), "another shop's order is not found");
        Ok(())
    })
    .unwrap();

    let kept = s.read(|tx| Ok((tx.ledger().batches(shop, c)?, tx.ledger().entry(shop, entry)?))).unwrap();
    assert_eq!(kept.0, [Batch { id: entry, remaining: 50 }]);
    s.write(|tx| {
        tx.ledger_writer().take(other, entry, 20)?;
        tx.ledger_writer().set_remaining(other, entry, 0)
    })
    .unwrap();
    assert_eq!(s.read(|tx| Ok((tx.ledger().batches(shop, c)?, tx.ledger().entry(shop, entry)?))).unwrap(), kept);
    assert_eq!((balance(s, shop, c), balance(s, other, theirs)), (50, 7));
    consistent(s, shop);
    consistent(s, other);
}
