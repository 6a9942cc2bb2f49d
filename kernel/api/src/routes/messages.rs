//! Messages to customers: send (through the outbox), status, consents, the
//! shop's channel settings, and the receipt URL providers post to.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use kith_core::Actor;
use kith_core::outbox::ReceiptReport;
use kith_core::prelude::*;
use kith_domain::messaging::{ConnectorRoute, Consent, ConsentInput, Message, MessageStatus, MessagingSettings, SendRequest};
use kith_domain::plugin::InboundRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{CustomersRead, CustomersWrite, MessagesManage, MessagesSend, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path, Query, page_limit};

/// Largest receipt body a provider may post.
const RECEIPT_LIMIT: usize = 1 << 20;

fn masked<S>(key: &ShopKey<S>, message: Message) -> Message {
    crate::mask::mask(key, message)
}

/// Send a message to one customer through the shop's connector for the
/// channel. The message is stored first and answered with 202; it is sent
/// by the outbox, which applies the customer's consent, the channel's
/// frequency cap and quiet hours (held until they end), retries what the
/// provider asks to retry, and ends `sent`/`delivered`, `failed` or
/// `suppressed` with a reason. Resending with the same `idempotency_key`
/// answers the first message with 200; a different message under a used
/// key is a conflict. A channel that no enabled connector of the shop sends
/// is refused (400, `field: "channel"`): such a message could never go out.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SendRequest, security(("api_key" = [])),
    responses((status = 202, body = Message), (status = 200, body = Message), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn send_message(
    key: ShopKey<MessagesSend>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SendRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let now = state.now();
    let shop = key.shop_id;
    let (message, created) = state.db("send_message", move |s| s.send_message(shop, &body, "api", now)).await?;
    state.notify_events();
    Ok((if created { StatusCode::ACCEPTED } else { StatusCode::OK }, Json(masked(&key, message))))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    customer_id: Option<i64>,
    /// `queued`, `sending`, `sent`, `delivered`, `failed` or `suppressed`.
    status: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<i64>,
    /// 1-200, default 50.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    items: Vec<Message>,
    next_cursor: Option<i64>,
}

/// The shop's messages, newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(MessageQuery), security(("api_key" = [])),
    responses((status = 200, body = MessagePage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_messages(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Query(q): Query<MessageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(raw) => Some(
            MessageStatus::parse(raw)
                .ok_or_else(|| ApiError::bad_request("status", "expected queued, sending, sent, delivered, failed or suppressed"))?,
        ),
    };
    let shop = key.shop_id;
    let rows = state.read("messages", move |s| s.messages(shop, q.customer_id, status, q.cursor, limit)).await?;
    let next_cursor = if rows.len() == limit { rows.last().map(|(row, _)| *row) } else { None };
    Ok(Json(MessagePage { items: rows.into_iter().map(|(_, m)| masked(&key, m)).collect(), next_cursor }))
}

/// A message with its history: each attempt, hold, answer and receipt.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", params(("id" = String, Path, description = "Message id")), security(("api_key" = [])),
    responses((status = 200, body = Message), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_message(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let shop = key.shop_id;
    let message = state.read("message", move |s| s.message(shop, &id)).await?;
    Ok(Json(masked(&key, message)))
}

#[derive(Serialize, ToSchema)]
pub struct ConsentList {
    /// Channels without a record have not been opted out of.
    items: Vec<Consent>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/consents", tag = "messages", params(("id" = i64, Path, description = "Customer id")),
    security(("api_key" = [])),
    responses((status = 200, body = ConsentList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_consents(
    key: ShopKey<CustomersRead>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ConsentList>, ApiError> {
    let items = state.read("consents", move |s| s.consents(key.shop_id, id)).await?;
    Ok(Json(ConsentList { items }))
}

/// Record a customer's consent on a channel (audited); messages to a
/// customer who opted out are suppressed with the reason.
#[utoipa::path(put, path = "/v1/customers/{id}/consents/{channel}", tag = "messages",
    params(("id" = i64, Path, description = "Customer id"), ("channel" = String, Path, description = "Channel, e.g. sms")),
    request_body = ConsentInput, security(("api_key" = [])),
    responses((status = 200, body = Consent), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn put_consent(
    key: ShopKey<CustomersWrite>,
    State(state): State<AppState>,
    Path((id, channel)): Path<(i64, String)>,
    JsonBody(body): JsonBody<ConsentInput>,
) -> Result<Json<Consent>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    Ok(Json(state.db("put_consent", move |s| s.put_consent(key.shop_id, id, &channel, &body, &actor, now)).await?))
}

/// The shop's messaging settings per channel: frequency cap (at most `max`
/// messages per customer in `window_hours`, counted over messages sent),
/// quiet hours in the shop's time zone, and the cost of one message.
#[utoipa::path(get, path = "/v1/shop/settings/messaging", tag = "messages", security(("api_key" = [])),
    responses((status = 200, body = MessagingSettings), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_messaging_settings(
    key: ShopKey<MessagesManage>,
    State(state): State<AppState>,
) -> Result<Json<MessagingSettings>, ApiError> {
    Ok(Json(state.read("messaging_settings", move |s| s.messaging_settings(key.shop_id)).await?))
}

#[utoipa::path(put, path = "/v1/shop/settings/messaging", tag = "messages", request_body = MessagingSettings, security(("api_key" = [])),
    responses((status = 200, body = MessagingSettings), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn put_messaging_settings(
    key: ShopKey<MessagesManage>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<MessagingSettings>,
) -> Result<Json<MessagingSettings>, ApiError> {
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let stored = body.clone();
    state.db("put_messaging_settings", move |s| s.put_messaging_settings(key.shop_id, &stored, &actor, now)).await?;
    Ok(Json(body))
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    items: Vec<ChannelView>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    #[serde(flatten)]
    route: ConnectorRoute,
    /// Where the provider posts delivery receipts: `POST` this path on the kernel.
    receipt_path: String,
}

/// The shop's channels and the connector that sends each, with the path
/// its provider posts delivery receipts to (the token in it is the secret).
#[utoipa::path(get, path = "/v1/shop/channels", tag = "messages", security(("api_key" = [])),
    responses((status = 200, body = ChannelList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_channels(key: ShopKey<MessagesManage>, State(state): State<AppState>) -> Result<Json<ChannelList>, ApiError> {
    let routes = state.read("connector_routes", move |s| s.connector_routes(key.shop_id)).await?;
    let items =
        routes.into_iter().map(|route| ChannelView { receipt_path: format!("/v1/receipts/{}", route.receipt_token), route }).collect();
    Ok(Json(ChannelList { items }))
}

/// A provider's delivery receipts. No API key: the secret token in the path
/// names the shop and connector, and the connector checks the request (a
/// signature, when its provider signs). Answers how many receipts matched a message.
#[utoipa::path(post, path = "/v1/receipts/{token}", tag = "messages", params(("token" = String, Path, description = "The channel's receipt token")),
    request_body(content = String, content_type = "application/octet-stream", description = "The provider's receipt, as it posts it"),
    responses((status = 200, body = ReceiptReport), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem)))]
pub async fn receive_receipts(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptReport>, ApiError> {
    if body.len() > RECEIPT_LIMIT {
        return Err(ApiError::payload_too_large(RECEIPT_LIMIT));
    }
    let request = InboundRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect(),
        body: body.to_vec(),
    };
    let report = state.bus("receive_receipts", move |b| b.receive_receipts(&token, request)).await?;
    Ok(Json(report))
}
