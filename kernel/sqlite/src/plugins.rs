//! The plugin catalogue, shops' subscriptions and their cursors, runs, dead letters, logs
//! and calls on SQLite: the statements behind the plugins' port (`ports::plugins`); the
//! rules are the core's (`kith_core::plugins`, `kith_core::delivery`).

use chrono::{DateTime, Utc};
use kith_core::plugins::{BuyerStats, Due, PutSubscription};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, DeadLetter, EventSnapshot, InstalledPlugin, Kind, LogLevel, MAX_HISTORY_ORDERS, Manifest, OrderItemSnapshot,
    OrderSnapshot, Part, PluginLog, PluginRun, PluginRunStatus, Reads, Subscription, SubscriptionStatus,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::customers::{CUSTOMER_COLUMNS, CUSTOMER_COLUMNS_NO_POINTS, load_for_plugin, row_to_customer};
use crate::{Result, StoreError, from_ms, json_text, parse_json, to_ms};

fn row_to_installed(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstalledPlugin> {
    let manifest: String = r.get(0)?;
    let manifest: Manifest = serde_json::from_str(&manifest)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(InstalledPlugin { manifest, sha256: r.get(1)?, size: r.get(2)?, installed_at: from_ms(r.get(3)?) })
}

const SUBSCRIPTION_COLUMNS: &str = "s.shop_id, s.plugin_id, p.kind, s.version_req, s.version, s.config, s.grant_json, s.status, s.cursor, \
     s.attempts, s.consecutive_failures, s.retry_at, s.last_error, s.created_at, s.updated_at, s.run_every_hours";

fn row_to_subscription(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    let kind: String = r.get(2)?;
    let grant: String = r.get(6)?;
    Ok(Subscription {
        shop_id: r.get(0)?,
        plugin_id: r.get(1)?,
        kind: kind.parse().unwrap_or(Kind::TagRule),
        version_req: r.get(3)?,
        version: r.get(4)?,
        config: parse_json(&r.get::<_, String>(5)?),
        grant: serde_json::from_str(&grant).unwrap_or_default(),
        status: SubscriptionStatus::parse(&r.get::<_, String>(7)?),
        cursor: r.get(8)?,
        attempts: r.get(9)?,
        consecutive_failures: r.get(10)?,
        retry_at: r.get::<_, Option<i64>>(11)?.map(from_ms),
        last_error: r.get(12)?,
        created_at: from_ms(r.get(13)?),
        updated_at: from_ms(r.get(14)?),
        run_every_hours: r.get(15)?,
    })
}

pub(crate) fn load_subscription(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<Subscription> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
         WHERE s.shop_id = ?1 AND s.plugin_id = ?2"
    ))?
    .query_row(params![shop_id, plugin_id], row_to_subscription)
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("plugin {plugin_id} in this shop")))
}

fn row_to_dead_letter(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        plugin_id: r.get(1)?,
        version: r.get(2)?,
        first_seq: r.get(3)?,
        last_seq: r.get(4)?,
        attempts: r.get(5)?,
        error: r.get(6)?,
        created_at: from_ms(r.get(7)?),
        redriven_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
    })
}

const DEAD_LETTER_COLUMNS: &str = "id, plugin_id, version, first_seq, last_seq, attempts, error, created_at, redriven_at";

pub(crate) fn load_dead_letter(conn: &Connection, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter> {
    conn.prepare_cached(&format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?1 AND shop_id = ?2 AND plugin_id = ?3"))?
        .query_row(params![id, shop_id, plugin_id], row_to_dead_letter)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("dead letter {id}")))
}

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<PluginRun> {
    let status = match r.get::<_, String>(2)?.as_str() {
        "running" => PluginRunStatus::Running,
        "done" => PluginRunStatus::Done,
        _ => PluginRunStatus::Failed,
    };
    Ok(PluginRun {
        id: r.get(0)?,
        plugin_id: r.get(1)?,
        status,
        total: r.get(3)?,
        done: r.get(4)?,
        checkpoint: r.get(5)?,
        attempts: r.get(6)?,
        error: r.get(7)?,
        created_at: from_ms(r.get(8)?),
        updated_at: from_ms(r.get(9)?),
        finished_at: r.get::<_, Option<i64>>(10)?.map(from_ms),
    })
}

const RUN_COLUMNS: &str = "id, plugin_id, status, total, done, checkpoint, attempts, error, created_at, updated_at, finished_at";

