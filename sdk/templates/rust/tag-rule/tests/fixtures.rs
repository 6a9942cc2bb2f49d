//! The fixtures natively, with the SDK's fake host (`cargo test`, after `kith plugin build` wrote .kith/):
//! quick checks of the logic. `kith plugin test` runs the same fixtures on the built component in the kernel's host.

use kith_sdk::TagRule;
use kith_sdk::testing::Fixture;

#[test]
fn basic() {
    let fixture = Fixture::load("fixtures/basic.json");
    let decisions = {{crate}}::Rule::evaluate(&fixture.context(), fixture.subjects()).unwrap();
    fixture.assert_decisions(&decisions);
    assert!(kith_sdk::testing::host().logs.iter().any(|(_, line)| line == "evaluated 3 customers"));
}
