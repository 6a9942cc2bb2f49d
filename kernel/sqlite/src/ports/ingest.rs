//! The ports of ingest and identity resolution on SQLite: one cached statement a
//! method (an order's items one a line), the statements ingest ran before.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_core::ports::{Identities, IdentityRow, IngestRead, IngestWrite, OrderRow, ProfileRow, Savepoints};
use kith_domain::ingest::{BehaviourInput, ValidOrder};
use kith_domain::model::Stats;
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, core, sql};
use crate::{from_ms, shops, to_ms};

impl Identities for Sql<'_> {
    fn owner(&self, shop_id: i64, kind: &str, value: &str) -> CoreResult<Option<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT customer_id FROM identities WHERE shop_id = ?1 AND kind = ?2 AND value = ?3")
            .and_then(|mut s| s.query_row(params![shop_id, kind, value], |r| r.get(0)).optional()))
    }

    fn counts(&self, shop_id: i64, customer_id: i64) -> CoreResult<BTreeMap<String, u32>> {
        sql(self
            .0
            .prepare_cached("SELECT kind, COUNT(*) FROM identities WHERE shop_id = ?1 AND customer_id = ?2 GROUP BY kind")
            .and_then(|mut s| s.query_map([shop_id, customer_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?.collect()))
    }

    fn of_customer(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<IdentityRow>> {
        sql(self
            .0
            .prepare_cached("SELECT kind, value, created_at FROM identities WHERE shop_id = ?1 AND customer_id = ?2 ORDER BY kind, value")
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    Ok(IdentityRow { kind: r.get(0)?, value: r.get(1)?, created_at: from_ms(r.get(2)?) })
                })?
                .collect()
            }))
    }
}

impl IngestRead for Sql<'_> {
    fn region(&self, shop_id: i64) -> CoreResult<String> {
        core(shops::load_shop(self.0, shop_id).map(|shop| shop.region))
    }

    fn receipt(&self, shop_id: i64, event_id: &str) -> CoreResult<Option<Option<i64>>> {
        sql(self
            .0
            .prepare_cached("SELECT customer_id FROM ingest_receipts WHERE shop_id = ?1 AND event_id = ?2")
            .and_then(|mut s| s.query_row(params![shop_id, event_id], |r| r.get(0)).optional()))
    }

    fn created_at(&self, shop_id: i64, customer_id: i64) -> CoreResult<DateTime<Utc>> {
        sql(self
            .0
            .prepare_cached("SELECT created_at FROM customers WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row([shop_id, customer_id], |r| r.get(0).map(from_ms))))
    }

    fn profile(&self, shop_id: i64, customer_id: i64) -> CoreResult<ProfileRow> {
        sql(self
            .0
            .prepare_cached("SELECT name, gender, birthday, province, city, attributes FROM customers WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row([shop_id, customer_id], |r| {
                    Ok(ProfileRow {
                        name: r.get(0)?,
                        gender: r.get(1)?,
                        birthday: r.get(2)?,
                        province: r.get(3)?,
                        city: r.get(4)?,
                        attributes: r.get(5)?,
                    })
                })
            }))
    }

    fn stats(&self, shop_id: i64, customer_id: i64) -> CoreResult<Stats> {
        sql(self
            .0
            .prepare_cached(
                "SELECT total_spent, order_count, first_order_at, last_order_at, refund_count, refund_amount FROM customers WHERE shop_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.query_row([shop_id, customer_id], |r| {
                    let (total_spent, order_count): (i64, i64) = (r.get(0)?, r.get(1)?);
                    Ok(Stats {
                        total_spent,
                        order_count,
                        first_order_at: r.get::<_, Option<i64>>(2)?.map(from_ms),
                        last_order_at: r.get::<_, Option<i64>>(3)?.map(from_ms),
                        average_order_value: (order_count > 0).then(|| total_spent.div_euclid(order_count)),
                        refund_count: r.get(4)?,
                        refund_amount: r.get(5)?,
                    })
                })
            }))
    }

    fn order_count(&self, shop_id: i64, customer_id: i64) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached("SELECT COUNT(*) FROM orders WHERE shop_id = ?1 AND customer_id = ?2")
            .and_then(|mut s| s.query_row([shop_id, customer_id], |r| r.get(0))))
    }

    fn order(&self, shop_id: i64, external_id: &str) -> CoreResult<Option<OrderRow>> {
        sql(self
            .0
            .prepare_cached("SELECT id, customer_id, amount, refunded_amount FROM orders WHERE shop_id = ?1 AND external_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![shop_id, external_id], |r| {
                    Ok(OrderRow { id: r.get(0)?, customer_id: r.get(1)?, amount: r.get(2)?, refunded: r.get(3)? })
                })
                .optional()
            }))
    }
}

impl Sql<'_> {
    /// Run one cached statement that changes rows; how many it changed.
    pub(super) fn change(&self, statement: &str, params: impl rusqlite::Params) -> CoreResult<usize> {
        sql(self.0.prepare_cached(statement).and_then(|mut s| s.execute(params)))
    }
}