pub(crate) fn load_run(conn: &Connection, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM plugin_runs WHERE id = ?1 AND shop_id = ?2 AND plugin_id = ?3"))?
        .query_row(params![run_id, shop_id, plugin_id], row_to_run)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))
}

/// The customer columns a plugin that reads `reads` needs: the points
/// balance is a sum over the ledger, left out when not read.
fn plugin_columns(reads: Reads) -> &'static str {
    if reads.has(Part::Points) { CUSTOMER_COLUMNS } else { CUSTOMER_COLUMNS_NO_POINTS }
}

/// Columns of an order row for [`row_to_order`].
const ORDER_COLUMNS: &str = "id, external_id, customer_id, amount, refunded_amount, status, coupon_code, paid_at";

/// An order's row id and its snapshot, without items.
fn row_to_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, OrderSnapshot)> {
    Ok((
        r.get(0)?,
        OrderSnapshot {
            external_id: r.get(1)?,
            customer_id: r.get(2)?,
            amount: r.get(3)?,
            refunded_amount: r.get(4)?,
            status: r.get(5)?,
            coupon_code: r.get(6)?,
            paid_at_ms: r.get(7)?,
            items: Vec::new(),
        },
    ))
}

/// The shop's customer's newest orders paid since `since_ms` (at most
/// [`MAX_HISTORY_ORDERS`]) with their items, in one query; and whether older ones were left out.
/// The items (no shop of their own) are those of the shop's orders the query found.
pub(crate) fn recent_orders(conn: &Connection, shop_id: i64, customer_id: i64, since_ms: i64) -> Result<(Vec<OrderSnapshot>, bool)> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.external_id, o.customer_id, o.amount, o.refunded_amount, o.status, o.coupon_code, o.paid_at,
                i.sku, i.product_name, i.category, i.quantity, i.unit_price, i.discount
         FROM (SELECT * FROM orders WHERE customer_id = ?1 AND shop_id = ?4 AND paid_at >= ?2 ORDER BY paid_at DESC, id DESC LIMIT ?3) o
         LEFT JOIN order_items i ON i.order_id = o.id
         ORDER BY o.paid_at DESC, o.id DESC, i.line",
    )?;
    let mut rows = stmt.query(params![customer_id, since_ms, MAX_HISTORY_ORDERS as i64 + 1, shop_id])?;
    let (mut orders, mut last_id) = (Vec::<OrderSnapshot>::new(), None);
    while let Some(r) = rows.next()? {
        let (id, order) = row_to_order(r)?;
        if last_id != Some(id) {
            last_id = Some(id);
            orders.push(order);
        }
        // An order without items has one row, with NULL item columns.
        if r.get_ref(8)?.data_type() == rusqlite::types::Type::Null {
            continue;
        }
        orders.last_mut().expect("the order was pushed").items.push(row_to_item(r, 8)?);
    }
    let truncated = orders.len() > MAX_HISTORY_ORDERS;
    orders.truncate(MAX_HISTORY_ORDERS);
    Ok((orders, truncated))
}

/// An order item from the columns `sku, product_name, category, quantity,
/// unit_price, discount` starting at column `at`.
fn row_to_item(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<OrderItemSnapshot> {
    Ok(OrderItemSnapshot {
        sku: r.get(at)?,
        name: r.get(at + 1)?,
        category: r.get(at + 2)?,
        quantity: r.get::<_, i64>(at + 3)?.clamp(0, i64::from(u32::MAX)) as u32,
        unit_price: r.get(at + 4)?,
        discount: r.get(at + 5)?,
    })
}

/// The items of the shop's order (`order_items` has no shop: its order's is filtered).
fn order_items(conn: &Connection, shop_id: i64, order_id: i64) -> Result<Vec<OrderItemSnapshot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.sku, i.product_name, i.category, i.quantity, i.unit_price, i.discount
         FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE i.order_id = ?1 AND o.shop_id = ?2 ORDER BY i.line",
    )?;
    let items = stmt.query_map([order_id, shop_id], |r| row_to_item(r, 0))?;
    Ok(items.collect::<rusqlite::Result<Vec<_>>>()?)
}

// The statements behind the plugins' port ([`crate::ports`]), as the store ran them.

pub(crate) fn installed_sha256(conn: &Connection, plugin_id: &str, version: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT sha256 FROM plugins WHERE id = ?1 AND version = ?2")?
        .query_row(params![plugin_id, version], |r| r.get(0))
        .optional()?)
}

