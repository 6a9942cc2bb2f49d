//! Journeys: definitions with versions, their lifecycle, test sends, dry runs,
//! statistics and the runs of customers through them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kith_core::Actor;
use kith_core::journeys::RunFilter;
use kith_core::prelude::*;
use kith_domain::auth::Scope;
use kith_domain::journeys::{
    DryRun, Journey, JourneyInput, JourneyRun, JourneyRunStatus, JourneyStats, JourneyStatus, JourneyVersion, TestSend,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{CustomersRead, JourneysManage, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, cursor, page_limit};
use crate::mask;

/// A key without `pii:read` may not place personal data in a journey: no placeholder reading the
/// customer's name or identifiers, no payload test on a personal field. The recipient needs none:
/// the connector fills it.
fn check_author(key: &ShopKey<JourneysManage>, input: &JourneyInput) -> Result<(), ApiError> {
    if key.can(Scope::PiiRead) {
        return Ok(());
    }
    // An invalid definition is refused by the store with the faulty node named.
    let Ok(definition) = kith_domain::journeys::check_input(input) else { return Ok(()) };
    match definition.personal_references().into_iter().next() {
        None => Ok(()),
        Some(at) => Err(ApiError::forbidden(format!(
            "`{at}` reads personal data; writing it needs the `pii:read` scope (the connector fills the recipient)"
        ))),
    }
}

fn masked_journey<S>(key: &ShopKey<S>, mut journey: Journey) -> Journey {
    journey.definition = mask::json(key, journey.definition);
    journey
}

#[derive(Serialize, ToSchema)]
pub struct JourneyList {
    items: Vec<Journey>,
}

#[utoipa::path(get, path = "/v1/journeys", tag = "journeys", security(("api_key" = [])),
    responses((status = 200, body = JourneyList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_journeys(key: ShopKey<CustomersRead>, State(state): State<AppState>) -> Result<Json<JourneyList>, ApiError> {
    let shop_id = key.shop_id;
    let items = state.read("list_journeys", move |s| s.journeys(shop_id)).await?;
    Ok(Json(JourneyList { items: items.into_iter().map(|j| masked_journey(&key, j)).collect() }))
}

/// Create a journey, as a draft. A key without `pii:read` may not place personal data in it (403): no
/// placeholder reading the customer's name or identifiers (`{{customer.name}}`, `{{trigger.value}}`,
/// `{{trigger.identities}}`), no payload test on a personal field; the connector fills the recipient.
/// The definition:
///
/// - `trigger`: exactly one of `{"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]}`
///   (payload tests `eq ne lt lte gt gte in contains exists`; a path through an array such as `items.category`
///   matches when any element does), `{"segment": <id>}` (entry into the segment), or
///   `{"date": {"field": "birthday" | "attributes.<name>", "offset_days": -7, "at": "10:00"}}` (each year, in the
///   shop's zone); optionally `"customer": <segment-language condition>` checked at entry.
/// - `entry`: `{"reentry": false, "min_interval_days": 0, "max_concurrent": 1}`.
/// - `holdout_percent` (0–90): that share of entering customers go through the journey without actions.
/// - `goal`: `{"event": "order.paid", "within_days": 30, "where"?: [...]}` ends a run in progress and attributes
///   the event's `amount` as revenue (also after the run ended, within the window).
/// - `budget`: `{"coupons"?, "coupon_value"?, "messages"?, "message_cost"?}`; an action past a limit is skipped
///   with the reason.
/// - `start` and `steps` by id. A step is one of `{"send": {"channel", "template", "variables"}}` (placeholders
///   `{{customer.name}}`, `{{trigger.amount}}`, `{{coupon.code}}`, `{{coupon.expires_at}}`, `{{journey.name}}`),
///   `{"coupon": {"template_id", "by_trigger_amount"?: [{"at_least", "template_id"}]}}`,
///   `{"tag": {"add" | "remove": "<tag>"}}`, `{"points": {"award", "expires_in_days"?, "reason"?}}`,
///   `{"wait": {"days"?, "hours"?, "minutes"?, "until"?: "HH:MM"}}` or `{"wait": {"before_coupon_expires_days": 3}}`,
///   `{"branch": {"customer": <condition>} | {"event": "order.paid", "where"?}, "yes"?, "no"?}` (the event since entry),
///   `{"split": [{"variant": "A", "weight": 50, "next"?}, …]}` (deterministic per customer), `{"exit": true}`;
///   `next` names the following step, and a step without one ends the run. The graph may not loop.
///
/// Errors name the faulty node, e.g. `definition.steps.remind.branch.event`.
#[utoipa::path(post, path = "/v1/journeys", tag = "journeys", request_body = JourneyInput, security(("api_key" = [])),
    responses((status = 201, body = Journey), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create_journey(
    key: ShopKey<JourneysManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<JourneyInput>,
) -> Result<(StatusCode, Json<Journey>), ApiError> {
    check_author(&key, &body)?;
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let journey = state.db("create_journey", move |s| s.create_journey(shop_id, &body, &actor, now)).await?;
    Ok((StatusCode::CREATED, Json(masked_journey(&key, journey))))
}

#[utoipa::path(get, path = "/v1/journeys/{id}", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = Journey), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_journey(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Journey>, ApiError> {
    let shop_id = key.shop_id;
    let journey = state.read("get_journey", move |s| s.journey(shop_id, id)).await?;
    Ok(Json(masked_journey(&key, journey)))
}

/// Replace a journey's name, description and definition. A changed definition is a
/// new version: customers who enter from now on follow it, customers already in the
/// journey finish the version they entered. Archived journeys cannot change (409).
#[utoipa::path(put, path = "/v1/journeys/{id}", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    request_body = JourneyInput, security(("api_key" = [])),
    responses((status = 200, body = Journey), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update_journey(
    key: ShopKey<JourneysManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<JourneyInput>,
) -> Result<Json<Journey>, ApiError> {
    check_author(&key, &body)?;
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let journey = state.db("update_journey", move |s| s.update_journey(shop_id, id, &body, &actor, now)).await?;
    Ok(Json(masked_journey(&key, journey)))
}

/// Delete a draft. A journey that has been active is archived instead (409), so its runs and statistics stay.
#[utoipa::path(delete, path = "/v1/journeys/{id}", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn delete_journey(
    key: ShopKey<JourneysManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    state.db("delete_journey", move |s| s.delete_journey(key.shop_id, id, &actor, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct JourneyVersionList {
    items: Vec<JourneyVersion>,
}

/// Every version of a journey's definition, oldest first.
#[utoipa::path(get, path = "/v1/journeys/{id}/versions", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = JourneyVersionList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn journey_versions(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<JourneyVersionList>, ApiError> {
    let shop_id = key.shop_id;
    let mut items = state.read("journey_versions", move |s| s.journey_versions(shop_id, id)).await?;
    for version in &mut items {
        version.definition = mask::json(&key, std::mem::take(&mut version.definition));
    }
    Ok(Json(JourneyVersionList { items }))
}

async fn set_status(key: ShopKey<JourneysManage>, state: AppState, id: i64, to: JourneyStatus) -> Result<Json<Journey>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let journey = state.db("set_journey_status", move |s| s.set_journey_status(shop_id, id, to, &actor, now)).await?;
    state.notify_events();
    Ok(Json(masked_journey(&key, journey)))
}

/// Activate a draft (customers enter from now on; no entries for past events) or
/// resume a paused journey (its runs go on; waits that ended meanwhile end now).
#[utoipa::path(post, path = "/v1/journeys/{id}/activate", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = Journey), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn activate(key: ShopKey<JourneysManage>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Journey>, ApiError> {
    set_status(key, state, id, JourneyStatus::Active).await
}

/// Pause: nobody enters, runs hold where they are; goals are still attributed.
#[utoipa::path(post, path = "/v1/journeys/{id}/pause", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = Journey), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn pause(key: ShopKey<JourneysManage>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Journey>, ApiError> {
    set_status(key, state, id, JourneyStatus::Paused).await
}

/// Archive for good: runs in progress exit; the journey and its statistics stay readable.
#[utoipa::path(post, path = "/v1/journeys/{id}/archive", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = Journey), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn archive(key: ShopKey<JourneysManage>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Journey>, ApiError> {
    set_status(key, state, id, JourneyStatus::Archived).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSendRequest {
    /// Who receives the proof (a member of staff's own customer record, say).
    customer_id: i64,
}

/// Queue every message of the journey's current version for one customer now, with
/// its variables filled (a sample coupon code `TESTCOUPON0`). No waits, no coupons,
/// not in the statistics; consent, caps and quiet hours apply as to any message.
#[utoipa::path(post, path = "/v1/journeys/{id}/test-send", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    request_body = TestSendRequest, security(("api_key" = [])),
    responses((status = 200, body = TestSend), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn test_send(
    key: ShopKey<JourneysManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<TestSendRequest>,
) -> Result<Json<TestSend>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let sent = state.db("test_send_journey", move |s| s.test_send_journey(shop_id, id, body.customer_id, &actor, now)).await?;
    state.notify_events();
    Ok(Json(mask::mask(&key, sent)))
}

/// Who would enter now under the current version and its entry rules: a segment
/// trigger's members, a date trigger's customers of today, an event trigger's
/// customers with a matching event in the last 24 hours.
#[utoipa::path(get, path = "/v1/journeys/{id}/dry-run", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = DryRun), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn dry_run(key: ShopKey<CustomersRead>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<DryRun>, ApiError> {
    let now = state.now();
    Ok(Json(state.read("dry_run_journey", move |s| s.dry_run_journey(key.shop_id, id, now)).await?))
}

/// Entered, in progress, per-step outcomes (with skip reasons), messages by status,
/// coupons issued and redeemed, conversions and attributed revenue, cost and ROI,
/// lift against the holdout and A/B variants with two-proportion p-values.
#[utoipa::path(get, path = "/v1/journeys/{id}/stats", tag = "journeys", params(("id" = i64, Path, description = "Journey id")),
    security(("api_key" = [])),
    responses((status = 200, body = JourneyStats), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn stats(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<JourneyStats>, ApiError> {
    Ok(Json(state.read("journey_stats", move |s| s.journey_stats(key.shop_id, id)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    customer_id: Option<i64>,
    /// `active`, `completed`, `exited`, `converted` or `failed`.
    status: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1-500, default 50.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    items: Vec<JourneyRun>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

/// A journey's runs, newest first, each with the steps it went through.
#[utoipa::path(get, path = "/v1/journeys/{id}/runs", tag = "journeys", params(("id" = i64, Path, description = "Journey id"), RunsQuery),
    security(("api_key" = [])),
    responses((status = 200, body = RunPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn runs(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_limit(q.limit, 50, 500)?;
    let before = q.cursor.as_deref().map(|c| cursor(Some(c))).transpose()?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(JourneyRunStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status", format!("unknown run status `{s}`; expected active, completed, exited, converted or failed"))
        })?),
    };
    let filter = RunFilter { customer_id: q.customer_id, status };
    let shop_id = key.shop_id;
    let items = state.read("journey_runs", move |s| s.journey_runs(shop_id, id, &filter, before, limit)).await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|r| r.id.to_string())).flatten();
    Ok(Json(RunPage { items: mask::mask(&key, items), next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    items: Vec<JourneyRun>,
}

/// A customer's runs of every journey (the newest 200): where each is, what each step
/// did, and why a step was skipped.
#[utoipa::path(get, path = "/v1/customers/{id}/journeys", tag = "journeys", params(("id" = i64, Path, description = "Customer id")),
    security(("api_key" = [])),
    responses((status = 200, body = RunList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn customer_runs(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<RunList>, ApiError> {
    let shop_id = key.shop_id;
    let items = state.read("customer_runs", move |s| s.customer_runs(shop_id, id)).await?;
    Ok(Json(RunList { items: mask::mask(&key, items) }))
}
