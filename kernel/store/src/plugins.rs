//! The plugin catalogue, shops' subscriptions and their cursors, and the
//! transactions that apply a delivery: a plugin's decisions, its key-value
//! writes and the cursor move commit together or not at all.

use kith_core::prelude::*;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, CallStats, DeadLetter, Distribution, EventSnapshot, Grant, History, InstalledPlugin, Kind, LogLevel,
    MAX_HISTORY_BEHAVIOURS, MAX_HISTORY_ORDERS, Manifest, OrderItemSnapshot, OrderSnapshot, Part, PluginLog, PluginRun, PluginRunStatus,
    Reads, ShopContext, Subscription, SubscriptionStatus,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::customers::active_customer;
use crate::customers::{CUSTOMER_COLUMNS, CUSTOMER_COLUMNS_NO_POINTS, load_for_plugin, row_to_customer};
use crate::{Actor, Result, Store, StoreError, audit, events, from_ms, json_text, messages, parse_json, to_ms};
use kith_core::delivery::{self, Attempt, Effects, FailureOutcome, FailurePolicy, PluginRunStep};

/// How a plugin is enabled in a shop.
#[derive(Debug, Clone, Copy)]
pub struct PutSubscription<'a> {
    pub plugin_id: &'a str,
    /// The requirement the merchant gave.
    pub version_req: &'a str,
    /// The installed version it resolved to.
    pub version: &'a str,
    pub config: &'a Value,
    pub grant: &'a Grant,
    pub run_every_hours: Option<u32>,
    /// The channel a connector sends; the shop's route for it points here.
    pub channel: Option<&'a str>,
}

/// A subscription ready for a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub shop_id: i64,
    pub plugin_id: String,
}

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

/// Sequence numbers one delivery looks at, at most.
const DELIVERY_SCAN: i64 = 100_000;

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

/// A customer's newest orders paid since `since_ms` (at most
/// [`MAX_HISTORY_ORDERS`]) with their items, in one query; and whether older ones were left out.
fn recent_orders(conn: &Connection, customer_id: i64, since_ms: i64) -> Result<(Vec<OrderSnapshot>, bool)> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.external_id, o.customer_id, o.amount, o.refunded_amount, o.status, o.coupon_code, o.paid_at,
                i.sku, i.product_name, i.category, i.quantity, i.unit_price, i.discount
         FROM (SELECT * FROM orders WHERE customer_id = ?1 AND paid_at >= ?2 ORDER BY paid_at DESC, id DESC LIMIT ?3) o
         LEFT JOIN order_items i ON i.order_id = o.id
         ORDER BY o.paid_at DESC, o.id DESC, i.line",
    )?;
    let mut rows = stmt.query(params![customer_id, since_ms, MAX_HISTORY_ORDERS as i64 + 1])?;
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

