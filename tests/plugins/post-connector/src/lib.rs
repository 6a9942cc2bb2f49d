//! Posts each message as JSON to the configured URL; the URL may name a host
//! the kernel does not allow, which is how the tests try to escape.

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};

#[derive(serde::Deserialize)]
struct Config {
    url: String,
}

struct Post;

impl ChannelConnector for Post {
    fn deliver(_ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let url = kith_sdk::config::get::<Config>()?.url;
        let body = serde_json::json!({"id": message.id, "to": message.recipient, "template": message.template});
        let response = kith_sdk::http::request(
            "POST",
            &url,
            &[("content-type", "application/json"), ("idempotency-key", &message.id)],
            body.to_string().as_bytes(),
        )?;
        Ok(match response.status {
            200..=299 => Delivery::Accepted(Some(String::from_utf8_lossy(&response.body).into_owned())),
            429 | 503 => Delivery::RetryAfter(response.header("retry-after").and_then(|s| s.parse().ok()).unwrap_or(30)),
            status => Delivery::Rejected(format!("provider answered {status}")),
        })
    }

    fn parse_receipt(_ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        let body: serde_json::Value = serde_json::from_slice(&request.body).map_err(|e| Error::Invalid(format!("receipt: {e}")))?;
        let status = match body["status"].as_str() {
            Some("delivered") => ReceiptStatus::Delivered,
            Some("failed") => ReceiptStatus::Failed,
            _ => ReceiptStatus::Pending,
        };
        Ok(vec![Receipt { message_id: body["id"].as_str().map(Into::into), provider_id: None, status, detail: None, at: None }])
    }
}

kith_sdk::export_channel_connector!(Post);
