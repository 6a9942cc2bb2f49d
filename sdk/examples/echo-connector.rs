//! A channel connector: posts each message as JSON to the configured URL.

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};

#[derive(serde::Deserialize)]
struct Config {
    url: String,
}

struct Echo;

impl ChannelConnector for Echo {
    fn deliver(_ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let url = kith_sdk::config::get::<Config>()?.url;
        let body = serde_json::json!({"id": message.id, "to": message.recipient, "template": message.template});
        let response = kith_sdk::http::request("POST", &url, &[("content-type", "application/json")], body.to_string().as_bytes())?;
        Ok(match response.status {
            200..=299 => Delivery::Accepted(Some(message.id)),
            429 | 503 => Delivery::RetryAfter(response.header("retry-after").and_then(|s| s.parse().ok()).unwrap_or(30)),
            status => Delivery::Rejected(format!("provider answered {status}")),
        })
    }

    fn parse_receipt(_ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        let id = String::from_utf8(request.body).map_err(|_| Error::Invalid("body is not UTF-8".into()))?;
        Ok(vec![Receipt { message_id: Some(id), provider_id: None, status: ReceiptStatus::Delivered, detail: None, at: None }])
    }
}

kith_sdk::export_channel_connector!(Echo);
