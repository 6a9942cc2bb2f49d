//! Customers on PostgreSQL: the core's customer views (profiles, pages of the list, the
//! timeline, the stats check).

use std::collections::HashMap;

use chrono::NaiveDate;
use kith_core::ports::*;
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, Event, IdentityView, Profile, Score, Stats, Tag};
use tokio_postgres::Row;

use super::events::row_to_event;
use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

/// Columns of a customer row, the points balance summed from the ledger; the table is
/// aliased `c`. Read with [`row_to_customer`].
pub(crate) const CUSTOMER_COLUMNS: &str = "c.id, name, gender, birthday, province, city, attributes, created_at, updated_at, \
     total_spent, order_count, first_order_at, last_order_at, refund_count, refund_amount, tier, \
     (SELECT COALESCE(SUM(p.points), 0)::BIGINT FROM points_ledger p WHERE p.shop_id = c.shop_id AND p.customer_id = c.id)";

fn opt_time(ms: Option<i64>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    ms.map(time).transpose()
}

fn stats_from(row: &Row, at: usize) -> Result<Stats> {
    let total_spent: i64 = get(row, at)?;
    let order_count: i64 = get(row, at + 1)?;
    Ok(Stats {
        total_spent,
        order_count,
        first_order_at: opt_time(get(row, at + 2)?)?,
        last_order_at: opt_time(get(row, at + 3)?)?,
        average_order_value: (order_count > 0).then(|| total_spent.div_euclid(order_count)),
        refund_count: get(row, at + 4)?,
        refund_amount: get(row, at + 5)?,
    })
}

pub(crate) fn row_to_customer(row: &Row) -> Result<Customer> {
    let birthday: Option<String> = get(row, 3)?;
    let attributes: String = get(row, 6)?;
    Ok(Customer {
        id: get(row, 0)?,
        profile: Profile {
            name: get(row, 1)?,
            gender: get(row, 2)?,
            birthday: birthday.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
            province: get(row, 4)?,
            city: get(row, 5)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        },
        identities: Vec::new(),
        stats: stats_from(row, 9)?,
        tags: Vec::new(),
        scores: Vec::new(),
        points: get(row, 16)?,
        tier: get(row, 15)?,
        created_at: time(get(row, 7)?)?,
        updated_at: time(get(row, 8)?)?,
    })
}

impl Pg<'_> {
    /// Fill the identities, tags and scores of a page of customers: three queries for
    /// the page, not three per customer.
    fn load_records(&self, customers: &mut [Customer]) -> Result<()> {
        if customers.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
        let at: HashMap<i64, usize> = customers.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let rows = self.query(
            "SELECT customer_id, kind, value, created_at FROM identities WHERE customer_id = ANY($1)
             ORDER BY customer_id, kind, created_at, value",
            &[&ids],
        )?;
        for row in &rows {
            let identity = IdentityView { kind: get(row, 1)?, value: get(row, 2)?, created_at: time(get(row, 3)?)? };
            customers[at[&get::<i64>(row, 0)?]].identities.push(identity);
        }
        let rows = self.query(
            "SELECT customer_id, tag, source, reason, created_at FROM tags WHERE customer_id = ANY($1)
             ORDER BY customer_id, tag, source",
            &[&ids],
        )?;
        for row in &rows {
            let tag = Tag { tag: get(row, 1)?, source: get(row, 2)?, reason: get(row, 3)?, created_at: time(get(row, 4)?)? };
            customers[at[&get::<i64>(row, 0)?]].tags.push(tag);
        }
        let rows = self.query(
            "SELECT customer_id, model, value, label, explanation, scored_at FROM scores WHERE customer_id = ANY($1)
             ORDER BY customer_id, model",
            &[&ids],
        )?;
        for row in &rows {
            let score = Score {
                model: get(row, 1)?,
                value: get(row, 2)?,
                label: get(row, 3)?,
                explanation: get(row, 4)?,
                scored_at: time(get(row, 5)?)?,
            };
            customers[at[&get::<i64>(row, 0)?]].scores.push(score);
        }
        Ok(())
    }
}

