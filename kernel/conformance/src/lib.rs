//! The conformance suite: what every storage backend of Kith's core must pass.
//!
//! A backend crate runs the whole suite from one test file:
//!
//! ```ignore
//! struct Sqlite;
//! impl kith_conformance::Factory for Sqlite {
//!     fn fresh(&self) -> Box<dyn kith_conformance::Backend> { /* a new, empty database */ }
//! }
//! kith_conformance::suite!(Sqlite);
//! ```
//!
//! [`suite!`] expands to one `#[test]` per case, so each case passes or fails on its
//! own under `cargo test`. The cases drive the features through the core (its
//! functions over [`kith_core::Storage`]) and read the outcome back through the
//! ports, so that a case checks the core's rules and the backend's keeping of its
//! contract at once. Plugins, where a case needs one, are plain Rust at the core's
//! boundary: no wasm component is compiled or run.

use chrono::{DateTime, TimeZone, Utc};
use kith_core::Storage;
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::model::IngestReport;
use serde_json::Value;

pub mod coupons;
pub mod delivery;
pub mod identity;
pub mod journeys;
pub mod ledger;
pub mod outbox;
pub mod segments;

/// A database of one backend, new and empty for one case.
///
/// Besides its storage, a backend offers the set-up the core does not own yet
/// (shops and settings are still the backend's own code; ingest is the core's): as features
/// move into the core, these give way to the core's functions.
pub trait Backend {
    /// The backend as the core's storage.
    fn storage(&self) -> &dyn Storage;
    /// Create a shop in the given IANA time zone; its id.
    fn create_shop(&self, name: &str, time_zone: &str) -> i64;
    /// Ingest a batch of events as clients send them, at `now`, through the core's ingest
    /// with the default identity caps. A backend does not implement it.
    fn ingest(&self, shop_id: i64, events: Vec<Value>, now: DateTime<Utc>) -> IngestReport {
        let caps = kith_core::ingest::IdentityCaps::default();
        kith_core::ingest::ingest(self.storage(), shop_id, events, &caps, &kith_core::Actor::cli("conformance"), now)
            .expect("the batch is ingested")
    }
    /// Set a shop's loyalty settings.
    fn put_loyalty_settings(&self, shop_id: i64, settings: &LoyaltySettings);
    /// Set a shop's messaging settings (channel policies).
    fn put_messaging_settings(&self, shop_id: i64, settings: &kith_domain::messaging::MessagingSettings);
    /// Install a channel connector plugin that sends `channel` and enable it in the shop, so
    /// that the shop's route for the channel points to it. No component is run.
    fn enable_connector(&self, shop_id: i64, plugin_id: &str, channel: &str);
    /// Install the plugin of this `plugin.toml` and enable it in the shop with every
    /// capability it requests. No component is run: its decisions are the case's.
    fn enable_plugin(&self, shop_id: i64, manifest: &str);
    /// Create a coupon template in the shop; its id.
    fn create_coupon_template(&self, shop_id: i64, input: &kith_domain::coupons::CouponTemplateInput) -> i64;
    /// Create a reward in the shop; its id.
    fn create_reward(&self, shop_id: i64, input: &kith_domain::loyalty::RewardInput) -> i64;
    /// Save a segment of `definition` in the shop at `now` (its first members entering
    /// without events); its id.
    fn create_segment(&self, shop_id: i64, name: &str, definition: Value, now: DateTime<Utc>) -> i64;
    /// Save a journey of this definition in the shop and activate it at `now` (its cursor at
    /// the head of the shop's log); its id.
    fn create_journey(&self, shop_id: i64, definition: Value, now: DateTime<Utc>) -> i64;
    /// A journey's runs, newest first, each with its steps' history.
    fn journey_runs(&self, shop_id: i64, journey_id: i64) -> Vec<kith_domain::journeys::JourneyRun>;
    /// Delete a segment of the shop at `now`.
    fn delete_segment(&self, shop_id: i64, segment_id: i64, now: DateTime<Utc>);
    /// The shop's event log, oldest first: each event's type and payload.
    fn events(&self, shop_id: i64) -> Vec<(String, Value)>;
}

