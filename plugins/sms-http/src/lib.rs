//! The `sms-http` connector: a generic HTTP SMS gateway in the shape Chinese
//! providers use. A send posts `{"phone", "template_code", "params",
//! "sign_name", "out_id"}` with `Authorization: Bearer <api_key>` and
//! `Idempotency-Key: <message id>`; the gateway answers
//! `{"code": "OK", "biz_id": …}` or an error code. Delivery reports are a
//! list of `{"out_id", "biz_id", "status": "DELIVERED" | "FAILED" | …,
//! "err_code", "report_time" (ms)}`.

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};
use serde_json::{Value, json};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub endpoint: String,
    pub api_key: String,
    #[serde(default)]
    pub sign_name: Option<String>,
}

/// Gateway codes that mean "not now" rather than "never".
const THROTTLED: [&str; 2] = ["THROTTLED", "BUSINESS_LIMIT_CONTROL"];

pub fn body(message: &Message, config: &Config) -> Value {
    let params: serde_json::Map<String, Value> = message.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "phone": message.recipient,
        "template_code": message.template,
        "params": params,
        "sign_name": config.sign_name,
        "out_id": message.id,
    })
}

/// A 2xx answer still carries the gateway's own verdict in `code`.
pub fn verdict(delivery: Delivery, body: &[u8]) -> Delivery {
    let Delivery::Accepted(_) = delivery else { return delivery };
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match answer.get("code").and_then(Value::as_str) {
        Some("OK") | None => Delivery::Accepted(answer.get("biz_id").and_then(Value::as_str).map(Into::into)),
        Some(code) if THROTTLED.contains(&code) => Delivery::RetryAfter(connector_kit::DEFAULT_RETRY_AFTER),
        Some(code) => Delivery::Rejected(format!("{code}: {}", answer.get("message").and_then(Value::as_str).unwrap_or(""))),
    }
}

pub fn receipts(body: &[u8]) -> Result<Vec<Receipt>, Error> {
    let reports: Vec<Value> = serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("expected a JSON list of reports: {e}")))?;
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

struct SmsHttp;

impl ChannelConnector for SmsHttp {
    fn deliver(_ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let config: Config = kith_sdk::config::get()?;
        let payload = body(&message, &config).to_string();
        let response = connector_kit::post_json(&config.endpoint, &config.api_key, &message.id, &payload)?;
        Ok(verdict(connector_kit::classify(&response, |_| None), &response.body))
    }

    fn parse_receipt(_ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        receipts(&request.body)
    }
}

kith_sdk::export_channel_connector!(SmsHttp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_code_decides_a_2xx_answer() {
        let ok = verdict(Delivery::Accepted(None), br#"{"code": "OK", "biz_id": "b-1"}"#);
        assert!(matches!(ok, Delivery::Accepted(Some(id)) if id == "b-1"));
        assert!(matches!(verdict(Delivery::Accepted(None), br#"{"code": "THROTTLED"}"#), Delivery::RetryAfter(30)));
        assert!(
            matches!(verdict(Delivery::Accepted(None), br#"{"code": "INVALID_PHONE", "message": "bad"}"#), Delivery::Rejected(r) if r == "INVALID_PHONE: bad")
        );
        assert!(matches!(verdict(Delivery::RetryAfter(5), b""), Delivery::RetryAfter(5)));
    }

    #[test]
    fn reports_name_the_message_and_the_gateway_id() {
        let r = receipts(br#"[{"out_id": "m1", "biz_id": "b-1", "status": "DELIVERED", "report_time": 5}]"#).unwrap();
        assert_eq!(
            (r[0].message_id.as_deref(), r[0].provider_id.as_deref(), r[0].status, r[0].at),
            (Some("m1"), Some("b-1"), ReceiptStatus::Delivered, Some(5))
        );
        assert!(receipts(b"{}").is_err());
    }
}
