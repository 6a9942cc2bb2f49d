//! The plugins' port on SQLite: subscriptions, runs, dead letters, logs, key-value entries,
//! scores, tiers and the segments' rank marks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use kith_core::delivery::Attempt;
use kith_core::ports::{
    BuyerStats, DeletedScores, Due, FailureState, NewDeadLetter, PluginsRead, PluginsWrite, PutSubscription, ScoreWrite, ScoresWrite,
    SegmentMarks, TierChange, TiersWrite,
};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, DeadLetter, EventSnapshot, InstalledPlugin, LogLevel, Manifest, OrderSnapshot, PluginLog, PluginRun, Reads,
    Subscription,
};
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, core, sql};
use crate::{attempts, events, plugins, segments, to_ms};

impl PluginsRead for Sql<'_> {
    fn foreign_tag_prefixes(&self, plugin_id: &str) -> CoreResult<Vec<(String, String)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT DISTINCT id, json_extract(manifest, '$.\"tag-prefix\"') FROM plugins
                 WHERE id <> ?1 AND json_extract(manifest, '$.\"tag-prefix\"') IS NOT NULL",
            )
            .and_then(|mut s| s.query_map([plugin_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn subscription(&self, shop_id: i64, plugin_id: &str) -> CoreResult<Subscription> {
        core(plugins::load_subscription(self.0, shop_id, plugin_id))
    }

    fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> CoreResult<PluginRun> {
        core(plugins::load_run(self.0, shop_id, plugin_id, run_id))
    }

    fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> CoreResult<DeadLetter> {
        core(plugins::load_dead_letter(self.0, shop_id, plugin_id, id))
    }

    fn kv(&self, shop_id: i64, plugin_id: &str, key: &str) -> CoreResult<Option<Vec<u8>>> {
        sql(self
            .0
            .prepare_cached("SELECT value FROM plugin_kv WHERE shop_id = ?1 AND plugin_id = ?2 AND key = ?3")
            .and_then(|mut s| s.query_row(params![shop_id, plugin_id, key], |r| r.get(0)).optional()))
    }

    fn installed(&self, plugin_id: &str, version: &str) -> CoreResult<Option<InstalledPlugin>> {
        core(plugins::installed(self.0, plugin_id, version))
    }

    fn installed_sha256(&self, plugin_id: &str, version: &str) -> CoreResult<Option<String>> {
        core(plugins::installed_sha256(self.0, plugin_id, version))
    }

    fn catalogue(&self) -> CoreResult<Vec<InstalledPlugin>> {
        core(plugins::catalogue(self.0))
    }

    fn versions(&self, plugin_id: &str) -> CoreResult<Vec<InstalledPlugin>> {
        core(plugins::versions(self.0, plugin_id))
    }

    fn wasm(&self, sha256: &str) -> CoreResult<Option<Vec<u8>>> {
        core(plugins::wasm(self.0, sha256))
    }

    fn subscriptions(&self, shop_id: i64) -> CoreResult<Vec<Subscription>> {
        core(plugins::subscriptions(self.0, shop_id))
    }

    fn due_subscriptions(&self, now: DateTime<Utc>) -> CoreResult<Vec<Due>> {
        core(plugins::due_subscriptions(self.0, now))
    }

    fn event_head(&self, shop_id: i64) -> CoreResult<i64> {
        core(events::head(self.0, shop_id))
    }

    fn events(
        &self,
        shop_id: i64,
        plugin_id: &str,
        types: Option<&[String]>,
        after: i64,
        end: i64,
        limit: usize,
    ) -> CoreResult<Vec<EventSnapshot>> {
        core(plugins::events(self.0, shop_id, plugin_id, types, after, end, limit))
    }

    fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> CoreResult<Vec<DeadLetter>> {
        core(plugins::dead_letters(self.0, shop_id, plugin_id))
    }

    fn running_run(&self, shop_id: i64, plugin_id: &str) -> CoreResult<Option<i64>> {
        core(plugins::running_run(self.0, shop_id, plugin_id))
    }

    fn runs(&self, shop_id: i64, plugin_id: &str) -> CoreResult<Vec<PluginRun>> {
        core(plugins::runs(self.0, shop_id, plugin_id))
    }

    fn due_plugin_runs(&self, now: DateTime<Utc>) -> CoreResult<Vec<(i64, String, i64)>> {
        core(plugins::due_plugin_runs(self.0, now))
    }

    fn scheduled_runs_due(&self, now: DateTime<Utc>) -> CoreResult<i64> {
        core(plugins::scheduled_runs_due(self.0, now))
    }

    fn active_customer_count(&self, shop_id: i64) -> CoreResult<i64> {
        core(plugins::active_customer_count(self.0, shop_id))
    }

    fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> CoreResult<Vec<Customer>> {
        core(plugins::customer_batch(self.0, shop_id, after, limit, reads))
    }

    fn plugin_customers(&self, shop_id: i64, ids: &[i64], reads: Reads) -> CoreResult<Vec<Customer>> {
        core(plugins::plugin_customers(self.0, shop_id, ids, reads))
    }

    fn order_snapshot(&self, shop_id: i64, external_id: &str) -> CoreResult<Option<OrderSnapshot>> {
        core(plugins::order_snapshot(self.0, shop_id, external_id))
    }

    fn buyer_stats(&self, shop_id: i64, since: Option<DateTime<Utc>>) -> CoreResult<Vec<BuyerStats>> {
        core(plugins::buyer_stats(self.0, shop_id, since))
    }

    fn recent_orders(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>) -> CoreResult<(Vec<OrderSnapshot>, bool)> {
        core(plugins::recent_orders(self.0, shop_id, customer_id, since.timestamp_millis()))
    }

    fn recent_behaviours(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>, limit: usize) -> CoreResult<Vec<BehaviourSnapshot>> {
        core(plugins::recent_behaviours(self.0, shop_id, customer_id, since.timestamp_millis(), limit))
    }

    fn kv_usage(&self, shop_id: i64, plugin_id: &str) -> CoreResult<(u64, u64)> {
        core(plugins::kv_usage(self.0, shop_id, plugin_id))
    }

    fn logs(&self, shop_id: i64, plugin_id: &str, before: i64, limit: usize) -> CoreResult<Vec<PluginLog>> {
        core(plugins::logs(self.0, shop_id, plugin_id, before, limit))
    }

    fn calls(&self, shop_id: i64, plugin_id: &str) -> CoreResult<Vec<(i64, Option<String>)>> {
        core(plugins::calls(self.0, shop_id, plugin_id))
    }
}

impl PluginsWrite for Sql<'_> {
    fn commit_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> CoreResult<bool> {
        let moved = sql(self
            .0
            .prepare_cached(
                "UPDATE subscriptions SET cursor = ?4, attempts = 0, consecutive_failures = 0, retry_at = NULL, last_error = NULL
                 WHERE shop_id = ?1 AND plugin_id = ?2 AND cursor = ?3 AND status = 'enabled'",
            )
            .and_then(|mut s| s.execute(params![shop_id, plugin_id, from, to])))?;
        Ok(moved == 1)
    }

    fn skip_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE subscriptions SET cursor = ?4 WHERE shop_id = ?1 AND plugin_id = ?2 AND cursor = ?3")
            .and_then(|mut s| s.execute(params![shop_id, plugin_id, from, to])))?;
        Ok(())
    }

    fn set_failure_state(&self, shop_id: i64, plugin_id: &str, state: &FailureState<'_>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE subscriptions SET cursor = ?3, attempts = ?4, consecutive_failures = ?5, retry_at = ?6, last_error = ?7,
                   status = ?8, updated_at = ?9
                 WHERE shop_id = ?1 AND plugin_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    shop_id,
                    plugin_id,
                    state.cursor,
                    state.attempts,
                    state.consecutive_failures,
                    state.retry_at.map(to_ms),
                    state.last_error,
                    if state.tripped { "tripped" } else { "enabled" },
                    to_ms(state.at)
                ])
            }))?;
        Ok(())
    }

    fn record_attempt(&self, attempt: &Attempt<'_>, error: Option<&str>) -> CoreResult<()> {
        core(attempts::record_attempt(self.0, attempt, error))
    }

    fn log(&self, shop_id: i64, plugin_id: &str, level: LogLevel, message: &str, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("INSERT INTO plugin_logs (shop_id, plugin_id, level, message, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![shop_id, plugin_id, level.as_str(), message, to_ms(at)])))?;
        Ok(())
    }

    fn put_kv(&self, shop_id: i64, plugin_id: &str, key: &str, value: Option<&[u8]>) -> CoreResult<()> {
        sql(match value {
            Some(value) => self
                .0
                .prepare_cached(
                    "INSERT INTO plugin_kv (shop_id, plugin_id, key, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (shop_id, plugin_id, key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![shop_id, plugin_id, key, value])),
            None => self
                .0
                .prepare_cached("DELETE FROM plugin_kv WHERE shop_id = ?1 AND plugin_id = ?2 AND key = ?3")
                .and_then(|mut s| s.execute(params![shop_id, plugin_id, key])),
        })?;
        Ok(())
    }

    fn add_dead_letter(&self, l: &NewDeadLetter<'_>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO dead_letters (shop_id, plugin_id, version, first_seq, last_seq, attempts, error, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![l.shop_id, l.plugin_id, l.version, l.first_seq, l.last_seq, l.attempts, l.error, to_ms(l.at)])
            }))?;
        Ok(self.0.last_insert_rowid())
    }

    fn mark_redriven(&self, shop_id: i64, plugin_id: &str, id: i64, at: DateTime<Utc>) -> CoreResult<bool> {
        let marked = sql(self
            .0
            .prepare_cached(
                "UPDATE dead_letters SET redriven_at = ?4, attempts = attempts + 1
                 WHERE id = ?1 AND shop_id = ?2 AND plugin_id = ?3 AND redriven_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![id, shop_id, plugin_id, to_ms(at)])))?;
        Ok(marked == 1)
    }

    fn redrive_failed(&self, shop_id: i64, id: i64, error: &str) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE dead_letters SET attempts = attempts + 1, error = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![id, error, shop_id])))?;
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
    ) -> CoreResult<bool> {
        let moved = sql(self
            .0
            .prepare_cached(
                "UPDATE plugin_runs SET checkpoint = ?3, done = done + ?4, attempts = 0, retry_at = NULL, updated_at = ?5,
                   status = CASE WHEN ?6 THEN 'done' ELSE status END, finished_at = CASE WHEN ?6 THEN ?5 ELSE NULL END
                 WHERE id = ?1 AND shop_id = ?7 AND checkpoint = ?2 AND status = 'running'",
            )
            .and_then(|mut s| s.execute(params![run_id, from, to, processed, to_ms(at), finished, shop_id])))?;
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
    ) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE plugin_runs SET attempts = ?2, error = ?3, retry_at = ?4, updated_at = ?5,
                   status = CASE WHEN ?6 THEN 'failed' ELSE status END, finished_at = CASE WHEN ?6 THEN ?5 ELSE NULL END
                 WHERE id = ?1 AND shop_id = ?7",
            )
            .and_then(|mut s| s.execute(params![run_id, attempts, error, to_ms(retry_at), to_ms(at), failed, shop_id])))?;
        Ok(())
    }

    fn put_blob(&self, sha256: &str, wasm: &[u8]) -> CoreResult<()> {
        core(plugins::put_blob(self.0, sha256, wasm))
    }

    fn insert_plugin(&self, manifest: &Manifest, sha256: &str, size: i64, at: DateTime<Utc>, installed_by: &str) -> CoreResult<()> {
        core(plugins::insert_plugin(self.0, manifest, sha256, size, at, installed_by))
    }

    fn update_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, at: DateTime<Utc>) -> CoreResult<bool> {
        core(plugins::update_subscription(self.0, shop_id, put, at))
    }

    fn insert_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, cursor: i64, at: DateTime<Utc>) -> CoreResult<()> {
        core(plugins::insert_subscription(self.0, shop_id, put, cursor, at))
    }

    fn disable_subscription(&self, shop_id: i64, plugin_id: &str, at: DateTime<Utc>) -> CoreResult<bool> {
        core(plugins::disable_subscription(self.0, shop_id, plugin_id, at))
    }

    fn insert_run(&self, shop_id: i64, plugin_id: &str, total: i64, at: DateTime<Utc>) -> CoreResult<i64> {
        core(plugins::insert_run(self.0, shop_id, plugin_id, total, at))
    }

    fn resume_run(&self, shop_id: i64, run_id: i64) -> CoreResult<()> {
        core(plugins::resume_run(self.0, shop_id, run_id))
    }

    fn start_scheduled_runs(&self, now: DateTime<Utc>) -> CoreResult<usize> {
        core(plugins::start_scheduled_runs(self.0, now))
    }
}

