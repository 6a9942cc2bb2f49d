//! The ports of ingest and identity resolution on PostgreSQL: one cached statement a
//! method (an order's items in one), the statements ingest ran on SQLite.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_core::ports::{Identities, IdentityRow, IngestRead, IngestWrite, OrderRow, ProfileRow, Savepoints, ShopsRead};
use kith_domain::ingest::{BehaviourInput, ValidOrder};
use kith_domain::model::Stats;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

impl Identities for Pg<'_> {
    fn owner(&self, shop_id: i64, kind: &str, value: &str) -> Result<Option<i64>> {
        let row = self
            .query_opt("SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = $2 AND value = $3", &[&shop_id, &kind, &value])?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn counts(&self, shop_id: i64, customer_id: i64) -> Result<BTreeMap<String, u32>> {
        let rows = self.query(
            "SELECT kind, COUNT(*) FROM identities WHERE shop_id = $1 AND customer_id = $2 GROUP BY kind",
            &[&shop_id, &customer_id],
        )?;
        rows.iter()
            .map(|r| {
                let count: i64 = get(r, 1)?;
                let count = u32::try_from(count).map_err(anyhow::Error::from)?;
                Ok((get(r, 0)?, count))
            })
            .collect()
    }

    fn of_customer(&self, shop_id: i64, customer_id: i64) -> Result<Vec<IdentityRow>> {
        let rows = self.query(
            "SELECT kind, value, created_at FROM identities WHERE shop_id = $1 AND customer_id = $2 ORDER BY kind, value",
            &[&shop_id, &customer_id],
        )?;
        rows.iter().map(|r| Ok(IdentityRow { kind: get(r, 0)?, value: get(r, 1)?, created_at: time(get(r, 2)?)? })).collect()
    }
}

