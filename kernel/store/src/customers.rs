//! Reading customers, and manual tags.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::FieldError;
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, CustomerDetail, IdentityView, Profile, Score, Stats, Tag};
use kith_domain::plugin::{Part, Reads};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use kith_core::tags::{self, Removable, Source, TagRemoval, TagWrite};

use crate::sql::Sql;
use crate::{Actor, Result, Store, StoreError, audit, events, from_ms, to_ms};

/// Filters of the customer list; all present filters must hold.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Holds this tag, from any source.
    pub tag: Option<String>,
    /// Holds this (normalised) identifier.
    pub identity: Option<Identifier>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Holds a score of this model, with this label code when given (the
    /// label itself, or its part before the first `|`, e.g. `important-value`).
    pub score: Option<(String, Option<String>)>,
}

fn label_matches(label: Option<&str>, code: &str) -> bool {
    label.is_some_and(|l| l == code || l.split('|').next() == Some(code))
}

/// The answer to a read by id: the customer, or where a merged customer went.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerRead {
    Found(Box<CustomerDetail>),
    Merged { into: i64 },
}

/// A customer whose stored stats differ from those recomputed from orders.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsMismatch {
    pub customer_id: i64,
    pub stored: Stats,
    pub recomputed: Stats,
}

macro_rules! customer_columns {
    ($points:literal) => {
        concat!(
            "c.id, name, gender, birthday, province, city, attributes, created_at, updated_at, ",
            "total_spent, order_count, first_order_at, last_order_at, refund_count, refund_amount, tier, ",
            $points
        )
    };
}
/// Columns of a customer row; the table is aliased `c`.
pub(crate) const CUSTOMER_COLUMNS: &str =
    customer_columns!("(SELECT COALESCE(SUM(p.points), 0) FROM points_ledger p WHERE p.customer_id = c.id)");
/// The same columns without summing the points ledger (the balance reads 0).
pub(crate) const CUSTOMER_COLUMNS_NO_POINTS: &str = customer_columns!("0");

fn stats_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Stats> {
    let total_spent: i64 = r.get(at)?;
    let order_count: i64 = r.get(at + 1)?;
    Ok(Stats {
        total_spent,
        order_count,
        first_order_at: r.get::<_, Option<i64>>(at + 2)?.map(from_ms),
        last_order_at: r.get::<_, Option<i64>>(at + 3)?.map(from_ms),
        average_order_value: (order_count > 0).then(|| total_spent.div_euclid(order_count)),
        refund_count: r.get(at + 4)?,
        refund_amount: r.get(at + 5)?,
    })
}

pub(crate) fn row_to_customer(r: &rusqlite::Row<'_>) -> rusqlite::Result<Customer> {
    let birthday: Option<String> = r.get(3)?;
    let attributes: String = r.get(6)?;
    Ok(Customer {
        id: r.get(0)?,
        profile: Profile {
            name: r.get(1)?,
            gender: r.get(2)?,
            birthday: birthday.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
            province: r.get(4)?,
            city: r.get(5)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        },
        identities: Vec::new(),
        stats: stats_from(r, 9)?,
        tags: Vec::new(),
        scores: Vec::new(),
        points: r.get(16)?,
        tier: r.get(15)?,
        created_at: from_ms(r.get(7)?),
        updated_at: from_ms(r.get(8)?),
    })
}

/// Fill the identities, tags and scores of a page of customers: three queries
/// for the page, not three per customer.
pub(crate) fn load_records(conn: &Connection, customers: &mut [Customer]) -> Result<()> {
    load_parts(conn, customers, true, Reads::ALL)
}

/// Customers as a plugin that reads `reads` sees them: no identities (plugins
/// are not given them), tags and scores only when read, the rest blanked.
pub(crate) fn load_for_plugin(conn: &Connection, customers: &mut [Customer], reads: Reads) -> Result<()> {
    load_parts(conn, customers, false, reads)?;
    for customer in customers {
        reads.blank(customer);
    }
    Ok(())
}