pub(crate) fn put_blob(tx: &Connection, sha256: &str, wasm: &[u8]) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO plugin_blobs (sha256, bytes) VALUES (?1, ?2)")?.execute(params![sha256, wasm])?;
    Ok(())
}

pub(crate) fn insert_plugin(
    tx: &Connection,
    manifest: &Manifest,
    sha256: &str,
    size: i64,
    at: DateTime<Utc>,
    installed_by: &str,
) -> Result<()> {
    let manifest_json = serde_json::to_string(manifest).map_err(anyhow::Error::from)?;
    tx.prepare_cached(
        "INSERT INTO plugins (id, version, kind, api_version, manifest, sha256, size, installed_at, installed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        manifest.id,
        manifest.version.to_string(),
        manifest.kind.as_str(),
        manifest.api_version.to_string(),
        manifest_json,
        sha256,
        size,
        to_ms(at),
        installed_by
    ])?;
    Ok(())
}

pub(crate) fn installed(conn: &Connection, plugin_id: &str, version: &str) -> Result<Option<InstalledPlugin>> {
    Ok(conn
        .prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins WHERE id = ?1 AND version = ?2")?
        .query_row(params![plugin_id, version], row_to_installed)
        .optional()?)
}

pub(crate) fn catalogue(conn: &Connection) -> Result<Vec<InstalledPlugin>> {
    let mut stmt = conn.prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins")?;
    Ok(stmt.query_map([], row_to_installed)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn versions(conn: &Connection, plugin_id: &str) -> Result<Vec<InstalledPlugin>> {
    let mut stmt = conn.prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins WHERE id = ?1")?;
    Ok(stmt.query_map([plugin_id], row_to_installed)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn wasm(conn: &Connection, sha256: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn.prepare_cached("SELECT bytes FROM plugin_blobs WHERE sha256 = ?1")?.query_row([sha256], |r| r.get(0)).optional()?)
}

pub(crate) fn update_subscription(tx: &Connection, shop_id: i64, put: &PutSubscription<'_>, at: DateTime<Utc>) -> Result<bool> {
    let PutSubscription { plugin_id, version_req, version, config, grant, run_every_hours, .. } = *put;
    let grant_json = serde_json::to_string(grant).map_err(anyhow::Error::from)?;
    let changed = tx
        .prepare_cached(
            "UPDATE subscriptions SET version_req = ?3, version = ?4, config = ?5, grant_json = ?6, status = 'enabled',
               attempts = 0, consecutive_failures = 0, retry_at = NULL, last_error = NULL, updated_at = ?7, run_every_hours = ?8
             WHERE shop_id = ?1 AND plugin_id = ?2",
        )?
        .execute(params![shop_id, plugin_id, version_req, version, json_text(config), grant_json, to_ms(at), run_every_hours])?;
    Ok(changed != 0)
}

pub(crate) fn insert_subscription(tx: &Connection, shop_id: i64, put: &PutSubscription<'_>, cursor: i64, at: DateTime<Utc>) -> Result<()> {
    let PutSubscription { plugin_id, version_req, version, config, grant, run_every_hours, .. } = *put;
    let grant_json = serde_json::to_string(grant).map_err(anyhow::Error::from)?;
    tx.prepare_cached(
        "INSERT INTO subscriptions (shop_id, plugin_id, version_req, version, config, grant_json, status, cursor, created_at, updated_at,
           run_every_hours)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'enabled', ?7, ?8, ?8, ?9)",
    )?
    .execute(params![shop_id, plugin_id, version_req, version, json_text(config), grant_json, cursor, to_ms(at), run_every_hours])?;
    Ok(())
}

pub(crate) fn disable_subscription(tx: &Connection, shop_id: i64, plugin_id: &str, at: DateTime<Utc>) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE subscriptions SET status = 'disabled', retry_at = NULL, updated_at = ?3 WHERE shop_id = ?1 AND plugin_id = ?2",
        )?
        .execute(params![shop_id, plugin_id, to_ms(at)])?;
    Ok(changed != 0)
}

