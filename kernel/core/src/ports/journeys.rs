//! The journey engine's ports: journeys as the engine moves them (cursor, day of the
//! last date entries), their versions' definitions, the runs of customers through them
//! and each step's outcome, and the few questions a step asks of the rest of the shop
//! (events since a run's entry, what the journey spent, whether a customer meets a
//! condition).

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::journeys::{CouponFigures, DateField, Journey, JourneyRun, JourneyRunStatus, JourneyStatus, JourneyVersion, VersionStats};
use kith_domain::segments::Node;
use serde_json::Value;

use crate::Result;

/// A journey as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyRow {
    pub id: i64,
    pub shop_id: i64,
    pub name: String,
    pub status: JourneyStatus,
    /// The current version: new entries follow it.
    pub version: i64,
    /// The last event of the shop's log the journey has matched (global sequence number).
    pub cursor: i64,
    /// The last shop day a date trigger entered its customers for.
    pub date_through: Option<NaiveDate>,
}

/// An event of a shop's log, as the engine's intake reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub seq: i64,
    pub kind: String,
    pub customer_id: Option<i64>,
    /// The payload as the log keeps it (JSON text): the intake parses only the payloads of
    /// events that match its trigger or goal.
    pub payload: String,
    pub logged_at: DateTime<Utc>,
}

/// A customer's runs of a journey, the customers merged into them included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCounts {
    pub runs: i64,
    pub active: i64,
    pub last_entered: Option<DateTime<Utc>>,
}

/// A run a goal event may convert: not converted, not failed, entered before the event
/// in the log and with a goal window open at its time.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalCandidate {
    pub run_id: i64,
    pub context: Value,
    pub entered_at: DateTime<Utc>,
}

/// A new run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub shop_id: i64,
    pub journey_id: i64,
    pub version: i64,
    pub customer_id: i64,
    /// With the journey and the customer, makes the entry once only.
    pub entry_key: &'a str,
    /// The head of the shop's log at entry: events after it happened since entry.
    pub entry_seq: i64,
    pub holdout: bool,
    pub step: &'a str,
    /// Due at once: the time of entry.
    pub at: DateTime<Utc>,
    pub context: &'a Value,
    pub goal_until: Option<DateTime<Utc>>,
}

/// A run as the engine executes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub shop_id: i64,
    pub journey_id: i64,
    pub journey: String,
    pub version: i64,
    pub customer_id: i64,
    pub entry_seq: i64,
    pub holdout: bool,
    /// The `step:variant` labels of the splits it went through, comma-separated.
    pub variant: Option<String>,
    pub step: String,
    pub context: Value,
}

/// A step's outcome, as the run's history keeps it.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    pub run_id: i64,
    pub step: &'a str,
    pub kind: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
    pub message_id: Option<&'a str>,
    pub coupon_id: Option<i64>,
    pub at: DateTime<Utc>,
}

/// Where a run stands when it waits or ends: its step, split labels and context.
#[derive(Debug, Clone, Copy)]
pub struct RunPlace<'a> {
    pub step: &'a str,
    pub variant: Option<&'a str>,
    pub context: &'a Value,
}

/// A filter on the runs of a journey.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub customer_id: Option<i64>,
    pub status: Option<JourneyRunStatus>,
}

/// Runs of a version's step by outcome (a wait whose run ended counts under how the
/// run ended), with the reason when the step was skipped (empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcomes {
    pub version: i64,
    pub step: String,
    pub kind: String,
    pub outcome: String,
    pub reason: String,
    pub count: i64,
}

/// Messages a version's step queued, by channel and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMessages {
    pub version: i64,
    pub step: String,
    pub channel: String,
    pub status: String,
    pub count: i64,
}

