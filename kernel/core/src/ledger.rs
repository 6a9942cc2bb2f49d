//! The points ledger's rules: every change of a customer's points is an entry;
//! positive entries open a batch, which later negative entries draw from, oldest
//! first. Positive entries pay the customer's debt first. A refund claws back the
//! refunded share of the points its order earned; the shop's refund policy says
//! whether a claw-back beyond the balance leaves a debt or is forgiven. Batches
//! past their expiry lose what remains of them. A source key is used once per
//! shop and source, so every posting is safe to repeat.
//!
//! The vocabulary (kinds, settings, views) is `kith_domain::loyalty`'s.

use chrono::{DateTime, Utc};
use kith_domain::loyalty::{LedgerEntry, LedgerKind, PointsAdjustment, RefundPolicy};
use serde_json::json;

use crate::ports::{Batch, NewEntry, ReadTx, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, customers};

/// A ledger entry to post.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub kind: LedgerKind,
    /// Signed.
    pub points: i64,
    pub source: &'a str,
    pub source_key: &'a str,
    pub reason: &'a str,
    pub order_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Post an entry unless its source key was used or it moves no points; its id, or
/// `None` when nothing was posted. A positive entry pays the customer's debt first
/// and opens a batch with the rest; a negative one draws the oldest batches, and
/// what they cannot cover is left as debt (the entry still counts in full).
/// The customer is marked for segments (their points changed).
pub fn post(tx: &dyn WriteTx, p: &Post<'_>) -> Result<Option<i64>> {
    let posted = insert(tx, p)?;
    if posted.is_some() {
        tx.segment_marks().customer_changed(p.shop_id, p.customer_id)?;
    }
    Ok(posted)
}

/// [`post`] without marking the customer for segments: for [`settle_order`], whose callers
/// mark them (ingest once per customer of its batch, [`award`] with the award).
fn insert(tx: &dyn WriteTx, p: &Post<'_>) -> Result<Option<i64>> {
    if p.points == 0 || tx.ledger().by_source(p.shop_id, p.source, p.source_key)?.is_some() {
        return Ok(None);
    }
    let remaining = if p.points > 0 {
        let debt = (-tx.ledger().balance(p.shop_id, p.customer_id)?).max(0);
        p.points - debt.min(p.points)
    } else {
        draw(tx, p.shop_id, p.customer_id, -p.points)?;
        0
    };
    let id = tx.ledger_writer().insert(&NewEntry {
        shop_id: p.shop_id,
        customer_id: p.customer_id,
        kind: p.kind,
        points: p.points,
        source: p.source,
        source_key: p.source_key,
        reason: p.reason,
        order_id: p.order_id,
        expires_at: p.expires_at,
        at: p.at,
        remaining,
        batch_id: None,
    })?;
    Ok(Some(id))
}

/// Take `points` from the customer's open batches, oldest first.
fn draw(tx: &dyn WriteTx, shop_id: i64, customer_id: i64, mut points: i64) -> Result<()> {
    for batch in tx.ledger().open_batches(shop_id, customer_id)? {
        if points == 0 {
            break;
        }
        let take = batch.remaining.min(points);
        tx.ledger_writer().take(shop_id, batch.id, take)?;
        points -= take;
    }
    Ok(())
}

/// The order an award's source key names: `order:<the shop's order id>`.
pub fn order_of_source_key(tx: &dyn ReadTx, shop_id: i64, source_key: &str) -> Result<Option<i64>> {
    match source_key.strip_prefix("order:") {
        Some(external) => tx.orders().by_external_id(shop_id, external),
        None => Ok(None),
    }
}

/// Points a loyalty scheme moves for a customer, under its own source key.
#[derive(Debug, Clone)]
pub struct SchemePoints<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    /// Positive: what is awarded, or taken back.
    pub points: i64,
    pub source: &'a str,
    /// `order:<the shop's order id>` ties the points to that order.
    pub source_key: &'a str,
    pub reason: &'a str,
    pub at: DateTime<Utc>,
}

/// Points a loyalty scheme awards, expiring at `expires_at`. Points for an order
/// refunded before the award lose the refunded share at once. The entry's id, or
/// `None` when the key was used.
pub fn award(tx: &dyn WriteTx, p: &SchemePoints<'_>, expires_at: Option<DateTime<Utc>>) -> Result<Option<i64>> {
    let order_id = order_of_source_key(tx, p.shop_id, p.source_key)?;
    let post = Post {
        shop_id: p.shop_id,
        customer_id: p.customer_id,
        kind: LedgerKind::Earn,
        points: p.points,
        source: p.source,
        source_key: p.source_key,
        reason: p.reason,
        order_id,
        expires_at,
        at: p.at,
    };
    let posted = self::post(tx, &post)?;
    if let (Some(_), Some(order_id)) = (posted, order_id) {
        settle_order(tx, p.shop_id, order_id, p.at)?;
    }
    Ok(posted)
}

