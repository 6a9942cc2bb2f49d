//! The OpenAPI document describes the server exactly.

#[test]
fn dump_openapi_for_inspection() {
    if let Ok(path) = std::env::var("KITH_DUMP_OPENAPI") {
        std::fs::write(path, serde_json::to_string_pretty(kith_api::openapi()).unwrap()).unwrap();
    }
}