/// Makes a new, empty backend for each case.
pub trait Factory {
    fn fresh(&self) -> Box<dyn Backend>;
}

/// The suite's cases, named once: [`suite!`] makes a test of each.
#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($factory:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::$module::$case(&$factory)
            }
        )*
    };
}

/// One `#[test]` per case of the suite, each on a fresh backend of `$factory`
/// (an expression of a type implementing [`Factory`]).
#[macro_export]
macro_rules! suite {
    ($factory:expr) => {
        $crate::__cases!($factory;
            ledger::ledger_spending_draws_the_oldest_batches_first,
            ledger::ledger_source_key_posts_once,
            ledger::ledger_debt_is_paid_first_by_later_earnings,
            ledger::ledger_forgive_policy_writes_off_a_refunds_debt,
            ledger::ledger_partial_refunds_claw_back_the_refunded_share,
            ledger::ledger_award_for_a_refunded_order_loses_the_share_at_once,
            ledger::ledger_expiry_takes_what_remains_of_each_due_batch,
            ledger::ledger_adjustments_refuse_overdraws_and_answer_resends,
            ledger::ledger_merge_joins_two_ledgers,
            ledger::ledger_is_scoped_by_shop,
            identity::identity_table_cases,
            identity::identity_duplicates_by_event_id,
            identity::identity_an_event_failing_after_writing_leaves_nothing,
            identity::identity_orders_and_refunds_keep_stats,
            identity::identity_shops_are_kept_apart,
            identity::merge_survivor_is_the_customer_first_seen_earliest,
            identity::merge_then_unmerge_restores_everything,
            identity::merge_nested_unmerges_outer_first,
            outbox::outbox_opt_out_suppresses_and_opting_in_again_sends,
            outbox::outbox_without_an_address_a_message_is_suppressed,
            outbox::outbox_without_a_connector_a_message_is_retried_then_sent,
            outbox::outbox_quiet_hours_across_midnight_hold_until_their_end,
            outbox::outbox_frequency_cap_suppresses_over_the_cap_until_the_window_passes,
            outbox::outbox_enqueue_is_idempotent_by_key,
            outbox::outbox_a_clients_send_needs_a_connector_for_the_channel,
            outbox::outbox_send_outcomes_send_fail_or_retry,
            outbox::outbox_receipts_deliver_or_fail_what_is_out,
            delivery::delivery_commits_once_and_applies_every_kind_of_decision,
            delivery::delivery_refuses_another_shops_customer_and_applies_nothing,
            delivery::delivery_keeps_tag_namespaces_and_caps,
            delivery::delivery_failures_retry_then_dead_letter_then_trip_the_breaker,
            delivery::tags_every_writer_has_the_same_effects,
            delivery::delivery_plugin_tags_continue_a_chain_and_are_stopped_past_its_limit,
            coupons::coupons_count_budget_caps_issuance,
            coupons::coupons_money_budget_caps_issuance,
            coupons::coupons_per_customer_limit_and_resends,
            coupons::coupons_expiry_and_inactive_templates,
            coupons::coupons_an_order_redeems_a_code_once,
            coupons::coupons_redemption_answers_its_outcome,
            coupons::coupons_concurrent_issuance_stays_within_the_budget,
            coupons::coupons_rewards_spend_points_stock_and_issue_together,
            journeys::journeys_an_order_journey_waits_in_the_shops_zone_branches_acts_and_exits_on_its_goal,
            journeys::journeys_a_tag_added_trigger_enters_the_tagged_customer_once,
            journeys::journeys_a_birthday_enters_its_customers_on_their_day_at_the_shops_hour,
            journeys::journeys_holdout_and_ab_buckets_stay_with_the_customer,
            journeys::journeys_a_run_whose_step_fails_fails_alone,
            segments::segments_match_a_plain_evaluation_of_the_definition,
            segments::segments_a_change_moves_membership_once_after_a_refresh,
            segments::segments_a_sweep_moves_time_based_segments_as_the_clock_moves,
        );
    };
}

/// A fixed instant of the test clock: 2026-03-01 plus `days` and `hours`.
pub fn day(days: i64, hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::days(days) + chrono::Duration::hours(hours)
}
