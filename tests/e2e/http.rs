//! The suite's JSON client: a request with a key (`authorization`) and an optional JSON
//! body, answered as its status and its body read as JSON (or as a string when it is not).
//! `base` is put before every path: a node's URL, or nothing when the caller gives whole
//! URLs (several nodes).

use serde_json::Value;

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, base: impl Into<String>) -> Http {
        Http { client, base: base.into() }
    }

    /// The status and body `path` answers; an empty `auth` sends no key.
    pub(crate) async fn call(&self, method: reqwest::Method, auth: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if !auth.is_empty() {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The body of a 2xx answer; any other status fails the test with the body.
    pub(crate) async fn ok(&self, method: reqwest::Method, auth: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.call(method.clone(), auth, path, body).await;
        assert!((200..300).contains(&status), "{method} {path} answered {status}: {value}");
        value
    }

    pub(crate) async fn get(&self, auth: &str, path: &str) -> Value {
        self.ok(reqwest::Method::GET, auth, path, None).await
    }

    pub(crate) async fn post(&self, auth: &str, path: &str, body: &Value) -> Value {
        self.ok(reqwest::Method::POST, auth, path, Some(body)).await
    }

    pub(crate) async fn put(&self, auth: &str, path: &str, body: &Value) -> Value {
        self.ok(reqwest::Method::PUT, auth, path, Some(body)).await
    }

    /// Every item of a paged list (`items` and `next_cursor`).
    pub(crate) async fn all(&self, auth: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &cursor {
                Some(c) => self.get(auth, &format!("{path}{sep}cursor={c}")).await,
                None => self.get(auth, path).await,
            };
            items.extend(page["items"].as_array().unwrap_or_else(|| panic!("{path}: {page}")).iter().cloned());
            cursor = match &page["next_cursor"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if cursor.is_none() {
                return items;
            }
        }
    }
}
