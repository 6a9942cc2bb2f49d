//! Masking of personal data for keys without `pii:read`.
//!
//! What is personal, and how each type that holds it is masked, is defined once in
//! [`kith_domain::personal`]; handlers call [`mask`] (or [`reveal`] where an unmasked
//! read is audited) on everything they answer that holds personal data. The
//! contract test lists the OpenAPI schemas that hold any and checks each is masked.

use kith_domain::auth::Scope;
pub use kith_domain::personal::Personal;

use crate::auth::ShopKey;

/// Mask `value` unless the key holds `pii:read`.
pub fn mask<S, T: Personal>(key: &ShopKey<S>, mut value: T) -> T {
    if !key.can(Scope::PiiRead) {
        value.mask_personal();
    }
    value
}

/// Mask a JSON document (a definition, a detail) unless the key holds `pii:read`.
pub fn json<S>(key: &ShopKey<S>, mut value: serde_json::Value) -> serde_json::Value {
    if !key.can(Scope::PiiRead) {
        kith_domain::personal::mask_payload(&mut value);
    }
    value
}

/// The OpenAPI schemas that hold personal data, each masked through [`Personal`] (directly or
/// as a part of one that is): the contract test fails when a schema holding a personal field is
/// missing here.
pub const MASKED_SCHEMAS: &[&str] = &[
    "Customer",
    "CustomerDetail",
    "Profile",
    "IdentityView",
    "Merge",
    "Event",
    "AuditEntry",
    "Message",
    "TestSend",
    "JourneyRun",
    "JourneyRunStep",
    "Journey",
    "JourneyVersion",
    "PluginLog",
    "DeadLetter",
    "Subscription",
    "PluginStatus",
    "Run",
    "LedgerEntry",
    "PointsAccount",
    "TierChange",
    // A tag's reason and a score's explanation, masked as parts of a customer.
    "Tag",
    "Score",
];
