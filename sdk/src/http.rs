//! Outbound HTTP for channel connectors, over `wasi:http/outgoing-handler`.
//!
//! The kernel lets a request through only to a host the manifest declares
//! and the shop granted; any other fails with [`Error::AccessDenied`].
//! Natively with the `testing` feature, requests are answered by the fake host.
#![cfg_attr(all(not(target_arch = "wasm32"), feature = "testing"), allow(dead_code, unused_imports))]

use crate::Error;
use crate::bindings::channel_connector::wasi::http::{outgoing_handler, types};
use crate::bindings::channel_connector::wasi::io::streams::StreamError;

/// A response, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Send a request and wait for the whole response.
///
/// ```no_run
/// let response = kith_sdk::http::request("POST", "https://hooks.example.com/kith", &[("content-type", "application/json")], b"{}")?;
/// assert_eq!(response.status, 200);
/// # Ok::<(), kith_sdk::Error>(())
/// ```
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Error> {
    #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
    return crate::testing::fake::http(method, url, headers, body);
    #[cfg(any(target_arch = "wasm32", not(feature = "testing")))]
    send(method, url, headers, body)
}

#[cfg(any(target_arch = "wasm32", not(feature = "testing")))]
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::Invalid(format!("`{url}` is not an absolute URL")))?;
    let scheme = match scheme {
        "http" => types::Scheme::Http,
        "https" => types::Scheme::Https,
        other => return Err(Error::Invalid(format!("unsupported scheme `{other}`"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let method = match method {
        "GET" => types::Method::Get,
        "POST" => types::Method::Post,
        "PUT" => types::Method::Put,
        "DELETE" => types::Method::Delete,
        "PATCH" => types::Method::Patch,
        other => types::Method::Other(other.to_owned()),
    };
    let list: Vec<(String, Vec<u8>)> = headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let fields = types::Fields::from_list(&list).map_err(|e| Error::Invalid(format!("headers: {e:?}")))?;
    let request = types::OutgoingRequest::new(fields);
    let refused = |what: &str| Error::Invalid(format!("invalid {what}"));
    request.set_method(&method).map_err(|()| refused("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| refused("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| refused("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| refused("path"))?;
    let outgoing = request.body().map_err(|()| Error::Failed("request body already taken".into()))?;
    let future = outgoing_handler::handle(request, None).map_err(failed)?;
    // When the request fails (a denied host, a refused connection) the body
    // stream closes; the response future then holds the reason.
    let written = write_body(outgoing, body);
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(failed(code)),
        Some(Err(())) => return Err(Error::Failed("response already taken".into())),
        None => return Err(Error::Failed("no response".into())),
    };
    written?;
    let status = response.status();
    let headers =
        response.headers().entries().into_iter().map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned())).collect();
    let incoming = response.consume().map_err(|()| Error::Failed("response body already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| Error::Failed("response body stream already taken".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::Failed(format!("reading the response: {}", e.to_debug_string())));
                }
            }
        }
    }
    Ok(Response { status, headers, body })
}

fn write_body(outgoing: types::OutgoingBody, body: &[u8]) -> Result<(), Error> {
    {
        let stream = outgoing.write().map_err(|()| Error::Failed("request body stream already taken".into()))?;
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| Error::Failed(format!("writing the request body: {e:?}")))?;
        }
    }
    types::OutgoingBody::finish(outgoing, None).map_err(failed)
}

fn failed(code: types::ErrorCode) -> Error {
    match code {
        types::ErrorCode::HttpRequestDenied => Error::AccessDenied("the kernel denied the request: host not granted".into()),
        other => Error::Failed(format!("HTTP request failed: {other:?}")),
    }
}