fn load_parts(conn: &Connection, customers: &mut [Customer], identities: bool, reads: Reads) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    // One customer (a profile read) is found by its id; a page through json_each.
    // `IN (SELECT … json_each)` builds a temporary index, with a page cache of
    // its own, for every query: a tenth of a profile read's time when it was
    // used for one id.
    let (which, ids): (&str, Box<dyn rusqlite::ToSql>) = match customers {
        [one] => ("= ?1", Box::new(one.id)),
        _ => (
            "IN (SELECT value FROM json_each(?1))",
            Box::new(serde_json::to_string(&customers.iter().map(|c| c.id).collect::<Vec<_>>()).expect("ids are JSON")),
        ),
    };
    let at: HashMap<i64, usize> = customers.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    // Each row goes to its customer; `at` finds them by id. `{ids}` in `sql` is
    // where the filter on customer_id goes.
    let each_row = |sql: &str, f: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>| -> Result<()> {
        let mut stmt = conn.prepare_cached(&sql.replace("{ids}", which))?;
        let mut rows = stmt.query([&ids])?;
        while let Some(r) = rows.next()? {
            f(r)?;
        }
        Ok(())
    };
    if identities {
        each_row(
            "SELECT customer_id, kind, value, created_at FROM identities WHERE customer_id {ids}
         ORDER BY customer_id, kind, created_at, value",
            &mut |r| {
                let identity = IdentityView { kind: r.get(1)?, value: r.get(2)?, created_at: from_ms(r.get(3)?) };
                customers[at[&r.get::<_, i64>(0)?]].identities.push(identity);
                Ok(())
            },
        )?;
    }
    if reads.has(Part::Tags) {
        each_row(
            "SELECT customer_id, tag, source, reason, created_at FROM tags WHERE customer_id {ids}
         ORDER BY customer_id, tag, source",
            &mut |r| {
                let tag = Tag { tag: r.get(1)?, source: r.get(2)?, reason: r.get(3)?, created_at: from_ms(r.get(4)?) };
                customers[at[&r.get::<_, i64>(0)?]].tags.push(tag);
                Ok(())
            },
        )?;
    }
    if reads.has(Part::Scores) {
        each_row(
            "SELECT customer_id, model, value, label, explanation, scored_at FROM scores WHERE customer_id {ids}
         ORDER BY customer_id, model",
            &mut |r| {
                let score =
                    Score { model: r.get(1)?, value: r.get(2)?, label: r.get(3)?, explanation: r.get(4)?, scored_at: from_ms(r.get(5)?) };
                customers[at[&r.get::<_, i64>(0)?]].scores.push(score);
                Ok(())
            },
        )?;
    }
    Ok(())
}

pub(crate) fn load_customer(conn: &Connection, shop_id: i64, customer_id: i64) -> Result<Option<Customer>> {
    let customer = conn
        .prepare_cached(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = ?1 AND shop_id = ?2 AND merged_into IS NULL"))?
        .query_row([customer_id, shop_id], row_to_customer)
        .optional()?;
    match customer {
        Some(mut c) => {
            load_records(conn, std::slice::from_mut(&mut c))?;
            Ok(Some(c))
        }
        None => Ok(None),
    }
}

/// Fail with not-found unless `customer_id` is an active customer of the shop.
fn require_active(conn: &Connection, shop_id: i64, customer_id: i64) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM customers WHERE id = ?1 AND shop_id = ?2 AND merged_into IS NULL")?
        .query_row([customer_id, shop_id], |r| r.get(0))
        .optional()?;
    found.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("customer {customer_id}")))
}

