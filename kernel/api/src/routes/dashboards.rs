//! Dashboards: the shop's figures over a range, and the cohort repurchase table.

use axum::Json;
use axum::extract::State;
use chrono::{Datelike, NaiveDate};
use kith_core::metrics::OverviewQuery;
use kith_core::prelude::*;
use kith_domain::metrics::{CohortTable, Overview, ScoreDistribution};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::{CustomersRead, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{Path, Query, date_range};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverviewParams {
    /// First day of the range (the shop's date, YYYY-MM-DD); default 29 days before `to`.
    from: Option<NaiveDate>,
    /// Last day of the range, included; default today.
    to: Option<NaiveDate>,
    /// Days since the last order within which a customer is active; default 90.
    active_days: Option<u32>,
    /// Days since the last order after which a customer is churned; default 180.
    churn_days: Option<u32>,
}

/// The shop's dashboard over a range of its dates. Each figure is defined in the
/// schema: customers (total, new, buyers, new buyers, active / sleeping / churned by
/// days since the last order at the end of the range, repurchase rate), sales (GMV,
/// orders, AOV, refunds, new vs returning revenue), RFM groups, the AIPL funnel with
/// conversion between stages and tiers (as of now), points (issued, redeemed, expired,
/// clawed back; outstanding liability and debt now), coupons (issued, redeemed, cost)
/// and messages per channel.
#[utoipa::path(get, path = "/v1/metrics/overview", tag = "dashboards", params(OverviewParams), security(("api_key" = [])),
    responses((status = 200, body = Overview), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn overview(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Query(q): Query<OverviewParams>,
) -> Result<Json<Overview>, ApiError> {
    let shop_id = key.shop_id;
    let today = state.shop_today(shop_id).await?;
    let (from, to) = date_range(q.from, q.to, today, 30, 3660)?;
    let active_days = q.active_days.unwrap_or(90);
    let churn_days = q.churn_days.unwrap_or(180);
    if active_days == 0 {
        return Err(ApiError::bad_request("active_days", "must be at least 1"));
    }
    if churn_days <= active_days {
        return Err(ApiError::bad_request("churn_days", format!("must be more than active_days ({active_days})")));
    }
    let query = OverviewQuery { from, to, active_days, churn_days };
    let now = state.now();
    Ok(Json(state.read("overview", move |s| s.overview(shop_id, &query, now)).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CohortParams {
    /// First cohort month, `YYYY-MM`; default 11 months before `to`.
    from: Option<String>,
    /// Last cohort month, `YYYY-MM`; default this month.
    to: Option<String>,
}

fn month(raw: &str, field: &str) -> Result<NaiveDate, ApiError> {
    let refused = || ApiError::bad_request(field, "must be a month, YYYY-MM");
    if raw.len() != 7 {
        return Err(refused());
    }
    NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d").map_err(|_| refused())
}

/// Customers grouped by the month of their first counted order (not fully refunded),
/// and for each month since, how many of them ordered again, with the rate.
#[utoipa::path(get, path = "/v1/metrics/cohorts", tag = "dashboards", params(CohortParams), security(("api_key" = [])),
    responses((status = 200, body = CohortTable), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn cohorts(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Query(q): Query<CohortParams>,
) -> Result<Json<CohortTable>, ApiError> {
    let shop_id = key.shop_id;
    let today = state.shop_today(shop_id).await?;
    let to = match q.to.as_deref() {
        Some(raw) => month(raw, "to")?,
        None => today.with_day(1).unwrap_or(today),
    };
    let from = match q.from.as_deref() {
        Some(raw) => month(raw, "from")?,
        None => to.checked_sub_months(chrono::Months::new(11)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::bad_request("from", "must not be after `to`"));
    }
    if (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32 >= 60 {
        return Err(ApiError::bad_request("from", "at most 60 cohorts at once"));
    }
    let now = state.now();
    Ok(Json(state.read("cohorts", move |s| s.cohorts(shop_id, from, to, now)).await?))
}

/// Longest score model name: a plugin id (64) and a facet.
const MAX_MODEL_LEN: usize = 128;

/// How a score model's values spread over the shop's customers now: customers scored, sum,
/// mean, minimum and maximum, the deciles p10…p90 (nearest rank), a 10-bucket histogram and
/// the customers per label code. The model is a plugin id or `<plugin id>.<facet>`, e.g.
/// `predict.churn_risk` (0–1, labels `low` / `medium` / `high`) or `predict.clv`, whose `sum`
/// is the expected revenue of the customer base (minor units) over the predict plugin's CLV
/// horizon (`clv_months`, discounted, times its `margin`). A model no customer of the shop
/// holds (not scored yet, or no such model) answers with `customers` 0. A decile is the
/// ⌈k·n/10⌉-th lowest value, which is not a segment's `top_percent` threshold (the
/// ⌈N·n/100⌉-th highest): for 10 customers p80 is the 8th lowest, the top 20 % starts at the
/// 9th.
#[utoipa::path(get, path = "/v1/metrics/scores/{model}", tag = "dashboards",
    params(("model" = String, Path, description = "Score model: a plugin id or `<plugin id>.<facet>`", min_length = 1, max_length = 128,
        pattern = r"^[a-z][a-z0-9-]{0,63}(\..*)?$")),
    security(("api_key" = [])),
    responses((status = 200, body = ScoreDistribution), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn scores(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<ScoreDistribution>, ApiError> {
    let plugin = model.split('.').next().unwrap_or_default();
    if model.len() > MAX_MODEL_LEN || !kith_domain::plugin::valid_plugin_id(plugin) {
        return Err(ApiError::bad_request("model", format!("must be a plugin id or `<plugin id>.<facet>`, at most {MAX_MODEL_LEN} bytes")));
    }
    kith_domain::text::check_free("model", &model, MAX_MODEL_LEN).map_err(ApiError::invalid)?;
    let shop_id = key.shop_id;
    Ok(Json(state.read("score_distribution", move |s| s.score_distribution(shop_id, &model)).await?))
}
