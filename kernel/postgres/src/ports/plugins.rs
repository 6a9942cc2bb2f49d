//! The plugins ports on PostgreSQL: the catalogue (global: `plugins`, `plugin_blobs`),
//! shops' subscriptions and their cursors, runs, dead letters, logs and calls, key-value
//! entries, scores, tiers and the segments' rank marks. The rules are the core's
//! (`kith_core::plugins`, `kith_core::delivery`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, DeadLetter, EventSnapshot, InstalledPlugin, Kind, LogLevel, MAX_HISTORY_ORDERS, Manifest, OrderItemSnapshot,
    OrderSnapshot, Part, PluginLog, PluginRun, PluginRunStatus, Reads, Subscription, SubscriptionStatus,
};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};
use crate::rows::{CUSTOMER_COLUMNS, CUSTOMER_COLUMNS_NO_POINTS, Records, load_records, row_to_customer};

/// A stored value that does not read as what it should be: the backend's failure.
fn corrupt(what: &str, err: impl std::fmt::Display) -> kith_core::Error {
    kith_core::Error::Internal(anyhow::anyhow!("a stored {what} does not read: {err}"))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

const INSTALLED_COLUMNS: &str = "manifest, sha256, size, installed_at";

fn row_to_installed(row: &Row) -> Result<InstalledPlugin> {
    let manifest: String = get(row, 0)?;
    let manifest: Manifest = serde_json::from_str(&manifest).map_err(|e| corrupt("manifest", e))?;
    Ok(InstalledPlugin { manifest, sha256: get(row, 1)?, size: get(row, 2)?, installed_at: time(get(row, 3)?)? })
}

const SUBSCRIPTION_COLUMNS: &str = "s.shop_id, s.plugin_id, p.kind, s.version_req, s.version, s.config, s.grant_json, s.status, s.cursor, \
     s.attempts, s.consecutive_failures, s.retry_at, s.last_error, s.created_at, s.updated_at, s.run_every_hours";

/// The subscription's plugin version in the catalogue (global, joined by id and version).
const SUBSCRIPTION_FROM: &str = "subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version";

fn row_to_subscription(row: &Row) -> Result<Subscription> {
    let kind: String = get(row, 2)?;
    let config: String = get(row, 5)?;
    let grant: String = get(row, 6)?;
    let status: String = get(row, 7)?;
    Ok(Subscription {
        shop_id: get(row, 0)?,
        plugin_id: get(row, 1)?,
        kind: kind.parse().unwrap_or(Kind::TagRule),
        version_req: get(row, 3)?,
        version: get(row, 4)?,
        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
        grant: serde_json::from_str(&grant).unwrap_or_default(),
        status: SubscriptionStatus::parse(&status),
        cursor: get(row, 8)?,
        attempts: get(row, 9)?,
        consecutive_failures: get(row, 10)?,
        retry_at: opt_time(get(row, 11)?)?,
        last_error: get(row, 12)?,
        created_at: time(get(row, 13)?)?,
        updated_at: time(get(row, 14)?)?,
        run_every_hours: get::<Option<i64>>(row, 15)?.map(|h| u32::try_from(h).map_err(|e| corrupt("run_every_hours", e))).transpose()?,
    })
}

const DEAD_LETTER_COLUMNS: &str = "id, plugin_id, version, first_seq, last_seq, attempts, error, created_at, redriven_at";

fn row_to_dead_letter(row: &Row) -> Result<DeadLetter> {
    Ok(DeadLetter {
        id: get(row, 0)?,
        plugin_id: get(row, 1)?,
        version: get(row, 2)?,
        first_seq: get(row, 3)?,
        last_seq: get(row, 4)?,
        attempts: get(row, 5)?,
        error: get(row, 6)?,
        created_at: time(get(row, 7)?)?,
        redriven_at: opt_time(get(row, 8)?)?,
    })
}

const RUN_COLUMNS: &str = "id, plugin_id, status, total, done, checkpoint, attempts, error, created_at, updated_at, finished_at";

fn row_to_run(row: &Row) -> Result<PluginRun> {
    let status = match get::<String>(row, 2)?.as_str() {
        "running" => PluginRunStatus::Running,
        "done" => PluginRunStatus::Done,
        _ => PluginRunStatus::Failed,
    };
    Ok(PluginRun {
        id: get(row, 0)?,
        plugin_id: get(row, 1)?,
        status,
        total: get(row, 3)?,
        done: get(row, 4)?,
        checkpoint: get(row, 5)?,
        attempts: get(row, 6)?,
        error: get(row, 7)?,
        created_at: time(get(row, 8)?)?,
        updated_at: time(get(row, 9)?)?,
        finished_at: opt_time(get(row, 10)?)?,
    })
}

/// The customer columns a plugin that reads `reads` needs: the points balance is a sum over
/// the ledger, left out (0) when not read.
fn plugin_columns(reads: Reads) -> &'static str {
    if reads.has(Part::Points) { CUSTOMER_COLUMNS } else { CUSTOMER_COLUMNS_NO_POINTS }
}

