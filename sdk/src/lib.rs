//! Write Kith plugins in Rust.
//!
//! A plugin is a `cdylib` crate compiled for `wasm32-wasip2` that depends on
//! this crate with the feature of its kind (`tag-rule`, `scoring-model`,
//! `loyalty-scheme` or `channel-connector`), implements the kind's trait on a
//! type, and exports it with the kind's macro:
//!
//! ```
//! # #[cfg(feature = "tag-rule")] mod doc {
//! use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};
//!
//! struct Vip;
//!
//! impl TagRule for Vip {
//!     fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
//!         Ok(batch
//!             .iter()
//!             .filter(|s| s.customer.stats.total_spent >= 100_000)
//!             .map(|s| Decision::add_tag(s.customer.id, "vip", "spent 1,000 or more"))
//!             .collect())
//!     }
//! }
//!
//! kith_sdk::export_tag_rule!(Vip);
//! # }
//! ```
//!
//! The logic is plain Rust: call `Vip::evaluate` in a native unit test with
//! snapshots built by hand. Host imports ([`log`], [`config`], [`kv`],
//! [`now`], [`read_customer`]) only work inside the kernel; natively they
//! are not linked. Each is behind a capability the manifest requests and the
//! shop grants; without it the call returns [`Error::AccessDenied`].

#![deny(missing_docs)]

/// Bindings generated from the `kith:plugin@0.1.0` WIT package.
#[allow(missing_docs, reason = "generated from the WIT files, whose comments are the documentation")]
pub mod bindings {
    /// The imports every plugin may use, and the shared types.
    pub mod host {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            features: ["clocks-timezone"],
            world: "host",
        });
    }

    #[cfg(feature = "tag-rule")]
    pub mod tag_rule {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            features: ["clocks-timezone"],
            world: "tag-rule",
            with: {
                "kith:plugin/types@0.1.0": crate::bindings::host::kith::plugin::types,
                "kith:plugin/log@0.1.0": crate::bindings::host::kith::plugin::log,
                "kith:plugin/config@0.1.0": crate::bindings::host::kith::plugin::config,
                "kith:plugin/kv@0.1.0": crate::bindings::host::kith::plugin::kv,
                "kith:plugin/clock@0.1.0": crate::bindings::host::kith::plugin::clock,
                "kith:plugin/customers@0.1.0": crate::bindings::host::kith::plugin::customers,
            },
            pub_export_macro: true,
            default_bindings_module: "kith_sdk::bindings::tag_rule",
        });
    }

    #[cfg(feature = "scoring-model")]
    pub mod scoring_model {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            features: ["clocks-timezone"],
            world: "scoring-model",
            with: {
                "kith:plugin/types@0.1.0": crate::bindings::host::kith::plugin::types,
                "kith:plugin/log@0.1.0": crate::bindings::host::kith::plugin::log,
                "kith:plugin/config@0.1.0": crate::bindings::host::kith::plugin::config,
                "kith:plugin/kv@0.1.0": crate::bindings::host::kith::plugin::kv,
                "kith:plugin/clock@0.1.0": crate::bindings::host::kith::plugin::clock,
                "kith:plugin/customers@0.1.0": crate::bindings::host::kith::plugin::customers,
            },
            pub_export_macro: true,
            default_bindings_module: "kith_sdk::bindings::scoring_model",
        });
    }

    #[cfg(feature = "loyalty-scheme")]
    pub mod loyalty_scheme {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            features: ["clocks-timezone"],
            world: "loyalty-scheme",
            with: {
                "kith:plugin/types@0.1.0": crate::bindings::host::kith::plugin::types,
                "kith:plugin/log@0.1.0": crate::bindings::host::kith::plugin::log,
                "kith:plugin/config@0.1.0": crate::bindings::host::kith::plugin::config,
                "kith:plugin/kv@0.1.0": crate::bindings::host::kith::plugin::kv,
                "kith:plugin/clock@0.1.0": crate::bindings::host::kith::plugin::clock,
                "kith:plugin/customers@0.1.0": crate::bindings::host::kith::plugin::customers,
            },
            pub_export_macro: true,
            default_bindings_module: "kith_sdk::bindings::loyalty_scheme",
        });
    }

    #[cfg(feature = "channel-connector")]
    pub mod channel_connector {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            features: ["clocks-timezone"],
            world: "channel-connector",
            with: {
                "kith:plugin/types@0.1.0": crate::bindings::host::kith::plugin::types,
                "kith:plugin/log@0.1.0": crate::bindings::host::kith::plugin::log,
                "kith:plugin/config@0.1.0": crate::bindings::host::kith::plugin::config,
                "kith:plugin/kv@0.1.0": crate::bindings::host::kith::plugin::kv,
                "kith:plugin/clock@0.1.0": crate::bindings::host::kith::plugin::clock,
                "kith:plugin/customers@0.1.0": crate::bindings::host::kith::plugin::customers,
            },
            generate_all,
            pub_export_macro: true,
            default_bindings_module: "kith_sdk::bindings::channel_connector",
        });
    }
}