/// The plugin's models: its id, and `<id>.<facet>` (ids hold no `.`; `/` sorts after `.`).
const OF_PLUGIN: &str = "shop_id = ?1 AND (model = ?2 OR (model >= ?2 || '.' AND model < ?2 || '/')) AND scored_at < ?3";

impl ScoresWrite for Sql<'_> {
    fn upsert(&self, s: &ScoreWrite<'_>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (customer_id, model) DO UPDATE SET value = excluded.value, label = excluded.label,
                   explanation = excluded.explanation, scored_at = excluded.scored_at",
            )
            .and_then(|mut st| st.execute(params![s.customer_id, s.model, s.shop_id, s.value, s.label, s.explanation, to_ms(s.at)])))?;
        Ok(())
    }

    fn value(&self, shop_id: i64, customer_id: i64, model: &str) -> CoreResult<Option<f64>> {
        sql(self
            .0
            .prepare_cached("SELECT value FROM scores WHERE customer_id = ?1 AND model = ?2 AND shop_id = ?3")
            .and_then(|mut s| s.query_row(params![customer_id, model, shop_id], |r| r.get(0)).optional()))
    }

    fn delete_older(&self, shop_id: i64, plugin_id: &str, before: DateTime<Utc>) -> CoreResult<DeletedScores> {
        let before = to_ms(before);
        let rows: Vec<(i64, String)> = sql(self
            .0
            .prepare_cached(&format!("SELECT customer_id, model FROM scores WHERE {OF_PLUGIN}"))
            .and_then(|mut s| s.query_map(params![shop_id, plugin_id, before], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))?;
        if !rows.is_empty() {
            sql(self
                .0
                .prepare_cached(&format!("DELETE FROM scores WHERE {OF_PLUGIN}"))
                .and_then(|mut s| s.execute(params![shop_id, plugin_id, before])))?;
        }
        let mut deleted = DeletedScores::default();
        for (customer_id, model) in rows {
            deleted.customers.insert(customer_id);
            deleted.models.insert(model);
        }
        Ok(deleted)
    }
}

