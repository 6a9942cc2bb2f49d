use axum::Json;
use axum::extract::State;
use kith_core::prelude::*;
use kith_domain::model::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Owner;
use crate::error::{ApiError, Problem};
use crate::extract::{Query, page_limit};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1-500, default 100.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    next_before: Option<i64>,
}

/// The shop's audit log, newest first (owner keys).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), security(("api_key" = [])),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_audit(owner: Owner, State(state): State<AppState>, Query(q): Query<AuditQuery>) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let shop_id = owner.shop_id;
    let mut items = state.read("list_audit", move |s| s.list_audit(shop_id, q.before, limit)).await?;
    let next_before = (items.len() == limit).then(|| items.last().map(|e| e.id)).flatten();
    // Merge records and other details name identifiers: an owner key given explicit scopes
    // without `pii:read` sees them masked like everywhere else.
    if !owner.principal.has(kith_domain::auth::Scope::PiiRead) {
        items.iter_mut().for_each(kith_domain::personal::Personal::mask_personal);
    }
    Ok(Json(AuditPage { items, next_before }))
}
