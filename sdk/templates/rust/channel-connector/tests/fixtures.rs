//! The fixtures natively, with the SDK's fake host (`cargo test`, after `kith plugin build` wrote .kith/):
//! the provider's answers come from the fixture, and the requests are recorded. `kith plugin test`
//! runs the same fixtures on the built component in the kernel's host, with a real stand-in provider.

use kith_sdk::testing::Fixture;
use kith_sdk::{ChannelConnector, Delivery, ReceiptStatus};

#[test]
fn basic() {
    let fixture = Fixture::load("fixtures/basic.json");
    let delivery = {{crate}}::Connector::deliver(&fixture.context(), fixture.message()).unwrap();
    assert!(matches!(&delivery, Delivery::Accepted(Some(id)) if id == "p-1"), "{delivery:?}");
    let requests = kith_sdk::testing::host().requests;
    let (method, url, _, body) = &requests[0];
    assert_eq!((method.as_str(), url.as_str()), ("POST", "${provider}/send"));
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["variables"]["name"], "Li");
}

#[test]
fn retry() {
    let fixture = Fixture::load("fixtures/retry.json");
    let delivery = {{crate}}::Connector::deliver(&fixture.context(), fixture.message()).unwrap();
    assert!(matches!(delivery, Delivery::RetryAfter(120)), "{delivery:?}");
}

#[test]
fn receipt() {
    let fixture = Fixture::load("fixtures/receipt.json");
    let receipts = {{crate}}::Connector::parse_receipt(&fixture.context(), fixture.request()).unwrap();
    assert_eq!(receipts.len(), 2);
    assert!(matches!(receipts[1].status, ReceiptStatus::Failed));
    assert_eq!(receipts[1].detail.as_deref(), Some("number not in service"));
}
