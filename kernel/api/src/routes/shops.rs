use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::model::{NewShop, Shop};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Admin, AnyScope, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;

#[derive(Serialize, ToSchema)]
pub struct ShopList {
    items: Vec<Shop>,
}

/// Create a shop (admin keys).
#[utoipa::path(post, path = "/v1/shops", tag = "shops", request_body = NewShop, security(("api_key" = [])),
    responses((status = 201, body = Shop), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create_shop(
    Admin(p): Admin,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewShop>,
) -> Result<(StatusCode, Json<Shop>), ApiError> {
    let shop = state.db("create_shop", move |s| s.create_shop(&new, &Actor::key(&p.key_id))).await?;
    Ok((StatusCode::CREATED, Json(shop)))
}

/// List every shop (admin keys).
#[utoipa::path(get, path = "/v1/shops", tag = "shops", security(("api_key" = [])),
    responses((status = 200, body = ShopList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_shops(_: Admin, State(state): State<AppState>) -> Result<Json<ShopList>, ApiError> {
    let items = state.read("list_shops", |s| s.list_shops()).await?;
    Ok(Json(ShopList { items }))
}

/// The shop the calling key belongs to.
#[utoipa::path(get, path = "/v1/shop", tag = "shops", security(("api_key" = [])),
    responses((status = 200, body = Shop), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn current_shop(key: ShopKey<AnyScope>, State(state): State<AppState>) -> Result<Json<Shop>, ApiError> {
    let shop = state.read("get_shop", move |s| s.get_shop(key.shop_id)).await?;
    Ok(Json(shop))
}
