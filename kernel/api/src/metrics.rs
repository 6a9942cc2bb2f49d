//! Prometheus metrics: requests and latencies by route, ingest outcomes, and
//! time spent in the store by operation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    ingested: Family<OutcomeLabels, Counter>,
    db: Family<OpLabels, Histogram, fn() -> Histogram>,
    sign_in_failures: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kith");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let ingested = Family::<OutcomeLabels, Counter>::default();
        let db = Family::<OpLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests, by route", latency.clone());
        registry.register("ingest_events", "Ingested events, by outcome", ingested.clone());
        registry.register("db_operation_duration_seconds", "Time spent in store operations, by operation", db.clone());
        let sign_in_failures = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "console_sign_in_failures",
            "Console sign-ins and password checks refused, by outcome (wrong_password, unknown_login, locked, rate_limited, busy)",
            sign_in_failures.clone(),
        );
        Metrics { registry: Mutex::new(registry), requests, latency, ingested, db, sign_in_failures }
    }
}

impl Metrics {
    pub fn record_db(&self, op: &str, elapsed: Duration) {
        self.db.get_or_create(&OpLabels { op: op.to_owned() }).observe(elapsed.as_secs_f64());
    }

    pub fn record_ingest(&self, outcome: &str, n: usize) {
        self.ingested.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc_by(n as u64);
    }

    pub fn record_sign_in_failure(&self, outcome: &str) {
        self.sign_in_failures.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(%err, "encoding metrics");
        }
        out
    }
}

/// Middleware counting and timing every request by its route template.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    // The template, not the raw path, so ids do not explode the label space.
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    let metrics = state.metrics();
    metrics.latency.get_or_create(&RouteLabels { method: method.clone(), route: route.clone() }).observe(start.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
