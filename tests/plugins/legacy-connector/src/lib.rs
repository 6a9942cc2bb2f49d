//! An SMS connector built against the released `kith:plugin@0.1.0`, with
//! `wit-bindgen` straight from `wit/v0.1` and its `wasi:http` import: the
//! kernel serves 0.1 connectors unchanged beside 0.2 ones
//! (kernel/bus/tests/wit_versions.rs runs it beside the first-party `sms-http`).
//!
//! It speaks `sms-http`'s gateway protocol: a send posts `{"phone",
//! "template_code", "params", "sign_name", "out_id"}` with `Authorization:
//! Bearer <api_key>` and `Idempotency-Key: <message id>`; a 2xx answer
//! carries `{"code": "OK", "biz_id"}` or an error code, 408/429/5xx mean
//! "retry after `Retry-After` seconds", anything else a rejection. Delivery
//! reports are a list of `{"out_id", "biz_id", "status", "err_code",
//! "report_time"}`.

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    features: ["clocks-timezone"],
    world: "channel-connector",
    generate_all,
});

use kith::plugin::types::ReceiptStatus;
use kith::plugin::{config, log};
use serde_json::{Value, json};
use wasi::http::{outgoing_handler, types};
use wasi::io::streams::StreamError;

/// Seconds to wait when the gateway is busy and does not say.
const RETRY_AFTER: u32 = 30;

/// A response, read whole.
struct Response {
    status: u16,
    retry_after: Option<u32>,
    body: Vec<u8>,
}

fn failed(code: types::ErrorCode) -> Error {
    match code {
        types::ErrorCode::HttpRequestDenied => Error::AccessDenied("the kernel denied the request: host not granted".into()),
        other => Error::Failed(format!("HTTP request failed: {other:?}")),
    }
}

/// `POST` `body` to `url` with `headers`, through `wasi:http/outgoing-handler`.
fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::Invalid(format!("`{url}` is not an absolute URL")))?;
    let scheme = match scheme {
        "http" => types::Scheme::Http,
        "https" => types::Scheme::Https,
        other => return Err(Error::Invalid(format!("unsupported scheme `{other}`"))),
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
    let list: Vec<(String, Vec<u8>)> = headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
    let fields = types::Fields::from_list(&list).map_err(|e| Error::Invalid(format!("headers: {e:?}")))?;
    let request = types::OutgoingRequest::new(fields);
    let refused = |what: &str| Error::Invalid(format!("invalid {what}"));
    request.set_method(&types::Method::Post).map_err(|()| refused("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| refused("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| refused("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| refused("path"))?;
    let outgoing = request.body().map_err(|()| Error::Failed("request body already taken".into()))?;
    let future = outgoing_handler::handle(request, None).map_err(failed)?;
    let written = (|| {
        {
            let stream = outgoing.write().map_err(|()| Error::Failed("request body stream already taken".into()))?;
            for chunk in body.chunks(4096) {
                stream.blocking_write_and_flush(chunk).map_err(|e| Error::Failed(format!("writing the request body: {e:?}")))?;
            }
        }
        types::OutgoingBody::finish(outgoing, None).map_err(failed)
    })();
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(failed(code)),
        Some(Err(())) => return Err(Error::Failed("response already taken".into())),
        None => return Err(Error::Failed("no response".into())),
    };
    written?;
    let status = response.status();
    let retry_after = response.headers().get("retry-after").first().and_then(|v| String::from_utf8_lossy(v).trim().parse().ok());
    let incoming = response.consume().map_err(|()| Error::Failed("response body already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| Error::Failed("response body stream already taken".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::Failed(format!("reading the response: {}", e.to_debug_string())));
                }
            }
        }
    }
    Ok(Response { status, retry_after, body })
}

/// The gateway's answer as a delivery.
fn delivery(response: &Response) -> Delivery {
    match response.status {
        200..=299 => {
            let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            match answer.get("code").and_then(Value::as_str) {
                Some("OK") | None => Delivery::Accepted(answer.get("biz_id").and_then(Value::as_str).map(Into::into)),
                Some("THROTTLED" | "BUSINESS_LIMIT_CONTROL") => Delivery::RetryAfter(RETRY_AFTER),
                Some(code) => Delivery::Rejected(format!("{code}: {}", answer.get("message").and_then(Value::as_str).unwrap_or(""))),
            }
        }
        408 | 429 | 500..=599 => Delivery::RetryAfter(response.retry_after.unwrap_or(RETRY_AFTER)),
        status => {
            let snippet: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
            Delivery::Rejected(format!("provider answered {status}: {snippet}"))
        }
    }
}

struct Connector;

impl Guest for Connector {
    fn deliver(_ctx: ShopContext, message: Message) -> Result<Delivery, Error> {
        let config: Value = serde_json::from_str(&config::get()?).map_err(|e| Error::Invalid(format!("config: {e}")))?;
        let text = |key: &str| config[key].as_str().map(str::to_owned);
        let endpoint = text("endpoint").ok_or_else(|| Error::Invalid("config.endpoint: expected a URL".into()))?;
        let api_key = text("api_key").ok_or_else(|| Error::Invalid("config.api_key: expected a string".into()))?;
        let params: serde_json::Map<String, Value> = message.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let body = json!({
            "phone": message.recipient,
            "template_code": message.template,
            "params": params,
            "sign_name": text("sign_name"),
            "out_id": message.id,
        });
        let auth = format!("Bearer {api_key}");
        let headers = [("content-type", "application/json"), ("authorization", auth.as_str()), ("idempotency-key", message.id.as_str())];
        let response = post(&endpoint, &headers, body.to_string().as_bytes())?;
        let _ = log::write(log::Level::Info, &format!("message {} to the gateway: {}", message.id, response.status));
        Ok(delivery(&response))
    }

    fn parse_receipt(_ctx: ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        let reports: Vec<Value> =
            serde_json::from_slice(&request.body).map_err(|e| Error::Invalid(format!("expected a JSON list of reports: {e}")))?;
        Ok(reports
            .iter()
            .map(|r| Receipt {
                message_id: r.get("out_id").and_then(Value::as_str).map(Into::into),
                provider_id: r.get("biz_id").and_then(Value::as_str).map(Into::into),
                status: match r.get("status").and_then(Value::as_str) {
                    Some("DELIVERED") => ReceiptStatus::Delivered,
                    Some("FAILED") => ReceiptStatus::Failed,
                    _ => ReceiptStatus::Pending,
                },
                detail: r.get("err_code").and_then(Value::as_str).map(Into::into),
                at: r.get("report_time").and_then(Value::as_i64),
            })
            .collect())
    }
}

export!(Connector);
