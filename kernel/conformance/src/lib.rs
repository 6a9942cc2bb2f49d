//! The conformance suite: what every storage backend of Kith's core must pass.
//!
//! A backend crate runs the whole suite from one test file:
//!
//! ```ignore
//! struct Sqlite;
//! struct Database { store: kith_sqlite::Store }
//! impl kith_conformance::Backend for Database {
//!     fn storage(&self) -> &dyn kith_core::Storage { &self.store }
//! }
//! impl kith_conformance::Factory for Sqlite {
//!     fn fresh(&self) -> Box<dyn kith_conformance::Backend> { /* a Database, new and empty */ }
//! }
//! kith_conformance::suite!(Sqlite);
//! ```
//!
//! [`suite!`] expands to one `#[test]` per case, so each case passes or fails on its
//! own under `cargo test`. A backend implements only [`Backend::storage`]: the set-up of
//! a case (shops, settings, plugins, templates, segments, journeys) is the core's own
//! services on that storage, as the API calls them. The cases drive the features through
//! the core (its services over [`kith_core::Storage`]) and read the outcome back through
//! the ports, so that a case checks the core's rules and the backend's keeping of its
//! contract at once. Plugins, where a case needs one, are plain Rust at the core's
//! boundary: no wasm component is compiled or run.

use chrono::{DateTime, TimeZone, Utc};
use kith_core::prelude::*;
use kith_core::{Actor, Storage};
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::model::{IngestReport, NewShop};
use kith_domain::plugin::{Grant, Manifest};
use serde_json::Value;

pub mod catalogue;
pub mod console;
pub mod coupons;
pub mod delivery;
pub mod identity;
pub mod journeys;
pub mod leases;
pub mod ledger;
pub mod outbox;
pub mod plugins;
pub mod records;
pub mod segments;
pub mod views;