pub(crate) fn subscriptions(conn: &Connection, shop_id: i64) -> Result<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
         WHERE s.shop_id = ?1 ORDER BY s.plugin_id"
    ))?;
    Ok(stmt.query_map([shop_id], row_to_subscription)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn due_subscriptions(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.shop_id, s.plugin_id FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
         WHERE s.status = 'enabled' AND p.kind != 'channel-connector' AND (s.retry_at IS NULL OR s.retry_at <= ?1)
           AND EXISTS (SELECT 1 FROM events e WHERE e.shop_id = s.shop_id AND e.seq > s.cursor)
         ORDER BY s.updated_at",
    )?;
    let rows = stmt.query_map([to_ms(now)], |r| Ok(Due { shop_id: r.get(0)?, plugin_id: r.get(1)? }))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The events of a delivery (see `PluginService::events_for`); `types` `None`: every type.
pub(crate) fn events(
    conn: &Connection,
    shop_id: i64,
    plugin_id: &str,
    types: Option<&[String]>,
    after: i64,
    end: i64,
    limit: usize,
) -> Result<Vec<EventSnapshot>> {
    let every_type = types.is_none();
    let types = serde_json::to_string(types.unwrap_or_default()).expect("strings are JSON");
    // Payloads go to plugins as the text the log holds; only the order id is read out of them.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, type, customer_id, payload, created_at,
                CASE WHEN json_type(payload, '$.order_id') = 'text' THEN json_extract(payload, '$.order_id') END
         FROM events
         WHERE shop_id = ?1 AND seq > ?2 AND seq <= ?3 AND customer_id IS NOT NULL
           AND (source IS NULL OR source != ?4) AND (?5 OR type IN (SELECT value FROM json_each(?6)))
         ORDER BY seq LIMIT ?7",
    )?;
    let taken = stmt
        .query_map(params![shop_id, after, end, plugin_id, every_type, types, limit as i64], |r| {
            Ok(EventSnapshot {
                seq: r.get(0)?,
                kind: r.get(1)?,
                customer_id: r.get(2)?,
                payload: r.get(3)?,
                created_at_ms: r.get(4)?,
                order_id: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(taken)
}

pub(crate) fn dead_letters(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 1000"
    ))?;
    Ok(stmt.query_map(params![shop_id, plugin_id], row_to_dead_letter)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn running_run(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM plugin_runs WHERE shop_id = ?1 AND plugin_id = ?2 AND status = 'running'")?
        .query_row(params![shop_id, plugin_id], |r| r.get(0))
        .optional()?)
}

pub(crate) fn active_customer_count(conn: &Connection, shop_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL")?
        .query_row([shop_id], |r| r.get(0))?)
}

pub(crate) fn insert_run(tx: &Connection, shop_id: i64, plugin_id: &str, total: i64, at: DateTime<Utc>) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at) VALUES (?1, ?2, 'running', ?3, ?4, ?4)",
    )?
    .execute(params![shop_id, plugin_id, total, to_ms(at)])?;
    Ok(tx.last_insert_rowid())
}

/// Enabled subscriptions due a scheduled run at `?1` (ms).
const SCHEDULED_DUE: &str = "FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
     WHERE s.status = 'enabled' AND s.run_every_hours > 0 AND p.kind != 'channel-connector'
       AND NOT EXISTS (SELECT 1 FROM plugin_runs r WHERE r.shop_id = s.shop_id AND r.plugin_id = s.plugin_id
                       AND (r.status = 'running' OR r.created_at > ?1 - s.run_every_hours * 3600000))";

pub(crate) fn scheduled_runs_due(conn: &Connection, now: DateTime<Utc>) -> Result<i64> {
    Ok(conn.prepare_cached(&format!("SELECT COUNT(*) {SCHEDULED_DUE}"))?.query_row([to_ms(now)], |r| r.get(0))?)
}

pub(crate) fn start_scheduled_runs(tx: &Connection, now: DateTime<Utc>) -> Result<usize> {
    let started = tx
        .prepare_cached(&format!(
            "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at)
             SELECT s.shop_id, s.plugin_id, 'running',
                    (SELECT COUNT(*) FROM customers c WHERE c.shop_id = s.shop_id AND c.merged_into IS NULL), ?1, ?1 {SCHEDULED_DUE}"
        ))?
        .execute([to_ms(now)])?;
    Ok(started)
}

pub(crate) fn resume_run(tx: &Connection, shop_id: i64, run_id: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE plugin_runs SET status = 'running', attempts = 0, retry_at = NULL, error = NULL, finished_at = NULL
         WHERE id = ?1 AND shop_id = ?2",
    )?
    .execute([run_id, shop_id])?;
    Ok(())
}

