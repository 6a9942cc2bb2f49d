//! The journeys ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, NaiveDate, Utc};
use kith_domain::journeys::{CouponFigures, DateField, Journey, JourneyRun, JourneyRunStatus, JourneyStatus, JourneyVersion, VersionStats};
use kith_domain::segments::Node;
use serde_json::Value;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl JourneysRead for Pg<'_> {
    fn journey(&self, journey_id: i64) -> Result<JourneyRow> {
        Err(unported("JourneysRead::journey"))
    }

    fn journey_in_shop(&self, shop_id: i64, journey_id: i64) -> Result<Option<JourneyRow>> {
        Err(unported("JourneysRead::journey_in_shop"))
    }

    fn definition(&self, journey_id: i64, version: i64) -> Result<Option<Value>> {
        Err(unported("JourneysRead::definition"))
    }

    fn behind(&self) -> Result<Vec<i64>> {
        Err(unported("JourneysRead::behind"))
    }

    fn dated(&self) -> Result<Vec<JourneyRow>> {
        Err(unported("JourneysRead::dated"))
    }

    fn events_after(&self, shop_id: i64, seq: i64, limit: usize) -> Result<Vec<LoggedEvent>> {
        Err(unported("JourneysRead::events_after"))
    }

    fn head(&self, shop_id: i64) -> Result<i64> {
        Err(unported("JourneysRead::head"))
    }

    fn runs_of(&self, journey_id: i64, customer_id: i64) -> Result<RunCounts> {
        Err(unported("JourneysRead::runs_of"))
    }

    fn goal_candidates(&self, journey_id: i64, customer_id: i64, seq: i64, at: DateTime<Utc>) -> Result<Vec<GoalCandidate>> {
        Err(unported("JourneysRead::goal_candidates"))
    }

    fn dated_customers(&self, shop_id: i64, field: &DateField, days: &[NaiveDate]) -> Result<Vec<i64>> {
        Err(unported("JourneysRead::dated_customers"))
    }

    fn due_runs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
        Err(unported("JourneysRead::due_runs"))
    }

    fn run(&self, run_id: i64) -> Result<RunRow> {
        Err(unported("JourneysRead::run"))
    }

    fn messages_spent(&self, journey_id: i64) -> Result<Vec<(String, i64)>> {
        Err(unported("JourneysRead::messages_spent"))
    }

    fn coupons_issued(&self, shop_id: i64, source: &str) -> Result<(i64, i64)> {
        Err(unported("JourneysRead::coupons_issued"))
    }

    fn customer_name(&self, customer_id: i64) -> Result<Option<String>> {
        Err(unported("JourneysRead::customer_name"))
    }

    fn events_since(&self, customer_id: i64, kind: &str, seq: i64) -> Result<Vec<Value>> {
        Err(unported("JourneysRead::events_since"))
    }

    fn customer_matches(&self, shop_id: i64, node: &Node, customer_id: i64, now: DateTime<Utc>) -> Result<bool> {
        Err(unported("JourneysRead::customer_matches"))
    }

    fn view(&self, shop_id: i64, journey_id: i64) -> Result<Option<Journey>> {
        Err(unported("JourneysRead::view"))
    }

    fn ids(&self, shop_id: i64) -> Result<Vec<i64>> {
        Err(unported("JourneysRead::ids"))
    }

    fn versions(&self, journey_id: i64) -> Result<Vec<JourneyVersion>> {
        Err(unported("JourneysRead::versions"))
    }

    fn runs(&self, shop_id: i64, journey_id: i64, filter: &RunFilter, before: Option<i64>, limit: usize) -> Result<Vec<JourneyRun>> {
        Err(unported("JourneysRead::runs"))
    }

    fn customer_runs(&self, shop_id: i64, customer_id: i64) -> Result<Vec<JourneyRun>> {
        Err(unported("JourneysRead::customer_runs"))
    }

    fn segment_live(&self, shop_id: i64, segment_id: i64) -> Result<bool> {
        Err(unported("JourneysRead::segment_live"))
    }

    fn check_condition(&self, shop_id: i64, node: &Node, field: &str, now: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysRead::check_condition"))
    }

    fn segment_members(&self, shop_id: i64, segment_id: i64) -> Result<Vec<i64>> {
        Err(unported("JourneysRead::segment_members"))
    }

    fn recent_events(&self, shop_id: i64, kind: &str, since: DateTime<Utc>) -> Result<Vec<(i64, Value)>> {
        Err(unported("JourneysRead::recent_events"))
    }

    fn count_runs(&self, journey_id: i64, status: JourneyRunStatus) -> Result<i64> {
        Err(unported("JourneysRead::count_runs"))
    }

    fn arm(&self, journey_id: i64, holdout: bool) -> Result<(i64, i64, i64)> {
        Err(unported("JourneysRead::arm"))
    }

    fn messages_by_status(&self, journey_id: i64) -> Result<Vec<(String, String, i64)>> {
        Err(unported("JourneysRead::messages_by_status"))
    }

    fn coupon_figures(&self, shop_id: i64, source: &str) -> Result<CouponFigures> {
        Err(unported("JourneysRead::coupon_figures"))
    }

    fn version_stats(&self, journey_id: i64) -> Result<Vec<VersionStats>> {
        Err(unported("JourneysRead::version_stats"))
    }

    fn step_outcomes(&self, journey_id: i64) -> Result<Vec<StepOutcomes>> {
        Err(unported("JourneysRead::step_outcomes"))
    }

    fn step_messages(&self, journey_id: i64) -> Result<Vec<StepMessages>> {
        Err(unported("JourneysRead::step_messages"))
    }

    fn variant_runs(&self, journey_id: i64) -> Result<Vec<(String, bool, i64)>> {
        Err(unported("JourneysRead::variant_runs"))
    }
}