impl IngestWrite for Sql<'_> {
    fn receive(&self, shop_id: i64, event_id: &str, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "INSERT INTO ingest_receipts (shop_id, event_id, customer_id, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![shop_id, event_id, customer_id, to_ms(at)],
        )?;
        Ok(())
    }

    fn insert_customer(&self, shop_id: i64, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> CoreResult<i64> {
        self.change(
            "INSERT INTO customers (shop_id, created_at, updated_at) VALUES (?1, ?2, ?3)",
            params![shop_id, to_ms(created_at), to_ms(updated_at)],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    fn seen_at(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET created_at = ?3 WHERE shop_id = ?1 AND id = ?2 AND created_at > ?3",
            params![shop_id, customer_id, to_ms(at)],
        )?;
        Ok(())
    }

    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        self.change("UPDATE customers SET updated_at = ?1 WHERE shop_id = ?2 AND id = ?3", params![to_ms(at), shop_id, customer_id])?;
        Ok(())
    }

    fn set_profile(&self, shop_id: i64, customer_id: i64, p: &ProfileRow) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET name = ?1, gender = ?2, birthday = ?3, province = ?4, city = ?5, attributes = ?6 WHERE shop_id = ?7 AND id = ?8",
            params![p.name, p.gender, p.birthday, p.province, p.city, p.attributes, shop_id, customer_id],
        )?;
        Ok(())
    }

    fn attach(&self, shop_id: i64, kind: &str, value: &str, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "INSERT INTO identities (shop_id, kind, value, customer_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![shop_id, kind, value, customer_id, to_ms(at)],
        )?;
        Ok(())
    }

    fn insert_order(&self, shop_id: i64, customer_id: i64, order: &ValidOrder, at: DateTime<Utc>) -> CoreResult<i64> {
        self.change(
            "INSERT INTO orders (shop_id, customer_id, external_id, status, amount, coupon_code, paid_at, created_at) VALUES (?1, ?2, ?3, 'paid', ?4, ?5, ?6, ?7)",
            params![shop_id, customer_id, order.external_id, order.amount, order.coupon_code, to_ms(order.paid_at), to_ms(at)],
        )?;
        let order_id = self.0.last_insert_rowid();
        sql((|| {
            let mut insert_item = self.0.prepare_cached(
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
            Ok(())
        })())?;
        Ok(order_id)
    }

    fn add_order_to_stats(&self, shop_id: i64, customer_id: i64, amount: i64, paid_at: DateTime<Utc>, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET total_spent = total_spent + ?1, order_count = order_count + 1,
                 first_order_at = MIN(COALESCE(first_order_at, ?2), ?2), last_order_at = MAX(COALESCE(last_order_at, ?2), ?2),
                 updated_at = ?3
             WHERE shop_id = ?4 AND id = ?5",
            params![amount, to_ms(paid_at), to_ms(at), shop_id, customer_id],
        )?;
        Ok(())
    }

    fn refund_order(&self, shop_id: i64, order_id: i64, amount: i64, fully: bool) -> CoreResult<()> {
        self.change(
            "UPDATE orders SET refunded_amount = refunded_amount + ?1, status = ?2 WHERE shop_id = ?3 AND id = ?4",
            params![amount, if fully { "refunded" } else { "partially_refunded" }, shop_id, order_id],
        )?;
        Ok(())
    }

    fn insert_refund(&self, shop_id: i64, order_id: i64, amount: i64, reason: Option<&str>, refunded_at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            // Refunds have no shop: the order is the shop's.
            "INSERT INTO refunds (order_id, amount, reason, refunded_at) SELECT id, ?3, ?4, ?5 FROM orders WHERE shop_id = ?1 AND id = ?2",
            params![shop_id, order_id, amount, reason, to_ms(refunded_at)],
        )?;
        Ok(())
    }

    fn subtract_refund(&self, shop_id: i64, customer_id: i64, amount: i64, fully: bool, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET total_spent = total_spent - ?1, refund_count = refund_count + 1, refund_amount = refund_amount + ?1,
                 order_count = order_count - ?2, updated_at = ?3
             WHERE shop_id = ?4 AND id = ?5",
            params![amount, fully as i64, to_ms(at), shop_id, customer_id],
        )?;
        Ok(())
    }

    fn recompute_stats(&self, shop_id: i64, customer_id: i64) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET
                total_spent = (SELECT COALESCE(SUM(amount - refunded_amount), 0) FROM orders WHERE shop_id = ?1 AND customer_id = ?2),
                order_count = (SELECT COUNT(*) FROM orders WHERE shop_id = ?1 AND customer_id = ?2 AND status != 'refunded'),
                first_order_at = (SELECT MIN(paid_at) FROM orders WHERE shop_id = ?1 AND customer_id = ?2 AND status != 'refunded'),
                last_order_at = (SELECT MAX(paid_at) FROM orders WHERE shop_id = ?1 AND customer_id = ?2 AND status != 'refunded'),
                refund_count = (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.shop_id = ?1 AND o.customer_id = ?2),
                refund_amount = (SELECT COALESCE(SUM(refunded_amount), 0) FROM orders WHERE shop_id = ?1 AND customer_id = ?2)
             WHERE shop_id = ?1 AND id = ?2",
            [shop_id, customer_id],
        )?;
        Ok(())
    }

    fn insert_behaviour(&self, shop_id: i64, customer_id: i64, b: &BehaviourInput, occurred_at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "INSERT INTO behaviours (shop_id, customer_id, kind, sku, product_name, category, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![shop_id, customer_id, b.kind.as_str(), b.sku, b.product_name, b.category, to_ms(occurred_at)],
        )?;
        Ok(())
    }
}

impl Savepoints for Sql<'_> {
    fn written(&self) -> u64 {
        // Rows written by every statement so far, those of triggers included.
        self.0.total_changes()
    }

    fn savepoint(&self) -> CoreResult<()> {
        self.change("SAVEPOINT event", [])?;
        Ok(())
    }

    fn release(&self) -> CoreResult<()> {
        self.change("RELEASE event", [])?;
        Ok(())
    }

    fn roll_back(&self) -> CoreResult<()> {
        sql(self.0.execute_batch("ROLLBACK TO event; RELEASE event"))
    }

    fn active(&self) -> bool {
        !self.0.is_autocommit()
    }
}
