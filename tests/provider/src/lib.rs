//! A provider on loopback that plays the outside world for the channel
//! connectors: it records every request and answers each with the next
//! scripted [`Answer`] (or a success in the shape of its path's API):
//!
//! - `POST /webhook`: a webhook receiver, answers 204;
//! - `POST /sms`: an SMS gateway, answers `{"code": "OK", "biz_id": "biz-<n>"}`;
//! - `POST /email`: an e-mail API, answers `{"id": "email-<n>"}`;
//! - `POST /robot/send`: a DingTalk group robot: checks `access_token`, and `timestamp` and `sign` against
//!   the robot's secret as DingTalk does ([`Provider::dingtalk_robot`]), answering `{"errcode": 0}` or
//!   DingTalk's error (`310000` for a bad signature or a stale timestamp, `300001` for an unknown token);
//! - `POST /cgi-bin/webhook/send`: a WeChat Work group robot: checks `key` ([`Provider::wecom_robot`]),
//!   answering `{"errcode": 0}` or `93000`.
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
    /// The DingTalk robot's access token and signing secret.
    dingtalk: Option<(String, String)>,
    /// The WeChat Work robot's webhook key.
    wecom: Option<String>,
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

    /// The DingTalk group robot's access token and signing secret (`SEC…`).
    pub fn dingtalk_robot(&self, access_token: &str, secret: &str) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).dingtalk = Some((access_token.to_owned(), secret.to_owned()));
    }

    /// The WeChat Work group robot's webhook key.
    pub fn wecom_robot(&self, key: &str) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).wecom = Some(key.to_owned());
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).received.clone()
    }
}

async fn answer(State(shared): State<Arc<Mutex<Shared>>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (next, n, robots) = {
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.received.push(Recorded {
            path: uri.path().to_owned(),
            headers: headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect(),
            body: body.to_vec(),
        });
        (shared.script.pop_front().unwrap_or(Answer::Ok), shared.received.len(), (shared.dingtalk.clone(), shared.wecom.clone()))
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
            success(&uri, n, &robots)
        }
        Answer::Ok => success(&uri, n, &robots),
    }
}

type Robots = (Option<(String, String)>, Option<String>);

fn success(uri: &Uri, n: usize, (dingtalk, wecom): &Robots) -> Response {
    let query: Vec<(String, String)> = uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match uri.path() {
        "/sms" => axum::Json(json!({"code": "OK", "biz_id": format!("biz-{n}")})).into_response(),
        "/email" => axum::Json(json!({"id": format!("email-{n}")})).into_response(),
        "/robot/send" => {
            axum::Json(dingtalk_answer(dingtalk.as_ref(), param("access_token"), param("timestamp"), param("sign"))).into_response()
        }
        "/cgi-bin/webhook/send" => {
            let answer = if wecom.is_some() && param("key") == wecom.as_deref() {
                json!({"errcode": 0, "errmsg": "ok"})
            } else {
                json!({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1772357400_1], from ip: 127.0.0.1"})
            };
            axum::Json(answer).into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// DingTalk's check of a robot request: the token, then the signature of `timestamp + "\n" + secret`
/// (HMAC-SHA256 keyed with the secret, base64), with the timestamp within an hour of now.
fn dingtalk_answer(robot: Option<&(String, String)>, token: Option<&str>, timestamp: Option<&str>, sign: Option<&str>) -> Value {
    use base64::Engine;
    use hmac::Mac;
    let Some((expected_token, secret)) = robot else { return json!({"errcode": 300001, "errmsg": "token is not exist"}) };
    if token != Some(expected_token.as_str()) {
        return json!({"errcode": 300001, "errmsg": "token is not exist"});
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let fresh = timestamp.and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| (now - t).abs() < 3_600_000);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{}\n{secret}", timestamp.unwrap_or_default()).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if !fresh || sign != Some(expected.as_str()) {
        return json!({"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"});
    }
    json!({"errcode": 0, "errmsg": "ok"})
}