/// Customers as a plugin that reads `reads` sees them: no identities (plugins are not given
/// them), tags and scores only when read (one query each for the whole page), the rest blanked.
fn load_for_plugin(pg: &Pg<'_>, shop_id: i64, customers: &mut [Customer], reads: Reads) -> Result<()> {
    load_records(pg, shop_id, customers, Records::plugin(reads))?;
    for customer in customers {
        reads.blank(customer);
    }
    Ok(())
}

/// Columns of an order row for [`row_to_order`].
const ORDER_COLUMNS: &str = "id, external_id, customer_id, amount, refunded_amount, status, coupon_code, paid_at";

/// An order's row id and its snapshot, without items.
fn row_to_order(row: &Row) -> Result<(i64, OrderSnapshot)> {
    Ok((
        get(row, 0)?,
        OrderSnapshot {
            external_id: get(row, 1)?,
            customer_id: get(row, 2)?,
            amount: get(row, 3)?,
            refunded_amount: get(row, 4)?,
            status: get(row, 5)?,
            coupon_code: get(row, 6)?,
            paid_at_ms: get(row, 7)?,
            items: Vec::new(),
        },
    ))
}

/// An order item from the columns `sku, product_name, category, quantity, unit_price,
/// discount` starting at column `at`.
fn row_to_item(row: &Row, at: usize) -> Result<OrderItemSnapshot> {
    Ok(OrderItemSnapshot {
        sku: get(row, at)?,
        name: get(row, at + 1)?,
        category: get(row, at + 2)?,
        quantity: get::<i64>(row, at + 3)?.clamp(0, i64::from(u32::MAX)) as u32,
        unit_price: get(row, at + 4)?,
        discount: get(row, at + 5)?,
    })
}

