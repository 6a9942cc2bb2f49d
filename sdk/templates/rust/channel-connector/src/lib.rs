//! {{id}}: posts each message as JSON to the configured URL, and reads the provider's receipts.

use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ReceiptStatus, ShopContext};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
}

#[derive(serde::Deserialize)]
struct ReceiptBody {
    message_id: String,
    status: String,
    #[serde(default)]
    detail: Option<String>,
}

/// The plugin: its kind's trait, exported below.
pub struct Connector;

impl ChannelConnector for Connector {
    fn deliver(_ctx: &ShopContext, message: Message) -> Result<Delivery, Error> {
        let url = kith_sdk::config::get::<Config>()?.url;
        let variables: serde_json::Map<String, serde_json::Value> =
            message.variables.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let body = serde_json::json!({"id": message.id, "to": message.recipient, "template": message.template, "variables": variables});
        let response = kith_sdk::http::request("POST", &url, &[("content-type", "application/json")], body.to_string().as_bytes())?;
        Ok(match response.status {
            200..=299 => {
                let id = serde_json::from_slice::<serde_json::Value>(&response.body).ok().and_then(|v| v["id"].as_str().map(str::to_owned));
                Delivery::Accepted(Some(id.unwrap_or(message.id)))
            }
            429 | 503 => Delivery::RetryAfter(response.header("retry-after").and_then(|s| s.trim().parse().ok()).unwrap_or(30)),
            status => Delivery::Rejected(format!("provider answered {status}")),
        })
    }

    fn parse_receipt(_ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        let invalid = |e: serde_json::Error| Error::Invalid(format!("expected a receipt or a list of receipts as JSON: {e}"));
        let value: serde_json::Value = serde_json::from_slice(&request.body).map_err(invalid)?;
        let bodies: Vec<ReceiptBody> = match value {
            serde_json::Value::Array(_) => serde_json::from_value(value).map_err(invalid)?,
            other => vec![serde_json::from_value(other).map_err(invalid)?],
        };
        bodies
            .into_iter()
            .map(|b| {
                let status = match b.status.as_str() {
                    "delivered" => ReceiptStatus::Delivered,
                    "failed" => ReceiptStatus::Failed,
                    "pending" => ReceiptStatus::Pending,
                    other => return Err(Error::Invalid(format!("unknown status `{other}`: expected delivered, failed or pending"))),
                };
                Ok(Receipt { message_id: Some(b.message_id), provider_id: None, status, detail: b.detail, at: None })
            })
            .collect()
    }
}

kith_sdk::export_channel_connector!(Connector);