pub(crate) fn runs(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM plugin_runs WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 100"
    ))?;
    Ok(stmt.query_map(params![shop_id, plugin_id], row_to_run)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn due_plugin_runs(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.shop_id, r.plugin_id, r.id FROM plugin_runs r
         JOIN subscriptions s ON s.shop_id = r.shop_id AND s.plugin_id = r.plugin_id
         WHERE r.status = 'running' AND s.status = 'enabled' AND (r.retry_at IS NULL OR r.retry_at <= ?1) ORDER BY r.id",
    )?;
    Ok(stmt.query_map([to_ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn customer_batch(conn: &Connection, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM customers c WHERE c.shop_id = ?1 AND c.merged_into IS NULL AND c.id > ?2 ORDER BY c.id LIMIT ?3",
        plugin_columns(reads)
    ))?;
    let mut customers = stmt.query_map(params![shop_id, after, limit as i64], row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load_for_plugin(conn, shop_id, &mut customers, reads)?;
    Ok(customers)
}

/// Active customers of the shop among `ids`, read together, as a plugin that reads `reads` sees them.
pub(crate) fn plugin_customers(conn: &Connection, shop_id: i64, ids: &[i64], reads: Reads) -> Result<Vec<Customer>> {
    let wanted = serde_json::to_string(ids).expect("ids are JSON");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM customers c WHERE c.id IN (SELECT value FROM json_each(?1)) AND c.shop_id = ?2 AND c.merged_into IS NULL",
        plugin_columns(reads)
    ))?;
    let mut customers = stmt.query_map(params![wanted, shop_id], row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load_for_plugin(conn, shop_id, &mut customers, reads)?;
    Ok(customers)
}

pub(crate) fn order_snapshot(conn: &Connection, shop_id: i64, external_id: &str) -> Result<Option<OrderSnapshot>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE shop_id = ?1 AND external_id = ?2"))?;
    let Some((id, mut order)) = stmt.query_row(params![shop_id, external_id], row_to_order).optional()? else { return Ok(None) };
    order.items = order_items(conn, shop_id, id)?;
    Ok(Some(order))
}

/// (spent, orders, last order) per buyer. Orders follow merges, so their customer is the active one.
pub(crate) fn buyer_stats(conn: &Connection, shop_id: i64, since: Option<DateTime<Utc>>) -> Result<Vec<BuyerStats>> {
    let mut stmt = match since {
        None => conn.prepare_cached(
            "SELECT total_spent, order_count, last_order_at FROM customers
             WHERE shop_id = ?1 AND merged_into IS NULL AND order_count > 0 AND ?2 IS NULL",
        )?,
        Some(_) => conn.prepare_cached(
            "SELECT SUM(amount - refunded_amount), COUNT(*), MAX(paid_at) FROM orders
             WHERE shop_id = ?1 AND status != 'refunded' AND paid_at >= ?2 GROUP BY customer_id",
        )?,
    };
    let rows = stmt.query_map(params![shop_id, since.map(to_ms)], |r| {
        Ok(BuyerStats { spent: r.get(0)?, orders: r.get(1)?, last_order: r.get::<_, Option<i64>>(2)?.map(from_ms) })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn recent_behaviours(
    conn: &Connection,
    shop_id: i64,
    customer_id: i64,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<BehaviourSnapshot>> {
    Ok(conn
        .prepare_cached(
            "SELECT kind, sku, category, occurred_at FROM behaviours
             WHERE customer_id = ?1 AND shop_id = ?4 AND occurred_at >= ?2 ORDER BY occurred_at DESC, id DESC LIMIT ?3",
        )?
        .query_map(params![customer_id, since_ms, limit as i64, shop_id], |r| {
            Ok(BehaviourSnapshot { kind: r.get(0)?, sku: r.get(1)?, category: r.get(2)?, occurred_at_ms: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn kv_usage(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM plugin_kv WHERE shop_id = ?1 AND plugin_id = ?2",
        )?
        .query_row(params![shop_id, plugin_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?)
}

pub(crate) fn logs(conn: &Connection, shop_id: i64, plugin_id: &str, before: i64, limit: usize) -> Result<Vec<PluginLog>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, level, message, created_at FROM plugin_logs WHERE shop_id = ?1 AND plugin_id = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![shop_id, plugin_id, before, limit as i64], |r| {
        Ok(PluginLog { id: r.get(0)?, level: LogLevel::parse(&r.get::<_, String>(1)?), message: r.get(2)?, created_at: from_ms(r.get(3)?) })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn calls(conn: &Connection, shop_id: i64, plugin_id: &str) -> Result<Vec<(i64, Option<String>)>> {
    let mut stmt =
        conn.prepare_cached("SELECT duration_us, error FROM plugin_calls WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC")?;
    Ok(stmt
        .query_map(params![shop_id, plugin_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}
