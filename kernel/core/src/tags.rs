//! The one writer of customers' tags. A merchant's tag (the API), a journey's tag step and a
//! plugin's tag decision all come here, so setting or removing a tag has the same effects
//! whoever does it:
//!
//! - the tag's row, one per (customer, tag, source);
//! - a `tag.added` or `tag.removed` event in the shop's log, payload `{tag, source}` plus
//!   `reason` when the writer gave one (for a removal, why it was removed), appended only
//!   when a row really was inserted or deleted: setting a tag the same source already set,
//!   or removing one nobody set, logs nothing, so a journey on "tag added" enters once
//!   however often a rule re-tags the customer;
//! - the customer's `updated_at`, which `GET /v1/customers?updated_since=` lists by, moved to
//!   the time of the change, since the customer as the API shows it (with its tags and their
//!   reasons) changed.
//!
//! A reason-only change (the source sets a tag it already set, with another reason) updates
//! the row's reason and the customer's `updated_at` but appends no event: no tag was added.
//!
//! An event written for a plugin names it as the event's source, so it is not delivered
//! back to that plugin (as with the events it emits), and carries its depth in a chain of
//! plugins answering each other (`chain`, from 2 on), as emitted events do: other plugins
//! subscribed to `tag.added`, and journeys, see it, and two plugins tagging in answer to
//! each other's tags are stopped after a few rounds (see [`crate::delivery::Chain`]).
//!
//! Who may write what stays with the caller: a plugin's namespace (`tag-prefix`) and its
//! per-customer cap are checked by the delivery, the API removes only manual tags, and a
//! journey removes only tags set by hand or by a journey. Merges move rows between the two
//! customers without events: the survivor did not gain a tag nobody set.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use kith_domain::plugin::CHAIN_KEY;
use serde_json::{Value, json};

use crate::Result;
use crate::ports::{TagSources, WriteTx};

/// Who set a tag; stored as the row's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// By hand, through the API: `manual`.
    Manual,
    /// By a tag step of the journey with this id: `journey:<id>`.
    Journey(i64),
    /// By a decision of the plugin with this id: the id.
    Plugin(&'a str),
}

impl<'a> Source<'a> {
    /// The source as stored.
    pub fn name(self) -> Cow<'a, str> {
        match self {
            Source::Manual => Cow::Borrowed("manual"),
            Source::Journey(id) => Cow::Owned(format!("journey:{id}")),
            Source::Plugin(id) => Cow::Borrowed(id),
        }
    }

    /// The plugin to name as the source of the events a write appends, so they are not
    /// delivered back to it.
    fn plugin(self) -> Option<&'a str> {
        match self {
            Source::Plugin(id) => Some(id),
            _ => None,
        }
    }

    /// Whether a stored source is a plugin's (neither `manual` nor a journey's).
    pub fn is_plugin(stored: &str) -> bool {
        stored != "manual" && !stored.starts_with("journey:")
    }
}

/// One tag to set on one customer (an active customer of the shop: the caller resolved it).
#[derive(Debug, Clone, Copy)]
pub struct TagWrite<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub tag: &'a str,
    pub source: Source<'a>,
    /// Why the tag was set, as shown with it; `None` (or empty) logs no reason.
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
    /// The write's depth in a chain of plugins answering each other's events (1: none).
    pub chain: u32,
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The source had not set the tag: a row and a `tag.added` event.
    New,
    /// The source had set the tag with another reason: the reason changed, no event.
    Reworded,
    /// The source had set the tag with this reason already: nothing changed.
    Unchanged,
}

/// Which sources' rows of a tag [`remove`] deletes.
#[derive(Debug, Clone, Copy)]
pub enum Removable<'a> {
    /// The row of this one source.
    Of(Source<'a>),
    /// Rows set by hand or by any journey: what a journey's step may remove.
    ManualOrJourney,
}

/// One removal: the tag, whose rows, why, when, and its depth in a chain (as [`TagWrite`]).
#[derive(Debug, Clone, Copy)]
pub struct TagRemoval<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub tag: &'a str,
    pub which: Removable<'a>,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub chain: u32,
}

/// Set a tag, with the effects the module describes.
pub fn add(tx: &dyn WriteTx, w: &TagWrite<'_>) -> Result<Added> {
    let source = w.source.name();
    if tx.tags_writer().insert(w.shop_id, w.customer_id, w.tag, &source, w.reason, w.at)? {
        let payload = payload(w.tag, &source, w.reason, w.chain);
        tx.event_log().append(w.shop_id, "tag.added", Some(w.customer_id), &payload, w.at, w.source.plugin())?;
        tx.customers_writer().touch(w.shop_id, w.customer_id, w.at)?;
        tx.segment_marks().customer_changed(w.shop_id, w.customer_id)?;
        return Ok(Added::New);
    }
    if tx.tags_writer().reword(w.shop_id, w.customer_id, w.tag, &source, w.reason)? {
        tx.customers_writer().touch(w.shop_id, w.customer_id, w.at)?;
        return Ok(Added::Reworded);
    }
    Ok(Added::Unchanged)
}

/// Remove a tag from a customer: the rows of the removable sources, each with a
/// `tag.removed` event naming the source whose row went and the remover's reason when given
/// (a journey removing a tag set by hand logs `source: "manual"` and the journey as the
/// reason). Returns how many rows went; none is no change and logs nothing.
pub fn remove(tx: &dyn WriteTx, r: &TagRemoval<'_>) -> Result<usize> {
    let name;
    let (sources, plugin) = match r.which {
        Removable::Of(source) => {
            name = source.name();
            (TagSources::One(&name), source.plugin())
        }
        Removable::ManualOrJourney => (TagSources::ManualOrJourney, None),
    };
    let removed = tx.tags_writer().delete(r.shop_id, r.customer_id, r.tag, sources)?;
    for source in &removed {
        let payload = payload(r.tag, source, r.reason, r.chain);
        tx.event_log().append(r.shop_id, "tag.removed", Some(r.customer_id), &payload, r.at, plugin)?;
    }
    if !removed.is_empty() {
        tx.customers_writer().touch(r.shop_id, r.customer_id, r.at)?;
        tx.segment_marks().customer_changed(r.shop_id, r.customer_id)?;
    }
    Ok(removed.len())
}

/// An event's payload: `{tag, source}`, with `reason` when one was given (an empty reason,
/// which a plugin's decision may carry, is none) and `chain` from a depth of 2 on.
fn payload(tag: &str, source: &str, reason: Option<&str>, chain: u32) -> Value {
    let mut payload = json!({"tag": tag, "source": source});
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        payload["reason"] = Value::from(reason);
    }
    if chain > 1 {
        payload[CHAIN_KEY] = Value::from(chain);
    }
    payload
}
