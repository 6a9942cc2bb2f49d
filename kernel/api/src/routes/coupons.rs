//! Coupon templates, issuance, codes and statistics.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::coupons::{Coupon, CouponTemplate, CouponTemplateInput, IssueRequest, TemplateStats};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{CouponsManage, CustomersRead, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path};

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    items: Vec<CouponTemplate>,
}

#[utoipa::path(get, path = "/v1/coupon-templates", tag = "coupons", security(("api_key" = [])),
    responses((status = 200, body = TemplateList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_templates(key: ShopKey<CustomersRead>, State(state): State<AppState>) -> Result<Json<TemplateList>, ApiError> {
    let items = state.read("coupon_templates", move |s| s.coupon_templates(key.shop_id)).await?;
    Ok(Json(TemplateList { items }))
}

/// Create a coupon template: face value, threshold, validity (`valid_days`
/// after issue or a fixed `valid_until`), a per-customer limit and a budget
/// in count and in face value.
#[utoipa::path(post, path = "/v1/coupon-templates", tag = "coupons", request_body = CouponTemplateInput, security(("api_key" = [])),
    responses((status = 201, body = CouponTemplate), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create_template(
    key: ShopKey<CouponsManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CouponTemplateInput>,
) -> Result<(StatusCode, Json<CouponTemplate>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let template = state.db("create_coupon_template", move |s| s.create_coupon_template(key.shop_id, &body, &actor, now)).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

#[utoipa::path(get, path = "/v1/coupon-templates/{id}", tag = "coupons", params(("id" = i64, Path, description = "Template id")),
    security(("api_key" = [])),
    responses((status = 200, body = CouponTemplate), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_template(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<CouponTemplate>, ApiError> {
    Ok(Json(state.read("coupon_template", move |s| s.coupon_template(key.shop_id, id)).await?))
}

/// Replace a template's terms; coupons already issued keep their expiry and value.
#[utoipa::path(put, path = "/v1/coupon-templates/{id}", tag = "coupons", params(("id" = i64, Path, description = "Template id")),
    request_body = CouponTemplateInput, security(("api_key" = [])),
    responses((status = 200, body = CouponTemplate), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn update_template(
    key: ShopKey<CouponsManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<CouponTemplateInput>,
) -> Result<Json<CouponTemplate>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    Ok(Json(state.db("update_coupon_template", move |s| s.update_coupon_template(key.shop_id, id, &body, &actor, now)).await?))
}

/// Issued, redeemed and expired coupons of a template; `cost` is the face
/// value of the redeemed ones, `revenue` what their orders paid less refunds.
#[utoipa::path(get, path = "/v1/coupon-templates/{id}/stats", tag = "coupons", params(("id" = i64, Path, description = "Template id")),
    security(("api_key" = [])),
    responses((status = 200, body = TemplateStats), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn template_stats(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<TemplateStats>, ApiError> {
    let now = state.now();
    Ok(Json(state.read("coupon_template_stats", move |s| s.coupon_template_stats(key.shop_id, id, now)).await?))
}

/// Issue a coupon of the template to a customer, with a unique code.
/// Refused with 409 and the reason when the budget (count or money) is
/// exhausted, the customer holds the per-customer limit, or the template is
/// inactive or expired. Concurrent issues never exceed the budget. Resending
/// with the same `idempotency_key` answers the same coupon with 200.
#[utoipa::path(post, path = "/v1/coupon-templates/{id}/issue", tag = "coupons", params(("id" = i64, Path, description = "Template id")),
    request_body = IssueRequest, security(("api_key" = [])),
    responses((status = 201, body = Coupon), (status = 200, body = Coupon), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn issue(
    key: ShopKey<CouponsManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<IssueRequest>,
) -> Result<(StatusCode, Json<Coupon>), ApiError> {
    let now = state.now();
    let (coupon, created) = state.db("issue_coupon", move |s| s.issue_coupon(key.shop_id, id, &body, now)).await?;
    state.notify_events();
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(coupon)))
}

/// A coupon by its code (case, spaces and dashes do not matter).
#[utoipa::path(get, path = "/v1/coupons/{code}", tag = "coupons", params(("code" = String, Path, description = "Coupon code")),
    security(("api_key" = [])),
    responses((status = 200, body = Coupon), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_coupon(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Coupon>, ApiError> {
    let now = state.now();
    Ok(Json(state.read("coupon_by_code", move |s| s.coupon_by_code(key.shop_id, &code, now)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct CouponList {
    items: Vec<Coupon>,
}

/// A customer's coupons, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/coupons", tag = "coupons", params(("id" = i64, Path, description = "Customer id")),
    security(("api_key" = [])),
    responses((status = 200, body = CouponList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn customer_coupons(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<CouponList>, ApiError> {
    let now = state.now();
    let items = state.read("customer_coupons", move |s| s.customer_coupons(key.shop_id, id, now)).await?;
    Ok(Json(CouponList { items }))
}
