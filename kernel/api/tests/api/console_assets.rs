//! The merchant console's files at `/`: index.html never cached, hashed assets cached for good
//! and gzipped on request, a content security policy on each, nothing outside the set.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, header};
use kith_api::ApiConfig;
use kith_api::console::{Asset, Assets, Console};

use crate::harness::Harness;

struct Files;

impl Assets for Files {
    fn get(&self, path: &str) -> Option<Asset> {
        match path {
            "index.html" => Some(Asset { body: b"<div id=\"app\"></div>", gzip: None }),
            "assets/index-abc.js" => Some(Asset { body: b"console.log(1)", gzip: Some(b"\x1f\x8bgz") }),
            _ => None,
        }
    }
}

fn get(uri: &str, gzip: bool) -> Request<Body> {
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if gzip {
        req = req.header(header::ACCEPT_ENCODING, "br, gzip;q=0.8");
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_its_assets() {
    let h = Harness::with_config(ApiConfig { console: Some(Console(Arc::new(Files))), ..Default::default() }).await;
    let index = h.send(get("/", true)).await;
    assert_eq!(index.status, 200);
    assert_eq!(index.body, "<div id=\"app\"></div>");
    assert_eq!(index.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(index.headers[header::CACHE_CONTROL], "no-cache");
    let csp = index.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(index.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    let plain = h.send(get("/assets/index-abc.js", false)).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, "console.log(1)");
    assert_eq!(plain.headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    let gzipped = h.send(get("/assets/index-abc.js", true)).await;
    assert_eq!(gzipped.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(gzipped.headers[header::VARY], "accept-encoding");
    let refused =
        h.send(Request::get("/assets/index-abc.js").header(header::ACCEPT_ENCODING, "gzip;q=0").body(Body::empty()).unwrap()).await;
    assert!(refused.headers.get(header::CONTENT_ENCODING).is_none(), "q=0 refuses gzip");

    h.send(get("/assets/missing.js", false)).await.assert_problem(404, "not-found");
    h.send(get("/assets/../index.html", false)).await.assert_problem(404, "not-found");
    // The API beside it is unchanged.
    h.send(get("/v1/customers", false)).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn without_a_console_the_root_is_not_found() {
    let h = Harness::new().await;
    h.send(get("/", false)).await.assert_problem(404, "not-found");
}