impl PluginsRead for Pg<'_> {
    fn foreign_tag_prefixes(&self, plugin_id: &str) -> Result<Vec<(String, String)>> {
        self.query(
            "SELECT DISTINCT id, prefix FROM (
                 SELECT id, CASE WHEN strpos(manifest, '\\u0000') = 0 THEN manifest::jsonb END ->> 'tag-prefix' AS prefix FROM plugins
                 WHERE id <> $1) p
             WHERE prefix IS NOT NULL ORDER BY 1, 2",
            &[&plugin_id],
        )?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
        .collect()
    }

    fn subscription(&self, shop_id: i64, plugin_id: &str) -> Result<Subscription> {
        let row = self.query_opt(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE s.shop_id = $1 AND s.plugin_id = $2"),
            &[&shop_id, &plugin_id],
        )?;
        match row {
            Some(row) => row_to_subscription(&row),
            None => Err(kith_core::Error::NotFound(format!("plugin {plugin_id} in this shop"))),
        }
    }

    fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        let row = self.query_opt(
            &format!("SELECT {RUN_COLUMNS} FROM plugin_runs WHERE shop_id = $2 AND id = $1 AND plugin_id = $3"),
            &[&run_id, &shop_id, &plugin_id],
        )?;
        match row {
            Some(row) => row_to_run(&row),
            None => Err(kith_core::Error::NotFound(format!("run {run_id}"))),
        }
    }

    fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter> {
        let row = self.query_opt(
            &format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE shop_id = $2 AND id = $1 AND plugin_id = $3"),
            &[&id, &shop_id, &plugin_id],
        )?;
        match row {
            Some(row) => row_to_dead_letter(&row),
            None => Err(kith_core::Error::NotFound(format!("dead letter {id}"))),
        }
    }

    fn kv(&self, shop_id: i64, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.query_opt("SELECT value FROM plugin_kv WHERE shop_id = $1 AND plugin_id = $2 AND key = $3", &[&shop_id, &plugin_id, &key])?
            .map(|row| get(&row, 0))
            .transpose()
    }

    fn installed(&self, plugin_id: &str, version: &str) -> Result<Option<InstalledPlugin>> {
        self.query_opt(&format!("SELECT {INSTALLED_COLUMNS} FROM plugins WHERE id = $1 AND version = $2"), &[&plugin_id, &version])?
            .map(|row| row_to_installed(&row))
            .transpose()
    }

    fn installed_sha256(&self, plugin_id: &str, version: &str) -> Result<Option<String>> {
        self.query_opt("SELECT sha256 FROM plugins WHERE id = $1 AND version = $2", &[&plugin_id, &version])?
            .map(|row| get(&row, 0))
            .transpose()
    }

    fn catalogue(&self) -> Result<Vec<InstalledPlugin>> {
        self.query(&format!("SELECT {INSTALLED_COLUMNS} FROM plugins"), &[])?.iter().map(row_to_installed).collect()
    }

    fn versions(&self, plugin_id: &str) -> Result<Vec<InstalledPlugin>> {
        self.query(&format!("SELECT {INSTALLED_COLUMNS} FROM plugins WHERE id = $1"), &[&plugin_id])?.iter().map(row_to_installed).collect()
    }

    fn wasm(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.query_opt("SELECT bytes FROM plugin_blobs WHERE sha256 = $1", &[&sha256])?.map(|row| get(&row, 0)).transpose()
    }

    fn subscriptions(&self, shop_id: i64) -> Result<Vec<Subscription>> {
        self.query(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE s.shop_id = $1 ORDER BY s.plugin_id"),
            &[&shop_id],
        )?
        .iter()
        .map(row_to_subscription)
        .collect()
    }

    fn due_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Due>> {
        self.query(
            &format!(
                "SELECT s.shop_id, s.plugin_id FROM {SUBSCRIPTION_FROM}
                 WHERE s.status = 'enabled' AND p.kind <> 'channel-connector' AND (s.retry_at IS NULL OR s.retry_at <= $1)
                   AND EXISTS (SELECT 1 FROM events e WHERE e.shop_id = s.shop_id AND e.seq > s.cursor)
                 ORDER BY s.updated_at, s.shop_id, s.plugin_id"
            ),
            &[&millis(now)],
        )?
        .iter()
        .map(|row| Ok(Due { shop_id: get(row, 0)?, plugin_id: get(row, 1)? }))
        .collect()
    }

    fn event_head(&self, shop_id: i64) -> Result<i64> {
        EventsRead::head(self, shop_id)
    }

    /// The events of a delivery (see `PluginService::events_for`); `types` `None`: every type.
    fn events(
        &self,
        shop_id: i64,
        plugin_id: &str,
        types: Option<&[String]>,
        after: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<EventSnapshot>> {
        let every_type = types.is_none();
        let types: Vec<String> = types.unwrap_or_default().to_vec();
        // Payloads go to plugins as the text the log holds; only the order id is read out of them.
        self.query(
            "SELECT seq, type, customer_id, payload, created_at,
                    CASE WHEN strpos(payload, '\\u0000') = 0 AND jsonb_typeof(payload::jsonb -> 'order_id') = 'string'
                         THEN payload::jsonb ->> 'order_id' END
             FROM events
             WHERE shop_id = $1 AND seq > $2 AND seq <= $3 AND customer_id IS NOT NULL
               AND (source IS NULL OR source <> $4) AND ($5 OR type = ANY($6::TEXT[]))
             ORDER BY seq LIMIT $7",
            &[&shop_id, &after, &end, &plugin_id, &every_type, &types, &(limit as i64)],
        )?
        .iter()
        .map(|row| {
            Ok(EventSnapshot {
                seq: get(row, 0)?,
                kind: get(row, 1)?,
                customer_id: get(row, 2)?,
                payload: get(row, 3)?,
                created_at_ms: get(row, 4)?,
                order_id: get(row, 5)?,
            })
        })
        .collect()
    }

    fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>> {
        self.query(
            &format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE shop_id = $1 AND plugin_id = $2 ORDER BY id DESC LIMIT 1000"),
            &[&shop_id, &plugin_id],
        )?
        .iter()
        .map(row_to_dead_letter)
        .collect()
    }

    fn running_run(&self, shop_id: i64, plugin_id: &str) -> Result<Option<i64>> {
        // At most one runs at a time (the core starts one only when none is running); the
        // oldest, should there be more (SQLite's first row along its index).
        self.query_opt(
            "SELECT id FROM plugin_runs WHERE shop_id = $1 AND plugin_id = $2 AND status = 'running' ORDER BY id LIMIT 1",
            &[&shop_id, &plugin_id],
        )?
        .map(|row| get(&row, 0))
        .transpose()
    }

    fn runs(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>> {
        self.query(
            &format!("SELECT {RUN_COLUMNS} FROM plugin_runs WHERE shop_id = $1 AND plugin_id = $2 ORDER BY id DESC LIMIT 100"),
            &[&shop_id, &plugin_id],
        )?
        .iter()
        .map(row_to_run)
        .collect()
    }

    fn due_plugin_runs(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>> {
        self.query(
            "SELECT r.shop_id, r.plugin_id, r.id FROM plugin_runs r
             JOIN subscriptions s ON s.shop_id = r.shop_id AND s.plugin_id = r.plugin_id
             WHERE r.status = 'running' AND s.status = 'enabled' AND (r.retry_at IS NULL OR r.retry_at <= $1) ORDER BY r.id",
            &[&millis(now)],
        )?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
        .collect()
    }

    fn scheduled_runs_due(&self, now: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(&format!("SELECT COUNT(*) {SCHEDULED_DUE}"), &[&millis(now)])?;
        get(&row, 0)
    }

    fn active_customer_count(&self, shop_id: i64) -> Result<i64> {
        let row = self.query_one("SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL", &[&shop_id])?;
        get(&row, 0)
    }

    fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>> {
        let mut customers = self
            .query(
                &format!(
                    "SELECT {} FROM customers c WHERE c.shop_id = $1 AND c.merged_into IS NULL AND c.id > $2 ORDER BY c.id LIMIT $3",
                    plugin_columns(reads)
                ),
                &[&shop_id, &after, &(limit as i64)],
            )?
            .iter()
            .map(row_to_customer)
            .collect::<Result<Vec<_>>>()?;
        load_for_plugin(self, shop_id, &mut customers, reads)?;
        Ok(customers)
    }

    /// Active customers of the shop among `ids`, read together, as a plugin that reads `reads` sees them.
    fn plugin_customers(&self, shop_id: i64, ids: &[i64], reads: Reads) -> Result<Vec<Customer>> {
        let mut customers = self
            .query(
                &format!(
                    "SELECT {} FROM customers c WHERE c.shop_id = $2 AND c.id = ANY($1) AND c.merged_into IS NULL",
                    plugin_columns(reads)
                ),
                &[&ids, &shop_id],
            )?
            .iter()
            .map(row_to_customer)
            .collect::<Result<Vec<_>>>()?;
        load_for_plugin(self, shop_id, &mut customers, reads)?;
        Ok(customers)
    }

    fn order_snapshot(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderSnapshot>> {
        let Some(row) = self
            .query_opt(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE shop_id = $1 AND external_id = $2"), &[&shop_id, &external_id])?
        else {
            return Ok(None);
        };
        let (id, mut order) = row_to_order(&row)?;
        order.items = self
            .query(
                "SELECT sku, product_name, category, quantity, unit_price, discount FROM order_items
                 WHERE shop_id = $1 AND order_id = $2 ORDER BY line",
                &[&shop_id, &id],
            )?
            .iter()
            .map(|row| row_to_item(row, 0))
            .collect::<Result<_>>()?;
        Ok(Some(order))
    }

    /// (spent, orders, last order) per buyer. Orders follow merges, so their customer is the active one.
    fn buyer_stats(&self, shop_id: i64, since: Option<DateTime<Utc>>) -> Result<Vec<BuyerStats>> {
        let rows = match since {
            None => self.query(
                "SELECT total_spent, order_count, last_order_at FROM customers
                 WHERE shop_id = $1 AND merged_into IS NULL AND order_count > 0",
                &[&shop_id],
            )?,
            Some(since) => self.query(
                "SELECT SUM(amount - refunded_amount)::BIGINT, COUNT(*), MAX(paid_at) FROM orders
                 WHERE shop_id = $1 AND status <> 'refunded' AND paid_at >= $2 GROUP BY customer_id",
                &[&shop_id, &millis(since)],
            )?,
        };
        rows.iter().map(|row| Ok(BuyerStats { spent: get(row, 0)?, orders: get(row, 1)?, last_order: opt_time(get(row, 2)?)? })).collect()
    }

    /// The shop's customer's newest orders paid since `since` (at most [`MAX_HISTORY_ORDERS`])
    /// with their items, in one query; and whether older ones were left out.
    fn recent_orders(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>) -> Result<(Vec<OrderSnapshot>, bool)> {
        let rows = self.query(
            "SELECT o.id, o.external_id, o.customer_id, o.amount, o.refunded_amount, o.status, o.coupon_code, o.paid_at,
                    i.sku, i.product_name, i.category, i.quantity, i.unit_price, i.discount
             FROM (SELECT * FROM orders WHERE shop_id = $4 AND customer_id = $1 AND paid_at >= $2
                   ORDER BY paid_at DESC, id DESC LIMIT $3) o
             LEFT JOIN order_items i ON i.shop_id = o.shop_id AND i.order_id = o.id
             ORDER BY o.paid_at DESC, o.id DESC, i.line",
            &[&customer_id, &millis(since), &(MAX_HISTORY_ORDERS as i64 + 1), &shop_id],
        )?;
        let (mut orders, mut last_id) = (Vec::<OrderSnapshot>::new(), None);
        for row in &rows {
            let (id, order) = row_to_order(row)?;
            if last_id != Some(id) {
                last_id = Some(id);
                orders.push(order);
            }
            // An order without items has one row, with NULL item columns (sku is NOT NULL).
            if get::<Option<String>>(row, 8)?.is_none() {
                continue;
            }
            orders.last_mut().expect("the order was pushed").items.push(row_to_item(row, 8)?);
        }
        let truncated = orders.len() > MAX_HISTORY_ORDERS;
        orders.truncate(MAX_HISTORY_ORDERS);
        Ok((orders, truncated))
    }

    fn recent_behaviours(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>, limit: usize) -> Result<Vec<BehaviourSnapshot>> {
        self.query(
            "SELECT kind, sku, category, occurred_at FROM behaviours
             WHERE shop_id = $4 AND customer_id = $1 AND occurred_at >= $2 ORDER BY occurred_at DESC, id DESC LIMIT $3",
            &[&customer_id, &millis(since), &(limit as i64), &shop_id],
        )?
        .iter()
        .map(|row| Ok(BehaviourSnapshot { kind: get(row, 0)?, sku: get(row, 1)?, category: get(row, 2)?, occurred_at_ms: get(row, 3)? }))
        .collect()
    }

    fn kv_usage(&self, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)> {
        // LENGTH of the text key counts characters, of the value bytes, as on SQLite.
        let row = self.query_one(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0)::BIGINT FROM plugin_kv WHERE shop_id = $1 AND plugin_id = $2",
            &[&shop_id, &plugin_id],
        )?;
        Ok((get::<i64>(&row, 0)? as u64, get::<i64>(&row, 1)? as u64))
    }

    fn logs(&self, shop_id: i64, plugin_id: &str, before: i64, limit: usize) -> Result<Vec<PluginLog>> {
        self.query(
            "SELECT id, level, message, created_at FROM plugin_logs WHERE shop_id = $1 AND plugin_id = $2 AND id < $3
             ORDER BY id DESC LIMIT $4",
            &[&shop_id, &plugin_id, &before, &(limit as i64)],
        )?
        .iter()
        .map(|row| {
            Ok(PluginLog {
                id: get(row, 0)?,
                level: LogLevel::parse(&get::<String>(row, 1)?),
                message: get(row, 2)?,
                created_at: time(get(row, 3)?)?,
            })
        })
        .collect()
    }

    fn calls(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<(i64, Option<String>)>> {
        self.query(
            "SELECT duration_us, error FROM plugin_calls WHERE shop_id = $1 AND plugin_id = $2 ORDER BY id DESC",
            &[&shop_id, &plugin_id],
        )?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
        .collect()
    }
}

/// Enabled subscriptions due a scheduled run at `$1` (ms).
const SCHEDULED_DUE: &str = "FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
     WHERE s.status = 'enabled' AND s.run_every_hours > 0 AND p.kind <> 'channel-connector'
       AND NOT EXISTS (SELECT 1 FROM plugin_runs r WHERE r.shop_id = s.shop_id AND r.plugin_id = s.plugin_id
                       AND (r.status = 'running' OR r.created_at > $1 - s.run_every_hours * 3600000))";

/// Log lines and call records kept per shop and plugin; older ones are dropped.
const KEPT_LOGS: i64 = 1000;
const KEPT_CALLS: i64 = 1000;

impl PluginsWrite for Pg<'_> {
    fn commit_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<bool> {
        let moved = self.execute(
            "UPDATE subscriptions SET cursor = $4, attempts = 0, consecutive_failures = 0, retry_at = NULL, last_error = NULL
             WHERE shop_id = $1 AND plugin_id = $2 AND cursor = $3 AND status = 'enabled'",
            &[&shop_id, &plugin_id, &from, &to],
        )?;
        Ok(moved == 1)
    }

    fn skip_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()> {
        self.execute(
            "UPDATE subscriptions SET cursor = $4 WHERE shop_id = $1 AND plugin_id = $2 AND cursor = $3",
            &[&shop_id, &plugin_id, &from, &to],
        )?;
        Ok(())
    }

    fn set_failure_state(&self, shop_id: i64, plugin_id: &str, state: &FailureState<'_>) -> Result<()> {
        self.execute(
            "UPDATE subscriptions SET cursor = $3, attempts = $4, consecutive_failures = $5, retry_at = $6, last_error = $7,
               status = $8, updated_at = $9
             WHERE shop_id = $1 AND plugin_id = $2",
            &[
                &shop_id,
                &plugin_id,
                &state.cursor,
                &state.attempts,
                &state.consecutive_failures,
                &state.retry_at.map(millis),
                &state.last_error,
                &if state.tripped { "tripped" } else { "enabled" },
                &millis(state.at),
            ],
        )?;
        Ok(())
    }

    /// Keep the log lines and the call record of an attempt (shared by deliveries, runs and
    /// connectors' sends), dropping the oldest beyond what is kept.
    fn record_attempt(&self, a: &Attempt<'_>, error: Option<&str>) -> Result<()> {
        let now = millis(a.now);
        for line in a.logs {
            self.execute(
                "INSERT INTO plugin_logs (shop_id, plugin_id, level, message, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&a.shop_id, &a.plugin_id, &line.level.as_str(), &line.message, &now],
            )?;
        }
        self.execute(
            "INSERT INTO plugin_calls (shop_id, plugin_id, duration_us, error, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&a.shop_id, &a.plugin_id, &(a.duration.as_micros() as i64), &error, &now],
        )?;
        for (table, kept) in [("plugin_logs", KEPT_LOGS), ("plugin_calls", KEPT_CALLS)] {
            self.execute(
                &format!(
                    "DELETE FROM {table} WHERE shop_id = $1 AND plugin_id = $2 AND id <=
                       (SELECT id FROM {table} WHERE shop_id = $1 AND plugin_id = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)"
                ),
                &[&a.shop_id, &a.plugin_id, &kept],
            )?;
        }
        Ok(())
    }

    fn log(&self, shop_id: i64, plugin_id: &str, level: LogLevel, message: &str, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO plugin_logs (shop_id, plugin_id, level, message, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&shop_id, &plugin_id, &level.as_str(), &message, &millis(at)],
        )?;
        Ok(())
    }

    fn put_kv(&self, shop_id: i64, plugin_id: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(value) => self.execute(
                "INSERT INTO plugin_kv (shop_id, plugin_id, key, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (shop_id, plugin_id, key) DO UPDATE SET value = EXCLUDED.value",
                &[&shop_id, &plugin_id, &key, &value],
            )?,
            None => {
                self.execute("DELETE FROM plugin_kv WHERE shop_id = $1 AND plugin_id = $2 AND key = $3", &[&shop_id, &plugin_id, &key])?
            }
        };
        Ok(())
    }

    fn add_dead_letter(&self, l: &NewDeadLetter<'_>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO dead_letters (shop_id, plugin_id, version, first_seq, last_seq, attempts, error, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[&l.shop_id, &l.plugin_id, &l.version, &l.first_seq, &l.last_seq, &l.attempts, &l.error, &millis(l.at)],
        )?;
        get(&row, 0)
    }

    fn mark_redriven(&self, shop_id: i64, plugin_id: &str, id: i64, at: DateTime<Utc>) -> Result<bool> {
        let marked = self.execute(
            "UPDATE dead_letters SET redriven_at = $4, attempts = attempts + 1
             WHERE shop_id = $2 AND id = $1 AND plugin_id = $3 AND redriven_at IS NULL",
            &[&id, &shop_id, &plugin_id, &millis(at)],
        )?;
        Ok(marked == 1)
    }

    fn redrive_failed(&self, shop_id: i64, id: i64, error: &str) -> Result<()> {
        self.execute(
            "UPDATE dead_letters SET attempts = attempts + 1, error = $2 WHERE shop_id = $3 AND id = $1",
            &[&id, &error, &shop_id],
        )?;
        Ok(())
    }

    fn advance_run(
        &self,
        shop_id: i64,
        run_id: i64,
        from: i64,
        to: i64,
        processed: i64,
        finished: bool,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let moved = self.execute(
            "UPDATE plugin_runs SET checkpoint = $3, done = done + $4, attempts = 0, retry_at = NULL, updated_at = $5,
               status = CASE WHEN $6 THEN 'done' ELSE status END, finished_at = CASE WHEN $6 THEN $5::BIGINT ELSE NULL END
             WHERE shop_id = $7 AND id = $1 AND checkpoint = $2 AND status = 'running'",
            &[&run_id, &from, &to, &processed, &millis(at), &finished, &shop_id],
        )?;
        Ok(moved == 1)
    }

    fn run_failed(
        &self,
        shop_id: i64,
        run_id: i64,
        attempts: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        failed: bool,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "UPDATE plugin_runs SET attempts = $2, error = $3, retry_at = $4, updated_at = $5,
               status = CASE WHEN $6 THEN 'failed' ELSE status END, finished_at = CASE WHEN $6 THEN $5::BIGINT ELSE NULL END
             WHERE shop_id = $7 AND id = $1",
            &[&run_id, &attempts, &error, &millis(retry_at), &millis(at), &failed, &shop_id],
        )?;
        Ok(())
    }

    fn put_blob(&self, sha256: &str, wasm: &[u8]) -> Result<()> {
        self.execute("INSERT INTO plugin_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING", &[&sha256, &wasm])?;
        Ok(())
    }

    fn insert_plugin(&self, manifest: &Manifest, sha256: &str, size: i64, at: DateTime<Utc>, installed_by: &str) -> Result<()> {
        let manifest_json = serde_json::to_string(manifest).map_err(anyhow::Error::from)?;
        self.execute(
            "INSERT INTO plugins (id, version, kind, api_version, manifest, sha256, size, installed_at, installed_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &manifest.id,
                &manifest.version.to_string(),
                &manifest.kind.as_str(),
                &manifest.api_version.to_string(),
                &manifest_json,
                &sha256,
                &size,
                &millis(at),
                &installed_by,
            ],
        )?;
        Ok(())
    }

    fn update_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, at: DateTime<Utc>) -> Result<bool> {
        let PutSubscription { plugin_id, version_req, version, config, grant, run_every_hours, .. } = *put;
        let grant_json = serde_json::to_string(grant).map_err(anyhow::Error::from)?;
        let changed = self.execute(
            "UPDATE subscriptions SET version_req = $3, version = $4, config = $5, grant_json = $6, status = 'enabled',
               attempts = 0, consecutive_failures = 0, retry_at = NULL, last_error = NULL, updated_at = $7, run_every_hours = $8
             WHERE shop_id = $1 AND plugin_id = $2",
            &[&shop_id, &plugin_id, &version_req, &version, &config.to_string(), &grant_json, &millis(at), &run_every_hours.map(i64::from)],
        )?;
        Ok(changed != 0)
    }

    fn insert_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, cursor: i64, at: DateTime<Utc>) -> Result<()> {
        let PutSubscription { plugin_id, version_req, version, config, grant, run_every_hours, .. } = *put;
        let grant_json = serde_json::to_string(grant).map_err(anyhow::Error::from)?;
        self.execute(
            "INSERT INTO subscriptions (shop_id, plugin_id, version_req, version, config, grant_json, status, cursor, created_at,
               updated_at, run_every_hours)
             VALUES ($1, $2, $3, $4, $5, $6, 'enabled', $7, $8, $8, $9)",
            &[
                &shop_id,
                &plugin_id,
                &version_req,
                &version,
                &config.to_string(),
                &grant_json,
                &cursor,
                &millis(at),
                &run_every_hours.map(i64::from),
            ],
        )?;
        Ok(())
    }

    fn disable_subscription(&self, shop_id: i64, plugin_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE subscriptions SET status = 'disabled', retry_at = NULL, updated_at = $3 WHERE shop_id = $1 AND plugin_id = $2",
            &[&shop_id, &plugin_id, &millis(at)],
        )?;
        Ok(changed != 0)
    }

    fn insert_run(&self, shop_id: i64, plugin_id: &str, total: i64, at: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at) VALUES ($1, $2, 'running', $3, $4, $4)
             RETURNING id",
            &[&shop_id, &plugin_id, &total, &millis(at)],
        )?;
        get(&row, 0)
    }

    fn resume_run(&self, shop_id: i64, run_id: i64) -> Result<()> {
        self.execute(
            "UPDATE plugin_runs SET status = 'running', attempts = 0, retry_at = NULL, error = NULL, finished_at = NULL
             WHERE shop_id = $2 AND id = $1",
            &[&run_id, &shop_id],
        )?;
        Ok(())
    }

    fn start_scheduled_runs(&self, now: DateTime<Utc>) -> Result<usize> {
        let started = self.execute(
            &format!(
                "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at)
                 SELECT s.shop_id, s.plugin_id, 'running',
                        (SELECT COUNT(*) FROM customers c WHERE c.shop_id = s.shop_id AND c.merged_into IS NULL), $1, $1 {SCHEDULED_DUE}"
            ),
            &[&millis(now)],
        )?;
        Ok(started as usize)
    }
}

