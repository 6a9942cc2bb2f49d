use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::Role;
use kith_domain::model::{ApiKey, CreatedKey, NewKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::KeyManager;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query};

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    items: Vec<ApiKey>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyQuery {
    /// Admin keys only: list one shop's keys.
    shop_id: Option<i64>,
}

/// Create a key. Owners create keys of their own shop; admin keys create keys of any shop and other admin keys.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey, security(("api_key" = [])),
    responses((status = 201, body = CreatedKey), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create_key(
    manager: KeyManager,
    State(state): State<AppState>,
    JsonBody(mut new): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    if let Some(own) = manager.shop_id {
        if new.role == Role::Admin {
            return Err(ApiError::forbidden("only admin keys create admin keys"));
        }
        match new.shop_id {
            None => new.shop_id = Some(own),
            Some(other) if other != own => return Err(ApiError::not_found(format!("shop {other}"))),
            Some(_) => {}
        }
    }
    let actor = Actor::key(&manager.principal.key_id);
    let created = state.db("create_key", move |s| s.create_key(&new, &actor)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List keys: an owner sees its shop's keys, an admin key every key (or one shop's).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeyQuery), security(("api_key" = [])),
    responses((status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_keys(manager: KeyManager, State(state): State<AppState>, Query(q): Query<KeyQuery>) -> Result<Json<KeyList>, ApiError> {
    let shop = manager.shop_id.or(q.shop_id);
    let items = state.read("list_keys", move |s| s.list_keys(shop)).await?;
    Ok(Json(KeyList { items }))
}

/// Revoke a key; it stops working at once.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id")), security(("api_key" = [])),
    responses((status = 200, body = ApiKey), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke_key(manager: KeyManager, State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ApiKey>, ApiError> {
    let actor = Actor::key(&manager.principal.key_id);
    let key = state.db("revoke_key", move |s| s.revoke_key(manager.shop_id, &id, &actor)).await?;
    Ok(Json(key))
}