impl TiersWrite for Sql<'_> {
    fn tier(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<String>> {
        sql(self
            .0
            .prepare_cached("SELECT tier FROM customers WHERE id = ?1 AND shop_id = ?2")
            .and_then(|mut s| s.query_row([customer_id, shop_id], |r| r.get(0)).optional()))
        .map(Option::flatten)
    }

    fn change(&self, c: &TierChange<'_>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE customers SET tier = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![c.customer_id, c.to, c.shop_id])))?;
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO tier_history (shop_id, customer_id, from_tier, to_tier, reason, source, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| s.execute(params![c.shop_id, c.customer_id, c.from, c.to, c.reason, c.source, to_ms(c.at)])))?;
        Ok(())
    }
}

impl SegmentMarks for Sql<'_> {
    fn customer_changed(&self, shop_id: i64, customer_id: i64) -> CoreResult<()> {
        // As the triggers did before migration 14: only in a shop with segments.
        sql(self
            .0
            .prepare_cached(
                "INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) SELECT ?1, ?2
                 WHERE EXISTS (SELECT 1 FROM segments WHERE shop_id = ?1 AND deleted_at IS NULL)",
            )
            .and_then(|mut s| s.execute(params![shop_id, customer_id]))
            .map(|_| ()))
    }

    fn ranks_moved(&self, shop_id: i64, models: &BTreeSet<String>, at: DateTime<Utc>) -> CoreResult<()> {
        core(segments::ranks_moved(self.0, shop_id, models, at))
    }
}