impl Store {
    /// A customer with the newest `timeline` events, including those recorded
    /// under customers since merged into them.
    pub fn get_customer(&self, shop_id: i64, customer_id: i64, timeline: usize) -> Result<CustomerRead> {
        self.read(|conn| {
            let Some(customer) = load_customer(conn, shop_id, customer_id)? else {
                return match active_customer(conn, shop_id, customer_id)? {
                    Some(into) if into != customer_id => Ok(CustomerRead::Merged { into }),
                    _ => Err(StoreError::NotFound(format!("customer {customer_id}"))),
                };
            };
            // Most customers absorbed nobody: their newest events are the last entries of
            // the (customer, seq) index, read backwards. For a survivor of merges, the
            // newest events of the customer and of those merged into them, chosen on the
            // same index alone; only those are read from the log. (Walking the shop's log
            // newest first made a read O(shop); sorting whole rows read every event the
            // customer ever had.) The recursive query builds three temporary tables; the
            // common case needs none.
            let absorbed: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM customers WHERE shop_id = ?2 AND merged_into = ?1)")?
                .query_row([customer_id, shop_id], |r| r.get(0))?;
            let sql = if absorbed {
                "WITH RECURSIVE absorbed(id) AS (
                     SELECT ?1 UNION SELECT c.id FROM absorbed a CROSS JOIN customers c ON c.shop_id = ?2 AND c.merged_into = a.id
                 )
                 SELECT position, type, customer_id, payload, created_at FROM events
                 WHERE seq IN (SELECT seq FROM events WHERE customer_id IN (SELECT id FROM absorbed) ORDER BY seq DESC LIMIT ?3)
                   AND +shop_id = ?2
                 ORDER BY seq DESC"
            } else {
                "SELECT position, type, customer_id, payload, created_at FROM events
                 WHERE customer_id = ?1 AND +shop_id = ?2 ORDER BY seq DESC LIMIT ?3"
            };
            let timeline = conn
                .prepare_cached(sql)?
                .query_map(params![customer_id, shop_id, timeline as i64], events::row_to_event)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(CustomerRead::Found(Box::new(CustomerDetail { customer, timeline })))
        })
    }

    /// A page of active customers in id order, after the id `after`.
    pub fn list_customers(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>> {
        self.read(|conn| {
            if let Some(identifier) = &filter.identity {
                let owner: Option<i64> = conn
                    .prepare_cached("SELECT customer_id FROM identities WHERE shop_id = ?1 AND kind = ?2 AND value = ?3")?
                    .query_row(params![shop_id, identifier.kind.to_string(), identifier.value], |r| r.get(0))
                    .optional()?;
                let Some(id) = owner.filter(|id| *id > after) else { return Ok(Vec::new()) };
                let customer = load_customer(conn, shop_id, id)?;
                return Ok(customer
                    .into_iter()
                    .filter(|c| filter.tag.as_ref().is_none_or(|t| c.tags.iter().any(|x| &x.tag == t)))
                    .filter(|c| filter.updated_since.is_none_or(|s| c.updated_at >= s))
                    .filter(|c| {
                        filter.score.as_ref().is_none_or(|(model, code)| {
                            c.scores
                                .iter()
                                .any(|s| &s.model == model && code.as_deref().is_none_or(|code| label_matches(s.label.as_deref(), code)))
                        })
                    })
                    .collect());
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers c
                 WHERE c.shop_id = ?1 AND c.merged_into IS NULL AND c.id > ?2
                   AND (?3 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.shop_id = ?1 AND t.tag = ?3 AND t.customer_id = c.id))
                   AND (?4 IS NULL OR c.updated_at >= ?4)
                   AND (?5 IS NULL OR EXISTS (SELECT 1 FROM scores s WHERE s.customer_id = c.id AND s.model = ?5
                          AND (?6 IS NULL OR s.label = ?6 OR substr(s.label, 1, length(?6) + 1) = ?6 || '|')))
                 ORDER BY c.id LIMIT ?7"
            ))?;
            let (model, code) = match &filter.score {
                Some((model, code)) => (Some(model.as_str()), code.as_deref()),
                None => (None, None),
            };
            let mut customers = stmt
                .query_map(
                    params![shop_id, after, filter.tag, filter.updated_since.map(to_ms), model, code, limit as i64],
                    row_to_customer,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            load_records(conn, &mut customers)?;
            Ok(customers)
        })
    }

    /// Add (or update the reason of) a manual tag, with the effects of every tag writer
    /// (`tags.rs`); the request is audited even when the tag was already set.
    pub fn add_tag(&self, shop_id: i64, customer_id: i64, tag: &str, reason: Option<&str>, actor: &Actor) -> Result<Tag> {
        let tag = validate_tag(tag)?;
        if let Some(reason) = reason {
            kith_domain::text::check_free("reason", reason, kith_domain::text::MAX_TEXT)?;
        }
        let now = Utc::now();
        self.write(|tx| {
            require_active(tx, shop_id, customer_id)?;
            let write = TagWrite { shop_id, customer_id, tag: &tag, source: Source::Manual, reason, at: now, chain: 1 };
            tags::add(&Sql(tx), &write)?;
            audit::record(tx, Some(shop_id), actor, "tag.add", Some(&format!("customer:{customer_id}")), json!({"tag": tag}), now)?;
            Ok(tx.query_row(
                "SELECT tag, source, reason, created_at FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = 'manual'",
                params![customer_id, tag],
                |r| Ok(Tag { tag: r.get(0)?, source: r.get(1)?, reason: r.get(2)?, created_at: from_ms(r.get(3)?) }),
            )?)
        })
    }

    /// Remove a manual tag; tags set by plugins belong to those plugins.
    pub fn remove_tag(&self, shop_id: i64, customer_id: i64, tag: &str, actor: &Actor) -> Result<()> {
        let now = Utc::now();
        self.write(|tx| {
            require_active(tx, shop_id, customer_id)?;
            let removal = TagRemoval { shop_id, customer_id, tag, which: Removable::Of(Source::Manual), reason: None, at: now, chain: 1 };
            if tags::remove(&Sql(tx), &removal)? == 0 {
                return Err(StoreError::NotFound(format!("manual tag `{tag}` on customer {customer_id}")));
            }
            audit::record(tx, Some(shop_id), actor, "tag.remove", Some(&format!("customer:{customer_id}")), json!({"tag": tag}), now)?;
            Ok(())
        })
    }

    /// Customers of a shop whose incrementally maintained stats differ from a
    /// recomputation from their orders; empty when the invariant holds.
    pub fn verify_stats(&self, shop_id: i64) -> Result<Vec<StatsMismatch>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT c.id, c.total_spent, c.order_count, c.first_order_at, c.last_order_at, c.refund_count, c.refund_amount,
                        COALESCE((SELECT SUM(amount - refunded_amount) FROM orders WHERE customer_id = c.id), 0),
                        (SELECT COUNT(*) FROM orders WHERE customer_id = c.id AND status != 'refunded'),
                        (SELECT MIN(paid_at) FROM orders WHERE customer_id = c.id AND status != 'refunded'),
                        (SELECT MAX(paid_at) FROM orders WHERE customer_id = c.id AND status != 'refunded'),
                        (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.customer_id = c.id),
                        COALESCE((SELECT SUM(refunded_amount) FROM orders WHERE customer_id = c.id), 0)
                 FROM customers c WHERE c.shop_id = ?1",
            )?;
            let rows = stmt.query_map([shop_id], |r| Ok((r.get::<_, i64>(0)?, stats_from(r, 1)?, stats_from(r, 7)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (customer_id, stored, recomputed) = row?;
                if stored != recomputed {
                    out.push(StatsMismatch { customer_id, stored, recomputed });
                }
            }
            Ok(out)
        })
    }

    /// Count of active customers in a shop.
    pub fn count_customers(&self, shop_id: i64) -> Result<i64> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL", [shop_id], |r| r.get(0))?)
        })
    }
}

