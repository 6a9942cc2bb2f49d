//! Kith's HTTP API: the only crate that depends on axum.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it
//! with `oneshot` and the binary serves it on a socket.

mod audits;
mod auth;
pub mod console;
mod error;
mod extract;
mod limits;
mod mask;
mod metrics;
mod routes;

use kith_core::prelude::*;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use kith_bus::Bus;
use kith_core::Backend;
use tokio::sync::watch;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, Problem};
pub use limits::{CookieSecure, SignInRate};
pub use mask::MASKED_SCHEMAS;
pub use routes::openapi;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (plugin packages have their own limit).
    pub body_limit: usize,
    /// The merchant console served at `/`, if the binary carries one.
    pub console: Option<console::Console>,
    /// When the session cookie is `Secure` (`[console] cookie_secure`).
    pub cookie_secure: CookieSecure,
    /// Password hashes computed at once (sign-in, invitation, password change): 19 MiB of
    /// memory each. The machine's available parallelism by default.
    pub hash_concurrency: usize,
    /// How long a request waits for a turn to hash before it is answered 503.
    pub hash_wait: std::time::Duration,
    /// The kernel-wide bucket of sign-in attempts.
    pub sign_in_rate: SignInRate,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 8 * 1024 * 1024,
            console: None,
            cookie_secure: CookieSecure::Auto,
            hash_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            hash_wait: std::time::Duration::from_secs(5),
            sign_in_rate: SignInRate::default(),
        }
    }
}

struct Inner {
    store: Arc<dyn Backend>,
    bus: Arc<Bus>,
    config: ApiConfig,
    metrics: metrics::Metrics,
    /// Bumped after every write that appends events, to wake event streams.
    events: watch::Sender<u64>,
    audits: audits::AuditQueue,
    /// One permit per reader connection of the store (see [`AppState::read`]).
    readers: tokio::sync::Semaphore,
    /// Password hashing's bounds: a turn per permit, sign-ins' bucket, unknown logins' failures.
    hashing: tokio::sync::Semaphore,
    sign_ins: limits::TokenBucket,
    unknown_logins: limits::UnknownLogins,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(bus: Arc<Bus>, config: ApiConfig) -> Self {
        let (events, _) = watch::channel(0);
        let readers = tokio::sync::Semaphore::new(bus.store().read_concurrency());
        let hashing = tokio::sync::Semaphore::new(config.hash_concurrency);
        let sign_ins = limits::TokenBucket::new(config.sign_in_rate);
        AppState(Arc::new(Inner {
            hashing,
            sign_ins,
            unknown_logins: Default::default(),
            store: bus.store().clone(),
            bus,
            config,
            metrics: metrics::Metrics::default(),
            events,
            audits: Default::default(),
            readers,
        }))
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// The kernel's clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.bus.now()
    }

    fn store(&self) -> Arc<dyn Backend> {
        self.0.store.clone()
    }

    /// Today in the shop's time zone, by the kernel's clock.
    async fn shop_today(&self, shop_id: i64) -> Result<chrono::NaiveDate, ApiError> {
        let zone = self.read("get_shop", move |s| s.get_shop(shop_id)).await?.time_zone;
        let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
        Ok(self.now().with_timezone(&zone).date_naive())
    }

    fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// Run a store call on the blocking pool, timed under `op`.
    async fn db<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&dyn Backend) -> kith_core::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.blocking(op, Instant::now(), f).await
    }

    /// Run a store call that hashes or verifies a password, as [`AppState::db`] does, once
    /// one of the hashing turns is free: at most `hash_concurrency` hashes (19 MiB each) run
    /// at once, and a request that waits longer than `hash_wait` is answered 503.
    async fn hashing<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&dyn Backend) -> kith_core::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let start = Instant::now();
        let wait = self.config().hash_wait;
        let permit = tokio::time::timeout(wait, self.0.hashing.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            self.metrics().record_sign_in_failure("busy");
            tracing::warn!(op, "no turn to hash a password in time: answered 503");
            return Err(ApiError::busy(wait.as_secs().max(1).try_into().unwrap_or(u32::MAX)));
        };
        self.blocking(op, start, f).await
    }

    /// Run a store call that only reads, as [`AppState::db`] does, once one of
    /// the store's reader connections is free: a read waits for its turn as a
    /// task rather than as a blocking thread parked on the store's pool (64
    /// concurrent reads made a hundred-odd threads for 8 connections, and their
    /// wake-ups cost more than the reads).
    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&dyn Backend) -> kith_core::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let start = Instant::now();
        // The semaphore is never closed: acquiring it cannot fail.
        let _permit = self.0.readers.acquire().await.map_err(ApiError::internal)?;
        self.blocking(op, start, f).await
    }

    /// Run `f` on the blocking pool and time it under `op` from `start`.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        start: Instant,
        f: impl FnOnce(&dyn Backend) -> kith_core::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.0.store.clone();
        let result = tokio::task::spawn_blocking(move || f(&*store)).await.map_err(ApiError::internal)?;
        self.metrics().record_db(op, start.elapsed());
        result.map_err(ApiError::from)
    }

    /// Run a bus call (plugin lifecycle, re-drives) on the blocking pool, timed under `op`.
    async fn bus<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Bus) -> kith_bus::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let bus = self.0.bus.clone();
        let start = Instant::now();
        let result = tokio::task::spawn_blocking(move || f(&bus)).await.map_err(ApiError::internal)?;
        self.metrics().record_db(op, start.elapsed());
        result.map_err(ApiError::from)
    }

    /// Wake event streams and the bus's workers after a write that appended events.
    fn notify_events(&self) {
        self.0.events.send_modify(|n| *n = n.wrapping_add(1));
        self.0.bus.notify();
    }

    fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.0.events.subscribe()
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Serve the rest of the request inside the request-id scope, so errors carry it.
async fn request_id_scope(req: Request, next: Next) -> Response {
    let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    error::REQUEST_ID.scope(id, next.run(req)).await
}

/// A body the handler left unread (a 401 before the body, a 415) is read to its end and
/// dropped before the answer goes, up to the body limit, so that the connection stays usable;
/// past the limit, or a client that stops sending, the answer says `Connection: close`.
/// Otherwise the unread rest would be taken for the next request, or hyper would close the
/// connection without saying so and the client's next request on it would fail.
async fn drain_unread_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Poll;

    use futures::StreamExt;

    let headers = req.headers();
    let sized = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let has_body = sized.is_some_and(|n| n > 0) || (sized.is_none() && headers.contains_key(header::TRANSFER_ENCODING));
    if !has_body {
        return next.run(req).await;
    }
    type Data = axum::body::BodyDataStream;
    let slot: Arc<Mutex<Option<Data>>> = Arc::new(Mutex::new(None));
    let ended = Arc::new(AtomicBool::new(false));
    let (handler_slot, handler_ended) = (slot.clone(), ended.clone());
    let req = req.map(|body| {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(body.into_data_stream());
        let stream = futures::stream::poll_fn(move |cx| {
            let mut guard = handler_slot.lock().unwrap_or_else(|p| p.into_inner());
            let Some(data) = guard.as_mut() else { return Poll::Ready(None) };
            let polled = data.poll_next_unpin(cx);
            if let Poll::Ready(None) = polled {
                handler_ended.store(true, Ordering::Release);
            }
            polled
        });
        axum::body::Body::from_stream(stream)
    });
    let mut response = next.run(req).await;
    if ended.load(Ordering::Acquire) {
        return response;
    }
    let rest = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    let mut drained = false;
    if let Some(mut rest) = rest {
        let (limit, mut read) = (state.config().body_limit, 0usize);
        let drain = async {
            while let Some(chunk) = rest.next().await {
                match chunk {
                    Ok(bytes) if read + bytes.len() <= limit => read += bytes.len(),
                    _ => return false,
                }
            }
            true
        };
        drained = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await.unwrap_or(false);
    }
    if !drained {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Every answer under `/v1/console/` is `Cache-Control: no-store`: they carry the CSRF token
/// or the shop's people.
async fn console_no_store(req: Request, next: Next) -> Response {
    let console = req.uri().path().starts_with("/v1/console/");
    let mut response = next.run(req).await;
    if console {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let (mut router, _) = routes::router().split_for_parts();
    if let Some(console) = state.config().console.clone() {
        router = router.merge(console::router(console));
    }
    router
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config().body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), drain_unread_body))
        .layer(middleware::from_fn(console_no_store))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(request_id_scope))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
