//! The one error type of the API, answered as problem+json (RFC 9457) with a
//! stable `type` per kind of error and the request id.
//!
//! A database failure of the machine is not the server's bug: it answers 503 with
//! `Retry-After`, and the same request succeeds once the machine recovers, without a
//! restart. `urn:kith:problem:storage-full` is a full disk (SQLite's SQLITE_FULL): an
//! operator must free space. `urn:kith:problem:storage-unavailable` is a disk that
//! failed a read or a write, or a database kept locked by another process. Any other
//! database failure is `urn:kith:problem:internal`, a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kith_core::Unavailable;
use kith_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being served, for error bodies and logs.
    pub static REQUEST_ID: String;
}

/// The request id of the current request, if called while serving one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A problem detail, as every error response carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:kith:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The field at fault, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where a merged customer went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
    merged_into: Option<i64>,
    /// The cause of a 5xx, logged and never sent.
    source: Option<anyhow::Error>,
    /// Seconds after which the request may succeed, sent as `Retry-After`.
    retry_after: Option<u32>,
}

/// How long a client waits before sending again after a full disk: freeing space takes
/// an operator, so retrying sooner only adds load.
const STORAGE_FULL_RETRY_SECS: u32 = 30;
/// After a failed read or write, or a database locked by another process beyond the busy timeout.
const STORAGE_UNAVAILABLE_RETRY_SECS: u32 = 5;

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, slug, title, detail: detail.into(), field: None, merged_into: None, source: None, retry_after: None }
    }

    pub fn invalid(err: FieldError) -> Self {
        let detail = if err.field.is_empty() { err.reason.clone() } else { err.to_string() };
        ApiError { field: Some(err.field), ..Self::new(StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", detail) }
    }

    pub fn bad_request(field: &str, reason: impl Into<String>) -> Self {
        Self::invalid(FieldError::new(field, reason))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// A cookie-authenticated write without the session's CSRF token in `X-Kith-CSRF`.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "CSRF token missing or wrong",
            "a request signed in by the session cookie that may change something must send the session's `csrf_token` as the `X-Kith-CSRF` header",
        )
    }

    /// Too many failed sign-ins: the account is locked for `retry_after` seconds.
    pub fn locked(retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                "Locked",
                format!("too many failed sign-ins: this account is locked; try again in {retry_after} seconds"),
            )
        }
    }

    /// Too many sign-ins across the kernel: the bucket is empty for `retry_after` seconds.
    pub fn rate_limited(retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many sign-ins at once; try again in {retry_after} seconds"),
            )
        }
    }

    /// Every turn to hash a password stayed taken for too long: 503 with `Retry-After`.
    pub fn busy(retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Busy",
                format!("the server is checking too many passwords at once; try again in {retry_after} seconds"),
            )
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", format!("{} not found", what.into()))
    }

    pub fn merged(id: i64, into: i64) -> Self {
        ApiError {
            merged_into: Some(into),
            ..Self::new(
                StatusCode::MOVED_PERMANENTLY,
                "customer-merged",
                "Customer merged",
                format!("customer {id} was merged into customer {into}"),
            )
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", "this route does not answer that method")
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        )
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError {
            source: Some(err.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the server failed; quote the request id when reporting it",
            )
        }
    }

    /// A store failure of the machine: 503 with `Retry-After`, its cause logged.
    pub(crate) fn storage_unavailable(kind: Unavailable, err: anyhow::Error) -> Self {
        let (slug, title, detail, retry_after) = match kind {
            Unavailable::Full => (
                "storage-full",
                "Storage full",
                "the server's disk is full, so nothing can be written; retry once space is freed",
                STORAGE_FULL_RETRY_SECS,
            ),
            Unavailable::Io => (
                "storage-unavailable",
                "Storage unavailable",
                "the server's storage failed to answer; retry later",
                STORAGE_UNAVAILABLE_RETRY_SECS,
            ),
        };
        ApiError { source: Some(err), retry_after: Some(retry_after), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, slug, title, detail) }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<kith_core::Error> for ApiError {
    fn from(err: kith_core::Error) -> Self {
        match err {
            kith_core::Error::NotFound(what) => ApiError::not_found(what),
            kith_core::Error::Conflict(detail) => ApiError::conflict(detail),
            kith_core::Error::Invalid(field) => ApiError::invalid(field),
            kith_core::Error::Unavailable(kind, err) => ApiError::storage_unavailable(kind, err),
            err @ kith_core::Error::Internal(_) => ApiError::internal(err),
        }
    }
}

