//! Ingest: a batch of events in one write transaction, each event applied whole or
//! not at all, a bad event not stopping the good ones; and what each event does.
//!
//! Identity resolution: an event names its customer by id, by identifiers, or both.
//! No identifier known and no id: a new customer holding the identifiers. One
//! customer found: that customer, given the identifiers it lacks. Several: they are
//! the same person, and are merged into the oldest (first seen earliest, then lowest
//! id), which holds the identifiers afterwards. The caps of [`IdentityCaps`] are
//! checked on the customer as it would be, before anything is written.
//!
//! A resent event id is a duplicate and applies nothing. Parsing and validation are
//! `kith_domain::ingest`'s; normalising identifiers `kith_domain::identity`'s.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use kith_domain::FieldError;
use kith_domain::ingest::{self, Action, Identifier, ProfileInput, RawEvent, Subject, ValidEvent, ValidOrder, ValidRefund};
use kith_domain::model::{EventOutcome, IngestReport, OutcomeStatus};
use kith_domain::money::MAX_TOTAL;
use serde_json::{Value, json};

use crate::ports::{PaidOrder, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, ledger, merge};

pub use crate::ports::IdentityCaps;

/// Validate and apply a batch of raw events for one shop in one write transaction, at
/// the kernel's `now`: an event without a time of its own happened then, and it is
/// what receipts and the log are stamped with. Each event applies whole or not at
/// all; the report says what became of each.
pub fn ingest<E: RawEvent>(
    storage: &dyn Storage,
    shop_id: i64,
    raw_events: Vec<E>,
    caps: &IdentityCaps,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IngestReport> {
    // Parsing and validation need only the shop's region; doing them before
    // taking the writer keeps the lock for the writes alone.
    let region = storage.read(|tx| tx.ingest().region(shop_id))?;
    let checked: Vec<(Option<String>, Result<ValidEvent, FieldError>)> = raw_events
        .into_iter()
        .map(|raw| {
            let (id, parsed) = raw.parse();
            (id, parsed.and_then(|e| e.validate(&region, now)))
        })
        .collect();
    // Most batches reject nothing after writing: they are applied without a savepoint per
    // event (in SQLite each copies every page the event changes first into a statement
    // journal). One that does is rolled back whole and applied again with them.
    let attempt = |savepoints| storage.write(|tx| apply_batch(tx, shop_id, &checked, caps, actor, now, savepoints));
    match attempt(false) {
        Err(Error::Internal(err)) if err.is::<FailedAfterWriting>() => attempt(true),
        done => done,
    }
}

/// An event failed after it wrote, in an attempt without savepoints.
#[derive(Debug, thiserror::Error)]
#[error("an event failed after writing; the batch is applied again with a savepoint per event")]
struct FailedAfterWriting;

/// Apply validated events in `tx`, each whole or not at all, and audit the batch. Without
/// `savepoints`, an event that fails after writing fails the attempt with [`FailedAfterWriting`]
/// (one that fails before writing is rejected alone, as with them).
fn apply_batch(
    tx: &dyn WriteTx,
    shop_id: i64,
    checked: &[(Option<String>, Result<ValidEvent, FieldError>)],
    caps: &IdentityCaps,
    actor: &Actor,
    now: DateTime<Utc>,
    savepoints: bool,
) -> Result<IngestReport> {
    let mut outcomes = Vec::with_capacity(checked.len());
    // Customers whose data the batch changed, marked for segments once each at its end.
    let mut changed = BTreeSet::new();
    for (index, (raw_id, validated)) in checked.iter().enumerate() {
        let outcome = |status, customer_id, error: Option<FieldError>| EventOutcome {
            index,
            id: raw_id.clone(),
            status,
            customer_id,
            field: error.as_ref().map(|e| e.field.clone()),
            reason: error.map(|e| e.reason),
        };
        let event = match validated {
            Ok(event) => event,
            Err(err) => {
                outcomes.push(outcome(OutcomeStatus::Rejected, None, Some(err.clone())));
                continue;
            }
        };
        if let Some(customer_id) = tx.ingest().receipt(shop_id, &event.id)? {
            outcomes.push(outcome(OutcomeStatus::Duplicate, customer_id, None));
            continue;
        }
        let written = tx.savepoints().written();
        if savepoints {
            tx.savepoints().savepoint()?;
        }
        let error = match apply(tx, shop_id, event, caps, actor, now) {
            Ok(customer_id) => {
                tx.ingest_writer().receive(shop_id, &event.id, customer_id, now)?;
                if savepoints {
                    tx.savepoints().release()?;
                }
                outcomes.push(outcome(OutcomeStatus::Accepted, Some(customer_id), None));
                changed.insert(customer_id);
                continue;
            }
            Err(Error::Invalid(err)) => err,
            Err(Error::NotFound(what)) => FieldError::new("", format!("{what} not found")),
            Err(Error::Conflict(reason)) => FieldError::new("", reason),
            // A failure of the storage fails the whole batch: the transaction rolls back.
            Err(err @ (Error::Internal(_) | Error::Unavailable(..))) => return Err(err),
        };
        if savepoints {
            tx.savepoints().roll_back()?;
        } else if tx.savepoints().written() != written {
            return Err(anyhow::Error::new(FailedAfterWriting).into());
        }
        outcomes.push(outcome(OutcomeStatus::Rejected, None, Some(error)));
    }
    for customer_id in changed {
        tx.segment_marks().customer_changed(shop_id, customer_id)?;
    }
    let count = |s: OutcomeStatus| outcomes.iter().filter(|o| o.status == s).count();
    let report = IngestReport {
        accepted: count(OutcomeStatus::Accepted),
        duplicates: count(OutcomeStatus::Duplicate),
        rejected: count(OutcomeStatus::Rejected),
        outcomes,
    };
    if report.accepted > 0 {
        let detail = json!({"accepted": report.accepted, "duplicates": report.duplicates, "rejected": report.rejected});
        tx.audit().record(Some(shop_id), actor, "events.ingest", None, detail, now)?;
    }
    Ok(report)
}

/// What one valid event does; the customer it resolved to.
fn apply(tx: &dyn WriteTx, shop_id: i64, event: &ValidEvent, caps: &IdentityCaps, actor: &Actor, now: DateTime<Utc>) -> Result<i64> {
    let why = format!("ingest event `{}`", event.id);
    match &event.action {
        Action::Upsert { subject, profile } => {
            let customer_id = resolve(tx, shop_id, subject, event.occurred_at, caps, &why, actor, now)?;
            let changed = update_profile(tx, shop_id, customer_id, profile)?;
            tx.ingest_writer().touch(shop_id, customer_id, now)?;
            if !changed.is_empty() {
                tx.event_log().append(shop_id, "customer.updated", Some(customer_id), &json!({"fields": changed}), now, None)?;
            }
            Ok(customer_id)
        }
        Action::OrderPaid { subject, order } => {
            let customer_id = resolve(tx, shop_id, subject, order.paid_at, caps, &why, actor, now)?;
            record_order(tx, shop_id, customer_id, order, now)?;
            Ok(customer_id)
        }
        Action::OrderRefunded { refund } => record_refund(tx, shop_id, refund, now),
        Action::Behaviour { subject, behaviour, occurred_at } => {
            let customer_id = resolve(tx, shop_id, subject, *occurred_at, caps, &why, actor, now)?;
            tx.ingest_writer().insert_behaviour(shop_id, customer_id, behaviour, *occurred_at)?;
            tx.ingest_writer().touch(shop_id, customer_id, now)?;
            let payload = json!({"kind": behaviour.kind, "sku": behaviour.sku, "category": behaviour.category, "occurred_at": occurred_at});
            tx.event_log().append(shop_id, "behaviour.recorded", Some(customer_id), &payload, now, None)?;
            Ok(customer_id)
        }
    }
}

/// The customer an event names: found by id or identifiers, created if none,
/// merged into the oldest if the identifiers belong to several. `seen_at` is when the event
/// happened in the business's terms (an order's payment, a behaviour's time): a customer is
/// first seen at the earliest of their events, not when the first of them arrived, so that
/// history imported later counts its customers in the past.
#[allow(clippy::too_many_arguments, reason = "the event's parts and the batch's context")]
fn resolve(
    tx: &dyn WriteTx,
    shop_id: i64,
    subject: &Subject,
    seen_at: DateTime<Utc>,
    caps: &IdentityCaps,
    why: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    // (first seen, id): the oldest customer survives a merge.
    let mut owners: BTreeSet<(DateTime<Utc>, i64)> = BTreeSet::new();
    if let Some(id) = subject.customer_id {
        let active =
            tx.customers().active(shop_id, id)?.ok_or_else(|| FieldError::new("customer_id", format!("no customer {id} in this shop")))?;
        owners.insert((tx.ingest().created_at(shop_id, active)?, active));
    }
    let mut unknown: Vec<&Identifier> = Vec::new();
    for identifier in &subject.identities {
        match tx.identities().owner(shop_id, &identifier.kind.to_string(), &identifier.value)? {
            Some(id) => {
                owners.insert((tx.ingest().created_at(shop_id, id)?, id));
            }
            None => unknown.push(identifier),
        }
    }

    // Check the caps on the customer as it will be, before writing anything.
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for &(_, id) in &owners {
        for (kind, n) in tx.identities().counts(shop_id, id)? {
            *counts.entry(kind).or_default() += n;
        }
    }
    for identifier in &unknown {
        *counts.entry(identifier.kind.to_string()).or_default() += 1;
    }
    for (kind, n) in &counts {
        let cap = caps.cap(kind);
        if *n > cap {
            let who = match owners.len() {
                0 => "a new customer".to_owned(),
                1 => format!("customer {}", owners.iter().next().map(|o| o.1).unwrap_or_default()),
                _ => format!("merging customers {}", owners.iter().map(|o| o.1.to_string()).collect::<Vec<_>>().join(", ")),
            };
            return Err(FieldError::new("identities", format!("{who} would hold {n} {kind} identifiers; the cap is {cap}")).into());
        }
    }

    let customer_id = match owners.iter().next() {
        Some(&(_, survivor)) => {
            for &(_, other) in owners.iter().skip(1) {
                merge::merge(tx, shop_id, survivor, other, &format!("{why} names identifiers of both"), actor, now)?;
            }
            tx.ingest_writer().seen_at(shop_id, survivor, seen_at)?;
            survivor
        }
        None => {
            let id = tx.ingest_writer().insert_customer(shop_id, seen_at.min(now), now)?;
            let identities: Vec<Value> = unknown.iter().map(|i| json!({"kind": i.kind.to_string(), "value": i.value})).collect();
            tx.event_log().append(shop_id, "customer.created", Some(id), &json!({"identities": identities}), now, None)?;
            id
        }
    };
    let is_new = owners.is_empty();
    for identifier in unknown {
        let kind = identifier.kind.to_string();
        tx.ingest_writer().attach(shop_id, &kind, &identifier.value, customer_id, now)?;
        if !is_new {
            let payload = json!({"kind": kind, "value": identifier.value});
            tx.event_log().append(shop_id, "identity.attached", Some(customer_id), &payload, now, None)?;
        }
    }
    Ok(customer_id)
}

/// Apply the present fields of `profile`; returns the names of the fields that changed.
fn update_profile(tx: &dyn WriteTx, shop_id: i64, customer_id: i64, profile: &ProfileInput) -> Result<Vec<&'static str>> {
    let current = tx.ingest().profile(shop_id, customer_id)?;
    let mut changed = Vec::new();
    let mut set = |field: &'static str, old: Option<String>, new: Option<String>| -> Option<String> {
        match new {
            Some(v) if old.as_deref() != Some(v.as_str()) => {
                changed.push(field);
                Some(v)
            }
            _ => old,
        }
    };
    let name = set("name", current.name, profile.name.clone());
    let gender = set("gender", current.gender, profile.gender.map(|g| g.as_str().to_owned()));
    let birthday = set("birthday", current.birthday, profile.birthday.map(|d| d.to_string()));
    let province = set("province", current.province, profile.province.clone());
    let city = set("city", current.city, profile.city.clone());
    let mut attrs: serde_json::Map<String, Value> = serde_json::from_str(&current.attributes).unwrap_or_default();
    if let Some(update) = &profile.attributes {
        let before = attrs.clone();
        for (k, v) in update {
            if v.is_null() {
                attrs.remove(k);
            } else {
                attrs.insert(k.clone(), v.clone());
            }
        }
        if attrs != before {
            changed.push("attributes");
        }
    }
    let attributes = Value::Object(attrs).to_string();
    if attributes.len() > ingest::MAX_ATTRIBUTES_BYTES {
        return Err(FieldError::new(
            "profile.attributes",
            format!("would make the customer's attributes larger than {} bytes", ingest::MAX_ATTRIBUTES_BYTES),
        )
        .into());
    }
    if !changed.is_empty() {
        let row = crate::ports::ProfileRow { name, gender, birthday, province, city, attributes };
        tx.ingest_writer().set_profile(shop_id, customer_id, &row)?;
    }
    Ok(changed)
}

