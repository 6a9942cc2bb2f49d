//! The `email-http` connector: an HTTP e-mail API. A send posts `{"from",
//! "to", "template", "variables"}` with `Authorization: Bearer <api_key>`
//! and `Idempotency-Key: <message id>`; the API answers `{"id": …}`. Its
//! events are posted back as `{"type": "email.delivered" | "email.bounced" |
//! "email.complained" | …, "data": {"email_id": …}}` (or a list of them).

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};
use serde_json::{Value, json};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub endpoint: String,
    pub api_key: String,
    pub from: String,
}

pub fn body(message: &Message, config: &Config) -> Value {
    let variables: serde_json::Map<String, Value> = message.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({"from": config.from, "to": message.recipient, "template": message.template, "variables": variables})
}

pub fn receipts(body: &[u8]) -> Result<Vec<Receipt>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("the event is not JSON: {e}")))?;
    let events = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    events
        .iter()
        .map(|e| {
            let kind = e.get("type").and_then(Value::as_str).ok_or_else(|| Error::Invalid("an event has no `type`".into()))?;
            let data = e.get("data").unwrap_or(&Value::Null);
            Ok(Receipt {
                message_id: None,
                provider_id: data.get("email_id").and_then(Value::as_str).map(Into::into),
                status: match kind {
                    "email.delivered" => ReceiptStatus::Delivered,
                    "email.bounced" | "email.complained" | "email.failed" => ReceiptStatus::Failed,
                    _ => ReceiptStatus::Pending,
                },
                detail: Some(kind.to_owned()),
                at: e.get("created_at").and_then(Value::as_i64),
            })
        })
        .collect()
}

struct EmailHttp;

impl ChannelConnector for EmailHttp {
    fn deliver(_ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let config: Config = kith_sdk::config::get()?;
        let payload = body(&message, &config).to_string();
        let response = connector_kit::post_json(&config.endpoint, &config.api_key, &message.id, &payload)?;
        Ok(connector_kit::classify(&response, |body| serde_json::from_slice::<Value>(body).ok()?.get("id")?.as_str().map(Into::into)))
    }

    fn parse_receipt(_ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        receipts(&request.body)
    }
}

kith_sdk::export_channel_connector!(EmailHttp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_receipts_by_the_api_id() {
        let r = receipts(
            br#"[{"type": "email.delivered", "data": {"email_id": "e1"}}, {"type": "email.bounced", "data": {"email_id": "e2"}}]"#,
        )
        .unwrap();
        assert_eq!((r[0].provider_id.as_deref(), r[0].status), (Some("e1"), ReceiptStatus::Delivered));
        assert_eq!(r[1].status, ReceiptStatus::Failed);
        assert!(receipts(br#"{"data": {}}"#).is_err());
    }
}
