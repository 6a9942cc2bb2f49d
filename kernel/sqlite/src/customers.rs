//! Customers on SQLite: the rows and records every feature reads, and the core's
//! customer views (profiles, pages of the list, the timeline, the stats check).

use std::collections::HashMap;

use chrono::NaiveDate;
use kith_core::ports::{CustomerFilter, CustomerViews};
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, Event, IdentityView, Profile, Score, Stats, Tag};
use kith_domain::plugin::{Part, Reads};
use rusqlite::{Connection, OptionalExtension, params};

use crate::sql::Sql;
use crate::sql::{CoreResult, core, sql};
use crate::{Result, events, from_ms, to_ms};

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
    customer_columns!("(SELECT COALESCE(SUM(p.points), 0) FROM points_ledger p WHERE p.shop_id = c.shop_id AND p.customer_id = c.id)");
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

/// Fill the identities, tags and scores of a page of the shop's customers: three
/// queries for the page, not three per customer.
pub(crate) fn load_records(conn: &Connection, shop_id: i64, customers: &mut [Customer]) -> Result<()> {
    load_parts(conn, shop_id, customers, true, Reads::ALL)
}

/// Customers as a plugin that reads `reads` sees them: no identities (plugins
/// are not given them), tags and scores only when read, the rest blanked.
pub(crate) fn load_for_plugin(conn: &Connection, shop_id: i64, customers: &mut [Customer], reads: Reads) -> Result<()> {
    load_parts(conn, shop_id, customers, false, reads)?;
    for customer in customers {
        reads.blank(customer);
    }
    Ok(())
}

fn load_parts(conn: &Connection, shop_id: i64, customers: &mut [Customer], identities: bool, reads: Reads) -> Result<()> {
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
    // where the filter on customer_id goes, `?2` the shop. The shop is a unary `+`
    // term, kept out of index choice: with a plain `shop_id = ?2` SQLite may read the
    // whole shop's per-shop index (tags, scores, identities' key) instead of the
    // per-customer one.
    let each_row = |sql: &str, f: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>| -> Result<()> {
        let mut stmt = conn.prepare_cached(&sql.replace("{ids}", which))?;
        let mut rows = stmt.query(params![ids, shop_id])?;
        while let Some(r) = rows.next()? {
            f(r)?;
        }
        Ok(())
    };
    if identities {
        each_row(
            "SELECT customer_id, kind, value, created_at FROM identities WHERE customer_id {ids} AND +shop_id = ?2
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
            "SELECT customer_id, tag, source, reason, created_at FROM tags WHERE customer_id {ids} AND +shop_id = ?2
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
            "SELECT customer_id, model, value, label, explanation, scored_at FROM scores WHERE customer_id {ids} AND +shop_id = ?2
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
            load_records(conn, shop_id, std::slice::from_mut(&mut c))?;
            Ok(Some(c))
        }
        None => Ok(None),
    }
}

/// Whether `customer_id` is an active customer of the shop.
fn is_active(conn: &Connection, shop_id: i64, customer_id: i64) -> Result<bool> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM customers WHERE id = ?1 AND shop_id = ?2 AND merged_into IS NULL")?
        .query_row([customer_id, shop_id], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// The newest `limit` events of a customer, including those recorded under customers
/// since merged into them.
fn timeline(conn: &Connection, shop_id: i64, customer_id: i64, limit: usize) -> Result<Vec<Event>> {
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
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params![customer_id, shop_id, limit as i64], events::row_to_event)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A page of active customers in id order after `after`, passing the filter's tag, update
/// time and score.
fn page(conn: &Connection, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers c
                 WHERE c.shop_id = ?1 AND c.merged_into IS NULL AND c.id > ?2
                   AND (?3 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.shop_id = ?1 AND t.tag = ?3 AND t.customer_id = c.id))
                   AND (?4 IS NULL OR c.updated_at >= ?4)
                   AND (?5 IS NULL OR EXISTS (SELECT 1 FROM scores s WHERE s.shop_id = ?1 AND s.customer_id = c.id AND s.model = ?5
                          AND (?6 IS NULL OR s.label = ?6 OR substr(s.label, 1, length(?6) + 1) = ?6 || '|')))
                 ORDER BY c.id LIMIT ?7"
    ))?;
    let (model, code) = match &filter.score {
        Some((model, code)) => (Some(model.as_str()), code.as_deref()),
        None => (None, None),
    };
    let mut customers = stmt
        .query_map(params![shop_id, after, filter.tag, filter.updated_since.map(to_ms), model, code, limit as i64], row_to_customer)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    load_records(conn, shop_id, &mut customers)?;
    Ok(customers)
}

fn stats_check(conn: &Connection, shop_id: i64) -> Result<Vec<(i64, Stats, Stats)>> {
    let mut stmt = conn.prepare(
        "SELECT c.id, c.total_spent, c.order_count, c.first_order_at, c.last_order_at, c.refund_count, c.refund_amount,
                        COALESCE((SELECT SUM(amount - refunded_amount) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id), 0),
                        (SELECT COUNT(*) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                        (SELECT MIN(paid_at) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                        (SELECT MAX(paid_at) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                        (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.shop_id = c.shop_id AND o.customer_id = c.id),
                        COALESCE((SELECT SUM(refunded_amount) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id), 0)
                 FROM customers c WHERE c.shop_id = ?1",
    )?;
    let rows = stmt.query_map([shop_id], |r| Ok((r.get::<_, i64>(0)?, stats_from(r, 1)?, stats_from(r, 7)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl CustomerViews for Sql<'_> {
    fn get(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<Customer>> {
        core(load_customer(self.0, shop_id, customer_id))
    }

    fn exists(&self, shop_id: i64, customer_id: i64) -> CoreResult<bool> {
        core(is_active(self.0, shop_id, customer_id))
    }

    fn timeline(&self, shop_id: i64, customer_id: i64, limit: usize) -> CoreResult<Vec<Event>> {
        core(timeline(self.0, shop_id, customer_id, limit))
    }

    fn owner(&self, shop_id: i64, identifier: &Identifier) -> CoreResult<Option<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT customer_id FROM identities WHERE shop_id = ?1 AND kind = ?2 AND value = ?3")
            .and_then(|mut s| s.query_row(params![shop_id, identifier.kind.to_string(), identifier.value], |r| r.get(0)).optional()))
    }

    fn page(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> CoreResult<Vec<Customer>> {
        core(page(self.0, shop_id, filter, after, limit))
    }

    fn stats_check(&self, shop_id: i64) -> CoreResult<Vec<(i64, Stats, Stats)>> {
        core(stats_check(self.0, shop_id))
    }

    fn count(&self, shop_id: i64) -> CoreResult<i64> {
        sql(self.0.query_row("SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL", [shop_id], |r| r.get(0)))
    }
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
