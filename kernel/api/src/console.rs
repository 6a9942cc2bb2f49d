//! The merchant console's files, served at `/` beside the API.
//!
//! The console is a single-page app (console/ in the repository) that calls only the public
//! API. Its built files reach the router as an [`Assets`] the binary embeds; this module
//! answers `GET /` with `index.html` (never cached, so a new binary's console is picked up at
//! once) and `GET /assets/<file>` with the hashed files Vite writes (cached for a year, they
//! never change under one name), gzipped when the client accepts it. Every answer carries a
//! content security policy that lets the page load only its own scripts and talk only to its
//! own origin.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

/// One file of the console: its bytes and, for text, the same bytes gzipped.
#[derive(Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

/// Where the console's files come from: the binary embeds them at build time.
pub trait Assets: Send + Sync + 'static {
    /// The file at `path` (relative, e.g. `index.html`, `assets/index-3f2a.js`).
    fn get(&self, path: &str) -> Option<Asset>;
}

/// The console to serve, if any.
#[derive(Clone)]
pub struct Console(pub Arc<dyn Assets>);

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Console")
    }
}

/// Scripts, styles and connections from the page's own origin only; no frames, no plugins.
/// Inline style attributes are allowed (the chart library positions its parts with them).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(crate) fn router<S: Clone + Send + Sync + 'static>(console: Console) -> Router<S> {
    Router::new().route("/", get(index)).route("/index.html", get(index)).route("/assets/{*file}", get(asset)).with_state(console)
}

async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    serve(&console, "index.html", &headers, "no-cache")
}

async fn asset(State(console): State<Console>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return ApiError::not_found("file").into_response();
    }
    serve(&console, &format!("assets/{file}"), &headers, "public, max-age=31536000, immutable")
}

fn serve(console: &Console, path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(asset) = console.0.get(path) else {
        return ApiError::not_found("file").into_response();
    };
    let accepts_gzip =
        headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(accepts);
    let (body, gzipped) = match asset.gzip {
        Some(gz) if accepts_gzip => (gz, true),
        _ => (asset.body, false),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether one coding of `Accept-Encoding` (`gzip`, `gzip;q=0.5`) accepts gzip: `q=0` refuses it.
fn accepts(coding: &str) -> bool {
    let mut parts = coding.split(';').map(str::trim);
    if !parts.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip")) {
        return false;
    }
    parts.filter_map(|p| p.strip_prefix("q=")).all(|q| q.parse::<f32>().is_ok_and(|q| q > 0.0))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
