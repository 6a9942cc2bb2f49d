//! Applying ingest batches: identity resolution, profiles, orders, refunds and
//! behaviours, each event all-or-nothing inside the batch's one transaction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use kith_domain::FieldError;
use kith_domain::ingest::{self, Action, Identifier, ProfileInput, RawEvent, Subject, ValidEvent, ValidOrder, ValidRefund};
use kith_domain::model::{EventOutcome, IngestReport, OutcomeStatus};
use kith_domain::money::MAX_TOTAL;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::customers::active_customer;
use crate::ports::Sql;
use crate::{Actor, IdentityCaps, Result, Store, StoreError, audit, coupons, events, merge, shops, to_ms};

impl Store {
    /// Validate and apply a batch of raw events for one shop in one transaction, at the
    /// system's time. Each event applies whole or not at all; the batch is durable when this returns.
    pub fn ingest<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor) -> Result<IngestReport> {
        self.ingest_at(shop_id, raw_events, actor, Utc::now())
    }

    /// [`Store::ingest`] at the kernel's `now`: an event without a time of its own happened
    /// then, and it is what receipts and the log are stamped with.
    pub fn ingest_at<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor, now: DateTime<Utc>) -> Result<IngestReport> {
        let caps = &self.options.identity_caps;
        // Parsing and validation need only the shop's region; doing them before
        // taking the writer keeps the lock for the writes alone.
        let region = self.read(|conn| shops::load_shop(conn, shop_id))?.region;
        let checked: Vec<(Option<String>, Result<ValidEvent, FieldError>)> = raw_events
            .into_iter()
            .map(|raw| {
                let (id, parsed) = raw.parse();
                (id, parsed.and_then(|e| e.validate(&region, now)))
            })
            .collect();
        // Most batches reject nothing after writing: they are applied without a savepoint per
        // event (each copies every page the event changes first into a statement journal). One
        // that does is rolled back whole and applied again with them.
        let attempt = |savepoints| self.write(|tx| apply_batch(tx, shop_id, &checked, caps, actor, now, savepoints));
        match attempt(false) {
            Err(StoreError::Internal(err)) if err.is::<FailedAfterWriting>() => attempt(true),
            done => done,
        }
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
    tx: &Connection,
    shop_id: i64,
    checked: &[(Option<String>, Result<ValidEvent, FieldError>)],
    caps: &IdentityCaps,
    actor: &Actor,
    now: DateTime<Utc>,
    savepoints: bool,
) -> Result<IngestReport> {
    let mut outcomes = Vec::with_capacity(checked.len());
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
        let receipt: Option<Option<i64>> = tx
            .prepare_cached("SELECT customer_id FROM ingest_receipts WHERE shop_id = ?1 AND event_id = ?2")?
            .query_row(params![shop_id, event.id], |r| r.get(0))
            .optional()?;
        if let Some(customer_id) = receipt {
            outcomes.push(outcome(OutcomeStatus::Duplicate, customer_id, None));
            continue;
        }
        // Rows written by every statement so far, those of triggers included.
        let written = tx.total_changes();
        if savepoints {
            tx.prepare_cached("SAVEPOINT event")?.execute([])?;
        }
        let error = match apply(tx, shop_id, event, caps, actor, now) {
            Ok(customer_id) => {
                tx.prepare_cached("INSERT INTO ingest_receipts (shop_id, event_id, customer_id, received_at) VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![shop_id, event.id, customer_id, to_ms(now)])?;
                if savepoints {
                    tx.prepare_cached("RELEASE event")?.execute([])?;
                }
                outcomes.push(outcome(OutcomeStatus::Accepted, Some(customer_id), None));
                continue;
            }
            Err(StoreError::Invalid(err)) => err,
            Err(StoreError::NotFound(what)) => FieldError::new("", format!("{what} not found")),
            Err(StoreError::Conflict(reason)) => FieldError::new("", reason),
            // A database failure fails the whole batch: the transaction rolls back.
            Err(err @ StoreError::Internal(_)) => return Err(err),
        };
        if savepoints {
            tx.execute_batch("ROLLBACK TO event; RELEASE event")?;
        } else if tx.total_changes() != written {
            return Err(anyhow::Error::new(FailedAfterWriting).into());
        }
        outcomes.push(outcome(OutcomeStatus::Rejected, None, Some(error)));
    }
    let count = |s: OutcomeStatus| outcomes.iter().filter(|o| o.status == s).count();
    let report = IngestReport {
        accepted: count(OutcomeStatus::Accepted),
        duplicates: count(OutcomeStatus::Duplicate),
        rejected: count(OutcomeStatus::Rejected),
        outcomes,
    };
    if report.accepted > 0 {
        audit::record(
            tx,
            Some(shop_id),
            actor,
            "events.ingest",
            None,
            json!({"accepted": report.accepted, "duplicates": report.duplicates, "rejected": report.rejected}),
            now,
        )?;
    }
    Ok(report)
}

