use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kith_core::Actor;
use kith_core::audit::NewAudit;
use kith_core::customers::{CustomerFilter, CustomerRead};
use kith_core::prelude::*;
use kith_domain::auth::Scope;
use kith_domain::identity::{self, IdentityKind};
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, CustomerDetail, Merge, Tag};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{CustomersRead, CustomersWrite, ShopKey, TagsWrite};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, cursor, page_limit};
use crate::mask::{self, Personal};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1-200, default 50.
    limit: Option<usize>,
    /// Only customers holding this tag.
    tag: Option<String>,
    /// Only the customer holding this identifier, as `kind:value`, e.g. `phone:13800000000`.
    identity: Option<String>,
    /// Only customers changed at or after this time (RFC 3339).
    updated_since: Option<DateTime<Utc>>,
    /// Only customers with a score of this model, as `model` or `model:label-code`,
    /// e.g. `rfm:important-value` or `aipl:L`.
    score: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    items: Vec<Customer>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

/// Record that a key saw personal data unmasked; returns once the entry is on disk.
pub(crate) async fn audit_unmasked<S>(state: &AppState, key: &ShopKey<S>, target: String, count: usize) -> Result<(), ApiError> {
    state
        .audit(NewAudit {
            shop_id: Some(key.shop_id),
            actor: Actor::key(&key.principal.key_id),
            action: "customer.read_unmasked".to_owned(),
            target: Some(target),
            detail: json!({"customers": count}),
            at: Utc::now(),
        })
        .await
}

/// List customers in id order, with filters; personal data is masked without `pii:read`, and a lookup by
/// a personal identifier (phone, email, unionid, nick) needs `pii:read` (403 otherwise).
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = CustomerPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_customers(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let after = cursor(q.cursor.as_deref())?;
    let identity = match q.identity.as_deref() {
        None => None,
        Some(raw) => {
            let (kind, value) = parse_identity(raw)?;
            // A lookup that finds a customer confirms the identifier: a key that may not see
            // personal data may not test it either.
            if kith_domain::personal::is_personal_kind(&kind) && !key.can(Scope::PiiRead) {
                return Err(ApiError::forbidden(format!(
                    "looking customers up by {kind} needs the `pii:read` scope: the answer would confirm personal data"
                )));
            }
            let shop_id = key.shop_id;
            let region = state.read("get_shop", move |s| s.get_shop(shop_id)).await?.region;
            let value = identity::normalise(&kind, value, &region).map_err(|e| ApiError::bad_request("identity", e.to_string()))?;
            Some(Identifier { kind, value })
        }
    };
    let score = match q.score {
        None => None,
        Some(raw) if raw.trim().is_empty() => {
            return Err(ApiError::bad_request("score", "write it as model or model:label-code, e.g. rfm:important-value"));
        }
        Some(raw) => Some(match raw.split_once(':') {
            Some((model, code)) => (model.to_owned(), Some(code.to_owned())),
            None => (raw, None),
        }),
    };
    let filter = CustomerFilter { tag: q.tag, identity, updated_since: q.updated_since, score };
    let shop_id = key.shop_id;
    let mut items = state.read("list_customers", move |s| s.list_customers(shop_id, &filter, after, limit)).await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|c| c.id.to_string())).flatten();
    if key.can(Scope::PiiRead) {
        audit_unmasked(&state, &key, "customers".to_owned(), items.len()).await?;
    } else {
        items.mask_personal();
    }
    Ok(Json(CustomerPage { items, next_cursor }))
}

