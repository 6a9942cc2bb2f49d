//! Customers on PostgreSQL: the core's customer views (profiles, pages of the list, the
//! timeline, the stats check).

use kith_core::ports::*;
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, Event, Stats};

use super::events::row_to_event;
use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis};
use crate::rows::{CUSTOMER_COLUMNS, Records, load_records, row_to_customer, stats_from};

impl CustomerViews for Pg<'_> {
    fn get(&self, shop_id: i64, customer_id: i64) -> Result<Option<Customer>> {
        let row = self.query_opt(
            &format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1 AND shop_id = $2 AND merged_into IS NULL"),
            &[&customer_id, &shop_id],
        )?;
        let Some(row) = row else { return Ok(None) };
        let mut customer = row_to_customer(&row)?;
        load_records(self, shop_id, std::slice::from_mut(&mut customer), Records::ALL)?;
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
             WHERE seq IN (SELECT seq FROM events WHERE shop_id = $2 AND customer_id IN (SELECT id FROM absorbed)
                           ORDER BY seq DESC LIMIT $3)
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
        load_records(self, shop_id, &mut customers, Records::ALL)?;
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
