//! The plugins' port: subscriptions with their cursors and failure state, runs, dead letters,
//! logs and call records, key-value entries; and the scores and tiers plugins decide.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, DeadLetter, EventSnapshot, Grant, InstalledPlugin, LogLevel, LogLine, Manifest, OrderSnapshot, PluginLog, PluginRun,
    Reads, Subscription,
};
use serde_json::Value;

use crate::Result;

/// What one attempt produced besides decisions: kept whether it succeeded or not.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub shop_id: i64,
    pub plugin_id: &'a str,
    pub logs: &'a [LogLine],
    pub duration: Duration,
    pub now: DateTime<Utc>,
}

/// What deliveries read of the plugins' state.
pub trait PluginsRead {
    /// Tag namespaces (`tag-prefix`) other plugins than `plugin_id` declared: (plugin, prefix).
    fn foreign_tag_prefixes(&self, plugin_id: &str) -> Result<Vec<(String, String)>>;
    /// The shop's subscription to the plugin; not found when the shop has none.
    fn subscription(&self, shop_id: i64, plugin_id: &str) -> Result<Subscription>;
    /// A run of the plugin in the shop; not found otherwise.
    fn run(&self, shop_id: i64, plugin_id: &str, run_id: i64) -> Result<PluginRun>;
    /// A dead letter of the plugin in the shop; not found otherwise.
    fn dead_letter(&self, shop_id: i64, plugin_id: &str, id: i64) -> Result<DeadLetter>;
    /// A key-value entry of the plugin in the shop.
    fn kv(&self, shop_id: i64, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// An installed version of a plugin.
    fn installed(&self, plugin_id: &str, version: &str) -> Result<Option<InstalledPlugin>>;
    /// The component hash an installed version of a plugin holds.
    fn installed_sha256(&self, plugin_id: &str, version: &str) -> Result<Option<String>>;
    /// Every installed version of every plugin, in no particular order.
    fn catalogue(&self) -> Result<Vec<InstalledPlugin>>;
    /// Every installed version of one plugin, in no particular order.
    fn versions(&self, plugin_id: &str) -> Result<Vec<InstalledPlugin>>;
    /// The component with this hash.
    fn wasm(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    /// The shop's subscriptions, by plugin id.
    fn subscriptions(&self, shop_id: i64) -> Result<Vec<Subscription>>;
    /// Enabled subscriptions of plugins other than channel connectors, with events past their
    /// cursor and no retry after `now`, least recently updated first.
    fn due_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Due>>;
    /// The global sequence number of the shop's newest event as this transaction sees it; 0
    /// without events.
    fn event_head(&self, shop_id: i64) -> Result<i64>;
    /// The shop's events after `after` up to `end` (sequence numbers) that are about a
    /// customer, were not emitted by `plugin_id`, and are of one of `types` (`None`: of
    /// every type); at most `limit`, by sequence number.
    fn events(
        &self,
        shop_id: i64,
        plugin_id: &str,
        types: Option<&[String]>,
        after: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<EventSnapshot>>;
    /// The plugin's dead letters in the shop, newest first, at most 1000.
    fn dead_letters(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<DeadLetter>>;
    /// The id of the plugin's running run in the shop.
    fn running_run(&self, shop_id: i64, plugin_id: &str) -> Result<Option<i64>>;
    /// The plugin's runs in the shop, newest first, at most 100.
    fn runs(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<PluginRun>>;
    /// Running runs of enabled subscriptions with no retry after `now`: (shop, plugin, run), by run id.
    fn due_plugin_runs(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, i64)>>;
    /// How many runs schedules call for at `now` ([`PluginsWrite::start_scheduled_runs`]).
    fn scheduled_runs_due(&self, now: DateTime<Utc>) -> Result<i64>;
    /// The shop's active (not merged) customers.
    fn active_customer_count(&self, shop_id: i64) -> Result<i64>;
    /// Active customers of the shop after `after`, by id, at most `limit`, as a plugin that
    /// reads `reads` sees them.
    fn customer_batch(&self, shop_id: i64, after: i64, limit: usize, reads: Reads) -> Result<Vec<Customer>>;
    /// Those of the active customers `ids` that are in the shop, as a plugin that reads
    /// `reads` sees them, read together whatever their number; in no particular order.
    fn plugin_customers(&self, shop_id: i64, ids: &[i64], reads: Reads) -> Result<Vec<Customer>>;
    /// The shop's order with the shop's own id, with its items.
    fn order_snapshot(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderSnapshot>>;
    /// Per buyer (an active customer with orders): what they spent, their orders and their
    /// last order; over every order (`since` none) or over orders not refunded paid since.
    fn buyer_stats(&self, shop_id: i64, since: Option<DateTime<Utc>>) -> Result<Vec<BuyerStats>>;
    /// The shop's customer's newest orders paid since `since` with their items, at most
    /// `MAX_HISTORY_ORDERS`; and whether older ones were left out (none when the customer is
    /// not the shop's).
    fn recent_orders(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>) -> Result<(Vec<OrderSnapshot>, bool)>;
    /// The shop's customer's newest behaviours since `since`, at most `limit` (none when the
    /// customer is not the shop's).
    fn recent_behaviours(&self, shop_id: i64, customer_id: i64, since: DateTime<Utc>, limit: usize) -> Result<Vec<BehaviourSnapshot>>;
    /// Keys and bytes (keys and values together) of the plugin's key-value space in the shop.
    fn kv_usage(&self, shop_id: i64, plugin_id: &str) -> Result<(u64, u64)>;
    /// The plugin's log lines in the shop with ids below `before`, newest first, at most `limit`.
    fn logs(&self, shop_id: i64, plugin_id: &str, before: i64, limit: usize) -> Result<Vec<PluginLog>>;
    /// The plugin's kept call records in the shop, newest first: (duration in µs, error).
    fn calls(&self, shop_id: i64, plugin_id: &str) -> Result<Vec<(i64, Option<String>)>>;
}

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

/// What one buyer spent, in how many orders, and when last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuyerStats {
    pub spent: i64,
    pub orders: i64,
    pub last_order: Option<DateTime<Utc>>,
}

/// A subscription's state after a failed delivery.
#[derive(Debug, Clone)]
pub struct FailureState<'a> {
    pub cursor: i64,
    /// Attempts at the batch now at the cursor.
    pub attempts: i64,
    pub consecutive_failures: i64,
    pub retry_at: Option<DateTime<Utc>>,
    pub last_error: &'a str,
    /// The breaker tripped: the subscription is off until enabled again.
    pub tripped: bool,
    pub at: DateTime<Utc>,
}

/// A dead letter to record: a batch given up on.
#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    pub shop_id: i64,
    pub plugin_id: &'a str,
    pub version: &'a str,
    pub first_seq: i64,
    pub last_seq: i64,
    pub attempts: i64,
    pub error: &'a str,
    pub at: DateTime<Utc>,
}

/// Writes of the plugins' state.
pub trait PluginsWrite {
    /// Move an enabled subscription's cursor from `from` to `to` and clear its failure state
    /// (attempts, consecutive failures, retry time, last error); false when the cursor was
    /// not at `from` or the subscription is not enabled (compare-and-set).
    fn commit_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<bool>;
    /// Move the cursor from `from` to `to` past events the plugin does not take, leaving its
    /// failure state; nothing when it was not at `from`.
    fn skip_cursor(&self, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()>;
    /// Set a subscription's state after a failure.
    fn set_failure_state(&self, shop_id: i64, plugin_id: &str, state: &FailureState<'_>) -> Result<()>;
    /// Keep an attempt's log lines and its call record (with `error` when it failed),
    /// dropping the oldest beyond what is kept per shop and plugin.
    fn record_attempt(&self, attempt: &Attempt<'_>, error: Option<&str>) -> Result<()>;
    /// One log line of the plugin in the shop.
    fn log(&self, shop_id: i64, plugin_id: &str, level: LogLevel, message: &str, at: DateTime<Utc>) -> Result<()>;
    /// Set (`Some`) or delete (`None`) a key-value entry of the plugin in the shop.
    fn put_kv(&self, shop_id: i64, plugin_id: &str, key: &str, value: Option<&[u8]>) -> Result<()>;
    /// Record a dead letter; its id.
    fn add_dead_letter(&self, letter: &NewDeadLetter<'_>) -> Result<i64>;
    /// Mark a dead letter re-driven at `at` and count the attempt; false when it was already.
    fn mark_redriven(&self, shop_id: i64, plugin_id: &str, id: i64, at: DateTime<Utc>) -> Result<bool>;
    /// Count a failed re-drive of the shop's dead letter with its error (nothing when the
    /// dead letter is not the shop's).
    fn redrive_failed(&self, shop_id: i64, id: i64, error: &str) -> Result<()>;
    /// Move the shop's running run's checkpoint from `from` to `to`, count `processed`
    /// customers, clear its failure state, and close it (`done`, finished at `at`) when
    /// `finished`; false when the run was not running at `from` or is not the shop's
    /// (compare-and-set).
    #[allow(clippy::too_many_arguments, reason = "the shop, the run and its compare-and-set")]
    fn advance_run(&self, shop_id: i64, run_id: i64, from: i64, to: i64, processed: i64, finished: bool, at: DateTime<Utc>)
    -> Result<bool>;
    /// Set the shop's run's state after a failed batch: its attempts, error and retry time, and
    /// `failed` (finished at `at`) when it is given up on (nothing when the run is not the
    /// shop's).
    #[allow(clippy::too_many_arguments, reason = "the shop, the run and its failure state")]
    fn run_failed(
        &self,
        shop_id: i64,
        run_id: i64,
        attempts: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        failed: bool,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Keep a component under its hash (nothing when it is kept already).
    fn put_blob(&self, sha256: &str, wasm: &[u8]) -> Result<()>;
    /// Add a plugin version to the catalogue.
    fn insert_plugin(&self, manifest: &Manifest, sha256: &str, size: i64, at: DateTime<Utc>, installed_by: &str) -> Result<()>;
    /// Change the shop's subscription to `put` and enable it with its failure state cleared;
    /// false when the shop has none.
    fn update_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, at: DateTime<Utc>) -> Result<bool>;
    /// A new enabled subscription of the shop, its cursor at `cursor`.
    fn insert_subscription(&self, shop_id: i64, put: &PutSubscription<'_>, cursor: i64, at: DateTime<Utc>) -> Result<()>;
    /// Disable the shop's subscription and clear its retry time; false when the shop has none.
    fn disable_subscription(&self, shop_id: i64, plugin_id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// A new running run over `total` customers; its id.
    fn insert_run(&self, shop_id: i64, plugin_id: &str, total: i64, at: DateTime<Utc>) -> Result<i64>;
    /// Put the shop's run back to running with its failure state cleared (nothing when the run
    /// is not the shop's).
    fn resume_run(&self, shop_id: i64, run_id: i64) -> Result<()>;
    /// Start a run, over the shop's active customers, for every enabled subscription of a
    /// plugin other than a channel connector with `run_every_hours`, no run in progress and
    /// none started in that many hours before `now`; how many started.
    fn start_scheduled_runs(&self, now: DateTime<Utc>) -> Result<usize>;
}

/// A score to write.
#[derive(Debug, Clone, Copy)]
pub struct ScoreWrite<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub model: &'a str,
    pub value: f64,
    pub label: Option<&'a str>,
    pub explanation: &'a str,
    pub at: DateTime<Utc>,
}

/// Scores: one per customer and model, the latest written.
pub trait ScoresWrite {
    /// Set the customer's score of the model.
    fn upsert(&self, score: &ScoreWrite<'_>) -> Result<()>;
    /// The shop's customer's score of the model (none when the customer is not the shop's).
    fn value(&self, shop_id: i64, customer_id: i64, model: &str) -> Result<Option<f64>>;
    /// Delete the shop's scores of the plugin's models (the model named as the plugin, and
    /// `<plugin>.<facet>`) written before `before`; the models and customers that lost scores.
    fn delete_older(&self, shop_id: i64, plugin_id: &str, before: DateTime<Utc>) -> Result<DeletedScores>;
}

/// Scores deleted: the models and the customers that lost some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedScores {
    pub models: BTreeSet<String>,
    pub customers: BTreeSet<i64>,
}

/// A change of a customer's tier.
#[derive(Debug, Clone, Copy)]
pub struct TierChange<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub reason: &'a str,
    /// Who changed it: the plugin's id.
    pub source: &'a str,
    pub at: DateTime<Utc>,
}

/// Members' tiers.
pub trait TiersWrite {
    /// The shop's customer's tier (none when the customer is not the shop's).
    fn tier(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>>;
    /// Set the customer's tier and record the change in its history.
    fn change(&self, change: &TierChange<'_>) -> Result<()>;
}

/// What segments must learn of writes: whose data changed (the core's writers say it, the
/// backend hides no marking of its own), and the ranks that moved in ways no customer's own
/// data shows.
pub trait SegmentMarks {
    /// What segments read of the customer changed (profile, stats, orders, behaviours, tags,
    /// scores, points, tier, a merge): the next refresh re-evaluates the customer against the
    /// shop's segments. Marking a customer marked already is marking once; a backend may
    /// skip the mark of a shop without segments.
    fn customer_changed(&self, shop_id: i64, customer_id: i64) -> Result<()>;

    /// Scores of these models changed: segments ranking customers by them (top or bottom
    /// percent) may have moved for customers whose own scores did not change.
    fn ranks_moved(&self, shop_id: i64, models: &BTreeSet<String>, at: DateTime<Utc>) -> Result<()>;
}