/// Points a loyalty scheme takes back.
pub fn claw_back(tx: &dyn WriteTx, p: &SchemePoints<'_>) -> Result<Option<i64>> {
    let post = Post {
        shop_id: p.shop_id,
        customer_id: p.customer_id,
        kind: LedgerKind::Clawback,
        points: -p.points,
        source: p.source,
        source_key: p.source_key,
        reason: p.reason,
        order_id: order_of_source_key(tx, p.shop_id, p.source_key)?,
        expires_at: None,
        at: p.at,
    };
    self::post(tx, &post)
}

/// Bring the points of an order in line with its refunds: of the points earned on
/// it, the refunded share is clawed back (rounded so that a full refund takes all of
/// them). Called when a refund is recorded and when points are awarded for an order
/// that was already refunded. Under the `forgive` refund policy, a debt the claw-back
/// leaves is written off at once. The customer is not marked for segments: the callers
/// mark them (ingest once per customer of its batch, [`award`] with its own entry).
pub fn settle_order(tx: &dyn WriteTx, shop_id: i64, order_id: i64, at: DateTime<Utc>) -> Result<()> {
    let order = tx.orders().refund_state(shop_id, order_id)?;
    let points = tx.ledger().order_points(shop_id, order_id)?;
    if points.earned <= 0 || order.refunded <= 0 {
        return Ok(());
    }
    let kept = if order.amount > 0 {
        (i128::from(points.earned) * i128::from(order.amount - order.refunded) / i128::from(order.amount)) as i64
    } else {
        0
    };
    let due = points.earned - kept - points.clawed;
    if due <= 0 {
        return Ok(());
    }
    let key = format!("refund:{order_id}:{}", points.earned - kept);
    let reason = format!("order {} refunded: {} of {}", order.external_id, order.refunded, order.amount);
    let posted = insert(
        tx,
        &Post {
            shop_id,
            customer_id: order.customer_id,
            kind: LedgerKind::Clawback,
            points: -due,
            source: "kernel",
            source_key: &key,
            reason: &reason,
            order_id: Some(order_id),
            expires_at: None,
            at,
        },
    )?;
    let policy = tx.settings().loyalty(shop_id)?.refund_policy;
    let debt = (-tx.ledger().balance(shop_id, order.customer_id)?).max(0);
    if let (Some(entry), RefundPolicy::Forgive, true) = (posted, policy, debt > 0) {
        insert(
            tx,
            &Post {
                shop_id,
                customer_id: order.customer_id,
                kind: LedgerKind::Adjust,
                points: debt,
                source: "kernel",
                source_key: &format!("forgive:{entry}"),
                reason: "debt forgiven under the shop's refund policy",
                order_id: Some(order_id),
                expires_at: None,
                at,
            },
        )?;
    }
    Ok(())
}

