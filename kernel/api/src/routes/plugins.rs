//! The plugin catalogue (admin) and the plugins of a shop (`plugins:manage`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use kith_bus::{EnableRequest, Package, PluginStatus};
use kith_domain::plugin::{DeadLetter, InstalledPlugin, PluginLog, Run, Subscription};
use kith_store::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Admin, CatalogueReader, PluginsManage, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, page_limit};

/// A plugin package in the body: a `.tar.gz` with `plugin.toml` and `plugin.wasm`.
pub struct PackageBody(Package);

impl FromRequest<AppState> for PackageBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let gzip = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v.split(';').next().map(str::trim), Some("application/gzip" | "application/x-gzip")));
        if !gzip {
            return Err(ApiError::unsupported_media_type());
        }
        let limit = crate::routes::PACKAGE_LIMIT;
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::bad_request("", rej.body_text())
            }
        })?;
        let package = tokio::task::spawn_blocking(move || Package::from_tar_gz(&bytes)).await.map_err(ApiError::internal)?;
        package.map(PackageBody).map_err(ApiError::invalid)
    }
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    items: Vec<InstalledPlugin>,
}

/// Install a plugin version into the catalogue (admin keys).
///
/// The body is a `.tar.gz` (`Content-Type: application/gzip`) holding
/// `plugin.toml` and `plugin.wasm`. The manifest must parse with no unknown
/// field, name a WIT version this kernel serves, and carry a valid JSON Schema;
/// the component must export the world of its kind. Installing the same
/// component again answers 200; another component under an installed version is a conflict.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", request_body(content = Vec<u8>, content_type = "application/gzip"), security(("api_key" = [])),
    responses((status = 201, body = InstalledPlugin), (status = 200, body = InstalledPlugin), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)))]
pub async fn install_plugin(
    admin: Admin,
    State(state): State<AppState>,
    PackageBody(package): PackageBody,
) -> Result<(StatusCode, Json<InstalledPlugin>), ApiError> {
    let actor = Actor::key(&admin.0.key_id);
    let (installed, created) = state.bus("install_plugin", move |b| b.install(&package, &actor)).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(installed)))
}

