//! Points, tiers and the points mall: a customer's account and ledger,
//! adjustments, rewards and their redemption, the shop's loyalty settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::loyalty::{LedgerEntry, LoyaltySettings, PointsAccount, PointsAdjustment, RedeemRequest, Redemption, Reward, RewardInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{CustomersRead, LoyaltyManage, LoyaltyRedeem, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, page_limit};

/// A customer's points balance, debt, points about to expire, tier and tier history.
#[utoipa::path(get, path = "/v1/customers/{id}/points", tag = "loyalty", params(("id" = i64, Path, description = "Customer id")),
    security(("api_key" = [])),
    responses((status = 200, body = PointsAccount), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn points_account(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<PointsAccount>, ApiError> {
    let shop_id = key.shop_id;
    let account = state.read("points_account", move |s| s.points_account(shop_id, id)).await?;
    // A tier change's reason is free text a plugin wrote.
    Ok(Json(crate::mask::mask(&key, account)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<i64>,
    /// 1-500, default 100.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    /// Newest first.
    items: Vec<LedgerEntry>,
    next_cursor: Option<i64>,
}

/// A customer's points ledger, newest entry first. Every entry keeps its
/// source and idempotency key; earn entries show what is left of their batch.
#[utoipa::path(get, path = "/v1/customers/{id}/points/ledger", tag = "loyalty", params(("id" = i64, Path, description = "Customer id"), LedgerQuery),
    security(("api_key" = [])),
    responses((status = 200, body = LedgerPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn points_ledger(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<LedgerPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let shop_id = key.shop_id;
    let items = state.read("points_ledger", move |s| s.points_ledger(shop_id, id, q.cursor, limit)).await?;
    let next_cursor = if items.len() == limit { items.last().map(|e| e.id) } else { None };
    // A reason is free text an operator wrote (`called 138-1234-5678 back`).
    Ok(Json(LedgerPage { items: crate::mask::mask(&key, items), next_cursor }))
}

/// Add or take points by hand, with a reason (audited). Taking more than the
/// customer has is refused. Resending with the same `idempotency_key`
/// answers the first entry with 200.
#[utoipa::path(post, path = "/v1/customers/{id}/points/adjustments", tag = "loyalty", params(("id" = i64, Path, description = "Customer id")),
    request_body = PointsAdjustment, security(("api_key" = [])),
    responses((status = 201, body = LedgerEntry), (status = 200, body = LedgerEntry), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn adjust_points(
    key: ShopKey<LoyaltyManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<PointsAdjustment>,
) -> Result<(StatusCode, Json<LedgerEntry>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let (entry, created) = state.db("adjust_points", move |s| s.adjust_points(shop_id, id, &body, &actor, now)).await?;
    // A replay answers the first entry, whose reason someone else may have written.
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(crate::mask::mask(&key, entry))))
}

#[derive(Serialize, ToSchema)]
pub struct RedemptionList {
    items: Vec<Redemption>,
}

/// A customer's redemptions, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/redemptions", tag = "loyalty", params(("id" = i64, Path, description = "Customer id")),
    security(("api_key" = [])),
    responses((status = 200, body = RedemptionList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_redemptions(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<RedemptionList>, ApiError> {
    let now = state.now();
    let items = state.read("redemptions", move |s| s.redemptions(key.shop_id, id, now)).await?;
    Ok(Json(RedemptionList { items }))
}

/// Spend the customer's points on a reward: the points are drawn (oldest
/// batches first), the stock goes down and the reward's coupon is issued,
/// all or nothing. Refused with 409 and the reason when points are
/// insufficient, the reward is out of stock or inactive, or the coupon's
/// budget is exhausted. A second submission with the same `idempotency_key`
/// answers the first redemption with 200 and spends nothing.
#[utoipa::path(post, path = "/v1/customers/{id}/redemptions", tag = "loyalty", params(("id" = i64, Path, description = "Customer id")),
    request_body = RedeemRequest, security(("api_key" = [])),
    responses((status = 201, body = Redemption), (status = 200, body = Redemption), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn redeem(
    key: ShopKey<LoyaltyRedeem>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<RedeemRequest>,
) -> Result<(StatusCode, Json<Redemption>), ApiError> {
    let now = state.now();
    let (redemption, created) = state.db("redeem", move |s| s.redeem(key.shop_id, id, &body, now)).await?;
    state.notify_events();
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(redemption)))
}

#[derive(Serialize, ToSchema)]
pub struct RewardList {
    items: Vec<Reward>,
}

/// The shop's points mall.
#[utoipa::path(get, path = "/v1/rewards", tag = "loyalty", security(("api_key" = [])),
    responses((status = 200, body = RewardList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_rewards(key: ShopKey<CustomersRead>, State(state): State<AppState>) -> Result<Json<RewardList>, ApiError> {
    let items = state.read("rewards", move |s| s.rewards(key.shop_id)).await?;
    Ok(Json(RewardList { items }))
}

/// Add a reward: its points cost, the coupon template it issues, its stock.
#[utoipa::path(post, path = "/v1/rewards", tag = "loyalty", request_body = RewardInput, security(("api_key" = [])),
    responses((status = 201, body = Reward), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create_reward(
    key: ShopKey<LoyaltyManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RewardInput>,
) -> Result<(StatusCode, Json<Reward>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let reward = state.db("create_reward", move |s| s.create_reward(key.shop_id, &body, &actor, now)).await?;
    Ok((StatusCode::CREATED, Json(reward)))
}

#[utoipa::path(get, path = "/v1/rewards/{id}", tag = "loyalty", params(("id" = i64, Path, description = "Reward id")), security(("api_key" = [])),
    responses((status = 200, body = Reward), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_reward(key: ShopKey<CustomersRead>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Reward>, ApiError> {
    Ok(Json(state.read("reward", move |s| s.reward(key.shop_id, id)).await?))
}

/// Replace a reward's terms, stock or availability.
#[utoipa::path(put, path = "/v1/rewards/{id}", tag = "loyalty", params(("id" = i64, Path, description = "Reward id")), request_body = RewardInput,
    security(("api_key" = [])),
    responses((status = 200, body = Reward), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn update_reward(
    key: ShopKey<LoyaltyManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<RewardInput>,
) -> Result<Json<Reward>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    Ok(Json(state.db("update_reward", move |s| s.update_reward(key.shop_id, id, &body, &actor, now)).await?))
}

/// The shop's loyalty settings: what a refund that claws back more points
/// than the customer has does (`debt`, the default, or `forgive`).
#[utoipa::path(get, path = "/v1/shop/settings/loyalty", tag = "loyalty", security(("api_key" = [])),
    responses((status = 200, body = LoyaltySettings), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_loyalty_settings(key: ShopKey<LoyaltyManage>, State(state): State<AppState>) -> Result<Json<LoyaltySettings>, ApiError> {
    Ok(Json(state.read("loyalty_settings", move |s| s.loyalty_settings(key.shop_id)).await?))
}

#[utoipa::path(put, path = "/v1/shop/settings/loyalty", tag = "loyalty", request_body = LoyaltySettings, security(("api_key" = [])),
    responses((status = 200, body = LoyaltySettings), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn put_loyalty_settings(
    key: ShopKey<LoyaltyManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoyaltySettings>,
) -> Result<Json<LoyaltySettings>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop = key.shop_id;
    let stored = body.clone();
    state.db("put_loyalty_settings", move |s| s.put_loyalty_settings(shop, &stored, &actor, now)).await?;
    Ok(Json(body))
}