/// What the journey engine reads.
pub trait JourneysRead {
    /// A journey of the shop by id (the engine found it in its own listings); not found
    /// when it is another shop's.
    fn journey(&self, shop_id: i64, journey_id: i64) -> Result<JourneyRow>;
    /// A journey of the shop; not found when it is another shop's.
    fn journey_in_shop(&self, shop_id: i64, journey_id: i64) -> Result<Option<JourneyRow>>;
    /// A version's definition as saved; `None` without such a version of the shop's journey.
    fn definition(&self, shop_id: i64, journey_id: i64, version: i64) -> Result<Option<Value>>;
    /// Active and paused journeys of any shop whose cursor is behind their shop's log, as
    /// (shop, journey).
    fn behind(&self) -> Result<Vec<(i64, i64)>>;
    /// Active journeys whose current version has a date trigger.
    fn dated(&self) -> Result<Vec<JourneyRow>>;
    /// The shop's events after `seq`, oldest first, at most `limit`.
    fn events_after(&self, shop_id: i64, seq: i64, limit: usize) -> Result<Vec<LoggedEvent>>;
    /// The head of the shop's log: its last event's global sequence number, 0 before any.
    fn head(&self, shop_id: i64) -> Result<i64>;
    /// A customer's runs of the shop's journey (the customers merged into them included).
    fn runs_of(&self, shop_id: i64, journey_id: i64, customer_id: i64) -> Result<RunCounts>;
    /// Runs of the shop's journey by the customer (and by those merged into them) a goal
    /// event logged at `seq` and happening at `at` may convert.
    fn goal_candidates(&self, shop_id: i64, journey_id: i64, customer_id: i64, seq: i64, at: DateTime<Utc>) -> Result<Vec<GoalCandidate>>;
    /// The shop's unmerged customers whose date field falls on one of these days as an
    /// anniversary (a 29 February in a year's 28 February when that year has none), by id.
    fn dated_customers(&self, shop_id: i64, field: &DateField, days: &[NaiveDate]) -> Result<Vec<i64>>;
    /// Runs of active journeys of any shop due at `now`, the most overdue first, at most
    /// `limit`, as (shop, run).
    fn due_journey_runs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(i64, i64)>>;
    /// A run of the shop to execute; not found when it is another shop's.
    fn run(&self, shop_id: i64, run_id: i64) -> Result<RunRow>;
    /// The shop's journey's messages that cost or may cost (not suppressed, not failed),
    /// counted by channel.
    fn messages_spent(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, i64)>>;
    /// The coupons issued in the shop from `source`: how many, and their face value.
    fn coupons_issued(&self, shop_id: i64, source: &str) -> Result<(i64, i64)>;
    /// The shop's customer's name, for a message's placeholders; `None` when it is
    /// another shop's.
    fn customer_name(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>>;
    /// Payloads of the shop's customer's events (theirs and of the customers merged into
    /// them) of type `kind` after `seq`, oldest first, at most 1000.
    fn events_since(&self, shop_id: i64, customer_id: i64, kind: &str, seq: i64) -> Result<Vec<Value>>;
    /// Whether the shop's customer meets a customer condition at `now`.
    fn customer_matches(&self, shop_id: i64, node: &Node, customer_id: i64, now: DateTime<Utc>) -> Result<bool>;

    // Journeys as the shop reads them.

    /// A journey of the shop with its current definition and runs in progress.
    fn view(&self, shop_id: i64, journey_id: i64) -> Result<Option<Journey>>;
    /// Ids of the shop's journeys, in order.
    fn ids(&self, shop_id: i64) -> Result<Vec<i64>>;
    /// Every version of the shop's journey, in order; none when it is another shop's.
    fn versions(&self, shop_id: i64, journey_id: i64) -> Result<Vec<JourneyVersion>>;
    /// A journey's runs with their histories, newest first, before run id `before` when given.
    fn runs(&self, shop_id: i64, journey_id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> Result<Vec<JourneyRun>>;
    /// The runs of a customer (and of the customers merged into them) with their histories,
    /// newest first, the newest 200.
    fn customer_runs(&self, shop_id: i64, customer_id: i64) -> Result<Vec<JourneyRun>>;
    /// Whether the shop has the segment, not deleted.
    fn segment_live(&self, shop_id: i64, segment_id: i64) -> Result<bool>;
    /// Check that a customer condition holds together in the shop (its segments exist, no
    /// cycle); an invalid one is named by `field`.
    fn check_condition(&self, shop_id: i64, node: &Node, field: &str, now: DateTime<Utc>) -> Result<()>;
    /// The members of the shop's segment now, by id.
    fn segment_members(&self, shop_id: i64, segment_id: i64) -> Result<Vec<i64>>;
    /// The customers and payloads of the shop's events of type `kind` logged since `since`,
    /// newest first, at most 100,000.
    fn recent_events(&self, shop_id: i64, kind: &str, since: DateTime<Utc>) -> Result<Vec<(i64, Value)>>;

    // A journey's statistics: those of the shop's journey, nothing for another shop's.

    /// How many of the journey's runs are in `status`.
    fn count_runs(&self, shop_id: i64, journey_id: i64, status: JourneyRunStatus) -> Result<i64>;
    /// The journey's treated (or holdout) runs: entered, converted and their revenue.
    fn arm(&self, shop_id: i64, journey_id: i64, holdout: bool) -> Result<(i64, i64, i64)>;
    /// The journey's messages counted by (channel, status).
    fn messages_by_status(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, String, i64)>>;
    /// The shop's coupons from `source`: issued and redeemed, with their face values.
    fn coupon_figures(&self, shop_id: i64, source: &str) -> Result<CouponFigures>;
    /// The journey's runs by version.
    fn version_stats(&self, shop_id: i64, journey_id: i64) -> Result<Vec<VersionStats>>;
    /// The journey's steps by version, step, kind, outcome and skip reason.
    fn step_outcomes(&self, shop_id: i64, journey_id: i64) -> Result<Vec<StepOutcomes>>;
    /// The journey's messages by version, step, channel and status.
    fn step_messages(&self, shop_id: i64, journey_id: i64) -> Result<Vec<StepMessages>>;
    /// The treated runs that went through splits: their `step:variant` labels
    /// (comma-separated), whether they converted, and their revenue (0 without one).
    fn variant_runs(&self, shop_id: i64, journey_id: i64) -> Result<Vec<(String, bool, i64)>>;
}

/// What the journey engine writes: every method but [`JourneysWrite::insert_run`] (whose
/// run names its shop) takes the shop and changes nothing of another shop's.
pub trait JourneysWrite {
    /// Enter a run; its id, or `None` when the journey's customer already used the entry key.
    fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<i64>>;
    /// Convert the shop's run at `at` bringing `revenue`; an active run ends with the goal
    /// reached at `now`. How many rows changed (0 when the run is another shop's).
    fn convert(&self, shop_id: i64, run_id: i64, at: DateTime<Utc>, revenue: i64, now: DateTime<Utc>) -> Result<usize>;
    /// Move the shop's journey's cursor on the shop's log.
    fn set_cursor(&self, shop_id: i64, journey_id: i64, seq: i64) -> Result<()>;
    /// Record the last shop day a date trigger entered its customers for.
    fn set_date_through(&self, shop_id: i64, journey_id: i64, day: NaiveDate) -> Result<()>;
    /// Pause an active journey (it failed to take entries).
    fn pause(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Record a step's outcome of the shop's run; the run's record of the same step is
    /// replaced. An error when the run is not the shop's.
    fn log_step(&self, shop_id: i64, step: &StepRecord<'_>) -> Result<()>;
    /// End the run's wait at `step` if it was waiting there (`waited`, with `detail`);
    /// false when it was not.
    fn end_wait(&self, shop_id: i64, run_id: i64, step: &str, detail: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Make the run wait at its place until `until`.
    fn wait(&self, shop_id: i64, run_id: i64, place: &RunPlace<'_>, until: DateTime<Utc>) -> Result<()>;
    /// End the run at its place.
    fn end_run(
        &self,
        shop_id: i64,
        run_id: i64,
        status: JourneyRunStatus,
        reason: &str,
        at: DateTime<Utc>,
        place: &RunPlace<'_>,
    ) -> Result<()>;
    /// Fail an active run whose step failed.
    fn fail_run(&self, shop_id: i64, run_id: i64, reason: &str, at: DateTime<Utc>) -> Result<()>;
    /// Give the run to another customer (the survivor of a merge).
    fn move_run(&self, shop_id: i64, run_id: i64, customer_id: i64) -> Result<()>;

    // Journeys as the shop edits them.

    /// A new draft journey at version 1 (its version is inserted apart); its id.
    fn insert_journey(&self, shop_id: i64, name: &str, description: Option<&str>, at: DateTime<Utc>) -> Result<i64>;
    /// A new version of the shop's journey's definition; an error when the journey is
    /// not the shop's.
    fn insert_version(
        &self,
        shop_id: i64,
        journey_id: i64,
        version: i64,
        definition: &Value,
        at: DateTime<Utc>,
        created_by: &str,
    ) -> Result<()>;
    /// Replace a journey's name, description and current version.
    fn update_journey(
        &self,
        shop_id: i64,
        journey_id: i64,
        name: &str,
        description: Option<&str>,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Delete a journey and its versions.
    fn delete_journey(&self, shop_id: i64, journey_id: i64) -> Result<()>;
    /// Start a journey at `cursor` of its shop's log, activated at `at`.
    fn activate(&self, shop_id: i64, journey_id: i64, cursor: i64, at: DateTime<Utc>) -> Result<()>;
    /// End the journey's runs in progress: it was archived.
    fn exit_runs(&self, shop_id: i64, journey_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Set a journey's status.
    fn set_status(&self, shop_id: i64, journey_id: i64, status: JourneyStatus, at: DateTime<Utc>) -> Result<()>;
}