/// Every batch of a customer with what should remain of it, by replaying the ledger
/// from its first entry: what merges and unmerges rebuild from after moving entries,
/// and what the consistency check compares with.
pub fn replay(tx: &dyn ReadTx, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>> {
    let mut open: Vec<Batch> = Vec::new();
    let mut debt = 0i64;
    let take_oldest = |open: &mut Vec<Batch>, mut points: i64| -> i64 {
        for batch in open.iter_mut() {
            let take = batch.remaining.min(points);
            batch.remaining -= take;
            points -= take;
        }
        points
    };
    for entry in tx.ledger().entries(shop_id, customer_id)? {
        if entry.points > 0 {
            let pay = debt.min(entry.points);
            debt -= pay;
            open.push(Batch { id: entry.id, remaining: entry.points - pay });
            continue;
        }
        let mut owed = -entry.points;
        // An expiry takes what remained of its own batch.
        if entry.kind == LedgerKind::Expire
            && let Some(batch) = open.iter_mut().find(|b| Some(b.id) == entry.batch_id)
        {
            let take = batch.remaining.min(owed);
            batch.remaining -= take;
            owed -= take;
        }
        debt += take_oldest(&mut open, owed);
    }
    Ok(open)
}

/// Make a customer's stored batches what a replay of the ledger says.
pub fn rebuild(tx: &dyn WriteTx, shop_id: i64, customer_id: i64) -> Result<()> {
    for batch in replay(tx, shop_id, customer_id)? {
        tx.ledger_writer().set_remaining(shop_id, batch.id, batch.remaining)?;
    }
    Ok(())
}

/// An operator's correction of a customer's points. Taking more than the customer
/// has is refused; a resend with the same idempotency key answers the first entry
/// (`false`: not new), and the key reused for another customer or amount is refused.
pub fn adjust(
    storage: &dyn Storage,
    shop_id: i64,
    customer_id: i64,
    adj: &PointsAdjustment,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(LedgerEntry, bool)> {
    adj.validate()?;
    storage.write(|tx| {
        let id = customers::in_shop(tx, shop_id, customer_id)?;
        let (entry, created) = match tx.ledger().by_source(shop_id, "api", &adj.idempotency_key)? {
            Some(first) => {
                if tx.customers().active(shop_id, first.customer_id)? != Some(id) || first.points != adj.points {
                    return Err(Error::Conflict(format!(
                        "idempotency key `{}` was already used for another adjustment",
                        adj.idempotency_key
                    )));
                }
                (first.id, false)
            }
            None => {
                let available = tx.ledger().balance(shop_id, id)?.max(0);
                if adj.points < 0 && -adj.points > available {
                    return Err(Error::Conflict(format!(
                        "insufficient points: {available} available, the adjustment takes {}",
                        -adj.points
                    )));
                }
                let kind = if adj.points > 0 { LedgerKind::Earn } else { LedgerKind::Adjust };
                let posted = post(
                    tx,
                    &Post {
                        shop_id,
                        customer_id: id,
                        kind,
                        points: adj.points,
                        source: "api",
                        source_key: &adj.idempotency_key,
                        reason: &adj.reason,
                        order_id: None,
                        expires_at: adj.expires_at,
                        at: now,
                    },
                )?
                .ok_or_else(|| anyhow::anyhow!("an unused source key was refused"))?;
                let detail = json!({"points": adj.points, "reason": adj.reason});
                tx.audit().record(Some(shop_id), actor, "points.adjust", Some(&id.to_string()), detail, now)?;
                (posted, true)
            }
        };
        Ok((tx.ledger().entry(shop_id, entry)?, created))
    })
}

/// Expire batches past their expiry at `now`, at most `limit`; how many were.
pub fn expire(storage: &dyn Storage, now: DateTime<Utc>, limit: usize) -> Result<usize> {
    // Most polls find nothing: look without taking a write transaction.
    if storage.read(|tx| tx.ledger().expired(now, limit))?.is_empty() {
        return Ok(0);
    }
    storage.write(|tx| {
        let batches = tx.ledger().expired(now, limit)?;
        for b in &batches {
            tx.ledger_writer().set_remaining(b.shop_id, b.batch_id, 0)?;
            let key = format!("expire:{}", b.batch_id);
            if tx.ledger().by_source(b.shop_id, "kernel", &key)?.is_some() {
                continue;
            }
            tx.ledger_writer().insert(&NewEntry {
                shop_id: b.shop_id,
                customer_id: b.customer_id,
                kind: LedgerKind::Expire,
                points: -b.remaining,
                source: "kernel",
                source_key: &key,
                reason: &format!("batch {} expired", b.batch_id),
                order_id: None,
                expires_at: None,
                at: now,
                remaining: 0,
                batch_id: Some(b.batch_id),
            })?;
            tx.segment_marks().customer_changed(b.shop_id, b.customer_id)?;
        }
        Ok(batches.len())
    })
}

/// Customers of a shop whose stored batches differ from a replay of their ledger,
/// or whose balance is not what the batches and debt say; empty when the ledger's
/// invariant holds.
pub fn mismatches(storage: &dyn Storage, shop_id: i64) -> Result<Vec<i64>> {
    storage.read(|tx| {
        let mut bad = Vec::new();
        for id in tx.ledger().customers_with_entries(shop_id)? {
            let stored = tx.ledger().batches(shop_id, id)?;
            let open: i64 = stored.iter().map(|b| b.remaining).sum();
            let balance = tx.ledger().balance(shop_id, id)?;
            let consistent = if balance >= 0 { open == balance } else { open == 0 };
            if stored != replay(tx, shop_id, id)? || !consistent {
                bad.push(id);
            }
        }
        Ok(bad)
    })
}
