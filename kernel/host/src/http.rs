//! Outbound HTTP for channel connectors: only to hosts the manifest declares
//! and the shop granted, within a time budget and a response size cap.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// How far past the call's deadline a request's own budget runs (see `send_request`).
const DEADLINE_GRACE: Duration = Duration::from_millis(200);

/// The hooks of one call.
pub(crate) struct Outbound {
    /// Granted hosts that the manifest declares; empty when `http` is not granted.
    hosts: Vec<String>,
    timeout: Duration,
    max_response_bytes: usize,
    /// Authorities refused during the call, for the plugin's log.
    pub(crate) denied: Vec<String>,
    /// The call's deadline: no request outlives it, whatever its own budget.
    pub(crate) deadline: Instant,
}

impl Outbound {
    pub(crate) fn new(hosts: Vec<String>, timeout: Duration, max_response_bytes: usize) -> Outbound {
        Outbound { hosts, timeout, max_response_bytes, denied: Vec::new(), deadline: Instant::now() + timeout }
    }
}

type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>> + Send>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        // The guest learns of request-side failures from the response; nothing waits on this.
        drop(fut);
        let authority = request.uri().authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
        if !kith_domain::plugin::host_allowed(&self.hosts, &authority) {
            self.denied.push(authority);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // The budget of a request is the host's, or what is left of the call if that is less.
        // The call's deadline ends a wait on the response first (a timeout of the call, not an
        // HTTP error the guest would report as its own): the grace only orders the two.
        let budget = self.timeout.min(self.deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE);
        let cap = |guest: Option<Duration>| Some(guest.map_or(budget, |g| g.min(budget)));
        let options = RequestOptions {
            connect_timeout: cap(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: cap(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: cap(options.and_then(|o| o.between_bytes_timeout)),
        };
        let max = self.max_response_bytes;
        let timeout = budget;
        Box::new(async move {
            let sent = tokio::time::timeout(timeout, wasmtime_wasi_http::default_send_request(request, Some(options)))
                .await
                .map_err(|_| Error::ConnectionTimeout)??;
            let (response, io) = sent;
            let response = response.map(|body| {
                Limited::new(body, max)
                    .map_err(move |e| match e.downcast::<http_body_util::LengthLimitError>() {
                        Ok(_) => Error::HttpResponseBodySize(Some(max as u64)),
                        Err(e) => Error::InternalError(Some(e.to_string())),
                    })
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>))
        })
    }
}
