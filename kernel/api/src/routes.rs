//! The routes, grouped by resource; each handler carries its OpenAPI description.

mod audit;
mod coupons;
mod customers;
mod dashboards;
mod events;
mod journeys;
mod keys;
mod loyalty;
mod messages;
mod plugins;
mod segments;
mod shops;
mod system;

use std::sync::OnceLock;

use axum::extract::DefaultBodyLimit;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kith", description = "Customer-operations kernel for e-commerce shops. Money is in the currency's minor unit (fen for CNY). Errors are application/problem+json (RFC 9457) with a stable `type`."),
    modifiers(&BearerKey),
    components(schemas(crate::error::Problem))
)]
struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kith_<id>_<secret>").build()),
        );
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi_json))
        .routes(routes!(system::get_clock, system::move_clock))
        .routes(routes!(shops::create_shop, shops::list_shops))
        .routes(routes!(shops::current_shop))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(events::ingest, events::list_events))
        .routes(routes!(events::stream))
        .routes(routes!(customers::list_customers))
        .routes(routes!(customers::get_customer))
        .routes(routes!(customers::add_tag))
        .routes(routes!(customers::remove_tag))
        .routes(routes!(customers::list_merges))
        .routes(routes!(customers::unmerge))
        .routes(routes!(audit::list_audit))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::plugin_versions))
        .routes(routes!(plugins::list_shop_plugins))
        .routes(routes!(plugins::enable_plugin, plugins::plugin_status, plugins::disable_plugin))
        .routes(routes!(plugins::plugin_logs))
        .routes(routes!(plugins::dead_letters))
        .routes(routes!(plugins::redrive))
        .routes(routes!(plugins::start_run))
        .routes(routes!(plugins::get_run))
        .routes(routes!(plugins::resume_run))
        .routes(routes!(loyalty::points_account))
        .routes(routes!(loyalty::points_ledger))
        .routes(routes!(loyalty::adjust_points))
        .routes(routes!(loyalty::list_redemptions, loyalty::redeem))
        .routes(routes!(loyalty::list_rewards, loyalty::create_reward))
        .routes(routes!(loyalty::get_reward, loyalty::update_reward))
        .routes(routes!(loyalty::get_loyalty_settings, loyalty::put_loyalty_settings))
        .routes(routes!(coupons::list_templates, coupons::create_template))
        .routes(routes!(coupons::get_template, coupons::update_template))
        .routes(routes!(coupons::template_stats))
        .routes(routes!(coupons::issue))
        .routes(routes!(coupons::get_coupon))
        .routes(routes!(coupons::customer_coupons))
        .routes(routes!(messages::send_message, messages::list_messages))
        .routes(routes!(messages::get_message))
        .routes(routes!(messages::list_consents))
        .routes(routes!(messages::put_consent))
        .routes(routes!(messages::get_messaging_settings, messages::put_messaging_settings))
        .routes(routes!(messages::list_channels))
        .routes(routes!(messages::receive_receipts))
        .routes(routes!(segments::list_segments, segments::create_segment))
        .routes(routes!(segments::preview))
        .routes(routes!(segments::get_segment, segments::update_segment, segments::delete_segment))
        .routes(routes!(segments::segment_versions))
        .routes(routes!(segments::members))
        .routes(routes!(segments::take_snapshot, segments::list_snapshots))
        .routes(routes!(segments::snapshot_members))
        .routes(routes!(segments::daily_counts))
        .routes(routes!(segments::export))
        .routes(routes!(journeys::list_journeys, journeys::create_journey))
        .routes(routes!(journeys::get_journey, journeys::update_journey, journeys::delete_journey))
        .routes(routes!(journeys::journey_versions))
        .routes(routes!(journeys::activate))
        .routes(routes!(journeys::pause))
        .routes(routes!(journeys::archive))
        .routes(routes!(journeys::test_send))
        .routes(routes!(journeys::dry_run))
        .routes(routes!(journeys::stats))
        .routes(routes!(journeys::runs))
        .routes(routes!(journeys::customer_runs))
        .routes(routes!(dashboards::overview))
        .routes(routes!(dashboards::cohorts))
        // Packages are larger than any JSON body; the inner limit wins.
        .merge(OpenApiRouter::new().routes(routes!(plugins::install_plugin)).layer(DefaultBodyLimit::max(PACKAGE_LIMIT)))
}

/// Largest plugin package accepted, in bytes (a Python component carries its interpreter).
pub(crate) const PACKAGE_LIMIT: usize = 256 << 20;

/// The OpenAPI document of every route, generated from the handlers.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| router().split_for_parts().1)
}