fn validate_tag(tag: &str) -> Result<String, FieldError> {
    let tag = tag.trim();
    if tag.is_empty() || tag.chars().count() > 64 || tag.chars().any(kith_domain::text::is_forbidden) {
        return Err(FieldError::new("tag", "must be 1-64 printable characters, without zero-width or bidirectional-override ones"));
    }
    Ok(tag.to_owned())
}

/// Follow merge tombstones from `customer_id` to the customer that holds its records now.
pub(crate) fn active_customer(tx: &Connection, shop_id: i64, customer_id: i64) -> Result<Option<i64>> {
    let mut id = customer_id;
    // Chains are short (one link per merge); the bound only guards against a corrupt cycle.
    for _ in 0..64 {
        let next: Option<Option<i64>> = tx
            .prepare_cached("SELECT merged_into FROM customers WHERE id = ?1 AND shop_id = ?2")?
            .query_row(params![id, shop_id], |r| r.get(0))
            .optional()?;
        match next {
            None => return Ok(None),
            Some(None) => return Ok(Some(id)),
            Some(Some(into)) => id = into,
        }
    }
    Err(anyhow::anyhow!("merge chain from customer {customer_id} does not end").into())
}

/// A customer of the shop (a merged id resolves to its survivor), or not found.
pub(crate) fn customer_in_shop(tx: &Connection, shop_id: i64, customer_id: i64) -> Result<i64> {
    active_customer(tx, shop_id, customer_id)?.ok_or_else(|| StoreError::NotFound(format!("customer {customer_id}")))
}
