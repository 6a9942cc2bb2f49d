//! The one error type of the API, answered as problem+json (RFC 9457) with a
//! stable `type` per kind of error and the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kith_domain::FieldError;
use kith_store::StoreError;
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
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, slug, title, detail: detail.into(), field: None, merged_into: None, source: None }
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

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(detail) => ApiError::conflict(detail),
            StoreError::Invalid(field) => ApiError::invalid(field),
            StoreError::Internal(err) => ApiError::internal(err),
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
