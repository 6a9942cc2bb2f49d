//! Segments: definitions with versions, preview, members, snapshots, daily
//! counts, and the audited CSV export.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use kith_core::Actor;
use kith_core::prelude::*;
use kith_core::segments::Audience;
use kith_domain::auth::Scope;
use kith_domain::model::{Customer, ExportPolicy};
use kith_domain::personal;
use kith_domain::segments::{DailyCount, Segment, SegmentInput, SegmentVersion, Snapshot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::customers::audit_unmasked;
use crate::AppState;
use crate::auth::{CustomersRead, Owner, SegmentsExport, SegmentsManage, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, cursor, date_range, page_limit};
use crate::mask::{self, Personal};

/// A key without `pii:read` may not write a definition that reads personal data (403 naming the
/// node): a test on the name, a personal attribute or the birthday (other than its presence or
/// anniversary), or a value that could narrow a phone written in free text. Otherwise saving,
/// previewing and counting would tell it what masking hides.
fn check_author<S>(key: &ShopKey<S>, definition: &Value) -> Result<(), ApiError> {
    if key.can(Scope::PiiRead) {
        return Ok(());
    }
    // An invalid definition is refused by the store with the faulty node named.
    let Ok(node) = kith_domain::segments::parse(definition) else { return Ok(()) };
    match node.personal_references("definition").into_iter().next() {
        None => Ok(()),
        Some(at) => Err(ApiError::forbidden(format!("`{at}` reads personal data; writing it needs the `pii:read` scope"))),
    }
}

fn masked_segment<S>(key: &ShopKey<S>, mut segment: Segment) -> Segment {
    segment.definition = mask::json(key, segment.definition);
    segment
}

#[derive(Serialize, ToSchema)]
pub struct SegmentList {
    items: Vec<Segment>,
}

#[utoipa::path(get, path = "/v1/segments", tag = "segments", security(("api_key" = [])),
    responses((status = 200, body = SegmentList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_segments(key: ShopKey<CustomersRead>, State(state): State<AppState>) -> Result<Json<SegmentList>, ApiError> {
    let shop_id = key.shop_id;
    let items = state.read("list_segments", move |s| s.list_segments(shop_id)).await?;
    Ok(Json(SegmentList { items: items.into_iter().map(|s| masked_segment(&key, s)).collect() }))
}

/// Create a segment. The definition is a tree of `and` / `or` / `not` over conditions:
///
/// - `{"profile": name|gender|province|city|tier|birthday|created_at, "op", "value"}`
/// - `{"attribute": "<key>", "op", "value"}` on custom attributes (text, number, boolean, array)
/// - `{"tag": "<tag>", "source"?: "<plugin or manual>", "has"?: true|false}`
/// - `{"stat": total_spent|order_count|aov|days_since_first_order|days_since_last_order|refund_count|refund_amount|points, "op", "value"}`
/// - `{"score": "<model>"}`, with `"label": "<code>"` or `["<code>", …]` (the label or its part before `|`), or `"op"` and `"value"` on the value,
///   or a rank among the shop's customers holding the model's score: `"top_percent": N` / `"bottom_percent": N` (N 1–100),
///   whose value is at least (at most) the ⌈n·N/100⌉-th highest (lowest) of those n, so ties at the threshold are in
///   (`{"and": [{"score": "predict.churn_risk", "op": "gte", "value": 0.7}, {"score": "predict.clv", "top_percent": 20}]}`)
/// - `{"behaviour": view|favorite|cart|purchase, "sku"?, "category"?, "window", "at_least"?, "at_most"?}`
/// - `{"purchase": {"sku"?, "category"?}, "window", "at_least"?, "at_most"?, "spent_at_least"?}` over orders not fully refunded
/// - `{"segment": <id>}`: member of another segment of the shop
///
/// Operators: `eq`, `ne` (differs or missing), `lt`, `lte`, `gt`, `gte`, `between` (inclusive pair), `in`,
/// `contains`, `exists` (true/false), and on dates `within_last_days` / `within_next_days` (birthdays by
/// anniversary, today included). A window is `{"last_days": N}` (N × 24 h up to now) or
/// `{"between": ["YYYY-MM-DD", "YYYY-MM-DD"]}` (whole days in the shop's zone). Counts default to
/// at least 1; `"at_most": 0` means "did not". Windows and ranks are resolved when the segment is read.
/// Tracked members (`members`, entry and exit events) follow each customer's own changes at once; a
/// definition with windows is re-evaluated whole by an hourly sweep (reason `time`), and one with a rank
/// at least hourly and, after a plugin writes that model's scores, at once or (while a run keeps writing
/// them) within a minute (reason `ranking`: other customers' scores moved the threshold).
/// Errors name the faulty node, e.g. `definition.and[1].op`.
///
/// A key without `pii:read` may not write a definition that reads personal data (403 naming the node):
/// a test on `name`, on a personal attribute (`receiver_mobile`, `收货人`…) or on `birthday` other than
/// `exists` and the anniversary tests; a `contains` / `lt` / `lte` / `gt` / `gte` / `between` on text
/// holding more than 3 digits or an `@`; any compared value that is a phone or an e-mail address. Such
/// compared values are shown masked to keys without `pii:read`.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", request_body = SegmentInput, security(("api_key" = [])),
    responses((status = 201, body = Segment), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create_segment(
    key: ShopKey<SegmentsManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SegmentInput>,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    check_author(&key, &body.definition)?;
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let segment = state.db("create_segment", move |s| s.create_segment(shop_id, &body, &actor, now)).await?;
    Ok((StatusCode::CREATED, Json(masked_segment(&key, segment))))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// Show the definition in force at this time (RFC 3339) instead of the current one.
    at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, description = "Segment id"), AtQuery),
    security(("api_key" = [])),
    responses((status = 200, body = Segment), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_segment(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<AtQuery>,
) -> Result<Json<Segment>, ApiError> {
    let shop_id = key.shop_id;
    let segment = state.read("get_segment", move |s| s.get_segment(shop_id, id, q.at)).await?;
    Ok(Json(masked_segment(&key, segment)))
}

/// Replace a segment's name, description and definition. A changed definition is
/// a new version; members who enter or leave because of it get `segment.entered` /
/// `segment.exited` events with reason `redefined`.
#[utoipa::path(put, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, description = "Segment id")),
    request_body = SegmentInput, security(("api_key" = [])),
    responses((status = 200, body = Segment), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn update_segment(
    key: ShopKey<SegmentsManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<SegmentInput>,
) -> Result<Json<Segment>, ApiError> {
    check_author(&key, &body.definition)?;
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let shop_id = key.shop_id;
    let segment = state.db("update_segment", move |s| s.update_segment(shop_id, id, &body, &actor, now)).await?;
    state.notify_events();
    Ok(Json(masked_segment(&key, segment)))
}

/// Delete a segment (refused with 409 while another segment refers to it).
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, description = "Segment id")),
    security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_segment(
    key: ShopKey<SegmentsManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    state.db("delete_segment", move |s| s.delete_segment(key.shop_id, id, &actor, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct VersionList {
    items: Vec<SegmentVersion>,
}

/// Every version of a segment's definition, oldest first.
#[utoipa::path(get, path = "/v1/segments/{id}/versions", tag = "segments", params(("id" = i64, Path, description = "Segment id")),
    security(("api_key" = [])),
    responses((status = 200, body = VersionList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn segment_versions(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<VersionList>, ApiError> {
    let shop_id = key.shop_id;
    let mut items = state.read("segment_versions", move |s| s.segment_versions(shop_id, id)).await?;
    for version in &mut items {
        version.definition = mask::json(&key, std::mem::take(&mut version.definition));
    }
    Ok(Json(VersionList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[schema(value_type = Object)]
    definition: Value,
    /// Sample size, 1-200, default 20.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Preview {
    /// Customers matching now.
    count: i64,
    /// The first of them by id; masked without `pii:read`.
    sample: Vec<Customer>,
}

/// Count and sample the customers a definition selects now, without saving it. A key without
/// `pii:read` may not preview a definition that reads personal data (403, as when saving one).
#[utoipa::path(post, path = "/v1/segments/preview", tag = "segments", request_body = PreviewRequest, security(("api_key" = [])),
    responses((status = 200, body = Preview), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn preview(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PreviewRequest>,
) -> Result<Json<Preview>, ApiError> {
    check_author(&key, &body.definition)?;
    let limit = page_limit(body.limit, 20, 200)?;
    let now = state.now();
    let shop_id = key.shop_id;
    let audience = Audience::Definition(body.definition);
    let (_, count, sample) = state.read("preview_segment", move |s| s.audience_page(shop_id, &audience, 0, limit, true, now)).await?;
    let sample = reveal(&state, &key, sample, "segment:preview".into()).await?;
    Ok(Json(Preview { count: count.unwrap_or_default(), sample }))
}

/// Mask customers for keys without `pii:read`; audit unmasked reads.
async fn reveal<S>(state: &AppState, key: &ShopKey<S>, mut customers: Vec<Customer>, target: String) -> Result<Vec<Customer>, ApiError> {
    if key.can(Scope::PiiRead) {
        audit_unmasked(state, key, target, customers.len()).await?;
    } else {
        customers.mask_personal();
    }
    Ok(customers)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1-1000, default 100.
    limit: Option<usize>,
    /// Also count all members (one more query).
    count: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    /// The segment version evaluated.
    version: i64,
    /// All members now, when asked with `count=true`.
    count: Option<i64>,
    items: Vec<Customer>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

/// The customers the segment's current definition selects now, by id; masked without `pii:read`.
#[utoipa::path(get, path = "/v1/segments/{id}/members", tag = "segments", params(("id" = i64, Path, description = "Segment id"), MembersQuery),
    security(("api_key" = [])),
    responses((status = 200, body = MemberPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn members(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<MembersQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let after = cursor(q.cursor.as_deref())?;
    let now = state.now();
    let shop_id = key.shop_id;
    let with_count = q.count.unwrap_or(false);
    let audience = Audience::Segment { id, version: None };
    let (version, count, items) =
        state.read("segment_members", move |s| s.audience_page(shop_id, &audience, after, limit, with_count, now)).await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|c| c.id.to_string())).flatten();
    let items = reveal(&state, &key, items, format!("segment:{id}")).await?;
    Ok(Json(MemberPage { version, count, items, next_cursor }))
}

/// Freeze the segment's membership now (for journeys, and to compare over time).
#[utoipa::path(post, path = "/v1/segments/{id}/snapshots", tag = "segments", params(("id" = i64, Path, description = "Segment id")),
    security(("api_key" = [])),
    responses((status = 201, body = Snapshot), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn take_snapshot(
    key: ShopKey<SegmentsManage>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Snapshot>), ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let snapshot = state.db("snapshot_segment", move |s| s.snapshot_segment(key.shop_id, id, &actor, now)).await?;
    Ok((StatusCode::CREATED, Json(snapshot)))
}

#[derive(Serialize, ToSchema)]
pub struct SnapshotList {
    items: Vec<Snapshot>,
}

/// A segment's snapshots, newest first.
#[utoipa::path(get, path = "/v1/segments/{id}/snapshots", tag = "segments", params(("id" = i64, Path, description = "Segment id")),
    security(("api_key" = [])),
    responses((status = 200, body = SnapshotList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_snapshots(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SnapshotList>, ApiError> {
    let items = state.read("list_snapshots", move |s| s.list_snapshots(key.shop_id, id)).await?;
    Ok(Json(SnapshotList { items }))
}

#[derive(Serialize, ToSchema)]
pub struct SnapshotPage {
    snapshot: Snapshot,
    /// Members by id, with their data as it is now; masked without `pii:read`.
    items: Vec<Customer>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1-1000, default 100.
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/segments/{id}/snapshots/{snapshot}/members", tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), ("snapshot" = i64, Path, description = "Snapshot id"), PageQuery),
    security(("api_key" = [])),
    responses((status = 200, body = SnapshotPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn snapshot_members(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path((id, snapshot)): Path<(i64, i64)>,
    Query(q): Query<PageQuery>,
) -> Result<Json<SnapshotPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let after = cursor(q.cursor.as_deref())?;
    let shop_id = key.shop_id;
    let (snapshot, items) = state.read("snapshot_members", move |s| s.snapshot_members(shop_id, id, snapshot, after, limit)).await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|c| c.id.to_string())).flatten();
    let items = reveal(&state, &key, items, format!("segment:{id}:snapshot:{}", snapshot.id)).await?;
    Ok(Json(SnapshotPage { snapshot, items, next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CountsQuery {
    /// First day (the shop's date, YYYY-MM-DD); default 29 days before `to`.
    from: Option<NaiveDate>,
    /// Last day; default today.
    to: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct CountList {
    items: Vec<DailyCount>,
}

/// Members per day, as recorded when membership changed and at each sweep (hourly);
/// a day without a record carries the day before. Days before the segment existed are absent.
#[utoipa::path(get, path = "/v1/segments/{id}/counts", tag = "segments", params(("id" = i64, Path, description = "Segment id"), CountsQuery),
    security(("api_key" = [])),
    responses((status = 200, body = CountList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn daily_counts(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<CountsQuery>,
) -> Result<Json<CountList>, ApiError> {
    let shop_id = key.shop_id;
    let today = state.shop_today(shop_id).await?;
    let (from, to) = date_range(q.from, q.to, today, 30, 3660)?;
    let items = state.read("segment_counts", move |s| s.segment_counts(shop_id, id, from, to)).await?;
    Ok(Json(CountList { items }))
}

const DEFAULT_EXPORT: &str = "id,gender,province,city,tier,points,total_spent,order_count,last_order_at";

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Comma-separated columns from: id, name, phone, email, birthday, gender, province, city,
    /// tier, points, total_spent, order_count, aov, first_order_at, last_order_at, refund_count,
    /// refund_amount, tags, created_at. Default: id, gender, province, city, tier, points,
    /// total_spent, order_count, last_order_at. name, phone, email and birthday are personal: they need the
    /// shop's export policy to allow personal columns (`PUT /v1/shop/settings/export`, owner only) and `pii:read`.
    columns: Option<String>,
}

/// The columns asked for. Which columns exist and which are personal come from the one
/// definition (`kith_domain::personal::EXPORT_COLUMNS`); [`cell`] maps each to its value.
fn export_columns(raw: Option<&str>, pii: bool, policy: ExportPolicy) -> Result<Vec<&'static str>, ApiError> {
    let mut columns = Vec::new();
    for name in raw.unwrap_or(DEFAULT_EXPORT).split(',').map(str::trim) {
        let Some(column) = personal::export_column(name) else {
            let allowed: Vec<&str> = personal::EXPORT_COLUMNS.iter().map(|c| c.name).collect();
            return Err(ApiError::bad_request("columns", format!("unknown column `{name}`; choose from {}", allowed.join(", "))));
        };
        let personal = column.personal.is_some();
        if personal && !policy.personal_columns {
            return Err(ApiError::forbidden(format!(
                "column `{}` is personal data, and the shop's export policy allows no personal columns (only its owner may change that)",
                column.name
            )));
        }
        if personal && !pii {
            return Err(ApiError::forbidden(format!("column `{}` is personal data: exporting it needs the `pii:read` scope", column.name)));
        }
        if columns.contains(&column.name) {
            return Err(ApiError::bad_request("columns", format!("column `{}` appears twice", column.name)));
        }
        columns.push(column.name);
    }
    Ok(columns)
}

/// Text as a spreadsheet will not run it as a formula.
fn text_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() }
}

fn cell(c: &Customer, column: &str) -> String {
    let identity = |kind: &str| c.identities.iter().find(|i| i.kind == kind).map(|i| i.value.clone()).unwrap_or_default();
    let opt = |v: Option<&String>| v.map(|s| text_cell(s)).unwrap_or_default();
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    match column {
        "id" => c.id.to_string(),
        "name" => opt(c.profile.name.as_ref()),
        "phone" => identity("phone"),
        "email" => text_cell(&identity("email")),
        "birthday" => c.profile.birthday.map(|d| d.to_string()).unwrap_or_default(),
        "gender" => opt(c.profile.gender.as_ref()),
        "province" => opt(c.profile.province.as_ref()),
        "city" => opt(c.profile.city.as_ref()),
        "tier" => opt(c.tier.as_ref()),
        "points" => c.points.to_string(),
        "total_spent" => c.stats.total_spent.to_string(),
        "order_count" => c.stats.order_count.to_string(),
        "aov" => c.stats.average_order_value.map(|v| v.to_string()).unwrap_or_default(),
        "first_order_at" => time(c.stats.first_order_at),
        "last_order_at" => time(c.stats.last_order_at),
        "refund_count" => c.stats.refund_count.to_string(),
        "refund_amount" => c.stats.refund_amount.to_string(),
        "tags" => {
            let mut tags: Vec<&str> = c.tags.iter().map(|t| t.tag.as_str()).collect();
            tags.dedup();
            text_cell(&tags.join(";"))
        }
        "created_at" => c.created_at.to_rfc3339(),
        _ => String::new(),
    }
}

fn csv_rows(rows: impl IntoIterator<Item = Vec<String>>) -> std::io::Result<Bytes> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row)?;
    }
    writer.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Rows per page read while exporting.
const EXPORT_PAGE: usize = 1000;

/// The segment's members as CSV, streamed page by page (the definition's version and
/// the clock are fixed when the export starts). Needs `segments:export`; personal
/// columns need the shop's export policy to allow them (by default it does not) and `pii:read`. Every export is written to the audit log twice: when it
/// starts (`segment.export_started`: version, columns) and when it ends
/// (`segment.exported`: version, columns, rows sent, whether complete — also when
/// the client stops reading).
#[utoipa::path(get, path = "/v1/segments/{id}/export", tag = "segments", params(("id" = i64, Path, description = "Segment id"), ExportQuery),
    security(("api_key" = [])),
    responses((status = 200, content_type = "text/csv", description = "The members, one row each, with a header row"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn export(
    key: ShopKey<SegmentsExport>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let shop_id = key.shop_id;
    let policy = state.read("export_policy", move |s| s.export_policy(shop_id)).await?;
    let columns = export_columns(q.columns.as_deref(), key.can(Scope::PiiRead), policy)?;
    let version = state.read("get_segment", move |s| s.get_segment(shop_id, id, None)).await?.version;
    let now = state.now();
    let actor = Actor::key(&key.principal.key_id);
    // Recorded before the first byte leaves, so an export the process does not live to finish is still on record.
    let started = json!({"version": version, "columns": columns});
    let audit_actor = actor.clone();
    state
        .db("audit", move |s| s.audit(Some(shop_id), &audit_actor, "segment.export_started", Some(&format!("segment:{id}")), started))
        .await?;
    let store = state.store();
    let header = csv_rows([columns.iter().map(|c| c.to_string()).collect()]).map_err(ApiError::internal)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let audience = Audience::Segment { id, version: Some(version) };
        let (mut after, mut rows, mut complete) = (0, 0usize, tx.blocking_send(Ok(header)).is_ok());
        while complete {
            let page = match store.audience_page(shop_id, &audience, after, EXPORT_PAGE, false, now) {
                Ok((_, _, page)) => page,
                Err(e) => {
                    tracing::error!(segment = id, error = %e, "export failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    complete = false;
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            after = last.id;
            let body = csv_rows(page.iter().map(|c| columns.iter().map(|col| cell(c, col)).collect()));
            if body.is_ok_and(|body| tx.blocking_send(Ok(body)).is_ok()) {
                rows += page.len();
            } else {
                complete = false;
            }
            if page.len() < EXPORT_PAGE {
                break;
            }
        }
        let detail = json!({"version": version, "columns": columns, "rows": rows, "complete": complete});
        if let Err(e) = store.audit(Some(shop_id), &actor, "segment.exported", Some(&format!("segment:{id}")), detail) {
            tracing::error!(segment = id, error = %e, "could not audit an export");
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"segment-{id}-v{version}.csv\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The shop's export policy: whether segment exports may hold personal columns (by default they may not).
#[utoipa::path(get, path = "/v1/shop/settings/export", tag = "segments", security(("api_key" = [])),
    responses((status = 200, body = ExportPolicy), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_export_policy(key: ShopKey<SegmentsExport>, State(state): State<AppState>) -> Result<Json<ExportPolicy>, ApiError> {
    Ok(Json(state.read("export_policy", move |s| s.export_policy(key.shop_id)).await?))
}

/// Change the shop's export policy (owner keys only; audited as `settings.export`).
#[utoipa::path(put, path = "/v1/shop/settings/export", tag = "segments", request_body = ExportPolicy, security(("api_key" = [])),
    responses((status = 200, body = ExportPolicy), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn put_export_policy(
    owner: Owner,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ExportPolicy>,
) -> Result<Json<ExportPolicy>, ApiError> {
    let actor = Actor::key(&owner.principal.key_id);
    let now = state.now();
    state.db("put_export_policy", move |s| s.put_export_policy(owner.shop_id, &body, &actor, now)).await?;
    Ok(Json(body))
}