impl From<kith_bus::BusError> for ApiError {
    fn from(err: kith_bus::BusError) -> Self {
        match err {
            kith_bus::BusError::Store(err) => err.into(),
            kith_bus::BusError::Invalid(field) => ApiError::invalid(field),
            kith_bus::BusError::Call(err) => ApiError::invalid(kith_domain::FieldError::new("plugin", err.to_string())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        if self.status.is_server_error() {
            tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), error = ?self.source, "request failed");
        }
        let problem = Problem {
            kind: format!("urn:kith:problem:{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            field: self.field,
            merged_into: self.merged_into,
            request_id,
        };
        let mut response = (self.status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(into) = self.merged_into
            && let Ok(location) = HeaderValue::from_str(&format!("/v1/customers/{into}"))
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rej: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request("path", rej.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rej: axum::extract::rejection::QueryRejection) -> Self {
        let text = rej.body_text();
        // serde_urlencoded names the field in its message; keep the message whole and point at the query.
        ApiError::bad_request("query", text.trim_start_matches("Failed to deserialize query string: ").to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use kith_core::Actor;
    use kith_domain::auth::Role;
    use kith_domain::model::{NewKey, NewShop};
    use kith_sqlite::{Store, StoreOptions};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use kith_core::prelude::*;

    async fn ingest(app: &axum::Router, token: &str, first: usize, n: usize) -> (StatusCode, Option<String>, Value) {
        let events: Vec<Value> = (first..first + n)
            .map(|i| {
                json!({"id": format!("e{i}"), "type": "customer.upsert",
                    "identities": [{"kind": "email", "value": format!("customer{i}@example.com")}],
                    "profile": {"name": format!("Customer {i} {}", "x".repeat(150))}})
            })
            .collect();
        let request = Request::post("/v1/events")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"events": events}).to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    /// The whole router over a real store whose file may not grow, as on a full disk.
    #[tokio::test]
    async fn a_full_disk_answers_503_storage_full_with_retry_after_and_the_same_request_succeeds_once_there_is_space() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap());
        let cli = Actor::cli("test");
        let shop = NewShop { name: "A".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
        let shop = store.create_shop(&shop, &cli).unwrap().id;
        let token =
            store.create_key(&NewKey { shop_id: Some(shop), name: "app".into(), role: Role::App, scopes: None }, &cli).unwrap().token;
        let host = Arc::new(kith_host::Host::new(kith_host::HostConfig::default()).unwrap());
        let clock = Arc::new(kith_bus::TestClock::new(chrono::Utc::now()));
        let bus = kith_bus::Bus::new(store.clone(), host, clock, kith_bus::BusConfig::default());
        let app = crate::app(crate::AppState::new(bus, crate::ApiConfig::default()));

        let (status, _, body) = ingest(&app, &token, 0, 10).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // No page more than the file holds now: the disk is full.
        store.limit_pages_for_tests(1).unwrap();
        let (status, retry_after, body) = ingest(&app, &token, 10, 200).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", body["type"]);
        assert_eq!(retry_after.as_deref(), Some("30"));
        assert_eq!(body["type"], "urn:kith:problem:storage-full");
        assert!(body["detail"].as_str().unwrap().contains("disk is full"), "{body}");
        // Space is freed: the same request is taken, by the same running server.
        store.limit_pages_for_tests(1 << 30).unwrap();
        let (status, retry_after, body) = ingest(&app, &token, 10, 200).await;
        assert_eq!((status, retry_after), (StatusCode::OK, None), "{body}");
        assert_eq!(body["accepted"], 200, "{body}");
    }

    #[test]
    fn other_database_failures_stay_500_internal() {
        let err = ApiError::from(kith_core::Error::Internal(anyhow::anyhow!("a bug")));
        assert_eq!((err.status, err.slug, err.retry_after), (StatusCode::INTERNAL_SERVER_ERROR, "internal", None));
    }
}
