//! The fixtures natively, with the SDK's fake host (`cargo test`, after `kith plugin build` wrote .kith/):
//! quick checks of the logic. `kith plugin test` runs the same fixtures on the built component in the kernel's host.

use kith_sdk::LoyaltyScheme;
use kith_sdk::testing::Fixture;

#[test]
fn basic() {
    let fixture = Fixture::load("fixtures/basic.json");
    let decisions = {{crate}}::Scheme::on_events(&fixture.context(), fixture.subjects()).unwrap();
    fixture.assert_decisions(&decisions);
}