/// A paid order: recorded once per shop's order id, counted in its customer's stats,
/// logged (with whether it is the customer's first order ever), and redeeming the
/// coupon it names.
fn record_order(tx: &dyn WriteTx, shop_id: i64, customer_id: i64, order: &ValidOrder, now: DateTime<Utc>) -> Result<()> {
    if tx.orders().by_external_id(shop_id, &order.external_id)?.is_some() {
        return Err(FieldError::new("order.id", format!("order `{}` is already recorded", order.external_id)).into());
    }
    // Checked before anything is written: a customer's total stays within MAX_TOTAL, so it
    // never leaves 64-bit integers (SQLite would turn an overflowing sum into a float that no
    // later read accepts).
    let spent = tx.ingest().stats(shop_id, customer_id)?.total_spent;
    if spent > MAX_TOTAL - order.amount {
        let reason = format!("would take customer {customer_id}'s total spent past {MAX_TOTAL} minor units");
        return Err(FieldError::new("order.amount", reason).into());
    }
    let order_id = tx.ingest_writer().insert_order(shop_id, customer_id, order, now)?;
    tx.ingest_writer().add_order_to_stats(shop_id, customer_id, order.amount, order.paid_at, now)?;
    // The customer's first order ever (journeys' "first order" trigger): no other order, refunded or not.
    let first_order = tx.ingest().order_count(shop_id, customer_id)? == 1;
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| json!({"sku": i.sku, "category": i.category, "quantity": i.quantity, "unit_price": i.unit_price, "discount": i.discount}))
        .collect();
    let payload = json!({"order_id": order.external_id, "amount": order.amount, "paid_at": order.paid_at,
        "coupon_code": order.coupon_code, "items": items, "first_order": first_order});
    tx.event_log().append(shop_id, "order.paid", Some(customer_id), &payload, now, None)?;
    if let Some(code) = &order.coupon_code {
        let paid = PaidOrder { id: order_id, external_id: &order.external_id, customer_id, amount: order.amount, paid_at: order.paid_at };
        crate::coupons::redeem_by_order(tx, shop_id, &paid, code, now)?;
    }
    Ok(())
}