/// The catalogue: every installed version of every plugin.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", security(("api_key" = [])),
    responses((status = 200, body = PluginList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_plugins(_: CatalogueReader, State(state): State<AppState>) -> Result<Json<PluginList>, ApiError> {
    let items = state.read("list_plugins", |s| s.list_plugins()).await?;
    Ok(Json(PluginList { items }))
}

/// The installed versions of one plugin, oldest first.
#[utoipa::path(get, path = "/v1/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), security(("api_key" = [])),
    responses((status = 200, body = PluginList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn plugin_versions(
    _: CatalogueReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PluginList>, ApiError> {
    let items = state.read("plugin_versions", move |s| s.plugin_versions(&id)).await?;
    if items.is_empty() {
        return Err(ApiError::not_found("plugin"));
    }
    Ok(Json(PluginList { items }))
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    items: Vec<Subscription>,
}

/// The plugins enabled (or once enabled) in the key's shop.
#[utoipa::path(get, path = "/v1/shop/plugins", tag = "plugins", security(("api_key" = [])),
    responses((status = 200, body = SubscriptionList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_shop_plugins(key: ShopKey<PluginsManage>, State(state): State<AppState>) -> Result<Json<SubscriptionList>, ApiError> {
    let items = state.read("list_subscriptions", move |s| s.subscriptions(key.shop_id)).await?;
    Ok(Json(SubscriptionList { items }))
}

/// Enable a plugin in the shop, or change its version, configuration or grant.
///
/// The newest installed version matching `version` is used (an upgrade when
/// a newer one matches). The configuration is checked against the plugin's
/// schema (the error names the field as `config.<path>`); the grant may hold
/// only capabilities and hosts the manifest requests. Enabling a disabled or
/// tripped plugin again resets its breaker and resumes from its cursor; a first
/// enable starts with the next event. Answers 201 when first enabled.
#[utoipa::path(put, path = "/v1/shop/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), request_body = EnableRequest,
    security(("api_key" = [])),
    responses((status = 201, body = PluginStatus), (status = 200, body = PluginStatus), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn enable_plugin(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<EnableRequest>,
) -> Result<(StatusCode, Json<PluginStatus>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let (status, created) = state
        .bus("enable_plugin", move |b| {
            let (_, created) = b.enable(key.shop_id, &id, &request, &actor)?;
            Ok((b.status(key.shop_id, &id)?, created))
        })
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(status)))
}

/// A plugin in the shop: configuration, grant, cursor and lag, calls,
/// failures and latency, breaker state, dead letters, runs and recent logs.
#[utoipa::path(get, path = "/v1/shop/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), security(("api_key" = [])),
    responses((status = 200, body = PluginStatus), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn plugin_status(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PluginStatus>, ApiError> {
    Ok(Json(state.bus("plugin_status", move |b| b.status(key.shop_id, &id)).await?))
}

/// Disable a plugin in the shop; its cursor stays where it is.
#[utoipa::path(delete, path = "/v1/shop/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), security(("api_key" = [])),
    responses((status = 200, body = Subscription), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn disable_plugin(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    Ok(Json(state.bus("disable_plugin", move |b| b.disable(key.shop_id, &id, &actor)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines older than this line id.
    before: Option<i64>,
    /// 1 to 200; default 50.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct LogList {
    items: Vec<PluginLog>,
}

/// The plugin's log in the shop, newest first (stdout as `info`, stderr as `warn`).
#[utoipa::path(get, path = "/v1/shop/plugins/{id}/logs", tag = "plugins", params(("id" = String, Path, description = "Plugin id"), LogQuery),
    security(("api_key" = [])),
    responses((status = 200, body = LogList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn plugin_logs(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<LogList>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let items = state
        .read("plugin_logs", move |s| {
            s.subscription(key.shop_id, &id)?;
            s.plugin_logs(key.shop_id, &id, q.before, limit)
        })
        .await?;
    Ok(Json(LogList { items }))
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    items: Vec<DeadLetter>,
}

/// Batches of events the plugin failed on too often, newest first.
#[utoipa::path(get, path = "/v1/shop/plugins/{id}/dead-letters", tag = "plugins", params(("id" = String, Path, description = "Plugin id")),
    security(("api_key" = [])),
    responses((status = 200, body = DeadLetterList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn dead_letters(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let items = state
        .read("dead_letters", move |s| {
            s.subscription(key.shop_id, &id)?;
            s.dead_letters(key.shop_id, &id)
        })
        .await?;
    Ok(Json(DeadLetterList { items }))
}

/// Deliver a dead letter's events again now, with the plugin's current
/// version and configuration. Its decisions apply once; a failure leaves it open.
#[utoipa::path(post, path = "/v1/shop/plugins/{id}/dead-letters/{letter}/redrive", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id"), ("letter" = i64, Path, description = "Dead letter id")), security(("api_key" = [])),
    responses((status = 200, body = DeadLetter), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn redrive(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path((id, letter)): Path<(String, i64)>,
) -> Result<Json<DeadLetter>, ApiError> {
    Ok(Json(state.bus("redrive", move |b| b.redrive(key.shop_id, &id, letter)).await?))
}

/// Start a run of the plugin over all of the shop's customers (re-tag,
/// re-score, review), in batches with a checkpoint; follow it with `GET …/runs/{run}`.
#[utoipa::path(post, path = "/v1/shop/plugins/{id}/runs", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), security(("api_key" = [])),
    responses((status = 202, body = Run), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn start_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let run = state.bus("start_run", move |b| b.start_run(key.shop_id, &id, &actor)).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// A run's progress.
#[utoipa::path(get, path = "/v1/shop/plugins/{id}/runs/{run}", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id"), ("run" = i64, Path, description = "Run id")), security(("api_key" = [])),
    responses((status = 200, body = Run), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path((id, run)): Path<(String, i64)>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(state.read("get_run", move |s| s.run(key.shop_id, &id, run)).await?))
}

/// Resume a failed run from its checkpoint.
#[utoipa::path(post, path = "/v1/shop/plugins/{id}/runs/{run}/resume", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id"), ("run" = i64, Path, description = "Run id")), security(("api_key" = [])),
    responses((status = 202, body = Run), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path((id, run)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let run = state.bus("resume_run", move |b| b.resume_run(key.shop_id, &id, run)).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
