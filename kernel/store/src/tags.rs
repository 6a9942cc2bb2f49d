//! The one writer of customers' tags. A merchant's tag (the API), a journey's tag step and a
//! plugin's tag decision all come here, so setting or removing a tag has the same effects
//! whoever does it:
//!
//! - the `tags` row, one per (customer, tag, source);
//! - a `tag.added` or `tag.removed` event in the shop's log, payload `{tag, source}` plus
//!   `reason` when the writer gave one (for a removal, why it was removed), appended only
//!   when a row really was inserted or deleted:
//!   setting a tag the same source already set, or removing one nobody set, logs nothing, so
//!   a journey on "tag added" enters once however often a rule re-tags the customer;
//! - the customer's `updated_at`, which `GET /v1/customers?updated_since=` lists by, moved to
//!   the time of the change, since the customer as the API shows it (with its tags and their
//!   reasons) changed.
//!
//! A reason-only change (the source sets a tag it already set, with another reason) updates
//! the row's reason and the customer's `updated_at` but appends no event: no tag was added.
//!
//! An event written for a plugin names it as the event's source, so it is not delivered
//! back to that plugin (as with the events it emits); other plugins subscribed to
//! `tag.added`, and journeys, see it.
//!
//! Who may write what stays with the caller: a plugin's namespace (`tag-prefix`) and its
//! per-customer cap are checked in `plugins.rs`, the API removes only manual tags, and a
//! journey removes only tags set by hand or by a journey. Merges move rows between the two
//! customers in `merge.rs` without events: the survivor did not gain a tag nobody set.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::{Result, events, to_ms};

/// Who set a tag; stored in `tags.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// By hand, through the API: `manual`.
    Manual,
    /// By a tag step of the journey with this id: `journey:<id>`.
    Journey(i64),
    /// By a decision of the plugin with this id: the id.
    Plugin(&'a str),
}

impl<'a> Source<'a> {
    /// The value of `tags.source`.
    pub(crate) fn name(&self) -> Cow<'_, str> {
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
}

/// One tag to set on one customer (an active customer of the shop: the caller resolved it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagWrite<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub tag: &'a str,
    pub source: Source<'a>,
    /// Why the tag was set, as shown with it; `None` (or empty) logs no reason.
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// The source had not set the tag: a row and a `tag.added` event.
    New,
    /// The source had set the tag with another reason: the reason changed, no event.
    Reworded,
    /// The source had set the tag with this reason already: nothing changed.
    Unchanged,
}

/// Which sources' rows of a tag [`remove`] deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Removable<'a> {
    /// The row of this one source.
    Of(Source<'a>),
    /// Rows set by hand or by any journey: what a journey's step may remove.
    ManualOrJourney,
}

/// Set a tag, with the effects the module describes.
pub(crate) fn add(conn: &Connection, w: &TagWrite<'_>) -> Result<Added> {
    let source = w.source.name();
    let at = to_ms(w.at);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (customer_id, tag, source) DO NOTHING",
        )?
        .execute(params![w.customer_id, w.tag, source, w.shop_id, w.reason, at])?;
    if inserted == 1 {
        let payload = payload(w.tag, &source, w.reason);
        events::append_from(conn, w.shop_id, "tag.added", Some(w.customer_id), &payload, w.source.plugin(), w.at)?;
        touch(conn, w.customer_id, at)?;
        return Ok(Added::New);
    }
    let reworded = conn
        .prepare_cached("UPDATE tags SET reason = ?4 WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 AND reason IS NOT ?4")?
        .execute(params![w.customer_id, w.tag, source, w.reason])?;
    if reworded == 1 {
        touch(conn, w.customer_id, at)?;
        return Ok(Added::Reworded);
    }
    Ok(Added::Unchanged)
}

/// Remove a tag from a customer: the rows of `which` sources, each with a `tag.removed`
/// event naming the source whose row went and the remover's `reason` when given (a journey
/// removing a tag set by hand logs `source: "manual"` and the journey as the reason).
/// Returns how many rows went; none is no change and logs nothing.
pub(crate) fn remove(
    conn: &Connection,
    shop_id: i64,
    customer_id: i64,
    tag: &str,
    which: Removable<'_>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let removed: Vec<String> = match which {
        Removable::Of(source) => conn
            .prepare_cached("DELETE FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 RETURNING source")?
            .query_map(params![customer_id, tag, source.name()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        Removable::ManualOrJourney => conn
            .prepare_cached(
                "DELETE FROM tags WHERE customer_id = ?1 AND tag = ?2 AND (source = 'manual' OR source LIKE 'journey:%') RETURNING source",
            )?
            .query_map(params![customer_id, tag], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    let plugin = match which {
        Removable::Of(source) => source.plugin(),
        Removable::ManualOrJourney => None,
    };
    for source in &removed {
        let payload = payload(tag, source, reason);
        events::append_from(conn, shop_id, "tag.removed", Some(customer_id), &payload, plugin, now)?;
    }
    if !removed.is_empty() {
        touch(conn, customer_id, to_ms(now))?;
    }
    Ok(removed.len())
}

/// An event's payload: `{tag, source}`, with `reason` when one was given (an empty reason,
/// which a plugin's decision may carry, is none).
fn payload(tag: &str, source: &str, reason: Option<&str>) -> Value {
    let mut payload = json!({"tag": tag, "source": source});
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        payload["reason"] = Value::from(reason);
    }
    payload
}

/// Move the customer's `updated_at` to `at` (never back: an engine on the shop's clock may
/// run behind a merchant's edit).
fn touch(conn: &Connection, customer_id: i64, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE customers SET updated_at = ?1 WHERE id = ?2 AND updated_at < ?1")?.execute(params![at, customer_id])?;
    Ok(())
}
