use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    schema_version: usize,
}

/// Liveness and readiness: answers once the database is reachable.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 500, body = Problem)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.read("health", |s| s.health()).await?;
    Ok(Json(Health { status: "ok", schema_version: state.store().schema_version() }))
}

/// Metrics in the OpenMetrics text format (which Prometheus reads).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics().render())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    Json(crate::routes::openapi())
}

/// The kernel's clock.
#[derive(Serialize, ToSchema)]
pub struct ClockView {
    now: chrono::DateTime<chrono::Utc>,
    /// Whether this is a test clock (`[testing] clock = true`), which `POST /v1/admin/clock` moves.
    test: bool,
}

/// How far to move a test clock.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockMove {
    /// Seconds to move forward; a test clock never goes back, so that nothing the
    /// kernel stamped by the system's time lies ahead of it.
    #[schema(minimum = 1, maximum = 31_622_400)]
    advance_seconds: i64,
}

/// Longest single move of a test clock: a leap year.
const MAX_CLOCK_MOVE: i64 = 366 * 86_400;

/// The kernel's clock (admin keys).
#[utoipa::path(get, path = "/v1/admin/clock", tag = "system", security(("api_key" = [])),
    responses((status = 200, body = ClockView), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_clock(_: Admin, State(state): State<AppState>) -> Json<ClockView> {
    Json(ClockView { now: state.now(), test: state.0.bus.test_clock().is_some() })
}

/// Move a test clock forward (admin keys), then wake the bus: waits that ended, due runs and
/// timers are taken up. A server on the system's clock answers 409.
#[utoipa::path(post, path = "/v1/admin/clock", tag = "system", request_body = ClockMove, security(("api_key" = [])),
    responses((status = 200, body = ClockView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem), (status = 415, body = Problem)))]
pub async fn move_clock(_: Admin, State(state): State<AppState>, JsonBody(body): JsonBody<ClockMove>) -> Result<Json<ClockView>, ApiError> {
    let Some(clock) = state.0.bus.test_clock() else {
        return Err(ApiError::conflict("the kernel runs on the system's clock; a test clock is configured with [testing] clock = true"));
    };
    if !(1..=MAX_CLOCK_MOVE).contains(&body.advance_seconds) {
        return Err(ApiError::bad_request("advance_seconds", format!("must be between 1 and {MAX_CLOCK_MOVE}")));
    }
    clock.advance(chrono::Duration::seconds(body.advance_seconds));
    state.notify_events();
    Ok(Json(ClockView { now: state.now(), test: true }))
}