impl CustomerViews for Pg<'_> {
    fn get(&self, shop_id: i64, customer_id: i64) -> Result<Option<Customer>> {
        let row = self.query_opt(
            &format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1 AND shop_id = $2 AND merged_into IS NULL"),
            &[&customer_id, &shop_id],
        )?;
        let Some(row) = row else { return Ok(None) };
        let mut customer = row_to_customer(&row)?;
        self.load_records(std::slice::from_mut(&mut customer))?;
        Ok(Some(customer))
    }

    fn exists(&self, shop_id: i64, customer_id: i64) -> Result<bool> {
        let row =
            self.query_opt("SELECT id FROM customers WHERE id = $1 AND shop_id = $2 AND merged_into IS NULL", &[&customer_id, &shop_id])?;
        Ok(row.is_some())
    }

    /// The newest `limit` events of a customer, including those recorded under customers
    /// since merged into them.
    fn timeline(&self, shop_id: i64, customer_id: i64, limit: usize) -> Result<Vec<Event>> {
        // Most customers absorbed nobody: their newest events are the last entries of
        // the (customer, seq) index, read backwards. For a survivor of merges, the
        // newest events of the customer and of those merged into them, chosen on the
        // same index alone; only those are read from the log.
        let row =
            self.query_one("SELECT EXISTS (SELECT 1 FROM customers WHERE shop_id = $2 AND merged_into = $1)", &[&customer_id, &shop_id])?;
        let absorbed: bool = get(&row, 0)?;
        let sql = if absorbed {
            "WITH RECURSIVE absorbed(id) AS (
                 SELECT $1::BIGINT UNION SELECT c.id FROM absorbed a JOIN customers c ON c.shop_id = $2 AND c.merged_into = a.id
             )
             SELECT position, type, customer_id, payload, created_at FROM events
             WHERE seq IN (SELECT seq FROM events WHERE customer_id IN (SELECT id FROM absorbed) ORDER BY seq DESC LIMIT $3)
               AND shop_id = $2
             ORDER BY seq DESC"
        } else {
            "SELECT position, type, customer_id, payload, created_at FROM events
             WHERE customer_id = $1 AND shop_id = $2 ORDER BY seq DESC LIMIT $3"
        };
        self.query(sql, &[&customer_id, &shop_id, &(limit as i64)])?.iter().map(row_to_event).collect()
    }

    fn owner(&self, shop_id: i64, identifier: &Identifier) -> Result<Option<i64>> {
        let row = self.query_opt(
            "SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = $2 AND value = $3",
            &[&shop_id, &identifier.kind.to_string(), &identifier.value],
        )?;
        row.map(|row| get(&row, 0)).transpose()
    }

    /// A page of active customers in id order after `after`, passing the filter's tag,
    /// update time and score.
    fn page(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>> {
        let (model, code) = match &filter.score {
            Some((model, code)) => (Some(model.as_str()), code.as_deref()),
            None => (None, None),
        };
        let rows = self.query(
            &format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers c
                 WHERE c.shop_id = $1 AND c.merged_into IS NULL AND c.id > $2
                   AND ($3::TEXT IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.shop_id = $1 AND t.tag = $3 AND t.customer_id = c.id))
                   AND ($4::BIGINT IS NULL OR c.updated_at >= $4)
                   AND ($5::TEXT IS NULL OR EXISTS (SELECT 1 FROM scores s WHERE s.shop_id = $1 AND s.customer_id = c.id AND s.model = $5
                          AND ($6::TEXT IS NULL OR s.label = $6 OR substr(s.label, 1, length($6) + 1) = $6 || '|')))
                 ORDER BY c.id LIMIT $7"
            ),
            &[&shop_id, &after, &filter.tag, &filter.updated_since.map(millis), &model, &code, &(limit as i64)],
        )?;
        let mut customers = rows.iter().map(row_to_customer).collect::<Result<Vec<_>>>()?;
        self.load_records(&mut customers)?;
        Ok(customers)
    }

    fn stats_check(&self, shop_id: i64) -> Result<Vec<(i64, Stats, Stats)>> {
        let rows = self.query(
            "SELECT c.id, c.total_spent, c.order_count, c.first_order_at, c.last_order_at, c.refund_count, c.refund_amount,
                    COALESCE((SELECT SUM(amount - refunded_amount) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id), 0)::BIGINT,
                    (SELECT COUNT(*) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                    (SELECT MIN(paid_at) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                    (SELECT MAX(paid_at) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id AND status != 'refunded'),
                    (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id
                     WHERE o.shop_id = c.shop_id AND o.customer_id = c.id),
                    COALESCE((SELECT SUM(refunded_amount) FROM orders WHERE shop_id = c.shop_id AND customer_id = c.id), 0)::BIGINT
             FROM customers c WHERE c.shop_id = $1",
            &[&shop_id],
        )?;
        rows.iter().map(|row| Ok((get::<i64>(row, 0)?, stats_from(row, 1)?, stats_from(row, 7)?))).collect()
    }

    fn count(&self, shop_id: i64) -> Result<i64> {
        let row = self.query_one("SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL", &[&shop_id])?;
        get(&row, 0)
    }
}