/// A database of one backend, new and empty for one case.
///
/// A backend implements only [`Backend::storage`]: every set-up a case needs (shops,
/// settings, plugins, coupon templates, rewards, segments, journeys) and every read-back
/// below is provided, written with the core's services ([`kith_core::prelude`]) on that
/// storage, as the API calls them.
pub trait Backend {
    /// The backend as the core's storage.
    fn storage(&self) -> &dyn Storage;
    /// Create a shop in the given IANA time zone; its id.
    fn create_shop(&self, name: &str, time_zone: &str) -> i64 {
        let new = NewShop { name: name.into(), time_zone: time_zone.into(), currency: "CNY".into(), region: "CN".into() };
        self.storage().create_shop(&new, &actor()).expect("the shop is created").id
    }
    /// Ingest a batch of events as clients send them, at `now`, through the core's ingest
    /// with the default identity caps.
    fn ingest(&self, shop_id: i64, events: Vec<Value>, now: DateTime<Utc>) -> IngestReport {
        let caps = kith_core::ingest::IdentityCaps::default();
        kith_core::ingest::ingest(self.storage(), shop_id, events, &caps, &actor(), now).expect("the batch is ingested")
    }
    /// Set a shop's loyalty settings, at the start of the test clock (`day(0, 0)`).
    fn put_loyalty_settings(&self, shop_id: i64, settings: &LoyaltySettings) {
        self.storage().put_loyalty_settings(shop_id, settings, &actor(), day(0, 0)).expect("the loyalty settings are saved");
    }
    /// Set a shop's messaging settings (channel policies), at `day(0, 0)`.
    fn put_messaging_settings(&self, shop_id: i64, settings: &kith_domain::messaging::MessagingSettings) {
        self.storage().put_messaging_settings(shop_id, settings, &actor(), day(0, 0)).expect("the messaging settings are saved");
    }
    /// Install a channel connector plugin that sends `channel` and enable it in the shop, so
    /// that the shop's route for the channel points to it. No component is run.
    fn enable_connector(&self, shop_id: i64, plugin_id: &str, channel: &str) {
        let manifest = Manifest::parse(&format!(
            "id = \"{plugin_id}\"\nversion = \"1.0.0\"\nkind = \"channel-connector\"\napi-version = \"0.2.0\"\nchannel = \"{channel}\"\ndescription = \"Stands in for a connector\"\nvendor = \"Kith\"\n"
        ))
        .expect("the connector's manifest parses");
        // The catalogue keeps the component's bytes; none is run here, so any bytes do.
        let sha256 = format!("{plugin_id:0>64}");
        self.storage().install_plugin(&manifest, plugin_id.as_bytes(), &sha256, &actor()).expect("the connector is installed");
        let put = kith_core::plugins::PutSubscription {
            plugin_id,
            version_req: "1.0.0",
            version: "1.0.0",
            config: &Value::Null,
            grant: &Grant::all_requested(&manifest),
            run_every_hours: None,
            channel: Some(channel),
        };
        self.storage().put_subscription(shop_id, &put, &actor()).expect("the connector is enabled");
    }
    /// Install the plugin of this `plugin.toml` and enable it in the shop with every
    /// capability it requests. No component is run: its decisions are the case's.
    fn enable_plugin(&self, shop_id: i64, manifest: &str) {
        let manifest = Manifest::parse(manifest).expect("the plugin's manifest parses");
        let (id, version) = (manifest.id.clone(), manifest.version.to_string());
        self.storage().install_plugin(&manifest, id.as_bytes(), &format!("{id:0>64}"), &actor()).expect("the plugin is installed");
        let put = kith_core::plugins::PutSubscription {
            plugin_id: &id,
            version_req: &version,
            version: &version,
            config: &Value::Null,
            grant: &Grant::all_requested(&manifest),
            run_every_hours: None,
            channel: None,
        };
        self.storage().put_subscription(shop_id, &put, &actor()).expect("the plugin is enabled");
    }
    /// Create a coupon template in the shop at `day(0, 0)`; its id.
    fn create_coupon_template(&self, shop_id: i64, input: &kith_domain::coupons::CouponTemplateInput) -> i64 {
        self.storage().create_coupon_template(shop_id, input, &actor(), day(0, 0)).expect("the coupon template is created").id
    }
    /// Create a reward in the shop at `day(0, 0)`; its id.
    fn create_reward(&self, shop_id: i64, input: &kith_domain::loyalty::RewardInput) -> i64 {
        self.storage().create_reward(shop_id, input, &actor(), day(0, 0)).expect("the reward is created").id
    }
    /// Save a segment of `definition` in the shop at `now` (its first members entering
    /// without events); its id.
    fn create_segment(&self, shop_id: i64, name: &str, definition: Value, now: DateTime<Utc>) -> i64 {
        let input = kith_domain::segments::SegmentInput { name: name.into(), description: None, definition };
        self.storage().create_segment(shop_id, &input, &actor(), now).expect("the segment is created").id
    }
    /// Save a journey of this definition in the shop and activate it at `now` (its cursor at
    /// the head of the shop's log); its id.
    fn create_journey(&self, shop_id: i64, definition: Value, now: DateTime<Utc>) -> i64 {
        let input = kith_domain::journeys::JourneyInput { name: "Conformance journey".into(), description: None, definition };
        let id = self.storage().create_journey(shop_id, &input, &actor(), now).expect("the journey is created").id;
        self.storage()
            .set_journey_status(shop_id, id, kith_domain::journeys::JourneyStatus::Active, &actor(), now)
            .expect("the journey is activated");
        id
    }
    /// A journey's runs, newest first, each with its steps' history.
    fn journey_runs(&self, shop_id: i64, journey_id: i64) -> Vec<kith_domain::journeys::JourneyRun> {
        let filter = kith_core::journeys::RunFilter::default();
        self.storage().journey_runs(shop_id, journey_id, &filter, None, 100_000).expect("the journey's runs are read")
    }
    /// Delete a segment of the shop at `now`.
    fn delete_segment(&self, shop_id: i64, segment_id: i64, now: DateTime<Utc>) {
        self.storage().delete_segment(shop_id, segment_id, &actor(), now).expect("the segment is deleted");
    }
    /// The shop's event log, oldest first: each event's type and payload.
    fn events(&self, shop_id: i64) -> Vec<(String, Value)> {
        let events = self.storage().events_after(shop_id, 0, 100_000).expect("the shop's events are read");
        events.into_iter().map(|e| (e.kind, e.payload.value())).collect()
    }
}