mod decisions;
#[cfg(feature = "channel-connector")]
pub mod http;
mod kinds;

pub use bindings::host::kith::plugin::types::{
    Customer, Decision, Delivery, Distribution, EmittedEvent, Error, Event, InboundRequest, Message, Order, OrderItem, PointsChange,
    Profile, Receipt, ReceiptStatus, Score, ScoreChange, ShopContext, Stats, Subject, Tag, TagChange, TierChange,
};
pub use kinds::*;

use bindings::host::kith::plugin as host;

/// Write a log line, kept per shop and plugin (capability `log`).
///
/// Logging never fails the plugin: without the capability the line is dropped.
pub fn log(level: LogLevel, message: &str) {
    // A plugin that may not log has nowhere to report that; dropping the line is the contract.
    let _ = host::log::write(level, message);
}

/// Log levels.
pub use host::log::Level as LogLevel;

/// The shop's configuration of this plugin (capability `config`).
pub mod config {
    use super::{Error, host};

    /// The configuration as JSON text.
    pub fn raw() -> Result<String, Error> {
        host::config::get()
    }

    /// The configuration deserialised; an [`Error::Invalid`] names what did not fit.
    ///
    /// ```no_run
    /// #[derive(serde::Deserialize)]
    /// struct Config { threshold: i64 }
    /// let threshold = kith_sdk::config::get::<Config>().map(|c| c.threshold).unwrap_or(100_000);
    /// ```
    pub fn get<T: serde::de::DeserializeOwned>() -> Result<T, Error> {
        let text = raw()?;
        serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("configuration: {e}")))
    }
}

/// The key-value space of this shop and plugin (capability `kv`).
///
/// Writes take effect with the call's decisions: if the call fails, its
/// writes are discarded.
pub mod kv {
    use super::{Error, host};

    /// The bytes stored under `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        host::kv::get(key)
    }

    /// Store bytes; [`Error::QuotaExceeded`] past the kernel's limits.
    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        host::kv::set(key, value)
    }

    /// Remove a key; removing a missing key succeeds.
    pub fn delete(key: &str) -> Result<(), Error> {
        host::kv::delete(key)
    }

    /// A JSON value stored under `key`.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
        match get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Invalid(format!("value of `{key}`: {e}"))),
            None => Ok(None),
        }
    }

    /// Store a value as JSON.
    pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid(format!("value of `{key}`: {e}")))?;
        set(key, &bytes)
    }
}

/// The kernel's clock in milliseconds since the Unix epoch (capability `clock`).
///
/// Prefer this, or the `now` of the [`ShopContext`], to the system clock:
/// tests of the kernel move this clock.
pub fn now() -> Result<i64, Error> {
    host::clock::now()
}

/// Any customer of the calling shop (capability `customers:read`);
/// [`Error::NotFound`] for ids of other shops.
pub fn read_customer(id: i64) -> Result<Customer, Error> {
    host::customers::read(id)
}