fn apply(tx: &Connection, shop_id: i64, event: &ValidEvent, caps: &IdentityCaps, actor: &Actor, now: DateTime<Utc>) -> Result<i64> {
    let why = format!("ingest event `{}`", event.id);
    match &event.action {
        Action::Upsert { subject, profile } => {
            let customer_id = resolve(tx, shop_id, subject, event.occurred_at, caps, &why, actor, now)?;
            let changed = update_profile(tx, customer_id, profile)?;
            touch(tx, customer_id, now)?;
            if !changed.is_empty() {
                events::append(tx, shop_id, "customer.updated", Some(customer_id), &json!({"fields": changed}), now)?;
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
            tx.prepare_cached(
                "INSERT INTO behaviours (shop_id, customer_id, kind, sku, product_name, category, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![shop_id, customer_id, behaviour.kind.as_str(), behaviour.sku, behaviour.product_name, behaviour.category, to_ms(*occurred_at)])?;
            touch(tx, customer_id, now)?;
            events::append(
                tx,
                shop_id,
                "behaviour.recorded",
                Some(customer_id),
                &json!({"kind": behaviour.kind, "sku": behaviour.sku, "category": behaviour.category, "occurred_at": occurred_at}),
                now,
            )?;
            Ok(customer_id)
        }
    }
}

fn touch(tx: &Connection, customer_id: i64, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached("UPDATE customers SET updated_at = ?1 WHERE id = ?2")?.execute(params![to_ms(now), customer_id])?;
    Ok(())
}

/// Kinds and counts of the identifiers a customer holds.
pub(crate) fn identity_counts(tx: &Connection, customer_id: i64) -> Result<BTreeMap<String, u32>> {
    let mut stmt = tx.prepare_cached("SELECT kind, COUNT(*) FROM identities WHERE customer_id = ?1 GROUP BY kind")?;
    let rows = stmt.query_map([customer_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
}

/// The customer an event names: found by id or identifiers, created if none,
/// merged into the oldest if the identifiers belong to several. `seen_at` is when the event
/// happened in the business's terms (an order's payment, a behaviour's time): a customer is
/// first seen at the earliest of their events, not when the first of them arrived, so that
/// history imported later counts its customers in the past.
#[allow(clippy::too_many_arguments, reason = "the event's parts and the batch's context")]
fn resolve(
    tx: &Connection,
    shop_id: i64,
    subject: &Subject,
    seen_at: DateTime<Utc>,
    caps: &IdentityCaps,
    why: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    // (created_at, id): the oldest customer survives a merge.
    let mut owners: BTreeSet<(i64, i64)> = BTreeSet::new();
    let created_at = |id: i64| -> Result<i64> {
        Ok(tx.prepare_cached("SELECT created_at FROM customers WHERE id = ?1")?.query_row([id], |r| r.get(0))?)
    };
    if let Some(id) = subject.customer_id {
        let active =
            active_customer(tx, shop_id, id)?.ok_or_else(|| FieldError::new("customer_id", format!("no customer {id} in this shop")))?;
        owners.insert((created_at(active)?, active));
    }
    let mut unknown: Vec<&Identifier> = Vec::new();
    for identifier in &subject.identities {
        let owner: Option<i64> = tx
            .prepare_cached("SELECT customer_id FROM identities WHERE shop_id = ?1 AND kind = ?2 AND value = ?3")?
            .query_row(params![shop_id, identifier.kind.to_string(), identifier.value], |r| r.get(0))
            .optional()?;
        match owner {
            Some(id) => {
                owners.insert((created_at(id)?, id));
            }
            None => unknown.push(identifier),
        }
    }

    // Check the caps on the customer as it will be, before writing anything.
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for &(_, id) in &owners {
        for (kind, n) in identity_counts(tx, id)? {
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
            tx.prepare_cached("UPDATE customers SET created_at = ?2 WHERE id = ?1 AND created_at > ?2")?
                .execute(params![survivor, to_ms(seen_at)])?;
            survivor
        }
        None => {
            tx.prepare_cached("INSERT INTO customers (shop_id, created_at, updated_at) VALUES (?1, ?2, ?3)")?.execute(params![
                shop_id,
                to_ms(seen_at.min(now)),
                to_ms(now)
            ])?;
            let id = tx.last_insert_rowid();
            let identities: Vec<Value> = unknown.iter().map(|i| json!({"kind": i.kind.to_string(), "value": i.value})).collect();
            events::append(tx, shop_id, "customer.created", Some(id), &json!({"identities": identities}), now)?;
            id
        }
    };
    let is_new = owners.is_empty();
    for identifier in unknown {
        tx.prepare_cached("INSERT INTO identities (shop_id, kind, value, customer_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![shop_id, identifier.kind.to_string(), identifier.value, customer_id, to_ms(now)])?;
        if !is_new {
            events::append(
                tx,
                shop_id,
                "identity.attached",
                Some(customer_id),
                &json!({"kind": identifier.kind.to_string(), "value": identifier.value}),
                now,
            )?;
        }
    }
    Ok(customer_id)
}

/// The profile columns of a customer row, as stored.
struct ProfileRow {
    name: Option<String>,
    gender: Option<String>,
    birthday: Option<String>,
    province: Option<String>,
    city: Option<String>,
    attributes: String,
}

/// Apply the present fields of `profile`; returns the names of the fields that changed.
fn update_profile(tx: &Connection, customer_id: i64, profile: &ProfileInput) -> Result<Vec<&'static str>> {
    let current = tx.prepare_cached("SELECT name, gender, birthday, province, city, attributes FROM customers WHERE id = ?1")?.query_row(
        [customer_id],
        |r| {
            Ok(ProfileRow {
                name: r.get(0)?,
                gender: r.get(1)?,
                birthday: r.get(2)?,
                province: r.get(3)?,
                city: r.get(4)?,
                attributes: r.get(5)?,
            })
        },
    )?;
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
        tx.prepare_cached(
            "UPDATE customers SET name = ?1, gender = ?2, birthday = ?3, province = ?4, city = ?5, attributes = ?6 WHERE id = ?7",
        )?
        .execute(params![name, gender, birthday, province, city, attributes, customer_id])?;
    }
    Ok(changed)
}

fn record_order(tx: &Connection, shop_id: i64, customer_id: i64, order: &ValidOrder, now: DateTime<Utc>) -> Result<()> {
    let exists: Option<i64> = tx
        .prepare_cached("SELECT id FROM orders WHERE shop_id = ?1 AND external_id = ?2")?
        .query_row(params![shop_id, order.external_id], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(FieldError::new("order.id", format!("order `{}` is already recorded", order.external_id)).into());
    }
    // Checked before anything is written: a customer's total stays within MAX_TOTAL, so it never
    // leaves 64-bit integers (SQLite would turn an overflowing sum into a float that no later
    // read accepts).
    let spent: i64 = tx.prepare_cached("SELECT total_spent FROM customers WHERE id = ?1")?.query_row([customer_id], |r| r.get(0))?;
    if spent > MAX_TOTAL - order.amount {
        let reason = format!("would take customer {customer_id}'s total spent past {MAX_TOTAL} minor units");
        return Err(FieldError::new("order.amount", reason).into());
    }
    let paid_at = to_ms(order.paid_at);
    tx.prepare_cached(
        "INSERT INTO orders (shop_id, customer_id, external_id, status, amount, coupon_code, paid_at, created_at) VALUES (?1, ?2, ?3, 'paid', ?4, ?5, ?6, ?7)",
    )?
    .execute(params![shop_id, customer_id, order.external_id, order.amount, order.coupon_code, paid_at, to_ms(now)])?;
    let order_id = tx.last_insert_rowid();
    let mut insert_item = tx.prepare_cached(
        "INSERT INTO order_items (order_id, line, sku, product_name, category, quantity, unit_price, discount, coupon_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (line, item) in order.items.iter().enumerate() {
        insert_item.execute(params![
            order_id,
            line as i64,
            item.sku,
            item.product_name,
            item.category,
            item.quantity,
            item.unit_price,
            item.discount,
            item.coupon_code
        ])?;
    }
    tx.prepare_cached(
        "UPDATE customers SET total_spent = total_spent + ?1, order_count = order_count + 1,
             first_order_at = MIN(COALESCE(first_order_at, ?2), ?2), last_order_at = MAX(COALESCE(last_order_at, ?2), ?2),
             updated_at = ?3
         WHERE id = ?4",
    )?
    .execute(params![order.amount, paid_at, to_ms(now), customer_id])?;
    // The customer's first order ever (journeys' "first order" trigger): no other order, refunded or not.
    let first_order =
        tx.prepare_cached("SELECT COUNT(*) FROM orders WHERE customer_id = ?1")?.query_row([customer_id], |r| r.get::<_, i64>(0))? == 1;
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| json!({"sku": i.sku, "category": i.category, "quantity": i.quantity, "unit_price": i.unit_price, "discount": i.discount}))
        .collect();
    events::append(
        tx,
        shop_id,
        "order.paid",
        Some(customer_id),
        &json!({"order_id": order.external_id, "amount": order.amount, "paid_at": order.paid_at, "coupon_code": order.coupon_code,
            "items": items, "first_order": first_order}),
        now,
    )?;
    if let Some(code) = &order.coupon_code {
        let paid = coupons::PaidOrder { id: order_id, external_id: &order.external_id, customer_id, amount: order.amount, paid_at };
        coupons::redeem_with_order(tx, shop_id, &paid, code, now)?;
    }
    Ok(())
}

fn record_refund(tx: &Connection, shop_id: i64, refund: &ValidRefund, now: DateTime<Utc>) -> Result<i64> {
    let (order_id, customer_id, amount, refunded): (i64, i64, i64, i64) = tx
        .prepare_cached("SELECT id, customer_id, amount, refunded_amount FROM orders WHERE shop_id = ?1 AND external_id = ?2")?
        .query_row(params![shop_id, refund.order_external_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
        .ok_or_else(|| FieldError::new("refund.order_id", format!("no order `{}` in this shop", refund.order_external_id)))?;
    let remaining = amount - refunded;
    if refund.amount > remaining {
        return Err(FieldError::new(
            "refund.amount",
            format!("exceeds the {remaining} still paid on order `{}`", refund.order_external_id),
        )
        .into());
    }
    let fully = refund.amount == remaining;
    tx.prepare_cached("UPDATE orders SET refunded_amount = refunded_amount + ?1, status = ?2 WHERE id = ?3")?.execute(params![
        refund.amount,
        if fully { "refunded" } else { "partially_refunded" },
        order_id
    ])?;
    tx.prepare_cached("INSERT INTO refunds (order_id, amount, reason, refunded_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
        order_id,
        refund.amount,
        refund.reason,
        to_ms(refund.refunded_at)
    ])?;
    tx.prepare_cached(
        "UPDATE customers SET total_spent = total_spent - ?1, refund_count = refund_count + 1, refund_amount = refund_amount + ?1,
             order_count = order_count - ?2, updated_at = ?3
         WHERE id = ?4",
    )?
    .execute(params![refund.amount, fully as i64, to_ms(now), customer_id])?;
    if fully {
        // The first and last order are those that count: a fully refunded order no longer does.
        merge::recompute_stats(tx, customer_id)?;
    }
    events::append(
        tx,
        shop_id,
        "order.refunded",
        Some(customer_id),
        &json!({"order_id": refund.order_external_id, "amount": refund.amount, "fully_refunded": fully, "reason": refund.reason, "refunded_at": refund.refunded_at}),
        now,
    )?;
    kith_core::ledger::settle_order(&Sql(tx), shop_id, order_id, now)?;
    Ok(customer_id)
}