/// A refund of part or all of what remains paid on an order: taken off the order and
/// its customer's stats (a fully refunded order no longer counts as an order), logged,
/// and the order's points brought in line ([`ledger::settle_order`]). The customer.
fn record_refund(tx: &dyn WriteTx, shop_id: i64, refund: &ValidRefund, now: DateTime<Utc>) -> Result<i64> {
    let order = tx
        .ingest()
        .order(shop_id, &refund.order_external_id)?
        .ok_or_else(|| FieldError::new("refund.order_id", format!("no order `{}` in this shop", refund.order_external_id)))?;
    let remaining = order.amount - order.refunded;
    if refund.amount > remaining {
        return Err(FieldError::new(
            "refund.amount",
            format!("exceeds the {remaining} still paid on order `{}`", refund.order_external_id),
        )
        .into());
    }
    let fully = refund.amount == remaining;
    tx.ingest_writer().refund_order(shop_id, order.id, refund.amount, fully)?;
    tx.ingest_writer().insert_refund(shop_id, order.id, refund.amount, refund.reason.as_deref(), refund.refunded_at)?;
    tx.ingest_writer().subtract_refund(shop_id, order.customer_id, refund.amount, fully, now)?;
    if fully {
        // The first and last order are those that count: a fully refunded order no longer does.
        tx.ingest_writer().recompute_stats(shop_id, order.customer_id)?;
    }
    let payload = json!({"order_id": refund.order_external_id, "amount": refund.amount, "fully_refunded": fully,
        "reason": refund.reason, "refunded_at": refund.refunded_at});
    tx.event_log().append(shop_id, "order.refunded", Some(order.customer_id), &payload, now, None)?;
    ledger::settle_order(tx, shop_id, order.id, now)?;
    Ok(order.customer_id)
}

/// Applying ingest batches on a backend, with its identifier caps.
pub trait IngestService: Storage {
    /// Validate and apply a batch of raw events for one shop in one transaction, at the
    /// system's time. Each event applies whole or not at all; the batch is durable when this returns.
    fn ingest<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor) -> Result<IngestReport> {
        self.ingest_at(shop_id, raw_events, actor, Utc::now())
    }

    /// [`IngestService::ingest`] at the kernel's `now`: an event without a time of its own happened
    /// then, and it is what receipts and the log are stamped with.
    fn ingest_at<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor, now: DateTime<Utc>) -> Result<IngestReport> {
        ingest(self.storage(), shop_id, raw_events, &self.identity_caps(), actor, now)
    }
}

impl<S: Storage + ?Sized> IngestService for S {}
