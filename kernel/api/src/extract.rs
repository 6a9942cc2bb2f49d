//! Extractors whose rejections are problem+json like every other error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body; a parse error names the field at fault.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        let limit = state.config().body_limit;
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::bad_request("", rej.body_text())
            }
        })?;
        // Every body of the API is an object, but serde reads a struct from an array too
        // (`[[…]]` was a batch): refuse anything else at the top.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => {}
            Some(_) => return Err(ApiError::bad_request("", "the body must be a JSON object")),
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(JsonBody).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return ApiError::bad_request("", format!("the body is not valid JSON: {inner}"));
            }
            ApiError::invalid(kith_domain::FieldError::from_serde(&path, inner.to_string()))
        })
    }
}

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The `limit` of a paged list: `default` when absent, refused outside 1..=`max`.
pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request("limit", format!("must be between 1 and {max}")));
    }
    Ok(limit)
}

/// The id a `next_cursor` carried; 0 (the start) when absent.
pub fn cursor(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(c) => c.parse::<i64>().map_err(|_| ApiError::bad_request("cursor", "is not a cursor this API returned")),
    }
}

/// `from..=to` with defaults: `to` today, `from` `default_days − 1` days before it; at most `max_days` long.
pub fn date_range(
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
    default_days: i64,
    max_days: i64,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ApiError> {
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to - chrono::Duration::days(default_days - 1));
    if from > to {
        return Err(ApiError::bad_request("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= max_days {
        return Err(ApiError::bad_request("from", format!("the range may span at most {max_days} days")));
    }
    Ok((from, to))
}