impl JourneysWrite for Pg<'_> {
    fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<i64>> {
        Err(unported("JourneysWrite::insert_run"))
    }

    fn convert(&self, run_id: i64, at: DateTime<Utc>, revenue: i64, now: DateTime<Utc>) -> Result<usize> {
        Err(unported("JourneysWrite::convert"))
    }

    fn set_cursor(&self, journey_id: i64, seq: i64) -> Result<()> {
        Err(unported("JourneysWrite::set_cursor"))
    }

    fn set_date_through(&self, journey_id: i64, day: NaiveDate) -> Result<()> {
        Err(unported("JourneysWrite::set_date_through"))
    }

    fn pause(&self, journey_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::pause"))
    }

    fn log_step(&self, step: &StepRecord<'_>) -> Result<()> {
        Err(unported("JourneysWrite::log_step"))
    }

    fn end_wait(&self, run_id: i64, step: &str, detail: &str, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("JourneysWrite::end_wait"))
    }

    fn wait(&self, run_id: i64, place: &RunPlace<'_>, until: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::wait"))
    }

    fn end_run(&self, run_id: i64, status: JourneyRunStatus, reason: &str, at: DateTime<Utc>, place: &RunPlace<'_>) -> Result<()> {
        Err(unported("JourneysWrite::end_run"))
    }

    fn fail_run(&self, run_id: i64, reason: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::fail_run"))
    }

    fn move_run(&self, run_id: i64, customer_id: i64) -> Result<()> {
        Err(unported("JourneysWrite::move_run"))
    }

    fn insert_journey(&self, shop_id: i64, name: &str, description: Option<&str>, at: DateTime<Utc>) -> Result<i64> {
        Err(unported("JourneysWrite::insert_journey"))
    }

    fn insert_version(&self, journey_id: i64, version: i64, definition: &Value, at: DateTime<Utc>, created_by: &str) -> Result<()> {
        Err(unported("JourneysWrite::insert_version"))
    }

    fn update_journey(&self, journey_id: i64, name: &str, description: Option<&str>, version: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::update_journey"))
    }

    fn delete_journey(&self, journey_id: i64) -> Result<()> {
        Err(unported("JourneysWrite::delete_journey"))
    }

    fn activate(&self, journey_id: i64, cursor: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::activate"))
    }

    fn exit_runs(&self, journey_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::exit_runs"))
    }

    fn set_status(&self, journey_id: i64, status: JourneyStatus, at: DateTime<Utc>) -> Result<()> {
        Err(unported("JourneysWrite::set_status"))
    }
}