fn order_items(conn: &Connection, order_id: i64) -> Result<Vec<OrderItemSnapshot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sku, product_name, category, quantity, unit_price, discount FROM order_items WHERE order_id = ?1 ORDER BY line",
    )?;
    let items = stmt.query_map([order_id], |r| row_to_item(r, 0))?;
    Ok(items.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn distribution(mut values: Vec<f64>) -> Distribution {
    if values.is_empty() {
        return Distribution::default();
    }
    values.sort_by(f64::total_cmp);
    let average = values.iter().sum::<f64>() / values.len() as f64;
    // Nearest-rank percentiles.
    let rank = |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Distribution { average, quintiles: vec![rank(0.2), rank(0.4), rank(0.6), rank(0.8)] }
}

impl Store {
    /// Add a plugin version to the catalogue. Installing the same component
    /// again is a no-op (`false`); another component under an installed
    /// version is a conflict.
    pub fn install_plugin(&self, manifest: &Manifest, wasm: &[u8], sha256: &str, actor: &Actor) -> Result<(InstalledPlugin, bool)> {
        let version = manifest.version.to_string();
        let now = Utc::now();
        self.write(|tx| {
            let existing: Option<String> = tx
                .prepare_cached("SELECT sha256 FROM plugins WHERE id = ?1 AND version = ?2")?
                .query_row(params![manifest.id, version], |r| r.get(0))
                .optional()?;
            match &existing {
                Some(sha) if sha == sha256 => {}
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "{} {version} is installed with another component; give the new one a new version",
                        manifest.id
                    )));
                }
                None => {
                    tx.prepare_cached("INSERT OR IGNORE INTO plugin_blobs (sha256, bytes) VALUES (?1, ?2)")?
                        .execute(params![sha256, wasm])?;
                    let manifest_json = serde_json::to_string(manifest).map_err(anyhow::Error::from)?;
                    tx.prepare_cached(
                        "INSERT INTO plugins (id, version, kind, api_version, manifest, sha256, size, installed_at, installed_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        manifest.id,
                        version,
                        manifest.kind.as_str(),
                        manifest.api_version.to_string(),
                        manifest_json,
                        sha256,
                        wasm.len() as i64,
                        to_ms(now),
                        actor.label
                    ])?;
                    audit::record(
                        tx,
                        None,
                        actor,
                        "plugin.install",
                        Some(&format!("{}@{version}", manifest.id)),
                        json!({"sha256": sha256}),
                        now,
                    )?;
                }
            }
            let installed = tx
                .prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins WHERE id = ?1 AND version = ?2")?
                .query_row(params![manifest.id, version], row_to_installed)?;
            Ok((installed, existing.is_none()))
        })
    }

    /// The catalogue: every installed version, by id then version.
    pub fn list_plugins(&self) -> Result<Vec<InstalledPlugin>> {
        let mut all = self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins")?;
            Ok(stmt.query_map([], row_to_installed)?.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        all.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id).then(a.manifest.version.cmp(&b.manifest.version)));
        Ok(all)
    }

    /// Installed versions of one plugin, oldest first.
    pub fn plugin_versions(&self, plugin_id: &str) -> Result<Vec<InstalledPlugin>> {
        let mut versions = self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins WHERE id = ?1")?;
            Ok(stmt.query_map([plugin_id], row_to_installed)?.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        versions.sort_by(|a, b| a.manifest.version.cmp(&b.manifest.version));
        Ok(versions)
    }

    pub fn plugin_version(&self, plugin_id: &str, version: &str) -> Result<InstalledPlugin> {
        self.read(|conn| {
            conn.prepare_cached("SELECT manifest, sha256, size, installed_at FROM plugins WHERE id = ?1 AND version = ?2")?
                .query_row(params![plugin_id, version], row_to_installed)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("plugin {plugin_id} {version}")))
        })
    }

    /// The component with this hash.
    pub fn plugin_wasm(&self, sha256: &str) -> Result<Vec<u8>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT bytes FROM plugin_blobs WHERE sha256 = ?1")?
                .query_row([sha256], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("component {sha256}")))
        })
    }

    /// Enable a plugin in a shop, or change its version, configuration or
    /// grant. Enabling again after a trip or a disable resets the breaker and
    /// resumes from the cursor; a first enable starts at the newest event.
    #[allow(clippy::too_many_arguments, reason = "one row's fields; a struct would only rename them")]
    pub fn put_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, actor: &Actor) -> Result<(Subscription, bool)> {
        let PutSubscription { plugin_id, version_req, version, config, grant, run_every_hours, channel } = *put;
        let now = to_ms(Utc::now());
        let grant_json = serde_json::to_string(grant).map_err(anyhow::Error::from)?;
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE subscriptions SET version_req = ?3, version = ?4, config = ?5, grant_json = ?6, status = 'enabled',
                       attempts = 0, consecutive_failures = 0, retry_at = NULL, last_error = NULL, updated_at = ?7, run_every_hours = ?8
                     WHERE shop_id = ?1 AND plugin_id = ?2",
                )?
                .execute(params![shop_id, plugin_id, version_req, version, json_text(config), grant_json, now, run_every_hours])?;
            if changed == 0 {
                let head = events::head(tx, shop_id)?;
                tx.prepare_cached(
                    "INSERT INTO subscriptions (shop_id, plugin_id, version_req, version, config, grant_json, status, cursor, created_at, updated_at,
                       run_every_hours)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'enabled', ?7, ?8, ?8, ?9)",
                )?
                .execute(params![shop_id, plugin_id, version_req, version, json_text(config), grant_json, head, now, run_every_hours])?;
            }
            if let Some(channel) = channel {
                messages::register_connector(tx, shop_id, plugin_id, channel, now)?;
            }
            let action = if changed == 0 { "plugin.enable" } else { "plugin.update" };
            audit::record(
                tx,
                Some(shop_id),
                actor,
                action,
                Some(plugin_id),
                json!({"version": version, "version_req": version_req, "grant": grant}),
                from_ms(now),
            )?;
            Ok((load_subscription(tx, shop_id, plugin_id)?, changed == 0))
        })
    }

    pub fn disable_subscription(&self, shop_id: i64, plugin_id: &str, actor: &Actor) -> Result<Subscription> {
        let now = Utc::now();
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE subscriptions SET status = 'disabled', retry_at = NULL, updated_at = ?3 WHERE shop_id = ?1 AND plugin_id = ?2",
                )?
                .execute(params![shop_id, plugin_id, to_ms(now)])?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("plugin {plugin_id} in this shop")));
            }
            audit::record(tx, Some(shop_id), actor, "plugin.disable", Some(plugin_id), json!({}), now)?;
            load_subscription(tx, shop_id, plugin_id)
        })
    }

    pub fn subscription(&self, shop_id: i64, plugin_id: &str) -> Result<Subscription> {
        self.read(|conn| load_subscription(conn, shop_id, plugin_id))
    }

    pub fn subscriptions(&self, shop_id: i64) -> Result<Vec<Subscription>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
                 WHERE s.shop_id = ?1 ORDER BY s.plugin_id"
            ))?;
            Ok(stmt.query_map([shop_id], row_to_subscription)?.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Enabled subscriptions with events past their cursor and no pending backoff.
    pub fn due_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Due>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.shop_id, s.plugin_id FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
                 WHERE s.status = 'enabled' AND p.kind != 'channel-connector' AND (s.retry_at IS NULL OR s.retry_at <= ?1)
                   AND EXISTS (SELECT 1 FROM events e WHERE e.shop_id = s.shop_id AND e.seq > s.cursor)
                 ORDER BY s.updated_at",
            )?;
            let rows = stmt.query_map([to_ms(now)], |r| Ok(Due { shop_id: r.get(0)?, plugin_id: r.get(1)? }))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The events past `after` (up to `up_to`, when given) that a plugin
    /// subscribing to `types` takes — about a customer, not emitted by the
    /// plugin itself (which would loop) — at most `limit` of them, with the
    /// sequence its cursor may move to: the last event taken when `limit` were
    /// found, otherwise the end of what was looked at. One look covers at most
    /// [`DELIVERY_SCAN`] sequence numbers, so a plugin taking rare events
    /// moves on in bounded steps. Only the events taken are decoded.
    pub fn events_for(
        &self,
        shop_id: i64,
        plugin_id: &str,
        types: &[String],
        after: i64,
        up_to: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<EventSnapshot>, i64)> {
        let every_type = types.iter().any(|t| t == "*");
        let types = serde_json::to_string(types).expect("strings are JSON");
        self.read(|conn| {
            // One snapshot: the writer hands out sequence numbers in commit order, so
            // every event up to the head is visible and none is skipped.
            let head = events::head(conn, shop_id)?;
            let end = head.min(up_to.unwrap_or(i64::MAX)).min(after.saturating_add(DELIVERY_SCAN));
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
            let to = match taken.last() {
                Some(last) if taken.len() == limit => last.seq,
                _ => end.max(after),
            };
            Ok((taken, to))
        })
    }

    /// Apply a delivery: the decisions, the key-value writes and the cursor
    /// move from `from` to `to`, in one transaction. A cursor that is no
    /// longer at `from` (another worker delivered) is a conflict and nothing applies.
    pub fn commit_delivery(&self, attempt: &Attempt<'_>, from: i64, to: i64, effects: &Effects<'_>) -> Result<()> {
        Ok(delivery::commit_delivery(self, attempt, from, to, effects)?)
    }

    /// Move the cursor past events the plugin does not take, with nothing to apply.
    pub fn advance_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()> {
        Ok(delivery::advance_cursor(self, shop_id, plugin_id, from, to)?)
    }

    /// Record a failed delivery of the events `from + 1 ..= to`: retry later,
    /// dead-letter the batch after too many attempts, trip the breaker after
    /// too many consecutive failures.
    pub fn record_failure(&self, attempt: &Attempt<'_>, from: i64, to: i64, error: &str, policy: &FailurePolicy) -> Result<FailureOutcome> {
        Ok(delivery::record_failure(self, attempt, from, to, error, policy)?)
    }

    /// Keep the logs and the call record of a call that changed nothing else (a receipt parse).
    pub fn record_call(&self, attempt: &Attempt<'_>, error: Option<&str>) -> Result<()> {
        Ok(delivery::record_call(self, attempt, error)?)
    }

    pub fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 1000"
            ))?;
            Ok(stmt.query_map(params![shop_id, plugin_id], row_to_dead_letter)?.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter> {
        self.read(|conn| load_dead_letter(conn, shop_id, plugin_id, id))
    }

    /// Apply a successful re-drive of a dead letter and mark it, once.
    pub fn commit_redrive(&self, attempt: &Attempt<'_>, dead_letter: i64, effects: &Effects<'_>) -> Result<DeadLetter> {
        Ok(delivery::commit_redrive(self, attempt, dead_letter, effects)?)
    }

    pub fn record_redrive_failure(&self, attempt: &Attempt<'_>, dead_letter: i64, error: &str) -> Result<()> {
        Ok(delivery::record_redrive_failure(self, attempt, dead_letter, error)?)
    }

    /// Start a run over all of the shop's customers; one at a time per plugin. `now` is the
    /// kernel's clock, which its batches are stamped with too: what a finished run did not
    /// score again is told by that.
    pub fn start_run(&self, shop_id: i64, plugin_id: &str, actor: &Actor, now: DateTime<Utc>) -> Result<PluginRun> {
        self.write(|tx| {
            load_subscription(tx, shop_id, plugin_id)?;
            let running: Option<i64> = tx
                .prepare_cached("SELECT id FROM plugin_runs WHERE shop_id = ?1 AND plugin_id = ?2 AND status = 'running'")?
                .query_row(params![shop_id, plugin_id], |r| r.get(0))
                .optional()?;
            if let Some(id) = running {
                return Err(StoreError::Conflict(format!("run {id} of {plugin_id} is still running")));
            }
            let total: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL")?
                .query_row([shop_id], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at) VALUES (?1, ?2, 'running', ?3, ?4, ?4)",
            )?
            .execute(params![shop_id, plugin_id, total, to_ms(now)])?;
            let id = tx.last_insert_rowid();
            audit::record(tx, Some(shop_id), actor, "plugin.run", Some(plugin_id), json!({"run": id}), now)?;
            load_run(tx, shop_id, plugin_id, id)
        })
    }

    /// Start the runs that schedules call for: enabled subscriptions with
    /// `run_every_hours`, no run in progress, and none started in that many
    /// hours. Returns how many started.
    pub fn start_scheduled_runs(&self, now: DateTime<Utc>) -> Result<usize> {
        const DUE: &str = "FROM subscriptions s JOIN plugins p ON p.id = s.plugin_id AND p.version = s.version
             WHERE s.status = 'enabled' AND s.run_every_hours > 0 AND p.kind != 'channel-connector'
               AND NOT EXISTS (SELECT 1 FROM plugin_runs r WHERE r.shop_id = s.shop_id AND r.plugin_id = s.plugin_id
                               AND (r.status = 'running' OR r.created_at > ?1 - s.run_every_hours * 3600000))";
        let now_ms = to_ms(now);
        // Workers ask on every pass: a read answers the usual "nothing due" without taking the writer.
        let due: i64 =
            self.read(|conn| Ok(conn.prepare_cached(&format!("SELECT COUNT(*) {DUE}"))?.query_row([now_ms], |r| r.get(0))?))?;
        if due == 0 {
            return Ok(0);
        }
        // The condition again in the write, so that two workers or processes start one run.
        self.write(|tx| {
            let started = tx
                .prepare_cached(&format!(
                    "INSERT INTO plugin_runs (shop_id, plugin_id, status, total, created_at, updated_at)
                     SELECT s.shop_id, s.plugin_id, 'running',
                            (SELECT COUNT(*) FROM customers c WHERE c.shop_id = s.shop_id AND c.merged_into IS NULL), ?1, ?1 {DUE}"
                ))?
                .execute([now_ms])?;
            Ok(started)
        })
    }

    /// Put a failed run back to work from its checkpoint.
    pub fn resume_run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        self.write(|tx| {
            let run = load_run(tx, shop_id, plugin_id, run_id)?;
            if run.status != PluginRunStatus::Failed {
                return Err(StoreError::Conflict(format!("run {run_id} is not failed")));
            }
            tx.prepare_cached(
                "UPDATE plugin_runs SET status = 'running', attempts = 0, retry_at = NULL, error = NULL, finished_at = NULL WHERE id = ?1",
            )?
            .execute([run_id])?;
            load_run(tx, shop_id, plugin_id, run_id)
        })
    }

    pub fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        self.read(|conn| load_run(conn, shop_id, plugin_id, run_id))
    }

    pub fn runs(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM plugin_runs WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 100"
            ))?;
            Ok(stmt.query_map(params![shop_id, plugin_id], row_to_run)?.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Running runs of enabled plugins with no pending backoff: (shop, plugin, run).
    pub fn due_plugin_runs(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.shop_id, r.plugin_id, r.id FROM plugin_runs r
                 JOIN subscriptions s ON s.shop_id = r.shop_id AND s.plugin_id = r.plugin_id
                 WHERE r.status = 'running' AND s.status = 'enabled' AND (r.retry_at IS NULL OR r.retry_at <= ?1) ORDER BY r.id",
            )?;
            Ok(stmt.query_map([to_ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Apply one batch of a run and move its checkpoint; the last batch closes the run.
    pub fn commit_run_batch(&self, attempt: &Attempt<'_>, step: &PluginRunStep, effects: &Effects<'_>) -> Result<PluginRun> {
        Ok(delivery::commit_run_batch(self, attempt, step, effects)?)
    }

    /// Record a failed batch of a run: retry with backoff, or fail the run after too many attempts.
    pub fn record_run_failure(&self, attempt: &Attempt<'_>, run_id: i64, error: &str, policy: &FailurePolicy) -> Result<PluginRun> {
        Ok(delivery::record_run_failure(self, attempt, run_id, error, policy)?)
    }

    /// Active customers of a shop after `after`, by id, as a plugin that
    /// reads `reads` sees them.
    pub fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM customers c WHERE c.shop_id = ?1 AND c.merged_into IS NULL AND c.id > ?2 ORDER BY c.id LIMIT ?3",
                plugin_columns(reads)
            ))?;
            let mut customers =
                stmt.query_map(params![shop_id, after, limit as i64], row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
            load_for_plugin(conn, &mut customers, reads)?;
            Ok(customers)
        })
    }

    /// Customers by id as a plugin that reads `reads` sees them, each under
    /// the id asked for; merged customers resolve to who they were merged
    /// into, and ids outside the shop are left out. The customers are read
    /// together: a row query and one per part read, whatever their number.
    pub fn snapshots(&self, shop_id: i64, ids: &[i64], reads: Reads) -> Result<HashMap<i64, Customer>> {
        self.read(|conn| {
            let mut active: HashMap<i64, i64> = HashMap::new();
            for &id in ids {
                if active.contains_key(&id) {
                    continue;
                }
                if let Some(to) = active_customer(conn, shop_id, id)? {
                    active.insert(id, to);
                }
            }
            let mut wanted: Vec<i64> = active.values().copied().collect();
            wanted.sort_unstable();
            wanted.dedup();
            let wanted = serde_json::to_string(&wanted).expect("ids are JSON");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM customers c WHERE c.id IN (SELECT value FROM json_each(?1)) AND c.shop_id = ?2 AND c.merged_into IS NULL",
                plugin_columns(reads)
            ))?;
            let mut customers = stmt.query_map(params![wanted, shop_id], row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
            load_for_plugin(conn, &mut customers, reads)?;
            let mut by_id: HashMap<i64, Customer> = customers.into_iter().map(|c| (c.id, c)).collect();
            // Ids merged into a customer get copies; the customer's own id takes it last.
            let (own, merged): (Vec<_>, Vec<_>) = active.into_iter().partition(|(id, to)| id == to);
            let mut found: HashMap<i64, Customer> = merged.into_iter().filter_map(|(id, to)| Some((id, by_id.get(&to)?.clone()))).collect();
            found.extend(own.into_iter().filter_map(|(id, _)| Some((id, by_id.remove(&id)?))));
            Ok(found)
        })
    }

    /// Orders by the shop's own ids, with their items; unknown ids are left out.
    pub fn order_snapshots(&self, shop_id: i64, external_ids: &[&str]) -> Result<HashMap<String, OrderSnapshot>> {
        self.read(|conn| {
            let mut found = HashMap::new();
            let mut stmt = conn.prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE shop_id = ?1 AND external_id = ?2"))?;
            for &external_id in external_ids {
                if found.contains_key(external_id) {
                    continue;
                }
                let Some((id, mut order)) = stmt.query_row(params![shop_id, external_id], row_to_order).optional()? else { continue };
                order.items = order_items(conn, id)?;
                found.insert(external_id.to_owned(), order);
            }
            Ok(found)
        })
    }

    /// The shop around a batch: averages and quintiles over its buyers at
    /// `now`, over orders of the last `window_days` days when given.
    pub fn shop_context(&self, shop_id: i64, now: DateTime<Utc>, window_days: Option<u32>) -> Result<ShopContext> {
        let shop = self.get_shop(shop_id)?;
        let now_ms = to_ms(now);
        self.read(|conn| {
            let customer_count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM customers WHERE shop_id = ?1 AND merged_into IS NULL")?
                .query_row([shop_id], |r| r.get(0))?;
            // (spent, orders, last order) per buyer. Orders follow merges, so
            // their customer is the active one.
            let mut stmt = match window_days {
                None => conn.prepare_cached(
                    "SELECT total_spent, order_count, last_order_at FROM customers
                     WHERE shop_id = ?1 AND merged_into IS NULL AND order_count > 0 AND ?2 IS NULL",
                )?,
                Some(_) => conn.prepare_cached(
                    "SELECT SUM(amount - refunded_amount), COUNT(*), MAX(paid_at) FROM orders
                     WHERE shop_id = ?1 AND status != 'refunded' AND paid_at >= ?2 GROUP BY customer_id",
                )?,
            };
            let since = window_days.map(|days| now_ms - i64::from(days) * 86_400_000);
            let (mut recency, mut frequency, mut monetary) = (Vec::new(), Vec::new(), Vec::new());
            for row in
                stmt.query_map(params![shop_id, since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))?
            {
                let (spent, orders, last) = row?;
                monetary.push(spent as f64);
                frequency.push(orders as f64);
                recency.push(last.map_or(0.0, |last| ((now_ms - last).max(0) as f64) / 86_400_000.0));
            }
            let buyers = monetary.len() as u64;
            let total_spent: f64 = monetary.iter().sum();
            let total_orders: f64 = frequency.iter().sum();
            Ok(ShopContext {
                shop_id,
                now_ms,
                window_days,
                time_zone: shop.time_zone.clone(),
                currency: shop.currency.clone(),
                customer_count: customer_count as u64,
                buyer_count: buyers,
                recency_days: distribution(recency),
                frequency: distribution(frequency),
                monetary: distribution(monetary),
                average_order_value: if total_orders > 0.0 { total_spent / total_orders } else { 0.0 },
            })
        })
    }

    /// Orders (with items) and behaviours since `since_ms`, newest first, of
    /// those of `ids` that are customers of the shop, in the order asked.
    /// Merged ids resolve to their survivor.
    pub fn histories(&self, shop_id: i64, ids: &[i64], since_ms: i64) -> Result<Vec<History>> {
        self.read(|conn| {
            let mut histories: Vec<History> = Vec::with_capacity(ids.len());
            // A batch often names a customer once per event: each is read once.
            let mut loaded: HashMap<i64, usize> = HashMap::new();
            for &id in ids {
                if let Some(&at) = loaded.get(&id) {
                    histories.push(histories[at].clone());
                    continue;
                }
                let Some(active) = active_customer(conn, shop_id, id)? else { continue };
                loaded.insert(id, histories.len());
                let (mut rows, mut truncated) = recent_orders(conn, active, since_ms)?;
                for order in &mut rows {
                    // The history is about the customer asked for, even when their orders moved to a survivor.
                    order.customer_id = id;
                }
                let mut behaviours = conn
                    .prepare_cached(
                        "SELECT kind, sku, category, occurred_at FROM behaviours
                         WHERE customer_id = ?1 AND occurred_at >= ?2 ORDER BY occurred_at DESC, id DESC LIMIT ?3",
                    )?
                    .query_map(params![active, since_ms, MAX_HISTORY_BEHAVIOURS as i64 + 1], |r| {
                        Ok(BehaviourSnapshot { kind: r.get(0)?, sku: r.get(1)?, category: r.get(2)?, occurred_at_ms: r.get(3)? })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                truncated |= behaviours.len() > MAX_HISTORY_BEHAVIOURS;
                behaviours.truncate(MAX_HISTORY_BEHAVIOURS);
                histories.push(History { customer_id: id, orders: rows, behaviours, truncated });
            }
            Ok(histories)
        })
    }

    pub fn plugin_kv_get(&self, shop_id: i64, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM plugin_kv WHERE shop_id = ?1 AND plugin_id = ?2 AND key = ?3")?
                .query_row(params![shop_id, plugin_id, key], |r| r.get(0))
                .optional()?)
        })
    }

    /// Keys and bytes (keys and values together) of a shop's plugin space.
    pub fn plugin_kv_usage(&self, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM plugin_kv WHERE shop_id = ?1 AND plugin_id = ?2",
                )?
                .query_row(params![shop_id, plugin_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?)
        })
    }

    /// A plugin's log lines in a shop, newest first, before the line id `before`.
    pub fn plugin_logs(&self, shop_id: i64, plugin_id: &str, before: Option<i64>, limit: usize) -> Result<Vec<PluginLog>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, level, message, created_at FROM plugin_logs WHERE shop_id = ?1 AND plugin_id = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![shop_id, plugin_id, before.unwrap_or(i64::MAX), limit as i64], |r| {
                Ok(PluginLog { id: r.get(0)?, level: LogLevel::parse(&r.get::<_, String>(1)?), message: r.get(2)?, created_at: from_ms(r.get(3)?) })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Calls, failures and latency over the plugin's recent calls in a shop.
    pub fn call_stats(&self, shop_id: i64, plugin_id: &str) -> Result<CallStats> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT duration_us, error FROM plugin_calls WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC")?;
            let calls = stmt
                .query_map(params![shop_id, plugin_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut durations: Vec<i64> = calls.iter().map(|(d, _)| *d).collect();
            durations.sort_unstable();
            let percentile = |p: f64| -> Option<f64> {
                (!durations.is_empty())
                    .then(|| durations[((p * durations.len() as f64).ceil() as usize).clamp(1, durations.len()) - 1] as f64 / 1000.0)
            };
            Ok(CallStats {
                calls: calls.len() as i64,
                failures: calls.iter().filter(|(_, e)| e.is_some()).count() as i64,
                p50_ms: percentile(0.5),
                p99_ms: percentile(0.99),
                last_errors: calls.iter().filter_map(|(_, e)| e.clone()).take(5).collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_are_nearest_rank() {
        let d = distribution((1..=10).map(f64::from).collect());
        assert_eq!(d.average, 5.5);
        assert_eq!(d.quintiles, vec![2.0, 4.0, 6.0, 8.0]);
        assert_eq!(distribution(vec![]), Distribution::default());
    }
}