/// The plugin's models: its id, and `<id>.<facet>` (ids hold no `.`; `/` sorts after `.`,
/// text compares bytewise under COLLATE "C").
const OF_PLUGIN: &str = "shop_id = $1 AND (model = $2 OR (model >= $2 || '.' AND model < $2 || '/')) AND scored_at < $3";

impl ScoresWrite for Pg<'_> {
    fn upsert(&self, s: &ScoreWrite<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (shop_id, customer_id, model) DO UPDATE SET value = EXCLUDED.value, label = EXCLUDED.label,
               explanation = EXCLUDED.explanation, scored_at = EXCLUDED.scored_at",
            &[&s.customer_id, &s.model, &s.shop_id, &s.value, &s.label, &s.explanation, &millis(s.at)],
        )?;
        Ok(())
    }

    fn value(&self, shop_id: i64, customer_id: i64, model: &str) -> Result<Option<f64>> {
        self.query_opt(
            "SELECT value FROM scores WHERE shop_id = $3 AND customer_id = $1 AND model = $2",
            &[&customer_id, &model, &shop_id],
        )?
        .map(|row| get(&row, 0))
        .transpose()
    }

    fn delete_older(&self, shop_id: i64, plugin_id: &str, before: DateTime<Utc>) -> Result<DeletedScores> {
        let rows = self.query(
            &format!("DELETE FROM scores WHERE {OF_PLUGIN} RETURNING customer_id, model"),
            &[&shop_id, &plugin_id, &millis(before)],
        )?;
        let mut deleted = DeletedScores::default();
        for row in &rows {
            deleted.customers.insert(get(row, 0)?);
            deleted.models.insert(get(row, 1)?);
        }
        Ok(deleted)
    }
}

