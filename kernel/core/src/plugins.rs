//! The plugin catalogue, shops' subscriptions and their cursors, and the transactions that
//! apply a delivery ([`delivery`]): a plugin's decisions, its key-value writes and the
//! cursor move commit together or not at all. Runs over every customer, dead letters, and
//! what plugins read of a shop (snapshots, histories, its context) and of themselves (logs,
//! call statistics, key-value usage).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    CallStats, DeadLetter, Distribution, EventSnapshot, History, InstalledPlugin, MAX_HISTORY_BEHAVIOURS, Manifest, OrderSnapshot,
    PluginLog, PluginRun, PluginRunStatus, Reads, ShopContext, Subscription,
};
use serde_json::json;

use crate::delivery::{self, Attempt, Effects, FailureOutcome, FailurePolicy, PluginRunStep};
pub use crate::ports::{BuyerStats, Due, PutSubscription};
use crate::ports::{Storage, StorageExt};
use crate::{Actor, Error, Result, outbox, shops};

/// Sequence numbers one delivery looks at, at most.
pub const DELIVERY_SCAN: i64 = 100_000;

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

/// The plugins: catalogue, subscriptions, deliveries, runs, and what plugins read.
pub trait PluginService: Storage {
    /// Add a plugin version to the catalogue. Installing the same component
    /// again is a no-op (`false`); another component under an installed
    /// version is a conflict.
    fn install_plugin(&self, manifest: &Manifest, wasm: &[u8], sha256: &str, actor: &Actor) -> Result<(InstalledPlugin, bool)> {
        let version = manifest.version.to_string();
        let now = Utc::now();
        self.write(|tx| {
            let existing = tx.plugins().installed_sha256(&manifest.id, &version)?;
            match &existing {
                Some(sha) if sha == sha256 => {}
                Some(_) => {
                    return Err(Error::Conflict(format!(
                        "{} {version} is installed with another component; give the new one a new version",
                        manifest.id
                    )));
                }
                None => {
                    tx.plugins_writer().put_blob(sha256, wasm)?;
                    tx.plugins_writer().insert_plugin(manifest, sha256, wasm.len() as i64, now, &actor.label)?;
                    tx.audit().record(
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
                .plugins()
                .installed(&manifest.id, &version)?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("plugin {} {version} was just installed", manifest.id)))?;
            Ok((installed, existing.is_none()))
        })
    }

    /// The catalogue: every installed version, by id then version.
    fn list_plugins(&self) -> Result<Vec<InstalledPlugin>> {
        let mut all = self.read(|tx| tx.plugins().catalogue())?;
        all.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id).then(a.manifest.version.cmp(&b.manifest.version)));
        Ok(all)
    }

    /// Installed versions of one plugin, oldest first.
    fn plugin_versions(&self, plugin_id: &str) -> Result<Vec<InstalledPlugin>> {
        let mut versions = self.read(|tx| tx.plugins().versions(plugin_id))?;
        versions.sort_by(|a, b| a.manifest.version.cmp(&b.manifest.version));
        Ok(versions)
    }

    fn plugin_version(&self, plugin_id: &str, version: &str) -> Result<InstalledPlugin> {
        self.read(|tx| tx.plugins().installed(plugin_id, version)?.ok_or_else(|| Error::NotFound(format!("plugin {plugin_id} {version}"))))
    }

    /// The component with this hash.
    fn plugin_wasm(&self, sha256: &str) -> Result<Vec<u8>> {
        self.read(|tx| tx.plugins().wasm(sha256)?.ok_or_else(|| Error::NotFound(format!("component {sha256}"))))
    }

    /// Enable a plugin in a shop, or change its version, configuration or
    /// grant. Enabling again after a trip or a disable resets the breaker and
    /// resumes from the cursor; a first enable starts at the newest event.
    fn put_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, actor: &Actor) -> Result<(Subscription, bool)> {
        let PutSubscription { plugin_id, version_req, version, grant, channel, .. } = *put;
        // Stamped to the millisecond, as stored.
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default();
        self.write(|tx| {
            let changed = tx.plugins_writer().update_subscription(shop_id, put, now)?;
            if !changed {
                let head = tx.plugins().event_head(shop_id)?;
                tx.plugins_writer().insert_subscription(shop_id, put, head, now)?;
            }
            if let Some(channel) = channel {
                outbox::register_connector(tx, shop_id, plugin_id, channel, now)?;
            }
            let action = if !changed { "plugin.enable" } else { "plugin.update" };
            tx.audit().record(
                Some(shop_id),
                actor,
                action,
                Some(plugin_id),
                json!({"version": version, "version_req": version_req, "grant": grant}),
                now,
            )?;
            Ok((tx.plugins().subscription(shop_id, plugin_id)?, !changed))
        })
    }

    fn disable_subscription(&self, shop_id: i64, plugin_id: &str, actor: &Actor) -> Result<Subscription> {
        let now = Utc::now();
        self.write(|tx| {
            if !tx.plugins_writer().disable_subscription(shop_id, plugin_id, now)? {
                return Err(Error::NotFound(format!("plugin {plugin_id} in this shop")));
            }
            tx.audit().record(Some(shop_id), actor, "plugin.disable", Some(plugin_id), json!({}), now)?;
            tx.plugins().subscription(shop_id, plugin_id)
        })
    }

    fn subscription(&self, shop_id: i64, plugin_id: &str) -> Result<Subscription> {
        self.read(|tx| tx.plugins().subscription(shop_id, plugin_id))
    }

    fn subscriptions(&self, shop_id: i64) -> Result<Vec<Subscription>> {
        self.read(|tx| tx.plugins().subscriptions(shop_id))
    }

    /// Enabled subscriptions with events past their cursor and no pending backoff.
    fn due_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Due>> {
        self.read(|tx| tx.plugins().due_subscriptions(now))
    }

    /// The events past `after` (up to `up_to`, when given) that a plugin
    /// subscribing to `types` takes — about a customer, not emitted by the
    /// plugin itself (which would loop) — at most `limit` of them, with the
    /// sequence its cursor may move to: the last event taken when `limit` were
    /// found, otherwise the end of what was looked at. One look covers at most
    /// [`DELIVERY_SCAN`] sequence numbers, so a plugin taking rare events
    /// moves on in bounded steps. Only the events taken are decoded.
    fn events_for(
        &self,
        shop_id: i64,
        plugin_id: &str,
        types: &[String],
        after: i64,
        up_to: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<EventSnapshot>, i64)> {
        let every_type = types.iter().any(|t| t == "*");
        self.read(|tx| {
            // One snapshot: the writer hands out sequence numbers in commit order, so
            // every event up to the head is visible and none is skipped.
            let head = tx.plugins().event_head(shop_id)?;
            let end = head.min(up_to.unwrap_or(i64::MAX)).min(after.saturating_add(DELIVERY_SCAN));
            let taken = tx.plugins().events(shop_id, plugin_id, (!every_type).then_some(types), after, end, limit)?;
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
    fn commit_delivery(&self, attempt: &Attempt<'_>, from: i64, to: i64, effects: &Effects<'_>) -> Result<()> {
        delivery::commit_delivery(self.storage(), attempt, from, to, effects)
    }

    /// Move the cursor past events the plugin does not take, with nothing to apply.
    fn advance_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()> {
        delivery::advance_cursor(self.storage(), shop_id, plugin_id, from, to)
    }

    /// Record a failed delivery of the events `from + 1 ..= to`: retry later,
    /// dead-letter the batch after too many attempts, trip the breaker after
    /// too many consecutive failures.
    fn record_failure(&self, attempt: &Attempt<'_>, from: i64, to: i64, error: &str, policy: &FailurePolicy) -> Result<FailureOutcome> {
        delivery::record_failure(self.storage(), attempt, from, to, error, policy)
    }

    /// Keep the logs and the call record of a call that changed nothing else (a receipt parse).
    fn record_call(&self, attempt: &Attempt<'_>, error: Option<&str>) -> Result<()> {
        delivery::record_call(self.storage(), attempt, error)
    }

    fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>> {
        self.read(|tx| tx.plugins().dead_letters(shop_id, plugin_id))
    }

    fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter> {
        self.read(|tx| tx.plugins().dead_letter(shop_id, plugin_id, id))
    }

    /// Apply a successful re-drive of a dead letter and mark it, once.
    fn commit_redrive(&self, attempt: &Attempt<'_>, dead_letter: i64, effects: &Effects<'_>) -> Result<DeadLetter> {
        delivery::commit_redrive(self.storage(), attempt, dead_letter, effects)
    }

    fn record_redrive_failure(&self, attempt: &Attempt<'_>, dead_letter: i64, error: &str) -> Result<()> {
        delivery::record_redrive_failure(self.storage(), attempt, dead_letter, error)
    }

    /// Start a run over all of the shop's customers; one at a time per plugin. `now` is the
    /// kernel's clock, which its batches are stamped with too: what a finished run did not
    /// score again is told by that.
    fn start_run(&self, shop_id: i64, plugin_id: &str, actor: &Actor, now: DateTime<Utc>) -> Result<PluginRun> {
        self.write(|tx| {
            tx.plugins().subscription(shop_id, plugin_id)?;
            if let Some(id) = tx.plugins().running_run(shop_id, plugin_id)? {
                return Err(Error::Conflict(format!("run {id} of {plugin_id} is still running")));
            }
            let total = tx.plugins().active_customer_count(shop_id)?;
            let id = tx.plugins_writer().insert_run(shop_id, plugin_id, total, now)?;
            tx.audit().record(Some(shop_id), actor, "plugin.run", Some(plugin_id), json!({"run": id}), now)?;
            tx.plugins().run(shop_id, plugin_id, id)
        })
    }

    /// Start the runs that schedules call for: enabled subscriptions with
    /// `run_every_hours`, no run in progress, and none started in that many
    /// hours. Returns how many started.
    fn start_scheduled_runs(&self, now: DateTime<Utc>) -> Result<usize> {
        // Workers ask on every pass: a read answers the usual "nothing due" without taking the writer.
        let due = self.read(|tx| tx.plugins().scheduled_runs_due(now))?;
        if due == 0 {
            return Ok(0);
        }
        // The condition again in the write, so that two workers or processes start one run.
        self.write(|tx| tx.plugins_writer().start_scheduled_runs(now))
    }

    /// Put a failed run back to work from its checkpoint.
    fn resume_run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        self.write(|tx| {
            let run = tx.plugins().run(shop_id, plugin_id, run_id)?;
            if run.status != PluginRunStatus::Failed {
                return Err(Error::Conflict(format!("run {run_id} is not failed")));
            }
            tx.plugins_writer().resume_run(shop_id, run_id)?;
            tx.plugins().run(shop_id, plugin_id, run_id)
        })
    }

    fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        self.read(|tx| tx.plugins().run(shop_id, plugin_id, run_id))
    }

    fn runs(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>> {
        self.read(|tx| tx.plugins().runs(shop_id, plugin_id))
    }

    /// Running runs of enabled plugins with no pending backoff: (shop, plugin, run).
    fn due_plugin_runs(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>> {
        self.read(|tx| tx.plugins().due_plugin_runs(now))
    }

    /// Apply one batch of a run and move its checkpoint; the last batch closes the run.
    fn commit_run_batch(&self, attempt: &Attempt<'_>, step: &PluginRunStep, effects: &Effects<'_>) -> Result<PluginRun> {
        delivery::commit_run_batch(self.storage(), attempt, step, effects)
    }

    /// Record a failed batch of a run: retry with backoff, or fail the run after too many attempts.
    fn record_run_failure(&self, attempt: &Attempt<'_>, run_id: i64, error: &str, policy: &FailurePolicy) -> Result<PluginRun> {
        delivery::record_run_failure(self.storage(), attempt, run_id, error, policy)
    }

    /// Active customers of a shop after `after`, by id, as a plugin that
    /// reads `reads` sees them.
    fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>> {
        self.read(|tx| tx.plugins().customer_batch(shop_id, after, limit, reads))
    }

    /// Customers by id as a plugin that reads `reads` sees them, each under
    /// the id asked for; merged customers resolve to who they were merged
    /// into, and ids outside the shop are left out. The customers are read
    /// together: a row query and one per part read, whatever their number.
    fn snapshots(&self, shop_id: i64, ids: &[i64], reads: Reads) -> Result<HashMap<i64, Customer>> {
        self.read(|tx| {
            let mut active: HashMap<i64, i64> = HashMap::new();
            for &id in ids {
                if active.contains_key(&id) {
                    continue;
                }
                if let Some(to) = tx.customers().active(shop_id, id)? {
                    active.insert(id, to);
                }
            }
            let mut wanted: Vec<i64> = active.values().copied().collect();
            wanted.sort_unstable();
            wanted.dedup();
            let customers = tx.plugins().plugin_customers(shop_id, &wanted, reads)?;
            let mut by_id: HashMap<i64, Customer> = customers.into_iter().map(|c| (c.id, c)).collect();
            // Ids merged into a customer get copies; the customer's own id takes it last.
            let (own, merged): (Vec<_>, Vec<_>) = active.into_iter().partition(|(id, to)| id == to);
            let mut found: HashMap<i64, Customer> = merged.into_iter().filter_map(|(id, to)| Some((id, by_id.get(&to)?.clone()))).collect();
            found.extend(own.into_iter().filter_map(|(id, _)| Some((id, by_id.remove(&id)?))));
            Ok(found)
        })
    }

    /// Orders by the shop's own ids, with their items; unknown ids are left out.
    fn order_snapshots(&self, shop_id: i64, external_ids: &[&str]) -> Result<HashMap<String, OrderSnapshot>> {
        self.read(|tx| {
            let mut found = HashMap::new();
            for &external_id in external_ids {
                if found.contains_key(external_id) {
                    continue;
                }
                let Some(order) = tx.plugins().order_snapshot(shop_id, external_id)? else { continue };
                found.insert(external_id.to_owned(), order);
            }
            Ok(found)
        })
    }

    /// The shop around a batch: averages and quintiles over its buyers at
    /// `now`, over orders of the last `window_days` days when given.
    fn shop_context(&self, shop_id: i64, now: DateTime<Utc>, window_days: Option<u32>) -> Result<ShopContext> {
        let shop = self.read(|tx| shops::load(tx, shop_id))?;
        let now_ms = now.timestamp_millis();
        self.read(|tx| {
            let customer_count = tx.plugins().active_customer_count(shop_id)?;
            // (spent, orders, last order) per buyer. Orders follow merges, so
            // their customer is the active one.
            let since = window_days.map(|days| now_ms - i64::from(days) * 86_400_000);
            let since = since.map(at_ms);
            let (mut recency, mut frequency, mut monetary) = (Vec::new(), Vec::new(), Vec::new());
            for BuyerStats { spent, orders, last_order } in tx.plugins().buyer_stats(shop_id, since)? {
                monetary.push(spent as f64);
                frequency.push(orders as f64);
                let last = last_order.map(|at| at.timestamp_millis());
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
    fn histories(&self, shop_id: i64, ids: &[i64], since_ms: i64) -> Result<Vec<History>> {
        let since = at_ms(since_ms);
        self.read(|tx| {
            let mut histories: Vec<History> = Vec::with_capacity(ids.len());
            // A batch often names a customer once per event: each is read once.
            let mut loaded: HashMap<i64, usize> = HashMap::new();
            for &id in ids {
                if let Some(&at) = loaded.get(&id) {
                    histories.push(histories[at].clone());
                    continue;
                }
                let Some(active) = tx.customers().active(shop_id, id)? else { continue };
                loaded.insert(id, histories.len());
                let (mut rows, mut truncated) = tx.plugins().recent_orders(shop_id, active, since)?;
                for order in &mut rows {
                    // The history is about the customer asked for, even when their orders moved to a survivor.
                    order.customer_id = id;
                }
                let mut behaviours = tx.plugins().recent_behaviours(shop_id, active, since, MAX_HISTORY_BEHAVIOURS + 1)?;
                truncated |= behaviours.len() > MAX_HISTORY_BEHAVIOURS;
                behaviours.truncate(MAX_HISTORY_BEHAVIOURS);
                histories.push(History { customer_id: id, orders: rows, behaviours, truncated });
            }
            Ok(histories)
        })
    }

    fn plugin_kv_get(&self, shop_id: i64, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|tx| tx.plugins().kv(shop_id, plugin_id, key))
    }

    /// Keys and bytes (keys and values together) of a shop's plugin space.
    fn plugin_kv_usage(&self, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)> {
        self.read(|tx| tx.plugins().kv_usage(shop_id, plugin_id))
    }

    /// A plugin's log lines in a shop, newest first, before the line id `before`.
    fn plugin_logs(&self, shop_id: i64, plugin_id: &str, before: Option<i64>, limit: usize) -> Result<Vec<PluginLog>> {
        self.read(|tx| tx.plugins().logs(shop_id, plugin_id, before.unwrap_or(i64::MAX), limit))
    }

    /// Calls, failures and latency over the plugin's recent calls in a shop.
    fn call_stats(&self, shop_id: i64, plugin_id: &str) -> Result<CallStats> {
        self.read(|tx| {
            let calls = tx.plugins().calls(shop_id, plugin_id)?;
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

impl<S: Storage + ?Sized> PluginService for S {}

/// Unix milliseconds as a time, saturated at the ends of the range a time can hold
/// (a window of any length reaches back to the beginning, never to 1970).
fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC })
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
