//! The routes, grouped by resource; each handler carries its OpenAPI description.

mod audit;
mod console;
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
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        // A console user's session (`POST /v1/console/sign-in`): every route a key may call takes it
        // in place of the key; writes also send the session's CSRF token as `X-Kith-CSRF`.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "kith_session",
                "A console session; writes also send its `csrf_token` as the `X-Kith-CSRF` header",
            ))),
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
        .routes(routes!(console::sign_in))
        .routes(routes!(console::accept_invite))
        .routes(routes!(console::session))
        .routes(routes!(console::sign_out))
        .routes(routes!(console::change_password))
        .routes(routes!(console::list_users, console::invite_user))
        .routes(routes!(console::remove_user))
        .routes(routes!(console::unlock_user))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::plugin_versions))
        .routes(routes!(plugins::list_shop_plugins))
        .routes(routes!(plugins::enable_plugin, plugins::plugin_status, plugins::disable_plugin))
        .routes(routes!(plugins::plugin_logs))
        .routes(routes!(plugins::dead_letters))
        .routes(routes!(plugins::redrive))
        .routes(routes!(plugins::plugin_fixture))
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
        .routes(routes!(segments::get_export_policy, segments::put_export_policy))
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
        .routes(routes!(dashboards::scores))
        // Packages are larger than any JSON body; the inner limit wins.
        .merge(OpenApiRouter::new().routes(routes!(plugins::install_plugin)).layer(DefaultBodyLimit::max(PACKAGE_LIMIT)))
}

/// Largest plugin package accepted, in bytes (a Python component carries its interpreter).
pub(crate) const PACKAGE_LIMIT: usize = 256 << 20;

/// The OpenAPI document of every route, generated from the handlers and made exact by [`exact`].
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc = router().split_for_parts().1;
        let mut value = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
        exact(&mut value);
        serde_json::from_value(value).expect("the corrected OpenAPI document reads back")
    })
}

/// What every handler's description shares, said once so that no route can leave it out: query
/// parameters are in the query (utoipa declares an `IntoParams` struct's fields in the path unless
/// told), errors are `application/problem+json`, a route with a body may answer 400, 413 and 415
/// and one with path parameters 400 (an id that is no number, or overflows), binary bodies are
/// strings, and streamed answers have a schema.
fn exact(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (_, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            let mut path_params = false;
            if let Some(Value::Array(params)) = op.get_mut("parameters") {
                for p in params.iter_mut() {
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    if p["in"] == "path" && !path.contains(&format!("{{{name}}}")) {
                        p["in"] = json!("query");
                        p["required"] = json!(false);
                    }
                    path_params |= p["in"] == "path";
                }
            }
            let mut body_kind = None;
            if let Some(Value::Object(content)) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")) {
                for (mime, media) in content.iter_mut() {
                    if mime == "application/json" {
                        body_kind = Some("json");
                    } else {
                        body_kind = body_kind.or(Some("binary"));
                        media["schema"] = json!({"type": "string", "format": "binary"});
                    }
                }
            }
            let has_params = op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            let mut add = |status: &str, description: &str| {
                responses.entry(status.to_owned()).or_insert_with(
                    || json!({"description": description, "content": {"application/problem+json": {"schema": problem.clone()}}}),
                );
            };
            if body_kind.is_some() {
                add("400", "The body is malformed or invalid");
                add("413", "The body is too large");
            }
            if body_kind == Some("json") || path == "/v1/plugins" {
                add("415", "The body is not of the content type the route takes");
            }
            if path_params {
                add("400", "A path parameter is malformed");
            }
            if has_params {
                add("400", "A parameter is malformed");
            }
            for (status, response) in responses.iter_mut() {
                let error = status.starts_with(['3', '4', '5']);
                let Some(Value::Object(content)) = response.get_mut("content") else { continue };
                if error && let Some(media) = content.remove("application/json") {
                    content.insert("application/problem+json".into(), media);
                }
                for (mime, media) in content.iter_mut() {
                    if media.get("schema").is_none() && (mime.starts_with("text/") || mime.contains("octet")) {
                        media["schema"] = json!({"type": "string"});
                    }
                }
            }
        }
    }
}