impl TiersWrite for Pg<'_> {
    fn tier(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>> {
        // No row (the customer is not the shop's) reads as no tier, as on SQLite.
        let row = self.query_opt("SELECT tier FROM customers WHERE shop_id = $2 AND id = $1", &[&customer_id, &shop_id])?;
        Ok(row.map(|row| get::<Option<String>>(&row, 0)).transpose()?.flatten())
    }

    fn change(&self, c: &TierChange<'_>) -> Result<()> {
        self.execute("UPDATE customers SET tier = $2 WHERE shop_id = $3 AND id = $1", &[&c.customer_id, &c.to, &c.shop_id])?;
        self.execute(
            "INSERT INTO tier_history (shop_id, customer_id, from_tier, to_tier, reason, source, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&c.shop_id, &c.customer_id, &c.from, &c.to, &c.reason, &c.source, &millis(c.at)],
        )?;
        Ok(())
    }
}

impl SegmentMarks for Pg<'_> {
    fn customer_changed(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        // As SQLite's triggers did before its migration 14: only in a shop with segments.
        self.execute(
            "INSERT INTO segment_dirty (shop_id, customer_id) SELECT $1::BIGINT, $2::BIGINT
             WHERE EXISTS (SELECT 1 FROM segments WHERE shop_id = $1 AND deleted_at IS NULL)
             ON CONFLICT (shop_id, customer_id) DO NOTHING",
            &[&shop_id, &customer_id],
        )?;
        Ok(())
    }

    /// After a write changed scores of `models` in the shop, mark the segments that rank
    /// customers by one of them (directly or through a referenced segment) for a sweep, which
    /// re-evaluates them whole: a customer's rank moves with everyone else's score, which the
    /// per-customer marks of `segment_dirty` cannot follow. A segment not swept for
    /// `kith_core::segments::RANK_SWEEP_GAP` is swept on the next pass; one swept since waits
    /// for the gap to pass.
    ///
    /// A mark is `swept_at` negated (the last sweep's time, below zero), one lower at each
    /// further mark: a sweep that read the segment before a mark sees that it changed and
    /// leaves it marked.
    fn ranks_moved(&self, shop_id: i64, models: &BTreeSet<String>, _at: DateTime<Utc>) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        // Most shops rank by nothing: one look at the definitions' text before parsing them.
        let row = self.query_one(
            "SELECT EXISTS (SELECT 1 FROM segments s
               JOIN segment_versions v ON v.shop_id = s.shop_id AND v.segment_id = s.id AND v.version = s.version
               WHERE s.shop_id = $1 AND s.deleted_at IS NULL AND strpos(v.definition, '_percent') > 0)",
            &[&shop_id],
        )?;
        if !get::<bool>(&row, 0)? {
            return Ok(());
        }
        for segment in SegmentsRead::live(self, shop_id)? {
            // What it ranks by, its references followed; a definition the segments refuse
            // (a reference gone, a cycle, too deep) ranks nothing, as SQLite's compiler skips it.
            let ranked = match SegmentsRead::dependence(self, shop_id, &segment.node, Some(segment.id)) {
                Ok(dependence) => dependence.ranked,
                Err(kith_core::Error::Invalid(_)) => continue,
                Err(e) => return Err(e),
            };
            if ranked.iter().any(|m| models.contains(m)) {
                self.execute(
                    "UPDATE segments SET swept_at = CASE WHEN swept_at < 0 THEN swept_at - 1 ELSE -COALESCE(swept_at, 0) - 1 END
                     WHERE shop_id = $1 AND id = $2",
                    &[&shop_id, &segment.id],
                )?;
            }
        }
        Ok(())
    }
}
