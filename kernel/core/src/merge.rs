//! Merging two customers into the older one, and undoing it.
//!
//! A merge moves the merged customer's identifiers, orders, behaviours, points,
//! tags and scores to the survivor, gives the survivor the merged side's consents
//! where they are stricter or the only ones, fills the survivor's empty profile
//! fields and missing attributes from the merged side, and leaves the merged
//! customer as a tombstone (merged into the survivor). The merge record lists every
//! moved row, so an unmerge puts back exactly what came from the merged side,
//! including what that side had itself absorbed in earlier merges; what arrived on
//! the survivor after the merge stays there. Stats are recomputed on both sides and
//! both points ledgers rebuilt.

use chrono::{DateTime, Utc};
use kith_domain::model::{IdentityView, Merge};
use serde_json::{Map, Value, json};

use crate::ports::{ConsentChange, MergeRecord, NewMerge, ProfileRow, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, ledger};

type Attributes = Map<String, Value>;

fn attributes(profile: &ProfileRow) -> Attributes {
    serde_json::from_str(&profile.attributes).unwrap_or_default()
}

/// The profile fields a merge fills and an unmerge empties, by name.
fn fields(profile: &mut ProfileRow) -> [(&'static str, &mut Option<String>); 5] {
    [
        ("name", &mut profile.name),
        ("gender", &mut profile.gender),
        ("birthday", &mut profile.birthday),
        ("province", &mut profile.province),
        ("city", &mut profile.city),
    ]
}

/// Merge `merged` into `survivor`, both active customers of `shop_id`, for `reason`.
/// The merge's id.
pub fn merge(tx: &dyn WriteTx, shop_id: i64, survivor: i64, merged: i64, reason: &str, actor: &Actor, now: DateTime<Utc>) -> Result<i64> {
    let (read, write) = (tx.merges(), tx.merge_writer());
    let mut record = MergeRecord { identities: tx.identities().of_customer(shop_id, merged)?, ..MergeRecord::default() };
    write.move_identities(shop_id, merged, survivor)?;
    record.orders = read.order_ids(shop_id, merged)?;
    write.move_orders(shop_id, merged, survivor)?;
    record.behaviours = read.behaviour_ids(shop_id, merged)?;
    write.move_behaviours(shop_id, merged, survivor)?;
    record.points = read.ledger_ids(shop_id, merged)?;
    write.move_ledger(shop_id, merged, survivor)?;
    // Two ledgers became one: the survivor's batches are what the joint ledger says.
    ledger::rebuild(tx, shop_id, survivor)?;

    record.tags = read.tags(shop_id, merged)?;
    for tag in &mut record.tags {
        tag.added_to_survivor = write.add_tag(shop_id, survivor, tag)?;
    }
    write.clear_tags(shop_id, merged)?;
    record.scores = read.scores(shop_id, merged)?;
    for score in &mut record.scores {
        score.added_to_survivor = write.add_score(shop_id, survivor, score)?;
    }
    write.clear_scores(shop_id, merged)?;

    // The survivor takes the merged side's consent where it has none, and its opt-out
    // where the survivor had opted in: the stricter answer wins. The tombstone keeps its own.
    for (channel, theirs) in read.consents(shop_id, merged)? {
        let before = read.consent(shop_id, survivor, &channel)?;
        let takes = match &before {
            None => true,
            Some(ours) => ours.status == "opted_in" && theirs.status == "opted_out",
        };
        if takes {
            write.set_consent(shop_id, survivor, &channel, Some(&theirs))?;
            record.consents.push(ConsentChange { channel, before, after: theirs });
        }
    }

    // The survivor keeps its own profile and takes what it lacks from the merged side.
    let mut ours = tx.ingest().profile(shop_id, survivor)?;
    let mut theirs = tx.ingest().profile(shop_id, merged)?;
    for ((field, mine), (_, other)) in fields(&mut ours).into_iter().zip(fields(&mut theirs)) {
        if mine.is_none() && other.is_some() {
            *mine = other.clone();
            record.filled_fields.push(field.to_owned());
        }
    }
    let mut our_attributes = attributes(&ours);
    for (k, v) in attributes(&theirs) {
        if !our_attributes.contains_key(&k) {
            record.filled_attributes.push(k.clone());
            our_attributes.insert(k, v);
        }
    }
    if !record.filled_attributes.is_empty() {
        ours.attributes = Value::Object(our_attributes).to_string();
    }
    if !record.filled_fields.is_empty() || !record.filled_attributes.is_empty() {
        tx.ingest_writer().set_profile(shop_id, survivor, &ours)?;
    }

    write.set_merged_into(shop_id, merged, Some(survivor), now)?;
    // The survivor is the merging event's customer, which ingest marks for segments.
    tx.segment_marks().customer_changed(shop_id, merged)?;
    // The tombstone keeps no orders, so its stats fall to zero with the recomputation.
    tx.ingest_writer().recompute_stats(shop_id, survivor)?;
    tx.ingest_writer().recompute_stats(shop_id, merged)?;
    tx.ingest_writer().touch(shop_id, survivor, now)?;

    let merge_id = write.insert(&NewMerge {
        shop_id,
        survivor_id: survivor,
        merged_id: merged,
        reason,
        actor: &actor.label,
        record: &record,
        at: now,
    })?;
    let moved: Vec<Value> = record.identities.iter().map(|i| json!({"kind": i.kind, "value": i.value})).collect();
    let payload = json!({"merge_id": merge_id, "survivor_id": survivor, "merged_id": merged, "reason": reason, "identities": moved});
    tx.event_log().append(shop_id, "customer.merged", Some(survivor), &payload, now, None)?;
    let detail = json!({"merge_id": merge_id, "merged_id": merged});
    tx.audit().record(Some(shop_id), actor, "customer.merge", Some(&format!("customer:{survivor}")), detail, now)?;
    Ok(merge_id)
}

/// Undo a merge of the shop: the merged customer is active again with the identifiers
/// and records that came from it. Refused when it was undone already, and when the
/// survivor has since been merged into another customer (that merge is undone first).
pub fn unmerge(storage: &dyn Storage, shop_id: i64, merge_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Merge> {
    storage.write(|tx| {
        let (read, write) = (tx.merges(), tx.merge_writer());
        let (merge, record) = read.merge(shop_id, merge_id)?.ok_or_else(|| Error::NotFound(format!("merge {merge_id}")))?;
        if merge.unmerged_at.is_some() {
            return Err(Error::Conflict(format!("merge {merge_id} was already undone")));
        }
        let (survivor, merged) = (merge.survivor_id, merge.merged_id);
        if let Some(into) = read.merged_into(shop_id, survivor)? {
            return Err(Error::Conflict(format!("customer {survivor} has since been merged into customer {into}; undo that merge first")));
        }

        write.return_identities(shop_id, &record.identities, survivor, merged)?;
        write.return_orders(shop_id, &record.orders, survivor, merged)?;
        write.return_behaviours(shop_id, &record.behaviours, survivor, merged)?;
        write.return_ledger(shop_id, &record.points, survivor, merged)?;
        ledger::rebuild(tx, shop_id, survivor)?;
        ledger::rebuild(tx, shop_id, merged)?;
        for tag in &record.tags {
            if tag.added_to_survivor {
                write.remove_tag(shop_id, survivor, &tag.tag, &tag.source)?;
            }
            write.add_tag(shop_id, merged, tag)?;
        }
        for score in &record.scores {
            if score.added_to_survivor {
                write.remove_score(shop_id, survivor, &score.model)?;
            }
            write.add_score(shop_id, merged, score)?;
        }
        // Consents the survivor took go back to what it had, unless they were changed since.
        for change in &record.consents {
            if read.consent(shop_id, survivor, &change.channel)?.as_ref() == Some(&change.after) {
                write.set_consent(shop_id, survivor, &change.channel, change.before.as_ref())?;
            }
        }
        // Fields the survivor took from the merged side go back to empty, unless they were changed since.
        if !record.filled_fields.is_empty() || !record.filled_attributes.is_empty() {
            let mut ours = tx.ingest().profile(shop_id, survivor)?;
            let mut theirs = tx.ingest().profile(shop_id, merged)?;
            for ((field, mine), (_, other)) in fields(&mut ours).into_iter().zip(fields(&mut theirs)) {
                if record.filled_fields.iter().any(|f| f == field) && *mine == *other {
                    *mine = None;
                }
            }
            if !record.filled_attributes.is_empty() {
                let mut our_attributes = attributes(&ours);
                let their_attributes = attributes(&theirs);
                for k in &record.filled_attributes {
                    if our_attributes.get(k) == their_attributes.get(k) {
                        our_attributes.remove(k);
                    }
                }
                ours.attributes = Value::Object(our_attributes).to_string();
            }
            tx.ingest_writer().set_profile(shop_id, survivor, &ours)?;
        }

        write.set_merged_into(shop_id, merged, None, now)?;
        tx.segment_marks().customer_changed(shop_id, merged)?;
        tx.segment_marks().customer_changed(shop_id, survivor)?;
        tx.ingest_writer().touch(shop_id, survivor, now)?;
        tx.ingest_writer().recompute_stats(shop_id, survivor)?;
        tx.ingest_writer().recompute_stats(shop_id, merged)?;
        write.mark_unmerged(shop_id, merge_id, &actor.label, now)?;
        let payload = json!({"merge_id": merge_id, "survivor_id": survivor, "merged_id": merged});
        tx.event_log().append(shop_id, "customer.unmerged", Some(merged), &payload, now, None)?;
        let detail = json!({"merge_id": merge_id});
        tx.audit().record(Some(shop_id), actor, "customer.unmerge", Some(&format!("customer:{merged}")), detail, now)?;
        let (merge, record) = read.merge(shop_id, merge_id)?.ok_or_else(|| Error::NotFound(format!("merge {merge_id}")))?;
        Ok(with_identities(merge, &record))
    })
}

/// A merge as the API shows it: with the identifiers that moved.
pub fn with_identities(mut merge: Merge, record: &MergeRecord) -> Merge {
    merge.identities =
        record.identities.iter().map(|i| IdentityView { kind: i.kind.clone(), value: i.value.clone(), created_at: i.created_at }).collect();
    merge
}

/// Merges as the API lists them, and undoing one.
pub trait MergeService: Storage {
    /// Merges in which a customer took part, as survivor or as merged side, newest first.
    fn list_merges(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Merge>> {
        self.read(|tx| {
            if !tx.merges().customer_exists(shop_id, customer_id)? {
                return Err(Error::NotFound(format!("customer {customer_id}")));
            }
            Ok(tx.merges().involving(shop_id, customer_id)?.into_iter().map(|(merge, record)| with_identities(merge, &record)).collect())
        })
    }

    /// Undo a merge: the merged customer is restored with the identifiers and records that came from it.
    fn unmerge(&self, shop_id: i64, merge_id: i64, actor: &Actor) -> Result<Merge> {
        unmerge(self.storage(), shop_id, merge_id, actor, Utc::now())
    }
}

impl<S: Storage + ?Sized> MergeService for S {}
