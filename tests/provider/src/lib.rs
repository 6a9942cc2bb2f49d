//! A provider on loopback that plays the outside world for the channel
//! connectors: it records every request and answers each with the next
//! scripted [`Answer`] (or a success in the shape of its path's API):
//!
//! - `POST /webhook`: a webhook receiver, answers 204;
//! - `POST /sms`: an SMS gateway, answers `{"code": "OK", "biz_id": "biz-<n>"}`;
//! - `POST /email`: an e-mail API, answers `{"id": "email-<n>"}`.
//!
//! It runs on its own thread and runtime, so blocking tests and the demo can use it alike.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How the provider answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The success of the path's API.
    Ok,
    /// This status and body, with a `Retry-After` header when given.
    Status { status: u16, body: String, retry_after: Option<u32> },
    /// A success after this long (a slow provider).
    Slow(Duration),
}

/// A request the provider received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Answer>,
    received: Vec<Recorded>,
}

/// A running provider; it stops when dropped.
pub struct Provider {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Provider {
    /// Start on an ephemeral port of 127.0.0.1.
    pub fn start() -> std::io::Result<Provider> {
        Self::start_on(0)
    }

    /// Start on a given port of 127.0.0.1 (0: any free one).
    pub fn start_on(port: u16) -> std::io::Result<Provider> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::Builder::new().name("kith-provider".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the provider");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let app = Router::new().fallback(answer).with_state(state);
                // Serving ends when the provider is dropped; an I/O error ends it too, which the test then sees as refused connections.
                let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                    // Ok (told to stop) and Err (the sender was dropped) both mean stop.
                    stopped.await.ok();
                });
                if let Err(err) = served.await {
                    eprintln!("kith-provider: {err}");
                }
            });
        })?;
        Ok(Provider { addr, shared, _stop: stop })
    }

    /// `127.0.0.1:<port>`: what a shop grants its connectors.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers for the next requests, in order; later requests get [`Answer::Ok`].
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).script.extend(answers);
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).received.clone()
    }
}

async fn answer(State(shared): State<Arc<Mutex<Shared>>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (next, n) = {
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.received.push(Recorded {
            path: uri.path().to_owned(),
            headers: headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect(),
            body: body.to_vec(),
        });
        (shared.script.pop_front().unwrap_or(Answer::Ok), shared.received.len())
    };
    match next {
        Answer::Status { status, body, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, body).into_response();
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            success(uri.path(), n)
        }
        Answer::Ok => success(uri.path(), n),
    }
}

fn success(path: &str, n: usize) -> Response {
    match path {
        "/sms" => axum::Json(json!({"code": "OK", "biz_id": format!("biz-{n}")})).into_response(),
        "/email" => axum::Json(json!({"id": format!("email-{n}")})).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
