//! The `webhook` connector: each message is posted as JSON to the shop's URL
//! and signed in the Standard Webhooks convention, so the receiver can check
//! it came from the shop's kernel. The receiver posts receipts back, signed
//! the same way, as `{"id": <message id>, "status": "delivered" | "failed", "detail": …}`
//! (or a list of them).

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};
use serde_json::{Value, json};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: String,
    pub secret: String,
    #[serde(default = "yes")]
    pub verify_receipts: bool,
}

fn yes() -> bool {
    true
}

/// How far a receipt's timestamp may be from now.
const TOLERANCE_S: i64 = 300;

/// The body posted for a message.
pub fn body(message: &Message) -> Value {
    let variables: serde_json::Map<String, Value> = message.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "type": "message",
        "id": message.id,
        "customer_id": message.customer_id,
        "channel": message.channel,
        "recipient": message.recipient,
        "template": message.template,
        "variables": variables,
    })
}

/// Receipts in a receiver's body: one object or a list.
pub fn receipts(body: &[u8]) -> Result<Vec<Receipt>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("the receipt is not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .iter()
        .map(|item| {
            let id = item.get("id").and_then(Value::as_str).ok_or_else(|| Error::Invalid("a receipt has no `id`".into()))?;
            let status = match item.get("status").and_then(Value::as_str) {
                Some("delivered") => ReceiptStatus::Delivered,
                Some("failed") => ReceiptStatus::Failed,
                _ => ReceiptStatus::Pending,
            };
            Ok(Receipt {
                message_id: Some(id.to_owned()),
                provider_id: None,
                status,
                detail: item.get("detail").and_then(Value::as_str).map(Into::into),
                at: item.get("at").and_then(Value::as_i64),
            })
        })
        .collect()
}

struct Webhook;

impl ChannelConnector for Webhook {
    fn deliver(ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let config: Config = kith_sdk::config::get()?;
        let payload = body(&message).to_string();
        let timestamp = ctx.now / 1000;
        let signature = connector_kit::sign(&config.secret, &message.id, timestamp, payload.as_bytes())?;
        let response = kith_sdk::http::request(
            "POST",
            &config.url,
            &[
                ("content-type", "application/json"),
                ("webhook-id", &message.id),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", &signature),
            ],
            payload.as_bytes(),
        )?;
        Ok(connector_kit::classify(&response, |_| None))
    }

    fn parse_receipt(ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        let config: Config = kith_sdk::config::get()?;
        if config.verify_receipts {
            connector_kit::verify(&config.secret, &request, ctx.now / 1000, TOLERANCE_S)?;
        }
        receipts(&request.body)
    }
}

kith_sdk::export_channel_connector!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_read_one_or_many() {
        let one = receipts(br#"{"id": "m1", "status": "delivered"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].status, ReceiptStatus::Delivered);
        let many = receipts(br#"[{"id": "m1", "status": "failed", "detail": "gone"}, {"id": "m2", "status": "opened"}]"#).unwrap();
        assert_eq!((many[0].status, many[1].status), (ReceiptStatus::Failed, ReceiptStatus::Pending));
        assert_eq!(many[0].detail.as_deref(), Some("gone"));
        assert!(matches!(receipts(br#"{"status": "delivered"}"#), Err(Error::Invalid(_))));
    }
}
