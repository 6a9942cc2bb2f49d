use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::Scope;
use kith_domain::ingest::MAX_BATCH;
use kith_domain::model::{Event, IngestReport};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{EventsRead, EventsWrite, ShopKey};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Query, page_limit};
use crate::mask::Personal;

/// A batch of events to ingest.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 1,000 events; see `EventInput` for their shape.
    #[schema(value_type = Vec<kith_domain::ingest::EventInput>, min_items = 1, max_items = 1000)]
    events: Vec<Box<RawValue>>,
}

/// Ingest a batch of customer upserts, paid orders, refunds and behaviours.
///
/// Each event applies whole or not at all; accepted events are durable before
/// this answers. A resent event id is reported as `duplicate` and applies nothing.
/// A malformed body is refused whole; a well-formed batch with bad events applies the good ones.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = Batch, security(("api_key" = [])),
    responses((status = 200, body = IngestReport), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem)))]
pub async fn ingest(
    key: ShopKey<EventsWrite>,
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<Batch>,
) -> Result<Json<IngestReport>, ApiError> {
    if batch.events.is_empty() {
        return Err(ApiError::bad_request("events", "is empty"));
    }
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request("events", format!("has {} events; a batch holds at most {MAX_BATCH}", batch.events.len())));
    }
    let actor = Actor::key(&key.principal.key_id);
    let now = state.now();
    let report = state.db("ingest", move |s| s.ingest_at(key.shop_id, batch.events, &actor, now)).await?;
    let metrics = state.metrics();
    metrics.record_ingest("accepted", report.accepted);
    metrics.record_ingest("duplicate", report.duplicates);
    metrics.record_ingest("rejected", report.rejected);
    if report.accepted > 0 {
        state.notify_events();
    }
    Ok(Json(report))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Events past this position of the shop's log (each shop's events are numbered 1, 2, 3 …); 0 for the beginning.
    after: Option<i64>,
    /// 1-1000, default 100.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    items: Vec<Event>,
    /// Pass as `after` for the next page.
    next_after: i64,
}

/// The shop's event log, oldest first. Identifiers in payloads are masked without `pii:read`.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery), security(("api_key" = [])),
    responses((status = 200, body = EventPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_events(
    key: ShopKey<EventsRead>,
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let after = q.after.unwrap_or(0);
    let mut items = state.read("events_after", move |s| s.events_after(key.shop_id, after, limit)).await?;
    if !key.can(Scope::PiiRead) {
        items.mask_personal();
    }
    let next_after = items.last().map_or(after, |e| e.seq);
    Ok(Json(EventPage { items, next_after }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this sequence number; the `Last-Event-ID` header wins when both are sent.
    after: Option<i64>,
}

/// Server-Sent Events of the shop's event log from a sequence number, live.
///
/// Each message has `id` = the event's position in the shop's log and `event` = event type; a client
/// that reconnects with `Last-Event-ID` resumes where it stopped.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamQuery), security(("api_key" = [])),
    responses((status = 200, description = "text/event-stream of `Event`s", content_type = "text/event-stream"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn stream(
    key: ShopKey<EventsRead>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID", "must be a sequence number"))?,
        ),
        None => None,
    };
    let cursor = last_event_id.or(q.after).unwrap_or(0);
    let pii = key.can(Scope::PiiRead);
    let shop_id = key.shop_id;
    let wake = state.subscribe_events();
    let stream = futures::stream::unfold(
        (cursor, wake, VecDeque::<Event>::new(), state),
        move |(mut cursor, mut wake, mut buffer, state)| async move {
            loop {
                if let Some(mut event) = buffer.pop_front() {
                    if !pii {
                        event.mask_personal();
                    }
                    let message = SseEvent::default()
                        .id(event.seq.to_string())
                        .event(event.kind.clone())
                        .json_data(&event)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                    return Some((Ok(message), (cursor, wake, buffer, state)));
                }
                match state.read("events_after", move |s| s.events_after(shop_id, cursor, 500)).await {
                    Ok(events) if !events.is_empty() => {
                        cursor = events.last().map_or(cursor, |e| e.seq);
                        buffer.extend(events);
                        continue;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(?err, "event stream stopped");
                        return None;
                    }
                }
                // Woken by this process's writes; the timeout also catches writes by other processes (`kith import`).
                let _woken_or_timed_out = tokio::time::timeout(Duration::from_secs(1), wake.changed()).await;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