impl IngestRead for Pg<'_> {
    fn region(&self, shop_id: i64) -> Result<String> {
        match ShopsRead::get(self, shop_id)? {
            Some(shop) => Ok(shop.region),
            None => Err(kith_core::Error::NotFound(format!("shop {shop_id}"))),
        }
    }

    fn receipt(&self, shop_id: i64, event_id: &str) -> Result<Option<Option<i64>>> {
        let row = self.query_opt("SELECT customer_id FROM ingest_receipts WHERE shop_id = $1 AND event_id = $2", &[&shop_id, &event_id])?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn created_at(&self, shop_id: i64, customer_id: i64) -> Result<DateTime<Utc>> {
        let row = self.query_one("SELECT created_at FROM customers WHERE shop_id = $1 AND id = $2", &[&shop_id, &customer_id])?;
        time(get(&row, 0)?)
    }

    fn profile(&self, shop_id: i64, customer_id: i64) -> Result<ProfileRow> {
        let r = self.query_one(
            "SELECT name, gender, birthday, province, city, attributes FROM customers WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &customer_id],
        )?;
        Ok(ProfileRow {
            name: get(&r, 0)?,
            gender: get(&r, 1)?,
            birthday: get(&r, 2)?,
            province: get(&r, 3)?,
            city: get(&r, 4)?,
            attributes: get(&r, 5)?,
        })
    }

    fn stats(&self, shop_id: i64, customer_id: i64) -> Result<Stats> {
        let r = self.query_one(
            "SELECT total_spent, order_count, first_order_at, last_order_at, refund_count, refund_amount FROM customers WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &customer_id],
        )?;
        let (total_spent, order_count): (i64, i64) = (get(&r, 0)?, get(&r, 1)?);
        Ok(Stats {
            total_spent,
            order_count,
            first_order_at: get::<Option<i64>>(&r, 2)?.map(time).transpose()?,
            last_order_at: get::<Option<i64>>(&r, 3)?.map(time).transpose()?,
            average_order_value: (order_count > 0).then(|| total_spent.div_euclid(order_count)),
            refund_count: get(&r, 4)?,
            refund_amount: get(&r, 5)?,
        })
    }

    fn order_count(&self, shop_id: i64, customer_id: i64) -> Result<i64> {
        let row = self.query_one("SELECT COUNT(*) FROM orders WHERE shop_id = $1 AND customer_id = $2", &[&shop_id, &customer_id])?;
        get(&row, 0)
    }

    fn order(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderRow>> {
        let row = self.query_opt(
            "SELECT id, customer_id, amount, refunded_amount FROM orders WHERE shop_id = $1 AND external_id = $2",
            &[&shop_id, &external_id],
        )?;
        row.map(|r| Ok(OrderRow { id: get(&r, 0)?, customer_id: get(&r, 1)?, amount: get(&r, 2)?, refunded: get(&r, 3)? })).transpose()
    }
}

impl IngestWrite for Pg<'_> {
    fn receive(&self, shop_id: i64, event_id: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO ingest_receipts (shop_id, event_id, customer_id, received_at) VALUES ($1, $2, $3, $4)",
            &[&shop_id, &event_id, &customer_id, &millis(at)],
        )?;
        Ok(())
    }

    fn insert_customer(&self, shop_id: i64, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO customers (shop_id, created_at, updated_at) VALUES ($1, $2, $3) RETURNING id",
            &[&shop_id, &millis(created_at), &millis(updated_at)],
        )?;
        get(&row, 0)
    }

    fn seen_at(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE customers SET created_at = $3 WHERE shop_id = $1 AND id = $2 AND created_at > $3",
            &[&shop_id, &customer_id, &millis(at)],
        )?;
        Ok(())
    }

    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute("UPDATE customers SET updated_at = $1 WHERE shop_id = $2 AND id = $3", &[&millis(at), &shop_id, &customer_id])?;
        Ok(())
    }

    fn set_profile(&self, shop_id: i64, customer_id: i64, p: &ProfileRow) -> Result<()> {
        self.execute(
            "UPDATE customers SET name = $1, gender = $2, birthday = $3, province = $4, city = $5, attributes = $6 WHERE shop_id = $7 AND id = $8",
            &[&p.name, &p.gender, &p.birthday, &p.province, &p.city, &p.attributes, &shop_id, &customer_id],
        )?;
        Ok(())
    }

    fn attach(&self, shop_id: i64, kind: &str, value: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO identities (shop_id, kind, value, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&shop_id, &kind, &value, &customer_id, &millis(at)],
        )?;
        Ok(())
    }

    fn insert_order(&self, shop_id: i64, customer_id: i64, order: &ValidOrder, at: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO orders (shop_id, customer_id, external_id, status, amount, coupon_code, paid_at, created_at)
             VALUES ($1, $2, $3, 'paid', $4, $5, $6, $7) RETURNING id",
            &[&shop_id, &customer_id, &order.external_id, &order.amount, &order.coupon_code, &millis(order.paid_at), &millis(at)],
        )?;
        let order_id: i64 = get(&row, 0)?;
        if order.items.is_empty() {
            return Ok(order_id);
        }
        // The items in one statement, a line per element of the arrays (lines from 0).
        let items = &order.items;
        let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
        let names: Vec<Option<&str>> = items.iter().map(|i| i.product_name.as_deref()).collect();
        let categories: Vec<Option<&str>> = items.iter().map(|i| i.category.as_deref()).collect();
        let quantities: Vec<i64> = items.iter().map(|i| i.quantity).collect();
        let prices: Vec<i64> = items.iter().map(|i| i.unit_price).collect();
        let discounts: Vec<i64> = items.iter().map(|i| i.discount).collect();
        let coupons: Vec<Option<&str>> = items.iter().map(|i| i.coupon_code.as_deref()).collect();
        self.execute(
            "INSERT INTO order_items (shop_id, order_id, line, sku, product_name, category, quantity, unit_price, discount, coupon_code)
             SELECT $1, $2, i.n - 1, i.sku, i.product_name, i.category, i.quantity, i.unit_price, i.discount, i.coupon_code
             FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[])
                 WITH ORDINALITY AS i (sku, product_name, category, quantity, unit_price, discount, coupon_code, n)",
            &[&shop_id, &order_id, &skus, &names, &categories, &quantities, &prices, &discounts, &coupons],
        )?;
        Ok(order_id)
    }

    fn add_order_to_stats(&self, shop_id: i64, customer_id: i64, amount: i64, paid_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE customers SET total_spent = total_spent + $1, order_count = order_count + 1,
                 first_order_at = LEAST(COALESCE(first_order_at, $2), $2), last_order_at = GREATEST(COALESCE(last_order_at, $2), $2),
                 updated_at = $3
             WHERE shop_id = $4 AND id = $5",
            &[&amount, &millis(paid_at), &millis(at), &shop_id, &customer_id],
        )?;
        Ok(())
    }

    fn refund_order(&self, shop_id: i64, order_id: i64, amount: i64, fully: bool) -> Result<()> {
        let status = if fully { "refunded" } else { "partially_refunded" };
        self.execute(
            "UPDATE orders SET refunded_amount = refunded_amount + $1, status = $2 WHERE shop_id = $3 AND id = $4",
            &[&amount, &status, &shop_id, &order_id],
        )?;
        Ok(())
    }

    fn insert_refund(&self, shop_id: i64, order_id: i64, amount: i64, reason: Option<&str>, refunded_at: DateTime<Utc>) -> Result<()> {
        // The refund's shop is its order's.
        self.execute(
            "INSERT INTO refunds (shop_id, order_id, amount, reason, refunded_at)
             SELECT o.shop_id, o.id, $3::BIGINT, $4::TEXT, $5::BIGINT FROM orders o WHERE o.shop_id = $1 AND o.id = $2",
            &[&shop_id, &order_id, &amount, &reason, &millis(refunded_at)],
        )?;
        Ok(())
    }

    fn subtract_refund(&self, shop_id: i64, customer_id: i64, amount: i64, fully: bool, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE customers SET total_spent = total_spent - $1, refund_count = refund_count + 1, refund_amount = refund_amount + $1,
                 order_count = order_count - $2, updated_at = $3
             WHERE shop_id = $4 AND id = $5",
            &[&amount, &i64::from(fully), &millis(at), &shop_id, &customer_id],
        )?;
        Ok(())
    }

    fn recompute_stats(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        self.execute(
            "UPDATE customers SET
                total_spent = (SELECT COALESCE(SUM(amount - refunded_amount), 0)::BIGINT FROM orders
                               WHERE shop_id = $1 AND customer_id = $2),
                order_count = (SELECT COUNT(*) FROM orders WHERE shop_id = $1 AND customer_id = $2 AND status <> 'refunded'),
                first_order_at = (SELECT MIN(paid_at) FROM orders WHERE shop_id = $1 AND customer_id = $2 AND status <> 'refunded'),
                last_order_at = (SELECT MAX(paid_at) FROM orders WHERE shop_id = $1 AND customer_id = $2 AND status <> 'refunded'),
                refund_count = (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id
                                WHERE r.shop_id = $1 AND o.customer_id = $2),
                refund_amount = (SELECT COALESCE(SUM(refunded_amount), 0)::BIGINT FROM orders WHERE shop_id = $1 AND customer_id = $2)
             WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &customer_id],
        )?;
        Ok(())
    }

    fn insert_behaviour(&self, shop_id: i64, customer_id: i64, b: &BehaviourInput, occurred_at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO behaviours (shop_id, customer_id, kind, sku, product_name, category, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&shop_id, &customer_id, &b.kind.as_str(), &b.sku, &b.product_name, &b.category, &millis(occurred_at)],
        )?;
        Ok(())
    }
}

/// One event of a batch, or one item of a pass, in a savepoint. In PostgreSQL a failed
/// statement aborts the whole transaction; rolling back to the savepoint makes it usable
/// again, as SQLite's statement failures leave it.
impl Savepoints for Pg<'_> {
    fn written(&self) -> u64 {
        // Rows written by every statement so far (see `Pg::written`).
        Pg::written(self)
    }

    fn savepoint(&self) -> Result<()> {
        self.batch("SAVEPOINT event")
    }

    fn release(&self) -> Result<()> {
        self.batch("RELEASE SAVEPOINT event")
    }

    fn roll_back(&self) -> Result<()> {
        self.batch("ROLLBACK TO SAVEPOINT event; RELEASE SAVEPOINT event")
    }

    fn active(&self) -> bool {
        // The server never ends a transaction on its own while the connection holds it: a
        // failed statement leaves it aborted, and a savepoint returns it to use.
        self.open()
    }
}
