//! The plugins ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use std::collections::BTreeSet;
use std::time::Duration;
use chrono::{DateTime, Utc};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, DeadLetter, EventSnapshot, Grant, InstalledPlugin, LogLevel, LogLine, Manifest, OrderSnapshot, PluginLog, PluginRun,
    Reads, Subscription,
};
use serde_json::Value;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl PluginsRead for Pg<'_> {
    fn foreign_tag_prefixes(&self, plugin_id: &str) -> Result<Vec<(String, String)>> {
        Err(unported("PluginsRead::foreign_tag_prefixes"))
    }

    fn subscription(&self, shop_id: i64, plugin_id: &str) -> Result<Subscription> {
        Err(unported("PluginsRead::subscription"))
    }

    fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun> {
        Err(unported("PluginsRead::run"))
    }

    fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter> {
        Err(unported("PluginsRead::dead_letter"))
    }

    fn kv(&self, shop_id: i64, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Err(unported("PluginsRead::kv"))
    }

    fn installed(&self, plugin_id: &str, version: &str) -> Result<Option<InstalledPlugin>> {
        Err(unported("PluginsRead::installed"))
    }

    fn installed_sha256(&self, plugin_id: &str, version: &str) -> Result<Option<String>> {
        Err(unported("PluginsRead::installed_sha256"))
    }

    fn catalogue(&self) -> Result<Vec<InstalledPlugin>> {
        Err(unported("PluginsRead::catalogue"))
    }

    fn versions(&self, plugin_id: &str) -> Result<Vec<InstalledPlugin>> {
        Err(unported("PluginsRead::versions"))
    }

    fn wasm(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Err(unported("PluginsRead::wasm"))
    }

    fn subscriptions(&self, shop_id: i64) -> Result<Vec<Subscription>> {
        Err(unported("PluginsRead::subscriptions"))
    }

    fn due_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Due>> {
        Err(unported("PluginsRead::due_subscriptions"))
    }

    fn event_head(&self, shop_id: i64) -> Result<i64> {
        Err(unported("PluginsRead::event_head"))
    }

    fn events( &self, shop_id: i64, plugin_id: &str, types: Option<&[String]>, after: i64, end: i64, limit: usize, ) -> Result<Vec<EventSnapshot>> {
        Err(unported("PluginsRead::events"))
    }

    fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>> {
        Err(unported("PluginsRead::dead_letters"))
    }

    fn running_run(&self, shop_id: i64, plugin_id: &str) -> Result<Option<i64>> {
        Err(unported("PluginsRead::running_run"))
    }

    fn runs(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>> {
        Err(unported("PluginsRead::runs"))
    }

    fn due_runs(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>> {
        Err(unported("PluginsRead::due_runs"))
    }

    fn scheduled_runs_due(&self, now: DateTime<Utc>) -> Result<i64> {
        Err(unported("PluginsRead::scheduled_runs_due"))
    }

    fn active_customer_count(&self, shop_id: i64) -> Result<i64> {
        Err(unported("PluginsRead::active_customer_count"))
    }

    fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>> {
        Err(unported("PluginsRead::customer_batch"))
    }

    fn plugin_customers(&self, shop_id: i64, ids: &[i64], reads: Reads) -> Result<Vec<Customer>> {
        Err(unported("PluginsRead::plugin_customers"))
    }

    fn order_snapshot(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderSnapshot>> {
        Err(unported("PluginsRead::order_snapshot"))
    }

    fn buyer_stats(&self, shop_id: i64, since: Option<DateTime<Utc>>) -> Result<Vec<BuyerStats>> {
        Err(unported("PluginsRead::buyer_stats"))
    }

    fn recent_orders(&self, customer_id: i64, since: DateTime<Utc>) -> Result<(Vec<OrderSnapshot>, bool)> {
        Err(unported("PluginsRead::recent_orders"))
    }

    fn recent_behaviours(&self, customer_id: i64, since: DateTime<Utc>, limit: usize) -> Result<Vec<BehaviourSnapshot>> {
        Err(unported("PluginsRead::recent_behaviours"))
    }

    fn kv_usage(&self, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)> {
        Err(unported("PluginsRead::kv_usage"))
    }

    fn logs(&self, shop_id: i64, plugin_id: &str, before: i64, limit: usize) -> Result<Vec<PluginLog>> {
        Err(unported("PluginsRead::logs"))
    }

    fn calls(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<(i64, Option<String>)>> {
        Err(unported("PluginsRead::calls"))
    }
}

impl PluginsWrite for Pg<'_> {
    fn commit_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<bool> {
        Err(unported("PluginsWrite::commit_cursor"))
    }

    fn skip_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()> {
        Err(unported("PluginsWrite::skip_cursor"))
    }

    fn set_failure_state(&self, shop_id: i64, plugin_id: &str, state: &FailureState<'_>) -> Result<()> {
        Err(unported("PluginsWrite::set_failure_state"))
    }

    fn record_attempt(&self, attempt: &Attempt<'_>, error: Option<&str>) -> Result<()> {
        Err(unported("PluginsWrite::record_attempt"))
    }

    fn log(&self, shop_id: i64, plugin_id: &str, level: LogLevel, message: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("PluginsWrite::log"))
    }

    fn put_kv(&self, shop_id: i64, plugin_id: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        Err(unported("PluginsWrite::put_kv"))
    }

    fn add_dead_letter(&self, letter: &NewDeadLetter<'_>) -> Result<i64> {
        Err(unported("PluginsWrite::add_dead_letter"))
    }

    fn mark_redriven(&self, shop_id: i64, plugin_id: &str, id: i64, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("PluginsWrite::mark_redriven"))
    }

    fn redrive_failed(&self, id: i64, error: &str) -> Result<()> {
        Err(unported("PluginsWrite::redrive_failed"))
    }

    fn advance_run(&self, run_id: i64, from: i64, to: i64, processed: i64, finished: bool, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("PluginsWrite::advance_run"))
    }

    fn run_failed(&self, run_id: i64, attempts: i64, error: &str, retry_at: DateTime<Utc>, failed: bool, at: DateTime<Utc>) -> Result<()> {
        Err(unported("PluginsWrite::run_failed"))
    }

    fn put_blob(&self, sha256: &str, wasm: &[u8]) -> Result<()> {
        Err(unported("PluginsWrite::put_blob"))
    }

    fn insert_plugin(&self, manifest: &Manifest, sha256: &str, size: i64, at: DateTime<Utc>, installed_by: &str) -> Result<()> {
        Err(unported("PluginsWrite::insert_plugin"))
    }

    fn update_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("PluginsWrite::update_subscription"))
    }

    fn insert_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, cursor: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("PluginsWrite::insert_subscription"))
    }

    fn disable_subscription(&self, shop_id: i64, plugin_id: &str, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("PluginsWrite::disable_subscription"))
    }

    fn insert_run(&self, shop_id: i64, plugin_id: &str, total: i64, at: DateTime<Utc>) -> Result<i64> {
        Err(unported("PluginsWrite::insert_run"))
    }

    fn resume_run(&self, run_id: i64) -> Result<()> {
        Err(unported("PluginsWrite::resume_run"))
    }

    fn start_scheduled_runs(&self, now: DateTime<Utc>) -> Result<usize> {
        Err(unported("PluginsWrite::start_scheduled_runs"))
    }
}

impl ScoresWrite for Pg<'_> {
    fn upsert(&self, score: &ScoreWrite<'_>) -> Result<()> {
        Err(unported("ScoresWrite::upsert"))
    }

    fn value(&self, customer_id: i64, model: &str) -> Result<Option<f64>> {
        Err(unported("ScoresWrite::value"))
    }

    fn delete_older(&self, shop_id: i64, plugin_id: &str, before: DateTime<Utc>) -> Result<DeletedScores> {
        Err(unported("ScoresWrite::delete_older"))
    }
}

impl TiersWrite for Pg<'_> {
    fn tier(&self, customer_id: i64) -> Result<Option<String>> {
        Err(unported("TiersWrite::tier"))
    }

    fn change(&self, change: &TierChange<'_>) -> Result<()> {
        Err(unported("TiersWrite::change"))
    }
}

impl SegmentMarks for Pg<'_> {
    fn customer_changed(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        Err(unported("SegmentMarks::customer_changed"))
    }

    fn ranks_moved(&self, shop_id: i64, models: &BTreeSet<String>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("SegmentMarks::ranks_moved"))
    }
}