fn parse_identity(raw: &str) -> Result<(IdentityKind, &str), ApiError> {
    let malformed = || ApiError::bad_request("identity", "write it as kind:value, e.g. phone:13800000000 or external:erp:C-001");
    // An external kind holds a colon itself (`external:<source>`); its value may hold more.
    let (kind, value) = match raw.strip_prefix("external:") {
        Some(rest) => {
            let (source, value) = rest.split_once(':').ok_or_else(malformed)?;
            (format!("external:{source}"), value)
        }
        None => raw.split_once(':').map(|(k, v)| (k.to_owned(), v)).ok_or_else(malformed)?,
    };
    let kind = kind.parse::<IdentityKind>().map_err(|e| ApiError::bad_request("identity", e.to_string()))?;
    Ok((kind, value))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DetailQuery {
    /// How many recent events to include, 0-200, default 20.
    timeline: Option<usize>,
}

/// A customer's profile, identities, stats, tags, scores and recent events.
///
/// A customer merged into another answers 301 with the survivor in `Location` and `merged_into`.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", params(("id" = i64, Path, description = "Customer id"), DetailQuery), security(("api_key" = [])),
    responses((status = 200, body = CustomerDetail), (status = 301, body = Problem), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_customer(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<CustomerDetail>, ApiError> {
    let timeline = q.timeline.unwrap_or(20);
    if timeline > 200 {
        return Err(ApiError::bad_request("timeline", "must be at most 200"));
    }
    let shop_id = key.shop_id;
    let read = state.read("get_customer", move |s| s.get_customer(shop_id, id, timeline)).await?;
    let mut detail = match read {
        CustomerRead::Found(detail) => *detail,
        CustomerRead::Merged { into } => return Err(ApiError::merged(id, into)),
    };
    if key.can(Scope::PiiRead) {
        audit_unmasked(&state, &key, format!("customer:{id}"), 1).await?;
    } else {
        detail.mask_personal();
    }
    Ok(Json(detail))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    tag: String,
    reason: Option<String>,
}

/// Add a manual tag (or change its reason).
#[utoipa::path(post, path = "/v1/customers/{id}/tags", tag = "customers", request_body = NewTag, params(("id" = i64, Path, description = "Customer id")), security(("api_key" = [])),
    responses((status = 201, body = Tag), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn add_tag(
    key: ShopKey<TagsWrite>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<NewTag>,
) -> Result<(StatusCode, Json<Tag>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let shop_id = key.shop_id;
    let tag = state.db("add_tag", move |s| s.add_tag(shop_id, id, &body.tag, body.reason.as_deref(), &actor)).await?;
    state.notify_events();
    // Masked like every copy of a tag's reason, though the caller just wrote it.
    Ok((StatusCode::CREATED, Json(mask::mask(&key, tag))))
}

/// Remove a manual tag; tags set by plugins are theirs to remove.
#[utoipa::path(delete, path = "/v1/customers/{id}/tags/{tag}", tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), ("tag" = String, Path, description = "The tag")), security(("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_tag(
    key: ShopKey<TagsWrite>,
    State(state): State<AppState>,
    Path((id, tag)): Path<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    state.db("remove_tag", move |s| s.remove_tag(key.shop_id, id, &tag, &actor)).await?;
    state.notify_events();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MergeList {
    items: Vec<Merge>,
}

/// Merges a customer took part in, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/merges", tag = "customers", params(("id" = i64, Path, description = "Customer id")), security(("api_key" = [])),
    responses((status = 200, body = MergeList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_merges(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<MergeList>, ApiError> {
    let shop_id = key.shop_id;
    let items = state.read("list_merges", move |s| s.list_merges(shop_id, id)).await?;
    Ok(Json(MergeList { items: mask::mask(&key, items) }))
}

/// Undo a merge: the merged customer comes back with its identifiers, orders, behaviours, tags and scores.
#[utoipa::path(post, path = "/v1/merges/{id}/unmerge", tag = "customers", params(("id" = i64, Path, description = "Merge id")), security(("api_key" = [])),
    responses((status = 200, body = Merge), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unmerge(key: ShopKey<CustomersWrite>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Merge>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let shop_id = key.shop_id;
    let merge = state.db("unmerge", move |s| s.unmerge(shop_id, id, &actor)).await?;
    state.notify_events();
    Ok(Json(mask::mask(&key, merge)))
}
