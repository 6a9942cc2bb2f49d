//! The plugin catalogue (admin) and the plugins of a shop (`plugins:manage`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use kith_bus::{EnableRequest, Package, PluginStatus};
use kith_core::Actor;
use kith_core::Backend;
use kith_core::prelude::*;
use kith_domain::auth::{Role, Scope};
use kith_domain::personal::Personal;
use kith_domain::plugin::{DeadLetter, Grant, InstalledPlugin, Kind, PluginLog, PluginRun, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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

/// The top-level properties of a configuration schema that hold secrets: `writeOnly: true`, or
/// `format` `secret` or `password`. They are written, never read back.
fn secret_keys(schema: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(properties)) = schema.and_then(|s| s.get("properties")) else { return Vec::new() };
    properties
        .iter()
        .filter(|(_, p)| {
            p.get("writeOnly").and_then(Value::as_bool).unwrap_or(false)
                || matches!(p.get("format").and_then(Value::as_str), Some("secret" | "password"))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The manifest of the installed version a subscription runs, or the newest installed one.
fn manifest(store: &dyn Backend, plugin_id: &str, version: Option<&str>) -> kith_core::Result<Option<kith_domain::plugin::Manifest>> {
    let versions = store.plugin_versions(plugin_id)?;
    let chosen = version.and_then(|v| versions.iter().find(|p| p.manifest.version.to_string() == v)).or(versions.last());
    Ok(chosen.map(|p| p.manifest.clone()))
}

/// A subscription as a key sees it: secrets removed, positions in the shop's own log, personal
/// data in errors masked without `pii:read`.
fn shown_subscription(store: &dyn Backend, sub: &mut Subscription, pii: bool) -> kith_core::Result<()> {
    let secrets = secret_keys(manifest(store, &sub.plugin_id, Some(&sub.version))?.and_then(|m| m.config_schema).as_ref());
    if let Value::Object(config) = &mut sub.config {
        config.retain(|k, _| !secrets.contains(k));
    }
    sub.cursor = store.shop_position(sub.shop_id, sub.cursor)?;
    if !pii {
        sub.mask_personal();
    }
    Ok(())
}

fn shown_status(store: &dyn Backend, mut status: PluginStatus, pii: bool) -> kith_core::Result<PluginStatus> {
    shown_subscription(store, &mut status.subscription, pii)?;
    if !pii {
        status.logs.mask_personal();
        status.runs.mask_personal();
        for error in &mut status.calls.last_errors {
            *error = kith_domain::personal::mask_free_text(error);
        }
        // What the plugin wrote about itself is plugin-written text like its logs.
        if let Some(report) = &mut status.report {
            kith_domain::personal::mask_payload(report);
        }
    }
    Ok(status)
}

fn shown_dead_letter(store: &dyn Backend, shop_id: i64, mut letter: DeadLetter, pii: bool) -> kith_core::Result<DeadLetter> {
    letter.first_seq = store.shop_position(shop_id, letter.first_seq - 1)? + 1;
    letter.last_seq = store.shop_position(shop_id, letter.last_seq)?;
    if !pii {
        letter.mask_personal();
    }
    Ok(letter)
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
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", request_body(content = String, content_type = "application/gzip", description = "The package, a `.tar.gz`"), security(("api_key" = [])),
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
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    let items = state
        .read("list_subscriptions", move |s| {
            let mut items = s.subscriptions(shop_id)?;
            for sub in &mut items {
                shown_subscription(s, sub, pii)?;
            }
            Ok::<_, kith_core::Error>(items)
        })
        .await?;
    Ok(Json(SubscriptionList { items }))
}

/// Enable a plugin in the shop, or change its version, configuration or grant.
///
/// A channel connector's configuration says where personal data goes (its endpoint) and its
/// grant which hosts it may reach: only the shop's owner keys may set or change either (403
/// otherwise; other keys may still re-enable it as it is), and every change is audited as
/// `connector.route`. Configuration properties the plugin's schema marks `writeOnly` (or
/// `format: secret`/`password`) are secrets: never answered, and kept as they were when a
/// change leaves them out.
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
    let (shop_id, owner, pii) = (key.shop_id, key.principal.role == Role::Owner, key.can(Scope::PiiRead));
    let mut request = request;
    let plugin = id.clone();
    let (manifest, current) = state
        .read("plugin_subscription", move |s| {
            let current = match s.subscription(shop_id, &plugin) {
                Ok(sub) => Some(sub),
                Err(kith_core::Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            Ok((manifest(s, &plugin, current.as_ref().map(|c| c.version.as_str()))?, current))
        })
        .await?;
    let mut route = None;
    if let Some(manifest) = &manifest {
        // Secrets a change leaves out keep their stored values: a client never reads them back.
        let secrets = secret_keys(manifest.config_schema.as_ref());
        if let (Some(Value::Object(config)), Some(current)) = (request.config.as_mut(), current.as_ref()) {
            for name in &secrets {
                if !config.contains_key(name)
                    && let Some(value) = current.config.get(name)
                {
                    config.insert(name.clone(), value.clone());
                }
            }
        }
        if manifest.kind == Kind::ChannelConnector {
            let config = request.config.clone().unwrap_or_else(|| json!({}));
            let hosts = request.grant.as_ref().map_or_else(|| Grant::all_requested(manifest).allowed_hosts, |g| g.allowed_hosts.clone());
            let unchanged = current.as_ref().is_some_and(|c| c.config == config && c.grant.allowed_hosts == hosts);
            if !unchanged {
                if !owner {
                    return Err(ApiError::forbidden(
                        "a channel connector's configuration and granted hosts decide where personal data goes: only the shop's owner keys may set or change them",
                    ));
                }
                let mut shown = config;
                if let Value::Object(map) = &mut shown {
                    map.retain(|k, _| !secrets.contains(k));
                }
                route = Some(json!({"config": shown, "hosts": hosts, "secrets_changed": secrets.iter().any(|name| {
                    current.as_ref().and_then(|c| c.config.get(name)) != request.config.as_ref().and_then(|c| c.get(name))
                })}));
            }
        }
    }
    let plugin = id.clone();
    let (status, created) = state
        .bus("enable_plugin", move |b| {
            let (_, created) = b.enable(shop_id, &plugin, &request, &actor)?;
            if let Some(detail) = route {
                b.store().audit(Some(shop_id), &actor, "connector.route", Some(&plugin), detail)?;
            }
            Ok((shown_status(&**b.store(), b.status(shop_id, &plugin)?, pii)?, created))
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
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    Ok(Json(state.bus("plugin_status", move |b| Ok(shown_status(&**b.store(), b.status(shop_id, &id)?, pii)?)).await?))
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
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    Ok(Json(
        state
            .bus("disable_plugin", move |b| {
                let mut sub = b.disable(shop_id, &id, &actor)?;
                shown_subscription(&**b.store(), &mut sub, pii)?;
                Ok(sub)
            })
            .await?,
    ))
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
    let shop_id = key.shop_id;
    let items = state
        .read("plugin_logs", move |s| {
            s.subscription(shop_id, &id)?;
            s.plugin_logs(shop_id, &id, q.before, limit)
        })
        .await?;
    Ok(Json(LogList { items: crate::mask::mask(&key, items) }))
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
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    let items = state
        .read("dead_letters", move |s| {
            s.subscription(shop_id, &id)?;
            s.dead_letters(shop_id, &id)?.into_iter().map(|l| shown_dead_letter(s, shop_id, l, pii)).collect()
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
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    Ok(Json(state.bus("redrive", move |b| Ok(shown_dead_letter(&**b.store(), shop_id, b.redrive(shop_id, &id, letter)?, pii)?)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FixtureQuery {
    /// Customers to take, 1 to 100; default 20.
    sample: Option<usize>,
}

/// Days of history a recorded fixture carries.
const FIXTURE_HISTORY_DAYS: i64 = 90;

/// What the plugin would be handed in this shop now, as a fixture for `kith plugin test`
/// (`kith plugin test --record`): the shop's context, the first customers as a batch carries them
/// (the plugin's `reads` applied), their histories of the last 90 days and the first buyers' summaries
/// when the plugin reads customers, and its configuration without secrets. The key needs
/// `customers:read` besides `plugins:manage`; personal data is masked without `pii:read` (reading
/// it unmasked is audited). A connector's fixture has no customers (it is sent messages). The
/// fixture has no `expect`: the vendor adds it.
#[utoipa::path(get, path = "/v1/shop/plugins/{id}/fixture", tag = "plugins", params(("id" = String, Path, description = "Plugin id"), FixtureQuery),
    security(("api_key" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn plugin_fixture(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<FixtureQuery>,
) -> Result<Json<Value>, ApiError> {
    let sample = query.sample.unwrap_or(20);
    if !(1..=100).contains(&sample) {
        return Err(ApiError::bad_request("sample", "must be between 1 and 100"));
    }
    if !key.can(Scope::CustomersRead) {
        return Err(ApiError::forbidden("a plugin's fixture holds customers: the key needs the `customers:read` scope"));
    }
    let (shop_id, pii) = (key.shop_id, key.can(Scope::PiiRead));
    let now = state.now();
    let (sub, context, customers, histories, buyers) = state
        .read("plugin_fixture", move |s| {
            let mut sub = s.subscription(shop_id, &id)?;
            let manifest = manifest(s, &id, Some(&sub.version))?.ok_or_else(|| kith_core::Error::NotFound("plugin".into()))?;
            shown_subscription(s, &mut sub, pii)?;
            let context = s.shop_context(shop_id, now, None)?;
            // A connector is sent messages, not customers.
            let connector = manifest.kind == Kind::ChannelConnector;
            let customers = if connector { Vec::new() } else { s.customer_batch(shop_id, 0, sample, manifest.reads())? };
            let reads_customers = manifest.capabilities.contains(&kith_domain::plugin::Capability::CustomersRead);
            let (histories, buyers) = if reads_customers && !connector {
                let ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
                let since = (now - chrono::Duration::days(FIXTURE_HISTORY_DAYS)).timestamp_millis();
                (s.histories(shop_id, &ids, since)?, s.buyer_summaries(shop_id, None, sample, now)?)
            } else {
                (Vec::new(), Vec::new())
            };
            Ok((sub, context, customers, histories, buyers))
        })
        .await?;
    let count = customers.len();
    let customers: Vec<_> = customers.into_iter().map(|c| crate::mask::mask(&key, c)).collect();
    if pii && count > 0 {
        crate::routes::customers::audit_unmasked(&state, &key, format!("plugin-fixture:{}", sub.plugin_id), count).await?;
    }
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let histories: serde_json::Map<String, Value> = histories
        .into_iter()
        .map(|h| {
            let orders: Vec<Value> = h
                .orders
                .iter()
                .map(|o| {
                    json!({"id": o.external_id, "amount": o.amount, "refunded_amount": o.refunded_amount, "status": o.status,
                           "coupon_code": o.coupon_code, "paid_at": time(o.paid_at_ms), "items": o.items})
                })
                .collect();
            let behaviours: Vec<Value> = h
                .behaviours
                .iter()
                .map(|b| json!({"kind": b.kind, "sku": b.sku, "category": b.category, "occurred_at": time(b.occurred_at_ms)}))
                .collect();
            (h.customer_id.to_string(), json!({"orders": orders, "behaviours": behaviours, "truncated": h.truncated}))
        })
        .collect();
    let mut fixture = json!({
        "name": format!("recorded from shop {shop_id} at {}", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "now": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "config": sub.config,
        "grant": sub.grant,
        "shop": context,
        "customers": customers,
    });
    if !histories.is_empty() {
        fixture["histories"] = Value::Object(histories);
    }
    if !buyers.is_empty() {
        fixture["buyers"] = json!(buyers);
    }
    // Without a batch, every customer taken and no event: a run's shape.
    Ok(Json(fixture))
}

/// Start a run of the plugin over all of the shop's customers (re-tag,
/// re-score, review), in batches with a checkpoint; follow it with `GET …/runs/{run}`.
#[utoipa::path(post, path = "/v1/shop/plugins/{id}/runs", tag = "plugins", params(("id" = String, Path, description = "Plugin id")), security(("api_key" = [])),
    responses((status = 202, body = PluginRun), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn start_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PluginRun>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let shop_id = key.shop_id;
    let run = state.bus("start_run", move |b| b.start_run(shop_id, &id, &actor)).await?;
    Ok((StatusCode::ACCEPTED, Json(crate::mask::mask(&key, run))))
}

/// A run's progress.
#[utoipa::path(get, path = "/v1/shop/plugins/{id}/runs/{run}", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id"), ("run" = i64, Path, description = "PluginRun id")), security(("api_key" = [])),
    responses((status = 200, body = PluginRun), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path((id, run)): Path<(String, i64)>,
) -> Result<Json<PluginRun>, ApiError> {
    let shop_id = key.shop_id;
    let run = state.read("get_run", move |s| s.run(shop_id, &id, run)).await?;
    Ok(Json(crate::mask::mask(&key, run)))
}

/// Resume a failed run from its checkpoint.
#[utoipa::path(post, path = "/v1/shop/plugins/{id}/runs/{run}/resume", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id"), ("run" = i64, Path, description = "PluginRun id")), security(("api_key" = [])),
    responses((status = 202, body = PluginRun), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume_run(
    key: ShopKey<PluginsManage>,
    State(state): State<AppState>,
    Path((id, run)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<PluginRun>), ApiError> {
    let shop_id = key.shop_id;
    let run = state.bus("resume_run", move |b| b.resume_run(shop_id, &id, run)).await?;
    Ok((StatusCode::ACCEPTED, Json(crate::mask::mask(&key, run))))
}