/// The actor of the suite's set-up.
fn actor() -> Actor {
    Actor::cli("conformance")
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
            ledger::ledger_ports_answer_only_within_the_shop,
            identity::identity_table_cases,
            identity::identity_duplicates_by_event_id,
            identity::identity_an_event_failing_after_writing_leaves_nothing,
            identity::identity_orders_and_refunds_keep_stats,
            identity::identity_shops_are_kept_apart,
            identity::identity_ports_answer_only_within_the_shop,
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
            outbox::outbox_ports_answer_only_within_the_shop,
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
            coupons::coupons_ports_answer_only_within_the_shop,
            journeys::journeys_an_order_journey_waits_in_the_shops_zone_branches_acts_and_exits_on_its_goal,
            journeys::journeys_a_tag_added_trigger_enters_the_tagged_customer_once,
            journeys::journeys_a_birthday_enters_its_customers_on_their_day_at_the_shops_hour,
            journeys::journeys_holdout_and_ab_buckets_stay_with_the_customer,
            journeys::journeys_a_run_whose_step_fails_fails_alone,
            journeys::journeys_ports_answer_only_within_the_shop,
            segments::segments_match_a_plain_evaluation_of_the_definition,
            segments::segments_a_change_moves_membership_once_after_a_refresh,
            segments::segments_a_sweep_moves_time_based_segments_as_the_clock_moves,
            segments::segments_an_attribute_holding_a_nul_character_stops_no_other_customer,
            segments::segments_ports_answer_only_within_the_shop,
            records::journeys_definitions_keep_versions_and_move_through_their_lifecycle,
            records::journeys_runs_page_and_filter_and_stats_count_what_ran,
            records::journeys_dry_run_counts_who_would_enter_now,
            records::customers_read_filter_page_count_and_tag,
            records::customers_verify_stats_finds_only_a_real_mismatch,
            records::coupons_templates_and_their_figures_answer_what_was_issued_and_redeemed,
            records::loyalty_rewards_points_and_settings_read_back_what_was_written,
            records::outbox_views_list_filter_and_count_messages_consents_and_routes,
            catalogue::shops_are_created_trimmed_audited_and_read_back,
            catalogue::keys_authenticate_until_revoked_within_their_shop,
            catalogue::audit_log_lists_a_shops_entries_newest_first_in_pages,
            catalogue::settings_round_trip_per_shop_and_section_audited,
            catalogue::events_positions_per_shop_heads_and_pages,
            plugins::plugins_catalogue_installs_each_version_once,
            plugins::plugins_subscriptions_are_enabled_changed_disabled_and_kept_in_their_shop,
            plugins::plugins_runs_cover_every_customer_in_batches_and_resume_after_failing,
            plugins::plugins_scheduled_runs_start_every_n_hours,
            plugins::plugins_keep_their_key_values_logs_and_call_records,
            plugins::plugins_read_snapshots_histories_and_the_shops_context_of_its_orders,
            plugins::plugins_deliveries_take_their_event_types_after_the_cursor,
            plugins::plugins_ports_answer_only_within_the_shop,
            views::segments_keep_versions_list_and_stay_in_their_shop,
            views::segments_audiences_page_and_snapshots_keep_their_members,
            views::segments_daily_counts_are_each_days_members,
            views::metrics_overview_and_cohorts_match_the_orders,
            views::metrics_score_distributions_and_buyer_summaries_match_what_was_written,
            leases::leases_are_held_by_one_holder_until_they_run_out_or_are_released,
            leases::leases_are_kept_per_shop_and_per_work,
            leases::leases_hold_a_segments_sweep_for_one_sweeper,
            console::console_sign_in_locks_after_five_failures_until_fifteen_minutes_pass,
            console::console_sessions_expire_after_twelve_hours_and_end_at_sign_out,
            console::console_invites_are_accepted_once_and_expire,
            console::console_removal_ends_sessions_and_spares_the_last_owner,
            console::console_ports_answer_only_within_the_shop,
            console::console_password_change_failures_lock_the_user,
            console::console_unlock_and_password_reset_give_a_locked_user_back,
            console::console_removal_revokes_the_users_keys,
            console::console_user_ids_are_never_reused,
        );
    };
}

/// A fixed instant of the test clock: 2026-03-01 plus `days` and `hours`.
pub fn day(days: i64, hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::days(days) + chrono::Duration::hours(hours)
}
